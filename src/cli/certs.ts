import type { Command } from "commander";
import type { RenewRequest } from "../app/certs.js";
import { ExitCode } from "../errors.js";
import { KUBECONFIGS, LEAVES } from "../pki/catalog.js";
import { humanDuration, kubeadmDate } from "../pki/duration.js";
import type { CertificateExpirationInfo, ExpirationRow } from "../pki/expiry.js";
import { act, type Common, type OutputFormat, printData, warnAll, withFlags, withOutput } from "./common.js";
import { info, out, paint, progress, table, warn } from "./output.js";

export function registerCerts(program: Command): void {
  const certs = program.command("certs").description("Certificate lifecycle: check-expiration, renew");

  registerCheckExpiration(certs);
  registerRenew(certs);
}

function registerCheckExpiration(certs: Command): void {
  const cmd = certs
    .command("check-expiration")
    .description(
      "List every certificate with its expiry, in kubeadm's columns, plus the kubelet's; exit 1 when one is missing, unreadable or expired",
    );
  withFlags(cmd, {
    root: true,
    certDir: true,
    offlineDir:
      "also check super-admin.conf, offline CA keys and other nodes' kubelet pairs (nodes/NAME/) here",
  });
  withOutput(cmd).addHelpText(
    "after",
    `
Examples:
  kubepki certs check-expiration --root ./node
  kubepki certs check-expiration --root / --offline-dir /mnt/usb/kubepki
  kubepki certs check-expiration -o json | jq '.certificates[] | select(.residualTime < 2592000)'

Exit status: 0 all present and valid, 1 a certificate is missing, unreadable or expired (the
table still prints), 2 no PKI under --root or bad flags.`,
  );
  act(cmd, async ({ output, ...tree }: Common & { output: OutputFormat }) => {
    const { checkExpiration } = await import("../app/certs.js");
    const { report, problems } = await checkExpiration(tree);
    if (!(await printData(output, machineForm(report)))) printExpiration(report);
    if (problems.length === 0) return undefined;
    const what = (r: ExpirationRow) => (r.missing ? "missing" : r.error ? "unreadable" : "expired");
    warn(`${problems.length} problem(s): ${problems.map((r) => `${r.name} ${what(r)}`).join(", ")}`);
    return ExitCode.Findings;
  });
}

function registerRenew(certs: Command): void {
  const cmd = certs
    .command("renew")
    .description("Renew certificates with a new key and serial, atomically, keeping a backup")
    .argument("<names...>", "certificate names as check-expiration lists them, or all");
  withFlags(cmd, {
    root: true,
    certDir: true,
    offlineDir: "where offline CA keys, super-admin.conf and other nodes' kubelet pairs are kept",
  })
    .option("--algorithm <alg>", "key algorithm of the new keys (default: that of each old key)")
    .option("--cert-validity <duration>", "validity of the renewed certificates (default: 8760h)")
    .option("--dry-run", "show what would be renewed; write nothing");
  withOutput(withFlags(cmd, { ledger: true })).addHelpText(
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
  );
  act(
    cmd,
    async (names: string[], { output, ...req }: Omit<RenewRequest, "names"> & { output: OutputFormat }) => {
      const { renewCertificates } = await import("../app/certs.js");
      const bar = progress("generating keys");
      const r = await renewCertificates({ ...req, names, onKey: bar.tick });
      bar.end();
      warnAll(r.notices);
      if (await printData(output, r.result)) return undefined;
      for (const item of r.result.items) {
        if (item.action === "skipped") warn(`${item.name}: ${item.reason}`);
        else
          out(
            `${item.action === "renewed" ? "renewed" : "would renew"}  ${item.name}  (until ${item.notAfter})`,
          );
      }
      for (const b of r.backups) info(`backed up ${b.files} file(s) under ${b.dir}`);
      for (const line of r.nextSteps) info(line);
      if (r.unfinished) throw r.unfinished;
      return undefined;
    },
  );
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

/** The report as -o json and -o yaml print it: kubeadm's shape, each row's error as its message. */
function machineForm(report: CertificateExpirationInfo) {
  const row = (r: ExpirationRow) => (r.error ? { ...r, error: r.error.message } : r);
  return {
    ...report,
    certificates: report.certificates.map(row),
    certificateAuthorities: report.certificateAuthorities.map(row),
  };
}

function printExpiration(report: CertificateExpirationInfo): void {
  const fmt = (r: ExpirationRow, withCa: boolean) => {
    if (r.offline && !r.expirationDate && !r.missing && !r.error) return [r.name, "(offline)"];
    if (r.missing) return [`!MISSING! ${r.name}`];
    if (r.error) {
      warn(`${r.name}: ${r.error.message}`);
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
