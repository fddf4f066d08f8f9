import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { signWith } from "./fixtures.js";
import { initTree, kubepki, openssl, PKI, tempDir } from "./helpers.js";
import { type EtcdHandle, etcdctl, startEtcd } from "./peers/etcd.js";

const json = (args: string[]) => {
  const r = kubepki([...args, "-o", "json"]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
};

describe("ledger, short-lived clients and revocation", () => {
  it("init records every certificate it signs; the ledger is 0600", async () => {
    const { root } = await initTree();
    const rows = json(["ledger", "list", "--root", root]);
    assert.equal(rows.length, 16, rows.map((r: { profile: string }) => r.profile).join(","));
    assert.ok(
      rows.some(
        (r: { profile: string; breakGlass?: boolean }) =>
          r.profile === "kubeconfig:super-admin.conf" && r.breakGlass,
      ),
    );
    assert.equal(statSync(join(root, "var/lib/kubepki/ledger.db")).mode & 0o777, 0o600);
    const renewed = kubepki(["certs", "renew", "apiserver", "--root", root]);
    assert.equal(renewed.status, 0, renewed.stderr);
    assert.equal(json(["ledger", "list", "--root", root, "--status", "superseded"]).length, 1);
  });

  it("issue client: short-lived kubeconfig recorded; system:masters refused without --break-glass", async () => {
    const { root } = await initTree();
    const out = join(tempDir(), "jane.conf");
    const r = json([
      "issue",
      "client",
      "--root",
      root,
      "--user",
      "jane",
      "--group",
      "dev",
      "--group",
      "ops",
      "--ttl",
      "2h",
      "--out",
      out,
    ]);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const kc = parseKubeconfig(readFileSync(out, "utf8"), out);
    assert.equal(kc.clientCert?.commonName, "jane");
    assert.deepEqual(kc.clientCert?.organizations, ["dev", "ops"]);
    const life = (kc.clientCert?.notAfter.getTime() ?? 0) - Date.now();
    assert.ok(life > 1.9 * 3600_000 && life <= 2 * 3600_000, String(life));
    assert.equal(kc.server, "https://10.0.0.10:6443");
    assert.equal(r.credentialId, `X509SHA256=${kc.clientCert?.sha256}`);
    assert.equal(json(["ledger", "list", "--root", root, "--user", "jane"])[0].sha256, kc.clientCert?.sha256);

    const masters = kubepki([
      "issue",
      "client",
      "--root",
      root,
      "--user",
      "root2",
      "--group",
      "system:masters",
      "--out",
      join(tempDir(), "x"),
    ]);
    assert.equal(masters.status, 2);
    assert.match(masters.stderr, /system:masters refused/);
    const tooLong = kubepki([
      "issue",
      "client",
      "--root",
      root,
      "--user",
      "bob",
      "--ttl",
      "30d",
      "--out",
      join(tempDir(), "y"),
    ]);
    assert.equal(tooLong.status, 2);
    assert.match(tooLong.stderr, /--ttl exceeds the maximum/);
    const glass = kubepki([
      "issue",
      "client",
      "--root",
      root,
      "--user",
      "emergency",
      "--group",
      "system:masters",
      "--break-glass",
      "--ttl",
      "1h",
      "--out",
      join(tempDir(), "z"),
    ]);
    assert.equal(glass.status, 0, glass.stderr);
    assert.match(glass.stderr, /only rotating the cluster CA/);
    const revokeGlass = kubepki([
      "revoke",
      "--root",
      root,
      "--user",
      "emergency",
      "--reason",
      "keyCompromise",
    ]);
    assert.equal(revokeGlass.status, 0);
    assert.match(revokeGlass.stderr, /system:masters: kube-apiserver allows it before any authorizer runs/);
  });

  it("openssl crl -text and openssl verify -crl_check agree with the ledger on every revoked serial", async () => {
    const { root } = await initTree();
    const dir = tempDir();
    const users = ["a", "b", "c", "d"];
    for (const u of users)
      json(["issue", "client", "--root", root, "--user", u, "--out", join(dir, `${u}.conf`)]);
    json(["revoke", "--root", root, "--user", "a", "--reason", "keyCompromise"]);
    const b = parseKubeconfig(readFileSync(join(dir, "b.conf"), "utf8"), "b");
    json([
      "revoke",
      "--root",
      root,
      "--serial",
      (b.clientCert?.serialHex ?? "").toUpperCase().replace(/(..)(?=.)/g, "$1:"),
      "--reason",
      "superseded",
    ]);
    const c = parseKubeconfig(readFileSync(join(dir, "c.conf"), "utf8"), "c");
    json([
      "revoke",
      "--root",
      root,
      "--fingerprint",
      `X509SHA256=${c.clientCert?.sha256}`,
      "--reason",
      "cessationOfOperation",
    ]);
    const crlPem = join(dir, "ca.crl.pem");
    assert.equal(kubepki(["crl", "--root", root, "--ca", "ca", "--out", crlPem]).status, 0);
    const text = openssl(["crl", "-in", crlPem, "-noout", "-text", "-CAfile", join(root, PKI, "ca.crt")]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stderr + text.stdout, /verify OK/);
    assert.match(text.stdout, /Version 2/);
    assert.match(text.stdout, /X509v3 CRL Number: \n\s+5/);
    const ledgerRevoked = json(["ledger", "list", "--root", root, "--status", "revoked"]).map(
      (e: { serial: string }) => e.serial,
    );
    const crlSerials = [...text.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) =>
      (m[1] ?? "").toLowerCase().replace(/^0+/, ""),
    );
    assert.deepEqual(crlSerials.sort(), [...ledgerRevoked].sort());
    assert.match(text.stdout, /Key Compromise/);
    assert.match(text.stdout, /Superseded/);
    assert.match(text.stdout, /Cessation Of Operation/);
    for (const u of users) {
      const kc = parseKubeconfig(readFileSync(join(dir, `${u}.conf`), "utf8"), u);
      const pem = join(dir, `${u}.pem`);
      writeFileSync(pem, kc.clientCert?.pem ?? "");
      const v = openssl([
        "verify",
        "-crl_check",
        "-CAfile",
        join(root, PKI, "ca.crt"),
        "-CRLfile",
        crlPem,
        pem,
      ]);
      if (u === "d") assert.equal(v.status, 0, v.stdout + v.stderr);
      else {
        assert.notEqual(v.status, 0);
        assert.match(v.stdout + v.stderr, /certificate revoked/);
      }
    }
    // The published DER CRL next to the CA says the same.
    const der = openssl(["crl", "-inform", "DER", "-in", join(root, PKI, "ca.crl"), "-noout", "-text"]);
    assert.equal([...der.stdout.matchAll(/Serial Number:/g)].length, 3);
    const unknown = kubepki(["revoke", "--root", root, "--user", "nobody", "--reason", "keyCompromise"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no active certificate with user nobody/);
    const badReason = kubepki(["revoke", "--root", root, "--user", "d", "--reason", "because"]);
    assert.equal(badReason.status, 2);
  });

  it("ledger import records a node's existing certificates so they can be revoked", async () => {
    const { root } = await initTree();
    const c = await signWith(root, `/${PKI}/ca`, { commonName: "legacy-tool" });
    writeFileSync(join(root, PKI, "legacy-tool.crt"), c.crt);
    const r = kubepki(["ledger", "import", "--root", root]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /imported 1 certificate\(s\); 15 already known/);
    assert.equal(
      kubepki(["revoke", "--root", root, "--user", "legacy-tool", "--reason", "cessationOfOperation"]).status,
      0,
    );
  });
});

describe("etcd enforces the CRL kubepki writes", () => {
  let root: string;
  let etcd: EtcdHandle;
  before(async () => {
    ({ root } = await initTree());
    etcd = await startEtcd(root, [`--client-crl-file=${join(root, PKI, "etcd/ca.crl")}`]);
  });
  after(async () => {
    await etcd?.stop();
  });

  it("refuses a revoked etcd client certificate and accepts another, without a restart", () => {
    const ca = join(root, PKI, "etcd/ca.crt");
    const pair = (b: string) => [join(root, PKI, `${b}.crt`), join(root, PKI, `${b}.key`)] as const;
    const before = etcdctl(etcd.endpoint, ca, ...pair("etcd/healthcheck-client"), ["put", "/k", "v"]);
    assert.equal(before.status, 0, before.stderr);
    const revoked = kubepki([
      "revoke",
      "--root",
      root,
      "--user",
      "kube-etcd-healthcheck-client",
      "--reason",
      "keyCompromise",
    ]);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(revoked.stderr, /rewrote .*etcd\/ca\.crl/);
    // Republishing by hand (as after a CA-key mount) keeps the entry and raises the CRL number.
    const crl = kubepki(["crl", "--root", root, "--ca", "etcd-ca"]);
    assert.equal(crl.status, 0, crl.stderr);
    assert.match(crl.stdout, /CRL number 3, 1 revoked/);
    const after = etcdctl(etcd.endpoint, ca, ...pair("etcd/healthcheck-client"), ["get", "/k"]);
    assert.notEqual(after.status, 0, "the revoked certificate is refused");
    const other = etcdctl(etcd.endpoint, ca, ...pair("apiserver-etcd-client"), [
      "get",
      "/k",
      "--print-value-only",
    ]);
    assert.equal(other.status, 0, other.stderr);
    assert.equal(other.stdout.trim(), "v");
    assert.equal(etcd.proc.exitCode, null, "etcd kept running");
  });
});
