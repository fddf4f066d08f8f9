import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { STATUSES, type Status } from "../ledger/store.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { treePaths } from "../pki/paths.js";
import { parseDuration } from "../pki/validate.js";
import { collect, outputFormat } from "./common.js";
import { info, out, table, warn } from "./output.js";

const rootOpt = (c: Command) =>
  c
    .option("--root <dir>", "treat this folder as the node's /", "/")
    .option("--state <dir>", "folder of the ledger (default: <root>/var/lib/kubepki)")
    .option("--offline-dir <dir>", "where offline CA keys are kept");

interface Common {
  root: string;
  state?: string;
  offlineDir?: string;
}

const pathsOf = (f: Common) => treePaths(f.root, undefined, f.offlineDir, f.state);

function duration(flag: string) {
  return (v: string) => {
    try {
      return parseDuration(v, flag);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

export function registerRevocation(program: Command): void {
  const ledger = program
    .command("ledger")
    .description("The issuance ledger: every certificate kubepki issued or imported");
  rootOpt(ledger.command("import"))
    .description("Record the certificates of a node kubepki did not issue, so they can be revoked")
    .addHelpText("after", "\nExample:\n  kubepki ledger import --root /")
    .action(async (f: Common) => {
      const [{ withLedger }, { importNode }] = await Promise.all([
        import("../ledger/record.js"),
        import("../node/ledger-import.js"),
      ]);
      const r = await withLedger(pathsOf(f).ledgerFile, (store) => importNode(store, resolve(f.root)));
      out(
        `imported ${r.imported} certificate(s); ${r.known} already known${r.unlinked ? `; ${r.unlinked} without their CA on this node` : ""}`,
      );
    });
  rootOpt(ledger.command("list"))
    .description("List ledger entries")
    .option("--status <status>", `${STATUSES.join(" | ")}`, (v: string) => {
      if (!(STATUSES as readonly string[]).includes(v))
        throw new InvalidArgumentError(`must be one of ${STATUSES.join(", ")}`);
      return v as Status;
    })
    .option(
      "--expiring <duration>",
      "only certificates expiring within this time (e.g. 30d)",
      duration("--expiring"),
    )
    .option("--user <name>", "only certificates of this subject CN")
    .option("-o, --output <format>", "text | json", outputFormat(["text", "json"]), "text")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki ledger list --root / --status revoked\n  kubepki ledger list --expiring 30d -o json",
    )
    .action(async (f: Common & { status?: Status; expiring?: number; user?: string; output: string }) => {
      const { withLedger } = await import("../ledger/record.js");
      const now = new Date();
      const rows = await withLedger(pathsOf(f).ledgerFile, (store) =>
        store.list(
          {
            status: f.status,
            user: f.user,
            expiresBefore: f.expiring ? new Date(now.getTime() + f.expiring) : undefined,
          },
          now,
        ),
      );
      if (f.output === "json") return out(JSON.stringify(rows, null, 2));
      out(
        table([
          ["STATUS", "SUBJECT", "SERIAL", "NOT AFTER", "PROFILE", "SHA-256"],
          ...rows.map((e) => [
            e.status,
            [...e.subjectO.map((o) => `O=${o}`), `CN=${e.subjectCN}`].join(","),
            e.serial,
            e.notAfter.slice(0, 16).replace("T", " "),
            e.profile,
            `${e.sha256.slice(0, 16)}…`,
          ]),
        ]),
      );
    });

  const issue = program.command("issue").description("Issue short-lived credentials");
  rootOpt(issue.command("client"))
    .description("A kubeconfig with a fresh key and a short-lived client certificate from the cluster CA")
    .requiredOption("--user <name>", "user name (certificate CN)")
    .option("--group <group>", "group (certificate O), repeatable", collect, [])
    .option("--ttl <duration>", "lifetime (default 8h)", duration("--ttl"))
    .option("--max-ttl <duration>", "refuse a --ttl longer than this (default 168h)", duration("--max-ttl"))
    .option("--server <url>", "API server URL (default: admin.conf's)")
    .option("--break-glass", "allow group system:masters (never revocable; recorded as such)")
    .requiredOption("--out <file>", "where to write the kubeconfig (mode 0600)")
    .option("-o, --output <format>", "text | json", outputFormat(["text", "json"]), "text")
    .addHelpText(
      "after",
      "\nExample:\n  kubepki issue client --root / --user jane --group dev --ttl 8h --out jane.kubeconfig",
    )
    .action(
      async (
        f: Common & {
          user: string;
          group: string[];
          ttl?: number;
          maxTtl?: number;
          server?: string;
          breakGlass?: boolean;
          out: string;
          output: string;
        },
      ) => {
        const [{ withLedger }, m] = await Promise.all([
          import("../ledger/record.js"),
          import("../revoke/issue-client.js"),
        ]);
        const paths = pathsOf(f);
        if (f.breakGlass && f.group.includes(m.SYSTEM_MASTERS))
          warn(
            "break-glass: this certificate is in system:masters. kube-apiserver allows it before any authorizer runs, so neither RBAC nor kubepki's webhook can stop it: only rotating the cluster CA can cut it off before it expires. Keep it offline and short.",
          );
        const r = await withLedger(paths.ledgerFile, (store) =>
          m.issueClient({
            paths,
            store,
            user: f.user,
            groups: f.group,
            ttlMs: f.ttl ?? m.DEFAULT_CLIENT_TTL_MS,
            maxTtlMs: f.maxTtl ?? m.DEFAULT_CLIENT_MAX_TTL_MS,
            breakGlass: !!f.breakGlass,
            server: f.server,
            out: resolve(f.out),
          }),
        );
        if (f.output === "json") return out(JSON.stringify(r, null, 2));
        out(
          `wrote ${r.out}: user ${r.user}${r.groups.length ? ` groups ${r.groups.join(",")}` : ""}, until ${r.notAfter}`,
        );
        out(`serial ${r.serial}, credential id ${r.credentialId}`);
      },
    );

  rootOpt(program.command("revoke"))
    .description("Revoke certificates: mark them in the ledger and rewrite the CRLs")
    .option("--serial <hex>", "serial number")
    .option(
      "--fingerprint <sha256>",
      "SHA-256 of the certificate (hex, with or without colons, or X509SHA256=...)",
    )
    .option("--user <name>", "every active certificate of this subject CN")
    .requiredOption(
      "--reason <reason>",
      "keyCompromise | superseded | cessationOfOperation | affiliationChanged | ...",
    )
    .option("-o, --output <format>", "text | json", outputFormat(["text", "json"]), "text")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki revoke --root / --user jane --reason keyCompromise\n  kubepki revoke --root / --serial 5f3a... --reason superseded",
    )
    .action(
      async (
        f: Common & { serial?: string; fingerprint?: string; user?: string; reason: string; output: string },
      ) => {
        const [{ withLedger }, m] = await Promise.all([
          import("../ledger/record.js"),
          import("../revoke/revoke.js"),
        ]);
        const reason = m.parseReason(f.reason);
        const paths = pathsOf(f);
        const r = await withLedger(paths.ledgerFile, (store) =>
          m.revokeCertificates(
            paths,
            store,
            { serial: f.serial, sha256: f.fingerprint, user: f.user },
            reason,
          ),
        );
        for (const e of r.unstoppable)
          warn(
            `${e.subjectCN} (serial ${e.serial}) is in system:masters: kube-apiserver allows it before any authorizer runs. It is in the CRLs, but only rotating the cluster CA cuts it off at the API server.`,
          );
        for (const s of r.crlSkipped) warn(`CRL for ${s.ca} not rewritten: ${s.reason}`);
        if (f.output === "json")
          return out(
            JSON.stringify(
              { revoked: r.revoked, crls: r.crls.map(({ der: _d, pem: _p, ...c }) => c) },
              null,
              2,
            ),
          );
        for (const e of r.revoked)
          out(`revoked ${e.subjectCN} serial ${e.serial} (${reason}) sha256 ${e.sha256}`);
        for (const c of r.crls) info(`rewrote ${c.path}: CRL number ${c.number}, ${c.revoked} revoked`);
      },
    );

  rootOpt(program.command("crl"))
    .description(
      "Write an X.509 v2 CRL signed by a CA, listing every certificate of that CA revoked in the ledger",
    )
    .option(
      "--ca <ca>",
      "ca | etcd-ca | front-proxy-ca",
      (v: string) => {
        if (!CAS.some((c) => c.id === v))
          throw new InvalidArgumentError(`must be one of ${CAS.map((c) => c.id).join(", ")}`);
        return v as CaId;
      },
      "ca",
    )
    .option("--out <file>", "where to write it (default: the CA's published CRL, DER, next to the CA)")
    .option("--der", "write DER instead of PEM (with --out)")
    .option("--validity <duration>", "nextUpdate - thisUpdate (default 30d)", duration("--validity"))
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki crl --root / --ca etcd-ca\n  kubepki crl --root / --ca ca --out ca.crl.pem",
    )
    .action(async (f: Common & { ca: CaId; out?: string; der?: boolean; validity?: number }) => {
      const [{ withLedger }, { publishCrl }] = await Promise.all([
        import("../ledger/record.js"),
        import("../revoke/crl.js"),
      ]);
      const paths = pathsOf(f);
      const c = await withLedger(paths.ledgerFile, (store) =>
        publishCrl(paths, store, f.ca, {
          out: f.out ? resolve(f.out) : undefined,
          der: f.der,
          validityMs: f.validity,
        }),
      );
      out(`wrote ${c.path}: CRL number ${c.number}, ${c.revoked} revoked, next update ${c.nextUpdate}`);
    });
}

export function registerServe(program: Command): void {
  rootOpt(program.command("serve"))
    .description("Run the authorization webhook that denies revoked client certificates at kube-apiserver")
    .option("--listen <host:port>", "address to listen on (loopback by default)", "127.0.0.1:8443")
    .option(
      "--allowed-cn <cn>",
      "client certificate CN allowed to call (repeatable; default: the one kubepki issues to kube-apiserver)",
      collect,
      [],
    )
    .option(
      "--deny-revoked-users",
      "also deny requests without a credential id (clusters before 1.32) by the user name of revoked certificates",
    )
    .option(
      "--setup-only",
      "write the certificates, webhook kubeconfig and AuthorizationConfiguration, then exit",
    )
    .addHelpText(
      "after",
      `
Examples:
  kubepki serve --root / --listen 127.0.0.1:8443
  kubepki serve --root / --setup-only     # then: kube-apiserver --authorization-config=/etc/kubernetes/kubepki/authorization-config.yaml`,
    )
    .action(
      async (
        f: Common & { listen: string; allowedCn: string[]; denyRevokedUsers?: boolean; setupOnly?: boolean },
      ) => {
        const [
          { openLedger },
          { setupWebhook, WEBHOOK_CLIENT_CN },
          { createWebhookServer },
          { readFileSync },
        ] = await Promise.all([
          import("../ledger/record.js"),
          import("../revoke/webhook-setup.js"),
          import("../revoke/webhook.js"),
          import("node:fs"),
        ]);
        const paths = pathsOf(f);
        const store = openLedger(paths.ledgerFile);
        const files = await setupWebhook(paths, store, f.listen);
        for (const i of files.issued) info(`issued ${i}`);
        info(
          `kube-apiserver: --authorization-config=${files.authorizationConfig.slice(paths.root.length) || files.authorizationConfig}`,
        );
        if (f.setupOnly) {
          store.close();
          return;
        }
        const hook = createWebhookServer({
          cert: readFileSync(files.serverCert, "utf8"),
          key: readFileSync(files.serverKey, "utf8"),
          ca: readFileSync(files.caCert, "utf8"),
          allowedCNs: f.allowedCn.length > 0 ? f.allowedCn : [WEBHOOK_CLIENT_CN],
          store,
          denyRevokedUsers: f.denyRevokedUsers,
        });
        await new Promise<void>((resolveListen, reject) => {
          hook.server.once("error", reject);
          hook.server.listen(files.listen.port, files.listen.host, () => resolveListen());
        });
        const addr = hook.server.address();
        const port = typeof addr === "object" && addr ? addr.port : files.listen.port;
        info(
          `kubepki serve: listening on https://${files.listen.host}:${port} (mTLS), /authorize /healthz /readyz /metrics`,
        );
        const stop = () => {
          hook.close().then(() => {
            store.close();
            process.exit(0);
          });
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
        await new Promise(() => {});
      },
    );
}
