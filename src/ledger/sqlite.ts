import { closeSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { errorMessage, IoError } from "../errors.js";
import { ensureDir } from "../fsx/atomic.js";
import type { CrlReason } from "../x509/crl.js";
import { normalizeFingerprint, normalizeSerial } from "./entry.js";
import type { LedgerEntry, LedgerStore, ListFilter, RevokeMatch, Status } from "./store.js";

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
`;

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

  /** `readonly`: open an existing ledger without creating or changing anything (the audit). */
  constructor(
    readonly file: string,
    readonly = false,
  ) {
    if (readonly) {
      try {
        this.db = new Database(file, { readonly: true, fileMustExist: true });
        return;
      } catch (err) {
        throw new IoError(`cannot read the ledger ${file}: ${errorMessage(err)}`);
      }
    }
    try {
      ensureDir(dirname(file), 0o700);
      // Create the file 0600 before SQLite opens it, so it never exists with a wider mode.
      try {
        closeSync(openSync(file, "wx", 0o600));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      this.db = new Database(file);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.pragma("busy_timeout = 5000");
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new IoError(`cannot open the ledger ${file}: ${errorMessage(err)}`);
    }
  }

  recordSync(entries: LedgerEntry[]): void {
    const stmt = this.db.prepare(
      `INSERT INTO certificates (sha256, serial, issuer_sha256, subject_cn, subject_o, sans, not_before, not_after, profile, path, source, status, recorded_at, revoked_at, reason, break_glass)
       VALUES (@sha256, @serial, @issuerSha256, @subjectCN, @subjectO, @sans, @notBefore, @notAfter, @profile, @path, @source, @status, @recordedAt, @revokedAt, @reason, @breakGlass)
       ON CONFLICT(sha256) DO UPDATE SET path = COALESCE(excluded.path, path), profile = CASE WHEN source = 'imported' THEN excluded.profile ELSE profile END`,
    );
    this.db.transaction((list: LedgerEntry[]) => {
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
    })(entries);
  }

  supersedeSync(sha256s: string[]): void {
    const stmt = this.db.prepare(
      "UPDATE certificates SET status = 'superseded' WHERE sha256 = ? AND status = 'active'",
    );
    this.db.transaction((list: string[]) => {
      for (const s of list) stmt.run(s);
    })(sha256s);
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

  revokeSync(match: RevokeMatch, reason: CrlReason, at: Date): LedgerEntry[] {
    const cond = match.sha256 ? "sha256 = @v" : match.serial ? "serial = @v" : "subject_cn = @v";
    const value = match.sha256
      ? normalizeFingerprint(match.sha256)
      : match.serial
        ? normalizeSerial(match.serial)
        : (match.user ?? "");
    return this.db.transaction(() => {
      const rows = this.db
        .prepare(`SELECT * FROM certificates WHERE ${cond} AND status != 'revoked'`)
        .all({ v: value }) as Row[];
      const upd = this.db.prepare(
        "UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE sha256 = ?",
      );
      for (const r of rows) upd.run(at.toISOString(), reason, r.sha256);
      return rows.map((r) => ({
        ...fromRow(r),
        status: "revoked" as const,
        revokedAt: at.toISOString(),
        reason,
      }));
    })();
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

  nextCrlNumberSync(issuerSha256: string): bigint {
    return this.db.transaction(() => {
      this.db
        .prepare(
          "INSERT INTO crl_numbers (issuer_sha256, last) VALUES (?, 1) ON CONFLICT(issuer_sha256) DO UPDATE SET last = last + 1",
        )
        .run(issuerSha256);
      const row = this.db
        .prepare("SELECT last FROM crl_numbers WHERE issuer_sha256 = ?")
        .get(issuerSha256) as { last: number };
      return BigInt(row.last);
    })();
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
  async revoke(match: RevokeMatch, reason: CrlReason, at: Date): Promise<LedgerEntry[]> {
    return this.revokeSync(match, reason, at);
  }
  async revoked(issuerSha256?: string): Promise<LedgerEntry[]> {
    return this.revokedSync(issuerSha256);
  }
  async revokedFingerprints(): Promise<Set<string>> {
    return this.revokedFingerprintsSync();
  }
  async nextCrlNumber(issuerSha256: string): Promise<bigint> {
    return this.nextCrlNumberSync(issuerSha256);
  }
  async version(): Promise<number> {
    return this.versionSync();
  }
  async close(): Promise<void> {
    this.closeSync();
  }
}
