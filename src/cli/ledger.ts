import { basename, dirname, resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { type LedgerEntry, STATUSES, type Status } from "../ledger/store.js";
import { type Common, duration, outputOpt, pathsOf, printData, rootOpt } from "./common.js";
import { out, table, warn } from "./output.js";

export function registerLedger(program: Command): void {
  const ledger = program
    .command("ledger")
    .description("The issuance ledger: every certificate kubepki issued or imported");
  rootOpt(ledger.command("init"), { signs: false })
    .description("Create an empty ledger (kubepki init creates one too); an existing ledger is kept")
    .addHelpText("after", "\nExample:\n  kubepki ledger init --root / && kubepki ledger import --root /")
    .action(async (f: Common) => {
      const [{ withLedger }, { exists }] = await Promise.all([
        import("../ledger/record.js"),
        import("../fsx/read.js"),
      ]);
      const file = pathsOf(f).ledgerFile;
      const existed = exists(file);
      const n = await withLedger(
        file,
        async (store) => (await store.list()).length,
        existed ? "existing" : "create",
      );
      out(existed ? `kept ${file}: ${n} certificate(s)` : `created ${file}`);
    });
  outputOpt(rootOpt(ledger.command("import"), { signs: false }))
    .description("Record the certificates of a node kubepki did not issue, so they can be revoked")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki ledger init --root / && kubepki ledger import --root /\n  kubepki ledger import --root / -o json",
    )
    .action(async (f: Common & { output: string }) => {
      const [{ withLedger }, { importNode }, { crlSignWarnings }] = await Promise.all([
        import("../ledger/record.js"),
        import("../node/ledger-import.js"),
        import("../revoke/ledger-check.js"),
      ]);
      const paths = pathsOf(f);
      const r = await withLedger(paths.ledgerFile, (store) => importNode(store, resolve(f.root)));
      for (const w of crlSignWarnings(paths)) warn(w);
      if (await printData(f.output, r)) return;
      out(
        `imported ${r.imported} certificate(s); ${r.known} already known${r.unlinked ? `; ${r.unlinked} without their CA on this node` : ""}`,
      );
    });
  outputOpt(rootOpt(ledger.command("list"), { signs: false }))
    .description("List ledger entries with each certificate's name and path, by profile and expiry")
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
      const root = resolve(f.root);
      const listed = rows
        .map((e) => ({ ...e, name: entryName(e), nodePath: nodePath(root, e.path) }))
        .sort((a, b) => a.profile.localeCompare(b.profile) || a.notAfter.localeCompare(b.notAfter));
      if (await printData(f.output, listed)) return;
      out(
        table([
          ["PROFILE", "NAME", "STATUS", "NOT AFTER", "SUBJECT", "SERIAL", "PATH"],
          ...listed.map((e) => [
            e.profile,
            e.name,
            e.status,
            e.notAfter.slice(0, 16).replace("T", " "),
            [...e.subjectO.map((o) => `O=${o}`), `CN=${e.subjectCN}`].join(","),
            e.serial,
            e.nodePath ?? "-",
          ]),
        ]),
      );
    });
  registerCheck(ledger);
}

function registerCheck(ledger: Command): void {
  outputOpt(rootOpt(ledger.command("verify"), { signs: false }))
    .description("Compare the ledger's revocations with the CRLs published on disk (exit 1 on a difference)")
    .addHelpText("after", "\nExample:\n  kubepki ledger verify --root /")
    .action(async (f: Common & { output: string }) => {
      const [{ withLedger }, { verifyLedger }] = await Promise.all([
        import("../ledger/record.js"),
        import("../revoke/ledger-check.js"),
      ]);
      const paths = pathsOf(f);
      const rows = await withLedger(paths.ledgerFile, (store) => verifyLedger(paths, store));
      const lost = rows.reduce((n, r) => n + r.onlyInCrl.length, 0);
      if (!(await printData(f.output, rows)))
        out(
          table([
            ["CA", "CRL NUMBER", "LEDGER NUMBER", "ONLY IN CRL", "ONLY IN LEDGER"],
            ...rows.map((r) => [
              r.ca,
              r.crlNumber ?? "(none)",
              r.ledgerNumber,
              String(r.onlyInCrl.length),
              String(r.onlyInLedger.length),
            ]),
          ]),
        );
      if (lost > 0)
        warn(`${lost} revocation(s) are in a published CRL but not in the ledger: run kubepki ledger repair`);
      for (const r of rows)
        if (r.onlyInLedger.length > 0) warn(`${r.ca}: republish its CRL (kubepki crl --ca ${r.ca})`);
      if (rows.some((r) => r.onlyInCrl.length > 0 || r.onlyInLedger.length > 0)) process.exitCode = 1;
    });
  rootOpt(ledger.command("repair"), { signs: false })
    .description("Restore into the ledger the revocations found only in a published CRL")
    .addHelpText("after", "\nExample:\n  kubepki ledger repair --root / && kubepki ledger verify --root /")
    .action(async (f: Common) => {
      const [{ withLedger }, { repairLedger }] = await Promise.all([
        import("../ledger/record.js"),
        import("../revoke/ledger-check.js"),
      ]);
      const paths = pathsOf(f);
      const r = await withLedger(paths.ledgerFile, (store) => repairLedger(paths, store));
      out(`restored ${r.restored} revocation(s); ${r.serialOnly} known only by serial`);
      if (r.serialOnly > 0)
        warn(
          `${r.serialOnly} revoked serial(s) are not in the ledger as certificates: every CRL keeps listing them (etcd refuses them), but kubepki serve matches fingerprints and cannot deny them; ledger import the certificates if you still have them`,
        );
    });
}

/** kubeadm's name for the file ("apiserver", "etcd/ca", "admin.conf"), else the profile. */
function entryName(e: LedgerEntry): string {
  if (!e.path) return e.profile;
  const parent = basename(dirname(e.path));
  return `${parent === "etcd" ? "etcd/" : ""}${basename(e.path).replace(/\.crt$/, "")}`;
}

/** The path as the node sees it when it lies under --root. */
function nodePath(root: string, path: string | undefined): string | undefined {
  if (!path || root === "/" || !path.startsWith(`${root}/`)) return path;
  return path.slice(root.length);
}
