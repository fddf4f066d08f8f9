import { dirname, join, resolve } from "node:path";
import { confineWrites } from "../fsx/confine.js";
import type { StoreTarget } from "../ledger/target.js";
import { KUBEPKI_ETCD_CLIENT } from "../pki/catalog.js";
import { type TreePaths, treePaths } from "../pki/paths.js";
import type { RememberedStore } from "../pki/settings.js";

/** Where a command works: the node's / and, where it applies, the folders beside it. */
export interface TreeOptions {
  /** The node's / (a built tree's folder, or "/" on a real node). */
  root: string;
  /** Folder of the issuance ledger (default: <root>/var/lib/kubepki); --store replaces it. */
  state?: string;
  /** Where the ledger lives: `sqlite:PATH` or `etcd://HOST:PORT[,HOST:PORT...]` (default: the SQLite file under the root). */
  store?: string;
  /** etcd store: the CA of etcd's serving certificate (default: the node's etc/kubernetes/pki/etcd/ca.crt). */
  etcdCacert?: string;
  /** etcd store: the client pair (default: kubepki's own, etc/kubernetes/kubepki/etcd-client.crt/.key). */
  etcdCert?: string;
  etcdKey?: string;
  /** etcd store: the key prefix (default /kubepki/). */
  etcdPrefix?: string;
  /** etcd store: how long one call may take (default 5 s). */
  etcdTimeout?: Duration;
  /** The offline folder: super-admin.conf, offline CA keys, other nodes' kubelet pairs. */
  offlineDir?: string;
  /** Certificates directory on the node (default: /etc/kubernetes/pki). */
  certDir?: string;
}

export function pathsOf(t: TreeOptions): TreePaths {
  return treePaths(t.root, t.certDir, t.offlineDir, t.state);
}

/**
 * Runs a use case with every write it makes confined (fsx/confine.ts) to the folders its request
 * names: the root, the offline folder, kubepki's state, the ledger's folder, and `more` (an --out).
 * A program calling the library is confined as the CLI is.
 */
export function inTree<T>(
  paths: TreePaths,
  fn: () => Promise<T>,
  ...more: (string | undefined)[]
): Promise<T> {
  return confineWrites(
    [paths.root, paths.offlineDir, paths.stateDir, dirname(paths.ledgerFile), ...more],
    fn,
  );
}

/**
 * Where the ledger is, from --store (or --state) and the etcd flags; without either, where this
 * node's ledger went (`ledger migrate --to`, `init --store`: settings.json), else the SQLite file.
 */
export async function storeOf(t: TreeOptions, paths: TreePaths = pathsOf(t)): Promise<StoreTarget> {
  const [{ storeTarget }, { readSettings }] = await Promise.all([
    import("../ledger/target.js"),
    import("../pki/settings.js"),
  ]);
  const remembered = t.store === undefined && t.state === undefined ? readSettings(paths.stateDir).store : {};
  const given = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined));
  return storeTarget(
    { ...remembered, ...given, etcdTimeoutMs: await durationMs(t.etcdTimeout, "--etcd-timeout") },
    paths.ledgerFile,
    {
      cacert: join(paths.pkiDir, "etcd/ca.crt"),
      cert: join(paths.root, KUBEPKI_ETCD_CLIENT.cert),
      key: join(paths.root, KUBEPKI_ETCD_CLIENT.key),
    },
  );
}

/**
 * Remembers an etcd ledger for this node (settings.json, 0600, kept with the offline folder): later
 * commands without --store use it. A SQLite ledger is the default and needs no memory: giving one
 * forgets the etcd one.
 */
export async function rememberStore(paths: TreePaths, t: RememberedStore): Promise<void> {
  const [{ readSettings, settingsWrite }, { ensureDir, writeFileAtomic }, { MODE_OFFLINE_DIR }] =
    await Promise.all([import("../pki/settings.js"), import("../fsx/atomic.js"), import("../fsx/modes.js")]);
  const { store: _old, ...kept } = readSettings(paths.stateDir);
  const etcd = t.store.startsWith("etcd://");
  const w = settingsWrite(paths.stateDir, etcd ? { ...kept, store: t } : kept);
  ensureDir(paths.stateDir, MODE_OFFLINE_DIR);
  writeFileAtomic(w.path, w.data ?? "", w.mode);
}

/** The store flags a command was given, to remember; undefined without --store. */
export function storeFlags(t: TreeOptions): RememberedStore | undefined {
  if (!t.store) return undefined;
  const { store, etcdCacert, etcdCert, etcdKey, etcdPrefix } = t;
  const abs = (f?: string) => (f === undefined ? undefined : resolve(f));
  return { store, etcdCacert: abs(etcdCacert), etcdCert: abs(etcdCert), etcdKey: abs(etcdKey), etcdPrefix };
}

/**
 * kubepki's own etcd client pair, issued from the etcd CA when an etcd store uses it and it is
 * missing or no longer good (needs the etcd CA key); what to record in the ledger once it is open.
 */
export async function ensureOwnEtcdPair(target: StoreTarget, paths: TreePaths) {
  if (target.kind !== "etcd" || !target.ownPair) return undefined;
  const { ensureEtcdClientPair } = await import("../pki/etcd-client-pair.js");
  return ensureEtcdClientPair(paths);
}

/** Something the caller should tell the operator (a warning), in the order it arose. */
export type Notice = string;

/** A duration as milliseconds, or as kubeadm writes it ("8760h", "30d"); `flag` names it in errors. */
export type Duration = number | string;

export async function durationMs(value: Duration | undefined, flag: string): Promise<number | undefined> {
  if (value === undefined || typeof value === "number") return value;
  const { parseDuration } = await import("../pki/duration.js");
  return parseDuration(value, flag);
}
