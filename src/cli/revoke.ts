import type { Command } from "commander";
import { IoError } from "../errors.js";
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
    .option("--force", "also revoke control-plane identities still in use (the cluster loses them)")
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki revoke --root / --user jane --reason keyCompromise\n  kubepki revoke --root / --serial 5f3a... --reason superseded\n  kubepki certs renew apiserver-etcd-client --root / && kubepki revoke --root / --serial <old serial> --reason keyCompromise",
    )
    .action(
      async (
        f: Common & {
          serial?: string;
          fingerprint?: string;
          user?: string;
          reason: string;
          force?: boolean;
          output: string;
        },
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
            { force: f.force },
          ),
        );
        for (const e of r.unstoppable)
          warn(
            `${e.subjectCN} (serial ${e.serial}) is in system:masters: kube-apiserver allows it before any authorizer runs. It is in the CRLs, but only rotating the cluster CA cuts it off at the API server.`,
          );
        for (const c of r.crls) if (c.warning) warn(c.warning);
        const data = {
          revoked: r.revoked,
          crls: r.crls.map(({ der: _d, pem: _p, ...c }) => c),
          crlSkipped: r.crlSkipped,
        };
        if (!(await printData(f.output, data))) {
          for (const e of r.revoked)
            out(`revoked ${e.subjectCN} serial ${e.serial} (${reason}) sha256 ${e.sha256}`);
          for (const c of r.crls) info(`rewrote ${c.path}: CRL number ${c.number}, ${c.revoked} revoked`);
        }
        // Recorded in the ledger (the webhook denies it), but etcd still accepts it: not done.
        if (r.crlSkipped.length > 0) throw crlsLeft(f.root, r.crlSkipped);
      },
    );
}

function crlsLeft(root: string, skipped: { ca: string; reason: string }[]): IoError {
  const left = skipped.map((s) =>
    s.ca.startsWith("issuer ")
      ? `  - ${s.ca}: ${s.reason}; publish a CRL with the CA that issued it`
      : `  - ${s.ca}: ${s.reason}\n    What is left: kubepki crl --root ${root} --ca ${s.ca} --offline-dir <where the CA key is>`,
  );
  return new IoError(
    `revoked in the ledger (kubepki serve denies it), but a CRL was not rewritten, so etcd still accepts the certificate:\n${left.join("\n")}`,
  );
}
