import { basename } from "node:path";
import { type Document, isMap, isScalar, isSeq, LineCounter, parseAllDocuments } from "yaml";
import { InputError } from "../errors.js";
import { readTextLimited } from "../fsx/read.js";
import { assertYamlNesting } from "../fsx/yaml-guard.js";
import { nodeAt } from "./config-edit.js";
import {
  ALL_KINDS,
  ANY,
  Args,
  closestKind,
  type Field,
  KUBEADM_GROUP,
  KUBEADM_KINDS,
  KUBEADM_VERSIONS,
  type KubeadmVersion,
  ListOf,
  OTHER_KINDS,
  type Shape,
} from "./kubeadm-schema.js";
import type { ConfigDocument, Sourced, SpecInput } from "./spec.js";

/**
 * Reads the kubeadm configuration file users already have (InitConfiguration and
 * ClusterConfiguration, kubeadm.k8s.io/v1beta3 or v1beta4, multi-document, with the other kinds
 * kubeadm reads from the same file) plus kubepki's own KubepkiConfiguration document, and returns
 * the fields that shape the PKI, each with its line, and the parsed documents themselves (the
 * kubeadm configuration init writes is this file with kubepki's additions). Unknown fields and
 * values of the wrong shape are errors, as kubeadm's strict decoding makes them.
 */
/** Reader for one document that reports errors as "file:line kind.path: message". */
class DocReader {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
    private readonly file: string,
    readonly kind: string,
  ) {}

  where(path: (string | number)[]): string {
    const node = nodeAt(this.doc, path) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0] ?? this.doc.contents?.range?.[0] ?? 0;
    const { line } = this.lines.linePos(offset);
    return `${this.file}:${line} ${[this.kind, ...path].join(".")}`;
  }

  get root(): unknown {
    return this.doc.contents;
  }

  private raw(path: (string | number)[]): unknown {
    return nodeAt(this.doc, path);
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

  /** Refuses keys the shape does not know and values of the wrong shape, naming the line of the first. */
  checkShape(shape: Shape, path: (string | number)[] = []): void {
    const node = path.length === 0 ? this.doc.contents : this.raw(path);
    if (node === undefined || node === null) return;
    if (!isMap(node)) {
      if (path.length === 0 || !isNull(node)) throw new InputError(`${this.where(path)}: must be a mapping`);
      return;
    }
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const field = shape[key];
      if (field === undefined) throw new InputError(`${this.where([...path, key])}: unknown field "${key}"`);
      this.checkField(field, [...path, key]);
    }
  }

  private checkField(field: Field, path: (string | number)[]): void {
    if (field === ANY) return;
    if (field instanceof Args) {
      this.checkArgs(field.style, path);
      return;
    }
    if (!(field instanceof ListOf)) {
      this.checkShape(field, path);
      return;
    }
    const count = this.seqLength(path) ?? 0;
    for (let i = 0; i < count; i++) {
      const item = this.raw([...path, i]);
      if (!isMap(item)) throw new InputError(`${this.where([...path, i])}: must be a mapping`);
      this.checkShape(field.item, [...path, i]);
    }
  }

  /** extraArgs as kubeadm decodes them: map[string]string in v1beta3, []Arg{name, value} in v1beta4. */
  private checkArgs(style: "map" | "list", path: (string | number)[]): void {
    const node = this.raw(path);
    if (node === undefined || isNull(node)) return;
    if (style === "map") this.checkArgMap(node, path);
    else this.checkArgList(node, path);
  }

  private checkArgMap(node: unknown, path: (string | number)[]): void {
    if (!isMap(node))
      throw new InputError(
        `${this.where(path)}: must be a map of flag: value in ${KUBEADM_GROUP}/v1beta3` +
          (isSeq(node) ? ' (the "- name: FLAG / value: VALUE" list is v1beta4)' : ""),
      );
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      this.argValue([...path, key]);
    }
  }

  private checkArgList(node: unknown, path: (string | number)[]): void {
    if (!isSeq(node))
      throw new InputError(
        `${this.where(path)}: must be a list of "- name: FLAG / value: VALUE" in ${KUBEADM_GROUP}/v1beta4` +
          (isMap(node) ? " (the flag: value map is v1beta3)" : ""),
      );
    for (let i = 0; i < node.items.length; i++) {
      this.checkShape({ name: ANY, value: ANY }, [...path, i]);
      if (!isMap(node.items[i])) throw new InputError(`${this.where([...path, i])}: must be a mapping`);
      if (!this.argValue([...path, i, "name"]))
        throw new InputError(`${this.where([...path, i])}: an argument needs a name`);
      this.argValue([...path, i, "value"]);
    }
  }

  /** A flag value is a string: YAML's unquoted true, 2 or 1.5 are not (kubeadm refuses them). */
  private argValue(path: (string | number)[]): string | undefined {
    const node = this.raw(path);
    if (node === undefined || isNull(node)) return undefined;
    if (!isScalar(node) || typeof node.value !== "string")
      throw new InputError(
        `${this.where(path)}: must be a string` +
          (isScalar(node) ? ` (quote it: "${String(node.value)}")` : ""),
      );
    return node.value;
  }
}

function isNull(node: unknown): boolean {
  return isScalar(node) && node.value === null;
}

export function loadConfigFile(path: string): SpecInput {
  const text = readTextLimited(path, 1024 * 1024);
  if (text === undefined) throw new InputError(`--config: ${path} does not exist`);
  return parseConfig(text, basename(path));
}

export function parseConfig(text: string, file: string): SpecInput {
  assertYamlNesting(text, file);
  const lines = new LineCounter();
  // uniqueKeys refuses duplicate keys, as kubeadm's strict decoding does.
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(docs)) throw new InputError(`${file}: not a YAML document stream`);
  const out: SpecInput = {};
  const documents: ConfigDocument[] = [];
  const seen = new Map<string, string>();
  for (const doc of docs) {
    checkYaml(doc, lines, file);
    // "---" at the end of the file (or between two) opens an empty document: nothing to read.
    if (doc.contents === null || isNull(doc.contents)) continue;
    const probe = new DocReader(doc, lines, file, "document");
    const apiVersion = probe.string(["apiVersion"])?.value;
    const kind = probe.string(["kind"])?.value;
    if (!apiVersion || !kind)
      throw new InputError(`${probe.where([])}: every document needs apiVersion and kind`);
    const r = new DocReader(doc, lines, file, kind);
    const version = kubeadmVersion(r, apiVersion, kind);
    const first = seen.get(kind);
    if (first)
      throw new InputError(
        `${r.where(["kind"])}: ${kind} is given twice (first at ${first}); kubeadm refuses that`,
      );
    seen.set(kind, r.where([]));
    readDocument(r, kind, version, out);
    documents.push({ apiVersion, kind, doc });
  }
  const kinds = new Set(documents.map((d) => d.kind));
  if (
    !kinds.has("InitConfiguration") &&
    !kinds.has("ClusterConfiguration") &&
    !kinds.has("KubepkiConfiguration")
  )
    throw new InputError(
      `${file}: no InitConfiguration, ClusterConfiguration or KubepkiConfiguration document`,
    );
  out.source = { file, documents };
  return out;
}

function checkYaml(doc: Document.Parsed, lines: LineCounter, file: string): void {
  const err = doc.errors[0];
  if (err) {
    const { line } = lines.linePos(err.pos[0]);
    throw new InputError(`${file}:${line}: invalid YAML: ${err.message.split("\n")[0]}`);
  }
  try {
    // maxAliasCount bounds "billion laughs" alias expansion.
    doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new InputError(`${file}: YAML refused: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Which kubeadm API version a document is in (undefined for the other kinds), refusing what kubeadm
 * would not read: an apiVersion it does not serve, a kind it does not know (with the likely one).
 */
function kubeadmVersion(r: DocReader, apiVersion: string, kind: string): KubeadmVersion | undefined {
  const [group, version = ""] = apiVersion.split("/");
  const kubeadmKind = KUBEADM_KINDS[kind];
  const other = OTHER_KINDS[kind];
  if (!kubeadmKind && !other) {
    const guess = closestKind(kind);
    throw new InputError(
      `${r.where(["kind"])}: unsupported document ${apiVersion} ${kind}` +
        (guess ? `: did you mean ${guess}?` : `; supported kinds: ${ALL_KINDS.join(", ")}`),
    );
  }
  if (other) {
    if (apiVersion !== other)
      throw new InputError(
        `${r.where(["apiVersion"])}: unsupported apiVersion "${apiVersion}" for ${kind}; supported: ${other}`,
      );
    return undefined;
  }
  if (group !== KUBEADM_GROUP || !KUBEADM_VERSIONS.includes(version as KubeadmVersion))
    throw new InputError(
      `${r.where(["apiVersion"])}: unsupported apiVersion "${apiVersion}" for ${kind}; supported: ${KUBEADM_GROUP}/v1beta3, v1beta4`,
    );
  if (!kubeadmKind?.[version as KubeadmVersion])
    throw new InputError(
      `${r.where(["kind"])}: ${kind} does not exist in ${apiVersion}; use ${KUBEADM_GROUP}/v1beta4`,
    );
  return version as KubeadmVersion;
}

function readDocument(r: DocReader, kind: string, version: KubeadmVersion | undefined, out: SpecInput): void {
  const shape = version ? KUBEADM_KINDS[kind]?.[version] : undefined;
  if (shape) r.checkShape(shape);
  else if (!isMap(r.root)) throw new InputError(`${r.where([])}: must be a mapping`);
  if (kind === "InitConfiguration") {
    out.nodeName = r.string(["nodeRegistration", "name"]);
    out.advertiseAddress = r.string(["localAPIEndpoint", "advertiseAddress"]);
    out.bindPort = r.number(["localAPIEndpoint", "bindPort"]);
  } else if (kind === "ClusterConfiguration") {
    readCluster(r, version === "v1beta4", out);
  } else if (kind === "KubeletConfiguration") {
    // what the kubeadm configuration init writes builds on; nothing here shapes the PKI
    r.boolean(["serverTLSBootstrap"]);
    r.string(["tlsCertFile"]);
    r.string(["tlsPrivateKeyFile"]);
  } else if (kind === "KubepkiConfiguration") {
    readKubepki(r, out);
  }
}

function readCluster(r: DocReader, v1beta4: boolean, out: SpecInput): void {
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

/** `store:` and `etcd: {cacert, cert, key, prefix, timeout}`: where the ledger lives (as --store and --etcd-*). */
function readStore(r: DocReader, out: SpecInput): void {
  const store: Record<string, string> = {};
  const url = r.string(["store"]);
  if (url) store.store = url.value;
  if (r.has(["etcd"])) {
    r.checkShape({ cacert: ANY, cert: ANY, key: ANY, prefix: ANY, timeout: ANY }, ["etcd"]);
    const fields = {
      cacert: "etcdCacert",
      cert: "etcdCert",
      key: "etcdKey",
      prefix: "etcdPrefix",
      timeout: "etcdTimeout",
    };
    for (const [field, name] of Object.entries(fields)) {
      const v = r.string(["etcd", field]);
      if (v) store[name] = v.value;
    }
  }
  if (Object.keys(store).length > 0) out.store = { value: store, where: r.where(url ? ["store"] : ["etcd"]) };
}

function readKubepki(r: DocReader, out: SpecInput): void {
  r.checkShape({
    apiVersion: ANY,
    kind: ANY,
    nodes: ANY,
    offlineDir: ANY,
    externalCA: ANY,
    store: ANY,
    etcd: ANY,
  });
  out.offlineDir = r.string(["offlineDir"]);
  out.externalCA = r.boolean(["externalCA"]);
  readStore(r, out);
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
