import { readdirSync } from "node:fs";
import { errorMessage, InputError, IoError } from "../errors.js";
import { type NodeSnapshot, type SnapshotOptions, takeSnapshot } from "../node/snapshot.js";
import { type AuditOptions, DEFAULT_AUDIT_OPTIONS, finding, type Rule } from "./context.js";
import { type Finding, severityRank } from "./finding.js";
import { apiserverRule } from "./rules/apiserver.js";
import { backupRule } from "./rules/backups.js";
import { certificateRules } from "./rules/certificates.js";
import { coverageRule } from "./rules/coverage.js";
import { custodyRules } from "./rules/custody.js";
import { etcdRule } from "./rules/etcd.js";
import { integrityRule } from "./rules/integrity.js";
import { kubeconfigRule, kubeconfigServerRule } from "./rules/kubeconfig.js";
import { kubeletRule } from "./rules/kubelet.js";

export const ALL_RULES: Rule[] = [
  ...custodyRules,
  kubeconfigRule,
  kubeconfigServerRule,
  backupRule,
  integrityRule,
  ...certificateRules,
  apiserverRule,
  etcdRule,
  kubeletRule,
  coverageRule,
];

export interface AuditResult {
  snapshot: NodeSnapshot;
  findings: Finding[];
}

/** Rules are pure functions of the snapshot; the snapshot's warnings become info findings. */
export function auditSnapshot(snap: NodeSnapshot, opts: AuditOptions = DEFAULT_AUDIT_OPTIONS): Finding[] {
  const findings = ALL_RULES.flatMap((rule) => rule({ snap, opts }));
  for (const w of snap.warnings)
    findings.push(finding("node.unreadable", `${w.path}: ${w.message}`, w.path, { file: w.path }));
  return findings.sort(
    (a, b) =>
      severityRank(b.severity) - severityRank(a.severity) ||
      a.ruleId.localeCompare(b.ruleId) ||
      (a.path ?? "").localeCompare(b.path ?? ""),
  );
}

export function auditNode(opts: SnapshotOptions & Partial<AuditOptions>): AuditResult {
  checkRoot(opts.root);
  const snapshot = takeSnapshot(opts);
  const findings = auditSnapshot(snapshot, { ...DEFAULT_AUDIT_OPTIONS, ...stripUndefined(opts) });
  return { snapshot, findings };
}

/** An empty, missing or empty-folder root is a mistake to report, not a node to call clean. */
function checkRoot(root: string): void {
  if (root.trim() === "")
    throw new InputError("--root is empty: give the node's / (--root / on the node itself)");
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR")
      throw new InputError(`--root ${root}: no such folder`, { cause: err });
    throw new IoError(`--root ${root}: ${errorMessage(err)}`, { cause: err });
  }
  if (names.length === 0)
    throw new InputError(`--root ${root} is an empty folder: there is no node to audit`);
}

function stripUndefined(o: Partial<AuditOptions>): Partial<AuditOptions> {
  const out: Partial<AuditOptions> = {};
  if (o.profile) out.profile = o.profile;
  if (o.expiringDays !== undefined) out.expiringDays = o.expiringDays;
  if (o.clientMaxDays !== undefined) out.clientMaxDays = o.clientMaxDays;
  return out;
}
