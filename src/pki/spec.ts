import { hostname, networkInterfaces } from "node:os";
import { isAbsolute } from "node:path";
import type { Document } from "yaml";
import { InputError } from "../errors.js";
import { DEFAULT_KEY_ALGORITHM, type KeyAlgorithm, parseKeyAlgorithm } from "../x509/algorithms.js";
import { parseDuration } from "./duration.js";
import { firstServiceIp, splitHostPort } from "./net.js";
import { classifySan, isDns1123Subdomain, requireDnsName, requireIp } from "./validate.js";

/** A value with where it came from ("--service-cidr", "kubeadm.yaml:12 ClusterConfiguration.networking..."). */
export interface Sourced<T> {
  value: T;
  where: string;
}

export interface NodeInput {
  name: string;
  addresses: string[];
}

/** One document of the operator's --config file, as parsed (comments and order kept). */
export interface ConfigDocument {
  apiVersion: string;
  kind: string;
  doc: Document.Parsed;
}

/** The operator's --config file: the kubeadm configuration init writes is built on it. */
export interface ConfigSource {
  file: string;
  documents: ConfigDocument[];
}

/** Raw settings from flags or a config file; every field optional, each carrying its origin. */
export interface SpecInput {
  nodeName?: Sourced<string>;
  advertiseAddress?: Sourced<string>;
  bindPort?: Sourced<number>;
  controlPlaneEndpoint?: Sourced<string>;
  clusterName?: Sourced<string>;
  serviceSubnet?: Sourced<string>;
  dnsDomain?: Sourced<string>;
  apiServerCertSANs?: Sourced<string>[];
  etcdServerCertSANs?: Sourced<string>[];
  etcdPeerCertSANs?: Sourced<string>[];
  externalEtcd?: Sourced<boolean>;
  certificatesDir?: Sourced<string>;
  algorithm?: Sourced<string>;
  certValidity?: Sourced<string>;
  caValidity?: Sourced<string>;
  nodes?: Sourced<NodeInput>[];
  offlineDir?: Sourced<string>;
  externalCA?: Sourced<boolean>;
  /** KubepkiConfiguration `store` and `etcd`: where the ledger lives, as the --store/--etcd-* flags name them. */
  store?: Sourced<Record<string, string>>;
  source?: ConfigSource;
}

/** List inputs: a flag adds to the file's list (kubeadm's --apiserver-cert-extra-sans does the same). */
const LIST_INPUTS = new Set<keyof SpecInput>([
  "apiServerCertSANs",
  "etcdServerCertSANs",
  "etcdPeerCertSANs",
  "nodes",
]);

export interface NodeSpec {
  name: string;
  ips: string[];
  dnsNames: string[];
}

export interface SanSet {
  dns: string[];
  ips: string[];
}

/** Everything that shapes the PKI, validated. */
export interface ClusterSpec {
  nodeName: string;
  advertiseAddress: string;
  bindPort: number;
  controlPlaneEndpoint?: { host: string; port: number };
  clusterName: string;
  serviceSubnet: string;
  serviceIp: string;
  dnsDomain: string;
  apiServerCertSANs: SanSet;
  etcdServerCertSANs: SanSet;
  etcdPeerCertSANs: SanSet;
  externalEtcd: boolean;
  /** Path on the node, e.g. /etc/kubernetes/pki. */
  certificatesDir: string;
  algorithm: KeyAlgorithm;
  certValidityMs: number;
  caValidityMs: number;
  /** Nodes whose kubelet serving certificate kubepki signs; the local node comes first. */
  nodes: NodeSpec[];
  offlineDir?: string;
  externalCA: boolean;
  /** Where the ledger lives, from the KubepkiConfiguration (flags override it). */
  store: Record<string, string>;
  /** The operator's KubeletConfiguration has serverTLSBootstrap: true (the kubelet asks for its serving cert by CSR). */
  kubeletServerTLSBootstrap: boolean;
  warnings: string[];
  /** The operator's --config file, when one was given. */
  source?: ConfigSource;
  /** Where each single-valued setting came from ("--cluster-name", "kubeadm.yaml:3 ..."), if given. */
  origins?: Partial<Record<keyof SpecInput, string>>;
}

export const KUBEADM_DEFAULTS = {
  clusterName: "kubernetes",
  serviceSubnet: "10.96.0.0/12",
  dnsDomain: "cluster.local",
  bindPort: 6443,
  certificatesDir: "/etc/kubernetes/pki",
  certValidity: "8760h",
  caValidity: "87600h",
};

/** This node's name and address, the API server's port and endpoint (errors in that order). */
function resolveIdentity(input: SpecInput, warnings: string[]) {
  const nodeName = input.nodeName
    ? requireDnsName(input.nodeName.value, input.nodeName.where)
    : defaultNodeName(warnings);
  const advertiseAddress = input.advertiseAddress
    ? requireIp(input.advertiseAddress.value, input.advertiseAddress.where)
    : defaultAdvertiseAddress(warnings);
  const bindPort = input.bindPort?.value ?? KUBEADM_DEFAULTS.bindPort;
  if (!Number.isInteger(bindPort) || bindPort < 1 || bindPort > 65535)
    throw new InputError(`${input.bindPort?.where ?? "bindPort"}: ${bindPort} is not a valid port`);
  if (input.source && !input.source.documents.some((d) => d.kind === "InitConfiguration"))
    warnings.push(
      `${input.source.file} has no InitConfiguration: this machine's name (${nodeName}) and address ` +
        `(${advertiseAddress}) were used; kubeadm-config.yaml records them`,
    );
  const controlPlaneEndpoint = input.controlPlaneEndpoint?.value
    ? parseEndpoint(input.controlPlaneEndpoint, bindPort)
    : undefined;
  return { nodeName, advertiseAddress, bindPort, controlPlaneEndpoint };
}

/** The cluster's name, service subnet (and the API server's service IP) and DNS domain. */
function resolveNetwork(input: SpecInput) {
  const clusterName = input.clusterName?.value ?? KUBEADM_DEFAULTS.clusterName;
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(clusterName))
    throw new InputError(
      `${input.clusterName?.where ?? "clusterName"}: "${clusterName}" is not a valid cluster name`,
    );
  const serviceSubnet = input.serviceSubnet?.value ?? KUBEADM_DEFAULTS.serviceSubnet;
  const serviceIp = firstServiceIp(serviceSubnet, input.serviceSubnet?.where);
  const dnsDomain = input.dnsDomain
    ? requireDnsName(input.dnsDomain.value, input.dnsDomain.where)
    : KUBEADM_DEFAULTS.dnsDomain;
  return { clusterName, serviceSubnet, serviceIp, dnsDomain };
}

/** Where the certificates go, their key algorithm and lifetimes. */
function resolveCrypto(input: SpecInput, warnings: string[]) {
  const certificatesDir = input.certificatesDir?.value ?? KUBEADM_DEFAULTS.certificatesDir;
  if (!isAbsolute(certificatesDir) || certificatesDir.split("/").includes(".."))
    throw new InputError(
      `${input.certificatesDir?.where}: "${certificatesDir}" must be an absolute path without ".."`,
    );
  const algorithm = input.algorithm
    ? parseKeyAlgorithm(input.algorithm.value, input.algorithm.where)
    : DEFAULT_KEY_ALGORITHM;
  const certValidityMs = parseDuration(
    input.certValidity?.value ?? KUBEADM_DEFAULTS.certValidity,
    input.certValidity?.where ?? "certificateValidityPeriod",
  );
  const caValidityMs = parseDuration(
    input.caValidity?.value ?? KUBEADM_DEFAULTS.caValidity,
    input.caValidity?.where ?? "caCertificateValidityPeriod",
  );
  if (certValidityMs > caValidityMs)
    warnings.push("the certificate validity exceeds the CA validity: leaves are cut to end with their CA");
  return { certificatesDir, algorithm, certValidityMs, caValidityMs };
}

/** Merges inputs (later ones win: flags after the config file) and validates the result. */
export function resolveSpec(inputs: SpecInput[]): ClusterSpec {
  const input = mergeInputs(inputs);
  const warnings: string[] = [];
  const { nodeName, advertiseAddress, bindPort, controlPlaneEndpoint } = resolveIdentity(input, warnings);
  const { clusterName, serviceSubnet, serviceIp, dnsDomain } = resolveNetwork(input);
  const { certificatesDir, algorithm, certValidityMs, caValidityMs } = resolveCrypto(input, warnings);
  const nodes = resolveNodes(nodeName, advertiseAddress, input.nodes ?? []);
  return {
    nodeName,
    advertiseAddress,
    bindPort,
    controlPlaneEndpoint,
    clusterName,
    serviceSubnet,
    serviceIp,
    dnsDomain,
    apiServerCertSANs: sanSet(input.apiServerCertSANs),
    etcdServerCertSANs: sanSet(input.etcdServerCertSANs),
    etcdPeerCertSANs: sanSet(input.etcdPeerCertSANs),
    externalEtcd: input.externalEtcd?.value ?? false,
    certificatesDir,
    algorithm,
    certValidityMs,
    caValidityMs,
    nodes,
    offlineDir: input.offlineDir?.value,
    externalCA: input.externalCA?.value ?? false,
    store: input.store?.value ?? {},
    kubeletServerTLSBootstrap:
      input.source?.documents.some(
        (d) => d.kind === "KubeletConfiguration" && d.doc.get("serverTLSBootstrap") === true,
      ) ?? false,
    warnings,
    source: input.source,
    origins: Object.fromEntries(
      Object.entries(input).flatMap(([k, v]) =>
        v && typeof v === "object" && "where" in v ? [[k, v.where]] : [],
      ),
    ),
  };
}

/** Later inputs win for single values; list values add up, without repeats. */
function mergeInputs(inputs: SpecInput[]): SpecInput {
  const input: SpecInput = {};
  for (const i of inputs)
    for (const [k, v] of Object.entries(i) as [keyof SpecInput, unknown][]) {
      if (v === undefined) continue;
      const prev = input[k];
      if (LIST_INPUTS.has(k) && Array.isArray(prev) && Array.isArray(v)) {
        const known = new Set(prev.map((p: Sourced<unknown>) => JSON.stringify(p.value)));
        const added = v.filter((p: Sourced<unknown>) => !known.has(JSON.stringify(p.value)));
        Object.assign(input, { [k]: [...prev, ...added] });
      } else Object.assign(input, { [k]: v });
    }
  return input;
}

/** controlPlaneEndpoint is host[:port], as kubeadm reads it; a URL is the usual slip. */
function parseEndpoint({ value, where }: Sourced<string>, bindPort: number): { host: string; port: number } {
  const scheme = value.match(/^([a-z][a-z0-9+.-]*):\/\//i);
  if (scheme)
    throw new InputError(
      `${where}: "${value}" is a URL; controlPlaneEndpoint is host[:port]: drop "${scheme[0]}" (e.g. "${value.slice(scheme[0].length).replace(/\/.*$/, "")}")`,
    );
  const hp = splitHostPort(value, where);
  classifySan(hp.host, where);
  return { host: hp.host, port: hp.port ?? bindPort };
}

function sanSet(values: Sourced<string>[] = []): SanSet {
  const out: SanSet = { dns: [], ips: [] };
  for (const v of values) {
    const c = classifySan(v.value, v.where);
    if (c.ip) out.ips.push(c.ip);
    if (c.dns) out.dns.push(c.dns);
  }
  return out;
}

function resolveNodes(localName: string, localIp: string, inputs: Sourced<NodeInput>[]): NodeSpec[] {
  const byName = new Map<string, NodeSpec>();
  byName.set(localName, { name: localName, ips: [localIp], dnsNames: [localName] });
  for (const { value, where } of inputs) {
    requireDnsName(value.name, where);
    const node = byName.get(value.name) ?? { name: value.name, ips: [], dnsNames: [value.name] };
    for (const a of value.addresses) {
      const c = classifySan(a, where);
      if (c.ip && !node.ips.includes(c.ip)) node.ips.push(c.ip);
      if (c.dns && !node.dnsNames.includes(c.dns)) node.dnsNames.push(c.dns);
    }
    if (node.ips.length === 0)
      throw new InputError(`${where}: node "${value.name}" needs at least one IP address (NAME=IP[,DNS...])`);
    byName.set(value.name, node);
  }
  return [...byName.values()];
}

/** "--node NAME=IP[,IP|DNS...]" */
export function parseNodeFlag(value: string, where = "--node"): NodeInput {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InputError(`${where}: "${value}" must look like NAME=IP[,DNS...]`);
  const addresses = value
    .slice(eq + 1)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return { name: value.slice(0, eq), addresses };
}

function defaultNodeName(warnings: string[]): string {
  const name = hostname().toLowerCase();
  if (isDns1123Subdomain(name)) return name;
  warnings.push(`the host name "${name}" is not a valid node name; using "node-1" (set --node-name)`);
  return "node-1";
}

function defaultAdvertiseAddress(warnings: string[]): string {
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  warnings.push("no non-loopback IPv4 address found; advertising 127.0.0.1 (set --advertise-address)");
  return "127.0.0.1";
}
