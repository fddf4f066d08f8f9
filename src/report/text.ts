import { SEVERITIES, type Severity } from "../audit/finding.js";
import type { AuditReport } from "./model.js";

const STYLE: Record<Severity, number> = { critical: 35, high: 31, medium: 33, low: 36, info: 2 };

/** Findings grouped by severity, most severe first; colour only when asked (a terminal without NO_COLOR). */
export function renderText(r: AuditReport, color: boolean): string {
  const c = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines: string[] = [];
  lines.push(`kubepki audit of ${r.root}: ${r.distribution.name} ${r.role} (${r.distribution.detectedBy})`);
  lines.push(`${r.inventory.length} certificates inventoried; ${r.summary.total} findings`);
  for (const sev of [...SEVERITIES].reverse()) {
    const group = r.findings.filter((f) => f.severity === sev);
    if (group.length === 0) continue;
    lines.push("", c(STYLE[sev], c(1, `${sev.toUpperCase()} (${group.length})`)));
    for (const f of group) {
      const refs = [...f.cis.map((x) => `CIS ${x}`), ...f.attack].join(", ");
      lines.push(`  ${c(1, f.ruleId)}  ${f.title}${refs ? c(2, `  [${refs}]`) : ""}`);
      lines.push(`    ${f.message}`);
      if (sev !== "info") lines.push(`    fix: ${f.remediation}`);
    }
  }
  lines.push(
    "",
    `summary: ${SEVERITIES.slice()
      .reverse()
      .map((s) => `${r.summary[s]} ${s}`)
      .join(", ")}`,
  );
  return `${lines.join("\n")}\n`;
}
