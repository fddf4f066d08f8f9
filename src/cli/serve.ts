import type { Command } from "commander";
import type { ServeRequest } from "../app/serve.js";
import { InputError } from "../errors.js";
import { act, collect, oneOf, printData, warnAll, withFlags, withOutput } from "./common.js";
import { info } from "./output.js";

type ServeFlags = ServeRequest & {
  setupOnly?: boolean;
  output: string;
  printSystemdUnit?: boolean;
  printStaticPod?: boolean;
  image?: string;
};

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
      "--unknown-certificates <mode>",
      "a client certificate the ledger does not know: log (count and log it; the default) | deny (refuse it)",
      oneOf(["log", "deny"] as const),
    )
    .option(
      "--max-staleness <duration>",
      "etcd store: /readyz fails when the revoked set was not confirmed current for this long (default: 30s)",
    )
    .option(
      "--setup-only",
      "write the certificates, webhook kubeconfig and AuthorizationConfiguration, then exit",
    );
  deploymentFlags(cmd);
  withOutput(cmd, ["text", "json", "yaml"], "with --setup-only: text | json | yaml").addHelpText(
    "after",
    `
Examples:
  kubepki serve --root / --listen 127.0.0.1:8443
  kubepki serve --root / --store etcd://10.0.0.11:2379,10.0.0.12:2379,10.0.0.13:2379
  kubepki serve --root / --setup-only     # then: kube-apiserver --authorization-config=/etc/kubernetes/kubepki/authorization-config.yaml
  kubepki serve --root / --setup-only -o json
  kubepki serve --root / --unknown-certificates deny   # only once every client certificate is in the ledger
  kubepki serve --root / --health-listen 127.0.0.1:8444 --print-static-pod > /etc/kubernetes/manifests/kubepki-serve.yaml
  kubepki serve --root / --print-systemd-unit > /etc/systemd/system/kubepki-serve.service`,
  );
  act(cmd, async ({ setupOnly, output, printSystemdUnit, printStaticPod, image, ...req }: ServeFlags) => {
    if (printSystemdUnit || printStaticPod)
      return printDeployment(req, !!printSystemdUnit, !!printStaticPod, image);
    if (output !== "text" && !setupOnly)
      throw new InputError(`-o ${output} describes what --setup-only wrote; the server itself logs text`);
    return setupOnly ? setup(req, output) : run(req);
  });
}

async function setup(req: ServeRequest, output: string): Promise<undefined> {
  const { setupServe } = await import("../app/serve.js");
  const r = await setupServe(req);
  warnAll(r.notices);
  if (await printData(output, r.files)) return undefined;
  for (const i of r.files.issued) info(`issued ${i}`);
  info(`kube-apiserver: --authorization-config=${r.authorizationConfigFlag}`);
  return undefined;
}

async function run(req: ServeRequest): Promise<undefined> {
  const { startServe } = await import("../app/serve.js");
  const running = await startServe(req);
  warnAll(running.notices);
  for (const i of running.files.issued) info(`issued ${i}`);
  info(`kube-apiserver: --authorization-config=${running.authorizationConfigFlag}`);
  info(`kubepki serve: listening on ${running.url} (mTLS), /authorize /healthz /readyz /metrics`);
  if (running.healthUrl)
    info(`kubepki serve: health on ${running.healthUrl} (plain HTTP), /healthz /readyz /metrics`);
  await untilSignalled(running.close);
  return undefined;
}

/** The health port, and printing how to run serve on every control plane. */
function deploymentFlags(cmd: Command): Command {
  return cmd
    .option(
      "--health-listen <host:port>",
      "also serve /healthz, /readyz and /metrics on this plain-HTTP address (loopback only, unless --health-allow-remote)",
    )
    .option(
      "--health-allow-remote",
      "let --health-listen be a non-loopback address (no authentication there)",
    )
    .option(
      "--print-systemd-unit",
      "print a hardened systemd unit that runs serve with these flags, then exit",
    )
    .option(
      "--print-static-pod",
      "print a static pod (for /etc/kubernetes/manifests) that runs serve with these flags, then exit",
    )
    .option(
      "--image <ref>",
      "with --print-static-pod: an image with Node.js 22.13+ (default: node:24-bookworm-slim)",
    );
}

async function printDeployment(
  req: ServeRequest,
  unit: boolean,
  pod: boolean,
  image: string | undefined,
): Promise<undefined> {
  if (unit && pod) throw new InputError("--print-systemd-unit and --print-static-pod: one at a time");
  const { serveDeployment } = await import("../app/serve-deploy.js");
  const r = await serveDeployment({ ...req, kind: unit ? "systemd-unit" : "static-pod", image });
  warnAll(r.notices);
  process.stdout.write(r.text);
  return undefined;
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
