import type { RuleInfo } from "../audit/taxonomy.js";

/**
 * hunt's rules: what the audit logs show of client certificates, joined with the ledger. Same
 * shape as the audit's catalog (CIS Kubernetes Benchmark ids, MITRE ATT&CK techniques).
 */
export const HUNT_RULES = [
  {
    id: "hunt.cert.unknown",
    severity: "critical",
    title: "client certificate kubepki never issued authenticated to the API server",
    cis: ["3.1.1"],
    attack: ["T1649", "T1552.004", "T1078"],
    why: "The cluster CA signed a certificate the ledger does not know: it was signed outside kubepki, with a stolen CA key or by an issuer nobody manages. It stays valid until it expires and Kubernetes cannot revoke it.",
    remediation:
      "Find who holds the CA key (kubepki audit: pki.ca-key.present); revoke the fingerprint (kubepki revoke --fingerprint) so the webhook denies it, and rotate the cluster CA if the key was stolen. If the certificate is legitimate, record it with kubepki ledger import on the node that holds it.",
  },
  {
    id: "hunt.cert.unknown-node",
    severity: "medium",
    title: "kubelet client certificate the ledger does not know",
    cis: ["3.1.1"],
    attack: ["T1649", "T1078"],
    why: "Kubelets rotate their client certificates through the CSR API: kube-controller-manager signs them with the cluster CA, never through kubepki, so a node's current certificate is unknown until it is imported. A forged node certificate looks the same.",
    remediation:
      "Run kubepki ledger import on that node (it records /var/lib/kubelet/pki/kubelet-client-current.pem); a node name no node has is a forgery: treat it as hunt.cert.unknown.",
  },
  {
    id: "hunt.cert.revoked.used",
    severity: "high",
    title: "revoked client certificate used after its revocation",
    cis: ["3.1.1"],
    attack: ["T1078", "T1550"],
    why: "Someone still holds a revoked certificate and uses it. Requests within the cache delay can get through (kube-apiserver caches the webhook's answers for unauthorizedTTL); allowed requests after it mean the webhook is not in the authorization chain.",
    remediation:
      "Check that kube-apiserver runs with kubepki's --authorization-config and that kubepki serve is up; find the holder by the source IPs; rotate what the certificate's user could read.",
  },
  {
    id: "hunt.cert.revoked.before",
    severity: "info",
    title: "activity of a certificate before its revocation",
    cis: [],
    attack: ["T1078"],
    why: "The certificate was revoked later: what it did before is the scope of an incident if it was revoked because its key leaked.",
    remediation: "Review the requests listed for this credential.",
  },
  {
    id: "hunt.cert.system-masters.used",
    severity: "high",
    title: "system:masters or break-glass certificate used",
    cis: ["5.1.7", "3.1.1"],
    attack: ["T1078", "T1649"],
    why: "A system:masters certificate bypasses every authorizer, the webhook included, and cannot be revoked: only rotating the cluster CA stops it. A break-glass credential should be used only in an emergency.",
    remediation:
      "Confirm the use was an intended emergency; otherwise rotate the cluster CA. Use RBAC-bound admin credentials (kubeadm:cluster-admins, kubepki issue client) for daily work.",
  },
] as const satisfies readonly RuleInfo[];

export type HuntRuleId = (typeof HUNT_RULES)[number]["id"];

const BY_ID = new Map<string, RuleInfo>(HUNT_RULES.map((r) => [r.id, r]));

export function huntRule(id: HuntRuleId): RuleInfo {
  const r = BY_ID.get(id);
  if (!r) throw new Error(`unknown rule ${id}`);
  return r;
}
