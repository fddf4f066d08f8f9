import { join, resolve } from "node:path";
import { InputError } from "../errors.js";

/** The default key prefix of the etcd ledger (docs/ledger-etcd.md). */
export const DEFAULT_ETCD_PREFIX = "/kubepki/";
/** How long one etcd call may take before the endpoint counts as unreachable. */
export const DEFAULT_ETCD_TIMEOUT_MS = 5_000;

/** Where the ledger lives: an SQLite file on this node, or a prefix in an etcd cluster. */
export type StoreTarget =
  | { kind: "sqlite"; file: string }
  | {
      kind: "etcd";
      /** host:port, in the order given: the first is tried first, the others on failure. */
      endpoints: string[];
      cacert: string;
      cert: string;
      key: string;
      prefix: string;
      timeoutMs: number;
      /** The client pair is kubepki's own (not given with --etcd-cert): init issues it. */
      ownPair: boolean;
    };

/** The store flags as a command receives them (--store, --state, --etcd-*). */
export interface StoreOptions {
  /** sqlite:PATH or etcd://HOST:PORT[,HOST:PORT...] */
  store?: string;
  /** The older flag: the folder holding ledger.db (sqlite:DIR/ledger.db). */
  state?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdPrefix?: string;
  /** Milliseconds. */
  etcdTimeoutMs?: number;
}

/** kubepki's own etcd client pair, issued by init from the etcd CA (pki/catalog.ts names it). */
export interface EtcdClientFiles {
  cacert: string;
  cert: string;
  key: string;
}

/**
 * Reads --store: `sqlite:PATH` (relative to the working folder), `etcd://HOST:PORT[,HOST:PORT...]`.
 * Without it, the SQLite file under the root (or under --state, the older flag).
 */
export function storeTarget(o: StoreOptions, ledgerFile: string, own: EtcdClientFiles): StoreTarget {
  const url = o.store?.trim();
  if (!url) return { kind: "sqlite", file: o.state ? join(resolve(o.state), "ledger.db") : ledgerFile };
  if (o.state) throw new InputError("--state and --store name the ledger twice: keep --store");
  if (url.startsWith("sqlite:")) {
    const file = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
    if (!file) throw new InputError(`--store: "${url}" names no file (sqlite:PATH)`);
    return { kind: "sqlite", file: resolve(file) };
  }
  if (url.startsWith("etcd://")) return etcdTarget(url, o, own);
  throw new InputError(`--store: "${url}" is neither sqlite:PATH nor etcd://HOST:PORT[,HOST:PORT...]`);
}

function etcdTarget(url: string, o: StoreOptions, own: EtcdClientFiles): StoreTarget {
  const endpoints = url
    .slice("etcd://".length)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (endpoints.length === 0) throw new InputError(`--store: "${url}" names no endpoint`);
  for (const e of endpoints)
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(e) || Number(e.split(":").at(-1)) > 65535)
      throw new InputError(`--store: "${e}" is not HOST:PORT (etcd://HOST:PORT[,HOST:PORT...])`);
  if (!!o.etcdCert !== !!o.etcdKey) throw new InputError("--etcd-cert and --etcd-key go together");
  const prefix = o.etcdPrefix ?? DEFAULT_ETCD_PREFIX;
  if (!prefix || /\s/.test(prefix)) throw new InputError(`--etcd-prefix: "${prefix}" is not a key prefix`);
  const timeoutMs = o.etcdTimeoutMs ?? DEFAULT_ETCD_TIMEOUT_MS;
  if (!(timeoutMs >= 100)) throw new InputError("--etcd-timeout: at least 100ms");
  return {
    kind: "etcd",
    endpoints,
    cacert: o.etcdCacert ? resolve(o.etcdCacert) : own.cacert,
    cert: o.etcdCert ? resolve(o.etcdCert) : own.cert,
    key: o.etcdKey ? resolve(o.etcdKey) : own.key,
    prefix: prefix.endsWith("/") ? prefix : `${prefix}/`,
    timeoutMs,
    ownPair: !o.etcdCert,
  };
}

/** How the ledger is named in messages: the file, or the endpoints and prefix. */
export function describeTarget(t: StoreTarget): string {
  return t.kind === "sqlite" ? t.file : `etcd://${t.endpoints.join(",")} (prefix ${t.prefix})`;
}
