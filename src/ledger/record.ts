import { entryFrom, type IssuedRecord } from "./entry.js";
import { type OpenMode, SqliteLedger } from "./sqlite.js";
import type { LedgerStore } from "./store.js";

export type { OpenMode };

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

/** Opens the ledger, runs `fn`, closes it. */
export async function withLedger<T>(
  file: string,
  fn: (store: LedgerStore) => Promise<T> | T,
  mode: OpenMode = "existing",
): Promise<T> {
  const store = openLedger(file, mode);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
