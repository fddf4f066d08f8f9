import { SEVERITIES, type Severity } from "../audit/finding.js";
import type { AuditReport, ReportFinding } from "./model.js";

const STYLE: Record<Severity, number> = { critical: 35, high: 31, medium: 33, low: 36, info: 2 };

export type Paint = (code: number, s: string) => string;

export const painter =
  (color: boolean): Paint =>
  (code, s) =>
    color ? `\x1b[${code}m${s}\x1b[0m` : s;

/** Findings grouped by severity, most severe first; colour only when asked (a terminal without NO_COLOR). */
export function renderText(r: AuditReport, color: boolean): string {
  const lines: string[] = [];
  lines.push(`kubepki audit of ${r.root}: ${r.distribution.name} ${r.role} (${r.distribution.detectedBy})`);
  lines.push(`${r.inventory.length} certificates inventoried; ${r.summary.total} findings`);
  lines.push(...findingLines(r.findings, painter(color)));
  lines.push("", summaryLine(r.summary));
  return `${lines.join("\n")}\n`;
}

/** The findings block shared by audit and hunt: a heading per severity, then rule, message and fix. */
export function findingLines(findings: readonly ReportFinding[], c: Paint): string[] {
  const lines: string[] = [];
  for (const sev of [...SEVERITIES].reverse()) {
    const group = findings.filter((f) => f.severity === sev);
    if (group.length === 0) continue;
    lines.push("", c(STYLE[sev], c(1, `${sev.toUpperCase()} (${group.length})`)));
    for (const f of group) {
      const refs = [...f.cis.map((x) => `CIS ${x}`), ...f.attack].join(", ");
      lines.push(`  ${c(1, f.ruleId)}  ${f.title}${refs ? c(2, `  [${refs}]`) : ""}`);
      lines.push(`    ${f.message}`);
      if (sev !== "info") lines.push(`    fix: ${f.remediation}`);
    }
  }
  return lines;
}

export function summaryLine(summary: Record<Severity, number>): string {
  return `summary: ${SEVERITIES.slice()
    .reverse()
    .map((s) => `${summary[s]} ${s}`)
    .join(", ")}`;
}
