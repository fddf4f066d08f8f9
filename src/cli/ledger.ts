import { basename, dirname, resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { type LedgerEntry, STATUSES, type Status } from "../ledger/store.js";
import { type Common, duration, outputOpt, pathsOf, printData, rootOpt } from "./common.js";
import { out, table } from "./output.js";

export function registerLedger(program: Command): void {
  const ledger = program
    .command("ledger")
    .description("The issuance ledger: every certificate kubepki issued or imported");
  outputOpt(rootOpt(ledger.command("import"), { signs: false }))
    .description("Record the certificates of a node kubepki did not issue, so they can be revoked")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki ledger import --root /\n  kubepki ledger import --root / -o json",
    )
    .action(async (f: Common & { output: string }) => {
      const [{ withLedger }, { importNode }] = await Promise.all([
        import("../ledger/record.js"),
        import("../node/ledger-import.js"),
      ]);
      const r = await withLedger(pathsOf(f).ledgerFile, (store) => importNode(store, resolve(f.root)));
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
