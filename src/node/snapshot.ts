import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { detectLayout, layoutFor } from "../layout/detect.js";
import type { Distro, Layout } from "../layout/types.js";
import { SqliteLedger } from "../ledger/sqlite.js";
import { type CertFact, type KeyFact, type ParsedPem, parsePemFile } from "./certs.js";
import { NodeFiles, type Warning } from "./files.js";
import {
  type Component,
  type ComponentFlags,
  flagsFromCmdline,
  flagsFromManifest,
  flagsInText,
  parseFlags,
} from "./flags.js";
import { type KubeconfigFact, readKubeconfig } from "./kubeconfigs.js";
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
  certs: CertFact[];
  keys: KeyFact[];
  kubeconfigs: KubeconfigFact[];
  components: Map<Component, ComponentFlags>;
  manifests: string[];
  kubelet: KubeletView;
  processesRead: boolean;
  /** Fingerprints the node's kubepki ledger lists as revoked (empty without a ledger). */
  revoked: Map<string, { reason?: string; revokedAt?: string }>;
  warnings: Warning[];
  now: Date;
}

export interface SnapshotOptions {
  root: string;
  distro?: Distro;
  processes?: boolean;
  now?: Date;
}

const PEM_NAME = /\.(crt|pem|key|cer|der|cert)$/;
const LEDGER_PATH = "/var/lib/kubepki/ledger.db";

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
  const files = new NodeFiles(opts.root);
  const detected = opts.distro
    ? { layout: layoutFor(opts.distro), evidence: `--distro ${opts.distro}` }
    : detectLayout(opts.root);
  const layout = detected.layout;
  const snap: NodeSnapshot = {
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
    manifests: [],
    kubelet: { flags: new Map(), flagSources: [] },
    processesRead: false,
    revoked: new Map(),
    warnings: files.warnings,
    now: opts.now ?? new Date(),
  };

  readComponents(snap, !!opts.processes);
  readKubelet(snap);
  const certDir = snap.kubelet.flags.get("cert-dir");
  const pkiDirs = [...layout.pkiDirs, ...layout.kubeletPkiDirs, ...(certDir ? [certDir] : [])];
  for (const dir of new Set(pkiDirs)) {
    for (const p of files.walk(dir)) {
      files.stat(p);
      if (PEM_NAME.test(p)) readPem(snap, p);
    }
  }
  readKubeconfigs(snap);
  for (const parsed of snap.pem.values()) {
    snap.certs.push(...parsed.certs);
    snap.keys.push(...parsed.keys);
  }
  for (const k of snap.kubeconfigs) for (const u of k.users) if (u.clientCert) snap.certs.push(u.clientCert);
  readLedger(snap);
  snap.role =
    snap.components.has("kube-apiserver") || layout.controlPlaneMarkers.some((m) => files.exists(m))
      ? "control-plane"
      : "worker";
  return snap;
}

function readComponents(snap: NodeSnapshot, processes: boolean): void {
  const { files, layout } = snap;
  for (const dir of layout.manifestDirs) {
    for (const p of files.walk(dir, 0)) {
      if (!/\.(ya?ml|json|manifest)$/.test(p)) continue;
      files.stat(p);
      snap.manifests.push(p);
      const data = files.read(p, 1024 * 1024);
      if (!data) continue;
      const { found, error } = flagsFromManifest(data.toString("utf8"), p);
      if (error) files.warn(p, `static pod manifest not readable: ${error}`);
      for (const f of found) if (!snap.components.has(f.component)) snap.components.set(f.component, f);
    }
  }
  for (const [component, path] of Object.entries(layout.componentArgs)) {
    if (snap.components.has(component as Component)) continue;
    const data = files.read(path, 1024 * 1024);
    if (!data) continue;
    files.stat(path);
    const flags = parseFlags(flagsInText(expandVars(data.toString("utf8"), layout.vars)));
    snap.components.set(component as Component, { component: component as Component, source: path, flags });
  }
  if (processes) {
    if (snap.root !== "/") files.warn("/proc", "--processes reads running processes only with --root /");
    else {
      snap.processesRead = true;
      for (const pid of safeReaddir("/proc").filter((n) => /^\d+$/.test(n))) {
        try {
          const f = flagsFromCmdline(readFileSync(`/proc/${pid}/cmdline`), `/proc/${pid}/cmdline`);
          // A running process is the truth kube-bench reads; it wins over the manifest.
          if (f) snap.components.set(f.component, f);
        } catch {
          // the process ended meanwhile
        }
      }
    }
  }
  const etcd = snap.components.get("etcd");
  const configFile = etcd?.flags.get("config-file");
  if (etcd && configFile) mergeEtcdConfigFile(snap, etcd, configFile);
}

/** etcd's --config-file overrides flags and environment (etcd op-guide); TLS keys map onto flag names. */
function mergeEtcdConfigFile(snap: NodeSnapshot, etcd: ComponentFlags, path: string): void {
  const data = snap.files.read(path, 1024 * 1024);
  if (!data) return;
  const parsed = parseUntrustedYaml(data.toString("utf8"));
  if ("error" in parsed) {
    snap.files.warn(path, `etcd config file not readable: ${parsed.error}`);
    return;
  }
  const doc = parsed.docs[0];
  if (!isRecord(doc)) return;
  for (const [k, v] of Object.entries(doc)) {
    if (k === "client-transport-security" && isRecord(v))
      for (const [tk, tv] of Object.entries(v)) etcd.flags.set(tk, String(tv));
    else if (k === "peer-transport-security" && isRecord(v))
      for (const [tk, tv] of Object.entries(v)) etcd.flags.set(`peer-${tk}`, String(tv));
    else if (!isRecord(v) && !Array.isArray(v)) etcd.flags.set(k, String(v));
  }
  etcd.source = `${etcd.source} + ${path}`;
}

function readKubelet(snap: NodeSnapshot): void {
  const { files, layout, kubelet } = snap;
  const tokens: string[] = [];
  for (const src of layout.kubeletFlagSources) {
    const paths = files.isDir(src)
      ? files.walk(src, 0).filter((p) => /\.(conf|env)$/.test(p) || !p.includes("."))
      : [src];
    for (const p of paths) {
      const data = files.read(p, 1024 * 1024);
      if (!data) continue;
      files.stat(p);
      kubelet.flagSources.push(p);
      tokens.push(...flagsInText(expandVars(data.toString("utf8"), layout.vars)));
    }
  }
  kubelet.flags = parseFlags(tokens);
  const proc = snap.components.get("kubelet");
  if (proc) {
    for (const [k, v] of proc.flags) kubelet.flags.set(k, v);
    kubelet.flagSources.push(proc.source);
  }
  const configPath = kubelet.flags.get("config") ?? layout.kubeletConfigFiles.find((p) => files.exists(p));
  if (!configPath) return;
  const paths = files.isDir(configPath)
    ? files.walk(configPath, 0).filter((p) => p.endsWith(".conf"))
    : [configPath];
  for (const p of paths) {
    const data = files.read(p, 1024 * 1024);
    if (!data) continue;
    files.stat(p);
    const parsed = parseUntrustedYaml(data.toString("utf8"));
    if ("error" in parsed) {
      files.warn(p, `kubelet configuration not readable: ${parsed.error}`);
      continue;
    }
    const doc = parsed.docs[0];
    if (isRecord(doc)) {
      kubelet.config = { ...(kubelet.config ?? {}), ...doc };
      kubelet.configPath = kubelet.configPath ? `${kubelet.configPath}, ${p}` : p;
    }
  }
}

function readKubeconfigs(snap: NodeSnapshot): void {
  const { files } = snap;
  const candidates: { path: string; explicit: boolean }[] = [];
  for (const entry of snap.layout.kubeconfigs) {
    if (entry === "/home") {
      for (const user of safeReaddir(`${snap.root}/home`))
        candidates.push({ path: `/home/${user}/.kube/config`, explicit: false });
    } else if (files.isDir(entry)) {
      for (const p of files.walk(entry, 1))
        if (/\.(conf|kubeconfig|config|ya?ml)$/.test(p) || basename(p) === "config")
          candidates.push({ path: p, explicit: false });
    } else candidates.push({ path: entry, explicit: true });
  }
  const kubeletKc = snap.kubelet.flags.get("kubeconfig");
  if (kubeletKc) candidates.push({ path: kubeletKc, explicit: true });
  const seen = new Set<string>();
  for (const { path, explicit } of candidates) {
    if (seen.has(path) || !files.exists(path)) continue;
    seen.add(path);
    files.stat(path);
    const data = files.read(path, 1024 * 1024);
    if (!data) continue;
    const { fact, error } = readKubeconfig(data.toString("utf8"), path);
    if (fact) snap.kubeconfigs.push(fact);
    else if (explicit) files.warn(path, `kubeconfig not readable: ${error}`);
  }
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
    } finally {
      store.closeSync();
    }
  } catch (err) {
    snap.files.warn(path, (err as Error).message);
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
