import type { Command } from "commander";
import { type Common, outputOpt, pathsOf, printData, rootOpt } from "./common.js";
import { info, out, warn } from "./output.js";

export function registerRevoke(program: Command): void {
  outputOpt(rootOpt(program.command("revoke")))
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
        if (
          await printData(f.output, {
            revoked: r.revoked,
            crls: r.crls.map(({ der: _d, pem: _p, ...c }) => c),
          })
        )
          return;
        for (const e of r.revoked)
          out(`revoked ${e.subjectCN} serial ${e.serial} (${reason}) sha256 ${e.sha256}`);
        for (const c of r.crls) info(`rewrote ${c.path}: CRL number ${c.number}, ${c.revoked} revoked`);
      },
    );
}
