import { dirname, join, relative, sep } from "node:path";
import type { Command } from "commander";
import { stringify } from "yaml";
import { InputError, IoError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists } from "../fsx/read.js";
import { recoverJournal, recoveryPending } from "../fsx/transaction.js";
import { missingLedgerMessage } from "../ledger/messages.js";
import { offlineBackupsDir } from "../pki/backup.js";
import { CAS, KUBECONFIGS, LEAVES } from "../pki/catalog.js";
import { humanDuration, kubeadmDate, parseDuration } from "../pki/duration.js";
import type { CertificateExpirationInfo, ExpirationRow } from "../pki/expiry.js";
import { crlPath, type TreePaths, treePaths } from "../pki/paths.js";
import { parseKeyAlgorithm } from "../x509/algorithms.js";
import { type OutputFormat, outputFormat } from "./common.js";
import { info, out, paint, progress, table, warn } from "./output.js";

export function registerCerts(program: Command): void {
  const certs = program.command("certs").description("Certificate lifecycle: check-expiration, renew");

  registerCheckExpiration(certs);
  registerRenew(certs);
}

function registerCheckExpiration(certs: Command): void {
  certs
    .command("check-expiration")
    .description(
      "List every certificate with its expiry, in kubeadm's columns, plus the kubelet's; exit 1 when one is missing, unreadable or expired",
    )
    .option("--root <dir>", "treat this folder as the node's /", "/")
    .option("--cert-dir <dir>", "certificates directory on the node", "/etc/kubernetes/pki")
    .option(
      "--offline-dir <dir>",
      "also check super-admin.conf, offline CA keys and other nodes' kubelet pairs (nodes/NAME/) here",
    )
    .option("-o, --output <format>", "text | json | yaml", outputFormat(["text", "json", "yaml"]), "text")
    .addHelpText(
      "after",
      `
Examples:
  kubepki certs check-expiration --root ./node
  kubepki certs check-expiration --root / --offline-dir /mnt/usb/kubepki
  kubepki certs check-expiration -o json | jq '.certificates[] | select(.residualTime < 2592000)'

Exit status: 0 all present and valid, 1 a certificate is missing, unreadable or expired (the
table still prints), 2 no PKI under --root or bad flags.`,
    )
    .action(async (flags: { root: string; certDir: string; offlineDir?: string; output: OutputFormat }) => {
      const paths = treePaths(flags.root, flags.certDir, flags.offlineDir);
      if (paths.offlineDir && !exists(paths.offlineDir))
        throw new InputError(`--offline-dir ${paths.offlineDir} does not exist`);
      // Read-only unless a killed run left a group to finish.
      if (recoveryPending(paths.journal))
        await withTreeLock(paths.stateDir, () => recoverJournal(paths.journal));
      const { checkExpiration, expirationProblems } = await import("../pki/expiry.js");
      const result = checkExpiration(paths);
      if (flags.output === "json") out(JSON.stringify(result, null, 2));
      else if (flags.output === "yaml") out(stringify(result).trimEnd());
      else printExpiration(result);
      const problems = expirationProblems(result);
      if (problems.length > 0) {
        const what = (r: ExpirationRow) => (r.missing ? "missing" : r.error ? "unreadable" : "expired");
        warn(`${problems.length} problem(s): ${problems.map((r) => `${r.name} ${what(r)}`).join(", ")}`);
        process.exitCode = 1;
      }
    });
}

function registerRenew(certs: Command): void {
  certs
    .command("renew")
    .description("Renew certificates with a new key and serial, atomically, keeping a backup")
    .argument("<names...>", "certificate names as check-expiration lists them, or all")
    .option("--root <dir>", "treat this folder as the node's /", "/")
    .option("--cert-dir <dir>", "certificates directory on the node", "/etc/kubernetes/pki")
    .option(
      "--offline-dir <dir>",
      "where offline CA keys, super-admin.conf and other nodes' kubelet pairs are kept",
    )
    .option("--algorithm <alg>", "key algorithm of the new keys (default: that of each old key)")
    .option("--cert-validity <duration>", "validity of the renewed certificates (default: 8760h)")
    .option("--dry-run", "show what would be renewed; write nothing")
    .option("--state <dir>", "folder of the issuance ledger (default: <root>/var/lib/kubepki)")
    .option("-o, --output <format>", "text | json | yaml", outputFormat(["text", "json", "yaml"]), "text")
    .addHelpText(
      "after",
      `
Names:
${renewableNames()}

Examples:
  kubepki certs renew all --root / --dry-run
  kubepki certs renew apiserver admin.conf --root ./node
  kubepki certs renew all --root ./node --offline-dir /mnt/usb/kubepki   # CA keys kept offline
  kubepki certs renew kubelet/worker1 --root / --offline-dir /mnt/usb/kubepki

Backups of replaced files: var/lib/kubepki/backups/<time>/ for the node's, <offline>/backups/<time>/
for the offline folder's (super-admin.conf, nodes/NAME/).`,
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
        if (flags.output === "json" || flags.output === "yaml") {
          const { issued: _issued, ...printable } = result;
          out(flags.output === "json" ? JSON.stringify(printable, null, 2) : stringify(printable).trimEnd());
          return;
        }
        for (const item of result.items) {
          if (item.action === "skipped") warn(`${item.name}: ${item.reason}`);
          else
            out(
              `${item.action === "renewed" ? "renewed" : "would renew"}  ${item.name}  (until ${item.notAfter})`,
            );
        }
        for (const [dir, n] of backupFolders(result.backedUp, paths))
          info(`backed up ${n} file(s) under ${dir}`);
        for (const line of afterRenew(result.items)) info(line);
        notAllRenewed(result.items, !!flags.dryRun);
      },
    );
}

/** What to restart or copy after a renewal, per kind of certificate renewed. */
function afterRenew(items: { name: string; action: string; path: string }[]): string[] {
  const renewed = items.filter((i) => i.action === "renewed");
  const lines: string[] = [];
  if (renewed.some((i) => i.name !== "kubelet" && !i.name.startsWith("kubelet/")))
    lines.push(
      "Done renewing certificates. Restart kube-apiserver, kube-controller-manager, kube-scheduler and etcd so that they use the new certificates.",
    );
  if (renewed.some((i) => i.name === "kubelet"))
    lines.push("Restart the kubelet (systemctl restart kubelet).");
  for (const i of renewed.filter((r) => r.name.startsWith("kubelet/")))
    lines.push(
      `Copy ${dirname(i.path)}/kubelet.crt and kubelet.key to /var/lib/kubelet/pki/ on ${i.name.slice(8)} (key mode 0600), then restart its kubelet.`,
    );
  return lines;
}

/** The names `certs renew` accepts, from the catalog (kubeadm's order: by name). */
function renewableNames(): string {
  const kubeadm = [...LEAVES.map((l) => l.id), ...KUBECONFIGS.filter((k) => k.renewable).map((k) => k.id)];
  const wrapped: string[] = [];
  for (const name of kubeadm.sort()) {
    const last = wrapped.at(-1);
    if (last !== undefined && last.length + name.length < 96)
      wrapped[wrapped.length - 1] = `${last}, ${name}`;
    else wrapped.push(`  ${name}`);
  }
  const lines = [
    wrapped.join(",\n"),
    "  kubelet            this node's kubelet serving certificate (var/lib/kubelet/pki/kubelet.crt)",
    "  kubelet/NAME       node NAME's kubelet serving pair in <offline>/nodes/NAME/ (needs --offline-dir)",
    "  all                every certificate of this node above (super-admin.conf with --offline-dir;",
    "                     kubelet/NAME only by name)",
  ];
  return lines.join("\n");
}

/** How many backups went to each backup folder (the node's, the offline folder's). */
function backupFolders(backedUp: string[], paths: TreePaths): Map<string, number> {
  const roots = [paths.backupsDir, ...(paths.offlineDir ? [offlineBackupsDir(paths.offlineDir)] : [])];
  const counts = new Map<string, number>();
  for (const b of backedUp) {
    const base = roots.find((r) => b.startsWith(r + sep)) ?? dirname(b);
    const dir = join(base, relative(base, b).split(sep)[0] ?? "");
    counts.set(dir, (counts.get(dir) ?? 0) + 1);
  }
  return counts;
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
function notAllRenewed(
  items: { name: string; action: string; reason?: string; deliberate?: boolean }[],
  dryRun: boolean,
): void {
  if (dryRun) return;
  // Deliberate skips (an offline file, the kubelet's own pair) are notes, unless nothing was renewed.
  const renewedAny = items.some((i) => i.action === "renewed");
  const skipped = items.filter((i) => i.action === "skipped" && (!i.deliberate || !renewedAny));
  if (skipped.length === 0) return;
  const renewed = items.filter((i) => i.action === "renewed").length;
  throw new IoError(
    `${renewed === 0 ? "nothing was renewed" : `${renewed} renewed, ${skipped.length} not`}; what is left:\n  - ${skipped.map((s) => `${s.name}: ${s.reason ?? ""}`).join("\n  - ")}`,
  );
}

function printExpiration(report: CertificateExpirationInfo): void {
  const fmt = (r: ExpirationRow, withCa: boolean) => {
    if (r.offline && !r.expirationDate && !r.missing && !r.error) return [r.name, "(offline)"];
    if (r.missing) return [`!MISSING! ${r.name}`];
    if (r.error) {
      warn(`${r.name}: ${r.error}`);
      return [`!INVALID! ${r.name}`];
    }
    if (r.warning) warn(`${r.name}: ${r.warning}`);
    const row = [r.name, kubeadmDate(new Date(r.expirationDate ?? 0)), humanDuration(r.residualTime * 1000)];
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
  const offline = report.certificates.filter((r) => r.offline && !r.expirationDate && !r.missing && !r.error);
  if (offline.length > 0)
    info(
      `${offline.map((r) => r.name).join(", ")}: kept off the node; pass --offline-dir to check ${offline.length > 1 ? "them" : "it"}`,
    );
  const expiring = report.certificates.filter(
    (r) => !r.missing && !r.error && r.expirationDate && r.residualTime > 0 && r.residualTime < 30 * 86400,
  );
  if (expiring.length > 0)
    warn(paint(`${expiring.length} certificate(s) expire within 30 days`, "yellow", process.stderr));
}
