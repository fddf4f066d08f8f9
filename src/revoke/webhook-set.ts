import { statSync } from "node:fs";
import { errorMessage } from "../errors.js";
import type { LedgerEntry, LedgerStore } from "../ledger/store.js";

export interface WatchOptions {
  store: LedgerStore;
  /** The ledger's file, watched for being deleted, replaced or truncated under the open connection. */
  file?: string;
  allowedCNs: string[];
  denyRevokedUsers: boolean;
  /** Also load every fingerprint the ledger records, for --unknown-certificates. */
  loadKnown?: boolean;
  log: (message: string) => void;
}

/** Every fingerprint the ledger records, any status (for --unknown-certificates). */
export async function knownFingerprints(store: LedgerStore): Promise<Set<string>> {
  if (store.knownFingerprints) return store.knownFingerprints();
  return new Set((await store.list()).map((e) => e.sha256));
}

/**
 * A certificate kubepki issued to a caller of the webhook (kube-apiserver's pair), still allowed to
 * call. A superseded pair (issued again by `certs renew` or `rotate-ca sign`) stays a caller:
 * kube-apiserver presents it until it restarts, and refusing it meanwhile would deny everything
 * (failurePolicy Deny). A revocation cuts it off; after `rotate-ca drop` its CA is no longer trusted
 * at the handshake.
 */
export const isCallerEntry = (e: LedgerEntry): boolean =>
  (e.status === "active" || e.status === "superseded") && !e.profile.startsWith("client");

/**
 * What the webhook answers from: the revoked fingerprints (and user names), the certificates
 * allowed to call, and the set's health. RevokedSet (SQLite, polled) and ReplicaSet (etcd, watched).
 */
export interface RevocationView {
  fingerprints: Set<string>;
  users: Set<string>;
  callers: Set<string>;
  /** When the set was last confirmed current (the set-age metric). */
  loadedAt: number;
  /** Set while the set cannot be trusted to be current: /readyz fails. */
  error: string | undefined;
  failures: number;
  start(): Promise<void>;
  /** One health check, every poll interval. */
  poll(): Promise<void>;
  stop?(): Promise<void>;
}

/**
 * The revoked set in memory, and the certificates allowed to call (those kubepki issued for the
 * caller). Reloaded when the ledger changes; never shrinks: a ledger that was deleted, replaced,
 * truncated or became unreadable, or whose revoked set got smaller, leaves the last good set in
 * place and puts the watcher in error (readyz fails, the metric shows it) until it is fixed.
 */
export class RevokedSet implements RevocationView {
  fingerprints = new Set<string>();
  users = new Set<string>();
  callers = new Set<string>();
  /** Every fingerprint the ledger records, any status (with `loadKnown`). */
  known: Set<string> | undefined;
  loadedAt = Date.now();
  error: string | undefined;
  failures = 0;
  private fileId = "";
  private ledgerId = "";
  private version = -1;

  constructor(private readonly o: WatchOptions) {}

  async start(): Promise<void> {
    this.fileId = this.identity() ?? "";
    this.ledgerId = await this.o.store.id();
    await this.load();
  }

  /** One check: the file, the ledger's identity, then a reload if anything changed. */
  async poll(): Promise<void> {
    try {
      const file = this.identity();
      if (this.o.file && file === undefined) return this.fail(`the ledger ${this.o.file} is gone`);
      if (file === "empty") return this.fail(`the ledger ${this.o.file} was truncated to 0 bytes`);
      if (file !== this.fileId) return this.fail(`the ledger ${this.o.file} was replaced by another file`);
      if ((await this.o.store.id()) !== this.ledgerId)
        return this.fail("the ledger was replaced (another ledger id)");
      // After a failure (a read error, a shrink), every poll re-checks until the set is whole again.
      if ((await this.o.store.version()) !== this.version || this.error) await this.load();
      if (this.error) return;
      this.loadedAt = Date.now();
    } catch (err) {
      this.fail(`the ledger cannot be read: ${errorMessage(err)}`);
    }
  }

  private identity(): string | undefined {
    if (!this.o.file) return "";
    try {
      const st = statSync(this.o.file);
      return st.size === 0 ? "empty" : `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  }

  private async load(): Promise<void> {
    const { store } = this.o;
    this.version = await store.version();
    const fingerprints = await store.revokedFingerprints();
    const users = new Set(this.o.denyRevokedUsers ? (await store.revoked()).map((e) => e.subjectCN) : []);
    const callers = new Set<string>();
    for (const cn of this.o.allowedCNs)
      for (const e of await store.list({ user: cn })) if (isCallerEntry(e)) callers.add(e.sha256);
    if (this.o.loadKnown) this.known = await knownFingerprints(store);
    const lost = [...this.fingerprints].filter((f) => !fingerprints.has(f)).length;
    for (const f of this.fingerprints) fingerprints.add(f);
    for (const u of this.users) users.add(u);
    this.fingerprints = fingerprints;
    this.users = users;
    this.callers = callers;
    if (lost > 0)
      return this.fail(`the ledger's revoked set shrank by ${lost}; keeping every revocation seen`);
    if (this.error) this.o.log(`kubepki serve: the ledger is healthy again`);
    this.error = undefined;
    this.loadedAt = Date.now();
  }

  private fail(message: string): void {
    this.failures++;
    if (this.error !== message)
      this.o.log(
        `kubepki serve: ${message}; serving the last good revoked set (${this.fingerprints.size}), /readyz fails`,
      );
    this.error = message;
  }
}
