import { pathToFileURL } from "node:url";
import type { Severity } from "../audit/finding.js";
import { RULES } from "../audit/taxonomy.js";
import { type AuditReport, TOOL } from "./model.js";

/** SARIF levels and GitHub's security-severity scale for each severity. */
const LEVEL: Record<Severity, "error" | "warning" | "note"> = {
  critical: "error",
  high: "error",
  medium: "warning",
  low: "note",
  info: "note",
};
const SCORE: Record<Severity, string> = {
  critical: "9.5",
  high: "8.0",
  medium: "5.5",
  low: "3.0",
  info: "0.0",
};

/** SARIF 2.1.0: every rule with help, CIS and ATT&CK tags; every result located at its file. */
export function renderSarif(r: AuditReport): string {
  const rules = RULES.map((rule) => ({
    id: rule.id,
    name: rule.id.replace(/[^a-zA-Z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : "")),
    shortDescription: { text: rule.title },
    fullDescription: { text: rule.why },
    help: {
      text: `${rule.why}\nRemediation: ${rule.remediation}`,
      markdown: `${rule.why}\n\n**Remediation:** ${rule.remediation}${rule.cis.length ? `\n\nCIS Kubernetes Benchmark: ${rule.cis.join(", ")}` : ""}${rule.attack.length ? `\n\nMITRE ATT&CK: ${rule.attack.join(", ")}` : ""}`,
    },
    defaultConfiguration: { level: LEVEL[rule.severity] },
    properties: {
      tags: [
        "security",
        "kubernetes",
        "pki",
        ...rule.cis.map((c) => `CIS-${c}`),
        ...rule.attack.map((a) => `attack-${a}`),
      ],
      "security-severity": SCORE[rule.severity],
    },
  }));
  const index = new Map<string, number>(rules.map((rule, i) => [rule.id, i]));
  const results = r.findings.map((f) => ({
    ruleId: f.ruleId,
    ruleIndex: index.get(f.ruleId) ?? 0,
    level: LEVEL[f.severity],
    message: { text: f.message },
    locations: [
      {
        physicalLocation: {
          artifactLocation: { uri: encodeURI((f.path ?? "/").replace(/^\//, "")), uriBaseId: "NODEROOT" },
        },
      },
    ],
    properties: { severity: f.severity, "security-severity": SCORE[f.severity], evidence: f.evidence },
  }));
  const sarif = {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [
      {
        tool: {
          driver: { name: TOOL.name, version: TOOL.version, informationUri: TOOL.informationUri, rules },
        },
        originalUriBaseIds: { NODEROOT: { uri: `${pathToFileURL(r.root).href.replace(/\/?$/, "/")}` } },
        invocations: [{ executionSuccessful: true, endTimeUtc: r.generatedAt }],
        properties: { distribution: r.distribution.name, role: r.role },
        results,
      },
    ],
  };
  return `${JSON.stringify(sarif, null, 2)}\n`;
}
