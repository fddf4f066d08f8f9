import { pathToFileURL } from "node:url";
import type { Finding, Severity } from "../audit/finding.js";
import { RULES, type RuleInfo } from "../audit/taxonomy.js";
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
  return sarifLog({
    rules: RULES,
    findings: r.findings,
    location: (f) => ({ uri: encodeURI((f.path ?? "/").replace(/^\//, "")), uriBaseId: "NODEROOT" }),
    originalUriBaseIds: { NODEROOT: { uri: `${pathToFileURL(r.root).href.replace(/\/?$/, "/")}` } },
    generatedAt: r.generatedAt,
    properties: { distribution: r.distribution.name, role: r.role },
  });
}

export interface SarifInput {
  rules: readonly RuleInfo[];
  findings: readonly Finding[];
  /** The artifact a finding is about (a node path under a base, an audit log's file URL). */
  location: (f: Finding) => { uri: string; uriBaseId?: string };
  originalUriBaseIds?: Record<string, { uri: string }>;
  generatedAt: string;
  properties: Record<string, unknown>;
}

function sarifRule(rule: RuleInfo) {
  const cis = rule.cis.length ? `\n\nCIS Kubernetes Benchmark: ${rule.cis.join(", ")}` : "";
  const attack = rule.attack.length ? `\n\nMITRE ATT&CK: ${rule.attack.join(", ")}` : "";
  return {
    id: rule.id,
    name: rule.id.replace(/[^a-zA-Z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : "")),
    shortDescription: { text: rule.title },
    fullDescription: { text: rule.why },
    help: {
      text: `${rule.why}\nRemediation: ${rule.remediation}`,
      markdown: `${rule.why}\n\n**Remediation:** ${rule.remediation}${cis}${attack}`,
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
  };
}

/** One SARIF 2.1.0 log of one run: the rules given, each finding a result at its artifact (and line). */
export function sarifLog(i: SarifInput): string {
  const rules = i.rules.map(sarifRule);
  const index = new Map<string, number>(rules.map((rule, n) => [rule.id, n]));
  const results = i.findings.map((f) => ({
    ruleId: f.ruleId,
    ruleIndex: index.get(f.ruleId) ?? 0,
    level: LEVEL[f.severity],
    message: { text: f.message },
    locations: [
      {
        physicalLocation: {
          artifactLocation: i.location(f),
          ...(f.line ? { region: { startLine: f.line } } : {}),
        },
      },
    ],
    properties: { severity: f.severity, "security-severity": SCORE[f.severity], evidence: f.evidence },
  }));
  const run = {
    tool: { driver: { name: TOOL.name, version: TOOL.version, informationUri: TOOL.informationUri, rules } },
    ...(i.originalUriBaseIds ? { originalUriBaseIds: i.originalUriBaseIds } : {}),
    invocations: [{ executionSuccessful: true, endTimeUtc: i.generatedAt }],
    properties: i.properties,
    results,
  };
  const sarif = { $schema: "https://json.schemastore.org/sarif-2.1.0.json", version: "2.1.0", runs: [run] };
  return `${JSON.stringify(sarif, null, 2)}\n`;
}
