import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { STATUSES, type Status } from "../ledger/store.js";
import { type Common, duration, outputFormat, pathsOf, rootOpt } from "./common.js";
import { out, table } from "./output.js";

export function registerLedger(program: Command): void {
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
}
