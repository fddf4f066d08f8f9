import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { pathsOf, rememberStore, storeOf } from "../src/app/tree.js";
import { InputError } from "../src/errors.js";
import { K, parseEntry, parseSchema } from "../src/ledger/etcd-keys.js";
import { storeTarget } from "../src/ledger/target.js";
import { parseConfig } from "../src/pki/config.js";
import { resolveSpec } from "../src/pki/spec.js";
import { kubepkiAsync } from "./ha-peers.js";
import { buildTree, initTree, kubepki, PKI } from "./helpers.js";

const own = { cacert: "/r/etc/kubernetes/pki/etcd/ca.crt", cert: "/r/own.crt", key: "/r/own.key" };

describe("--store: where the ledger lives", () => {
  it("defaults to the SQLite file under the root; --state DIR is sqlite:DIR/ledger.db; sqlite:PATH", () => {
    assert.deepEqual(storeTarget({}, "/r/var/lib/kubepki/ledger.db", own), {
      kind: "sqlite",
      file: "/r/var/lib/kubepki/ledger.db",
    });
    assert.deepEqual(storeTarget({ state: "/s" }, "/x", own), { kind: "sqlite", file: "/s/ledger.db" });
    assert.deepEqual(storeTarget({ store: "sqlite:rel/l.db" }, "/x", own), {
      kind: "sqlite",
      file: resolve("rel/l.db"),
    });
  });

  it("etcd://: endpoints in the order given, kubepki's own pair and the node's etcd CA by default", () => {
    const t = storeTarget({ store: "etcd://10.0.0.2:2379,10.0.0.1:2379", etcdPrefix: "/k" }, "/x", own);
    assert.equal(t.kind, "etcd");
    if (t.kind !== "etcd") return;
    assert.deepEqual(t.endpoints, ["10.0.0.2:2379", "10.0.0.1:2379"]);
    assert.equal(t.prefix, "/k/");
    assert.equal(t.timeoutMs, 5_000);
    assert.deepEqual([t.cacert, t.cert, t.key, t.ownPair], [own.cacert, own.cert, own.key, true]);
    const given = storeTarget(
      { store: "etcd://[::1]:2379", etcdCert: "c.crt", etcdKey: "c.key", etcdTimeoutMs: 1500 },
      "/x",
      own,
    );
    assert.ok(
      given.kind === "etcd" && !given.ownPair && given.cert === resolve("c.crt") && given.timeoutMs === 1500,
    );
  });

  it("refuses what is not a store (usage errors, exit 2)", () => {
    for (const o of [
      { store: "mysql://h:1" },
      { store: "etcd://" },
      { store: "etcd://host" },
      { store: "etcd://h:99999" },
      { store: "sqlite:" },
      { store: "etcd://h:1", etcdCert: "c" },
      { store: "etcd://h:1", state: "/s" },
      { store: "etcd://h:1", etcdTimeoutMs: 5 },
    ])
      assert.throws(() => storeTarget(o, "/x", own), InputError, JSON.stringify(o));
  });

  it("the KubepkiConfiguration document sets it (store, etcd.*); an unknown etcd field is refused", () => {
    const doc = `apiVersion: kubepki.io/v1alpha1
kind: KubepkiConfiguration
store: etcd://10.0.0.11:2379
etcd:
  prefix: /p/
  timeout: 2s
`;
    const spec = resolveSpec([parseConfig(doc, "k.yaml")]);
    assert.deepEqual(spec.store, { store: "etcd://10.0.0.11:2379", etcdPrefix: "/p/", etcdTimeout: "2s" });
    assert.throws(() => parseConfig(`${doc}  endpoint: x\n`, "k.yaml"), /unknown field "endpoint"/);
  });

  it("the CLI: --store sqlite:PATH creates and reads that file (0600); a bad URL is exit 2; --help names --store", async () => {
    const { root } = await buildTree();
    const file = join(root, "var/lib/kubepki/other.db");
    const init = kubepki(["ledger", "init", "--root", root, "--store", `sqlite:${file}`]);
    assert.equal(init.status, 0, init.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const list = kubepki(["ledger", "list", "--root", root, "--store", `sqlite:${file}`, "-o", "json"]);
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), []);
    const bad = kubepki([
      "revoke",
      "--root",
      root,
      "--store",
      "etcd://nope",
      "--user",
      "x",
      "--reason",
      "superseded",
    ]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /"nope" is not HOST:PORT/);
    const help = kubepki(["revoke", "--help"]);
    for (const f of [
      "--store",
      "--state",
      "--etcd-cacert",
      "--etcd-cert",
      "--etcd-key",
      "--etcd-prefix",
      "--etcd-timeout",
    ])
      assert.ok(help.stdout.includes(f), f);
  });

  it("an etcd endpoint that accepts and never answers: exit 3 naming it, within about --etcd-timeout", async () => {
    const { root } = await buildTree();
    const held: Socket[] = [];
    const srv = createServer((c) => {
      held.push(c);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    try {
      const t0 = Date.now();
      const r = await kubepkiAsync([
        "ledger",
        "list",
        "--root",
        root,
        "--store",
        `etcd://127.0.0.1:${port}`,
        "--etcd-timeout",
        "1s",
        "--etcd-cert",
        join(root, PKI, "apiserver-etcd-client.crt"),
        "--etcd-key",
        join(root, PKI, "apiserver-etcd-client.key"),
      ]);
      assert.equal(r.status, 3, r.stderr);
      assert.ok(Date.now() - t0 < 6_000, `${Date.now() - t0} ms`);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}: no answer within`));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      for (const c of held) c.destroy();
      srv.close();
    }
  });

  it("a node remembers its etcd ledger (settings.json): commands without --store use it; --state, --store or init keep their say", async () => {
    const { root, offline } = await initTree();
    const paths = pathsOf({ root });
    assert.equal((await storeOf({ root })).kind, "sqlite");
    await rememberStore(paths, { store: "etcd://127.0.0.1:1", etcdPrefix: "/k2/" });
    const settings = JSON.parse(readFileSync(join(root, "var/lib/kubepki/settings.json"), "utf8"));
    assert.equal(settings.store.store, "etcd://127.0.0.1:1");
    assert.equal(statSync(join(root, "var/lib/kubepki/settings.json")).mode & 0o777, 0o600);
    const t = await storeOf({ root });
    assert.equal(t.kind, "etcd");
    assert.equal(t.kind === "etcd" && t.prefix, "/k2/");
    assert.equal((await storeOf({ root, state: join(root, "s") })).kind, "sqlite");
    assert.equal((await storeOf({ root, store: "sqlite:x.db" })).kind, "sqlite");
    // init re-run keeps the remembered store (and its offline folder) in settings.json
    const again = kubepki(
      ["init", "--root", root, "--offline-dir", offline, "--node-name", "cp1"].concat([
        "--advertise-address",
        "10.0.0.10",
      ]),
    );
    assert.equal(
      again.status,
      3,
      `init now wants the remembered etcd ledger (none listens here): ${again.stderr}`,
    );
    assert.match(again.stderr, /127\.0\.0\.1:1/);
    assert.equal(
      JSON.parse(readFileSync(join(root, "var/lib/kubepki/settings.json"), "utf8")).store.store,
      "etcd://127.0.0.1:1",
    );
    // a SQLite ledger given again forgets the etcd one
    await rememberStore(paths, { store: `sqlite:${join(root, "var/lib/kubepki/ledger.db")}` });
    assert.equal((await storeOf({ root })).kind, "sqlite");
  });

  it("etcd values: a bad one is named and skipped, the schema is read", () => {
    assert.equal(parseEntry("entries/x", Buffer.from("{not json")), "not valid JSON");
    assert.match(String(parseEntry("entries/x", Buffer.from('{"sha256":"zz"}'))), /not a ledger entry/);
    const e = {
      sha256: "a".repeat(64),
      serial: "1",
      issuerSha256: "b".repeat(64),
      subjectCN: "jane",
      subjectO: [],
      sans: [],
      notBefore: "2026-01-01T00:00:00.000Z",
      notAfter: "2027-01-01T00:00:00.000Z",
      profile: "client",
      source: "issued",
      status: "active",
      recordedAt: "2026-01-01T00:00:00.000Z",
    };
    assert.equal(typeof parseEntry(K.entry(e.sha256), Buffer.from(JSON.stringify(e))), "object");
    assert.match(String(parseEntry(K.entry("c".repeat(64)), Buffer.from(JSON.stringify(e)))), /not its key/);
    assert.deepEqual(parseSchema(Buffer.from('{"version":1,"id":"x"}')), { version: 1, id: "x" });
  });
});
