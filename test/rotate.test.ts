import assert from "node:assert/strict";
import { createPublicKey, sign, verify } from "node:crypto";
import {
  cpSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { keysMatch, parsePrivateKeyPem } from "../src/x509/keys.js";
import { parseCertificatesPem } from "../src/x509/parse.js";
import { decodePem } from "../src/x509/pem.js";
import { kubeletConfig, signWith, writeKubelet } from "./fixtures.js";
import { initArgs, kubepki, openssl, PKI, snapshot, tempDir } from "./helpers.js";
import { assertSigningFiles, phase, rotateCa, rotationNode, rotationStatus } from "./rotate-helpers.js";

const CAS = {
  ca: { cert: "ca.crt", bundle: "ca-trust.crt", leaves: ["apiserver.crt", "apiserver-kubelet-client.crt"] },
  "etcd-ca": {
    cert: "etcd/ca.crt",
    bundle: "etcd/ca-trust.crt",
    leaves: ["etcd/server.crt", "etcd/peer.crt", "apiserver-etcd-client.crt"],
  },
  "front-proxy-ca": {
    cert: "front-proxy-ca.crt",
    bundle: "front-proxy-ca-trust.crt",
    leaves: ["front-proxy-client.crt"],
  },
} as const;

const pki = (root: string, f: string) => join(root, PKI, f);
const read = (p: string) => readFileSync(p, "utf8");

/** openssl verify of a leaf against a CA file: true when it verifies. */
function opensslOk(caFile: string, leaf: string): boolean {
  return openssl(["verify", "-CAfile", caFile, leaf]).status === 0;
}

function writeTemp(text: string): string {
  const f = join(tempDir(), "ca.pem");
  writeFileSync(f, text);
  return f;
}

describe("rotate-ca: the three phases", () => {
  for (const [ca, f] of Object.entries(CAS))
    it(`${ca}: trust, sign, drop with openssl verify agreeing at every step`, async () => {
      const t = await rotationNode();
      const oldCa = writeTemp(read(pki(t.root, f.cert)));
      const oldLeaf = writeTemp(read(pki(t.root, f.leaves[0])));
      for (const leaf of f.leaves) assert.ok(opensslOk(oldCa, pki(t.root, leaf)), leaf);

      phase(t, ca, "trust");
      assertSigningFiles(t.root);
      const bundle = pki(t.root, f.bundle);
      assert.equal(parseCertificatesPem(read(bundle), "b").length, 2);
      assert.equal(read(pki(t.root, f.cert)), read(oldCa), "trust does not touch the signing file");
      const newCa = writeTemp(parseCertificatesPem(read(bundle), "b")[1]?.pem ?? "");
      for (const leaf of f.leaves) {
        assert.ok(opensslOk(bundle, pki(t.root, leaf)), `${leaf} against old+new`);
        assert.ok(!opensslOk(newCa, pki(t.root, leaf)), `${leaf} is still the old CA's`);
      }

      phase(t, ca, "sign");
      assertSigningFiles(t.root);
      assert.equal(read(pki(t.root, f.cert)), read(newCa), "the new CA signs");
      for (const leaf of f.leaves) {
        assert.ok(opensslOk(newCa, pki(t.root, leaf)), `${leaf} against the new CA`);
        assert.ok(opensslOk(bundle, pki(t.root, leaf)), `${leaf} against the bundle`);
        assert.ok(!opensslOk(oldCa, pki(t.root, leaf)), `${leaf} no longer the old CA's`);
      }
      assert.ok(opensslOk(bundle, oldLeaf), "an old certificate still verifies during sign");

      phase(t, ca, "drop");
      assertSigningFiles(t.root);
      assert.equal(read(bundle), read(pki(t.root, f.cert)), "the bundle holds the new CA alone");
      for (const leaf of f.leaves) assert.ok(opensslOk(bundle, pki(t.root, leaf)), leaf);
      assert.ok(!opensslOk(bundle, oldLeaf), "a certificate of the old CA is refused after drop");
      const s = rotationStatus(t);
      assert.equal(s.cas.find((c: { id: string }) => c.id === ca).phase, "drop");
    });

  it("sa: tokens of the old key verify during trust and sign, not after drop", async () => {
    const t = await rotationNode();
    const oldKey = parsePrivateKeyPem(read(pki(t.root, "sa.key")), "sa.key");
    const token = sign("sha256", Buffer.from("claims"), oldKey);
    const accepts = () =>
      decodePem(read(pki(t.root, "sa-trust.pub")), "b").some((b) =>
        verify(
          "sha256",
          Buffer.from("claims"),
          createPublicKey({ key: b.der, format: "der", type: "spki" }),
          token,
        ),
      );
    phase(t, "sa", "trust");
    assert.equal(decodePem(read(pki(t.root, "sa-trust.pub")), "b").length, 2);
    assert.ok(accepts());
    assert.match(
      read(join(t.root, "etc/kubernetes/manifests/kube-apiserver.yaml")),
      /--service-account-key-file=\/etc\/kubernetes\/pki\/sa-trust\.pub/,
    );
    phase(t, "sa", "sign");
    assertSigningFiles(t.root);
    assert.ok(
      !keysMatch(parsePrivateKeyPem(read(pki(t.root, "sa.key")), "k"), createPublicKey(oldKey)),
      "a new key signs",
    );
    assert.ok(accepts());
    phase(t, "sa", "drop");
    assert.equal(decodePem(read(pki(t.root, "sa-trust.pub")), "b").length, 1);
    assert.ok(!accepts(), "a token of the old key is refused after drop");
  });

  it("--ca all: trust wires every trust flag, the kubelet and kubeadm's configuration to the bundles; kubeconfigs carry both CAs", async () => {
    const t = await rotationNode();
    const r = phase(t, "all", "trust");
    assert.deepEqual(r.cas.map((c: { id: string }) => c.id).sort(), [
      "ca",
      "etcd-ca",
      "front-proxy-ca",
      "sa",
    ]);
    const m = (c: string) => read(join(t.root, `etc/kubernetes/manifests/${c}.yaml`));
    assert.match(m("kube-apiserver"), /--client-ca-file=\/etc\/kubernetes\/pki\/ca-trust\.crt/);
    assert.match(
      m("kube-apiserver"),
      /--kubelet-certificate-authority=\/etc\/kubernetes\/pki\/ca-trust\.crt/,
    );
    assert.match(m("kube-apiserver"), /--etcd-cafile=\/etc\/kubernetes\/pki\/etcd\/ca-trust\.crt/);
    assert.match(
      m("kube-apiserver"),
      /--requestheader-client-ca-file=\/etc\/kubernetes\/pki\/front-proxy-ca-trust\.crt/,
    );
    assert.match(m("kube-controller-manager"), /--root-ca-file=\/etc\/kubernetes\/pki\/ca-trust\.crt/);
    assert.match(m("kube-controller-manager"), /--cluster-signing-cert-file=\/etc\/kubernetes\/pki\/ca\.crt/);
    assert.match(m("etcd"), /--trusted-ca-file=\/etc\/kubernetes\/pki\/etcd\/ca-trust\.crt/);
    assert.match(m("etcd"), /--peer-trusted-ca-file=\/etc\/kubernetes\/pki\/etcd\/ca-trust\.crt/);
    assert.match(
      read(join(t.root, "var/lib/kubelet/config.yaml")),
      /clientCAFile: \/etc\/kubernetes\/pki\/ca-trust\.crt/,
    );
    const kc = read(join(t.root, "etc/kubernetes/kubepki/kubeadm-config.yaml"));
    for (const flag of [
      "client-ca-file",
      "root-ca-file",
      "etcd-cafile",
      "trusted-ca-file",
      "service-account-key-file",
    ])
      assert.match(
        kc,
        new RegExp(`name: ${flag}\\n\\s+value: /etc/kubernetes/pki/[a-z/-]*trust\\.(crt|pub)`),
        flag,
      );
    assert.match(kc, /clientCAFile: \/etc\/kubernetes\/pki\/ca-trust\.crt/);
    for (const f of ["admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"]) {
      const view = parseKubeconfig(read(join(t.root, "etc/kubernetes", f)), f);
      assert.equal(parseCertificatesPem(view.caPem ?? "", f).length, 2, f);
    }
    const superAdmin = parseKubeconfig(read(join(t.offline, "super-admin.conf")), "s");
    assert.equal(parseCertificatesPem(superAdmin.caPem ?? "", "s").length, 2);
    assert.ok(
      r.restart.includes("kube-apiserver") && r.clusterSteps.some((s: string) => s.includes("cluster-info")),
    );
    const s = rotationStatus(t);
    for (const c of s.cas) assert.equal(c.nextSafe, true, `${c.id}: ${c.reasons}`);
    for (const tf of s.trustFiles)
      assert.ok(
        tf.holds.some((h: string) => h.endsWith(" new")),
        tf.path,
      );
  });
});

describe("rotate-ca: order, idempotence, refusals, abort", () => {
  it("a phase run twice changes nothing; phases out of order are refused with the reason", async () => {
    const t = await rotationNode();
    const before = snapshot(t.root);
    let r = rotateCa(t, "--ca", "ca", "--phase", "sign");
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /no rotation of the self-signed Kubernetes CA is in progress; the next phase is trust/,
    );
    r = rotateCa(t, "--ca", "etcd-ca", "--phase", "drop");
    assert.equal(r.status, 2);
    assert.deepEqual(snapshot(t.root), before, "a refused phase writes nothing");
    const dry = phase(t, "all", "trust", "--dry-run");
    assert.ok(dry.dryRun && dry.changed.length > 10, "dry-run says what would change");
    assert.deepEqual(snapshot(t.root), before, "--dry-run writes nothing");
    phase(t, "ca", "trust");
    const trusted = { node: snapshot(t.root), offline: snapshot(t.offline) };
    const again = phase(t, "ca", "trust");
    assert.equal(again.cas[0].outcome, "already");
    assert.deepEqual({ node: snapshot(t.root), offline: snapshot(t.offline) }, trusted);
    r = rotateCa(t, "--ca", "ca", "--phase", "drop");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is at phase trust; the next phase is sign/);
    phase(t, "ca", "sign");
    const signed = snapshot(t.root);
    assert.equal(phase(t, "ca", "sign").cas[0].outcome, "already");
    assert.deepEqual(snapshot(t.root), signed);
    r = rotateCa(t, "--ca", "ca", "--phase", "trust");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is at phase sign; the next phase is drop/);
    phase(t, "ca", "drop");
    const dropped = snapshot(t.root);
    assert.equal(phase(t, "ca", "drop").cas[0].outcome, "already");
    assert.deepEqual(snapshot(t.root), dropped);
  });

  it("sign waits until every trust file holds the new CA; drop while a certificate chains only to the old CA needs --force", async () => {
    const t = await rotationNode();
    phase(t, "ca", "trust");
    const manifest = join(t.root, "etc/kubernetes/manifests/kube-scheduler.yaml");
    writeFileSync(
      manifest,
      read(manifest).replace(
        "--kubeconfig=",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt\n    - --kubeconfig=",
      ),
    );
    const s = rotationStatus(t);
    const ca = s.cas.find((c: { id: string }) => c.id === "ca");
    assert.equal(ca.nextSafe, false);
    assert.match(ca.reasons.join("\n"), /kube-scheduler --client-ca-file/);
    let r = rotateCa(t, "--ca", "ca", "--phase", "sign");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /sign refused: every trust file must hold the new CA first/);
    phase(t, "ca", "trust"); // already: the hand-made flag is not the kind trust rewires
    writeFileSync(manifest, read(manifest).replace("pki/ca.crt", "pki/ca-trust.crt"));
    const old = read(pki(t.root, "apiserver.crt"));
    phase(t, "ca", "sign");
    writeFileSync(pki(t.root, "front-proxy-client.crt"), read(pki(t.root, "front-proxy-client.crt"))); // untouched CA
    const keep = read(pki(t.root, "apiserver.key"));
    writeFileSync(pki(t.root, "apiserver.crt"), old);
    r = rotateCa(t, "--ca", "ca", "--phase", "drop");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /chain only to the old ca and would stop working:\n {2}- apiserver/);
    const forced = phase(t, "ca", "drop", "--force");
    assert.match(forced.notes.join("\n"), /--force: these certificates chain only to the old ca/);
    assert.equal(read(pki(t.root, "apiserver.key")), keep);
  });

  it("abort after trust and sign restores a byte-identical tree (node and offline folder); refused after drop", async () => {
    const t = await rotationNode();
    // The CRLs are revocation state, not trust state: abort signs them again with the old CA.
    const without = (s: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(s).filter(([k]) => !k.startsWith("var/lib/kubepki/ledger.db") && !k.endsWith(".crl")),
      );
    const before = { node: without(snapshot(t.root)), offline: snapshot(t.offline) };
    let r = rotateCa(t, "abort");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /nothing to abort/);
    phase(t, "all", "trust");
    phase(t, "ca", "sign");
    phase(t, "etcd-ca", "sign");
    r = rotateCa(t, "abort", "-o", "json");
    assert.equal(r.status, 0, r.stderr);
    // kube-apiserver goes back to its old-CA etcd client certificate before etcd trusts the old CA alone.
    const printed = JSON.parse(r.stdout).restart;
    assert.deepEqual(printed.slice(0, 2), ["kube-apiserver", "etcd"], printed.join(", "));
    assert.deepEqual({ node: without(snapshot(t.root)), offline: snapshot(t.offline) }, before);
    assertSigningFiles(t.root);
    for (const ca of ["ca", "etcd/ca"]) {
      const crl = ["crl", "-inform", "DER", "-in", pki(t.root, `${ca}.crl`), "-noout"];
      assert.equal(
        openssl([...crl, "-CAfile", pki(t.root, `${ca}.crt`)]).status,
        0,
        `${ca}.crl from the old CA`,
      );
    }
    phase(t, "front-proxy-ca", "trust");
    phase(t, "front-proxy-ca", "sign");
    phase(t, "front-proxy-ca", "drop");
    r = rotateCa(t, "abort");
    assert.equal(r.status, 2, "nothing left in progress");
    phase(t, "ca", "trust");
    phase(t, "ca", "sign");
    phase(t, "sa", "trust");
    phase(t, "ca", "drop");
    r = rotateCa(t, "abort");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /abort refused: ca was dropped already.*finish the rotation of sa/);
  });

  it("bad input: each a clear error, exit 2, nothing written", async () => {
    const t = await rotationNode();
    const before = snapshot(t.root);
    const cases: [string[], RegExp][] = [
      [["--ca", "root-ca", "--phase", "trust"], /--ca.*must be one of ca, etcd-ca, front-proxy-ca, sa, all/],
      [["--ca", "ca", "--phase", "rotate"], /must be one of trust, sign, drop/],
      [["--ca", "ca"], /needs --ca and --phase/],
      [["status", "--phase", "trust"], /status takes no --phase/],
      [["abort", "--ca", "ca"], /abort takes no --ca/],
      [["--ca", "ca", "--phase", "trust", "--from", join(t.offline, "nope")], /--from .* does not exist/],
    ];
    for (const [args, msg] of cases) {
      const r = rotateCa(t, ...args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
    const empty = tempDir();
    for (const args of [["--ca", "ca", "--phase", "trust"], ["status"], ["abort"]]) {
      const r = kubepki(["rotate-ca", ...args, "--root", empty]);
      assert.equal(r.status, 2, args.join(" "));
      assert.match(r.stderr, /no PKI found under/);
    }
    assert.deepEqual(snapshot(t.root), before);
    assert.equal(existsSync(join(empty, "var")), false);
  });
});

describe("rotate-ca: other nodes, and what stops working", () => {
  it("--from: a second control plane and a worker take the first node's new CA", async () => {
    const cp1 = await rotationNode();
    const cp2 = { root: join(tempDir(), "node"), offline: cp1.offline };
    cpSync(cp1.root, cp2.root, { recursive: true });
    const worker = { root: join(tempDir(), "node"), offline: cp1.offline };
    for (const f of ["etc/kubernetes/pki/ca.crt", "etc/kubernetes/kubelet.conf", "var/lib/kubelet"])
      cpSync(join(cp1.root, f), join(worker.root, f), { recursive: true });
    writeKubelet(worker.root, kubeletConfig(true));
    const stray = { root: join(tempDir(), "node"), offline: join(tempDir(), "other-offline") };
    cpSync(cp1.root, stray.root, { recursive: true });
    phase(cp1, "all", "trust");
    const published = read(join(cp1.offline, "rotation/ca/ca.crt"));
    phase(stray, "ca", "trust"); // made a new CA of its own by mistake
    const mixed = rotateCa(stray, "--ca", "ca", "--phase", "trust", "--from", cp1.offline);
    assert.equal(mixed.status, 2);
    assert.match(mixed.stderr, /another new CA than the one in --from/);
    const from = ["--from", cp1.offline];
    const r2 = phase(cp2, "all", "trust", ...from);
    assert.equal(
      r2.cas.find((c: { id: string }) => c.id === "ca").new,
      parseCertificatesPem(published, "p")[0]?.sha256,
    );
    const rw = phase(worker, "all", "trust", ...from);
    assert.deepEqual(
      rw.cas.map((c: { id: string; outcome: string }) => [c.id, c.outcome]),
      [["ca", "done"]],
      "a worker holds only the cluster CA",
    );
    assert.deepEqual(rw.restart, ["kubelet"], "a worker restarts only what runs there");
    assert.deepEqual(r2.restart, [
      "etcd",
      "kube-apiserver",
      "kube-controller-manager",
      "kube-scheduler",
      "kubelet",
    ]);
    assert.equal(read(pki(cp2.root, "ca-trust.crt")), read(pki(cp1.root, "ca-trust.crt")));
    assert.equal(read(pki(worker.root, "ca-trust.crt")), read(pki(cp1.root, "ca-trust.crt")));
    phase(cp1, "all", "sign");
    phase(cp2, "all", "sign", ...from);
    const away = join(tempDir(), "unmounted");
    renameSync(cp1.offline, away); // the offline folder is not mounted on the worker
    const keyless = rotateCa(worker, "--ca", "all", "--phase", "sign");
    renameSync(away, cp1.offline);
    assert.equal(keyless.status, 3, "without the new key a worker's kubelet pair is left: exit 3");
    assert.match(keyless.stderr, /left undone:\n {2}- kubelet: signed by the old ca/);
    assert.equal(
      phase(worker, "all", "sign", ...from).cas[0].outcome,
      "done",
      "sign again with --from finishes it",
    );
    for (const n of [cp1, cp2, worker]) {
      assert.equal(read(pki(n.root, "ca.crt")), published);
      assert.ok(opensslOk(pki(n.root, "ca.crt"), join(n.root, "var/lib/kubelet/pki/kubelet.crt")));
    }
    assert.ok(
      opensslOk(pki(cp1.root, "etcd/ca.crt"), pki(cp2.root, "etcd/peer.crt")),
      "peers share the new etcd CA",
    );
    assert.equal(existsSync(pki(worker.root, "ca.key")), false, "no CA key lands on a worker");
    for (const n of [cp1, cp2]) phase(n, "all", "drop");
    phase(worker, "all", "drop");
    assert.equal(read(pki(worker.root, "ca-trust.crt")), published);
  });

  it("drop lists the issue-client users and break-glass certificates the old CA signed, and the ledger marks them", async () => {
    const t = await rotationNode();
    const out = tempDir();
    for (const args of [
      ["--user", "jane", "--group", "dev", "--out", join(out, "jane.conf")],
      ["--user", "oncall", "--group", "system:masters", "--break-glass", "--out", join(out, "oncall.conf")],
    ]) {
      const r = kubepki(["issue", "client", "--root", t.root, "--offline-dir", t.offline, ...args]);
      assert.equal(r.status, 0, r.stderr);
    }
    phase(t, "ca", "trust");
    phase(t, "ca", "sign");
    const during = kubepki([
      "issue",
      "client",
      "--root",
      t.root,
      "--user",
      "dave",
      "--out",
      join(out, "dave.conf"),
    ]);
    assert.equal(during.status, 0, during.stderr);
    const daveCa = parseKubeconfig(read(join(out, "dave.conf")), "dave").caPem ?? "";
    assert.equal(
      parseCertificatesPem(daveCa, "dave").length,
      2,
      "a kubeconfig issued during the rotation trusts both CAs",
    );
    const dry = phase(t, "ca", "drop", "--dry-run");
    assert.equal(dry.dryRun, true);
    const r = rotateCa(t, "--ca", "ca", "--phase", "drop");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /2 credential\(s\) signed by the old CA stop working now/);
    assert.match(r.stdout, /jane\s+dev/);
    assert.match(r.stdout, /oncall\s+system:masters\s+\S+\s+client\S*\s+\S+\s+yes/);
    const list = kubepki(["ledger", "list", "--root", t.root, "--user", "oncall", "-o", "json"]);
    assert.equal(JSON.parse(list.stdout)[0].status, "superseded");
    assert.deepEqual(
      dry.stopWorking.map((c: { user: string; breakGlass: boolean }) => [c.user, c.breakGlass]).sort(),
      [
        ["jane", false],
        ["oncall", true],
      ],
    );
  });
});

describe("rotate-ca: kubepki's own pairs and the kubelet's rotated client pair", () => {
  it("sign issues the webhook pairs and kubelet-client-current.pem again (through its link); the webhook kubeconfig trusts the bundle", async () => {
    const t = await rotationNode();
    const setup = kubepki(["serve", "--root", t.root, "--listen", "127.0.0.1:8443", "--setup-only"]);
    assert.equal(setup.status, 0, setup.stderr);
    const client = await signWith(t.root, "/etc/kubernetes/pki/ca", {
      commonName: "system:node:cp1",
      organizations: ["system:nodes"],
    });
    const dir = join(t.root, "var/lib/kubelet/pki");
    writeFileSync(join(dir, "kubelet-client-2026-01-01-00-00-00.pem"), client.crt + client.key, {
      mode: 0o600,
    });
    symlinkSync(
      join("/var/lib/kubelet/pki", "kubelet-client-2026-01-01-00-00-00.pem"),
      join(dir, "kubelet-client-current.pem"),
    );
    phase(t, "ca", "trust");
    const wk = read(join(t.root, "etc/kubernetes/kubepki/webhook.kubeconfig"));
    assert.match(wk, /certificate-authority: \/etc\/kubernetes\/pki\/ca-trust\.crt/);
    const r = phase(t, "ca", "sign");
    assert.match(r.notes.join("\n"), /kubepki serve re-reads them and the trust bundle/);
    const ca = pki(t.root, "ca.crt");
    for (const f of ["webhook.crt", "apiserver-authz-client.crt"])
      assert.ok(opensslOk(ca, join(t.root, "etc/kubernetes/kubepki", f)), f);
    assert.ok(lstatSync(join(dir, "kubelet-client-current.pem")).isSymbolicLink(), "the link stays a link");
    const pem = read(join(dir, "kubelet-client-2026-01-01-00-00-00.pem"));
    const [cert] = parseCertificatesPem(pem, "client");
    assert.equal(cert?.commonName, "system:node:cp1");
    assert.deepEqual(cert?.organizations, ["system:nodes"]);
    assert.ok(cert && keysMatch(parsePrivateKeyPem(pem, "k"), cert.publicKey));
    assert.ok(opensslOk(ca, join(dir, "kubelet-client-2026-01-01-00-00-00.pem")));
    const s = rotationStatus(t);
    assert.ok(s.certificates.every((c: { signedBy: string }) => c.signedBy !== "ca old"));
  });
});

describe("rotate-ca: other commands in between", () => {
  it("certs renew between trust and sign keeps both CAs in the kubeconfig it renews", async () => {
    const t = await rotationNode();
    phase(t, "ca", "trust");
    const r = kubepki(["certs", "renew", "admin.conf", "--root", t.root]);
    assert.equal(r.status, 0, r.stderr);
    const view = parseKubeconfig(read(join(t.root, "etc/kubernetes/admin.conf")), "admin.conf");
    assert.equal(parseCertificatesPem(view.caPem ?? "", "a").length, 2);
    const ca = rotationStatus(t).cas.find((c: { id: string }) => c.id === "ca");
    assert.equal(ca.nextSafe, true, ca.reasons.join("\n"));
  });
});

describe("rotate-ca: init in between", () => {
  it("init run again during the rotation accepts the kubeconfigs' bundle and keeps the bundles wired in kubeadm-config.yaml", async () => {
    const t = await rotationNode();
    phase(t, "all", "trust");
    const config = join(t.root, "etc/kubernetes/kubepki/kubeadm-config.yaml");
    const wired = read(config);
    const r = kubepki(initArgs(t.root, t.offline));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(read(config), wired);
    for (const s of rotationStatus(t).cas) assert.equal(s.nextSafe, true, `${s.id}: ${s.reasons}`);
  });
});

describe("rotate-ca: the published CRLs", () => {
  it("during the rotation the CRL keeps the old CA's revocations and its number grows; after drop the new CA's only", async () => {
    const t = await rotationNode();
    const out = tempDir();
    const revokeUser = (user: string) => {
      const issued = kubepki(["issue", "client", "--root", t.root, "--user", user, "--out", join(out, user)]);
      assert.equal(issued.status, 0, issued.stderr);
      const r = kubepki([
        "revoke",
        "--root",
        t.root,
        "--user",
        user,
        "--reason",
        "keyCompromise",
        "-o",
        "json",
      ]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).revoked[0].serial as string;
    };
    const crl = () => {
      const r = openssl(["crl", "-inform", "DER", "-in", pki(t.root, "ca.crl"), "-noout", "-text"]);
      const number = Number(/CRL Number: \n\s+(\d+)/.exec(r.stdout)?.[1]);
      const serials = [...r.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) =>
        m[1]?.toLowerCase().replace(/^0+/, ""),
      );
      return { number, serials };
    };
    const bob = revokeUser("bob");
    const first = crl();
    phase(t, "ca", "trust");
    phase(t, "ca", "sign");
    assert.deepEqual(crl(), first, "sign leaves the old CA's CRL as it is");
    const carol = revokeUser("carol");
    const signed = crl();
    assert.ok(signed.number > first.number);
    assert.deepEqual(
      signed.serials.sort(),
      [bob, carol].sort(),
      "the old CA's revocation stays while it is trusted",
    );
    const byNewCa = [
      "crl",
      "-inform",
      "DER",
      "-in",
      pki(t.root, "ca.crl"),
      "-noout",
      "-CAfile",
      pki(t.root, "ca.crt"),
    ];
    assert.equal(openssl(byNewCa).status, 0, "signed by the new CA");
    assert.equal(kubepki(["ledger", "verify", "--root", t.root]).status, 0);
    phase(t, "ca", "drop");
    const dropped = crl();
    assert.ok(dropped.number > signed.number);
    assert.deepEqual(dropped.serials, [carol]);
    const verify = kubepki(["ledger", "verify", "--root", t.root]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  });
});

describe("rotate-ca: CA keys kept offline (--external-ca)", () => {
  it("the new keys stay in the offline folder through every phase; the old ones go to its backups", async () => {
    const dir = tempDir();
    const t = { root: join(dir, "node"), offline: join(dir, "offline") };
    const init = kubepki([...initArgs(t.root, t.offline), "--external-ca"]);
    assert.equal(init.status, 0, init.stderr);
    const keysOnNode = () =>
      ["ca.key", "front-proxy-ca.key", "etcd/ca.key", "ca.next.key", "etcd/ca.next.key"].filter((k) =>
        existsSync(pki(t.root, k)),
      );
    const offlineKey = join(t.offline, "pki/ca.key");
    const oldKey = read(offlineKey);
    phase(t, "all", "trust");
    assert.deepEqual(keysOnNode(), []);
    assert.ok(existsSync(join(t.offline, "pki/ca.next.key")));
    phase(t, "all", "sign");
    assert.deepEqual(keysOnNode(), []);
    const newCa = parseCertificatesPem(read(pki(t.root, "ca.crt")), "ca")[0];
    assert.ok(
      newCa && keysMatch(parsePrivateKeyPem(read(offlineKey), "k"), newCa.publicKey),
      "the new key is offline",
    );
    assert.ok(opensslOk(pki(t.root, "ca.crt"), pki(t.root, "apiserver.crt")));
    phase(t, "all", "drop");
    assert.deepEqual(keysOnNode(), []);
    const backups = readdirSync(join(t.offline, "backups"), { recursive: true, encoding: "utf8" });
    const kept = backups
      .filter((f) => f.endsWith("pki/ca.key"))
      .map((f) => read(join(t.offline, "backups", f)));
    assert.ok(kept.includes(oldKey), "the old key is in the offline folder's backups");
  });
});
