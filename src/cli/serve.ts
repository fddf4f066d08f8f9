import type { Command } from "commander";
import type { ServeRequest } from "../app/serve.js";
import { InputError } from "../errors.js";
import { act, collect, printData, warnAll, withFlags, withOutput } from "./common.js";
import { info } from "./output.js";

type ServeFlags = ServeRequest & { setupOnly?: boolean; output: string };

export function registerServe(program: Command): void {
  const cmd = program
    .command("serve")
    .description("Run the authorization webhook that denies revoked client certificates at kube-apiserver");
  withFlags(cmd, { root: true, ledger: true, offlineDir: true })
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:8443")
    .option(
      "--allowed-cn <cn>",
      "client certificate CN allowed to call (repeatable; default: the one kubepki issues to kube-apiserver)",
      collect,
    )
    .option(
      "--deny-revoked-users",
      "also deny requests without a credential id (clusters before 1.32) by the user name of revoked certificates",
    )
    .option(
      "--max-staleness <duration>",
      "etcd store: /readyz fails when the revoked set was not confirmed current for this long (default: 30s)",
    )
    .option(
      "--setup-only",
      "write the certificates, webhook kubeconfig and AuthorizationConfiguration, then exit",
    );
  withOutput(cmd, ["text", "json", "yaml"], "with --setup-only: text | json | yaml").addHelpText(
    "after",
    `
Examples:
  kubepki serve --root / --listen 127.0.0.1:8443
  kubepki serve --root / --store etcd://10.0.0.11:2379,10.0.0.12:2379,10.0.0.13:2379
  kubepki serve --root / --setup-only     # then: kube-apiserver --authorization-config=/etc/kubernetes/kubepki/authorization-config.yaml
  kubepki serve --root / --setup-only -o json`,
  );
  act(cmd, async ({ setupOnly, output, ...req }: ServeFlags) => {
    if (output !== "text" && !setupOnly)
      throw new InputError(`-o ${output} describes what --setup-only wrote; the server itself logs text`);
    const app = await import("../app/serve.js");
    if (setupOnly) {
      const setup = await app.setupServe(req);
      warnAll(setup.notices);
      if (await printData(output, setup.files)) return undefined;
      for (const i of setup.files.issued) info(`issued ${i}`);
      info(`kube-apiserver: --authorization-config=${setup.authorizationConfigFlag}`);
      return undefined;
    }
    const running = await app.startServe(req);
    warnAll(running.notices);
    for (const i of running.files.issued) info(`issued ${i}`);
    info(`kube-apiserver: --authorization-config=${running.authorizationConfigFlag}`);
    info(`kubepki serve: listening on ${running.url} (mTLS), /authorize /healthz /readyz /metrics`);
    await untilSignalled(running.close);
    return undefined;
  });
}

/** Runs until SIGTERM or SIGINT, then closes (bounded: connections still open after the grace period are destroyed). */
async function untilSignalled(close: () => Promise<void>): Promise<never> {
  const { DEFAULT_LIMITS } = await import("../revoke/webhook.js");
  const stop = () => {
    info("kubepki serve: stopping");
    setTimeout(() => process.exit(0), DEFAULT_LIMITS.shutdownMs + 1000).unref();
    close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  return new Promise<never>(() => {});
}
