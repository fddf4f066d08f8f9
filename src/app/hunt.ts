import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Severity, severityRank } from "../audit/finding.js";
import { InputError } from "../errors.js";
import type { KnownCert } from "../hunt/findings.js";
import type { StoreTarget } from "../ledger/target.js";
import type { HuntReport } from "../report/hunt-model.js";
import { type Duration, durationMs, storeOf, type TreeOptions } from "./tree.js";

export type HuntFormat = "text" | "json" | "yaml" | "sarif";

export interface HuntRequest extends TreeOptions {
  /** kube-apiserver audit logs (JSON lines; plain, gzip or rotated); a folder stands for every file in it. */
  auditLogs: string[];
  /**
   * How long after a revocation requests may still get through: kube-apiserver's unauthorizedTTL
   * (10 s in kubepki's AuthorizationConfiguration) plus the webhook's reload (1 s). Default "11s".
   */
  cacheDelay?: Duration;
  /** The outcome fails when a finding at or above this severity exists. */
  failOn?: Severity;
  now?: Date;
}

export interface HuntOutcome {
  report: HuntReport;
  /** A finding at or above failOn exists (`kubepki hunt --fail-on` exits 1). */
  failed: boolean;
}

/**
 * `kubepki hunt`: reads kube-apiserver audit logs, streaming, and joins every client certificate
 * that authenticated (its X509SHA256 credential id) with the ledger, opened read-only.
 */
export async function hunt(req: HuntRequest): Promise<HuntOutcome> {
  const files = expandLogs(req.auditLogs);
  const cacheDelayMs = (await durationMs(req.cacheDelay, "--cache-delay")) ?? 11_000;
  const [{ huntLogs }, { buildHuntReport }] = await Promise.all([
    import("../hunt/hunt.js"),
    import("../report/hunt-model.js"),
  ]);
  const [target, { describeTarget }] = await Promise.all([storeOf(req), import("../ledger/target.js")]);
  const ledgerPath = describeTarget(target);
  const ledger = await readLedger(target);
  const result = await huntLogs({ files, ledger, cacheDelayMs });
  const report = buildHuntReport({ result, ledger, ledgerPath, cacheDelayMs, now: req.now ?? new Date() });
  const limit = req.failOn ? severityRank(req.failOn) : Number.POSITIVE_INFINITY;
  return { report, failed: report.findings.some((f) => severityRank(f.severity) >= limit) };
}

/** Every certificate the ledger records, by fingerprint (read-only: hunt never changes it). */
async function readLedger(at: StoreTarget): Promise<Map<string, KnownCert>> {
  const { withLedger } = await import("../ledger/record.js");
  const entries = await withLedger(at, (store) => store.list(), "readonly");
  return new Map(entries.map((e) => [e.sha256, e]));
}

/** The files to read: each one given, and the regular files of each folder given, in name order. */
function expandLogs(paths: string[]): string[] {
  if (paths.length === 0) throw new InputError("give at least one --audit-log FILE");
  return paths.flatMap((p) => {
    const abs = resolve(p);
    let dir = false;
    try {
      dir = statSync(abs).isDirectory();
    } catch (err) {
      throw new InputError(`${p}: no such file`, { cause: err });
    }
    if (!dir) return [abs];
    const files = readdirSync(abs)
      .sort()
      .map((n) => join(abs, n))
      .filter((f) => statSync(f).isFile());
    if (files.length === 0) throw new InputError(`${p}: the folder holds no file`);
    return files;
  });
}

/** The report as text (colour optional), JSON, YAML or SARIF 2.1.0. */
export async function renderHuntReport(
  report: HuntReport,
  format: HuntFormat,
  color = false,
): Promise<string> {
  if (format === "json") return `${JSON.stringify(report, null, 2)}\n`;
  if (format === "yaml") return (await import("yaml")).stringify(report);
  if (format === "sarif") return (await import("../report/hunt-sarif.js")).renderHuntSarif(report);
  return (await import("../report/hunt-text.js")).renderHuntText(report, color);
}
