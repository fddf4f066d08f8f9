import { SEVERITIES, type Severity } from "../audit/finding.js";
import type { AuditReport, InventoryEntry } from "./model.js";

const esc = (s: string) =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");

const COLORS: Record<Severity, string> = {
  critical: "#7b1fa2",
  high: "#c62828",
  medium: "#ef6c00",
  low: "#0277bd",
  info: "#607d8b",
};

const CHART_MAX = 200;
const DAY = 86_400_000;

/**
 * The certificate expiry timeline as inline SVG: one bar per certificate from notBefore to
 * notAfter, a line for now, red when expired, orange within 30 days. Drawn here, so the page
 * needs no script and no network.
 */
const ROW = 16;

/** One certificate's bar: red when expired, orange within 30 days, purple for a CA. */
function timelineBar(e: InventoryEntry, y: number, x: (t: number) => number): string {
  const color = e.daysLeft < 0 ? "#c62828" : e.daysLeft < 30 ? "#ef6c00" : e.isCA ? "#5e35b1" : "#2e7d32";
  const label = `${e.path}${e.field ? ` ${e.field}` : e.index > 0 ? ` [${e.index}]` : ""}`;
  const short = label.length > 52 ? `…${label.slice(-51)}` : label;
  return `<g class="bar"><title>${esc(`${label}\n${e.subject}\n${e.notBefore} → ${e.notAfter} (${e.daysLeft} days left)`)}</title><text x="4" y="${y + 11}">${esc(short)}</text><rect x="${x(Date.parse(e.notBefore)).toFixed(1)}" y="${y + 2}" width="${Math.max(2, x(Date.parse(e.notAfter)) - x(Date.parse(e.notBefore))).toFixed(1)}" height="${ROW - 5}" fill="${color}"/></g>`;
}

/** A grid line and label at each New Year between t0 and t1. */
function yearLines(t0: number, t1: number, x: (t: number) => number, height: number): string[] {
  const years: string[] = [];
  for (let yr = new Date(t0).getUTCFullYear() + 1; Date.UTC(yr, 0, 1) < t1; yr++) {
    const xx = x(Date.UTC(yr, 0, 1)).toFixed(1);
    years.push(
      `<line x1="${xx}" x2="${xx}" y1="14" y2="${height - 18}" class="grid"/><text x="${xx}" y="${height - 4}" class="axis">${yr}</text>`,
    );
  }
  return years;
}

function timeline(entries: InventoryEntry[], now: Date): string {
  const shown = entries.slice(0, CHART_MAX);
  if (shown.length === 0) return "<p>No certificates found.</p>";
  const labelW = 330;
  const chartW = 640;
  const height = shown.length * ROW + 40;
  const t0 = Math.min(...shown.map((e) => Date.parse(e.notBefore)), now.getTime() - 30 * DAY);
  const t1 = Math.max(
    Math.min(Math.max(...shown.map((e) => Date.parse(e.notAfter))), now.getTime() + 11 * 365 * DAY),
    now.getTime() + 30 * DAY,
  );
  const x = (t: number) => labelW + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * chartW;
  const bars = shown.map((e, i) => timelineBar(e, 20 + i * ROW, x)).join("");
  const years = yearLines(t0, t1, x, height);
  const nowX = x(now.getTime()).toFixed(1);
  return `<svg id="timeline" role="img" aria-label="Certificate expiry timeline" width="${labelW + chartW + 20}" height="${height}" viewBox="0 0 ${labelW + chartW + 20} ${height}">${years.join("")}${bars}<line x1="${nowX}" x2="${nowX}" y1="10" y2="${height - 18}" class="now"/><text x="${nowX}" y="10" class="axis">now</text></svg>${entries.length > CHART_MAX ? `<p>The chart shows the ${CHART_MAX} certificates that expire first, of ${entries.length}.</p>` : ""}`;
}

/** One self-contained HTML file: summary, findings by severity with remediation, inventory, timeline. */
export function renderHtml(r: AuditReport): string {
  const now = new Date(r.generatedAt);
  const summary = [...SEVERITIES]
    .reverse()
    .map((s) => `<div class="pill" style="background:${COLORS[s]}"><b>${r.summary[s]}</b> ${s}</div>`)
    .join("");
  const sections = [...SEVERITIES]
    .reverse()
    .map((sev) => {
      const group = r.findings.filter((f) => f.severity === sev);
      if (group.length === 0) return "";
      const items = group
        .map(
          (
            f,
          ) => `<article class="finding" data-rule="${esc(f.ruleId)}" style="border-left-color:${COLORS[sev]}">
<h3>${esc(f.title)} <code>${esc(f.ruleId)}</code></h3>
<p>${esc(f.message)}</p>
<p class="why">${esc(f.why)}</p>
<p class="fix"><b>Remediation:</b> ${esc(f.remediation)}</p>
<p class="refs">${[...f.cis.map((c) => `CIS ${c}`), ...f.attack.map((a) => `ATT&CK ${a}`)].map((t) => `<span>${esc(t)}</span>`).join(" ")}${f.path ? ` <code>${esc(f.path)}</code>` : ""}</p>
</article>`,
        )
        .join("\n");
      return `<section><h2 style="color:${COLORS[sev]}">${sev.toUpperCase()} (${group.length})</h2>${items}</section>`;
    })
    .join("\n");
  const rows = r.inventory
    .map(
      (e) =>
        `<tr class="${e.daysLeft < 0 ? "expired" : e.daysLeft < 30 ? "soon" : ""}"><td><code>${esc(e.path)}${e.field ? ` ${esc(e.field)}` : e.index > 0 ? ` [${e.index}]` : ""}</code></td><td>${esc(e.subject)}</td><td>${esc(e.issuer)}</td><td>${esc(e.notAfter.slice(0, 10))}</td><td>${e.daysLeft}</td><td>${esc(e.keyType)}</td><td>${e.isCA ? "CA" : ""}</td><td><code title="${esc(e.sha256)}">${esc(e.sha256.slice(0, 16))}…</code></td></tr>`,
    )
    .join("\n");
  const warnings = r.warnings.length
    ? `<section><h2>Warnings</h2><ul>${r.warnings.map((w) => `<li><code>${esc(w.path)}</code>: ${esc(w.message)}</li>`).join("")}</ul></section>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kubepki audit: ${esc(r.root)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#555}.pills{display:flex;gap:.5rem;margin:1rem 0}.pill{color:#fff;padding:.35rem .8rem;border-radius:1rem}
.finding{border-left:5px solid;padding:.2rem .9rem;margin:.7rem 0;background:#fafafa}
.finding h3{font-size:1rem;margin:.4rem 0}.finding p{margin:.3rem 0}.why{color:#444}.refs span{background:#eceff1;border-radius:.3rem;padding:0 .35rem;margin-right:.2rem;font-size:.85em}
table{border-collapse:collapse;width:100%;font-size:.85rem}td,th{border-bottom:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
tr.expired td{background:#ffebee}tr.soon td{background:#fff3e0}code{font-size:.9em}
svg text{font:11px monospace;fill:#333}svg .axis{font:10px sans-serif;fill:#666}svg .grid{stroke:#e0e0e0}svg .now{stroke:#c62828;stroke-width:2}
</style></head><body>
<h1>kubepki audit</h1>
<p class="meta">${esc(r.root)} · ${esc(r.distribution.name)} ${esc(r.role)} · ${esc(r.generatedAt)} · ${r.inventory.length} certificates · ${r.summary.total} findings</p>
<div class="pills" id="summary">${summary}</div>
${sections || "<p>No findings.</p>"}
<section><h2>Certificate expiry timeline</h2>${timeline(r.inventory, now)}</section>
<section><h2>Inventory</h2><table id="inventory"><thead><tr><th>File</th><th>Subject</th><th>Issuer</th><th>Expires</th><th>Days</th><th>Key</th><th></th><th>SHA-256</th></tr></thead><tbody>
${rows}
</tbody></table></section>
${warnings}
<footer class="meta"><p>Generated by ${esc(r.tool.name)} ${esc(r.tool.version)}. Report schema ${esc(r.schema)}. Fingerprints only: no key material is included.</p></footer>
</body></html>
`;
}
