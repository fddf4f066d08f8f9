import { basename } from "node:path";
import { type Document, isMap, isScalar, isSeq, LineCounter, parseAllDocuments } from "yaml";
import { InputError } from "../errors.js";
import { readTextLimited } from "../fsx/read.js";
import { assertYamlNesting } from "../fsx/yaml-guard.js";
import type { Sourced, SpecInput } from "./spec.js";

/**
 * Reads the kubeadm configuration file users already have (InitConfiguration and
 * ClusterConfiguration, kubeadm.k8s.io/v1beta3 or v1beta4, multi-document) plus kubepki's own
 * KubepkiConfiguration document, and returns the fields that shape the PKI, each with its line.
 * Unknown fields are errors, as kubeadm's strict decoding makes them.
 */
export const KUBEPKI_API_VERSION = "kubepki.io/v1alpha1";
const KUBEADM_VERSIONS = ["kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"];

type Shape = { [key: string]: Shape | true };
const ANY: true = true;

const EXTRA_ARGS = ANY;
const NODE_REGISTRATION: Shape = {
  name: ANY,
  criSocket: ANY,
  taints: ANY,
  kubeletExtraArgs: ANY,
  ignorePreflightErrors: ANY,
  imagePullPolicy: ANY,
  imagePullSerial: ANY,
};
const INIT_V1BETA3: Shape = {
  apiVersion: ANY,
  kind: ANY,
  bootstrapTokens: ANY,
  nodeRegistration: NODE_REGISTRATION,
  localAPIEndpoint: { advertiseAddress: ANY, bindPort: ANY },
  certificateKey: ANY,
  skipPhases: ANY,
  patches: ANY,
};
const INIT_V1BETA4: Shape = { ...INIT_V1BETA3, timeouts: ANY, dryRun: ANY };
const CONTROL_PLANE_COMPONENT = { extraArgs: EXTRA_ARGS, extraVolumes: ANY };
const CLUSTER_V1BETA3: Shape = {
  apiVersion: ANY,
  kind: ANY,
  etcd: {
    local: {
      imageRepository: ANY,
      imageTag: ANY,
      dataDir: ANY,
      extraArgs: EXTRA_ARGS,
      serverCertSANs: ANY,
      peerCertSANs: ANY,
    },
    external: { endpoints: ANY, caFile: ANY, certFile: ANY, keyFile: ANY },
  },
  networking: { serviceSubnet: ANY, podSubnet: ANY, dnsDomain: ANY },
  kubernetesVersion: ANY,
  controlPlaneEndpoint: ANY,
  apiServer: { ...CONTROL_PLANE_COMPONENT, certSANs: ANY, timeoutForControlPlane: ANY },
  controllerManager: CONTROL_PLANE_COMPONENT,
  scheduler: CONTROL_PLANE_COMPONENT,
  dns: ANY,
  certificatesDir: ANY,
  imageRepository: ANY,
  featureGates: ANY,
  clusterName: ANY,
};
const CLUSTER_V1BETA4: Shape = {
  ...CLUSTER_V1BETA3,
  etcd: {
    local: { ...((CLUSTER_V1BETA3.etcd as Shape).local as Shape), extraEnvs: ANY },
    external: (CLUSTER_V1BETA3.etcd as Shape).external as Shape,
  },
  apiServer: { ...CONTROL_PLANE_COMPONENT, extraEnvs: ANY, certSANs: ANY },
  controllerManager: { ...CONTROL_PLANE_COMPONENT, extraEnvs: ANY },
  scheduler: { ...CONTROL_PLANE_COMPONENT, extraEnvs: ANY },
  proxy: ANY,
  encryptionAlgorithm: ANY,
  certificateValidityPeriod: ANY,
  caCertificateValidityPeriod: ANY,
  upgrade: ANY,
};
const KUBEPKI: Shape = {
  apiVersion: ANY,
  kind: ANY,
  nodes: ANY,
  offlineDir: ANY,
  externalCA: ANY,
};

/** Documents of other tools that may share the file; they do not shape the PKI. */
const PASS_THROUGH = new Set([
  "kubeadm.k8s.io/JoinConfiguration",
  "kubeadm.k8s.io/ResetConfiguration",
  "kubeadm.k8s.io/UpgradeConfiguration",
  "kubelet.config.k8s.io/KubeletConfiguration",
  "kubeproxy.config.k8s.io/KubeProxyConfiguration",
]);

/** Reader for one document that reports errors as "file:line kind.path: message". */
class DocReader {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
    private readonly file: string,
    readonly kind: string,
  ) {}

  where(path: (string | number)[]): string {
    const node = this.doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0] ?? this.doc.contents?.range?.[0] ?? 0;
    const { line } = this.lines.linePos(offset);
    return `${this.file}:${line} ${[this.kind, ...path].join(".")}`;
  }

  private raw(path: (string | number)[]): unknown {
    return this.doc.getIn(path, true);
  }

  has(path: (string | number)[]): boolean {
    return this.raw(path) !== undefined;
  }

  string(path: (string | number)[]): Sourced<string> | undefined {
    const node = this.raw(path);
    if (node === undefined || (isScalar(node) && node.value === null)) return undefined;
    if (!isScalar(node) || (typeof node.value !== "string" && typeof node.value !== "number"))
      throw new InputError(`${this.where(path)}: must be a string`);
    return { value: String(node.value), where: this.where(path) };
  }

  number(path: (string | number)[]): Sourced<number> | undefined {
    const node = this.raw(path);
    if (node === undefined) return undefined;
    if (!isScalar(node) || typeof node.value !== "number")
      throw new InputError(`${this.where(path)}: must be a number`);
    return { value: node.value, where: this.where(path) };
  }

  boolean(path: (string | number)[]): Sourced<boolean> | undefined {
    const node = this.raw(path);
    if (node === undefined) return undefined;
    if (!isScalar(node) || typeof node.value !== "boolean")
      throw new InputError(`${this.where(path)}: must be true or false`);
    return { value: node.value, where: this.where(path) };
  }

  strings(path: (string | number)[]): Sourced<string>[] | undefined {
    const node = this.raw(path);
    if (node === undefined || (isScalar(node) && node.value === null)) return undefined;
    if (!isSeq(node)) throw new InputError(`${this.where(path)}: must be a list`);
    return node.items.map((_, i) => {
      const s = this.string([...path, i]);
      if (!s) throw new InputError(`${this.where([...path, i])}: must be a string`);
      return s;
    });
  }

  seqLength(path: (string | number)[]): number | undefined {
    const node = this.raw(path);
    if (node === undefined) return undefined;
    if (!isSeq(node)) throw new InputError(`${this.where(path)}: must be a list`);
    return node.items.length;
  }

  /** Refuses keys the shape does not know, naming the line of the first one. */
  checkShape(shape: Shape, path: (string | number)[] = []): void {
    const node = path.length === 0 ? this.doc.contents : this.raw(path);
    if (node === undefined || node === null) return;
    if (!isMap(node)) {
      if (path.length === 0 || !(isScalar(node) && node.value === null))
        throw new InputError(`${this.where(path)}: must be a mapping`);
      return;
    }
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const sub = shape[key];
      if (sub === undefined) throw new InputError(`${this.where([...path, key])}: unknown field "${key}"`);
      if (sub !== ANY) this.checkShape(sub, [...path, key]);
    }
  }
}

export function loadConfigFile(path: string): SpecInput {
  const text = readTextLimited(path, 1024 * 1024);
  if (text === undefined) throw new InputError(`--config: ${path} does not exist`);
  return parseConfig(text, basename(path));
}

export function parseConfig(text: string, file: string): SpecInput {
  assertYamlNesting(text, file);
  const lines = new LineCounter();
  // maxAliasCount bounds "billion laughs" alias expansion; uniqueKeys refuses duplicate keys.
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(docs)) throw new InputError(`${file}: not a YAML document stream`);
  const out: SpecInput = {};
  let sawKubeadm = false;
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) {
      const { line } = lines.linePos(err.pos[0]);
      throw new InputError(`${file}:${line}: invalid YAML: ${err.message.split("\n")[0]}`);
    }
    if (doc.contents === null) continue;
    try {
      doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new InputError(`${file}: YAML refused: ${(e as Error).message}`);
    }
    const probe = new DocReader(doc, lines, file, "document");
    const apiVersion = probe.string(["apiVersion"])?.value;
    const kind = probe.string(["kind"])?.value;
    if (!apiVersion || !kind)
      throw new InputError(`${probe.where([])}: every document needs apiVersion and kind`);
    const r = new DocReader(doc, lines, file, kind);
    const group = apiVersion.split("/")[0];
    if (KUBEADM_VERSIONS.includes(apiVersion) && kind === "InitConfiguration") {
      r.checkShape(apiVersion.endsWith("v1beta4") ? INIT_V1BETA4 : INIT_V1BETA3);
      out.nodeName = r.string(["nodeRegistration", "name"]);
      out.advertiseAddress = r.string(["localAPIEndpoint", "advertiseAddress"]);
      out.bindPort = r.number(["localAPIEndpoint", "bindPort"]);
      sawKubeadm = true;
    } else if (KUBEADM_VERSIONS.includes(apiVersion) && kind === "ClusterConfiguration") {
      readCluster(r, apiVersion, out);
      sawKubeadm = true;
    } else if (apiVersion === KUBEPKI_API_VERSION && kind === "KubepkiConfiguration") {
      readKubepki(r, out);
    } else if (group && PASS_THROUGH.has(`${group}/${kind}`)) {
      // another component's document; nothing in it shapes the PKI
    } else {
      throw new InputError(`${r.where(["kind"])}: unsupported document ${apiVersion} ${kind}`);
    }
  }
  if (!sawKubeadm && out.nodes === undefined && out.offlineDir === undefined && out.externalCA === undefined)
    throw new InputError(
      `${file}: no InitConfiguration, ClusterConfiguration or KubepkiConfiguration document`,
    );
  return out;
}

function readCluster(r: DocReader, apiVersion: string, out: SpecInput): void {
  const v1beta4 = apiVersion.endsWith("v1beta4");
  r.checkShape(v1beta4 ? CLUSTER_V1BETA4 : CLUSTER_V1BETA3);
  out.clusterName = r.string(["clusterName"]);
  out.controlPlaneEndpoint = r.string(["controlPlaneEndpoint"]);
  out.serviceSubnet = r.string(["networking", "serviceSubnet"]);
  out.dnsDomain = r.string(["networking", "dnsDomain"]);
  out.certificatesDir = r.string(["certificatesDir"]);
  out.apiServerCertSANs = r.strings(["apiServer", "certSANs"]);
  out.etcdServerCertSANs = r.strings(["etcd", "local", "serverCertSANs"]);
  out.etcdPeerCertSANs = r.strings(["etcd", "local", "peerCertSANs"]);
  if (r.has(["etcd", "external"])) {
    if (r.has(["etcd", "local"]))
      throw new InputError(`${r.where(["etcd"])}: local and external are exclusive`);
    out.externalEtcd = { value: true, where: r.where(["etcd", "external"]) };
  }
  if (v1beta4) {
    out.algorithm = r.string(["encryptionAlgorithm"]);
    out.certValidity = r.string(["certificateValidityPeriod"]);
    out.caValidity = r.string(["caCertificateValidityPeriod"]);
  } else {
    // v1beta3 chose ECDSA through the PublicKeysECDSA feature gate.
    const gate = r.boolean(["featureGates", "PublicKeysECDSA"]);
    if (gate?.value) out.algorithm = { value: "ECDSA-P256", where: gate.where };
    else if (gate) out.algorithm = { value: "RSA-2048", where: gate.where };
  }
}

function readKubepki(r: DocReader, out: SpecInput): void {
  r.checkShape(KUBEPKI);
  out.offlineDir = r.string(["offlineDir"]);
  out.externalCA = r.boolean(["externalCA"]);
  const count = r.seqLength(["nodes"]);
  if (count === undefined) return;
  out.nodes = [];
  for (let i = 0; i < count; i++) {
    r.checkShape({ name: ANY, addresses: ANY }, ["nodes", i]);
    const name = r.string(["nodes", i, "name"]);
    if (!name) throw new InputError(`${r.where(["nodes", i])}: a node needs a name`);
    const addresses = (r.strings(["nodes", i, "addresses"]) ?? []).map((a) => a.value);
    out.nodes.push({ value: { name: name.value, addresses }, where: r.where(["nodes", i]) });
  }
}
