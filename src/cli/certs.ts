import type { Command } from "commander";
import { stringify } from "yaml";
import { IoError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists } from "../fsx/read.js";
import { recoverJournal } from "../fsx/transaction.js";
import { missingLedgerMessage } from "../ledger/messages.js";
import { CAS } from "../pki/catalog.js";
import { humanDuration, kubeadmDate } from "../pki/duration.js";
import type { CertificateExpirationInfo, ExpirationRow } from "../pki/expiry.js";
import { crlPath, type TreePaths, treePaths } from "../pki/paths.js";
import { parseDuration } from "../pki/validate.js";
import { parseKeyAlgorithm } from "../x509/algorithms.js";
import { type OutputFormat, outputFormat } from "./common.js";
import { info, out, paint, progress, table, warn } from "./output.js";

export function registerCerts(program: Command): void {
  const certs = program.command("certs").description("Certificate lifecycle: check-expiration, renew");

  certs
    .command("check-expiration")
    .description("List every certificate with its expiry, in kubeadm's columns, plus the kubelet's")
    .option("--root <dir>", "treat this folder as the node's /", "/")
    .option("--cert-dir <dir>", "certificates directory on the node", "/etc/kubernetes/pki")
    .option("--offline-dir <dir>", "also look here for super-admin.conf and offline CA keys")
    .option("-o, --output <format>", "text | json | yaml", outputFormat(["text", "json", "yaml"]), "text")
    .addHelpText(
      "after",
      `
Examples:
  kubepki certs check-expiration --root ./node
  kubepki certs check-expiration -o json | jq '.certificates[] | select(.residualTime < 2592000)'`,
    )
    .action(async (flags: { root: string; certDir: string; offlineDir?: string; output: OutputFormat }) => {
      const paths = treePaths(flags.root, flags.certDir, flags.offlineDir);
      // Read-only unless a killed run left a group to finish.
      if (exists(paths.journal)) await withTreeLock(paths.stateDir, () => recoverJournal(paths.journal));
      const { checkExpiration } = await import("../pki/expiry.js");
      const result = checkExpiration(paths);
      if (flags.output === "json") out(JSON.stringify(result, null, 2));
      else if (flags.output === "yaml") out(stringify(result).trimEnd());
      else printExpiration(result);
    });

  certs
    .command("renew")
    .description("Renew certificates with a new key and serial, atomically, keeping a backup")
    .argument("<names...>", "certificate names as check-expiration lists them, or all")
    .option("--root <dir>", "treat this folder as the node's /", "/")
    .option("--cert-dir <dir>", "certificates directory on the node", "/etc/kubernetes/pki")
    .option("--offline-dir <dir>", "where offline CA keys (and super-admin.conf) are kept")
    .option("--algorithm <alg>", "key algorithm of the new keys (default: that of each old key)")
    .option("--cert-validity <duration>", "validity of the renewed certificates (default: 8760h)")
    .option("--dry-run", "show what would be renewed; write nothing")
    .option("--state <dir>", "folder of the issuance ledger (default: <root>/var/lib/kubepki)")
    .option("-o, --output <format>", "text | json", outputFormat(["text", "json"]), "text")
    .addHelpText(
      "after",
      `
Examples:
  kubepki certs renew all --root / --dry-run
  kubepki certs renew apiserver admin.conf --root ./node
  kubepki certs renew all --root ./node --offline-dir /mnt/usb/kubepki   # CA keys kept offline`,
    )
    .action(
      async (
        names: string[],
        flags: {
          root: string;
          certDir: string;
          offlineDir?: string;
          algorithm?: string;
          certValidity?: string;
          dryRun?: boolean;
          state?: string;
          output: OutputFormat;
        },
      ) => {
        const { renewCertificates } = await import("../pki/renew.js");
        const paths = treePaths(flags.root, flags.certDir, flags.offlineDir, flags.state);
        const record = flags.dryRun ? false : ledgerForRenew(paths);
        const bar = progress("generating keys");
        const result = await renewCertificates({
          paths,
          names,
          dryRun: flags.dryRun,
          algorithm: flags.algorithm ? parseKeyAlgorithm(flags.algorithm, "--algorithm") : undefined,
          certValidityMs: flags.certValidity
            ? parseDuration(flags.certValidity, "--cert-validity")
            : undefined,
          onKey: bar.tick,
        });
        bar.end();
        if (record && result.issued.length > 0) {
          const { withLedger, recordIssued } = await import("../ledger/record.js");
          await withLedger(paths.ledgerFile, (store) =>
            recordIssued(store, result.issued, result.superseded),
          );
        }
        if (flags.output === "json") {
          const { issued: _issued, ...printable } = result;
          out(JSON.stringify(printable, null, 2));
          return;
        }
        for (const item of result.items) {
          if (item.action === "skipped") warn(`${item.name}: ${item.reason}`);
          else
            out(
              `${item.action === "renewed" ? "renewed" : "would renew"}  ${item.name}  (until ${item.notAfter})`,
            );
        }
        if (result.backedUp.length > 0)
          info(`backed up ${result.backedUp.length} file(s) under var/lib/kubepki/backups`);
        if (result.items.some((i) => i.action === "renewed"))
          info(
            "Done renewing certificates. Restart kube-apiserver, kube-controller-manager, kube-scheduler and etcd so that they use the new certificates.",
          );
        notAllRenewed(result.items, !!flags.dryRun);
      },
    );
}

/**
 * Renewals are recorded in the ledger. A tree with published CRLs had one: its loss is refused
 * (an empty new one would forget every revocation); a tree kubepki never managed is renewed
 * without recording, with a warning.
 */
function ledgerForRenew(paths: TreePaths): boolean {
  if (exists(paths.ledgerFile)) return true;
  const crls = CAS.map((c) => crlPath(paths, c.id)).filter(exists);
  if (crls.length > 0)
    throw new IoError(
      missingLedgerMessage(paths.ledgerFile, `does not exist, though ${crls[0]} was published from it`),
    );
  warn(
    `no ledger at ${paths.ledgerFile}: the renewed certificates are not recorded (kubepki ledger init && kubepki ledger import record them)`,
  );
  return false;
}

/** A renewal that left something undone exits non-zero and says what is left. */
function notAllRenewed(items: { name: string; action: string; reason?: string }[], dryRun: boolean): void {
  if (dryRun) return;
  const skipped = items.filter((i) => i.action === "skipped");
  if (skipped.length === 0) return;
  const renewed = items.length - skipped.length;
  throw new IoError(
    `${renewed === 0 ? "nothing was renewed" : `${renewed} renewed, ${skipped.length} not`}; what is left:\n  - ${skipped.map((s) => `${s.name}: ${s.reason ?? ""}`).join("\n  - ")}`,
  );
}

function printExpiration(report: CertificateExpirationInfo): void {
  const fmt = (r: ExpirationRow, withCa: boolean) => {
    if (r.missing) return [`!MISSING! ${r.name}`];
    if (r.error) {
      warn(`${r.name}: ${r.error}`);
      return [`!INVALID! ${r.name}`];
    }
    const residual = humanDuration(r.residualTime * 1000);
    const row = [
      r.name,
      kubeadmDate(new Date(r.expirationDate ?? 0)),
      r.residualTime < 0 ? residual : residual,
    ];
    if (withCa) row.push(r.caName ?? "");
    row.push(r.externallyManaged ? "yes" : "no");
    return row;
  };
  out(
    table([
      ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"],
      ...report.certificates.map((r) => fmt(r, true)),
    ]),
  );
  out("");
  out(
    table([
      ["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"],
      ...report.certificateAuthorities.map((r) => fmt(r, false)),
    ]),
  );
  const expiring = report.certificates.filter((r) => !r.missing && !r.error && r.residualTime < 30 * 86400);
  if (expiring.length > 0)
    warn(paint(`${expiring.length} certificate(s) expire within 30 days`, "yellow", process.stderr));
}
