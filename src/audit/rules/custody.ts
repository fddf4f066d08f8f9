import type { FileFact } from "../../node/files.js";
import { signingKeyFiles } from "../../node/follow.js";
import { kubeletClientCaFile } from "../../node/snapshot.js";
import {
  type AuditContext,
  type Check,
  fileEvidence,
  finding,
  modeExceeds,
  octal,
  type Rule,
  runChecks,
} from "../context.js";
import type { Finding, Severity } from "../finding.js";
import type { RuleId } from "../taxonomy.js";

function caKeyRule(name: string): RuleId {
  if (/etcd/i.test(name)) return "pki.etcd-ca-key.present";
  if (/front-proxy|request-header/i.test(name)) return "pki.front-proxy-ca-key.present";
  return "pki.ca-key.present";
}

type Snap = AuditContext["snap"];

/** How bad a CA key on this node is, and why: a worker never needs one; a control plane the one it signs CSRs with. */
function caKeyVerdict(
  snap: Snap,
  ca: Snap["caKeys"][number],
  signing: Set<string>,
): { message: string; severity: Severity } {
  if (snap.role === "worker")
    return { message: `The ${ca.name} private key is on a worker node.`, severity: "critical" };
  if (!ca.signsCsrs)
    return {
      message: `The ${ca.name} key is on this control plane, where no running component needs it.`,
      severity: "medium",
    };
  if (snap.components.has("kube-controller-manager") && !signing.has(ca.path))
    return {
      message: `The ${ca.name} key is on this control plane but kube-controller-manager does not sign with it (--cluster-signing-key-file=${[...signing].join(", ") || "unset"}).`,
      severity: "high",
    };
  return {
    message: `The ${ca.name} key is on this control plane, where the controller-manager signs CSRs with it. Expected, but it is the cluster's master key: consider an offline CA.`,
    severity: "info",
  };
}

/** CA and service-account keys: where they are, and whether this node needs them. */
const caKeys: Rule = ({ snap }) => {
  const signing = signingKeyFiles(snap.components.get("kube-controller-manager"));
  const out = snap.caKeys
    .filter((ca) => snap.files.exists(ca.path))
    .map((ca) => {
      const { message, severity } = caKeyVerdict(snap, ca, signing);
      const ev = { file: ca.path, ca: ca.name, role: snap.role };
      return finding(caKeyRule(ca.name), message, ca.path, ev, severity);
    });
  if (snap.role === "worker")
    for (const sa of snap.layout.saKeys.filter((p) => snap.files.exists(p)))
      out.push(
        finding("pki.sa-key.present", "The service-account signing key is on a worker node.", sa, {
          file: sa,
        }),
      );
  return out;
};

interface PemFileInput {
  path: string;
  f: FileFact;
  isKey: boolean;
  inPki: boolean;
  inKubelet: boolean;
  layout: Snap["layout"];
  opts: AuditContext["opts"];
}

/** A private key's mode: the kubelet's 0600, the distribution's expected mode in PKI folders. */
function keyModeFinding({ path, f, inPki, inKubelet, layout }: PemFileInput): Finding | undefined {
  const ev = fileEvidence(f);
  const mode = octal(f.mode);
  if (inKubelet && modeExceeds(f.mode, 0o600))
    return finding("kubelet-pki.mode", `${path} holds a private key with mode ${mode}.`, path, ev);
  if (!inPki) return undefined;
  if (modeExceeds(f.mode, layout.expectedKeyMode))
    return finding(
      "pki.key.mode",
      `${path} holds a private key with mode ${mode} (allowed: ${octal(layout.expectedKeyMode)}).`,
      path,
      ev,
    );
  if (layout.distro === "microk8s" && modeExceeds(f.mode, 0o600))
    return finding(
      "pki.key.group-readable",
      `${path} holds a private key with mode ${mode}: readable by the microk8s group. Expected on MicroK8s, whose snap hooks make its files group-accessible so that group members can run microk8s commands without sudo; every member of the group can read this key.`,
      path,
      ev,
    );
  return undefined;
}

const PEM_FILE_CHECKS: Check<PemFileInput>[] = [
  (x) => (x.isKey ? keyModeFinding(x) : undefined),
  ({ path, f, isKey, inPki, opts }) => {
    const certMode = opts.profile === "strict" ? 0o600 : 0o644;
    if (isKey || !inPki || !path.endsWith(".crt") || !modeExceeds(f.mode, certMode)) return undefined;
    return finding(
      "pki.cert.mode",
      `${path} has mode ${octal(f.mode)} (allowed: ${octal(certMode)}, ${opts.profile} profile).`,
      path,
      fileEvidence(f),
    );
  },
  ({ path, f, inPki, inKubelet, layout }) => {
    const ownerChecked = layout.distro !== "k0s" && layout.distro !== "microk8s";
    if (!ownerChecked || !(inPki || inKubelet) || (f.uid === 0 && f.gid === 0)) return undefined;
    return finding(
      "pki.owner",
      `${path} is owned by ${f.uid}:${f.gid}, not root:root.`,
      path,
      fileEvidence(f),
    );
  },
];

/** Modes and owners of PKI files (CIS 1.1.19-1.1.21), with each distribution's expected key mode. */
const pkiModes: Rule = ({ snap, opts }) => {
  const { layout } = snap;
  const under = (dirs: string[], p: string) => dirs.some((d) => p.startsWith(`${d}/`));
  return [...snap.pem].flatMap(([path, parsed]) => {
    const f = snap.files.stat(path);
    if (!f) return [];
    const input = {
      path,
      f,
      isKey: parsed.keys.length > 0,
      inPki: under(snap.pkiDirs, path),
      inKubelet: under(layout.kubeletPkiDirs, path),
      layout,
      opts,
    };
    return runChecks(PEM_FILE_CHECKS, input);
  });
};

/** A configuration file's required protection: the mode it may not exceed, owner root (and group root). */
interface FileRequirement {
  rule: RuleId;
  files: (snap: Snap) => string[];
  mode: number;
  rootGroup: boolean;
  required: string;
}

const CONFIG_FILES: FileRequirement[] = [
  {
    rule: "manifest.mode",
    files: (s) => s.manifests,
    mode: 0o600,
    rootGroup: true,
    required: "0600 root:root",
  },
  {
    rule: "kubelet.config.mode",
    files: (s) => (s.kubelet.configPath ?? "").split(", ").filter(Boolean),
    mode: 0o600,
    rootGroup: false,
    required: "0600 root:root",
  },
  {
    rule: "kubelet.config.mode",
    files: (s) => s.kubelet.flagSources.filter((p) => !p.startsWith("/proc/")),
    mode: 0o644,
    rootGroup: false,
    required: "0644 root:root or stricter",
  },
  {
    rule: "kubelet.client-ca.mode",
    files: (s) => [kubeletClientCaFile(s.kubelet)].filter((p): p is string => !!p),
    mode: 0o644,
    rootGroup: true,
    required: "0644 root:root or stricter",
  },
];

/** Static pod manifests, the kubelet's configuration and units, its client CA file. */
const configFiles: Rule = ({ snap }) =>
  CONFIG_FILES.flatMap((req) =>
    req.files(snap).flatMap((p) => {
      const f = snap.files.stat(p);
      const bad = f && (modeExceeds(f.mode, req.mode) || f.uid !== 0 || (req.rootGroup && f.gid !== 0));
      if (!f || !bad) return [];
      return [
        finding(
          req.rule,
          `${p} has mode ${octal(f.mode)}, owner ${f.uid}:${f.gid} (required: ${req.required}).`,
          p,
          { file: p, mode: octal(f.mode) },
        ),
      ];
    }),
  );

export const custodyRules: Rule[] = [caKeys, pkiModes, configFiles];
