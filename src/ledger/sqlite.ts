import { randomUUID } from "node:crypto";
import { closeSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { errorMessage, IoError } from "../errors.js";
import { ensureDir } from "../fsx/atomic.js";
import { checkWritePath } from "../fsx/confine.js";
import type { CrlReason } from "../x509/crl.js";
import { normalizeFingerprint, normalizeSerial } from "./entry.js";
import { missingLedgerMessage } from "./messages.js";
import type { LedgerEntry, LedgerStore, ListFilter, RevokeMatch, SerialOnly, Status } from "./store.js";

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
CREATE TABLE IF NOT EXISTS serial_only (issuer_sha256 TEXT NOT NULL, serial TEXT NOT NULL, revoked_at TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (issuer_sha256, serial));
`;

/** How a command opens the ledger: only `init` and `ledger init` may create one. */
export type OpenMode = "create" | "existing" | "readonly";

/** Writers wait this long for another kubepki process holding the ledger's write lock. */
const BUSY_TIMEOUT_MS = 30_000;

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

/**
 * The embedded ledger: one SQLite file (WAL, synchronous=NORMAL), mode 0600, shared by every
 * kubepki command given the same root. better-sqlite3 12 (13 needs Node 22: reference/stack.md 8).
 */
export class SqliteLedger implements LedgerStore {
  private readonly db: Database.Database;

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
    if (m !== "create") checkLedgerFile(file);
    try {
      if (m === "create") {
        ensureDir(dirname(file), 0o700);
        // Create the file 0600 before SQLite opens it, so it never exists with a wider mode.
        try {
          closeSync(openSync(file, "wx", 0o600));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        }
      }
      // The timeout applies from the first statement (the journal_mode pragma can wait on a writer too).
      this.db = new Database(file, {
        readonly: m === "readonly",
        fileMustExist: m !== "create",
        timeout: BUSY_TIMEOUT_MS,
      });
      if (m !== "readonly") {
        this.db.pragma("journal_mode = WAL");
        this.db.pragma("synchronous = NORMAL");
      }
      if (m === "create") {
        this.db.exec(SCHEMA);
        this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?)").run(randomUUID());
      }
    } catch (err) {
      throw new IoError(`cannot open the ledger ${file}: ${errorMessage(err)}`);
    }
    this.checkSchema(m);
  }

  /** A ledger is kubepki's when it has the certificates table; older ones get the meta table. */
  private checkSchema(m: OpenMode): void {
    const tables = new Set(
      (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").raw().all() as [string][]).map(
        (r) => r[0],
      ),
    );
    if (!tables.has("certificates")) {
      this.db.close();
      throw new IoError(missingLedgerMessage(this.file, "is empty (no certificates table)"));
    }
    if (m === "existing" && !tables.has("meta")) {
      this.db.exec(SCHEMA);
      this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?)").run(randomUUID());
    }
  }

  /** The ledger's identity, set when it was created: a replaced ledger has another one. */
  idSync(): string {
    try {
      const row = this.db.prepare("SELECT value FROM meta WHERE key = 'ledger_id'").get() as
        | { value: string }
        | undefined;
      return row?.value ?? "";
    } catch {
      return "";
    }
  }

  recordSync(entries: LedgerEntry[]): void {
    const stmt = this.db.prepare(
      `INSERT INTO certificates (sha256, serial, issuer_sha256, subject_cn, subject_o, sans, not_before, not_after, profile, path, source, status, recorded_at, revoked_at, reason, break_glass)
       VALUES (@sha256, @serial, @issuerSha256, @subjectCN, @subjectO, @sans, @notBefore, @notAfter, @profile, @path, @source, @status, @recordedAt, @revokedAt, @reason, @breakGlass)
       ON CONFLICT(sha256) DO UPDATE SET path = COALESCE(excluded.path, path), profile = CASE WHEN source = 'imported' THEN excluded.profile ELSE profile END`,
    );
    this.db
      .transaction((list: LedgerEntry[]) => {
        for (const e of list)
          stmt.run({
            ...e,
            subjectO: JSON.stringify(e.subjectO),
            sans: JSON.stringify(e.sans),
            path: e.path ?? null,
            revokedAt: e.revokedAt ?? null,
            reason: e.reason ?? null,
            breakGlass: e.breakGlass ? 1 : 0,
          });
      })
      .immediate(entries);
  }

  supersedeSync(sha256s: string[]): void {
    const stmt = this.db.prepare(
      "UPDATE certificates SET status = 'superseded' WHERE sha256 = ? AND status = 'active'",
    );
    this.db
      .transaction((list: string[]) => {
        for (const s of list) stmt.run(s);
      })
      .immediate(sha256s);
  }

  listSync(filter: ListFilter = {}, now = new Date()): LedgerEntry[] {
    const where: string[] = [];
    const args: Record<string, string> = {};
    if (filter.user) {
      where.push("subject_cn = @user");
      args.user = filter.user;
    }
    if (filter.expiresBefore) {
      where.push("not_after < @before");
      args.before = filter.expiresBefore.toISOString();
    }
    const rows = this.db
      .prepare(
        `SELECT * FROM certificates ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY not_after, sha256`,
      )
      .all(args) as Row[];
    const all = rows.map((r) => fromRow(r, now));
    return filter.status ? all.filter((e) => e.status === filter.status) : all;
  }

  getSync(sha256: string): LedgerEntry | undefined {
    const row = this.db.prepare("SELECT * FROM certificates WHERE sha256 = ?").get(sha256) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** Entries not yet revoked that match, with whether each is a CA (revocation never takes CAs). */
  findSync(match: RevokeMatch): (LedgerEntry & { isCA: boolean })[] {
    const cond = match.sha256 ? "sha256 = @v" : match.serial ? "serial = @v" : "subject_cn = @v";
    const value = match.sha256
      ? normalizeFingerprint(match.sha256)
      : match.serial
        ? normalizeSerial(match.serial)
        : (match.user ?? "");
    const rows = this.db
      .prepare(`SELECT *, ${IS_CA} AS is_ca FROM certificates WHERE ${cond} AND status != 'revoked'`)
      .all({ v: value }) as (Row & { is_ca: number })[];
    return rows.map((r) => ({ ...fromRow(r), isCA: r.is_ca === 1 }));
  }

  /** Marks these entries revoked (never a CA) and returns them as they now are. */
  revokeSync(sha256s: string[], reason: CrlReason, at: Date): LedgerEntry[] {
    const sel = this.db.prepare(
      `SELECT * FROM certificates WHERE sha256 = ? AND status != 'revoked' AND NOT ${IS_CA}`,
    );
    const upd = this.db.prepare(
      "UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE sha256 = ?",
    );
    return this.db
      .transaction(() => {
        const out: LedgerEntry[] = [];
        for (const sha of sha256s) {
          const r = sel.get(normalizeFingerprint(sha)) as Row | undefined;
          if (!r) continue;
          upd.run(at.toISOString(), reason, r.sha256);
          out.push({ ...fromRow(r), status: "revoked", revokedAt: at.toISOString(), reason });
        }
        return out;
      })
      .immediate();
  }

  /** Restores revocations found only in a published CRL (ledger repair); returns how many changed. */
  markRevokedSync(items: { sha256: string; revokedAt: string; reason: CrlReason }[]): number {
    const upd = this.db.prepare(
      `UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE sha256 = ? AND status != 'revoked' AND NOT ${IS_CA}`,
    );
    return this.db
      .transaction(() => items.reduce((n, i) => n + upd.run(i.revokedAt, i.reason, i.sha256).changes, 0))
      .immediate();
  }

  serialOnlySync(issuerSha256: string): SerialOnly[] {
    return (
      this.db
        .prepare(
          "SELECT serial, revoked_at, reason FROM serial_only WHERE issuer_sha256 = ? ORDER BY revoked_at",
        )
        .all(issuerSha256) as { serial: string; revoked_at: string; reason: CrlReason }[]
    ).map((r) => ({ serial: r.serial, revokedAt: r.revoked_at, reason: r.reason }));
  }

  recordSerialOnlySync(issuerSha256: string, items: SerialOnly[]): void {
    const ins = this.db.prepare(
      "INSERT OR IGNORE INTO serial_only (issuer_sha256, serial, revoked_at, reason) VALUES (?, ?, ?, ?)",
    );
    this.db
      .transaction(() => {
        for (const i of items) ins.run(issuerSha256, normalizeSerial(i.serial), i.revokedAt, i.reason);
      })
      .immediate();
  }

  /** The last CRL number used for a CA (0 if none). */
  lastCrlNumberSync(issuerSha256: string): bigint {
    const row = this.db.prepare("SELECT last FROM crl_numbers WHERE issuer_sha256 = ?").get(issuerSha256) as
      | { last: number }
      | undefined;
    return BigInt(row?.last ?? 0);
  }

  revokedSync(issuerSha256?: string): LedgerEntry[] {
    const rows = (
      issuerSha256
        ? this.db
            .prepare(
              "SELECT * FROM certificates WHERE status = 'revoked' AND issuer_sha256 = ? ORDER BY revoked_at",
            )
            .all(issuerSha256)
        : this.db.prepare("SELECT * FROM certificates WHERE status = 'revoked' ORDER BY revoked_at").all()
    ) as Row[];
    return rows.map((r) => fromRow(r));
  }

  revokedFingerprintsSync(): Set<string> {
    const rows = this.db.prepare("SELECT sha256 FROM certificates WHERE status = 'revoked'").raw().all() as [
      string,
    ][];
    return new Set(rows.map((r) => r[0]));
  }

  /** The next CRL number: above the last one the ledger used and above `above` (the CRL on disk). */
  nextCrlNumberSync(issuerSha256: string, above = 0n): bigint {
    const floor = Number(above) + 1;
    return this.db
      .transaction(() => {
        this.db
          .prepare(
            "INSERT INTO crl_numbers (issuer_sha256, last) VALUES (?, ?) ON CONFLICT(issuer_sha256) DO UPDATE SET last = MAX(last + 1, excluded.last)",
          )
          .run(issuerSha256, floor);
        const row = this.db
          .prepare("SELECT last FROM crl_numbers WHERE issuer_sha256 = ?")
          .get(issuerSha256) as { last: number };
        return BigInt(row.last);
      })
      .immediate();
  }

  /**
   * Runs `fn` holding the ledger's write lock (BEGIN IMMEDIATE ... COMMIT): a revocation and the CRL
   * it publishes are one step, so two revokers never publish CRLs that miss each other's entries.
   * Other writers wait up to the busy timeout. `fn` must use only this connection.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.db.inTransaction) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = await fn();
      this.db.exec("COMMIT");
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      throw err;
    }
  }

  /** SQLite's data_version: changes when another connection commits (https://sqlite.org/pragma.html#pragma_data_version). */
  versionSync(): number {
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  closeSync(): void {
    this.db.close();
  }

  // The LedgerStore interface: better-sqlite3 is synchronous, so each call resolves at once.
  async record(entries: LedgerEntry[]): Promise<void> {
    this.recordSync(entries);
  }
  async supersede(sha256s: string[]): Promise<void> {
    this.supersedeSync(sha256s);
  }
  async list(filter?: ListFilter, now?: Date): Promise<LedgerEntry[]> {
    return this.listSync(filter, now);
  }
  async get(sha256: string): Promise<LedgerEntry | undefined> {
    return this.getSync(sha256);
  }
  async find(match: RevokeMatch): Promise<(LedgerEntry & { isCA: boolean })[]> {
    return this.findSync(match);
  }
  async revoke(sha256s: string[], reason: CrlReason, at: Date): Promise<LedgerEntry[]> {
    return this.revokeSync(sha256s, reason, at);
  }
  async markRevoked(items: { sha256: string; revokedAt: string; reason: CrlReason }[]): Promise<number> {
    return this.markRevokedSync(items);
  }
  async serialOnly(issuerSha256: string): Promise<SerialOnly[]> {
    return this.serialOnlySync(issuerSha256);
  }
  async recordSerialOnly(issuerSha256: string, items: SerialOnly[]): Promise<void> {
    this.recordSerialOnlySync(issuerSha256, items);
  }
  async lastCrlNumber(issuerSha256: string): Promise<bigint> {
    return this.lastCrlNumberSync(issuerSha256);
  }
  async id(): Promise<string> {
    return this.idSync();
  }
  async revoked(issuerSha256?: string): Promise<LedgerEntry[]> {
    return this.revokedSync(issuerSha256);
  }
  async revokedFingerprints(): Promise<Set<string>> {
    return this.revokedFingerprintsSync();
  }
  async nextCrlNumber(issuerSha256: string, above?: bigint): Promise<bigint> {
    return this.nextCrlNumberSync(issuerSha256, above);
  }
  async version(): Promise<number> {
    return this.versionSync();
  }
  async close(): Promise<void> {
    this.closeSync();
  }
}
