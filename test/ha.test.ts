// High availability on etcd (issue 11): a real three-member etcd 3.4 cluster with TLS on loopback,
// three `kubepki serve` replicas, concurrent CLI revokers. Run it alone: it starts six processes.
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { clientEntries, copyNode, denies, kubepkiAsync, readyz, recordEntries } from "./ha-peers.js";
import { buildTree, initArgs, kubepki, openssl, PKI } from "./helpers.js";
import { type EtcdCluster, etcdctl, startEtcdCluster } from "./peers/etcd.js";
import { type Serve, startServe, waitFor } from "./webhook-client.js";

const REVOCATIONS = 200;
const WORKERS = 4;

describe("the ledger on a three-member etcd cluster, three serve replicas", { timeout: 600_000 }, () => {
  let cluster: EtcdCluster;
  let roots: string[];
  let offline: string;
  const replicas: Serve[] = [];
  const pair = (root: string) =>
    [
      join(root, PKI, "etcd/ca.crt"),
      join(root, "etc/kubernetes/kubepki/etcd-client.crt"),
      join(root, "etc/kubernetes/kubepki/etcd-client.key"),
    ] as const;

  before(async () => {
    const tree = await buildTree();
    offline = tree.offline;
    cluster = await startEtcdCluster(tree.root);
    const init = kubepki(initArgs(tree.root, offline, "--store", cluster.url(0)));
    assert.equal(init.status, 0, init.stderr);
    roots = [tree.root, copyNode(tree.root), copyNode(tree.root)];
    for (const [i, root] of roots.entries())
      replicas.push(await startServe(root, ["--store", cluster.url(i), "--max-staleness", "3s"]));
  });
  after(async () => {
    for (const r of replicas) await r.stop();
    await cluster?.stop();
  });

  it("init issued kubepki's etcd client pair (0600) and the ledger lives in etcd", () => {
    const [, cert, key] = pair(roots[0] as string);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const x = openssl(["x509", "-in", cert, "-noout", "-subject", "-issuer"]);
    assert.match(x.stdout, /subject=CN ?= ?kubepki-etcd-client/);
    assert.match(x.stdout, /issuer=CN ?= ?etcd-ca/);
    const schema = etcdctl(cluster.members[0]?.client ?? "", ...pair(roots[0] as string), [
      "get",
      "/kubepki/schema",
      "--print-value-only",
    ]);
    assert.match(schema.stdout, /"version":1/);
  });

  it("--unknown-certificates deny on etcd: an id the ledger lacks is denied; one recorded on another node is known within a second", async () => {
    const strict = await startServe(roots[0] as string, [
      "--store",
      cluster.url(0),
      "--unknown-certificates",
      "deny",
    ]);
    try {
      const [fresh] = clientEntries(roots[0] as string, 1, "unknown-then-known");
      const sha = fresh?.sha256 ?? "";
      assert.equal(await denies(strict, sha), true, strict.logs());
      await recordEntries(roots[1] as string, cluster.url(1), fresh ? [fresh] : []);
      const known = await waitFor(async () => (await denies(strict, sha)) === false, 5000);
      assert.ok(known >= 0 && known <= 1000, `known after ${known} ms\n${strict.logs()}`);
    } finally {
      await strict.stop();
    }
  });

  it("200 revocations by four CLI processes, each on another member, one member SIGKILLed midway: nothing lost, answers never stop", async () => {
    const entries = clientEntries(roots[0] as string, REVOCATIONS, "ha");
    await recordEntries(roots[0] as string, cluster.url(0), entries);
    let done = 0;
    let killed = false;
    const numbers: number[] = [];
    const failures: string[] = [];
    const worker = async (w: number) => {
      for (let i = w; i < REVOCATIONS; i += WORKERS) {
        const e = entries[i];
        if (!e) continue;
        const r = await kubepkiAsync([
          "revoke",
          "--root",
          roots[w % 3] as string,
          "--store",
          cluster.url(w % 3),
          "--serial",
          e.serial,
          "--reason",
          "keyCompromise",
        ]);
        if (r.status !== 0) failures.push(`${e.serial}: ${r.stderr}`);
        const n = /CRL number (\d+)/.exec(r.stderr)?.[1];
        if (n) numbers.push(Number(n));
        done++;
      }
    };
    // Replica 0 is asked all along; its first member is the one killed.
    let unanswered = 0;
    let asked = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        asked++;
        if ((await denies(replicas[0] as Serve, entries[0]?.sha256 ?? "")) === undefined) unanswered++;
        if (!killed && done >= 60) {
          killed = true;
          await cluster.members[0]?.kill("SIGKILL");
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    polling = false;
    await poller;
    assert.ok(killed, "the member was killed midway");
    assert.deepEqual(failures, [], "every revoke succeeded (the killed member's clients failed over)");
    assert.equal(unanswered, 0, `replica 0 answered every one of ${asked} requests`);
    // CRL numbers: unique, and each revoke got a new one.
    assert.equal(new Set(numbers).size, numbers.length, "no CRL number used twice");
    assert.equal(numbers.length, REVOCATIONS);
    for (const [i, s] of replicas.entries()) {
      const waited = await waitFor(async () => {
        for (const e of entries) if (!(await denies(s, e.sha256))) return false;
        return true;
      }, 20_000);
      if (waited < 0) {
        let missing = 0;
        for (const e of entries) if (!(await denies(s, e.sha256))) missing++;
        assert.fail(`replica ${i} misses ${missing} of ${entries.length} revocations:\n${s.logs()}`);
      }
    }
    // Every replica wrote the latest CRL (the highest number) with all 200 serials.
    const top = Math.max(...numbers);
    for (const [i, root] of roots.entries()) {
      const file = join(root, PKI, "ca.crl");
      const waited = await waitFor(async () => crlNumber(file) === top, 10_000);
      assert.ok(waited >= 0, `replica ${i} wrote CRL number ${top} (has ${crlNumber(file)})`);
      const text = openssl(["crl", "-inform", "DER", "-in", file, "-noout", "-text"]).stdout.toLowerCase();
      for (const e of entries)
        assert.ok(text.includes(`serial number: ${e.serial}`), `replica ${i}: serial ${e.serial} listed`);
    }
    await cluster.members[0]?.restart();
  });

  /** While every member is down: replicas answer from their sets and go stale. */
  const outage = async (lateSha: string, lateSerial: string) => {
    // A revoke now does not commit, says so, and exits 3 (the retry after the restart succeeds).
    const failed = await kubepkiAsync([
      "revoke",
      "--root",
      roots[0] as string,
      "--store",
      cluster.url(0),
      "--etcd-timeout",
      "1s",
      "--serial",
      lateSerial,
      "--reason",
      "superseded",
    ]);
    assert.equal(failed.status, 3, failed.stderr);
    assert.match(failed.stderr, /nothing was revoked: [\s\S]*Retrying is safe/);
    const stale = await waitFor(async () => (await readyz(replicas[1] as Serve)) === 503, 15_000);
    assert.ok(stale >= 0, "/readyz fails once the set is older than --max-staleness");
    for (const s of replicas) assert.ok((await waitFor(async () => (await readyz(s)) === 503, 5_000)) >= 0);
    // Still answering from the set held.
    assert.equal(await denies(replicas[2] as Serve, lateSha), false);
    const metrics = await import("./webhook-client.js").then((m) =>
      m.call((replicas[1] as Serve).client, "", { method: "GET", path: "/metrics" }),
    );
    const age = Number(/^kubepki_revocation_set_age_seconds (\S+)$/m.exec(metrics.body)?.[1]);
    assert.ok(age >= 3, `the set-age metric rose (${age})`);
  };

  it("all members stopped: replicas keep answering, /readyz goes stale; restarted: they catch up without a restart", async () => {
    const [late] = clientEntries(roots[0] as string, 1, "late");
    if (!late) throw new Error("no entry");
    await recordEntries(roots[0] as string, cluster.url(0), [late]);
    await Promise.all(cluster.members.map((m) => m.kill("SIGKILL")));
    try {
      await outage(late.sha256, late.serial);
    } finally {
      await Promise.all(cluster.members.map((m) => m.restart()));
    }
    for (const s of replicas) {
      const back = await waitFor(async () => (await readyz(s)) === 200, 20_000);
      assert.ok(back >= 0, "ready again without a restart");
    }
    const r = await kubepkiAsync([
      "revoke",
      "--root",
      roots[1] as string,
      "--store",
      cluster.url(1),
      "--serial",
      late.serial,
      "--reason",
      "superseded",
    ]);
    assert.equal(r.status, 0, r.stderr);
    for (const s of replicas)
      assert.ok((await waitFor(async () => (await denies(s, late.sha256)) === true, 5_000)) >= 0);
  });

  it("a compaction while a replica is cut off forces a full reload, and no revocation is missed", async () => {
    const m3 = cluster.members[2];
    if (!m3) throw new Error("no member");
    const lone = await startServe(copyNode(roots[0] as string), ["--store", `etcd://${m3.client}`]);
    try {
      const entries = clientEntries(roots[0] as string, 5, "cut");
      await recordEntries(roots[0] as string, cluster.url(0), entries);
      await m3.kill("SIGKILL");
      for (const e of entries) {
        const r = await kubepkiAsync([
          "revoke",
          "--root",
          roots[0] as string,
          "--store",
          cluster.url(0),
          "--serial",
          e.serial,
          "--reason",
          "keyCompromise",
        ]);
        assert.equal(r.status, 0, r.stderr);
      }
      const [ca, cert, key] = pair(roots[0] as string);
      const m1 = cluster.members[0]?.client ?? "";
      const status = etcdctl(m1, ca, cert, key, ["endpoint", "status", "-w", "json"]);
      const rev = JSON.parse(status.stdout)[0].Status.header.revision;
      const compact = etcdctl(m1, ca, cert, key, ["compact", String(rev)]);
      assert.equal(compact.status, 0, compact.stderr);
      for (const e of entries) assert.equal(await denies(lone, e.sha256), false, "cut off: not yet");
      await m3.restart();
      const caught = await waitFor(async () => {
        for (const e of entries) if (!(await denies(lone, e.sha256))) return false;
        return true;
      }, 20_000);
      assert.ok(caught >= 0, `the cut-off replica caught up:\n${lone.logs()}`);
      assert.match(lone.logs(), /compacted|reloading/);
    } finally {
      await lone.stop();
    }
  });

  it("ledger migrate etcd -> SQLite -> etcd (another prefix) keeps every entry; a second run adds nothing", () => {
    const root = roots[0] as string;
    const file = join(root, "var/lib/kubepki/copy.db");
    const out1 = kubepki([
      "ledger",
      "migrate",
      "--root",
      root,
      "--from",
      cluster.url(0),
      "--to",
      `sqlite:${file}`,
      "-o",
      "json",
    ]);
    assert.equal(out1.status, 0, out1.stderr);
    const a = JSON.parse(out1.stdout);
    assert.ok(a.entries >= REVOCATIONS + 6 && a.revoked >= REVOCATIONS + 5, out1.stdout);
    assert.equal(a.verified, a.entries);
    const out2 = kubepki([
      "ledger",
      "migrate",
      "--root",
      root,
      "--from",
      `sqlite:${file}`,
      "--to",
      cluster.url(1),
      "--etcd-prefix",
      "/copy/",
      "-o",
      "json",
    ]);
    assert.equal(out2.status, 0, out2.stderr);
    const b = JSON.parse(out2.stdout);
    assert.deepEqual([b.entries, b.added, b.revoked], [a.entries, a.entries, a.revoked]);
    const again = kubepki([
      "ledger",
      "migrate",
      "--root",
      root,
      "--from",
      `sqlite:${file}`,
      "--to",
      cluster.url(1),
      "--etcd-prefix",
      "/copy/",
      "-o",
      "json",
    ]);
    assert.equal(JSON.parse(again.stdout).added, 0);
    const list = (args: string[]) =>
      new Set(
        (
          JSON.parse(kubepki(["ledger", "list", "--root", root, ...args, "-o", "json"]).stdout) as {
            sha256: string;
            status: string;
          }[]
        ).map((e) => `${e.sha256}:${e.status}`),
      );
    const original = list(["--store", cluster.url(0)]);
    assert.deepEqual(list(["--store", `sqlite:${file}`]), original);
    assert.deepEqual(list(["--store", cluster.url(2), "--etcd-prefix", "/copy/"]), original);
  });

  it("faults: unreachable, wrong CA, refused certificate, a bad value, a newer schema", () => {
    const root = roots[0] as string;
    const t0 = Date.now();
    const down = kubepki([
      "ledger",
      "list",
      "--root",
      root,
      "--store",
      "etcd://127.0.0.1:1",
      "--etcd-timeout",
      "2s",
    ]);
    assert.equal(down.status, 3);
    assert.ok(Date.now() - t0 < 10_000);
    assert.match(down.stderr, /127\.0\.0\.1:1: .*ECONNREFUSED/);
    assert.doesNotMatch(down.stderr, /\n\s+at /, "no stack trace");
    const m1 = cluster.members[0]?.client ?? "";
    const wrongCa = kubepki([
      "ledger",
      "list",
      "--root",
      root,
      "--store",
      `etcd://${m1}`,
      "--etcd-cacert",
      join(root, PKI, "ca.crt"),
      "--etcd-timeout",
      "2s",
    ]);
    assert.equal(wrongCa.status, 3);
    assert.match(wrongCa.stderr, new RegExp(`${m1.replace(/\./g, "\\.")}: .*(certificate|verify)`, "i"));
    const refused = kubepki([
      "ledger",
      "list",
      "--root",
      root,
      "--store",
      `etcd://${m1}`,
      "--etcd-timeout",
      "2s",
      "--etcd-cert",
      join(root, PKI, "apiserver-kubelet-client.crt"),
      "--etcd-key",
      join(root, PKI, "apiserver-kubelet-client.key"),
    ]);
    assert.equal(refused.status, 3, refused.stderr);
    assert.match(refused.stderr, new RegExp(m1.replace(/\./g, "\\.")));
    const [ca, cert, key] = pair(root);
    assert.equal(etcdctl(m1, ca, cert, key, ["put", "/kubepki/entries/garbage", "{not json"]).status, 0);
    const listed = kubepki(["ledger", "list", "--root", root, "--store", `etcd://${m1}`]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stderr, /skipping \/kubepki\/entries\/garbage: not valid JSON/);
    assert.equal(etcdctl(m1, ca, cert, key, ["put", "/newer/schema", '{"version":99,"id":"x"}']).status, 0);
    const newer = kubepki([
      "ledger",
      "list",
      "--root",
      root,
      "--store",
      `etcd://${m1}`,
      "--etcd-prefix",
      "/newer/",
    ]);
    assert.equal(newer.status, 3);
    assert.match(newer.stderr, /schema version 99, written by a newer kubepki/);
    const missing = kubepki([
      "revoke",
      "--root",
      root,
      "--store",
      `etcd://${m1}`,
      "--etcd-prefix",
      "/nothing/",
      "--user",
      "x",
      "--reason",
      "superseded",
    ]);
    assert.equal(missing.status, 3);
    assert.match(missing.stderr, /does not exist/);
    const bad = kubepki(["ledger", "list", "--root", root, "--store", "etcd://no-port"]);
    assert.equal(bad.status, 2);
    const audited = kubepki(["audit", "--root", root, "--store", `etcd://${m1}`, "-o", "json"]);
    assert.ok(audited.status === 0 || audited.status === 1, audited.stderr);
    assert.ok(JSON.parse(audited.stdout).findings.length >= 0);
    const crl = readFileSync(join(root, PKI, "ca.crl"));
    assert.ok(crl.length > 0);
  });
});

function crlNumber(file: string): number | undefined {
  const r = openssl(["crl", "-inform", "DER", "-in", file, "-noout", "-crlnumber"]);
  const hex = /crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec(r.stdout)?.[1];
  return hex ? Number.parseInt(hex, 16) : undefined;
}
