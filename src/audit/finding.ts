export const SEVERITIES = ["info", "low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** One weakness found on the node. Evidence names files, flags and fingerprints, never key bytes. */
export interface Finding {
  ruleId: string;
  severity: Severity;
  title: string;
  message: string;
  /** The node path the finding is about (SARIF location). */
  path?: string;
  /** The line in that file (hunt: the audit-log line a credential was first seen on). */
  line?: number;
  evidence: Record<string, string | number | boolean>;
}
