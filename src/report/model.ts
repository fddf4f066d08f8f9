import type { AuditResult } from "../audit/audit.js";
import { type Finding, SEVERITIES, type Severity } from "../audit/finding.js";
import { ruleInfo } from "../audit/taxonomy.js";
import { uniqueCerts } from "../node/certs.js";
import { VERSION } from "../version.js";

export const AUDIT_SCHEMA = "kubepki.io/audit/v1";
export const TOOL = {
  name: "kubepki",
  version: VERSION,
  informationUri: "https://github.com/kubepki/kubepki",
};

/**
 * The audit report as data: what -o json prints and every other format renders. Versioned by
 * `schema`; fields are only ever added within v1. Evidence holds paths, flags and fingerprints,
 * never key material.
 */
export interface AuditReport {
  schema: typeof AUDIT_SCHEMA;
  tool: { name: string; version: string };
  generatedAt: string;
  root: string;
  distribution: { name: string; detectedBy: string };
  role: "control-plane" | "worker";
  summary: Record<Severity, number> & { total: number };
  findings: ReportFinding[];
  inventory: InventoryEntry[];
  warnings: { path: string; message: string }[];
}

/** A finding with its rule's metadata, so a report stands on its own. */
export interface ReportFinding extends Finding {
  cis: string[];
  attack: string[];
  why: string;
  remediation: string;
}

export interface InventoryEntry {
  path: string;
  index: number;
  origin: "file" | "kubeconfig";
  field?: string;
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  daysLeft: number;
  keyType: string;
  signatureAlgorithm: string;
  isCA: boolean;
  sha256: string;
}

export function buildReport(result: AuditResult): AuditReport {
  const { snapshot: s, findings } = result;
  const summary = Object.fromEntries(SEVERITIES.map((sev) => [sev, 0])) as Record<Severity, number>;
  for (const f of findings) summary[f.severity]++;
  const inventory: InventoryEntry[] = uniqueCerts(s.certs).map((c) => ({
    path: c.path,
    index: c.index,
    origin: c.origin,
    field: c.field,
    subject: c.subject.replace(/\n/g, ", "),
    issuer: c.issuer.replace(/\n/g, ", "),
    serial: c.serialHex,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    daysLeft: Math.floor((c.notAfter.getTime() - s.now.getTime()) / 86_400_000),
    keyType: c.keyType,
    signatureAlgorithm: c.signatureAlgorithm,
    isCA: c.isCA,
    sha256: c.sha256,
  }));
  inventory.sort((a, b) => a.notAfter.localeCompare(b.notAfter) || a.path.localeCompare(b.path));
  return {
    schema: AUDIT_SCHEMA,
    tool: { name: TOOL.name, version: TOOL.version },
    generatedAt: s.now.toISOString(),
    root: s.root,
    distribution: { name: s.layout.distro, detectedBy: s.detectedBy },
    role: s.role,
    summary: { ...summary, total: findings.length },
    findings: findings.map((f) => {
      const info = ruleInfo(f.ruleId);
      return { ...f, cis: info.cis, attack: info.attack, why: info.why, remediation: info.remediation };
    }),
    inventory,
    warnings: s.warnings,
  };
}
