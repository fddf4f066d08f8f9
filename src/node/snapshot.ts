import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { detectLayout, layoutFor } from "../layout/detect.js";
import type { CaKeyRole, Distro, Layout } from "../layout/types.js";
import { SqliteLedger } from "../ledger/sqlite.js";
import type { BaselineRecord } from "../ledger/store.js";
import { type KubeconfigFact, readKubeconfig } from "../pki/kubeconfig.js";
import { treePaths } from "../pki/paths.js";
import type { KeyFact } from "../x509/keys.js";
import { type CertInfo, type ParsedPem, parsePemFile } from "../x509/parse.js";
import { NodeFiles, type Warning } from "./files.js";
import {
  type Component,
  type ComponentFlags,
  flagsFromArgv,
  flagsFromCmdline,
  flagsFromManifest,
  flagsInText,
  parseFlags,
} from "./flags.js";
import {
  caKeysByContent,
  type Flagged,
  flaggedFiles,
  inTrustStore,
  kubeconfigFiles,
  pkiDirOf,
  signingKeyFiles,
} from "./follow.js";
import { k3sComponents, readRancherConfig } from "./rancher-args.js";
import { readUnits } from "./units.js";
import { get, isRecord, parseUntrustedYaml } from "./yaml.js";

export interface KubeletView {
  configPath?: string;
  config?: Record<string, unknown>;
  flags: Map<string, string>;
  flagSources: string[];
}

/** Everything the rules look at, read once from the node, with no writes. */
export interface NodeSnapshot {
  root: string;
  layout: Layout;
  detectedBy: string;
  role: "control-plane" | "worker";
  files: NodeFiles;
  /** Parsed PEM/DER files by node path (PKI folders, kubelet PKI, files flags point at). */
  pem: Map<string, ParsedPem>;
  certs: CertInfo[];
  keys: KeyFact[];
  kubeconfigs: KubeconfigFact[];
  components: Map<Component, ComponentFlags>;
  /** Where components were found ("static pod manifests", "systemd units", ...), in reading order. */
  componentOrigins: string[];
  manifests: string[];
  kubelet: KubeletView;
  /** The layout's PKI folders plus the folders of files the components' flags name. */
  pkiDirs: string[];
  /** CA keys: the layout's, plus keys found to belong to a CA certificate. */
  caKeys: CaKeyRole[];
  /** Files named by component flags, and which flags name them. */
  flagged: Flagged;
  processesRead: boolean;
  /** Credentials kept in kubepki's backups on the node. */
  backups: BackupCredential[];
  /** Fingerprints the node's kubepki ledger lists as revoked (empty without a ledger). */
  revoked: Map<string, { reason?: string; revokedAt?: string }>;
  /** The integrity baseline kept by `kubepki watch` (empty without one). */
  baseline: BaselineRecord[];
  /** Fingerprints of the certificates the ledger holds as current (not superseded or revoked). */
  ledgerCurrent: Set<string>;
  warnings: Warning[];
  now: Date;
}

/** A private key, or a kubeconfig with a client key, in kubepki's backups (still valid until it expires). */
export interface BackupCredential {
  path: string;
  kind: "key" | "kubeconfig";
  /** A kubeconfig whose client certificate is in group system:masters. */
  masters: boolean;
}

export interface SnapshotOptions {
  root: string;
  distro?: Distro;
  processes?: boolean;
  now?: Date;
  /** Revocations read from the ledger named by --store (etcd, or another SQLite file): used instead of the node's ledger file. */
  revoked?: Map<string, { reason?: string; revokedAt?: string }>;
}

const PEM_NAME = /\.(crt|pem|key|cer|der|cert)$/;
/** kubepki's own state on the node, where init and renew keep it (pki/paths.ts). */
const KUBEPKI_STATE = treePaths("/");
const LEDGER_PATH = KUBEPKI_STATE.ledgerFile;
const BACKUPS_PATH = KUBEPKI_STATE.backupsDir;

export function readPem(s: Pick<NodeSnapshot, "files" | "pem">, nodePath: string): ParsedPem | undefined {
  const known = s.pem.get(nodePath);
  if (known) return known;
  const data = s.files.read(nodePath);
  if (!data) return undefined;
  const parsed = parsePemFile(data, nodePath);
  for (const e of parsed.errors) s.files.warn(nodePath, e);
  s.pem.set(nodePath, parsed);
  return parsed;
}

export function takeSnapshot(opts: SnapshotOptions): NodeSnapshot {
  const snap = emptySnapshot(opts);
  readComponents(snap, !!opts.processes);
  readKubelet(snap);
  readStaticPodPath(snap);
  const etcd = snap.components.get("etcd");
  const etcdConfig = etcd?.flags.get("config-file");
  if (etcd && etcdConfig) mergeEtcdConfigFile(snap, etcd, etcdConfig);
  readPki(snap);
  readComponentConfigs(snap);
  readKubeconfigs(snap);
  collectCertsAndKeys(snap);
  if (opts.revoked) for (const [sha, r] of opts.revoked) snap.revoked.set(sha, r);
  else readLedger(snap);
  readBackups(snap);
  const { layout, files } = snap;
  const controlPlane =
    snap.components.has("kube-apiserver") || layout.controlPlaneMarkers.some((m) => files.exists(m));
  snap.role = controlPlane ? "control-plane" : "worker";
  if (layout.distro === "generic" && !opts.distro)
    snap.detectedBy = `${snap.componentOrigins.join(", ") || "no component found"}; no distribution fingerprint`;
  return snap;
}

/** The layout (given or detected) and nothing read yet. */
function emptySnapshot(opts: SnapshotOptions): NodeSnapshot {
  const files = new NodeFiles(opts.root);
  const detected = opts.distro
    ? { layout: layoutFor(opts.distro), evidence: `--distro ${opts.distro}` }
    : detectLayout(opts.root);
  const layout = detected.layout;
  return {
    root: opts.root,
    layout,
    detectedBy: detected.evidence,
    role: "worker",
    files,
    pem: new Map(),
    certs: [],
    keys: [],
    kubeconfigs: [],
    components: new Map(),
    componentOrigins: [],
    manifests: [],
    kubelet: { flags: new Map(), flagSources: [] },
    pkiDirs: [...layout.pkiDirs],
    caKeys: [...layout.caKeys],
    flagged: { pem: new Map(), kubeconfigs: new Map() },
    processesRead: false,
    revoked: new Map(),
    baseline: [],
    ledgerCurrent: new Set(),
    backups: [],
    warnings: files.warnings,
    now: opts.now ?? new Date(),
  };
}

/** Every certificate and key read (files and kubeconfig users), and CA keys recognised by content. */
function collectCertsAndKeys(snap: NodeSnapshot): void {
  for (const parsed of snap.pem.values()) {
    snap.certs.push(...parsed.certs);
    snap.keys.push(...parsed.keys);
  }
  for (const k of snap.kubeconfigs) for (const u of k.users) if (u.clientCert) snap.certs.push(u.clientCert);
  const kcm = snap.components.get("kube-controller-manager");
  snap.caKeys.push(
    ...caKeysByContent(snap.layout, snap.certs, snap.keys, snap.flagged, signingKeyFiles(kcm)),
  );
}

/** Certificates and keys: the layout's PKI folders, the kubelet's, and every file a flag names (and its folder). */
function readPki(snap: NodeSnapshot): void {
  const { files, layout } = snap;
  const others = [...snap.components.values()].filter((c) => c.component !== "kubelet");
  const kubelet: ComponentFlags = { component: "kubelet", source: "kubelet", flags: snap.kubelet.flags };
  snap.flagged = flaggedFiles([...others, kubelet], snap.kubelet.config);
  const flaggedDirs = new Set<string>();
  for (const p of snap.flagged.pem.keys()) {
    if (inTrustStore(p)) continue;
    const dir = pkiDirOf(p);
    if (dir && !snap.pkiDirs.some((d) => dir === d || dir.startsWith(`${d}/`))) flaggedDirs.add(dir);
    if (files.stat(p)) readPem(snap, p);
  }
  snap.pkiDirs.push(...flaggedDirs);
  const certDir = snap.kubelet.flags.get("cert-dir");
  const deep = new Set([...layout.pkiDirs, ...layout.kubeletPkiDirs, ...(certDir ? [certDir] : [])]);
  for (const [dir, depth] of [
    ...[...deep].map((d) => [d, 8] as const),
    ...[...flaggedDirs].map((d) => [d, 0] as const),
  ])
    for (const p of files.walk(dir, depth)) {
      files.stat(p);
      if (PEM_NAME.test(p)) readPem(snap, p);
    }
}

function readComponents(snap: NodeSnapshot, processes: boolean): void {
  readManifests(snap);
  readArgFiles(snap);
  readUnitsAndRancher(snap);
  if (processes) readProcesses(snap);
}

/** A component found at `origin`, unless an earlier source already gave it. */
function found(snap: NodeSnapshot, f: ComponentFlags, origin: string, wins = false): void {
  if (snap.components.has(f.component) && !wins) return;
  snap.components.set(f.component, f);
  if (!snap.componentOrigins.includes(origin)) snap.componentOrigins.push(origin);
}

/** The kubelet's own static pod folder, when it is not the layout's (components not yet found are read there). */
function readStaticPodPath(snap: NodeSnapshot): void {
  const s = kubeletSetting(snap.kubelet, "pod-manifest-path", "staticPodPath");
  const dir = s ? String(s.value) : undefined;
  if (dir && !snap.layout.manifestDirs.includes(dir)) readManifests(snap, [dir]);
}

/**
 * kube-scheduler and kube-proxy may name their kubeconfig in a configuration file (--config:
 * clientConnection.kubeconfig) rather than a flag.
 */
function readComponentConfigs(snap: NodeSnapshot): void {
  for (const c of snap.components.values()) {
    const path = c.component === "kubelet" || c.component === "etcd" ? undefined : c.flags.get("config");
    const data = path ? snap.files.read(path, 1024 * 1024) : undefined;
    if (!path || !data) continue;
    const parsed = parseUntrustedYaml(data.toString("utf8"));
    if ("error" in parsed) {
      snap.files.warn(path, `${c.component} configuration not readable: ${parsed.error.message}`);
      continue;
    }
    const kc = get(parsed.docs[0], "clientConnection", "kubeconfig");
    if (typeof kc === "string" && kc.startsWith("/"))
      snap.flagged.kubeconfigs.set(kc, [
        ...(snap.flagged.kubeconfigs.get(kc) ?? []),
        `${c.component} ${path}`,
      ]);
  }
}

function readManifests(snap: NodeSnapshot, dirs = snap.layout.manifestDirs): void {
  const { files } = snap;
  for (const dir of dirs) {
    for (const p of files.walk(dir, 0)) {
      if (!/\.(ya?ml|json|manifest)$/.test(p)) continue;
      files.stat(p);
      snap.manifests.push(p);
      const data = files.read(p, 1024 * 1024);
      if (!data) continue;
      const { found: list, error } = flagsFromManifest(data.toString("utf8"), p);
      if (error) files.warn(p, `static pod manifest not readable: ${error.message}`);
      for (const f of list) found(snap, f, "static pod manifests");
    }
  }
}

/** MicroK8s keeps each component's arguments in a file of its own (args/). */
function readArgFiles(snap: NodeSnapshot): void {
  const { files, layout } = snap;
  for (const [component, path] of Object.entries(layout.componentArgs)) {
    const data = files.read(path, 1024 * 1024);
    if (!data) continue;
    files.stat(path);
    const flags = parseFlags(flagsInText(expandVars(data.toString("utf8"), layout.vars)));
    found(snap, { component: component as Component, source: path, flags }, `${layout.distro} args files`);
  }
}

/** systemd services (unit, drop-ins, environment) and, on k3s, config.yaml with its *-arg lists. */
function readUnitsAndRancher(snap: NodeSnapshot): void {
  const units = readUnits(snap.files);
  for (const u of units) {
    const f = flagsFromArgv(u.argv, u.execSource);
    if (!f) continue;
    if (f.component === "etcd") etcdEnvironment(f, u.env);
    found(snap, f, "systemd units");
    if (f.component === "kubelet")
      snap.kubelet.flagSources.push(...u.sources.filter((s) => s !== u.execSource));
  }
  const distro = snap.layout.distro;
  if (distro === "k3s" || distro === "rke2") readRancher(snap, distro, units);
}

/** ETCD_* variables are flags the command line did not set (etcd's own precedence). */
function etcdEnvironment(f: ComponentFlags, env: Map<string, string>): void {
  for (const [k, v] of env) {
    if (!k.startsWith("ETCD_")) continue;
    const flag = k.slice(5).toLowerCase().replace(/_/g, "-");
    if (!f.flags.has(flag)) f.flags.set(flag, v);
  }
}

function readRancher(snap: NodeSnapshot, distro: "k3s" | "rke2", units: ReturnType<typeof readUnits>): void {
  const unit = units.find((u) => basename(u.argv[0] ?? "") === distro);
  const cfg = readRancherConfig(snap.files, distro, unit?.argv.slice(1));
  // RKE2 runs the control plane as static pods that already carry the configured arguments.
  if (distro === "rke2") return;
  const data = cfg.dataDir ?? "/var/lib/rancher/k3s";
  const server =
    unit?.argv[1] === "server" || snap.files.exists(`${data}/server/tls/serving-kube-apiserver.crt`);
  for (const f of k3sComponents(snap.files, cfg, server, unit?.execSource))
    found(snap, f, "k3s configuration");
  const etcdConfig = `${data}/server/db/etcd/config`;
  if (server && snap.files.exists(etcdConfig) && !snap.components.has("etcd")) {
    const etcdArgs = (cfg.args.get("etcd") ?? []).map((a) => `--${a.replace(/^--/, "")}`);
    const flags = parseFlags(etcdArgs);
    flags.set("config-file", etcdConfig);
    found(snap, { component: "etcd", source: etcdConfig, flags }, "k3s configuration");
  }
}

function readProcesses(snap: NodeSnapshot): void {
  if (snap.root !== "/") {
    snap.files.warn("/proc", "--processes reads running processes only with --root /");
    return;
  }
  snap.processesRead = true;
  for (const pid of safeReaddir("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const f = flagsFromCmdline(readFileSync(`/proc/${pid}/cmdline`), `/proc/${pid}/cmdline`);
      // A running process is the truth kube-bench reads; it wins over the manifest.
      if (f) found(snap, f, "running processes", true);
    } catch {
      // the process ended meanwhile
    }
  }
}

/** etcd's --config-file overrides flags and environment (etcd op-guide); TLS keys map onto flag names. */
function mergeEtcdConfigFile(snap: NodeSnapshot, etcd: ComponentFlags, path: string): void {
  const data = snap.files.read(path, 1024 * 1024);
  if (!data) return;
  const parsed = parseUntrustedYaml(data.toString("utf8"));
  if ("error" in parsed) {
    snap.files.warn(path, `etcd config file not readable: ${parsed.error.message}`);
    return;
  }
  const doc = parsed.docs[0];
  if (!isRecord(doc)) return;
  applyEtcdConfig(etcd.flags, doc);
  etcd.source = `${etcd.source} + ${path}`;
}

/** etcd's config-file keys that hold the TLS settings, and the flag prefix each maps to. */
const ETCD_TLS_SECTIONS: Record<string, string> = {
  "client-transport-security": "",
  "peer-transport-security": "peer-",
};

function applyEtcdConfig(flags: Map<string, string>, doc: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(doc)) {
    const prefix = Object.hasOwn(ETCD_TLS_SECTIONS, k) ? ETCD_TLS_SECTIONS[k] : undefined;
    if (prefix !== undefined && isRecord(v))
      for (const [tk, tv] of Object.entries(v)) flags.set(`${prefix}${tk}`, String(tv));
    else if (!isRecord(v) && !Array.isArray(v)) flags.set(k, String(v));
  }
}

function readKubelet(snap: NodeSnapshot): void {
  readKubeletFlags(snap);
  const { files, layout, kubelet } = snap;
  const configPath = kubelet.flags.get("config") ?? layout.kubeletConfigFiles.find((p) => files.exists(p));
  if (!configPath) return;
  const paths = files.isDir(configPath)
    ? files.walk(configPath, 0).filter((p) => p.endsWith(".conf"))
    : [configPath];
  for (const p of paths) readKubeletConfig(snap, p);
}

/** The kubelet's flags: units, drop-ins and environment files, then the running process's. */
function readKubeletFlags(snap: NodeSnapshot): void {
  const { files, layout, kubelet } = snap;
  const paths = layout.kubeletFlagSources.flatMap((src) =>
    files.isDir(src) ? files.walk(src, 0).filter((p) => /\.(conf|env)$/.test(p) || !p.includes(".")) : [src],
  );
  const tokens: string[] = [];
  for (const p of paths) {
    const data = files.read(p, 1024 * 1024);
    if (!data) continue;
    files.stat(p);
    kubelet.flagSources.push(p);
    tokens.push(...flagsInText(expandVars(data.toString("utf8"), layout.vars)));
  }
  kubelet.flags = parseFlags(tokens);
  const proc = snap.components.get("kubelet");
  if (proc) {
    for (const [k, v] of proc.flags) kubelet.flags.set(k, v);
    kubelet.flagSources.push(proc.source);
  }
  kubelet.flagSources = [...new Set(kubelet.flagSources)];
}

/** One KubeletConfiguration file (or drop-in), merged over what came before. */
function readKubeletConfig(snap: NodeSnapshot, p: string): void {
  const { files, kubelet } = snap;
  const data = files.read(p, 1024 * 1024);
  if (!data) return;
  files.stat(p);
  const parsed = parseUntrustedYaml(data.toString("utf8"));
  if ("error" in parsed) {
    files.warn(p, `kubelet configuration not readable: ${parsed.error.message}`);
    return;
  }
  const doc = parsed.docs[0];
  if (!isRecord(doc)) return;
  kubelet.config = { ...(kubelet.config ?? {}), ...doc };
  kubelet.configPath = kubelet.configPath ? `${kubelet.configPath}, ${p}` : p;
}

function readKubeconfigs(snap: NodeSnapshot): void {
  const read = new Map<string, KubeconfigFact>();
  for (const { path, usedBy } of kubeconfigCandidates(snap)) {
    const known = read.get(path);
    if (known && usedBy?.length) known.usedBy = [...(known.usedBy ?? []), ...usedBy];
    if (known) continue;
    const fact = readOneKubeconfig(snap, path, usedBy);
    if (fact) read.set(path, fact);
  }
}

/** The layout's kubeconfigs (folders scanned, every user's ~/.kube/config), then those flags name. */
function kubeconfigCandidates(snap: NodeSnapshot): { path: string; usedBy?: string[] }[] {
  const { files } = snap;
  const candidates = snap.layout.kubeconfigs.flatMap((entry): { path: string; usedBy?: string[] }[] => {
    if (entry === "/home")
      return safeReaddir(`${snap.root}/home`).map((user) => ({ path: `/home/${user}/.kube/config` }));
    if (!files.isDir(entry)) return [{ path: entry, usedBy: [] }];
    return files
      .walk(entry, 1)
      .filter((p) => /\.(conf|kubeconfig|config|ya?ml)$/.test(p) || basename(p) === "config")
      .map((p) => ({ path: p }));
  });
  for (const [path, usedBy] of snap.flagged.kubeconfigs) candidates.push({ path, usedBy });
  return candidates;
}

/** One kubeconfig and the certificate files it names; a component's unreadable one is a warning. */
function readOneKubeconfig(snap: NodeSnapshot, path: string, usedBy?: string[]): KubeconfigFact | undefined {
  const { files } = snap;
  if (!files.exists(path)) return undefined;
  files.stat(path);
  const data = files.read(path, 1024 * 1024);
  if (!data) return undefined;
  const { fact, error } = readKubeconfig(data.toString("utf8"), path);
  if (!fact) {
    if (usedBy) files.warn(path, `kubeconfig not readable: ${error?.message}`);
    return undefined;
  }
  if (usedBy?.length) fact.usedBy = usedBy;
  snap.kubeconfigs.push(fact);
  for (const p of kubeconfigFiles(fact)) if (files.stat(p)) readPem(snap, p);
  return fact;
}

/** kubepki's ledger on this node, opened read-only: which certificates were revoked. */
function readLedger(snap: NodeSnapshot): void {
  const path = LEDGER_PATH;
  if (!snap.files.exists(path)) return;
  const real = join(snap.root, path);
  try {
    const store = new SqliteLedger(real, true);
    try {
      for (const e of store.revokedSync())
        snap.revoked.set(e.sha256, { reason: e.reason, revokedAt: e.revokedAt });
      snap.baseline = store.baselineSync();
      if (snap.baseline.length > 0) snap.ledgerCurrent = store.currentFingerprintsSync();
    } finally {
      store.closeSync();
    }
  } catch (err) {
    snap.files.warn(path, (err as Error).message);
  }
}

/** Credentials in the backups kubepki keeps on the node: private keys and kubeconfigs with a client key. */
function readBackups(snap: NodeSnapshot): void {
  for (const p of snap.files.walk(BACKUPS_PATH, 8)) {
    const text = snap.files.read(p, 1024 * 1024)?.toString("utf8");
    if (!text) continue;
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
      snap.backups.push({ path: p, kind: "key", masters: false });
    else if (text.includes("client-key-data")) {
      const { fact } = readKubeconfig(text, p);
      const masters = !!fact?.users.some((u) => u.clientCert?.organizations.includes("system:masters"));
      snap.backups.push({ path: p, kind: "kubeconfig", masters });
    }
  }
}

/** ${NAME} and $NAME of the distribution's own variables; anything else is left as written. */
function expandVars(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (m, name: string) => vars[name] ?? m);
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A kubelet setting: the command-line flag wins over the configuration file (kube-bench's order). */
export function kubeletSetting(
  k: KubeletView,
  flag: string,
  ...field: string[]
): { value: string | number | boolean; source: string } | undefined {
  const f = k.flags.get(flag);
  if (f !== undefined) return { value: f, source: `--${flag}` };
  const v = get(k.config, ...field);
  if (v === undefined || v === null || typeof v === "object") return undefined;
  return { value: v as string | number | boolean, source: `${k.configPath}: ${field.join(".")}` };
}

/** The kubelet's client CA file (flag, else config): who may call the kubelet API. */
export function kubeletClientCaFile(k: KubeletView): string | undefined {
  const s = kubeletSetting(k, "client-ca-file", "authentication", "x509", "clientCAFile");
  return s ? String(s.value) : undefined;
}

/** The kubelet's serving certificate file (flag, else config), if it is given one. */
export function kubeletServingCertFile(k: KubeletView): string | undefined {
  const s = kubeletSetting(k, "tls-cert-file", "tlsCertFile");
  return s ? String(s.value) : undefined;
}
