import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { initCluster } from "../src/app/init.js";
import { createJoinBundle, joinControlPlane } from "../src/app/join.js";
import { ledgerList } from "../src/app/ledger.js";
import type { KubepkiError } from "../src/errors.js";
import { parseCertificateKey } from "../src/pki/bundle-crypto.js";
import { decodeBundle } from "../src/pki/bundle-file.js";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { keysMatch, parsePrivateKeyPem } from "../src/x509/keys.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { kubepki, listFiles, openssl, PKI, run, snapshot, tempDir } from "./helpers.js";

const CP = { controlPlaneEndpoint: "cp.example.com:6443", clusterName: "prod" };
const SHARED = [
  "ca.crt",
  "ca.key",
  "front-proxy-ca.crt",
  "front-proxy-ca.key",
  "etcd/ca.crt",
  "etcd/ca.key",
  "sa.key",
  "sa.pub",
];

/** node 1 built by init; the bundle written from it; node 2 joined with it (all through the library). */
async function cluster() {
  const dir = tempDir();
  const n1 = { root: join(dir, "n1"), offlineDir: join(dir, "o1") };
  await initCluster({ ...n1, ...CP, nodeName: "cp1", advertiseAddress: "10.0.0.11" });
  const bundle = join(dir, "join.bundle");
  const made = await createJoinBundle({ root: n1.root, out: bundle });
  const n2 = { root: join(dir, "n2"), offlineDir: join(dir, "o2") };
  const joined = await joinControlPlane({
    ...n2,
    ...CP,
    nodeName: "cp2",
    advertiseAddress: "10.0.0.12",
    join: bundle,
    certificateKey: made.certificateKey,
  });
  return { dir, n1, n2, bundle, key: made.certificateKey, made, joined };
}

const read = (root: string, rel: string) => readFileSync(join(root, PKI, rel));

describe("join-bundle and init --join", () => {
  let c: Awaited<ReturnType<typeof cluster>>;
  before(async () => {
    c = await cluster();
  });

  it("the bundle is 0600 and holds the three CAs with their keys and the SA pair, as on node 1", () => {
    assert.equal(statSync(c.bundle).mode & 0o777, 0o600);
    assert.match(c.key, /^[0-9a-f]{64}$/);
    const key = parseCertificateKey(c.key) as Buffer;
    const { material } = decodeBundle(readFileSync(c.bundle, "utf8"), key, c.bundle);
    assert.deepEqual(
      material.cas.map((x) => x.id),
      ["ca", "front-proxy-ca", "etcd-ca"],
    );
    for (const ca of material.cas) {
      const base = ca.id === "etcd-ca" ? "etcd/ca" : ca.id;
      assert.equal(ca.certPem, read(c.n1.root, `${base}.crt`).toString("utf8"));
      assert.equal(ca.keyPem, read(c.n1.root, `${base}.key`).toString("utf8"));
      const cert = parseCertificatePem(ca.certPem, base);
      assert.ok(keysMatch(parsePrivateKeyPem(ca.keyPem, base), cert.publicKey), `${base} key matches`);
      assert.equal(ca.keyOffline, false);
    }
    assert.equal(material.sa.keyPem, read(c.n1.root, "sa.key").toString("utf8"));
    // Nothing of it readable in the file: no PEM, no key material in clear.
    assert.doesNotMatch(readFileSync(c.bundle, "utf8"), /BEGIN|PRIVATE/);
  });

  it("the envelope is kubeadm's EncryptBytes layout: an independent AES-GCM opens nonce||ciphertext||tag", () => {
    const envelope = JSON.parse(readFileSync(c.bundle, "utf8"));
    assert.equal(envelope.encryption, "AES-256-GCM");
    const py = run("python3", [
      "-c",
      "import sys,base64,json\nfrom cryptography.hazmat.primitives.ciphers.aead import AESGCM\nd=base64.b64decode(sys.argv[2])\nprint(json.loads(AESGCM(bytes.fromhex(sys.argv[1])).decrypt(d[:12],d[12:],None))['files']['ca.crt'])",
      c.key,
      envelope.data,
    ]);
    if (py.status !== 0 && /No module named/.test(py.stderr)) return; // python3-cryptography absent
    assert.equal(py.status, 0, py.stderr);
    assert.equal(py.stdout.trim(), read(c.n1.root, "ca.crt").toString("utf8").trim());
  });

  it("node 2 has node 1's CAs and SA pair, byte for byte, with kubeadm's modes", () => {
    for (const f of SHARED) assert.deepEqual(read(c.n2.root, f), read(c.n1.root, f), f);
    for (const f of SHARED)
      assert.equal(statSync(join(c.n2.root, PKI, f)).mode & 0o777, f.endsWith(".crt") ? 0o644 : 0o600, f);
    assert.equal(c.joined.joined.written.length, 8);
  });

  it("openssl verifies node 2's own leaves and kubeconfig client certificates against the shared CAs", () => {
    const ca = join(c.n1.root, PKI, "ca.crt");
    const checks: [string, string][] = [
      ["apiserver.crt", "ca.crt"],
      ["apiserver-kubelet-client.crt", "ca.crt"],
      ["front-proxy-client.crt", "front-proxy-ca.crt"],
      ["etcd/server.crt", "etcd/ca.crt"],
      ["etcd/peer.crt", "etcd/ca.crt"],
      ["etcd/healthcheck-client.crt", "etcd/ca.crt"],
      ["apiserver-etcd-client.crt", "etcd/ca.crt"],
    ];
    for (const [leaf, issuer] of checks) {
      const r = openssl(["verify", "-CAfile", join(c.n1.root, PKI, issuer), join(c.n2.root, PKI, leaf)]);
      assert.equal(r.status, 0, `${leaf}: ${r.stdout}${r.stderr}`);
      assert.notDeepEqual(read(c.n2.root, leaf), read(c.n1.root, leaf), `${leaf} is node 2's own`);
    }
    const kubelet = openssl(["verify", "-CAfile", ca, join(c.n2.root, "var/lib/kubelet/pki/kubelet.crt")]);
    assert.equal(kubelet.status, 0, kubelet.stderr);
    const dir = tempDir();
    for (const conf of ["admin.conf", "controller-manager.conf", "scheduler.conf"]) {
      const path = join(c.n2.root, "etc/kubernetes", conf);
      const kc = parseKubeconfig(readFileSync(path, "utf8"), path);
      assert.equal(
        kc.server,
        conf === "admin.conf" ? "https://cp.example.com:6443" : "https://10.0.0.12:6443",
      );
      const pem = join(dir, `${conf}.pem`);
      writeFileSync(pem, kc.clientCert?.pem ?? "");
      const r = openssl(["verify", "-CAfile", ca, pem]);
      assert.equal(r.status, 0, `${conf}: ${r.stderr}`);
    }
    const apiserver = parseCertificatePem(read(c.n2.root, "apiserver.crt").toString(), "apiserver.crt");
    assert.ok(apiserver.dnsNames.includes("cp2") && apiserver.dnsNames.includes("cp.example.com"));
    assert.ok(apiserver.ipAddresses.includes("10.0.0.12"));
  });

  it("node 2 gets no kubelet.conf: kubeadm join makes it, and its preflight refuses one already there", () => {
    assert.ok(!listFiles(c.n2.root).includes("etc/kubernetes/kubelet.conf"));
    const kc = c.joined.report.artifacts.find((a) => a.id === "kubelet.conf");
    assert.equal(kc?.action, "skipped");
    assert.match(kc?.note ?? "", /kubeadm join makes it/);
    // node 1, made by init, has one.
    assert.ok(listFiles(c.n1.root).includes("etc/kubernetes/kubelet.conf"));
  });

  it("node 2 mints no break-glass credential and records its own certificates in its ledger", async () => {
    const files = [...listFiles(c.n2.root), ...listFiles(c.n2.offlineDir)];
    assert.ok(!files.some((f) => f.endsWith("super-admin.conf")), files.join(","));
    const sa = c.joined.report.artifacts.find((a) => a.id === "super-admin.conf");
    assert.equal(sa?.action, "skipped");
    const rows = await ledgerList({ root: c.n2.root });
    assert.ok(!rows.some((r) => r.profile === "kubeconfig:super-admin.conf" || r.breakGlass));
    const own = parseCertificatePem(read(c.n2.root, "apiserver.crt").toString(), "apiserver.crt");
    assert.ok(
      rows.some((r) => r.sha256 === own.sha256 && r.status === "active"),
      "apiserver recorded",
    );
    assert.ok(rows.some((r) => r.profile === "kubeconfig:admin.conf"));
    // node 1 still holds the cluster's one break-glass credential.
    assert.ok((await ledgerList({ root: c.n1.root })).some((r) => r.breakGlass));
  });

  it("joining again keeps everything (the shared files are already there)", async () => {
    const before = snapshot(c.n2.root);
    const again = await joinControlPlane({
      ...c.n2,
      ...CP,
      nodeName: "cp2",
      advertiseAddress: "10.0.0.12",
      join: c.bundle,
      certificateKey: c.key,
    });
    assert.equal(again.joined.written.length, 0);
    assert.equal(again.joined.present.length, 8);
    assert.ok(
      again.report.artifacts.every(
        (a) => a.action === "kept" || a.action === "skipped" || a.kind === "config",
      ),
    );
    const after = snapshot(c.n2.root);
    for (const f of SHARED) assert.equal(after[join(PKI, f)], before[join(PKI, f)]);
  });
});

describe("join refusals: nothing written", () => {
  let c: Awaited<ReturnType<typeof cluster>>;
  before(async () => {
    c = await cluster();
  });

  /** init --join on a fresh node 3 with a pre-existing file, through the CLI; the tree must not change. */
  function refusedJoin(bundle: string, key: string, setup?: (root: string) => void) {
    const dir = tempDir();
    const root = join(dir, "n3");
    const offline = join(dir, "o3");
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "etc/hostname"), "cp3\n");
    setup?.(root);
    const before = snapshot(dir);
    const args = ["init", "--root", root, "--offline-dir", offline, "--node-name", "cp3"];
    const r = kubepki([
      ...args,
      "--advertise-address",
      "10.0.0.13",
      "--join",
      bundle,
      "--certificate-key",
      key,
    ]);
    assert.deepEqual(snapshot(dir), before, "the tree is unchanged");
    assert.deepEqual(listFiles(offline), []);
    return r;
  }

  it("a wrong key: exit 2, a clear message", () => {
    const wrong = `${c.key.slice(0, 63)}${c.key.endsWith("0") ? "1" : "0"}`;
    const r = refusedJoin(c.bundle, wrong);
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      /cannot be opened with this --certificate-key: the key is wrong, or the bundle was changed/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it("a tampered bundle (one bit of the ciphertext flipped): exit 2", () => {
    const envelope = JSON.parse(readFileSync(c.bundle, "utf8"));
    const data = Buffer.from(envelope.data, "base64");
    data[40] = (data[40] ?? 0) ^ 1;
    const tampered = join(tempDir(), "tampered.bundle");
    writeFileSync(tampered, JSON.stringify({ ...envelope, data: data.toString("base64") }));
    const r = refusedJoin(tampered, c.key);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /the key is wrong, or the bundle was changed/);
  });

  it("a truncated bundle, a file that is no bundle, a key that is not 64 hex characters: exit 2", () => {
    const dir = tempDir();
    const truncated = join(dir, "truncated.bundle");
    writeFileSync(truncated, readFileSync(c.bundle, "utf8").slice(0, 200));
    assert.match(refusedJoin(truncated, c.key).stderr, /not a kubepki join bundle/);
    const other = join(dir, "other.json");
    writeFileSync(other, '{"kind":"Secret"}');
    const r = refusedJoin(other, c.key);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not a kubepki join bundle/);
    const short = refusedJoin(c.bundle, "abc123");
    assert.equal(short.status, 2);
    assert.match(short.stderr, /--certificate-key must be 64 hexadecimal characters/);
    const alone = kubepki(["init", "--root", join(dir, "n"), "--join", c.bundle]);
    assert.equal(alone.status, 2);
    assert.match(alone.stderr, /--join needs --certificate-key \(or KUBEPKI_CERTIFICATE_KEY/);
  });

  it("the key from KUBEPKI_CERTIFICATE_KEY (kept out of ps): a wrong one is refused, the right one joins", () => {
    const dir = tempDir();
    const node = join(dir, "cp4");
    const args = ["init", "--root", node, "--offline-dir", join(dir, "off"), "--node-name", "cp4"];
    args.push("--advertise-address", "10.0.0.14", "--join", c.bundle);
    const wrong = kubepki(args, { KUBEPKI_CERTIFICATE_KEY: "0".repeat(64) });
    assert.equal(wrong.status, 2, wrong.stderr);
    assert.match(wrong.stderr, /the key is wrong, or the bundle was changed/);
    const ok = kubepki(args, { KUBEPKI_CERTIFICATE_KEY: c.key });
    assert.equal(ok.status, 0, ok.stderr);
    assert.ok(existsSync(join(node, "etc/kubernetes/pki/ca.key")));
  });

  it("init refuses the node after the shared files were placed: they are removed again", () => {
    const r = refusedJoin(c.bundle, c.key, (root) => {
      mkdirSync(join(root, PKI), { recursive: true });
      writeFileSync(join(root, PKI, "apiserver.crt"), "not a certificate\n");
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /inconsistent[\s\S]*apiserver/);
  });

  it("--new-break-glass with --join: refused (exit 2) before anything is written", async () => {
    const root = join(tempDir(), "n");
    await assert.rejects(
      joinControlPlane({
        root,
        nodeName: "cp3",
        advertiseAddress: "10.0.0.13",
        join: c.bundle,
        certificateKey: c.key,
        newBreakGlass: true,
      }),
      (e: KubepkiError) => e.exitCode === 2 && /mints no break-glass/.test(e.message),
    );
    assert.deepEqual(listFiles(root), []);
  });

  it("a node with a CA of its own: exit 2, the conflicting files named", async () => {
    const r = refusedJoin(c.bundle, c.key, (root) => {
      mkdirSync(join(root, PKI), { recursive: true });
      writeFileSync(join(root, PKI, "ca.crt"), read(c.n1.root, "front-proxy-ca.crt"));
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /not the cluster's[\s\S]*pki\/ca\.crt/);
  });
});

describe("join-bundle CLI", () => {
  let c: Awaited<ReturnType<typeof cluster>>;
  before(async () => {
    c = await cluster();
  });

  it("text: the key once, on stderr only; -o json: the key in the JSON only; an existing --out needs --force", () => {
    const out = join(tempDir(), "b1");
    const r = kubepki(["join-bundle", "--root", c.n1.root, "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    const keys = r.stderr.match(/[0-9a-f]{64}/g) ?? [];
    assert.equal(keys.length, 1);
    assert.ok(!r.stdout.includes(keys[0] ?? "-"), "the key is not on stdout");
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const again = kubepki(["join-bundle", "--root", c.n1.root, "--out", out]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /exists; --force replaces it/);
    const j = kubepki(["join-bundle", "--root", c.n1.root, "--out", out, "--force", "-o", "json"]);
    assert.equal(j.status, 0, j.stderr);
    const parsed = JSON.parse(j.stdout);
    assert.match(parsed.certificateKey, /^[0-9a-f]{64}$/);
    assert.ok(!j.stderr.includes(parsed.certificateKey));
    assert.equal(parsed.cas.length, 3);
    // The new bundle opens with the new key only.
    const key = parseCertificateKey(parsed.certificateKey) as Buffer;
    assert.equal(decodeBundle(readFileSync(out, "utf8"), key, out).material.cas.length, 3);
    assert.throws(() =>
      decodeBundle(readFileSync(out, "utf8"), parseCertificateKey(keys[0] ?? "") as Buffer, out),
    );
  });

  it("help: join-bundle's and init's --join, with examples", () => {
    const help = kubepki(["join-bundle", "--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Examples:[\s\S]*kubepki join-bundle --root \/ --out/);
    assert.match(help.stdout, /--offline-dir/);
    const init = kubepki(["init", "--help"]).stdout.replace(/\s+/g, " ");
    assert.match(init, /--join <bundle>.*--certificate-key <hex>/);
    assert.match(init, /--join join\.bundle --certificate-key/);
  });

  it("a root without a PKI: exit 2", () => {
    const dir = tempDir();
    const r = kubepki(["join-bundle", "--root", join(dir, "empty"), "--out", join(dir, "b")]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not a control plane/);
  });

  it("--external-ca: the CA keys come from --offline-dir and stay offline on the joined node", async () => {
    const dir = tempDir();
    const n1 = { root: join(dir, "n1"), offlineDir: join(dir, "o1") };
    await initCluster({ ...n1, nodeName: "cp1", advertiseAddress: "10.0.0.11", externalCa: true });
    const out = join(dir, "b");
    const noOffline = kubepki([
      "join-bundle",
      "--root",
      n1.root,
      "--offline-dir",
      join(dir, "nowhere"),
      "--out",
      out,
    ]);
    assert.equal(noOffline.status, 2);
    assert.match(noOffline.stderr, /key is neither at/);
    const made = await createJoinBundle({ root: n1.root, offlineDir: n1.offlineDir, out });
    assert.ok(made.cas.every((x) => x.keyOffline));
    const n2 = { root: join(dir, "n2"), offlineDir: join(dir, "o2") };
    const r = kubepki([
      "init",
      "--root",
      n2.root,
      "--offline-dir",
      n2.offlineDir,
      "--node-name",
      "cp2",
      "--advertise-address",
      "10.0.0.12",
      "--join",
      out,
      "--certificate-key",
      made.certificateKey,
      "-o",
      "json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(
      report.joined.cas.map((x: { ca: string; keyOffline: boolean }) => [x.ca, x.keyOffline]),
      [
        ["ca", true],
        ["front-proxy-ca", true],
        ["etcd-ca", true],
      ],
    );
    assert.ok(report.artifacts.some((a: { id: string }) => a.id === "apiserver"));
    assert.ok(
      !listFiles(n2.root).some((f) => /(^|\/)(ca|front-proxy-ca)\.key$/.test(f)),
      "no CA key on node 2",
    );
    assert.deepEqual(
      readFileSync(join(n2.offlineDir, "pki/ca.key")),
      readFileSync(join(n1.offlineDir, "pki/ca.key")),
    );
    const v = openssl([
      "verify",
      "-CAfile",
      join(n1.root, PKI, "ca.crt"),
      join(n2.root, PKI, "apiserver.crt"),
    ]);
    assert.equal(v.status, 0, v.stderr);
  });
});
