import type { CredentialSummary, HuntReport } from "./hunt-model.js";
import { findingLines, painter, summaryLine } from "./text.js";

/** hunt's text report: the logs read, the findings by severity, then every certificate seen. */
export function renderHuntText(r: HuntReport, color: boolean): string {
  const c = painter(color);
  const events = r.logs.reduce((n, l) => n + l.certificateEvents + l.otherEvents, 0);
  const malformed = r.logs.reduce((n, l) => n + l.malformed, 0);
  const lines = [
    `kubepki hunt: ${r.logs.length} audit log(s), ${events} events, ${malformed} malformed line(s); ledger ${r.ledger.path} (${r.ledger.certificates} certificates)`,
    `${r.credentials.length} client certificate(s) seen; ${r.summary.total} findings`,
    ...findingLines(r.findings, c),
  ];
  if (r.credentials.length > 0)
    lines.push("", c(1, "CLIENT CERTIFICATES SEEN"), ...r.credentials.map(credentialLine));
  lines.push("", summaryLine(r.summary));
  return `${lines.join("\n")}\n`;
}

function credentialLine(s: CredentialSummary): string {
  const verbs = Object.entries(s.verbs)
    .map(([v, n]) => `${v} ${n}`)
    .join(", ");
  return [
    `  ${s.credentialId.slice(0, 27)}…  ${s.user} [${s.groups.join(", ")}]  ledger: ${s.ledger}${s.profile ? ` (${s.profile})` : ""}`,
    `    ${s.requests} request(s), ${s.events} event(s) from ${s.sourceIPs.join(", ") || "-"}; ${s.firstSeen ?? "?"} to ${s.lastSeen ?? "?"}; ${verbs || "-"}`,
  ].join("\n");
}
