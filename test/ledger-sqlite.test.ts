import assert from "node:assert/strict";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { SqliteLedger } from "../src/ledger/sqlite.js";
import type { LedgerEntry } from "../src/ledger/store.js";
import { tempDir } from "./helpers.js";

function entry(n: number, over: Partial<LedgerEntry> = {}): LedgerEntry {
  const sha = n.toString(16).padStart(64, "0");
  return {
    sha256: sha,
    serial: n.toString(16),
    issuerSha256: "f".repeat(64),
    subjectCN: `user-${n}`,
    subjectO: [],
    sans: [],
    notBefore: "2026-01-01T00:00:00.000Z",
    notAfter: "2027-01-01T00:00:00.000Z",
    profile: "client",
    source: "issued",
    status: "active",
    recordedAt: "2026-01-01T00:00:00.000Z",
    ...over,
  };
}

describe("the SQLite ledger on node:sqlite", () => {
  it("is created 0600 in WAL mode; a missing or empty file is refused; read-only refuses writes", async () => {
    const dir = tempDir();
    const file = join(dir, "state", "ledger.db");
    const store = new SqliteLedger(file, "create");
    await store.record([entry(1), entry(2, { breakGlass: true, path: "/etc/kubernetes/admin.conf" })]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "state")).mode & 0o777, 0o700);
    const id = await store.id();
    assert.match(id, /^[0-9a-f-]{36}$/);
    await store.close();

    const raw = new DatabaseSync(file, { readOnly: true });
    assert.deepEqual({ ...raw.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
    raw.close();

    const ro = new SqliteLedger(file, "readonly");
    assert.equal(await ro.id(), id);
    const got = await ro.get(entry(2).sha256);
    assert.equal(got?.breakGlass, true);
    assert.equal(got?.path, "/etc/kubernetes/admin.conf");
    await assert.rejects(ro.record([entry(3)]), /readonly/);
    await ro.close();

    assert.throws(() => new SqliteLedger(join(dir, "missing.db")), /does not exist/);
    writeFileSync(join(dir, "empty.db"), "");
    assert.throws(() => new SqliteLedger(join(dir, "empty.db")), /is empty \(0 bytes\)/);
  });

  it("a failed write inside exclusive() undoes only itself; a failure of the whole step undoes it all", async () => {
    const store = new SqliteLedger(join(tempDir(), "ledger.db"), "create");
    await store.exclusive(async () => {
      await store.record([entry(1)]);
      // Entry 3 has no serial (NOT NULL): the batch fails inside its savepoint, entry 2 goes with it.
      await assert.rejects(store.record([entry(2), { ...entry(3), serial: null as unknown as string }]));
    });
    assert.deepEqual(
      (await store.list()).map((e) => e.subjectCN),
      ["user-1"],
    );
    await assert.rejects(
      store.exclusive(async () => {
        await store.revoke([entry(1).sha256], "keyCompromise", new Date());
        throw new Error("CRL not written");
      }),
      /CRL not written/,
    );
    assert.equal((await store.get(entry(1).sha256))?.status, "active");
    await store.close();
  });

  it("exclusive() holds the write lock across awaits; version() sees another connection's commit", async () => {
    const file = join(tempDir(), "ledger.db");
    const store = new SqliteLedger(file, "create");
    const other = new DatabaseSync(file, { timeout: 0 });
    const v0 = await store.version();
    await store.exclusive(async () => {
      await sleep(20);
      assert.throws(() => other.exec("BEGIN IMMEDIATE"), /database is locked/);
      await store.record([entry(1)]);
    });
    other.exec("BEGIN IMMEDIATE; UPDATE certificates SET profile = 'imported'; COMMIT");
    assert.notEqual(await store.version(), v0);
    assert.equal((await store.get(entry(1).sha256))?.profile, "imported");
    other.close();
    await store.close();
  });
});
