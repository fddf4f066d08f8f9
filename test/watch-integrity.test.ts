import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initArgs, initTree, kubepki, PKI, tempDir } from "./helpers.js";
import { INTEGRITY_CHANGES } from "./integrity-fixtures.js";
import { type RunningCli, startWatchCli, within } from "./watch-helpers.js";

function integrityFindings(
  root: string,
): { ruleId: string; path?: string; evidence: Record<string, unknown> }[] {
  const r = kubepki(["audit", "--root", root, "-o", "json"]);
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  const report = JSON.parse(r.stdout) as {
    findings: { ruleId: string; path?: string; evidence: Record<string, unknown> }[];
  };
  return report.findings.filter((f) => f.ruleId.startsWith("integrity."));
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("kubepki watch: key-file integrity", () => {
  let root: string;
  let offline: string;
  let w: RunningCli;
  before(async () => {
    ({ root, offline } = await initTree());
    w = await startWatchCli(root, ["--interval", "1s"]);
  });
  after(async () => {
    await w?.stop();
  });

  it("kubepki's own commands cause no event and no finding", async () => {
    // init makes a new service-account key pair when it is missing: a key no ledger entry vouches for.
    const saBefore = readFileSync(join(root, PKI, "sa.key"));
    rmSync(join(root, PKI, "sa.key"));
    rmSync(join(root, PKI, "sa.pub"));
    for (const args of [
      initArgs(root, offline),
      ["certs", "renew", "all", "--root", root],
      ["crl", "--root", root, "--ca", "etcd-ca"],
      ["node", "add", "worker1=10.0.0.21", "--root", root, "--offline-dir", offline],
      ["issue", "client", "--root", root, "--user", "jane", "--out", join(offline, "jane.kubeconfig")],
      ["revoke", "--root", root, "--user", "jane", "--reason", "keyCompromise"],
    ]) {
      const r = kubepki(args);
      assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    assert.notDeepEqual(readFileSync(join(root, PKI, "sa.key")), saBefore);
    await pause(3000);
    assert.deepEqual(w.eventLines(), []);
    assert.deepEqual(integrityFindings(root), []);
  });

  it("each kind of change gives exactly one event and one audit finding", async () => {
    const scratch = tempDir();
    for (const c of INTEGRITY_CHANGES) {
      await c.make(root, scratch);
      // A change is reported once the next scan, 2 s later, still sees it.
      await within(10_000, async () =>
        w.eventLines().find((e) => e.change === c.change && e.path === c.path),
      );
    }
    await pause(3000); // more interval scans: nothing is reported twice
    const events = w.eventLines();
    assert.deepEqual(
      events.map((e) => `${e.change} ${e.path}`).sort(),
      INTEGRITY_CHANGES.map((c) => `${c.change} ${c.path}`).sort(),
    );
    for (const e of events) {
      assert.match(String(e.time), /^\d{4}-\d\d-\d\dT/);
      assert.doesNotMatch(JSON.stringify(e), /PRIVATE KEY|BEGIN/);
    }
    const replaced = events.find((e) => e.change === "key-replaced") as {
      before: { keySpki: string; mode: string };
      after: { keySpki: string };
    };
    assert.match(replaced.before.keySpki, /^[0-9a-f]{64}$/);
    assert.notEqual(replaced.before.keySpki, replaced.after.keySpki);
    assert.equal(replaced.before.mode, "0600");
    const widened = events.find((e) => e.change === "mode-widened") as {
      before: { mode: string };
      after: { mode: string };
    };
    assert.deepEqual([widened.before.mode, widened.after.mode], ["0600", "0644"]);
    const findings = integrityFindings(root);
    assert.deepEqual(
      findings.map((f) => `${f.ruleId} ${f.path}`).sort(),
      INTEGRITY_CHANGES.map((c) => `integrity.${c.change} ${c.path}`).sort(),
    );
  });

  it("counts them in the metrics", async () => {
    const m = await w.metrics();
    const v = m.get("kubepki_integrity_violations_total")?.samples ?? [];
    const count = (kind: string) => INTEGRITY_CHANGES.filter((c) => c.change === kind).length;
    for (const c of INTEGRITY_CHANGES)
      assert.equal(v.find((s) => s.labels.change === c.change)?.value, count(c.change), c.change);
    assert.equal(
      m.get("kubepki_unknown_certificates_total")?.samples[0]?.value,
      count("certificate-unknown") + count("ca-certificate-changed"),
    );
  });

  it("--accept records an intended change: its finding goes", () => {
    const [first, second] = INTEGRITY_CHANGES;
    assert.ok(first && second);
    const r = kubepki(["watch", "--root", root, "--accept", first.path, "--accept", join(root, second.path)]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /accepted \/etc\/kubernetes\/pki\/front-proxy-client\.key into the baseline/);
    const left = integrityFindings(root).map((f) => f.ruleId);
    assert.equal(left.length, INTEGRITY_CHANGES.length - 2);
    assert.ok(!left.includes(`integrity.${first.change}`) && !left.includes(`integrity.${second.change}`));
    const bad = kubepki(["watch", "--root", root, "--accept", "/etc/kubernetes/pki/nothing.key"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /neither a key or certificate file/);
  });
});

describe("kubepki watch: what rotate-ca abort puts back", () => {
  it("the restored kubeconfigs cause no event and no finding", async () => {
    const { root, offline } = await initTree();
    const watchOnce = () => kubepki(["watch", "--root", root, "--once", "--crl-refresh", "0"]);
    assert.equal(watchOnce().status, 0); // records the baseline
    for (const phase of ["trust", "sign"]) {
      const r = kubepki([
        "rotate-ca",
        "--ca",
        "ca",
        "--phase",
        phase,
        "--root",
        root,
        "--offline-dir",
        offline,
      ]);
      assert.equal(r.status, 0, r.stderr);
    }
    // A watch scan during the rotation takes sign's certificates (the ledger's) into the baseline.
    assert.equal(watchOnce().status, 0);
    const r = kubepki(["rotate-ca", "abort", "--root", root, "--offline-dir", offline]);
    assert.equal(r.status, 0, r.stderr);
    // The restored certificates are superseded in the ledger: only abort's approval vouches for them.
    const w = watchOnce();
    assert.equal(w.status, 0, w.stderr);
    assert.deepEqual(integrityFindings(root), []);
  });
});

describe("kubepki watch: an events file that cannot be written", () => {
  it("keeps the event and writes it once the file can be written again", async () => {
    const { root } = await initTree();
    const w = await startWatchCli(root, ["--interval", "1s", "--crl-refresh", "0"]);
    try {
      await within(10_000, async () => (w.stderr().includes("watching") ? true : undefined));
      await pause(1500); // the baseline is recorded
      rmSync(w.events, { force: true });
      mkdirSync(w.events); // appending to a folder fails (EISDIR), even for root
      chmodSync(join(root, PKI, "apiserver.key"), 0o644);
      await within(10_000, async () => (w.stderr().includes("cannot write the event") ? true : undefined));
      rmdirSync(w.events);
      const { value } = await within(10_000, async () =>
        w.eventLines().length ? w.eventLines() : undefined,
      );
      await pause(2500); // later scans: still exactly one
      assert.deepEqual(
        w.eventLines().map((e) => `${e.change} ${e.path}`),
        ["mode-widened /etc/kubernetes/pki/apiserver.key"],
      );
      assert.equal(value.length, 1);
    } finally {
      await w.stop();
    }
  });
});

describe("kubepki watch --events: a file that cannot be written", () => {
  it("is an I/O error (exit 3) before any scan, not an event lost", () => {
    const dir = tempDir();
    const r = kubepki(["watch", "--root", dir, "--once", "--events", join(dir, "missing", "events.jsonl")]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /--events .*events\.jsonl: cannot write: ENOENT/);
    assert.equal(r.stdout, "");
  });
});
