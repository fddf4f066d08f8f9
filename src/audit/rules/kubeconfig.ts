import { missingSans } from "../../pki/existing.js";
import { certsAt, fileEvidence, finding, modeExceeds, octal, type Rule } from "../context.js";
import type { Finding } from "../finding.js";

const ADMIN_GROUPS = ["system:masters", "kubeadm:cluster-admins"];

/** Kubeconfigs: modes of admin and component files, admin credentials where people can read them. */
export const kubeconfigRule: Rule = ({ snap }) => {
  const out: Finding[] = [];
  const admin = new Set(snap.layout.adminKubeconfigs);
  for (const k of snap.kubeconfigs) {
    const f = snap.files.stat(k.path);
    if (!f) continue;
    const ev = fileEvidence(f);
    const badMode = modeExceeds(f.mode, 0o600) || f.uid !== 0;
    const adminUsers = k.users.filter((u) =>
      u.clientCert?.organizations.some((o) => ADMIN_GROUPS.includes(o)),
    );
    const home = k.path.startsWith("/home/") || k.path.startsWith("/root/");
    if (admin.has(k.path)) {
      if (badMode)
        out.push(
          finding(
            "kubeconfig.admin.mode",
            `${k.path} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: 0600 root:root).`,
            k.path,
            ev,
          ),
        );
    } else if (adminUsers.length > 0 && (modeExceeds(f.mode, 0o600) || (f.uid !== 0 && !home))) {
      out.push(
        finding(
          "kubeconfig.user.exposed",
          `${k.path} embeds an admin credential (${adminUsers.map((u) => u.clientCert?.organizations.join(",")).join("; ")}) and has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid}.`,
          k.path,
          ev,
        ),
      );
    } else if ((k.path.startsWith("/etc/kubernetes/") || (k.usedBy?.length ?? 0) > 0) && badMode) {
      out.push(
        finding(
          "kubeconfig.component.mode",
          `${k.path} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: 0600 root:root)${k.usedBy?.length ? `; used by ${k.usedBy.join(", ")}` : ""}.`,
          k.path,
          ev,
        ),
      );
    }
    if (home && adminUsers.length > 0)
      out.push(
        finding(
          "kubeconfig.admin.embedded",
          `${k.path} embeds a client certificate of ${adminUsers.map((u) => u.clientCert?.organizations.join(",")).join("; ")} (fingerprint ${adminUsers[0]?.clientCert?.sha256.slice(0, 16)}…).`,
          k.path,
          { ...ev, sha256: adminUsers[0]?.clientCert?.sha256 ?? "" },
        ),
      );
    if (k.clusters.some((c) => c.insecureSkipTlsVerify))
      out.push(
        finding(
          "kubeconfig.insecure-skip-verify",
          `${k.path} sets insecure-skip-tls-verify: the API server is not authenticated.`,
          k.path,
          { file: k.path },
        ),
      );
  }
  for (const p of snap.layout.superAdmin)
    if (snap.files.exists(p))
      out.push(
        finding("cert.super-admin.present", `${p} (group system:masters) is on the node.`, p, { file: p }),
      );
  return out;
};

/**
 * Kubeconfigs of this cluster (their CA signed the API server certificate) whose server address the
 * certificate does not name: TLS verification fails there, e.g. after a changed endpoint.
 */
export const kubeconfigServerRule: Rule = ({ snap }) => {
  const flagged = snap.components.get("kube-apiserver")?.flags.get("tls-cert-file");
  const certPath =
    flagged ?? snap.layout.pkiDirs.map((d) => `${d}/apiserver.crt`).find((p) => snap.files.exists(p));
  const serving = certsAt(snap, certPath)[0];
  if (!serving || !certPath) return [];
  const out: Finding[] = [];
  for (const k of snap.kubeconfigs)
    for (const c of k.clusters) {
      const host = c.server ? hostOf(c.server) : undefined;
      if (!host || !c.caCerts.some((ca) => serving.x509.checkIssued(ca.x509))) continue;
      const required = /^[\d.]+$|:/.test(host) ? { dns: [], ips: [host] } : { dns: [host], ips: [] };
      if (missingSans(serving, required).length === 0) continue;
      out.push(
        finding(
          "kubeconfig.server.not-covered",
          `${k.path} points at ${c.server}, which ${certPath} does not name (SANs: ${[...serving.dnsNames, ...serving.ipAddresses].join(", ")}).`,
          k.path,
          { file: k.path, server: c.server ?? "", certificate: certPath },
        ),
      );
    }
  return out;
};

function hostOf(server: string): string | undefined {
  try {
    return new URL(server).hostname.replace(/^\[|\]$/g, "") || undefined;
  } catch {
    return undefined;
  }
}
