import type { ExtKeyUsageName } from "../x509/certificate.js";
import type { LeafProfile } from "./profiles.js";
import type { ClusterSpec, NodeSpec, SanSet } from "./spec.js";

/**
 * The Kubernetes PKI as data: every CA, certificate and kubeconfig kubepki makes, with kubeadm's
 * names, files, subjects and SAN rules (docs/kubeadm-pki.md). init, renew,
 * check-expiration and the audit all read this one list.
 */
export type CaId = "ca" | "front-proxy-ca" | "etcd-ca";

/** The processes that read a file: what must restart after it changes. */
export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kubelet";

/** The order the Kubernetes documentation restarts components in after their certificates change. */
export const RESTART_ORDER: Component[] = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubelet",
];

export interface CaEntry {
  id: CaId;
  /** File stem under the certificates dir. */
  baseName: string;
  commonName: string;
  longName: string;
  /** How the audit names it ("cluster CA"). */
  shortName: string;
  /** The controller-manager signs CSRs with its key, so a control plane legitimately holds it. */
  signsCsrs: boolean;
}

/**
 * How a consumer uses a leaf over TLS: "server", "client", or "peer" (both ends of a connection:
 * serverAuth and clientAuth).
 */
export type TlsRole = "server" | "client" | "peer";

export interface LeafEntry {
  id: string;
  baseName: string;
  ca: CaId;
  longName: string;
  commonName: (spec: ClusterSpec) => string;
  organizations: string[];
  extKeyUsage: ExtKeyUsageName[];
  sans: (spec: ClusterSpec) => SanSet;
  /** The TLS role its consumers give it (what the audit checks its EKUs against). */
  role: TlsRole;
  /** SANs every copy must carry whatever the cluster's names (clients dial them); the audit checks them. */
  requiredSans?: SanSet;
  /** Who reads the pair. */
  consumers: Component[];
  /** Only with local (stacked) etcd. */
  localEtcd?: boolean;
}

export interface KubeconfigEntry {
  id: string;
  fileName: string;
  clientName: (spec: ClusterSpec) => string;
  organizations: string[];
  /** "endpoint": the control-plane endpoint; "local": this node's API endpoint. */
  server: "endpoint" | "local";
  /** Written to the offline folder, never into the node tree. */
  offline?: boolean;
  /** kubeadm leaves kubelet.conf to the kubelet's own rotation. */
  renewable: boolean;
  /** Who reads it (none: a person's credential). */
  consumers: Component[];
  /**
   * On a further control plane kubeadm join makes it (the kubelet's TLS bootstrap) and its preflight
   * refuses one already there (FileAvailable--etc-kubernetes-kubelet.conf).
   */
  madeByJoin?: boolean;
}

export const CAS: CaEntry[] = [
  {
    id: "ca",
    baseName: "ca",
    commonName: "kubernetes",
    longName: "self-signed Kubernetes CA",
    shortName: "cluster CA",
    signsCsrs: true,
  },
  {
    id: "front-proxy-ca",
    baseName: "front-proxy-ca",
    commonName: "front-proxy-ca",
    longName: "front-proxy CA",
    shortName: "front-proxy CA",
    signsCsrs: false,
  },
  {
    id: "etcd-ca",
    baseName: "etcd/ca",
    commonName: "etcd-ca",
    longName: "etcd CA",
    shortName: "etcd CA",
    signsCsrs: false,
  },
];

const none = (): SanSet => ({ dns: [], ips: [] });

/** The in-cluster names of the API server, whatever the cluster's DNS domain. */
const API_SERVER_REQUIRED: SanSet = {
  dns: ["kubernetes", "kubernetes.default", "kubernetes.default.svc"],
  ips: [],
};
/** What a stacked etcd's local clients (kube-apiserver, probes) dial. */
const ETCD_SERVER_REQUIRED: SanSet = { dns: ["localhost"], ips: ["127.0.0.1"] };

function apiServerSans(spec: ClusterSpec): SanSet {
  const dns = [spec.nodeName, ...API_SERVER_REQUIRED.dns, `kubernetes.default.svc.${spec.dnsDomain}`];
  const ips = [spec.serviceIp, spec.advertiseAddress];
  if (spec.controlPlaneEndpoint) {
    const host = spec.controlPlaneEndpoint.host;
    if (/^[\d.]+$/.test(host) || host.includes(":")) ips.push(host);
    else dns.push(host);
  }
  return { dns: [...dns, ...spec.apiServerCertSANs.dns], ips: [...ips, ...spec.apiServerCertSANs.ips] };
}

function etcdSans(extra: (spec: ClusterSpec) => SanSet) {
  return (spec: ClusterSpec): SanSet => {
    const e = extra(spec);
    return {
      dns: [spec.nodeName, ...ETCD_SERVER_REQUIRED.dns, ...e.dns],
      ips: [spec.advertiseAddress, ...ETCD_SERVER_REQUIRED.ips, "::1", ...e.ips],
    };
  };
}

export const LEAVES: LeafEntry[] = [
  {
    id: "apiserver",
    baseName: "apiserver",
    ca: "ca",
    longName: "certificate for serving the Kubernetes API",
    commonName: () => "kube-apiserver",
    organizations: [],
    extKeyUsage: ["serverAuth"],
    sans: apiServerSans,
    role: "server",
    requiredSans: API_SERVER_REQUIRED,
    consumers: ["kube-apiserver"],
  },
  {
    id: "apiserver-kubelet-client",
    baseName: "apiserver-kubelet-client",
    ca: "ca",
    longName: "certificate for the API server to connect to kubelet",
    commonName: () => "kube-apiserver-kubelet-client",
    organizations: ["kubeadm:cluster-admins"],
    extKeyUsage: ["clientAuth"],
    sans: none,
    role: "client",
    consumers: ["kube-apiserver"],
  },
  {
    id: "front-proxy-client",
    baseName: "front-proxy-client",
    ca: "front-proxy-ca",
    longName: "certificate for the front proxy client",
    commonName: () => "front-proxy-client",
    organizations: [],
    extKeyUsage: ["clientAuth"],
    sans: none,
    role: "client",
    consumers: ["kube-apiserver"],
  },
  {
    id: "etcd-server",
    baseName: "etcd/server",
    ca: "etcd-ca",
    longName: "certificate for serving etcd",
    commonName: (s) => s.nodeName,
    organizations: [],
    extKeyUsage: ["serverAuth", "clientAuth"],
    sans: etcdSans((s) => s.etcdServerCertSANs),
    localEtcd: true,
    role: "peer",
    requiredSans: ETCD_SERVER_REQUIRED,
    consumers: ["etcd"],
  },
  {
    id: "etcd-peer",
    baseName: "etcd/peer",
    ca: "etcd-ca",
    longName: "certificate for etcd nodes to communicate with each other",
    commonName: (s) => s.nodeName,
    organizations: [],
    extKeyUsage: ["serverAuth", "clientAuth"],
    sans: etcdSans((s) => s.etcdPeerCertSANs),
    localEtcd: true,
    role: "peer",
    consumers: ["etcd"],
  },
  {
    id: "etcd-healthcheck-client",
    baseName: "etcd/healthcheck-client",
    ca: "etcd-ca",
    longName: "certificate for liveness probes to healthcheck etcd",
    commonName: () => "kube-etcd-healthcheck-client",
    organizations: [],
    extKeyUsage: ["clientAuth"],
    sans: none,
    localEtcd: true,
    role: "client",
    consumers: [],
  },
  {
    id: "apiserver-etcd-client",
    baseName: "apiserver-etcd-client",
    ca: "etcd-ca",
    longName: "certificate the apiserver uses to access etcd",
    commonName: () => "kube-apiserver-etcd-client",
    organizations: [],
    extKeyUsage: ["clientAuth"],
    sans: none,
    localEtcd: true,
    role: "client",
    consumers: ["kube-apiserver"],
  },
];

export const KUBECONFIGS: KubeconfigEntry[] = [
  {
    id: "admin.conf",
    fileName: "admin.conf",
    clientName: () => "kubernetes-admin",
    organizations: ["kubeadm:cluster-admins"],
    server: "endpoint",
    renewable: true,
    consumers: [],
  },
  {
    id: "super-admin.conf",
    fileName: "super-admin.conf",
    clientName: () => "kubernetes-super-admin",
    organizations: ["system:masters"],
    server: "endpoint",
    offline: true,
    renewable: true,
    consumers: [],
  },
  {
    id: "kubelet.conf",
    fileName: "kubelet.conf",
    clientName: (s) => `system:node:${s.nodeName}`,
    organizations: ["system:nodes"],
    server: "endpoint",
    renewable: false,
    consumers: ["kubelet"],
    madeByJoin: true,
  },
  {
    id: "controller-manager.conf",
    fileName: "controller-manager.conf",
    clientName: () => "system:kube-controller-manager",
    organizations: [],
    server: "local",
    renewable: true,
    consumers: ["kube-controller-manager"],
  },
  {
    id: "scheduler.conf",
    fileName: "scheduler.conf",
    clientName: () => "system:kube-scheduler",
    organizations: [],
    server: "local",
    renewable: true,
    consumers: ["kube-scheduler"],
  },
];

/**
 * kubepki's addition: a kubelet serving certificate signed by the cluster CA, shaped as the
 * kubernetes.io/kubelet-serving signer would issue it (CN system:node:<name>, O system:nodes,
 * serverAuth, the node's addresses as SANs), so kube-apiserver can verify it with
 * --kubelet-certificate-authority. init (every --node) and `node add` sign with this profile.
 */
export function kubeletServingProfile(node: NodeSpec): LeafProfile {
  return {
    commonName: `system:node:${node.name}`,
    organizations: ["system:nodes"],
    extKeyUsage: ["serverAuth"],
    sans: { dns: node.dnsNames, ips: node.ips },
  };
}

export function kubeletServingEntry(node: NodeSpec): LeafEntry {
  const profile = kubeletServingProfile(node);
  return {
    id: "kubelet",
    baseName: "kubelet",
    ca: "ca",
    longName: `kubelet serving certificate of node ${node.name}`,
    commonName: () => profile.commonName,
    organizations: profile.organizations,
    extKeyUsage: profile.extKeyUsage,
    sans: () => profile.sans,
    role: "server",
    consumers: ["kubelet"],
  };
}

export function leavesFor(spec: ClusterSpec): LeafEntry[] {
  return LEAVES.filter((l) => !(l.localEtcd && spec.externalEtcd));
}

export function casFor(spec: ClusterSpec): CaEntry[] {
  return CAS.filter((c) => !(c.id === "etcd-ca" && spec.externalEtcd));
}

export function leafEntry(id: string): LeafEntry {
  const found = LEAVES.find((l) => l.id === id);
  if (!found) throw new Error(`unknown certificate ${id}`);
  return found;
}

export function kubeconfigEntry(id: string): KubeconfigEntry {
  const found = KUBECONFIGS.find((k) => k.id === id);
  if (!found) throw new Error(`unknown kubeconfig ${id}`);
  return found;
}

/** The kubelet's files in its own PKI folder: the serving pair kubepki signs, the client pair it rotates. */
export const KUBELET_FILES = {
  servingCert: "kubelet.crt",
  servingKey: "kubelet.key",
  clientCurrent: "kubelet-client-current.pem",
} as const;

/** The kubeconfigs a person uses (no component reads them): admin.conf and super-admin.conf. */
export const adminKubeconfigs = (): KubeconfigEntry[] => KUBECONFIGS.filter((k) => k.consumers.length === 0);

/** kubeadm's kubeconfig for the kubelet's TLS bootstrap (a bootstrap token, no certificate of ours). */
export const BOOTSTRAP_KUBELET_CONF = "bootstrap-kubelet.conf";

/**
 * kubeadm's name for a file control planes share, as its copycerts phase names the entries of the
 * kubeadm-certs Secret: the path under the certificates folder with "/" as "-" (`etcd-ca.key`).
 */
export function sharedFileName(baseName: string, ext: ".crt" | ".key" | ".pub"): string {
  return `${baseName.replaceAll("/", "-")}${ext}`;
}

export function caEntry(id: CaId): CaEntry {
  const found = CAS.find((c) => c.id === id);
  if (!found) throw new Error(`unknown CA ${id}`);
  return found;
}

/** How many keys init makes for a tree that has none of its files yet (CAs, leaves, kubelets, kubeconfigs, sa). */
export function plannedKeyCount(spec: ClusterSpec): number {
  const kubelets = spec.nodes.length - (spec.kubeletServerTLSBootstrap ? 1 : 0);
  return casFor(spec).length + leavesFor(spec).length + kubelets + KUBECONFIGS.length + 1;
}

/** The CN client-go's GenerateSelfSignedCertKey gives a kubelet's throwaway certificate: <host>@<unix-seconds>. */
export const KUBELET_SELF_SIGNED_CN = /@\d{9,}$/;

/**
 * The throwaway serving certificate a kubelet makes for itself when given none (client-go's
 * GenerateSelfSignedCertKey): CN `<host>@<unix-seconds>`, issued by a `<host>-ca@<unix-seconds>` CA
 * bundled in the same file, or self-signed. The API server cannot verify it.
 */
export function isKubeletSelfSigned(commonName: string, issuerCommonName: string): boolean {
  if (!KUBELET_SELF_SIGNED_CN.test(commonName)) return false;
  return issuerCommonName === commonName || /-ca@\d{9,}$/.test(issuerCommonName);
}

/**
 * CA rotation (docs/rotation.md). What `rotate-ca` rotates: the three CAs and the service-account
 * key pair (kube-apiserver verifies tokens with sa.pub, signs them with sa.key).
 */
export type RotationId = CaId | "sa";
export const ROTATION_IDS: readonly RotationId[] = ["ca", "etcd-ca", "front-proxy-ca", "sa"];

/**
 * The trust bundles, relative to the certificates dir: what every component that only *trusts* a
 * CA reads, old and new together during a rotation. The signing files (`ca.crt` next to `ca.key`,
 * `sa.key`) stay one certificate or key: kube-controller-manager's --cluster-signing-cert-file
 * refuses a file with more than one certificate ("expected 1 certificate, found 2").
 */
export const TRUST_BUNDLES: Record<RotationId, string> = {
  ca: "ca-trust.crt",
  "etcd-ca": "etcd/ca-trust.crt",
  "front-proxy-ca": "front-proxy-ca-trust.crt",
  sa: "sa-trust.pub",
};

/** The signing files of each rotation, relative to the certificates dir: one certificate (public key) and its key. */
export const SIGNING_FILES: Record<RotationId, { cert: string; key: string }> = {
  ca: { cert: "ca.crt", key: "ca.key" },
  "etcd-ca": { cert: "etcd/ca.crt", key: "etcd/ca.key" },
  "front-proxy-ca": { cert: "front-proxy-ca.crt", key: "front-proxy-ca.key" },
  sa: { cert: "sa.pub", key: "sa.key" },
};

/** Where the next CA waits between `trust` and `sign` (beside the signing files; the key beside the old key). */
export function nextCaFiles(id: RotationId): { cert: string; key: string } {
  const f = SIGNING_FILES[id];
  const next = (p: string) => p.replace(/\.(crt|key|pub)$/, ".next.$1");
  return { cert: next(f.cert), key: next(f.key) };
}

/** A component flag (static pod manifest, kubeadm extraArgs) that names a file the component only trusts. */
export interface TrustFlag {
  component: Component;
  flag: string;
  id: RotationId;
  /** kubeadm sets it: the kubeadm configuration gets it as an extraArg, so `kubeadm upgrade` keeps the bundle. */
  kubeadm: boolean;
}

/**
 * Every trust flag kubeadm's control plane uses, by CA (docs/kubeadm-pki.md, "Flags"; kube-scheduler
 * has the two only when given them). During a rotation each names the CA's trust bundle.
 */
export const TRUST_FLAGS: readonly TrustFlag[] = [
  { component: "kube-apiserver", flag: "client-ca-file", id: "ca", kubeadm: true },
  { component: "kube-apiserver", flag: "kubelet-certificate-authority", id: "ca", kubeadm: true },
  { component: "kube-apiserver", flag: "requestheader-client-ca-file", id: "front-proxy-ca", kubeadm: true },
  { component: "kube-apiserver", flag: "etcd-cafile", id: "etcd-ca", kubeadm: true },
  { component: "kube-apiserver", flag: "service-account-key-file", id: "sa", kubeadm: true },
  { component: "kube-controller-manager", flag: "root-ca-file", id: "ca", kubeadm: true },
  { component: "kube-controller-manager", flag: "client-ca-file", id: "ca", kubeadm: true },
  {
    component: "kube-controller-manager",
    flag: "requestheader-client-ca-file",
    id: "front-proxy-ca",
    kubeadm: true,
  },
  { component: "kube-scheduler", flag: "client-ca-file", id: "ca", kubeadm: false },
  { component: "kube-scheduler", flag: "requestheader-client-ca-file", id: "front-proxy-ca", kubeadm: false },
  { component: "etcd", flag: "trusted-ca-file", id: "etcd-ca", kubeadm: true },
  { component: "etcd", flag: "peer-trusted-ca-file", id: "etcd-ca", kubeadm: true },
];

/** kubeadm's static pod folder and the manifest of each control-plane component in it. */
export const STATIC_POD_DIR = "/etc/kubernetes/manifests";
export const STATIC_POD_MANIFEST: Partial<Record<Component, string>> = {
  etcd: "etcd.yaml",
  "kube-apiserver": "kube-apiserver.yaml",
  "kube-controller-manager": "kube-controller-manager.yaml",
  "kube-scheduler": "kube-scheduler.yaml",
};

/** Where kubeadm's ClusterConfiguration keeps each component's extra flags. */
export const KUBEADM_EXTRA_ARGS: Partial<Record<Component, string[]>> = {
  "kube-apiserver": ["apiServer", "extraArgs"],
  "kube-controller-manager": ["controllerManager", "extraArgs"],
  "kube-scheduler": ["scheduler", "extraArgs"],
  etcd: ["etcd", "local", "extraArgs"],
};

/** The kubelet's configuration file as kubeadm writes it; its trust field is authentication.x509.clientCAFile. */
export const KUBELET_CONFIG_FILE = "/var/lib/kubelet/config.yaml";

/** The kubeadm configuration kubepki writes and manages, under etc/kubernetes/kubepki/. */
export const KUBEADM_CONFIG_FILE = "kubeadm-config.yaml";

/** kubepki's own pairs from the cluster CA (the webhook's), under etc/kubernetes/kubepki/, and its kubeconfig. */
export const KUBEPKI_PAIRS = ["webhook", "apiserver-authz-client"] as const;
export const KUBEPKI_KUBECONFIGS = ["webhook.kubeconfig"] as const;

/**
 * kubepki's own files (not kubeadm's): the client pair an etcd-backed ledger connects with, issued
 * from the etcd CA (clientAuth only), key 0600, recorded in the ledger. Paths relative to the root.
 */
export const KUBEPKI_ETCD_CLIENT = {
  commonName: "kubepki-etcd-client",
  ca: "etcd-ca" as CaId,
  cert: "etc/kubernetes/kubepki/etcd-client.crt",
  key: "etc/kubernetes/kubepki/etcd-client.key",
  profile: "kubepki:etcd-client",
} as const;
