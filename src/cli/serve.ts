import type { Command } from "commander";
import { InputError, IoError } from "../errors.js";
import { type Common, collect, outputFormat, pathsOf, printData, rootOpt } from "./common.js";
import { info, warn } from "./output.js";

export function registerServe(program: Command): void {
  rootOpt(program.command("serve"))
    .description("Run the authorization webhook that denies revoked client certificates at kube-apiserver")
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
      "--setup-only",
      "write the certificates, webhook kubeconfig and AuthorizationConfiguration, then exit",
    )
    .option(
      "-o, --output <format>",
      "with --setup-only: text | json | yaml",
      outputFormat(["text", "json", "yaml"]),
      "text",
    )
    .addHelpText(
      "after",
      `
Examples:
  kubepki serve --root / --listen 127.0.0.1:8443
  kubepki serve --root / --setup-only     # then: kube-apiserver --authorization-config=/etc/kubernetes/kubepki/authorization-config.yaml
  kubepki serve --root / --setup-only -o json`,
    )
    .action(
      async (
        f: Common & {
          listen: string;
          allowedCn?: string[];
          denyRevokedUsers?: boolean;
          setupOnly?: boolean;
          output: string;
        },
      ) => {
        const [
          { openLedger },
          { setupWebhook, WEBHOOK_CLIENT_CN },
          { createWebhookServer, DEFAULT_LIMITS },
          { readFileSync },
        ] = await Promise.all([
          import("../ledger/record.js"),
          import("../revoke/webhook-setup.js"),
          import("../revoke/webhook.js"),
          import("node:fs"),
        ]);
        if (f.output !== "text" && !f.setupOnly)
          throw new InputError(
            `-o ${f.output} describes what --setup-only wrote; the server itself logs text`,
          );
        const paths = pathsOf(f);
        const store = openLedger(paths.ledgerFile);
        const files = await setupWebhook(paths, store, f.listen);
        // A ledger that lost revocations the published CRLs still list would let them through here.
        const { verifyLedger } = await import("../revoke/ledger-check.js");
        const lost = (await verifyLedger(paths, store)).reduce((n, c) => n + c.onlyInCrl.length, 0);
        if (lost > 0)
          warn(
            `${lost} revocation(s) are in a published CRL but not in the ledger, so this webhook cannot deny them: run kubepki ledger repair`,
          );
        if (f.setupOnly && (await printData(f.output, files))) {
          await store.close();
          return;
        }
        for (const i of files.issued) info(`issued ${i}`);
        info(
          `kube-apiserver: --authorization-config=${files.authorizationConfig.slice(paths.root.length) || files.authorizationConfig}`,
        );
        if (f.setupOnly) {
          await store.close();
          return;
        }
        const hook = await createWebhookServer({
          cert: readFileSync(files.serverCert, "utf8"),
          key: readFileSync(files.serverKey, "utf8"),
          ca: readFileSync(files.caCert, "utf8"),
          allowedCNs: f.allowedCn?.length ? f.allowedCn : [WEBHOOK_CLIENT_CN],
          store,
          ledgerFile: paths.ledgerFile,
          denyRevokedUsers: f.denyRevokedUsers,
        });
        await new Promise<void>((resolveListen, reject) => {
          hook.server.once("error", (err: NodeJS.ErrnoException) =>
            reject(
              new IoError(
                `cannot listen on ${f.listen}: ${err.code === "EADDRINUSE" ? "address in use" : err.message}`,
              ),
            ),
          );
          hook.server.listen(files.listen.port, files.listen.host, () => resolveListen());
        });
        const addr = hook.server.address();
        const port = typeof addr === "object" && addr ? addr.port : files.listen.port;
        info(
          `kubepki serve: listening on https://${files.listen.host}:${port} (mTLS), /authorize /healthz /readyz /metrics`,
        );
        // Bounded: connections still open after the grace period are destroyed.
        const stop = () => {
          info("kubepki serve: stopping");
          setTimeout(() => process.exit(0), DEFAULT_LIMITS.shutdownMs + 1000).unref();
          hook
            .close()
            .then(() => store.close())
            .finally(() => process.exit(0));
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
        await new Promise(() => {});
      },
    );
}
