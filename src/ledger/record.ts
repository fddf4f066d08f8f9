import { entryFrom, type IssuedRecord } from "./entry.js";
import { SqliteLedger } from "./sqlite.js";
import type { LedgerStore } from "./store.js";

export function openLedger(file: string): LedgerStore {
  return new SqliteLedger(file);
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

/** Opens the ledger, runs `fn`, closes it. */
export async function withLedger<T>(file: string, fn: (store: LedgerStore) => Promise<T> | T): Promise<T> {
  const store = openLedger(file);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
