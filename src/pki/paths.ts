import { join, resolve } from "node:path";
import { UnsafePathError } from "../errors.js";
import { isInside, readTextLimited, resolveInRoot } from "../fsx/read.js";
import { type CaId, caEntry, KUBELET_FILES, type KubeconfigEntry, type LeafEntry } from "./catalog.js";

/**
 * Where every file lives under --root (as kubeadm lays a node out) and under the offline folder.
 */
export interface TreePaths {
  root: string;
  pkiDir: string;
  kubeconfigDir: string;
  kubeletPkiDir: string;
  /** kubepki's own state: the journal, backups (and later the ledger). */
  stateDir: string;
  journal: string;
  backupsDir: string;
  /** The issuance ledger (SQLite), shared by every command given the same root; --state moves it. */
  ledgerFile: string;
  /** Configuration kubepki writes for kubeadm and the components. */
  configDir: string;
  offlineDir?: string;
}

export const DEFAULT_CERTIFICATES_DIR = "/etc/kubernetes/pki";

export function treePaths(
  root: string,
  certificatesDir = DEFAULT_CERTIFICATES_DIR,
  offlineDir?: string,
  ledgerDir?: string,
): TreePaths {
  const r = resolve(root);
  const stateDir = join(r, "var/lib/kubepki");
  return {
    root: r,
    pkiDir: join(r, certificatesDir),
    kubeconfigDir: join(r, "etc/kubernetes"),
    kubeletPkiDir: join(r, "var/lib/kubelet/pki"),
    stateDir,
    journal: join(stateDir, "journal.json"),
    backupsDir: join(stateDir, "backups"),
    ledgerFile: join(ledgerDir ? resolve(ledgerDir) : stateDir, "ledger.db"),
    configDir: join(r, "etc/kubernetes/kubepki"),
    offlineDir: offlineDir ? resolve(offlineDir) : undefined,
  };
}

export interface PairPaths {
  cert: string;
  key: string;
}

export function caPaths(p: TreePaths, id: CaId): PairPaths {
  const base = caEntry(id).baseName;
  return { cert: join(p.pkiDir, `${base}.crt`), key: join(p.pkiDir, `${base}.key`) };
}

/** Where an offline CA key is kept: the same relative path inside the offline folder. */
export function offlineCaKeyPath(p: TreePaths, id: CaId): string | undefined {
  return p.offlineDir ? join(p.offlineDir, "pki", `${caEntry(id).baseName}.key`) : undefined;
}

export function leafPaths(p: TreePaths, leaf: LeafEntry): PairPaths {
  return { cert: join(p.pkiDir, `${leaf.baseName}.crt`), key: join(p.pkiDir, `${leaf.baseName}.key`) };
}

/** The local node's kubelet serving pair sits where the kubelet looks; other nodes' go offline. */
export function kubeletServingPaths(p: TreePaths, nodeName: string, local: boolean): PairPaths | undefined {
  const dir = local ? p.kubeletPkiDir : p.offlineDir ? join(p.offlineDir, "nodes", nodeName) : undefined;
  return dir ? kubeletPairIn(dir) : undefined;
}

/** The kubelet serving pair's files inside a folder (the kubelet's own, or a node's offline folder). */
export function kubeletPairIn(dir: string): PairPaths {
  return { cert: join(dir, KUBELET_FILES.servingCert), key: join(dir, KUBELET_FILES.servingKey) };
}

/** The kubelet's current client pair (certificate and key in one file), which the kubelet rotates itself. */
export function kubeletClientPath(p: TreePaths): string {
  return join(p.kubeletPkiDir, KUBELET_FILES.clientCurrent);
}

export function kubeconfigPath(p: TreePaths, entry: KubeconfigEntry): string | undefined {
  if (!entry.offline) return join(p.kubeconfigDir, entry.fileName);
  return p.offlineDir ? join(p.offlineDir, entry.fileName) : undefined;
}

export function saPaths(p: TreePaths): { key: string; pub: string } {
  return { key: join(p.pkiDir, "sa.key"), pub: join(p.pkiDir, "sa.pub") };
}

/**
 * Reads a file of the tree (or of the offline folder) as the node would see it: links are
 * followed inside it and refused when they lead out of it.
 */
export function readTreeText(p: TreePaths, path: string): string | undefined {
  const base = p.offlineDir && isInside(p.offlineDir, path) ? p.offlineDir : p.root;
  const real = resolveInRoot(base, path);
  if (real === undefined) throw new UnsafePathError(`${path} is a link that leads out of ${base}`);
  return readTextLimited(real);
}

/** Where each CA's published CRL lives: DER, next to the CA, inside the folder etcd's pod mounts. */
export function crlPath(p: TreePaths, id: CaId): string {
  return join(p.pkiDir, `${caEntry(id).baseName}.crl`);
}
