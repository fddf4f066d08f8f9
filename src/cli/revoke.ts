import type { Command } from "commander";
import type { RevokeRequest } from "../app/revoke.js";
import { act, printData, warnAll, withFlags, withOutput } from "./common.js";
import { info, out } from "./output.js";

export function registerRevoke(program: Command): void {
  const cmd = program
    .command("revoke")
    .description("Revoke certificates: mark them in the ledger and rewrite the CRLs");
  withOutput(withFlags(cmd, { root: true, ledger: true, offlineDir: true }))
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
    .option("--force", "also revoke control-plane identities still in use (the cluster loses them)")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki revoke --root / --user jane --reason keyCompromise\n  kubepki revoke --root / --serial 5f3a... --reason superseded\n  kubepki certs renew apiserver-etcd-client --root / && kubepki revoke --root / --serial <old serial> --reason keyCompromise",
    );
  act(cmd, async ({ output, ...req }: RevokeRequest & { output: string }) => {
    const { revoke } = await import("../app/revoke.js");
    const r = await revoke(req);
    warnAll(r.notices);
    if (!(await printData(output, { revoked: r.revoked, crls: r.crls, crlSkipped: r.crlSkipped }))) {
      for (const e of r.revoked)
        out(`revoked ${e.subjectCN} serial ${e.serial} (${r.reason}) sha256 ${e.sha256}`);
      for (const c of r.crls) info(`rewrote ${c.path}: CRL number ${c.number}, ${c.revoked} revoked`);
    }
    // Recorded in the ledger (the webhook denies it), but etcd still accepts it: not done.
    if (r.unfinished) throw r.unfinished;
    return undefined;
  });
}
