import { errorMessage } from "../errors.js";
import type { EtcdLedger } from "../ledger/etcd.js";
import { K, parseEntry, parseRevoked } from "../ledger/etcd-keys.js";
import type { TreePaths } from "../pki/paths.js";
import { CrlFiles } from "./replica-crl.js";
import { isCallerEntry, knownFingerprints, type RevocationView } from "./webhook-set.js";

export const DEFAULT_MAX_STALENESS_MS = 30_000;
/** How often the replica asks etcd (a quorum read) whether it is still there. */
const PROBE_MS = 1_000;

export interface ReplicaOptions {
  store: EtcdLedger;
  paths: TreePaths;
  allowedCNs: string[];
  denyRevokedUsers: boolean;
  /** /readyz fails when the set was not confirmed current for this long. */
  maxStalenessMs: number;
  /** Also keep every fingerprint the ledger records, for --unknown-certificates. */
  loadKnown?: boolean;
  log: (message: string) => void;
}

/**
 * A `kubepki serve` replica on the etcd ledger: loads the revoked set at one revision, then watches
 * the prefix from the next one, so a revocation made on any node is here within the watch's delay.
 * A broken stream resumes from the last revision seen (etcd3 reconnects); a compacted one reloads
 * everything. While etcd is away it answers from the set it has (revocations only grow), logs it,
 * and after maxStaleness fails /readyz; it catches up by itself. Every CRL stored in etcd is written
 * to this node's CRL file.
 */
export class ReplicaSet implements RevocationView {
  fingerprints = new Set<string>();
  users = new Set<string>();
  callers = new Set<string>();
  known: Set<string> | undefined;
  loadedAt = Date.now();
  error: string | undefined;
  failures = 0;
  reloads = 0;
  private connected = false;
  private reload = false;
  private lastProbe = 0;
  private trouble: string | undefined;
  private watcher: { cancel: () => Promise<void> } | undefined;
  private readonly crls: CrlFiles;

  constructor(private readonly o: ReplicaOptions) {
    this.crls = new CrlFiles(o.paths, o.log);
  }

  async start(): Promise<void> {
    await this.load();
  }

  /** The whole set at one revision, the CRLs, then a watch from the next revision. */
  private async load(): Promise<void> {
    const { store } = this.o;
    const { revision, revoked } = await store.revokedSet();
    for (const [sha, v] of revoked) this.addRevoked(sha, v.subjectCN);
    const callers = new Set<string>();
    for (const cn of this.o.allowedCNs)
      for (const e of await store.list({ user: cn })) if (isCallerEntry(e)) callers.add(e.sha256);
    this.callers = callers;
    if (this.o.loadKnown) this.known = await knownFingerprints(store);
    for (const c of await store.latestCrls()) await this.crls.write(c.issuerSha256, c.der);
    await cancelSoon(this.watcher);
    this.watcher = await store.watch((BigInt(revision) + 1n).toString(), {
      change: (key, value) => this.change(key, value),
      connected: () => this.onConnected(),
      disconnected: (err) => this.onDisconnected(err),
      lost: (err) => this.onLost(err),
    });
    this.connected = true;
    this.reloads++;
    this.confirmed();
  }

  private addRevoked(sha: string, cn: string): void {
    this.fingerprints.add(sha);
    if (this.o.denyRevokedUsers) this.users.add(cn);
  }

  /** One change under the prefix: the revoked set grows, a caller's entry changes, a CRL arrives. */
  private change(key: string, value: Buffer | undefined): void {
    if (key.startsWith(K.revokedAll)) this.revokedChanged(key, value);
    else if (key.startsWith(K.entries) && value) {
      this.known?.add(key.slice(K.entries.length));
      this.callerChanged(key, value);
    } else if (key.startsWith(K.crlAll) && value) void this.crls.write(key.slice(K.crlAll.length), value);
  }

  /** A revocation arrives; a deleted one is kept (the set never shrinks). */
  private revokedChanged(key: string, value: Buffer | undefined): void {
    if (!value) {
      this.o.log(`kubepki serve: ${key} was deleted in etcd; keeping the revocation`);
      return;
    }
    const v = parseRevoked(value);
    if (typeof v === "string") this.o.log(`kubepki serve: skipping ${key}: ${v}`);
    else this.addRevoked(key.slice(K.revokedAll.length), v.subjectCN);
  }

  private callerChanged(key: string, value: Buffer): void {
    const e = parseEntry(key, value);
    if (typeof e === "string" || !this.o.allowedCNs.includes(e.subjectCN)) return;
    if (isCallerEntry(e)) this.callers.add(e.sha256);
    else this.callers.delete(e.sha256);
  }

  private onConnected(): void {
    this.connected = true;
  }

  private onDisconnected(err: Error): void {
    this.connected = false;
    this.unhealthy(`the watch on etcd broke (${errorMessage(err)}); resuming from the last revision seen`);
  }

  private onLost(err: Error): void {
    // etcd3 has dropped this watcher already: nothing to cancel.
    this.watcher = undefined;
    this.connected = false;
    this.reload = true;
    this.unhealthy(`the watch on etcd ended (${errorMessage(err)}); reloading the whole set`);
  }

  /** Every poll: a pending reload, else (once a second) a quorum read; then the set's age. */
  async poll(): Promise<void> {
    if (Date.now() - this.lastProbe >= PROBE_MS || this.reload) {
      this.lastProbe = Date.now();
      try {
        if (this.reload) {
          this.reload = false;
          await this.load();
        } else await this.check();
      } catch (err) {
        if (this.watcher === undefined) this.reload = true;
        this.unhealthy(`etcd is unreachable (${errorMessage(err)})`);
      }
    }
    this.checkAge();
  }

  /**
   * etcd answers: the set is current while the watch is connected and holds at least as many
   * revocations as etcd (a watch can miss events across reconnections: etcd3 moves its resume
   * revision forward when a stream is created, before the events up to it arrived). Fewer: reload.
   */
  private async check(): Promise<void> {
    const count = await this.o.store.probe();
    if (count > this.fingerprints.size) {
      this.reload = true;
      this.unhealthy(
        `the watch missed ${count - this.fingerprints.size} revocation(s); reloading the whole set`,
      );
      return;
    }
    if (this.connected) this.confirmed();
  }

  private confirmed(): void {
    this.loadedAt = Date.now();
    if (this.trouble)
      this.o.log(`kubepki serve: etcd is back; the revoked set is current (${this.fingerprints.size})`);
    this.trouble = undefined;
    this.error = undefined;
  }

  private unhealthy(message: string): void {
    this.failures++;
    if (this.trouble !== message)
      this.o.log(
        `kubepki serve: ${message}; answering from the revoked set held (${this.fingerprints.size})`,
      );
    this.trouble = message;
  }

  private checkAge(): void {
    const age = Date.now() - this.loadedAt;
    if (age > this.o.maxStalenessMs)
      this.error = `etcd: the revoked set was last confirmed ${Math.round(age / 1000)} s ago (${this.trouble ?? "no answer"})`;
  }

  async stop(): Promise<void> {
    await cancelSoon(this.watcher);
    this.watcher = undefined;
  }
}

/** Cancels a watch, not waiting long: a watch etcd3 is reconnecting may never answer. */
async function cancelSoon(w: { cancel: () => Promise<void> } | undefined): Promise<void> {
  if (!w) return;
  await Promise.race([w.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
}
