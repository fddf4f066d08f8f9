import { join } from "node:path";
import { InputError } from "../errors.js";
import { MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { readTextLimited } from "../fsx/read.js";
import type { PendingWrite } from "../fsx/transaction.js";

/**
 * What kubepki remembers about a node between runs (var/lib/kubepki/settings.json): where its
 * offline folder is, so a later run without --offline-dir does not start a second one; and where
 * its ledger is once it moved to etcd, so a later command without --store does not write to the
 * SQLite file the ledger left (a revocation there would reach no replica).
 */
export interface NodeSettings {
  offlineDir?: string;
  store?: RememberedStore;
}

/** The --store flags a node's ledger was last given (`ledger migrate --to`, `init --store`). */
export interface RememberedStore {
  store: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdPrefix?: string;
}

const STORE_FIELDS = ["store", "etcdCacert", "etcdCert", "etcdKey", "etcdPrefix"] as const;

function rememberedStore(raw: unknown): RememberedStore | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.store !== "string") return undefined;
  const out: RememberedStore = { store: r.store };
  for (const k of STORE_FIELDS) if (typeof r[k] === "string") out[k] = r[k] as string;
  return out;
}

export function settingsPath(stateDir: string): string {
  return join(stateDir, "settings.json");
}

export function readSettings(stateDir: string): NodeSettings {
  const file = settingsPath(stateDir);
  const text = readTextLimited(file, 64 * 1024);
  if (text === undefined) return {};
  try {
    const raw = JSON.parse(text) as unknown;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("not an object");
    const { offlineDir, store } = raw as Record<string, unknown>;
    const remembered = rememberedStore(store);
    return {
      ...(typeof offlineDir === "string" ? { offlineDir } : {}),
      ...(remembered ? { store: remembered } : {}),
    };
  } catch (err) {
    throw new InputError(
      `${file} is not a kubepki settings file (${(err as Error).message}); fix or remove it`,
      {
        cause: err,
      },
    );
  }
}

export function settingsWrite(stateDir: string, settings: NodeSettings): PendingWrite {
  return {
    path: settingsPath(stateDir),
    data: `${JSON.stringify(settings, null, 2)}\n`,
    mode: MODE_KEY,
    dirMode: MODE_OFFLINE_DIR,
  };
}
