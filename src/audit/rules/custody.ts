import { type AuditContext, finding, modeExceeds, octal, type Rule } from "../context.js";
import type { Finding } from "../finding.js";

const ADMIN_GROUPS = ["system:masters", "kubeadm:cluster-admins"];

function caKeyRule(name: string): string {
  if (/etcd/i.test(name)) return "pki.etcd-ca-key.present";
  if (/front-proxy|request-header/i.test(name)) return "pki.front-proxy-ca-key.present";
  return "pki.ca-key.present";
}

/** CA and service-account keys: where they are, and whether this node needs them. */
const caKeys: Rule = ({ snap }) => {
  const out: Finding[] = [];
  const kcm = snap.components.get("kube-controller-manager");
  const signingKey = kcm?.flags.get("cluster-signing-key-file");
  for (const ca of snap.layout.caKeys) {
    if (!snap.files.exists(ca.path)) continue;
    const id = caKeyRule(ca.name);
    const ev = { file: ca.path, ca: ca.name, role: snap.role };
    if (snap.role === "worker") {
      out.push(finding(id, `The ${ca.name} private key is on a worker node.`, ca.path, ev, "critical"));
    } else if (ca.signsCsrs) {
      if (kcm && signingKey !== ca.path)
        out.push(
          finding(
            id,
            `The ${ca.name} key is on this control plane but kube-controller-manager does not sign with it (--cluster-signing-key-file=${signingKey ?? "unset"}).`,
            ca.path,
            ev,
            "high",
          ),
        );
      else
        out.push(
          finding(
            id,
            `The ${ca.name} key is on this control plane, where the controller-manager signs CSRs with it. Expected, but it is the cluster's master key: consider an offline CA.`,
            ca.path,
            ev,
            "info",
          ),
        );
    } else {
      out.push(
        finding(
          id,
          `The ${ca.name} key is on this control plane, where no running component needs it.`,
          ca.path,
          ev,
          "medium",
        ),
      );
    }
  }
  if (snap.role === "worker")
    for (const sa of snap.layout.saKeys)
      if (snap.files.exists(sa))
        out.push(
          finding("pki.sa-key.present", "The service-account signing key is on a worker node.", sa, {
            file: sa,
          }),
        );
  return out;
};

/** Modes and owners of PKI files (CIS 1.1.19-1.1.21), with each distribution's expected key mode. */
const pkiModes: Rule = ({ snap, opts }) => {
  const out: Finding[] = [];
  const { layout } = snap;
  const inPki = (p: string) => layout.pkiDirs.some((d) => p.startsWith(`${d}/`));
  const inKubelet = (p: string) => layout.kubeletPkiDirs.some((d) => p.startsWith(`${d}/`));
  const certMode = opts.profile === "strict" ? 0o600 : 0o644;
  const ownerChecked = layout.distro !== "k0s" && layout.distro !== "microk8s";
  for (const [path, parsed] of snap.pem) {
    const f = snap.files.stat(path);
    if (!f) continue;
    const ev = { file: path, mode: octal(f.mode), owner: `${f.uid}:${f.gid}` };
    if (parsed.keys.length > 0) {
      if (inKubelet(path) && modeExceeds(f.mode, 0o600))
        out.push(
          finding("kubelet-pki.mode", `${path} holds a private key with mode ${octal(f.mode)}.`, path, ev),
        );
      else if (inPki(path) && modeExceeds(f.mode, layout.expectedKeyMode))
        out.push(
          finding(
            "pki.key.mode",
            `${path} holds a private key with mode ${octal(f.mode)} (allowed: ${octal(layout.expectedKeyMode)}).`,
            path,
            ev,
          ),
        );
    } else if (inPki(path) && path.endsWith(".crt") && modeExceeds(f.mode, certMode)) {
      out.push(
        finding(
          "pki.cert.mode",
          `${path} has mode ${octal(f.mode)} (allowed: ${octal(certMode)}, ${opts.profile} profile).`,
          path,
          ev,
        ),
      );
    }
    if (ownerChecked && (inPki(path) || inKubelet(path)) && (f.uid !== 0 || f.gid !== 0))
      out.push(finding("pki.owner", `${path} is owned by ${f.uid}:${f.gid}, not root:root.`, path, ev));
  }
  return out;
};

/** Kubeconfigs: modes of admin and component files, admin credentials where people can read them. */
const kubeconfigFiles: Rule = ({ snap }) => {
  const out: Finding[] = [];
  const admin = new Set(snap.layout.adminKubeconfigs);
  for (const k of snap.kubeconfigs) {
    const f = snap.files.stat(k.path);
    if (!f) continue;
    const ev = { file: k.path, mode: octal(f.mode), owner: `${f.uid}:${f.gid}` };
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
    } else if (k.path.startsWith("/etc/kubernetes/") && badMode) {
      out.push(
        finding(
          "kubeconfig.component.mode",
          `${k.path} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: 0600 root:root).`,
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

/** Static pod manifests, the kubelet's configuration and units, its client CA file. */
const configFiles: Rule = ({ snap }) => {
  const out: Finding[] = [];
  for (const p of snap.manifests) {
    const f = snap.files.stat(p);
    if (f && (modeExceeds(f.mode, 0o600) || f.uid !== 0 || f.gid !== 0))
      out.push(
        finding(
          "manifest.mode",
          `${p} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: 0600 root:root).`,
          p,
          { file: p, mode: octal(f.mode) },
        ),
      );
  }
  for (const p of (snap.kubelet.configPath ?? "").split(", ").filter(Boolean)) {
    const f = snap.files.stat(p);
    if (f && (modeExceeds(f.mode, 0o600) || f.uid !== 0))
      out.push(
        finding(
          "kubelet.config.mode",
          `${p} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: 0600 root:root).`,
          p,
          { file: p, mode: octal(f.mode) },
        ),
      );
  }
  for (const p of snap.kubelet.flagSources.filter((s) => !s.startsWith("/proc/"))) {
    const f = snap.files.stat(p);
    if (f && (modeExceeds(f.mode, 0o644) || f.uid !== 0))
      out.push(
        finding(
          "kubelet.config.mode",
          `${p} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: 0644 root:root or stricter).`,
          p,
          { file: p, mode: octal(f.mode) },
        ),
      );
  }
  const ca =
    snap.kubelet.flags.get("client-ca-file") ??
    (snap.kubelet.config ? getClientCa(snap.kubelet.config) : undefined);
  if (ca) {
    const f = snap.files.stat(ca);
    if (f && (modeExceeds(f.mode, 0o644) || f.uid !== 0 || f.gid !== 0))
      out.push(
        finding(
          "kubelet.client-ca.mode",
          `${ca} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: 0644 root:root or stricter).`,
          ca,
          { file: ca, mode: octal(f.mode) },
        ),
      );
  }
  return out;
};

function getClientCa(config: Record<string, unknown>): string | undefined {
  const auth = config.authentication as { x509?: { clientCAFile?: unknown } } | undefined;
  return typeof auth?.x509?.clientCAFile === "string" ? auth.x509.clientCAFile : undefined;
}

export const custodyRules: Rule[] = [caKeys, pkiModes, kubeconfigFiles, configFiles];
export type { AuditContext };
