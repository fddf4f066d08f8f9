import { type FSWatcher, readFileSync, watch } from "node:fs";
import { join, relative } from "node:path";
import { errorMessage } from "../errors.js";
import type { LedgerStore } from "../ledger/store.js";
import type { TreePaths } from "../pki/paths.js";
import { AuditdReader, LogTail } from "./auditd.js";
import { refreshCrls } from "./crl-refresh.js";
import type { EventSink } from "./events.js";
import { IntegrityCheck } from "./integrity.js";
import type { WatchMetrics } from "./metrics.js";
import { type Scan, scanNode } from "./scan.js";

export interface EngineOptions {
  paths: TreePaths;
  metrics: WatchMetrics;
  emit: EventSink;
  log: (message: string) => void;
  /** The ledger's store: the integrity baseline and CRL numbers (absent: metrics only). */
  store?: LedgerStore;
  intervalMs: number;
  /** Changes within this time are one rescan (a renewal renames a dozen files). */
  debounceMs: number;
  /** Re-sign a CRL this close to its nextUpdate; 0 turns refreshing off (warnings only). */
  crlRefreshMs: number;
  auditdLog?: string;
  /** One scan (--once): the auditd log from its start rather than its end, and a held tree lock waited for. */
  auditdFromStart?: boolean;
}

/** How long a change must last before it is an event (integrity.ts). */
export const CONFIRM_MS = 2000;

/** Another kubepki command holds the tree's lock: its files and ledger records are not all there yet. */
function treeLocked(stateDir: string): boolean {
  try {
    const pid = Number(readFileSync(join(stateDir, "lock"), "utf8"));
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The watch loop: scans the node on start, when a watched folder changes (inotify through
 * fs.watch, debounced; folders rather than files, so a link swapped to a new target, as the
 * kubelet rotates kubelet-client-current.pem, is seen) and at an interval. Scans never overlap.
 */
export class WatchEngine {
  private readonly watchers = new Map<string, FSWatcher>();
  private timer?: NodeJS.Timeout;
  private interval?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private closed = false;
  private readonly integrity?: IntegrityCheck;
  private readonly auditd?: { tail: LogTail; reader: AuditdReader };
  last?: Scan;
  scans = 0;

  constructor(private readonly o: EngineOptions) {
    if (o.store) this.integrity = new IntegrityCheck(o.store, o.emit, o.metrics, CONFIRM_MS);
    if (o.auditdLog)
      this.auditd = { tail: new LogTail(o.auditdLog, !!o.auditdFromStart), reader: new AuditdReader() };
  }

  async start(): Promise<void> {
    await this.scanNow();
    this.interval = setInterval(() => this.schedule(0), this.o.intervalMs);
    this.interval.unref();
  }

  /** Scans now (or right after the scan in progress) and resolves when it is done. */
  async scanNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      if (treeLocked(this.o.paths.stateDir)) {
        // --once waits for the command to finish; a running watch comes back after the debounce.
        if (!this.o.auditdFromStart) {
          this.schedule(this.o.debounceMs);
          return;
        }
        await new Promise((r) => setTimeout(r, this.o.debounceMs));
        this.again = true;
        continue;
      }
      try {
        await this.scanOnce();
      } catch (err) {
        this.o.log(`scan failed: ${errorMessage(err)}`);
      }
    } while (this.again && !this.closed);
  }

  private async scanOnce(): Promise<void> {
    const now = new Date();
    if (this.o.store && this.o.crlRefreshMs > 0) await this.refresh(this.o.store, now);
    const scan = scanNode(this.o.paths.root, now);
    this.o.metrics.update(scan, now);
    await this.integrity?.check(scan.snap, now);
    // A change seen once is reported when the next scan still sees it.
    if (this.integrity?.pending) this.schedule(CONFIRM_MS);
    this.readAuditd(this.o.auditdFromStart === true);
    this.last = scan;
    this.scans++;
    this.rewatch(scan.dirs);
  }

  private async refresh(store: LedgerStore, now: Date): Promise<void> {
    for (const r of await refreshCrls(this.o.paths, store, this.o.crlRefreshMs, now)) {
      this.o.log(r.message);
      if (r.action === "refreshed")
        this.o.metrics.crlRefreshes.inc({ filepath: `/${relative(this.o.paths.root, r.path)}` });
    }
  }

  /** Events of the auditd records appended since the last read. */
  readAuditd(final = false): void {
    if (!this.auditd) return;
    const { tail, reader } = this.auditd;
    const events = reader.push(tail.read());
    // Read once (--once): to its end, however long it is.
    for (let more = final ? tail.read() : ""; more; more = tail.read()) events.push(...reader.push(more));
    if (final) events.push(...reader.flush(true));
    for (const e of events) {
      this.o.emit(e);
      this.o.metrics.violations.inc({ change: e.change });
    }
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.scanNow(), delayMs);
    this.timer.unref();
  }

  /** Watches exactly the folders the last scan named. */
  private rewatch(dirs: string[]): void {
    if (this.closed) return;
    const wanted = new Set(dirs);
    for (const [dir, w] of this.watchers)
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(join(this.o.paths.root, dir), { persistent: false }, () =>
          this.schedule(this.o.debounceMs),
        );
        w.on("error", () => {
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch {
        // gone since the scan: the next scan decides
      }
    }
  }

  /** Follows the auditd log every second (a log file changes too often to rescan the node for it). */
  followAuditd(): void {
    if (!this.auditd) return;
    const t = setInterval(() => this.readAuditd(), 1000);
    t.unref();
    this.closers.push(() => clearInterval(t));
  }

  private readonly closers: (() => void)[] = [];

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.interval);
    for (const c of this.closers) c();
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.running;
  }

  /** Changes seen once and waiting for the scan that confirms them. */
  get pending(): number {
    return this.integrity?.pending ?? 0;
  }

  get watched(): string[] {
    return [...this.watchers.keys()];
  }
}
