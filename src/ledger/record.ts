import { entryFrom, type IssuedRecord } from "./entry.js";
import { type OpenMode, SqliteLedger } from "./sqlite.js";
import type { LedgerStore } from "./store.js";
import type { StoreTarget } from "./target.js";

export type { OpenMode };

/** A ledger named by its SQLite file, or by a --store target. */
export type LedgerAt = string | StoreTarget;

/**
 * Opens the ledger. Only `init` and `ledger init` pass "create": every other command refuses a
 * missing or empty ledger, because a silently recreated one forgets every revocation.
 */
export function openLedger(file: string, mode: OpenMode = "existing"): LedgerStore {
  return new SqliteLedger(file, mode);
}

/** Records what a command signed; `superseded` are the fingerprints a renewal replaced. */
export async function recordIssued(
  store: LedgerStore,
  issued: IssuedRecord[],
  superseded: string[] = [],
  now = new Date(),
): Promise<void> {
  await store.record(issued.map((r) => entryFrom(r, "issued", now)));
  if (superseded.length > 0) await store.supersede(superseded);
}

/**
 * Opens the ledger wherever it is: the SQLite file, or etcd (its client is loaded only then, so
 * commands on SQLite never load etcd3 and gRPC).
 */
export async function openStore(at: LedgerAt, mode: OpenMode = "existing"): Promise<LedgerStore> {
  if (typeof at === "string" || at.kind === "sqlite")
    return openLedger(typeof at === "string" ? at : at.file, mode);
  const { EtcdLedger } = await import("./etcd.js");
  return EtcdLedger.open(at, mode);
}

/** Opens the ledger, runs `fn`, closes it. */
export async function withLedger<T>(
  at: LedgerAt,
  fn: (store: LedgerStore) => Promise<T> | T,
  mode: OpenMode = "existing",
): Promise<T> {
  const store = await openStore(at, mode);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
