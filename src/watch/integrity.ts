import type { LedgerStore } from "../ledger/store.js";
import {
  compareBaseline,
  type FileFacts,
  type IntegrityChange,
  judgeOf,
  snapshotStates,
  toRecord,
} from "../node/integrity.js";
import type { NodeSnapshot } from "../node/snapshot.js";
import type { EventSink } from "./events.js";
import type { WatchMetrics } from "./metrics.js";

/**
 * Compares the node with the baseline in the ledger's store. The first check records the baseline;
 * later ones take kubepki's own changes (and the kubelet's rotation) into it and report the rest,
 * each once for as long as this process runs. A reported change stays out of the baseline until
 * `kubepki watch --accept PATH`, so `kubepki audit` keeps reporting it too.
 */
export class IntegrityCheck {
  private readonly reported = new Set<string>();
  /** Changes seen once, not yet reported: when each was first seen. */
  private seen = new Map<string, number>();
  /** Changes waiting for their confirming scan. */
  pending = 0;

  constructor(
    private readonly store: LedgerStore,
    private readonly emit: EventSink,
    private readonly metrics?: WatchMetrics,
    /**
     * A change is reported when a scan this much later still sees it: a kubepki command records its
     * certificates in the ledger just after it renames its files into place.
     */
    private readonly confirmMs = 2000,
  ) {}

  async check(snap: NodeSnapshot, now = new Date()): Promise<IntegrityChange[]> {
    const states = snapshotStates(snap);
    const baseline = await this.store.baseline();
    if (baseline.length === 0) {
      await this.store.putBaseline(states.map((s) => toRecord(s, "baseline", now)));
      return [];
    }
    const known = new Set(
      (await this.store.list({}, now))
        .filter((e) => e.status === "active" || e.status === "expired")
        .map((e) => e.sha256),
    );
    const cmp = compareBaseline(baseline, states, judgeOf(snap, known));
    if (cmp.approve.length || cmp.removed.length)
      await this.store.putBaseline(
        cmp.approve.map((a) => toRecord(a.state, a.by, now)),
        cmp.removed,
      );
    const fresh = this.confirmed(cmp.changes, now.getTime());
    // Reported once written: a change whose event could not be written is tried again next scan.
    for (const c of fresh) {
      this.emitOne(c, now);
      this.reported.add(keyOf(c));
      this.seen.delete(keyOf(c));
      this.pending = this.seen.size;
    }
    return fresh;
  }

  private emitOne(c: IntegrityChange, now: Date): void {
    this.emit({
      time: now.toISOString(),
      path: c.path,
      change: c.change,
      ...(c.before ? { before: shown(c.before) } : {}),
      after: shown(c.after),
    });
    this.metrics?.violations.inc({ change: c.change });
    if (c.change === "certificate-unknown" || c.change === "ca-certificate-changed")
      this.metrics?.unknown.inc();
  }

  /** The changes seen in an earlier scan at least confirmMs ago and not reported yet. */
  private confirmed(changes: IntegrityChange[], now: number): IntegrityChange[] {
    const seen = new Map<string, number>();
    const out: IntegrityChange[] = [];
    for (const c of changes) {
      const key = keyOf(c);
      if (this.reported.has(key)) continue;
      const first = this.seen.get(key) ?? now;
      seen.set(key, first);
      if (now - first >= this.confirmMs) out.push(c);
    }
    this.seen = seen;
    this.pending = seen.size;
    return out;
  }
}

const keyOf = (c: IntegrityChange) => `${c.path}\0${c.change}\0${JSON.stringify(c.after)}`;

/** Facts as people read them: the mode in octal. */
function shown(f: FileFacts): Record<string, unknown> {
  return { ...f, mode: `0${f.mode.toString(8)}` };
}
