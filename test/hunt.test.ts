import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import AjvDraft04 from "ajv-draft-04";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { initArgs, kubepki, openssl, PKI, REPO, run, tempDir } from "./helpers.js";

const schema = JSON.parse(readFileSync(join(REPO, "test/data/sarif-schema-2.1.0.json"), "utf8"));
// ajv-draft-04 is CommonJS with module.exports = Ajv and exports.default = Ajv; NodeNext types the default import as the module.
const Ajv = (AjvDraft04 as unknown as { default: typeof AjvDraft04 }).default ?? AjvDraft04;
const ajv = new (Ajv as unknown as typeof import("ajv-draft-04").default)({ allErrors: true, strict: false });
const compiled = ajv.compile(schema);
const validateSarif = Object.assign((d: unknown): boolean => compiled(d), {
  get errors() {
    return compiled.errors;
  },
});

const ok = (args: string[]) => {
  const r = kubepki(args);
  assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

/** The credential id as kube-apiserver computes it: SHA-256 of the leaf's DER, lower-case hex (by openssl). */
function credentialIdOf(pemFile: string): string {
  const r = run("sh", ["-c", `openssl x509 -in '${pemFile}' -outform DER | sha256sum`]);
  assert.equal(r.status, 0, r.stderr);
  return `X509SHA256=${r.stdout.split(" ")[0]}`;
}

/** A client certificate signed with the cluster CA's key by openssl, outside kubepki. */
function mintWithOpenssl(
  root: string,
  dir: string,
  name: string,
  subj: string,
): { crt: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const crt = join(dir, `${name}.crt`);
  const gen = openssl(
    ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
      "-keyout",
      key,
      "-subj",
      subj,
      "-out",
      csr,
    ]),
  );
  assert.equal(gen.status, 0, gen.stderr);
  const ca = join(root, PKI, "ca");
  const sign = openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-days",
    "30",
    "-out",
    crt,
  ]);
  assert.equal(sign.status, 0, sign.stderr);
  return { crt, key };
}

/** The client certificate of a kubeconfig, written out as PEM. */
function kubeconfigCert(file: string, out: string): string {
  const kc = parseKubeconfig(readFileSync(file, "utf8"), file);
  assert.ok(kc.clientCert, file);
  writeFileSync(out, kc.clientCert.pem);
  return out;
}

interface Use {
  id: string;
  user: string;
  groups: string[];
  ip: string;
  at: number;
  verb?: string;
  code?: number;
  stage?: string;
}

/** One audit.k8s.io/v1 Event line as kube-apiserver's log backend writes it (RFC 3339 with microseconds). */
function event(u: Use, n: number): string {
  const ts = new Date(u.at).toISOString().replace("Z", "123Z");
  return JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    stage: u.stage ?? "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/secrets",
    verb: u.verb ?? "list",
    user: {
      username: u.user,
      groups: u.groups,
      extra: { "authentication.kubernetes.io/credential-id": [u.id] },
    },
    sourceIPs: [u.ip],
    userAgent: "kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9",
    objectRef: { resource: "secrets", namespace: "default", apiVersion: "v1" },
    responseStatus: { metadata: {}, code: u.code ?? 200 },
    requestReceivedTimestamp: ts,
    stageTimestamp: ts,
    annotations: { "authorization.k8s.io/decision": (u.code ?? 200) < 400 ? "allow" : "forbid" },
  });
}

/** A service-account request: a token, no X509 credential id. */
function tokenEvent(n: number, at: number): string {
  return JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID: `sa-${n}`,
    stage: "ResponseComplete",
    verb: "watch",
    user: {
      username: "system:serviceaccount:kube-system:coredns",
      groups: ["system:serviceaccounts", "system:authenticated"],
      extra: { "authentication.kubernetes.io/credential-id": [`JTI=5c1f0b9e-${n}`] },
    },
    sourceIPs: ["10.244.0.3"],
    responseStatus: { code: 200 },
    requestReceivedTimestamp: new Date(at).toISOString(),
  });
}

describe("kubepki hunt", () => {
  const dir = tempDir();
  const root = join(dir, "node");
  const offline = join(dir, "offline");
  const logs = join(dir, "logs");
  const ids: Record<string, string> = {};
  let revokedAt = 0;

  before(() => {
    ok(initArgs(root, offline));
    // kubepki issues jane's credential; mallory's is issued, then revoked.
    for (const user of ["jane", "mallory"]) {
      const conf = join(dir, `${user}.conf`);
      ok(["issue", "client", "--root", root, "--user", user, "--group", "dev", "--out", conf]);
      ids[user] = credentialIdOf(kubeconfigCert(conf, join(dir, `${user}.crt`)));
    }
    ok(["revoke", "--root", root, "--user", "mallory", "--reason", "keyCompromise"]);
    const entries = JSON.parse(ok(["ledger", "list", "--root", root, "--status", "revoked", "-o", "json"]));
    revokedAt = Date.parse(entries[0].revokedAt);
    // The kubelet's client certificate came through the CSR API (here: openssl), then `ledger import`.
    const kubelet = mintWithOpenssl(root, dir, "kubelet", "/O=system:nodes/CN=system:node:cp1");
    const pem = readFileSync(kubelet.crt, "utf8") + readFileSync(kubelet.key, "utf8");
    writeFileSync(join(root, "var/lib/kubelet/pki/kubelet-client-current.pem"), pem, { mode: 0o600 });
    ok(["ledger", "import", "--root", root]);
    ids.kubelet = credentialIdOf(kubelet.crt);
    // Minted with the CA key outside kubepki and never imported: what a stolen ca.key looks like.
    ids.eve = credentialIdOf(mintWithOpenssl(root, dir, "eve", "/O=dev/CN=eve").crt);
    // The break-glass super-admin.conf init put in the offline folder (system:masters).
    ids.admin = credentialIdOf(kubeconfigCert(join(offline, "super-admin.conf"), join(dir, "admin.crt")));
    writeLogs();
  });

  const H = 3600_000;
  function writeLogs(): void {
    run("mkdir", ["-p", logs]);
    const dev = ["dev", "system:authenticated"];
    let n = 0;
    const e = (u: Omit<Use, "groups"> & { groups?: string[] }) => event({ groups: dev, ...u }, n++);
    // Rotated two days ago, gzip.
    const older = [
      e({ id: ids.jane ?? "", user: "jane", ip: "10.0.0.5", at: revokedAt - 30 * H, verb: "get" }),
      e({ id: ids.mallory ?? "", user: "mallory", ip: "10.0.0.6", at: revokedAt - 2 * H }),
      tokenEvent(n++, revokedAt - 2 * H),
    ];
    writeFileSync(join(logs, "audit-2026-11-29T10-00-00.000.log.gz"), gzipSync(`${older.join("\n")}\n`));
    // Rotated yesterday, plain; its last line was cut off by the rotation.
    const rotated = [
      e({
        id: ids.mallory ?? "",
        user: "mallory",
        ip: "10.0.0.6",
        at: revokedAt - H,
        stage: "RequestReceived",
      }),
      e({ id: ids.mallory ?? "", user: "mallory", ip: "10.0.0.6", at: revokedAt - H }),
      e({
        id: ids.kubelet ?? "",
        user: "system:node:cp1",
        groups: ["system:nodes", "system:authenticated"],
        ip: "10.0.0.10",
        at: revokedAt - H,
        verb: "watch",
      }),
      "not json at all",
      "[1,2,3]",
      JSON.stringify({ kind: "Policy", apiVersion: "audit.k8s.io/v1" }),
      e({ id: ids.jane ?? "", user: "jane", ip: "10.0.0.5", at: revokedAt - H }).slice(0, 150),
    ];
    writeFileSync(join(logs, "audit-2026-11-30T10-00-00.000.log"), `${rotated.join("\n")}\n`);
    // The current log: mallory after the revocation (within the cache delay, then allowed, then denied).
    const current = [
      e({ id: ids.mallory ?? "", user: "mallory", ip: "10.0.0.6", at: revokedAt + 5_000 }),
      e({
        id: ids.mallory ?? "",
        user: "mallory",
        ip: "203.0.113.9",
        at: revokedAt + 2 * 60_000,
        verb: "get",
      }),
      e({ id: ids.mallory ?? "", user: "mallory", ip: "203.0.113.9", at: revokedAt + 3 * 60_000, code: 403 }),
      e({ id: ids.eve ?? "", user: "eve", ip: "198.51.100.7", at: revokedAt + H, verb: "create" }),
      e({ id: ids.eve ?? "", user: "eve", ip: "198.51.100.7", at: revokedAt + 2 * H, verb: "get" }),
      e({
        id: ids.admin ?? "",
        user: "kubernetes-super-admin",
        groups: ["system:masters", "system:authenticated"],
        ip: "10.0.0.1",
        at: revokedAt + H,
        verb: "delete",
      }),
      e({ id: ids.jane ?? "", user: "jane", ip: "10.0.0.5", at: revokedAt + H }),
      tokenEvent(n++, revokedAt + H),
      "",
      // A line over the 4 MiB limit: skipped and counted, never held whole.
      `{"kind":"Event","pad":"${"x".repeat(5 * 1024 * 1024)}"}`,
    ];
    writeFileSync(join(logs, "audit.log"), `${current.join("\n")}\n`);
  }

  const huntJson = (extra: string[] = []) => {
    const r = kubepki(["hunt", "--root", root, "--audit-log", logs, "-o", "json", ...extra]);
    return { r, report: r.stdout ? JSON.parse(r.stdout) : undefined };
  };

  it("credential ids are the SHA-256 of the DER, as kube-apiserver computes them", () => {
    const list = JSON.parse(ok(["ledger", "list", "--root", root, "--user", "jane", "-o", "json"]));
    assert.equal(`X509SHA256=${list[0].sha256}`, ids.jane);
    assert.match(ids.eve ?? "", /^X509SHA256=[0-9a-f]{64}$/);
  });

  it("reports each case with its severity and nothing else; gzip and rotated files read", () => {
    const { r, report } = huntJson(["--fail-on", "critical"]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(report.schema, "kubepki.io/hunt/v1");
    const found = report.findings.map((f: { ruleId: string; severity: string; evidence: { user: string } }) =>
      [f.ruleId, f.severity, f.evidence.user].join(" "),
    );
    assert.deepEqual(found.sort(), [
      "hunt.cert.revoked.used high mallory",
      "hunt.cert.system-masters.used high kubernetes-super-admin",
      "hunt.cert.unknown critical eve",
    ]);
    assert.deepEqual(report.summary, { info: 0, low: 0, medium: 0, high: 2, critical: 1, total: 3 });
    const byUser = Object.fromEntries(report.credentials.map((c: { user: string }) => [c.user, c]));
    assert.equal(byUser.jane.ledger, "active");
    assert.equal(
      byUser.jane.requests,
      2,
      "the gzip and the current file; the rotated one's line was cut off",
    );
    assert.equal(byUser["system:node:cp1"].ledger, "active");
    assert.equal(byUser["system:node:cp1"].profile, "imported");
    assert.equal(byUser.eve.ledger, "unknown");
    assert.equal(byUser.eve.credentialId, ids.eve);
    assert.deepEqual(byUser.eve.verbs, { create: 1, get: 1 });
    assert.equal(byUser.eve.firstSeen, new Date(revokedAt + H).toISOString());
    assert.equal(byUser.mallory.ledger, "revoked");
    assert.deepEqual(byUser.mallory.sourceIPs, ["10.0.0.6", "203.0.113.9"]);
    assert.equal(byUser.mallory.events, 6, "RequestReceived counts as an event, not a request");
    assert.equal(byUser.mallory.requests, 5);
  });

  it("says when a revoked certificate was used: before, within the cache delay, after", () => {
    const { report } = huntJson();
    const f = report.findings.find((x: { ruleId: string }) => x.ruleId === "hunt.cert.revoked.used");
    assert.equal(f.evidence.revokedAt, new Date(revokedAt).toISOString());
    assert.equal(f.evidence.usedBeforeRevocation, 2);
    assert.equal(f.evidence.usedDuringCacheDelay, 1);
    assert.equal(f.evidence.usedAfterCacheDelay, 2);
    assert.equal(f.evidence.allowedAfterRevocation, 2);
    assert.equal(f.evidence.deniedAfterRevocation, 1);
    assert.equal(f.evidence.credentialId, ids.mallory);
    assert.deepEqual(f.cis, ["3.1.1"]);
    assert.ok(f.attack.includes("T1078"));
    // A longer cache delay moves the 2-minute request into it.
    const wide = huntJson(["--cache-delay", "150s"]).report;
    const g = wide.findings.find((x: { ruleId: string }) => x.ruleId === "hunt.cert.revoked.used");
    assert.equal(g.evidence.usedDuringCacheDelay, 2);
    assert.equal(wide.cacheDelaySeconds, 150);
  });

  it("counts malformed, oversized and blank lines per file without failing", () => {
    const { report } = huntJson();
    const byName = Object.fromEntries(
      report.logs.map((l: { path: string }) => [l.path.slice(l.path.lastIndexOf("/") + 1), l]),
    );
    const gz = byName["audit-2026-11-29T10-00-00.000.log.gz"];
    assert.deepEqual(
      [gz.gzip, gz.lines, gz.certificateEvents, gz.otherEvents, gz.malformed],
      [true, 3, 2, 1, 0],
    );
    const rot = byName["audit-2026-11-30T10-00-00.000.log"];
    assert.deepEqual([rot.gzip, rot.lines, rot.certificateEvents, rot.malformed], [false, 7, 3, 4]);
    assert.deepEqual(
      rot.malformedSamples.map((s: { reason: string }) => s.reason),
      ["not JSON", "not a JSON object", "not an audit.k8s.io Event", "not JSON"],
    );
    const cur = byName["audit.log"];
    assert.deepEqual([cur.lines, cur.blank, cur.oversized, cur.malformed], [10, 1, 1, 0]);
    assert.ok(report.warnings.some((w: string) => /4 malformed line\(s\)/.test(w)));
  });

  it("SARIF validates against the 2.1.0 schema; results point at the log line", () => {
    const out = join(tempDir(), "hunt.sarif");
    const r = kubepki(["hunt", "--root", root, "--audit-log", logs, "-o", "sarif", "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    const sarif = JSON.parse(readFileSync(out, "utf8"));
    const valid = validateSarif(sarif);
    assert.ok(valid, JSON.stringify(validateSarif.errors?.slice(0, 3)));
    const run0 = sarif.runs[0];
    assert.equal(run0.results.length, 3);
    const unknown = run0.results.find((x: { ruleId: string }) => x.ruleId === "hunt.cert.unknown");
    assert.equal(unknown.level, "error");
    assert.equal(unknown.locations[0].physicalLocation.region.startLine, 4);
    assert.match(unknown.locations[0].physicalLocation.artifactLocation.uri, /^file:\/\/.*\/audit\.log$/);
    const rule = run0.tool.driver.rules[unknown.ruleIndex];
    assert.equal(rule.id, "hunt.cert.unknown");
    assert.ok(rule.properties.tags.includes("attack-T1649"));
  });

  it("text report names the findings and every certificate seen; exit 0 below --fail-on", () => {
    const r = kubepki([
      "hunt",
      "--root",
      root,
      "--audit-log",
      join(logs, "audit.log"),
      "--fail-on",
      "critical",
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /CRITICAL \(1\)\n {2}hunt\.cert\.unknown/);
    assert.match(r.stdout, /eve \[dev, system:authenticated\] {2}ledger: unknown/);
    assert.match(r.stdout, /summary: 1 critical, 2 high, 0 medium, 0 low, 0 info/);
    // Before its revocation mallory's use is only the scope of an incident (info): below --fail-on low.
    const older = join(logs, "audit-2026-11-29T10-00-00.000.log.gz");
    const quiet = kubepki(["hunt", "--root", root, "--audit-log", older, "--fail-on", "low"]);
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.match(quiet.stdout, /INFO \(1\)\n {2}hunt\.cert\.revoked\.before/);
    assert.match(quiet.stdout, /1 request\(s\) before that, none after/);
  });

  it("an unknown kubelet certificate is medium (the CSR API signs those), not critical", () => {
    const node = mintWithOpenssl(root, dir, "node2", "/O=system:nodes/CN=system:node:worker2");
    const file = join(tempDir(), "audit.log");
    const id = credentialIdOf(node.crt);
    const groups = ["system:nodes", "system:authenticated"];
    writeFileSync(
      file,
      `${event({ id, user: "system:node:worker2", groups, ip: "10.0.0.21", at: Date.now() }, 1)}\n`,
    );
    const r = kubepki(["hunt", "--root", root, "--audit-log", file, "-o", "json"]);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(
      report.findings.map((f: { ruleId: string; severity: string }) => `${f.ruleId} ${f.severity}`),
      ["hunt.cert.unknown-node medium"],
    );
  });

  it("a gzip file cut short is read up to the damage, with a warning", () => {
    const lines = Array.from({ length: 5000 }, (_, i) => tokenEvent(i, revokedAt + i));
    const gz = gzipSync(`${lines.join("\n")}\n`);
    const file = join(tempDir(), "audit-2026-11-28T10-00-00.000.log.gz");
    writeFileSync(file, gz.subarray(0, Math.floor(gz.length / 2)));
    const r = kubepki(["hunt", "--root", root, "--audit-log", file, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const log = JSON.parse(r.stdout).logs[0];
    assert.ok(log.otherEvents > 100 && log.otherEvents < 5000, String(log.otherEvents));
    assert.equal(log.truncated, "unexpected end of file");
    assert.match(r.stderr, /the gzip stream is damaged \(unexpected end of file\); read up to the damage/);
  });

  it("bad input: missing log (2), no ledger (3), no --audit-log (2); clear messages", () => {
    const missing = kubepki(["hunt", "--root", root, "--audit-log", join(dir, "nope.log")]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /nope\.log: no such file/);
    const noLedger = kubepki(["hunt", "--root", tempDir(), "--audit-log", logs]);
    assert.equal(noLedger.status, 3, noLedger.stderr);
    assert.match(noLedger.stderr, /ledger/);
    const fifo = join(tempDir(), "audit.pipe");
    assert.equal(run("mkfifo", [fifo]).status, 0);
    const pipe = kubepki(["hunt", "--root", root, "--audit-log", fifo]);
    assert.equal(pipe.status, 2, pipe.stderr);
    assert.match(pipe.stderr, /audit\.pipe is not a regular file/);
    const noFlag = kubepki(["hunt", "--root", root]);
    assert.equal(noFlag.status, 2);
    assert.doesNotMatch(missing.stderr + noLedger.stderr + noFlag.stderr, /at .*\.js:\d+/);
  });
});

describe("hunt's engine", () => {
  it("lines split across chunks and multi-byte characters come out whole; a long line is bounded", async () => {
    const { readLines } = await import("../src/hunt/lines.js");
    const lines = Array.from({ length: 40_000 }, (_, i) => `{"n":${i},"user":"jöhn-${"é".repeat(i % 97)}"}`);
    const file = join(tempDir(), "audit.log");
    writeFileSync(file, `${lines.join("\n")}\n${"x".repeat(500)}\nlast-without-newline`);
    const seen: string[] = [];
    const stats = await readLines(file, (l) => seen.push(l), 400);
    assert.equal(stats.lines, 40_002);
    assert.equal(stats.oversized, 1);
    assert.deepEqual(seen.slice(0, 40_000), lines);
    assert.equal(seen.at(-1), "last-without-newline");
  });

  it("per-certificate lists stay bounded whatever the log holds", async () => {
    const { Tally, LIMITS } = await import("../src/hunt/tally.js");
    const t = new Tally(new Map(), 11_000);
    for (let i = 0; i < 1000; i++)
      t.add(
        {
          sha256: "ab".repeat(32),
          user: "u",
          groups: [`g${i}`],
          sourceIPs: [`10.0.${i >> 8}.${i & 255}`],
          verb: `v${i}`,
          stage: "ResponseComplete",
          time: i,
        },
        "f",
        i + 1,
      );
    const c = t.credentials.get("ab".repeat(32));
    assert.deepEqual(
      [c?.sourceIPs.size, c?.groups.size, c?.verbs.size],
      [LIMITS.perList, LIMITS.perList, LIMITS.perList],
    );
    assert.deepEqual([c?.requests, c?.firstSeen, c?.lastSeen], [1000, 0, 999]);
  });
});
