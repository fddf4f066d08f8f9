import { SEVERITIES, type Severity } from "../audit/finding.js";
import type { KnownCert } from "../hunt/findings.js";
import type { HuntResult, LogSummary } from "../hunt/hunt.js";
import { type HuntRuleId, huntRule } from "../hunt/taxonomy.js";
import type { ReportFinding } from "./model.js";
import { TOOL } from "./model.js";

export const HUNT_SCHEMA = "kubepki.io/hunt/v1";

/** One client certificate seen in the logs, with what the ledger says of it. */
export interface CredentialSummary {
  credentialId: string;
  /** "unknown" when the ledger does not record it; else its status there. */
  ledger: "unknown" | KnownCert["status"];
  profile?: string;
  user: string;
  groups: string[];
  sourceIPs: string[];
  verbs: Record<string, number>;
  events: number;
  requests: number;
  firstSeen?: string;
  lastSeen?: string;
  revokedAt?: string;
}

/** What `kubepki hunt -o json` prints (fields are only added within v1). */
export interface HuntReport {
  schema: typeof HUNT_SCHEMA;
  tool: { name: string; version: string };
  generatedAt: string;
  ledger: { path: string; certificates: number };
  cacheDelaySeconds: number;
  logs: LogSummary[];
  summary: Record<Severity, number> & { total: number };
  findings: ReportFinding[];
  credentials: CredentialSummary[];
  warnings: string[];
}

export interface HuntReportInput {
  result: HuntResult;
  ledger: Map<string, KnownCert>;
  ledgerPath: string;
  cacheDelayMs: number;
  now: Date;
}

const isoOr = (ms: number) => (Number.isNaN(ms) ? undefined : new Date(ms).toISOString());

export function buildHuntReport(i: HuntReportInput): HuntReport {
  const { result } = i;
  const summary = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of result.findings) summary[f.severity]++;
  return {
    schema: HUNT_SCHEMA,
    tool: { name: TOOL.name, version: TOOL.version },
    generatedAt: i.now.toISOString(),
    ledger: { path: i.ledgerPath, certificates: i.ledger.size },
    cacheDelaySeconds: i.cacheDelayMs / 1000,
    logs: result.logs,
    summary: { ...summary, total: result.findings.length },
    findings: result.findings.map((f) => {
      const rule = huntRule(f.ruleId as HuntRuleId);
      return { ...f, cis: rule.cis, attack: rule.attack, why: rule.why, remediation: rule.remediation };
    }),
    credentials: result.credentials.map((t) => {
      const known = i.ledger.get(t.sha256);
      return {
        credentialId: `X509SHA256=${t.sha256}`,
        ledger: known?.status ?? "unknown",
        profile: known?.profile,
        user: t.user,
        groups: [...t.groups],
        sourceIPs: [...t.sourceIPs],
        verbs: Object.fromEntries(t.verbs),
        events: t.events,
        requests: t.requests,
        firstSeen: isoOr(t.firstSeen),
        lastSeen: isoOr(t.lastSeen),
        revokedAt: known?.revokedAt,
      };
    }),
    warnings: warningsOf(result),
  };
}

function warningsOf(r: HuntResult): string[] {
  const w: string[] = [];
  for (const l of r.logs) {
    if (l.malformed > 0)
      w.push(
        `${l.path}: ${l.malformed} malformed line(s), e.g. ${l.malformedSamples.map((s) => `line ${s.line} (${s.reason})`).join(", ")}`,
      );
    if (l.malformed > 0 && l.malformed + l.blank === l.lines)
      w.push(
        `${l.path}: no line is an audit Event in JSON: hunt reads kube-apiserver's --audit-log-format=json (the default), not legacy`,
      );
    if (l.oversized > 0) w.push(`${l.path}: ${l.oversized} line(s) over the size limit, skipped`);
    if (l.truncated) w.push(`${l.path}: the gzip stream is damaged (${l.truncated}); read up to the damage`);
    if (l.lines > 0 && l.certificateEvents === 0 && l.otherEvents > 0)
      w.push(
        `${l.path}: no event carries an X509SHA256 credential id (kube-apiserver before 1.32, or no certificate-authenticated requests)`,
      );
  }
  if (r.untracked > 0)
    w.push(
      `${r.untracked} event(s) of certificates beyond the first ${r.credentials.length} were counted, not analysed`,
    );
  return w;
}
