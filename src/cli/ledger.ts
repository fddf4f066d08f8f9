import type { Command } from "commander";
import type { LedgerListRequest } from "../app/ledger.js";
import { ExitCode } from "../errors.js";
import { STATUSES } from "../ledger/store.js";
import { act, type Common, duration, oneOf, printData, warnAll, withFlags, withOutput } from "./common.js";
import { out, table } from "./output.js";

const TREE = { root: true, ledger: true } as const;

export function registerLedger(program: Command): void {
  const ledger = program
    .command("ledger")
    .description("The issuance ledger: every certificate kubepki issued or imported");
  const init = withFlags(ledger.command("init"), TREE)
    .description("Create an empty ledger (kubepki init creates one too); an existing ledger is kept")
    .addHelpText("after", "\nExample:\n  kubepki ledger init --root / && kubepki ledger import --root /");
  act(init, async (f: Common) => {
    const { ledgerInit } = await import("../app/ledger.js");
    const r = await ledgerInit(f);
    out(r.created ? `created ${r.file}` : `kept ${r.file}: ${r.entries} certificate(s)`);
    return undefined;
  });
  const imp = withOutput(withFlags(ledger.command("import"), TREE))
    .description("Record the certificates of a node kubepki did not issue, so they can be revoked")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki ledger init --root / && kubepki ledger import --root /\n  kubepki ledger import --root / -o json",
    );
  act(imp, async ({ output, ...tree }: Common & { output: string }) => {
    const { ledgerImport } = await import("../app/ledger.js");
    const { notices, ...r } = await ledgerImport(tree);
    warnAll(notices);
    if (!(await printData(output, r)))
      out(
        `imported ${r.imported} certificate(s); ${r.known} already known${r.unlinked ? `; ${r.unlinked} without their CA on this node` : ""}`,
      );
    return undefined;
  });
  registerMigrate(ledger);
  registerList(ledger);
  registerCheck(ledger);
}

function registerList(ledger: Command): void {
  const cmd = withOutput(withFlags(ledger.command("list"), TREE))
    .description("List ledger entries with each certificate's name and path, by profile and expiry")
    .option("--status <status>", `${STATUSES.join(" | ")}`, oneOf(STATUSES))
    .option(
      "--expiring <duration>",
      "only certificates expiring within this time (e.g. 30d)",
      duration("--expiring"),
    )
    .option("--user <name>", "only certificates of this subject CN")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki ledger list --root / --status revoked\n  kubepki ledger list --expiring 30d -o json",
    );
  act(cmd, async ({ output, ...req }: LedgerListRequest & { output: string }) => {
    const { ledgerList } = await import("../app/ledger.js");
    const listed = await ledgerList(req);
    if (await printData(output, listed)) return undefined;
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
    return undefined;
  });
}

function registerCheck(ledger: Command): void {
  const verify = withOutput(withFlags(ledger.command("verify"), TREE))
    .description("Compare the ledger's revocations with the CRLs published on disk (exit 1 on a difference)")
    .addHelpText("after", "\nExample:\n  kubepki ledger verify --root /");
  act(verify, async ({ output, ...tree }: Common & { output: string }) => {
    const { ledgerVerify } = await import("../app/ledger.js");
    const { rows, differs, notices } = await ledgerVerify(tree);
    if (!(await printData(output, rows)))
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
    warnAll(notices);
    return differs ? ExitCode.Findings : undefined;
  });
  const repair = withFlags(ledger.command("repair"), TREE)
    .description("Restore into the ledger the revocations found only in a published CRL")
    .addHelpText("after", "\nExample:\n  kubepki ledger repair --root / && kubepki ledger verify --root /");
  act(repair, async (f: Common) => {
    const { ledgerRepair } = await import("../app/ledger.js");
    const r = await ledgerRepair(f);
    out(`restored ${r.restored} revocation(s); ${r.serialOnly} known only by serial`);
    warnAll(r.notices);
    return undefined;
  });
}

function registerMigrate(ledger: Command): void {
  const cmd = withOutput(withFlags(ledger.command("migrate"), { root: true, ledger: true }))
    .description("Copy the ledger between SQLite and etcd (either way); idempotent, verified after copying")
    .requiredOption("--from <url>", "the ledger to copy: sqlite:PATH or etcd://HOST:PORT[,...]")
    .requiredOption("--to <url>", "where to copy it (created if missing; what it holds is kept)")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki ledger migrate --root / --from sqlite:/var/lib/kubepki/ledger.db --to etcd://10.0.0.11:2379,10.0.0.12:2379\n  kubepki ledger migrate --root / --from etcd://10.0.0.11:2379 --to sqlite:/var/backups/ledger.db",
    );
  act(cmd, async ({ output, ...req }: Common & { from: string; to: string; output: string }) => {
    const { ledgerMigrate } = await import("../app/ledger.js");
    const r = await ledgerMigrate(req);
    if (!(await printData(output, r)))
      out(
        `copied ${r.entries} entries from ${r.from} to ${r.to}: ${r.added} new, ${r.revoked} revoked, ${r.superseded} superseded, ${r.serialOnly} serial-only revocations, ${r.crlCounters} CRL counter(s) raised; ${r.verified} fingerprints verified`,
      );
    return undefined;
  });
}
