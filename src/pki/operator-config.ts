import { Document } from "yaml";
import { canonicalIp } from "../x509/ip.js";
import { type ConfigChange, DocEditor } from "./config-edit.js";
import { formatHours, parseDuration } from "./duration.js";
import { KUBEADM_GROUP, type KubeadmVersion } from "./kubeadm-schema.js";
import { hostPort, splitHostPort } from "./net.js";
import {
  type ClusterSpec,
  type ConfigSource,
  KUBEADM_DEFAULTS,
  type SanSet,
  type SpecInput,
} from "./spec.js";

/** The node paths of this node's kubelet serving pair, as the kubelet reads them. */
export const KUBELET_SERVING_CERT = "/var/lib/kubelet/pki/kubelet.crt";
export const KUBELET_SERVING_KEY = "/var/lib/kubelet/pki/kubelet.key";

interface Doc {
  kind: string;
  doc: Document;
}

/**
 * The operator's --config file, every document and field kept in its own apiVersion, with only what
 * kubepki needs added or changed: the settings the certificates were made with where flags changed
 * them, kube-apiserver's --kubelet-certificate-authority, etcd's --client-crl-file and the kubelet's
 * serving pair. The parsed documents are edited (not re-serialised from plain objects), so comments,
 * order and style stay. Each edit is returned with its reason.
 */
export function mergeOperatorConfig(
  spec: ClusterSpec,
  source: ConfigSource,
): { yaml: string; changes: ConfigChange[]; notes: string[] } {
  const docs: Doc[] = source.documents.map((d) => ({ kind: d.kind, doc: d.doc.clone() }));
  const changes: ConfigChange[] = [];
  const notes: string[] = [];
  const kubeadmDoc = source.documents.find((d) => d.apiVersion.startsWith(`${KUBEADM_GROUP}/`));
  const version = (kubeadmDoc?.apiVersion.split("/")[1] ?? "v1beta4") as KubeadmVersion;
  const apiVersion = `${KUBEADM_GROUP}/${version}`;
  const none = (kind: string, what: string) => `${source.file} has no ${kind}; ${what}`;

  const init = editorFor(docs, "InitConfiguration", apiVersion, 0, changes, () =>
    none("InitConfiguration", "it records this node's name and address, which the certificates carry"),
  );
  editInit(init, spec);
  const afterInit = docs.findIndex((d) => d.kind === "InitConfiguration") + 1;
  const cluster = editorFor(docs, "ClusterConfiguration", apiVersion, afterInit, changes, () =>
    none("ClusterConfiguration", "it carries the settings below"),
  );
  editCluster(cluster, spec, version, notes);
  editKubelet(docs, spec, changes, notes, none);
  return { yaml: render(source.file, docs), changes, notes };
}

/** The document of that kind, added at `at` (and recorded) when the file has none. */
function editorFor(
  docs: Doc[],
  kind: string,
  apiVersion: string,
  at: number,
  changes: ConfigChange[],
  reason: () => string,
): DocEditor {
  let found = docs.find((d) => d.kind === kind);
  if (!found) {
    found = { kind, doc: new Document({ apiVersion, kind }) };
    docs.splice(at, 0, found);
    changes.push({
      kind,
      path: [],
      action: "added",
      value: { apiVersion, kind },
      text: `${kind} (${apiVersion})`,
      reason: reason(),
    });
  }
  return new DocEditor(found.doc, kind, changes);
}

/** Why a value the certificates were made with goes into the file. */
function because(spec: ClusterSpec, key: keyof SpecInput, what: string): string {
  const origin = spec.origins?.[key];
  return `${what} (${origin ? `from ${origin}` : "kubepki's default"})`;
}

function editInit(e: DocEditor, spec: ClusterSpec): void {
  e.scalar(
    ["nodeRegistration", "name"],
    spec.nodeName,
    spec.origins?.nodeName
      ? because(spec, "nodeName", "the etcd and kubelet certificates carry this node name")
      : "the etcd and kubelet certificates carry this node name (this machine's host name)",
  );
  e.scalar(
    ["localAPIEndpoint", "advertiseAddress"],
    spec.advertiseAddress,
    spec.origins?.advertiseAddress
      ? because(spec, "advertiseAddress", "the API server and etcd certificates carry this address")
      : "the API server and etcd certificates carry this address (this machine's first IPv4 address)",
    { same: (v) => canonicalIp(String(v)) === canonicalIp(spec.advertiseAddress) },
  );
  e.scalar(["localAPIEndpoint", "bindPort"], spec.bindPort, "the kubeconfigs point at this port", {
    implicit: KUBEADM_DEFAULTS.bindPort,
  });
}

function editCluster(e: DocEditor, spec: ClusterSpec, version: KubeadmVersion, notes: string[]): void {
  const pki = spec.certificatesDir;
  const madeWith = (key: keyof SpecInput) =>
    because(spec, key, "the certificates and kubeconfigs were made with it");
  e.scalar(["clusterName"], spec.clusterName, madeWith("clusterName"), {
    implicit: KUBEADM_DEFAULTS.clusterName,
  });
  const cpe = spec.controlPlaneEndpoint;
  if (cpe)
    e.scalar(["controlPlaneEndpoint"], hostPort(cpe.host, cpe.port), madeWith("controlPlaneEndpoint"), {
      same: (v) => {
        const hp = splitHostPort(String(v), "controlPlaneEndpoint");
        return sanKey(hp.host) === sanKey(cpe.host) && (hp.port ?? spec.bindPort) === cpe.port;
      },
    });
  const net = {
    implicit: KUBEADM_DEFAULTS.serviceSubnet,
    same: (v: unknown) => String(v).trim() === spec.serviceSubnet,
  };
  e.scalar(["networking", "serviceSubnet"], spec.serviceSubnet, madeWith("serviceSubnet"), net);
  e.scalar(["networking", "dnsDomain"], spec.dnsDomain, madeWith("dnsDomain"), {
    implicit: KUBEADM_DEFAULTS.dnsDomain,
  });
  e.scalar(["certificatesDir"], pki, madeWith("certificatesDir"), {
    implicit: KUBEADM_DEFAULTS.certificatesDir,
  });
  editKeysAndValidity(e, spec, version, notes);
  e.appendMissing(
    ["apiServer", "certSANs"],
    sans(spec.apiServerCertSANs),
    "the API server certificate carries it (from --apiserver-cert-extra-sans); kubeadm keeps it on renewal",
    sanKey,
  );
  const style = version === "v1beta3" ? "map" : "list";
  e.arg(
    ["apiServer", "extraArgs"],
    style,
    "kubelet-certificate-authority",
    `${pki}/ca.crt`,
    "kube-apiserver verifies the kubelets' serving certificates, which kubepki signed with the cluster CA",
  );
  if (spec.externalEtcd) return;
  e.arg(
    ["etcd", "local", "extraArgs"],
    style,
    "client-crl-file",
    `${pki}/etcd/ca.crl`,
    "etcd refuses the client certificates `kubepki revoke` lists in this CRL (re-read at every handshake)",
  );
  const etcdSan = "the etcd certificate carries it; kubeadm keeps it on renewal";
  e.appendMissing(["etcd", "local", "serverCertSANs"], sans(spec.etcdServerCertSANs), etcdSan, sanKey);
  e.appendMissing(["etcd", "local", "peerCertSANs"], sans(spec.etcdPeerCertSANs), etcdSan, sanKey);
}

/** Key algorithm and validity: v1beta4 fields; v1beta3 has only the PublicKeysECDSA gate. */
function editKeysAndValidity(
  e: DocEditor,
  spec: ClusterSpec,
  version: KubeadmVersion,
  notes: string[],
): void {
  const why = "kubeadm makes new keys of this algorithm when it renews or adds certificates";
  const defaults = {
    cert: parseDuration(KUBEADM_DEFAULTS.certValidity, "-"),
    ca: parseDuration(KUBEADM_DEFAULTS.caValidity, "-"),
  };
  if (version === "v1beta4") {
    e.scalar(["encryptionAlgorithm"], spec.algorithm, because(spec, "algorithm", why), {
      implicit: "RSA-2048",
    });
    for (const [field, ms, key] of [
      ["certificateValidityPeriod", spec.certValidityMs, "certValidity"],
      ["caCertificateValidityPeriod", spec.caValidityMs, "caValidity"],
    ] as const)
      e.scalar([field], formatHours(ms), because(spec, key, "kubeadm renews certificates for this long"), {
        implicit:
          field === "certificateValidityPeriod" ? KUBEADM_DEFAULTS.certValidity : KUBEADM_DEFAULTS.caValidity,
        same: (v) => sameDuration(v, ms),
      });
    return;
  }
  if (spec.algorithm === "ECDSA-P256" || spec.algorithm === "RSA-2048")
    e.scalar(
      ["featureGates", "PublicKeysECDSA"],
      spec.algorithm === "ECDSA-P256",
      because(spec, "algorithm", why),
      {
        implicit: false,
      },
    );
  else
    notes.push(
      `kubeadm.k8s.io/v1beta3 cannot name ${spec.algorithm}: \`kubeadm certs renew\` would make RSA-2048 keys; renew with \`kubepki certs renew\` or move to v1beta4`,
    );
  if (spec.certValidityMs !== defaults.cert || spec.caValidityMs !== defaults.ca)
    notes.push(
      "kubeadm.k8s.io/v1beta3 has no certificateValidityPeriod: `kubeadm certs renew` would make 1-year certificates; renew with `kubepki certs renew` or move to v1beta4",
    );
}

/**
 * The kubelet serves the pair kubepki signed, unless the operator chose serverTLSBootstrap: then
 * that choice stays and the kubelet asks for its certificate with a CSR, which someone must approve.
 */
function editKubelet(
  docs: Doc[],
  spec: ClusterSpec,
  changes: ConfigChange[],
  notes: string[],
  none: (kind: string, what: string) => string,
): void {
  if (spec.kubeletServerTLSBootstrap) {
    notes.push(
      "KubeletConfiguration.serverTLSBootstrap: true is kept, so kubepki signs no serving pair for this node " +
        `(no ${KUBELET_SERVING_CERT}): the kubelet requests its own with a kubernetes.io/kubelet-serving CSR, which nothing approves by default: ` +
        "run a CSR approver for kubelet-serving CSRs (e.g. kubelet-csr-approver) or approve each with `kubectl certificate approve`; " +
        "kube-controller-manager signs them with the cluster CA, which kube-apiserver's --kubelet-certificate-authority trusts" +
        (spec.externalCA ? ". With --external-ca it cannot sign them: a separate signer must" : ""),
    );
    return;
  }
  const e = editorFor(
    docs,
    "KubeletConfiguration",
    "kubelet.config.k8s.io/v1beta1",
    docs.length,
    changes,
    () => none("KubeletConfiguration", "it points the kubelet at its serving pair"),
  );
  const why =
    "the kubelet serves the certificate kubepki signed with the cluster CA, which kube-apiserver verifies";
  e.scalar(["tlsCertFile"], KUBELET_SERVING_CERT, why);
  e.scalar(["tlsPrivateKeyFile"], KUBELET_SERVING_KEY, why);
}

function sans(set: SanSet): string[] {
  return [...set.dns, ...set.ips];
}

function sanKey(value: string): string {
  return canonicalIp(value).toLowerCase();
}

function sameDuration(value: unknown, ms: number): boolean {
  try {
    return parseDuration(String(value), "-") === ms;
  } catch {
    return false;
  }
}

function render(file: string, docs: Doc[]): string {
  const header =
    `# kubeadm configuration for: kubeadm init --config <this file>\n` +
    `# Written by kubepki init from ${file}: its documents, plus what kubepki init listed as added or changed.\n`;
  const parts = docs.map(({ doc }, i) => {
    const text = doc.toString({ flowCollectionPadding: false, lineWidth: 0 });
    return i === 0 || text.startsWith("---") ? text : `---\n${text}`;
  });
  return header + parts.join("");
}
