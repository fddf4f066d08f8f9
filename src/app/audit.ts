import { dirname, resolve } from "node:path";
import { type Severity, severityRank } from "../audit/finding.js";
import type { Distro } from "../layout/types.js";
import type { AuditReport } from "../report/model.js";
import type { StoreSettings } from "./init.js";

export type ReportFormat = "text" | "json" | "yaml" | "sarif" | "html";

export interface AuditRequest extends StoreSettings {
  /** The node's / (or a mounted image of it). */
  root: string;
  /** Override detection (kubeadm, k3s, rke2, ...). */
  distro?: Distro;
  /** Also read the flags of running processes (/proc/<pid>/cmdline), with root "/". */
  processes?: boolean;
  /** "cis" (CIS 1.11/1.12 modes, default) or "strict" (certificates 600 too). */
  profile?: "cis" | "strict";
  /** Report leaf certificates expiring within this many days (default 30). */
  expiringDays?: number;
  /** The outcome fails when a finding at or above this severity exists. */
  failOn?: Severity;
  now?: Date;
  /** The older name of `store: "sqlite:DIR/ledger.db"`. */
  state?: string;
}

export interface AuditOutcome {
  report: AuditReport;
  /** A finding at or above failOn exists (`kubepki audit --fail-on` exits 1). */
  failed: boolean;
}

/** `kubepki audit`: inspects a node read-only and reports every weakness of its PKI and TLS wiring. */
export async function audit(req: AuditRequest): Promise<AuditOutcome> {
  const [{ auditNode }, { buildReport }] = await Promise.all([
    import("../audit/audit.js"),
    import("../report/model.js"),
  ]);
  const result = auditNode({
    root: req.root.trim() === "" ? "" : resolve(req.root),
    distro: req.distro,
    processes: req.processes,
    profile: req.profile,
    expiringDays: req.expiringDays,
    now: req.now,
    revoked: req.store || req.state ? await revokedIn(req) : undefined,
  });
  const report = buildReport(result);
  const limit = req.failOn ? severityRank(req.failOn) : Number.POSITIVE_INFINITY;
  return { report, failed: report.findings.some((f) => severityRank(f.severity) >= limit) };
}

/** The revocations of the ledger --store names (etcd, or another SQLite file), read only. */
async function revokedIn(req: AuditRequest): Promise<Map<string, { reason?: string; revokedAt?: string }>> {
  const [{ withLedger }, { storeOf }] = await Promise.all([
    import("../ledger/record.js"),
    import("./tree.js"),
  ]);
  const target = await storeOf({ ...req, root: resolve(req.root) });
  const revoked = await withLedger(
    target,
    (s) => s.revoked(),
    target.kind === "sqlite" ? "readonly" : "existing",
  );
  return new Map(revoked.map((e) => [e.sha256, { reason: e.reason, revokedAt: e.revokedAt }]));
}

/** The report as text (colour optional), JSON, YAML, SARIF 2.1.0 or a self-contained HTML page. */
export async function renderReport(
  report: AuditReport,
  format: ReportFormat,
  color = false,
): Promise<string> {
  if (format === "json") return `${JSON.stringify(report, null, 2)}\n`;
  if (format === "yaml") return (await import("yaml")).stringify(report);
  if (format === "sarif") return (await import("../report/sarif.js")).renderSarif(report);
  if (format === "html") return (await import("../report/html.js")).renderHtml(report);
  return (await import("../report/text.js")).renderText(report, color);
}

/**
 * Writes a rendered report to `out` (atomically, 0644), confined as every use case's writes are: a
 * link inside root that leads out of it is refused.
 */
export async function writeReport(root: string, out: string, text: string): Promise<void> {
  const [{ writeFileAtomic }, { confineWrites }] = await Promise.all([
    import("../fsx/atomic.js"),
    import("../fsx/confine.js"),
  ]);
  const file = resolve(out);
  confineWrites([root.trim() === "" ? undefined : root, dirname(file)], () =>
    writeFileAtomic(file, text, 0o644),
  );
}
