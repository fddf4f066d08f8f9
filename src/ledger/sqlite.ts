import { randomUUID } from "node:crypto";
import { closeSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { errorMessage, IoError } from "../errors.js";
import { ensureDir } from "../fsx/atomic.js";
import { checkWritePath } from "../fsx/confine.js";
import type { CrlReason } from "../x509/crl.js";
import { normalizeFingerprint, normalizeSerial } from "./entry.js";
import { missingLedgerMessage } from "./messages.js";
import type {
  BaselineRecord,
  LedgerEntry,
  LedgerStore,
  ListFilter,
  RevokeMatch,
  SerialOnly,
  Status,
} from "./store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS certificates (
  sha256 TEXT PRIMARY KEY,
  serial TEXT NOT NULL,
  issuer_sha256 TEXT NOT NULL,
  subject_cn TEXT NOT NULL,
  subject_o TEXT NOT NULL,
  sans TEXT NOT NULL,
  not_before TEXT NOT NULL,
  not_after TEXT NOT NULL,
  profile TEXT NOT NULL,
  path TEXT,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  revoked_at TEXT,
  reason TEXT,
  break_glass INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS certificates_serial ON certificates(serial);
CREATE INDEX IF NOT EXISTS certificates_cn ON certificates(subject_cn);
CREATE INDEX IF NOT EXISTS certificates_status ON certificates(status, issuer_sha256);
CREATE TABLE IF NOT EXISTS crl_numbers (issuer_sha256 TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS baseline (path TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS serial_only (issuer_sha256 TEXT NOT NULL, serial TEXT NOT NULL, revoked_at TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (issuer_sha256, serial));
`;

/** How a command opens the ledger: only `init` and `ledger init` may create one. */
export type OpenMode = "create" | "existing" | "readonly";

/** Writers wait this long for another kubepki process holding the ledger's write lock. */
const BUSY_TIMEOUT_MS = 30_000;
/** SQLite's result code for a lock another connection holds (https://sqlite.org/rescode.html#busy). */
const SQLITE_BUSY = 5;

/** Refuses a missing or zero-byte ledger before SQLite would take it for a new, empty database. */
function checkLedgerFile(file: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IoError(
      missingLedgerMessage(file, code === "ENOENT" ? "does not exist" : `cannot be read (${code})`),
    );
  }
  if (size === 0) throw new IoError(missingLedgerMessage(file, "is empty (0 bytes)"));
}

interface Row {
  sha256: string;
  serial: string;
  issuer_sha256: string;
  subject_cn: string;
  subject_o: string;
  sans: string;
  not_before: string;
  not_after: string;
  profile: string;
  path: string | null;
  source: "issued" | "imported";
  status: Status;
  recorded_at: string;
  revoked_at: string | null;
  reason: string | null;
  break_glass: number;
}

/**
 * SQL: this row is a CA (recorded as one, or the issuer of another entry). Not "self-issued": a
 * leaf imported without its CA is recorded as its own issuer.
 */
const IS_CA =
  "(profile = 'ca' OR EXISTS (SELECT 1 FROM certificates c2 WHERE c2.issuer_sha256 = certificates.sha256 AND c2.sha256 != certificates.sha256))";

function fromRow(r: Row, now?: Date): LedgerEntry {
  const expired = r.status === "active" && now !== undefined && r.not_after < now.toISOString();
  return {
    sha256: r.sha256,
    serial: r.serial,
    issuerSha256: r.issuer_sha256,
    subjectCN: r.subject_cn,
    subjectO: JSON.parse(r.subject_o) as string[],
    sans: JSON.parse(r.sans) as string[],
    notBefore: r.not_before,
    notAfter: r.not_after,
    profile: r.profile,
    path: r.path ?? undefined,
    source: r.source,
    status: expired ? "expired" : r.status,
    recordedAt: r.recorded_at,
    revokedAt: r.revoked_at ?? undefined,
    reason: (r.reason as CrlReason | null) ?? undefined,
    breakGlass: r.break_glass === 1 || undefined,
  };
}

/** A value node:sqlite binds to a statement parameter. */
type Param = string | number | bigint | null;

/** Creates the ledger file 0600 (and its folder 0700) before SQLite opens it, so it never has a wider mode. */
function createPrivateFile(file: string): void {
  try {
    ensureDir(dirname(file), 0o700);
    closeSync(openSync(file, "wx", 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw new IoError(`cannot create the ledger ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Opens the connection: busy timeout first (the journal_mode pragma can wait on a writer too), then WAL. */
function openDatabase(file: string, m: OpenMode): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file, { readOnly: m === "readonly" });
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (m !== "readonly") db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // not open
    }
    throw new IoError(`cannot open the ledger ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * The embedded ledger: one SQLite file (WAL, synchronous=NORMAL), mode 0600, shared by every
 * kubepki command given the same root. Node's built-in node:sqlite: nothing to compile.
 */
export class SqliteLedger implements LedgerStore {
  private readonly db: DatabaseSync;
  /** Inside BEGIN IMMEDIATE (a write or exclusive()): a nested write becomes a savepoint. */
  private inTransaction = false;
  /** DatabaseSync.isOpen needs Node 22.15. */
  private closed = false;

  /**
   * `create` (init, ledger init) creates a missing ledger; `existing` refuses a missing, empty or
   * foreign one; `readonly` (the audit, the webhook) opens an existing one without changing it.
   */
  constructor(
    readonly file: string,
    mode: OpenMode | boolean = "existing",
  ) {
    const m: OpenMode = mode === true ? "readonly" : mode === false ? "existing" : mode;
    if (m !== "readonly") checkWritePath(file);
    if (m === "create") createPrivateFile(file);
    else checkLedgerFile(file);
    this.db = openDatabase(file, m);
    try {
      this.checkSchema(m);
    } catch (err) {
      this.db.close();
      if (err instanceof IoError) throw err;
      throw new IoError(`cannot open the ledger ${file}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** A ledger is kubepki's when it has the certificates table; older ones get the meta table. */
  private checkSchema(m: OpenMode): void {
    const names = () =>
      new Set(
        this.select<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").map(
          (r) => r.name,
        ),
      );
    let tables = names();
    const outdated = tables.has("certificates") && (!tables.has("meta") || !tables.has("baseline"));
    if (m === "create" || (m === "existing" && outdated)) {
      this.write(() => {
        this.db.exec(SCHEMA);
        this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?)").run(randomUUID());
      });
      tables = names();
    }
    if (!tables.has("certificates"))
      throw new IoError(missingLedgerMessage(this.file, "is empty (no certificates table)"));
  }

  private select<T>(sql: string, ...params: Param[] | [Record<string, Param>]): T[] {
    return this.db.prepare(sql).all(...(params as Param[])) as unknown as T[];
  }

  private selectOne<T>(sql: string, ...params: Param[]): T | undefined {
    return this.db.prepare(sql).get(...params) as unknown as T | undefined;
  }

  /** Takes the write lock, waiting up to the busy timeout; past it, says who holds it. */
  private begin(): void {
    try {
      this.db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      if ((err as { errcode?: number }).errcode !== SQLITE_BUSY) throw err;
      throw new IoError(
        `the ledger ${this.file} stayed locked for ${BUSY_TIMEOUT_MS / 1000} s: another kubepki process is writing to it; try again`,
        { cause: err },
      );
    }
  }

  /** Runs `fn` in BEGIN IMMEDIATE ... COMMIT, or in a savepoint when already inside one (exclusive()). */
  private write<T>(fn: () => T): T {
    const nested = this.inTransaction;
    if (nested) this.db.exec("SAVEPOINT write");
    else this.begin();
    this.inTransaction = true;
    try {
      const result = fn();
      this.db.exec(nested ? "RELEASE write" : "COMMIT");
      return result;
    } catch (err) {
      this.quietly(nested ? "ROLLBACK TO write; RELEASE write" : "ROLLBACK");
      throw err;
    } finally {
      this.inTransaction = nested;
    }
  }

  /** A rollback that may find nothing to undo: SQLite rolls back by itself after some errors. */
  private quietly(sql: string): void {
    try {
      this.db.exec(sql);
    } catch {
      // no transaction left to roll back
    }
  }

  /** The ledger's identity, set when it was created: a replaced ledger has another one. */
  async id(): Promise<string> {
    try {
      return this.selectOne<{ value: string }>("SELECT value FROM meta WHERE key = 'ledger_id'")?.value ?? "";
    } catch {
      return "";
    }
  }

  async record(entries: LedgerEntry[]): Promise<void> {
    const stmt = this.db.prepare(
      `INSERT INTO certificates (sha256, serial, issuer_sha256, subject_cn, subject_o, sans, not_before, not_after, profile, path, source, status, recorded_at, revoked_at, reason, break_glass)
       VALUES (@sha256, @serial, @issuerSha256, @subjectCN, @subjectO, @sans, @notBefore, @notAfter, @profile, @path, @source, @status, @recordedAt, @revokedAt, @reason, @breakGlass)
       ON CONFLICT(sha256) DO UPDATE SET path = COALESCE(excluded.path, path), profile = CASE WHEN source = 'imported' THEN excluded.profile ELSE profile END`,
    );
    this.write(() => {
      for (const e of entries) stmt.run(toParams(e));
    });
  }

  /** Marks entries superseded (renewal replaced them). */
  async supersede(sha256s: string[]): Promise<void> {
    const stmt = this.db.prepare(
      "UPDATE certificates SET status = 'superseded' WHERE sha256 = ? AND status = 'active'",
    );
    this.write(() => {
      for (const s of sha256s) stmt.run(s);
    });
  }

  async list(filter: ListFilter = {}, now = new Date()): Promise<LedgerEntry[]> {
    const where: string[] = [];
    const args: Record<string, Param> = {};
    if (filter.user) {
      where.push("subject_cn = @user");
      args.user = filter.user;
    }
    if (filter.expiresBefore) {
      where.push("not_after < @before");
      args.before = filter.expiresBefore.toISOString();
    }
    const rows = this.select<Row>(
      `SELECT * FROM certificates ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY not_after, sha256`,
      args,
    );
    const all = rows.map((r) => fromRow(r, now));
    return filter.status ? all.filter((e) => e.status === filter.status) : all;
  }

  async get(sha256: string): Promise<LedgerEntry | undefined> {
    const row = this.selectOne<Row>("SELECT * FROM certificates WHERE sha256 = ?", sha256);
    return row ? fromRow(row) : undefined;
  }

  /** Entries not yet revoked that match, with whether each is a CA (revocation never takes CAs). */
  async find(match: RevokeMatch): Promise<(LedgerEntry & { isCA: boolean })[]> {
    const cond = match.sha256 ? "sha256 = @v" : match.serial ? "serial = @v" : "subject_cn = @v";
    const value = match.sha256
      ? normalizeFingerprint(match.sha256)
      : match.serial
        ? normalizeSerial(match.serial)
        : (match.user ?? "");
    const rows = this.select<Row & { is_ca: number }>(
      `SELECT *, ${IS_CA} AS is_ca FROM certificates WHERE ${cond} AND status != 'revoked'`,
      { v: value },
    );
    return rows.map((r) => ({ ...fromRow(r), isCA: r.is_ca === 1 }));
  }

  /** Marks these entries revoked (never a CA) and returns them as they now are. */
  async revoke(sha256s: string[], reason: CrlReason, at: Date): Promise<LedgerEntry[]> {
    const sel = this.db.prepare(
      `SELECT * FROM certificates WHERE sha256 = ? AND status != 'revoked' AND NOT ${IS_CA}`,
    );
    const upd = this.db.prepare(
      "UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE sha256 = ?",
    );
    const when = at.toISOString();
    return this.write(() => {
      const out: LedgerEntry[] = [];
      for (const sha of sha256s) {
        const r = sel.get(normalizeFingerprint(sha)) as unknown as Row | undefined;
        if (!r) continue;
        upd.run(when, reason, r.sha256);
        out.push({ ...fromRow(r), status: "revoked", revokedAt: when, reason });
      }
      return out;
    });
  }

  /** Restores revocations found only in a published CRL (ledger repair); returns how many changed. */
  async markRevoked(items: { sha256: string; revokedAt: string; reason: CrlReason }[]): Promise<number> {
    const upd = this.db.prepare(
      `UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE sha256 = ? AND status != 'revoked' AND NOT ${IS_CA}`,
    );
    return this.write(() =>
      items.reduce((n, i) => n + Number(upd.run(i.revokedAt, i.reason, i.sha256).changes), 0),
    );
  }

  async serialOnly(issuerSha256: string): Promise<SerialOnly[]> {
    return this.select<{ serial: string; revoked_at: string; reason: CrlReason }>(
      "SELECT serial, revoked_at, reason FROM serial_only WHERE issuer_sha256 = ? ORDER BY revoked_at",
      issuerSha256,
    ).map((r) => ({ serial: r.serial, revokedAt: r.revoked_at, reason: r.reason }));
  }

  async recordSerialOnly(issuerSha256: string, items: SerialOnly[]): Promise<void> {
    const ins = this.db.prepare(
      "INSERT OR IGNORE INTO serial_only (issuer_sha256, serial, revoked_at, reason) VALUES (?, ?, ?, ?)",
    );
    this.write(() => {
      for (const i of items) ins.run(issuerSha256, normalizeSerial(i.serial), i.revokedAt, i.reason);
    });
  }

  /** The last CRL number used for a CA (0 if none). */
  async lastCrlNumber(issuerSha256: string): Promise<bigint> {
    const row = this.selectOne<{ last: number }>(
      "SELECT last FROM crl_numbers WHERE issuer_sha256 = ?",
      issuerSha256,
    );
    return BigInt(row?.last ?? 0);
  }

  /** The next CRL number: above the last one the ledger used and above `above` (the CRL on disk). */
  async nextCrlNumber(issuerSha256: string, above = 0n): Promise<bigint> {
    const floor = Number(above) + 1;
    return this.write(() => {
      this.db
        .prepare(
          "INSERT INTO crl_numbers (issuer_sha256, last) VALUES (?, ?) ON CONFLICT(issuer_sha256) DO UPDATE SET last = MAX(last + 1, excluded.last)",
        )
        .run(issuerSha256, floor);
      const row = this.selectOne<{ last: number }>(
        "SELECT last FROM crl_numbers WHERE issuer_sha256 = ?",
        issuerSha256,
      );
      return BigInt(row?.last ?? floor);
    });
  }

  /** Revoked entries, synchronously: the node snapshot (a synchronous reader) uses it too. */
  revokedSync(issuerSha256?: string): LedgerEntry[] {
    const rows = issuerSha256
      ? this.select<Row>(
          "SELECT * FROM certificates WHERE status = 'revoked' AND issuer_sha256 = ? ORDER BY revoked_at",
          issuerSha256,
        )
      : this.select<Row>("SELECT * FROM certificates WHERE status = 'revoked' ORDER BY revoked_at");
    return rows.map((r) => fromRow(r));
  }

  async revoked(issuerSha256?: string): Promise<LedgerEntry[]> {
    return this.revokedSync(issuerSha256);
  }

  async revokedFingerprints(): Promise<Set<string>> {
    const rows = this.select<{ sha256: string }>("SELECT sha256 FROM certificates WHERE status = 'revoked'");
    return new Set(rows.map((r) => r.sha256));
  }

  async knownFingerprints(): Promise<Set<string>> {
    return new Set(this.select<{ sha256: string }>("SELECT sha256 FROM certificates").map((r) => r.sha256));
  }

  /**
   * Runs `fn` holding the ledger's write lock (BEGIN IMMEDIATE ... COMMIT): a revocation and the CRL
   * it publishes are one step, so two revokers never publish CRLs that miss each other's entries.
   * Other writers wait up to the busy timeout. `fn` must use only this connection.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn();
    this.begin();
    this.inTransaction = true;
    try {
      const result = await fn();
      this.db.exec("COMMIT");
      return result;
    } catch (err) {
      this.quietly("ROLLBACK");
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }

  /** The integrity baseline, synchronously: the audit's node snapshot (a synchronous reader) uses it. */
  baselineSync(): BaselineRecord[] {
    const has = this.selectOne<{ n: number }>(
      "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'baseline'",
    );
    if (!has?.n) return [];
    return this.select<{ record: string }>("SELECT record FROM baseline ORDER BY path").map(
      (r) => JSON.parse(r.record) as BaselineRecord,
    );
  }

  /** Fingerprints of the certificates the ledger holds as current (active, expired or not): the audit's integrity check. */
  currentFingerprintsSync(): Set<string> {
    const rows = this.select<{ sha256: string }>("SELECT sha256 FROM certificates WHERE status = 'active'");
    return new Set(rows.map((r) => r.sha256));
  }

  async baseline(): Promise<BaselineRecord[]> {
    return this.baselineSync();
  }

  async putBaseline(records: BaselineRecord[], removed: string[] = []): Promise<void> {
    const put = this.db.prepare(
      "INSERT INTO baseline (path, record) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET record = excluded.record",
    );
    const del = this.db.prepare("DELETE FROM baseline WHERE path = ?");
    this.write(() => {
      for (const r of records) put.run(r.path, JSON.stringify(r));
      for (const p of removed) del.run(p);
    });
  }

  /** SQLite's data_version: changes when another connection commits (https://sqlite.org/pragma.html#pragma_data_version). */
  async version(): Promise<number> {
    return this.selectOne<{ data_version: number }>("PRAGMA data_version")?.data_version ?? 0;
  }

  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  async close(): Promise<void> {
    this.closeSync();
  }
}

/** An entry as the named parameters of the INSERT in record(): exactly those keys, no undefined. */
function toParams(e: LedgerEntry): Record<string, Param> {
  return {
    sha256: e.sha256,
    serial: e.serial,
    issuerSha256: e.issuerSha256,
    subjectCN: e.subjectCN,
    subjectO: JSON.stringify(e.subjectO),
    sans: JSON.stringify(e.sans),
    notBefore: e.notBefore,
    notAfter: e.notAfter,
    profile: e.profile,
    path: e.path ?? null,
    source: e.source,
    status: e.status,
    recordedAt: e.recordedAt,
    revokedAt: e.revokedAt ?? null,
    reason: e.reason ?? null,
    breakGlass: e.breakGlass ? 1 : 0,
  };
}
