import { IoError } from "../errors.js";
import type { LedgerEntry, LedgerStore } from "./store.js";

export interface MigrateCounts {
  /** Entries in the source. */
  entries: number;
  /** Of them, added to the target this run (0 on a repeated run). */
  added: number;
  revoked: number;
  superseded: number;
  serialOnly: number;
  crlCounters: number;
  /** Entries whose fingerprint, serial, issuer and status were checked in the target after copying. */
  verified: number;
}

/**
 * Copies every entry, revocation, serial-only revocation and CRL counter from one ledger to another
 * (SQLite to etcd or back). Idempotent: what the target has is kept, revocations and counters only
 * grow. Then reads the target back and checks every source fingerprint is there with its serial,
 * issuer and status; a difference is an error.
 */
export async function migrateLedger(from: LedgerStore, to: LedgerStore): Promise<MigrateCounts> {
  // now = epoch: statuses as recorded ("expired" is computed on read, never stored).
  const entries = await from.list({}, new Date(0));
  const before = new Set((await to.list({}, new Date(0))).map((e) => e.sha256));
  await to.record(entries);
  const revoked = entries.filter((e) => e.status === "revoked");
  await to.markRevoked(
    revoked.map((e) => ({
      sha256: e.sha256,
      revokedAt: e.revokedAt ?? e.recordedAt,
      reason: e.reason ?? "unspecified",
    })),
  );
  const superseded = entries.filter((e) => e.status === "superseded");
  await to.supersede(superseded.map((e) => e.sha256));
  const issuers = [...new Set(entries.map((e) => e.issuerSha256))];
  let serialOnly = 0;
  let crlCounters = 0;
  for (const issuer of issuers) {
    const items = await from.serialOnly(issuer);
    serialOnly += items.length;
    if (items.length > 0) await to.recordSerialOnly(issuer, items);
    const last = await from.lastCrlNumber(issuer);
    if (last > (await to.lastCrlNumber(issuer))) {
      await to.nextCrlNumber(issuer, last - 1n);
      crlCounters++;
    }
  }
  const verified = await verifyCopy(entries, to);
  return {
    entries: entries.length,
    added: entries.filter((e) => !before.has(e.sha256)).length,
    revoked: revoked.length,
    superseded: superseded.length,
    serialOnly,
    crlCounters,
    verified,
  };
}

async function verifyCopy(entries: LedgerEntry[], to: LedgerStore): Promise<number> {
  const copied = new Map((await to.list({}, new Date(0))).map((e) => [e.sha256, e]));
  const wrong = entries.filter((e) => {
    const c = copied.get(e.sha256);
    return !c || c.serial !== e.serial || c.issuerSha256 !== e.issuerSha256 || c.status !== e.status;
  });
  if (wrong.length > 0)
    throw new IoError(
      `after copying, ${wrong.length} entr${wrong.length === 1 ? "y differs" : "ies differ"} in the target (sha256 ${wrong
        .slice(0, 3)
        .map((e) => e.sha256.slice(0, 16))
        .join(", ")}…): the target ledger already held them otherwise; compare with kubepki ledger list`,
    );
  return entries.length;
}
