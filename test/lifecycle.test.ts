import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { buildTree, initArgs, kubepki, openssl, PKI, snapshot, tempDir } from "./helpers.js";

const cert = (root: string, p: string) => parseCertificatePem(readFileSync(join(root, p), "utf8"), p);

describe("init reuse", () => {
  it("a second init keeps every file byte for byte; a missing leaf is made alone", async () => {
    const { root, offline } = await buildTree();
    const args = initArgs(root, offline);
    // The first CLI run adds what the library call does not: the ledger and the first CRLs.
    assert.equal(kubepki(args).status, 0);
    const pkiOnly = (snap: Record<string, string>) =>
      Object.fromEntries(Object.entries(snap).filter(([p]) => !p.startsWith("var/lib/kubepki/")));
    const before = pkiOnly(snapshot(root));
    const again = kubepki([...args, "-o", "json"]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(
      pkiOnly(snapshot(root)),
      before,
      "the PKI is untouched; only kubepki's ledger may change",
    );
    assert.ok(
      JSON.parse(again.stdout).artifacts.every((a: { action: string }) =>
        ["kept", "written"].includes(a.action),
      ),
    );

    const { rmSync } = await import("node:fs");
    rmSync(join(root, PKI, "front-proxy-client.crt"));
    rmSync(join(root, PKI, "front-proxy-client.key"));
    const r = kubepki([...args, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const made = JSON.parse(r.stdout).artifacts.filter((a: { action: string }) => a.action === "generated");
    assert.deepEqual(
      made.map((a: { id: string }) => a.id),
      ["front-proxy-client"],
    );
    assert.equal(
      openssl([
        "verify",
        "-CAfile",
        join(root, PKI, "front-proxy-ca.crt"),
        join(root, PKI, "front-proxy-client.crt"),
      ]).status,
      0,
    );
  });

  it("a new SAN the existing apiserver certificate lacks is refused without --force", async () => {
    const { root, offline } = await buildTree();
    const base = initArgs(root, offline);
    const r = kubepki([...base, "--apiserver-cert-extra-sans", "new.example.com"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /apiserver.crt does not cover the required SANs new.example.com/);
    const f = kubepki([...base, "--apiserver-cert-extra-sans", "new.example.com", "--force"]);
    assert.equal(f.status, 0, f.stderr);
    assert.ok(cert(root, `${PKI}/apiserver.crt`).dnsNames.includes("new.example.com"));
  });
});

describe("certs renew", () => {
  it("keeps subject, SANs and usages; new key and serial; backup; kubeconfig CA refreshed", async () => {
    const { root } = await buildTree();
    const old = cert(root, `${PKI}/apiserver.crt`);
    const oldKey = readFileSync(join(root, PKI, "apiserver.key"), "utf8");
    const oldAdmin = parseKubeconfig(
      readFileSync(join(root, "etc/kubernetes/admin.conf"), "utf8"),
      "admin.conf",
    );
    const r = kubepki(["certs", "renew", "apiserver", "admin.conf", "--root", root, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const now = cert(root, `${PKI}/apiserver.crt`);
    assert.equal(now.commonName, old.commonName);
    assert.deepEqual(now.dnsNames, old.dnsNames);
    assert.deepEqual(now.ipAddresses, old.ipAddresses);
    assert.deepEqual(now.extKeyUsageOids, old.extKeyUsageOids);
    assert.notEqual(now.serialHex, old.serialHex);
    assert.notEqual(readFileSync(join(root, PKI, "apiserver.key"), "utf8"), oldKey);
    assert.equal(
      openssl([
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        join(root, PKI, "ca.crt"),
        join(root, PKI, "apiserver.crt"),
      ]).status,
      0,
    );
    const admin = parseKubeconfig(
      readFileSync(join(root, "etc/kubernetes/admin.conf"), "utf8"),
      "admin.conf",
    );
    assert.notEqual(admin.clientCert?.serialHex, oldAdmin.clientCert?.serialHex);
    assert.equal(admin.server, oldAdmin.server);
    assert.deepEqual(admin.clientCert?.organizations, ["kubeadm:cluster-admins"]);
    const result = JSON.parse(r.stdout);
    assert.equal(result.items.length, 2);
    const backups = result.backedUp as string[];
    assert.ok(backups.some((b) => b.endsWith("apiserver.key")));
    assert.equal(readFileSync(backups.find((b) => b.endsWith("apiserver.key")) ?? "", "utf8"), oldKey);
    // The untouched certificates stayed as they were.
    assert.equal(cert(root, `${PKI}/front-proxy-client.crt`).serialHex.length > 0, true);
  });

  it("--dry-run writes nothing; an unknown name is exit 2", async () => {
    const { root } = await buildTree();
    const before = snapshot(root);
    const r = kubepki(["certs", "renew", "all", "--root", root, "--dry-run"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /would renew {2}apiserver/);
    assert.deepEqual(snapshot(root), before);
    const bad = kubepki(["certs", "renew", "apiserverx", "--root", root]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /"apiserverx" cannot be renewed here; renewable: all, admin.conf/);
  });
});

describe("--external-ca", () => {
  it("keeps CA keys offline; renew is refused without them and works with --offline-dir", async () => {
    const dir = tempDir();
    const root = join(dir, "node");
    const off = join(dir, "off");
    const r = kubepki(initArgs(root, off, "--external-ca"));
    assert.equal(r.status, 0, r.stderr);
    for (const k of ["ca.key", "front-proxy-ca.key", "etcd/ca.key"]) {
      assert.equal(existsSync(join(root, PKI, k)), false, `${k} must not be on the node`);
      assert.ok(existsSync(join(off, "pki", k)), `${k} is offline`);
    }
    assert.equal(
      openssl(["verify", "-CAfile", join(root, PKI, "ca.crt"), join(root, PKI, "apiserver.crt")]).status,
      0,
    );

    const exp = JSON.parse(kubepki(["certs", "check-expiration", "--root", root, "-o", "json"]).stdout);
    assert.ok(exp.certificateAuthorities.every((c: { externallyManaged: boolean }) => c.externallyManaged));

    const refused = kubepki(["certs", "renew", "apiserver", "--root", root]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /Detected external ca: the CA key .*ca.key is absent/);
    const ok = kubepki(["certs", "renew", "apiserver", "--root", root, "--offline-dir", off]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(existsSync(join(root, PKI, "ca.key")), false);

    // Moving an on-node CA to the offline folder later.
    const dir2 = tempDir();
    const r2 = join(dir2, "node");
    const o2 = join(dir2, "off");
    const base = initArgs(r2, o2);
    assert.equal(kubepki(base).status, 0);
    const caKey = readFileSync(join(r2, PKI, "ca.key"));
    assert.equal(kubepki([...base, "--external-ca"]).status, 0);
    assert.equal(existsSync(join(r2, PKI, "ca.key")), false);
    assert.deepEqual(readFileSync(join(o2, "pki/ca.key")), caKey);
  });
});

describe("certs check-expiration", () => {
  it("prints kubeadm's columns and JSON shape, with the kubelet's certificates", async () => {
    const { root } = await buildTree();
    // The kubelet's rotated client certificate, linked the way the kubelet links it (absolute target).
    const kubeletPki = join(root, "var/lib/kubelet/pki");
    const pem =
      readFileSync(join(kubeletPki, "kubelet.crt"), "utf8") +
      readFileSync(join(kubeletPki, "kubelet.key"), "utf8");
    writeFileSync(join(kubeletPki, "kubelet-client-2026-11-26-10-00-00.pem"), pem, { mode: 0o600 });
    symlinkSync(
      "/var/lib/kubelet/pki/kubelet-client-2026-11-26-10-00-00.pem",
      join(kubeletPki, "kubelet-client-current.pem"),
    );
    const text = kubepki(["certs", "check-expiration", "--root", root]);
    assert.equal(text.status, 0, text.stderr);
    const lines = text.stdout.split("\n");
    // Byte for byte the layout of kubeadm's own output (tabwriter, padding 3).
    assert.equal(
      lines[0],
      "CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED",
    );
    assert.match(text.stdout, /\napiserver {18}\w{3} \d\d, \d{4} \d\d:\d\d UTC {3}364d {12}ca {22}no\n/);
    assert.match(
      text.stdout,
      /\nCERTIFICATE AUTHORITY {3}EXPIRES {18}RESIDUAL TIME {3}EXTERNALLY MANAGED\nca {2,}/,
    );
    assert.match(text.stdout, /\nkubelet-client-current /);
    const json = JSON.parse(kubepki(["certs", "check-expiration", "--root", root, "-o", "json"]).stdout);
    assert.equal(json.kind, "CertificateExpirationInfo");
    assert.equal(json.apiVersion, "output.kubeadm.k8s.io/v1alpha3");
    const api = json.certificates.find((c: { name: string }) => c.name === "apiserver");
    assert.deepEqual(Object.keys(api).sort(), [
      "caName",
      "expirationDate",
      "externallyManaged",
      "missing",
      "name",
      "path",
      "residualTime",
    ]);
    assert.match(api.expirationDate, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(api.residualTime > 364 * 86400 && api.residualTime <= 365 * 86400);
    assert.deepEqual(
      json.certificateAuthorities.map((c: { name: string }) => c.name),
      ["ca", "etcd-ca", "front-proxy-ca"],
    );
  });

  it("a link out of the root is reported, not followed; a missing certificate is !MISSING!", async () => {
    const { root } = await buildTree();
    const { rmSync } = await import("node:fs");
    rmSync(join(root, PKI, "front-proxy-client.crt"));
    symlinkSync(
      "../../../../../../../../../../etc/ssl/certs/ca-certificates.crt",
      join(root, "var/lib/kubelet/pki/kubelet-client-current.pem"),
    );
    const r = kubepki(["certs", "check-expiration", "--root", root]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /!MISSING! front-proxy-client/);
    assert.match(r.stdout, /!INVALID! kubelet-client-current/);
    assert.match(r.stderr, /leads out of/);
  });
});

describe("CLI conventions", () => {
  it("every command has --help with an example", () => {
    const groups = ["certs", "ledger", "issue"];
    const commands = [
      [],
      ["init"],
      ["certs", "check-expiration"],
      ["certs", "renew"],
      ["audit"],
      ["ledger", "init"],
      ["ledger", "import"],
      ["ledger", "verify"],
      ["ledger", "repair"],
      ["ledger", "list"],
      ["issue", "client"],
      ["revoke"],
      ["crl"],
      ["serve"],
      ...groups.map((g) => [g]),
    ];
    for (const cmd of commands) {
      const r = kubepki([...cmd, "--help"]);
      assert.equal(r.status, 0, cmd.join(" "));
      if (!(cmd.length === 1 && groups.includes(cmd[0] ?? "")))
        assert.match(r.stdout, /Examples?:/, cmd.join(" "));
    }
  });

  it("private keys never appear in output", async () => {
    const dir = tempDir();
    const r = kubepki(["init", "--root", join(dir, "n"), "--offline-dir", join(dir, "o"), "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY|client-key-data/);
    const names = readdirSync(join(dir, "n", PKI));
    assert.ok(names.includes("ca.key"));
  });
});
