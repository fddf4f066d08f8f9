import { signingKeyFiles } from "../../node/follow.js";
import { kubeletClientCaFile } from "../../node/snapshot.js";
import { fileEvidence, finding, modeExceeds, octal, type Rule } from "../context.js";
import type { Finding } from "../finding.js";

function caKeyRule(name: string): string {
  if (/etcd/i.test(name)) return "pki.etcd-ca-key.present";
  if (/front-proxy|request-header/i.test(name)) return "pki.front-proxy-ca-key.present";
  return "pki.ca-key.present";
}

/** CA and service-account keys: where they are, and whether this node needs them. */
const caKeys: Rule = ({ snap }) => {
  const out: Finding[] = [];
  const kcm = snap.components.get("kube-controller-manager");
  const signing = signingKeyFiles(kcm);
  const signingKey = [...signing].join(", ") || undefined;
  for (const ca of snap.caKeys) {
    if (!snap.files.exists(ca.path)) continue;
    const id = caKeyRule(ca.name);
    const ev = { file: ca.path, ca: ca.name, role: snap.role };
    if (snap.role === "worker") {
      out.push(finding(id, `The ${ca.name} private key is on a worker node.`, ca.path, ev, "critical"));
    } else if (ca.signsCsrs) {
      if (kcm && !signing.has(ca.path))
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
  const inPki = (p: string) => snap.pkiDirs.some((d) => p.startsWith(`${d}/`));
  const inKubelet = (p: string) => layout.kubeletPkiDirs.some((d) => p.startsWith(`${d}/`));
  const certMode = opts.profile === "strict" ? 0o600 : 0o644;
  const ownerChecked = layout.distro !== "k0s" && layout.distro !== "microk8s";
  for (const [path, parsed] of snap.pem) {
    const f = snap.files.stat(path);
    if (!f) continue;
    const ev = fileEvidence(f);
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
      else if (inPki(path) && layout.distro === "microk8s" && modeExceeds(f.mode, 0o600))
        out.push(
          finding(
            "pki.key.group-readable",
            `${path} holds a private key with mode ${octal(f.mode)}: readable by the microk8s group. Expected on MicroK8s, whose snap hooks make its files group-accessible so that group members can run microk8s commands without sudo; every member of the group can read this key.`,
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
  const ca = kubeletClientCaFile(snap.kubelet);
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

export const custodyRules: Rule[] = [caKeys, pkiModes, configFiles];
