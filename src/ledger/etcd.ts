import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { IKeyValue, IOperation, IRequestOp } from "etcd3";
import { IoError } from "../errors.js";
import type { CrlReason } from "../x509/crl.js";
import { normalizeFingerprint, normalizeSerial } from "./entry.js";
import { call, connectEtcd, type EtcdConnection, type EtcdTarget } from "./etcd-client.js";
import {
  entryValue,
  K,
  parseEntry,
  parseRevoked,
  parseSchema,
  parseSerialOnly,
  type RevokedValue,
  revokedValue,
  SCHEMA_VERSION,
} from "./etcd-keys.js";
import { acquireLock } from "./etcd-lock.js";
import { missingLedgerMessage } from "./messages.js";
import type { OpenMode } from "./sqlite.js";
import type {
  BaselineRecord,
  LedgerEntry,
  LedgerStore,
  ListFilter,
  RevokeMatch,
  SerialOnly,
  WatchHandlers,
} from "./store.js";
import { describeTarget } from "./target.js";

type Op = IRequestOp | IOperation;
interface Read {
  entry: LedgerEntry;
  mod: string;
}

/** Optimistic transactions retry this often before giving up (each retry re-reads what it compares). */
const MAX_ATTEMPTS = 50;
/** Entries per transaction when recording many (each entry and its indexes stay in one). */
const ENTRIES_PER_TXN = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The ledger in etcd (docs/ledger-etcd.md): one JSON value per entry, indexes by serial, user and
 * issuer, the revoked set, CRL counters and the latest CRL of each CA. Every multi-key change is one
 * transaction that compares the mod revisions it read (optimistic: re-read and retry on conflict);
 * exclusive() is a lease-held lock key, so a revocation and the CRL it publishes are one step across
 * nodes.
 */
export class EtcdLedger implements LedgerStore {
  readonly autocommit = true;
  private lockDepth = 0;
  private readonly warned = new Set<string>();
  private ledgerId = "";

  private constructor(
    readonly conn: EtcdConnection,
    private readonly warn: (message: string) => void,
  ) {}

  /** Connects and checks the schema key: created with "create", refused when missing or newer. */
  static async open(
    target: EtcdTarget,
    mode: OpenMode,
    warn: (message: string) => void = (m) => process.stderr.write(`warning: ${m}\n`),
  ): Promise<EtcdLedger> {
    const store = new EtcdLedger(await connectEtcd(target), warn);
    try {
      await store.checkSchema(mode);
      return store;
    } catch (err) {
      store.conn.client.close();
      throw err;
    }
  }

  get target(): EtcdTarget {
    return this.conn.target;
  }

  private async checkSchema(mode: OpenMode): Promise<void> {
    const ns = this.conn.ns;
    if (mode === "create") {
      const value = JSON.stringify({
        version: SCHEMA_VERSION,
        id: randomUUID(),
        createdAt: new Date().toISOString(),
      });
      await call(this.conn, () =>
        ns.if(K.schema, "Create", "==", 0).then(ns.put(K.schema).value(value)).commit(),
      );
    }
    const raw = await call(this.conn, () => ns.get(K.schema).buffer());
    if (!raw)
      throw new IoError(missingLedgerMessage(describeTarget(this.target), "does not exist (no schema key)"));
    const schema = parseSchema(raw);
    if (typeof schema === "string")
      throw new IoError(
        `the etcd ledger's schema key ${this.target.prefix}${K.schema} is damaged (${schema})`,
      );
    if (schema.version > SCHEMA_VERSION)
      throw new IoError(
        `the etcd ledger at ${describeTarget(this.target)} has schema version ${schema.version}, written by a newer kubepki (this one reads ${SCHEMA_VERSION}): upgrade kubepki`,
      );
    this.ledgerId = schema.id;
  }

  /** Warns once per key about a value that is not what its key promises; the caller skips it. */
  private skip(key: string, why: string): undefined {
    if (!this.warned.has(key)) {
      this.warned.add(key);
      this.warn(`etcd ledger: skipping ${this.target.prefix}${key}: ${why}`);
    }
    return undefined;
  }

  private entryOf(kv: IKeyValue): Read | undefined {
    const key = kv.key.toString();
    const e = parseEntry(key, kv.value);
    return typeof e === "string" ? this.skip(key, e) : { entry: e, mod: kv.mod_revision };
  }

  private async scan(prefix: string, revision?: string): Promise<IKeyValue[]> {
    return call(this.conn, async () => {
      const q = this.conn.ns.getAll().prefix(prefix);
      return (await (revision ? q.revision(revision) : q).exec()).kvs;
    });
  }

  private async readEntries(shas: string[]): Promise<Map<string, Read>> {
    const out = new Map<string, Read>();
    const kvs = await call(this.conn, () =>
      Promise.all(
        shas.map((s) =>
          this.conn.ns
            .get(K.entry(s))
            .exec()
            .then((r) => r.kvs[0]),
        ),
      ),
    );
    for (const kv of kvs) {
      const r = kv
        ? this.entryOf({ ...kv, key: Buffer.from(kv.key.toString().slice(this.target.prefix.length)) })
        : undefined;
      if (r) out.set(r.entry.sha256, r);
    }
    return out;
  }

  private async allEntries(): Promise<Read[]> {
    return (await this.scan(K.entries)).flatMap((kv) => this.entryOf(kv) ?? []);
  }

  /** Fingerprints listed under an index prefix (the last key segment). */
  private async indexed(prefix: string): Promise<string[]> {
    const keys = await call(this.conn, () => this.conn.ns.getAll().prefix(prefix).keys());
    return keys.map((k) => k.slice(k.lastIndexOf("/") + 1));
  }

  /**
   * Commits `build()`'s compares and writes as one transaction, guarded by the schema key (nothing
   * is written into a prefix whose ledger was deleted); re-reads and retries when another writer
   * changed what it compared.
   */
  private async txn(
    build: () => Promise<{ compares: [string, string][]; ops: Op[] } | undefined>,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const plan = await build();
      if (!plan || plan.ops.length === 0) return;
      const ns = this.conn.ns;
      let t = ns.if(K.schema, "Create", ">", 0);
      for (const [key, mod] of plan.compares) t = t.and(key, "Mod", "==", mod);
      const r = await call(this.conn, () => t.then(...plan.ops).commit());
      if (r.succeeded) return;
      if (!(await call(this.conn, () => ns.get(K.schema).exists())))
        throw new IoError(missingLedgerMessage(describeTarget(this.target), "was deleted while writing"));
      await sleep(Math.random() * 20 * Math.min(attempt + 1, 5));
    }
    throw new IoError(
      `the etcd ledger kept changing under this write (${MAX_ATTEMPTS} attempts); nothing was committed: try again`,
    );
  }

  /** The writes that store an entry: its value and its index keys (and the revoked set when revoked). */
  private putEntry(e: LedgerEntry): Op[] {
    const ns = this.conn.ns;
    const ops: Op[] = [
      ns.put(K.entry(e.sha256)).value(entryValue(e)),
      ns.put(K.serial(e.serial, e.sha256)).value(""),
      ns.put(K.user(e.subjectCN, e.sha256)).value(""),
      ns.put(K.issuer(e.issuerSha256, e.sha256)).value(""),
    ];
    if (e.status === "revoked") ops.push(ns.put(K.revoked(e.sha256)).value(JSON.stringify(revokedValue(e))));
    return ops;
  }

  async id(): Promise<string> {
    return this.ledgerId;
  }

  /** The etcd revision: changes with every write anywhere in the cluster. */
  async version(): Promise<number> {
    const r = await call(this.conn, () => this.conn.ns.get(K.schema).exec());
    return Number(r.header.revision);
  }

  /**
   * The replica's health check, without diagnosis: a quorum read of how many revocations etcd holds
   * (a replica holding fewer missed some and reloads).
   */
  async probe(): Promise<number> {
    return this.conn.ns.getAll().prefix(K.revokedAll).count();
  }

  async record(entries: LedgerEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += ENTRIES_PER_TXN) {
      const chunk = entries.slice(i, i + ENTRIES_PER_TXN);
      await this.txn(async () => {
        const current = await this.readEntries(chunk.map((e) => e.sha256));
        const compares: [string, string][] = [];
        const ops: Op[] = [];
        for (const e of chunk) {
          const cur = current.get(e.sha256);
          compares.push([K.entry(e.sha256), cur?.mod ?? "0"]);
          ops.push(...this.putEntry(cur ? mergeRecorded(cur.entry, e) : e));
        }
        return { compares, ops };
      });
    }
  }

  async supersede(sha256s: string[]): Promise<void> {
    await this.txn(async () => {
      const current = [...(await this.readEntries(sha256s)).values()].filter(
        (r) => r.entry.status === "active",
      );
      return {
        compares: current.map((r) => [K.entry(r.entry.sha256), r.mod] as [string, string]),
        ops: current.flatMap((r) => this.putEntry({ ...r.entry, status: "superseded" })),
      };
    });
  }

  async list(filter: ListFilter = {}, now = new Date()): Promise<LedgerEntry[]> {
    const reads = filter.user
      ? [...(await this.readEntries(await this.indexed(K.users(filter.user)))).values()]
      : await this.allEntries();
    const before = filter.expiresBefore?.toISOString();
    const all = reads
      .map((r) => withExpiry(r.entry, now))
      .filter((e) => (filter.user ? e.subjectCN === filter.user : true))
      .filter((e) => (before ? e.notAfter < before : true))
      .sort((a, b) => (a.notAfter === b.notAfter ? cmp(a.sha256, b.sha256) : cmp(a.notAfter, b.notAfter)));
    return filter.status ? all.filter((e) => e.status === filter.status) : all;
  }

  async get(sha256: string): Promise<LedgerEntry | undefined> {
    return (await this.readEntries([sha256])).get(sha256)?.entry;
  }

  /** A CA: recorded as one, or the issuer of another entry (a leaf imported alone is its own issuer). */
  private async isCA(e: LedgerEntry): Promise<boolean> {
    if (e.profile === "ca") return true;
    return (await this.indexed(K.issued(e.sha256))).some((s) => s !== e.sha256);
  }

  private async matching(match: RevokeMatch): Promise<Read[]> {
    const shas = match.sha256
      ? [normalizeFingerprint(match.sha256)]
      : match.serial
        ? await this.indexed(K.serials(normalizeSerial(match.serial)))
        : await this.indexed(K.users(match.user ?? ""));
    return [...(await this.readEntries(shas)).values()].filter((r) => r.entry.status !== "revoked");
  }

  async find(match: RevokeMatch): Promise<(LedgerEntry & { isCA: boolean })[]> {
    const found = await this.matching(match);
    return Promise.all(found.map(async (r) => ({ ...r.entry, isCA: await this.isCA(r.entry) })));
  }

  /** Marks entries revoked (never a CA), each with its place in the revoked set, in one transaction. */
  async revoke(sha256s: string[], reason: CrlReason, at: Date): Promise<LedgerEntry[]> {
    const when = at.toISOString();
    let out: LedgerEntry[] = [];
    await this.txn(async () => {
      const reads = await this.revocable(sha256s.map(normalizeFingerprint));
      out = reads.map((r) => ({ ...r.entry, status: "revoked", revokedAt: when, reason }));
      return {
        compares: reads.map((r) => [K.entry(r.entry.sha256), r.mod] as [string, string]),
        ops: out.flatMap((e) => this.putEntry(e)),
      };
    });
    return out;
  }

  private async revocable(shas: string[]): Promise<Read[]> {
    const reads = [...(await this.readEntries(shas)).values()].filter((r) => r.entry.status !== "revoked");
    const cas = await Promise.all(reads.map((r) => this.isCA(r.entry)));
    return reads.filter((_, i) => !cas[i]);
  }

  async markRevoked(items: { sha256: string; revokedAt: string; reason: CrlReason }[]): Promise<number> {
    let n = 0;
    await this.txn(async () => {
      const reads = await this.revocable(items.map((i) => i.sha256));
      const by = new Map(items.map((i) => [i.sha256, i]));
      n = reads.length;
      return {
        compares: reads.map((r) => [K.entry(r.entry.sha256), r.mod] as [string, string]),
        ops: reads.flatMap((r) => {
          const i = by.get(r.entry.sha256);
          return this.putEntry({ ...r.entry, status: "revoked", revokedAt: i?.revokedAt, reason: i?.reason });
        }),
      };
    });
    return n;
  }

  async revoked(issuerSha256?: string): Promise<LedgerEntry[]> {
    return (await this.allEntries())
      .map((r) => r.entry)
      .filter((e) => e.status === "revoked" && (!issuerSha256 || e.issuerSha256 === issuerSha256))
      .sort((a, b) => cmp(a.revokedAt ?? "", b.revokedAt ?? ""));
  }

  async serialOnly(issuerSha256: string): Promise<SerialOnly[]> {
    return (await this.scan(K.serialOnlyOf(issuerSha256)))
      .flatMap((kv) => {
        const v = parseSerialOnly(kv.value);
        return typeof v === "string" ? (this.skip(kv.key.toString(), v) ?? []) : [v];
      })
      .sort((a, b) => cmp(a.revokedAt, b.revokedAt));
  }

  async recordSerialOnly(issuerSha256: string, items: SerialOnly[]): Promise<void> {
    await this.txn(async () => {
      const have = new Set((await this.serialOnly(issuerSha256)).map((s) => s.serial));
      const fresh = items
        .map((i) => ({ ...i, serial: normalizeSerial(i.serial) }))
        .filter((i) => !have.has(i.serial));
      return {
        compares: fresh.map((i) => [K.serialOnly(issuerSha256, i.serial), "0"] as [string, string]),
        ops: fresh.map((i) =>
          this.conn.ns.put(K.serialOnly(issuerSha256, i.serial)).value(JSON.stringify(i)),
        ),
      };
    });
  }

  /** This node's integrity baseline (kubepki watch), one key per file under the node's host name. */
  async baseline(): Promise<BaselineRecord[]> {
    const out: BaselineRecord[] = [];
    for (const kv of await this.scan(K.baselineOf(hostname()))) {
      const r = baselineOf(kv.value);
      if (r) out.push(r);
      else this.skip(kv.key.toString(), "not a baseline record");
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async putBaseline(records: BaselineRecord[], removed: string[] = []): Promise<void> {
    const node = hostname();
    const ns = this.conn.ns;
    await this.txn(async () => ({
      compares: [],
      ops: [
        ...records.map((r) => ns.put(K.baseline(node, r.path)).value(JSON.stringify(r))),
        ...removed.map((p) => ns.delete().key(K.baseline(node, p))),
      ],
    }));
  }

  async revokedFingerprints(): Promise<Set<string>> {
    return new Set((await this.indexed(K.revokedAll)).filter((s) => /^[0-9a-f]{64}$/.test(s)));
  }

  async lastCrlNumber(issuerSha256: string): Promise<bigint> {
    const v = await call(this.conn, () => this.conn.ns.get(K.crlNumber(issuerSha256)).string());
    return v && /^\d+$/.test(v) ? BigInt(v) : 0n;
  }

  /** The next CRL number by compare-and-swap: two nodes never get the same one. */
  async nextCrlNumber(issuerSha256: string, above = 0n): Promise<bigint> {
    let next = 0n;
    await this.txn(async () => {
      const r = await call(this.conn, () => this.conn.ns.get(K.crlNumber(issuerSha256)).exec());
      const kv = r.kvs[0];
      const last = kv && /^\d+$/.test(kv.value.toString()) ? BigInt(kv.value.toString()) : 0n;
      next = last + 1n > above + 1n ? last + 1n : above + 1n;
      return {
        compares: [[K.crlNumber(issuerSha256), kv?.mod_revision ?? "0"]],
        ops: [this.conn.ns.put(K.crlNumber(issuerSha256)).value(next.toString())],
      };
    });
    return next;
  }

  /**
   * Stores the CRL signed with `number` as the CA's latest, only while that number is still the
   * counter's: a CRL with an older number never replaces a newer one.
   */
  async storeCrl(issuerSha256: string, number: bigint, der: Buffer): Promise<void> {
    const ns = this.conn.ns;
    const r = await call(this.conn, () =>
      ns
        .if(K.crlNumber(issuerSha256), "Value", "==", number.toString())
        .then(ns.put(K.crl(issuerSha256)).value(der))
        .commit(),
    );
    if (!r.succeeded)
      throw new IoError(
        `CRL number ${number} was not stored in etcd: another node took a newer number meanwhile; run kubepki crl again`,
      );
  }

  /** The latest CRL of each CA, DER, by issuer fingerprint. */
  async latestCrls(revision?: string): Promise<{ issuerSha256: string; der: Buffer }[]> {
    return (await this.scan(K.crlAll, revision)).map((kv) => ({
      issuerSha256: kv.key.toString().slice(K.crlAll.length),
      der: kv.value,
    }));
  }

  /** The revoked set at one revision (what `kubepki serve` loads before it watches from the next). */
  async revokedSet(): Promise<{ revision: string; revoked: Map<string, RevokedValue> }> {
    const r = await call(this.conn, () => this.conn.ns.getAll().prefix(K.revokedAll).exec());
    const revoked = new Map<string, RevokedValue>();
    for (const kv of r.kvs) {
      const key = kv.key.toString();
      const v = parseRevoked(kv.value);
      if (typeof v === "string") this.skip(key, v);
      else revoked.set(key.slice(K.revokedAll.length), v);
    }
    return { revision: r.header.revision, revoked };
  }

  /**
   * Every change under the prefix from `fromRevision` on, in order. etcd3 reconnects a broken
   * stream by itself (another endpoint, the revision after the last one seen); `lost` means the
   * watch ended for good (its revision was compacted): load everything again and watch anew.
   */
  async watch(fromRevision: string, on: WatchHandlers): Promise<{ cancel: () => Promise<void> }> {
    const prefix = this.target.prefix;
    const w = await this.conn.ns.watch().prefix("").startRevision(fromRevision).create();
    const rel = (kv: IKeyValue) => {
      const k = kv.key.toString();
      return k.startsWith(prefix) ? k.slice(prefix.length) : k;
    };
    w.on("put", (kv) => on.change(rel(kv), kv.value, kv.mod_revision));
    w.on("delete", (kv) => on.change(rel(kv), undefined, kv.mod_revision));
    w.on("connected", () => on.connected());
    w.on("disconnected", (err) => on.disconnected(err));
    w.on("error", (err) => on.lost(err));
    return { cancel: () => w.cancel() };
  }

  /** exclusive(): the lease-held lock key (etcd-lock.ts); nested calls run inside the held lock. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.lockDepth > 0) return fn();
    const release = await call(this.conn, () => acquireLock(this.conn, `pid ${process.pid}`), true);
    this.lockDepth++;
    try {
      return await fn();
    } finally {
      this.lockDepth--;
      await release().catch(() => {
        // the lease expires by itself within its TTL
      });
    }
  }

  async close(): Promise<void> {
    this.conn.client.close();
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function withExpiry(e: LedgerEntry, now: Date): LedgerEntry {
  return e.status === "active" && e.notAfter < now.toISOString() ? { ...e, status: "expired" } : e;
}

/** Recording an entry that exists keeps it, as SQLite's upsert does: a new path, an imported one's profile. */
function mergeRecorded(cur: LedgerEntry, e: LedgerEntry): LedgerEntry {
  return {
    ...cur,
    path: e.path ?? cur.path,
    profile: cur.source === "imported" ? e.profile : cur.profile,
  };
}

function baselineOf(value: Buffer): BaselineRecord | undefined {
  try {
    const v = JSON.parse(value.toString("utf8")) as Partial<BaselineRecord> | null;
    return v && typeof v.path === "string" && typeof v.mode === "number" ? (v as BaselineRecord) : undefined;
  } catch {
    return undefined;
  }
}
