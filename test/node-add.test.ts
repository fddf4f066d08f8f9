import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { kubeletServingProfile } from "../src/pki/catalog.js";
import { nodeFromFlag } from "../src/pki/node-input.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { initArgs, kubepki, openssl, PKI, snapshot, tempDir } from "./helpers.js";

/** A control plane made by the CLI, with worker2 signed by init's --node for comparison. */
function cluster(...extra: string[]) {
  const dir = tempDir();
  const root = join(dir, "node");
  const offline = join(dir, "offline");
  const r = kubepki(initArgs(root, offline, "--node", "worker2=10.0.0.22", ...extra));
  assert.equal(r.status, 0, r.stderr);
  return { dir, root, offline };
}

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const keyBody = (pem: string) => pem.split("\n").filter((l) => l && !l.startsWith("-----"));

function assertNoKeyBytes(output: string, keyPem: string): void {
  assert.doesNotMatch(output, /PRIVATE KEY/);
  for (const line of keyBody(keyPem)) assert.equal(output.includes(line), false, "key bytes in output");
}

describe("kubepki node add", () => {
  it("signs the node's kubelet serving pair with init's --node profile; openssl verifies it; ledger records it", () => {
    const { root, offline } = cluster();
    const r = kubepki([
      "node",
      "add",
      "worker1=10.0.0.21,10.0.0.31,worker1.example.com",
      "--root",
      root,
      "--offline-dir",
      offline,
      "-o",
      "json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    const dir = join(offline, "nodes/worker1");
    const crt = join(dir, "kubelet.crt");
    const key = join(dir, "kubelet.key");
    assert.equal(res.cert, crt);
    assert.equal(res.action, "generated");
    assert.equal(mode(crt), "644");
    assert.equal(mode(key), "600");
    assert.equal(mode(dir), "700");
    assert.equal(mode(join(offline, "nodes")), "700");

    const v = openssl(["verify", "-purpose", "sslserver", "-CAfile", join(root, PKI, "ca.crt"), crt]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), `${crt}: OK`);
    const text = openssl([
      "x509",
      "-in",
      crt,
      "-noout",
      "-subject",
      "-ext",
      "subjectAltName,extendedKeyUsage,keyUsage,basicConstraints",
    ]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /subject=O ?= ?system:nodes, CN ?= ?system:node:worker1\n/);
    assert.match(
      text.stdout,
      /DNS:worker1, DNS:worker1\.example\.com, IP Address:10\.0\.0\.21, IP Address:10\.0\.0\.31/,
    );
    assert.match(text.stdout, /Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    assert.match(text.stdout, /Basic Constraints: critical\n\s+CA:FALSE/);
    // The key belongs to the certificate.
    const pubFromCert = openssl(["x509", "-in", crt, "-noout", "-pubkey"]).stdout;
    const pubFromKey = openssl(["pkey", "-in", key, "-pubout"]).stdout;
    assert.equal(pubFromKey, pubFromCert);
    assert.match(
      readFileSync(key, "utf8"),
      /^-----BEGIN EC PRIVATE KEY-----/,
      "the CA's algorithm (ECDSA), SEC1",
    );

    // Same profile, extensions and key usages as the pair init signed for --node worker2.
    const a = parseCertificatePem(readFileSync(crt, "utf8"), "add");
    const b = parseCertificatePem(readFileSync(join(offline, "nodes/worker2/kubelet.crt"), "utf8"), "init");
    assert.deepEqual(a.keyUsage, b.keyUsage);
    assert.deepEqual(a.extKeyUsageOids, b.extKeyUsageOids);
    assert.deepEqual(a.organizations, b.organizations);
    assert.deepEqual(
      a.extensions.map((e) => `${e.oid}${e.critical}`),
      b.extensions.map((e) => `${e.oid}${e.critical}`),
    );
    // kubeadm's default leaf validity, backdated five minutes.
    assert.equal(a.notAfter.getTime() - a.notBefore.getTime(), (8760 * 60 + 5) * 60_000);
    assert.deepEqual(
      kubeletServingProfile(nodeFromFlag("worker1=10.0.0.21,10.0.0.31,worker1.example.com", "t")),
      {
        commonName: a.commonName,
        organizations: a.organizations,
        extKeyUsage: ["serverAuth"],
        sans: { dns: a.dnsNames, ips: a.ipAddresses },
      },
    );

    // kubeadm join's CA pin, computed with openssl as the kubeadm docs do it (sha256 of the DER SPKI).
    const pubPem = join(dir, "ca.pub.pem");
    const pubDer = join(dir, "ca.pub.der");
    assert.equal(
      openssl(["x509", "-in", join(root, PKI, "ca.crt"), "-noout", "-pubkey", "-out", pubPem]).status,
      0,
    );
    assert.equal(openssl(["pkey", "-pubin", "-in", pubPem, "-outform", "der", "-out", pubDer]).status, 0);
    const pin = createHash("sha256").update(readFileSync(pubDer)).digest("hex");
    assert.equal(res.discoveryTokenCaCertHash, `sha256:${pin}`);
    assert.equal(res.apiServer, "10.0.0.10:6443");
    assert.ok(
      res.steps.some((s: string) =>
        s.includes("install -D -m 0600 kubelet.key /var/lib/kubelet/pki/kubelet.key"),
      ),
    );
    assert.ok(
      res.steps.some((s: string) =>
        s.includes(
          `kubeadm join 10.0.0.10:6443 --token <token> --discovery-token-ca-cert-hash ${res.discoveryTokenCaCertHash}`,
        ),
      ),
    );
    assertNoKeyBytes(r.stdout + r.stderr, readFileSync(key, "utf8"));

    const ledger = JSON.parse(kubepki(["ledger", "list", "--root", root, "-o", "json"]).stdout) as {
      profile: string;
      sha256: string;
      status: string;
      subjectCN: string;
    }[];
    const entry = ledger.find((e) => e.profile === "kubelet/worker1");
    assert.equal(entry?.sha256, a.sha256);
    assert.equal(entry?.status, "active");
    assert.equal(entry?.subjectCN, "system:node:worker1");

    // check-expiration lists it with the offline folder.
    const exp = kubepki(["certs", "check-expiration", "--root", root, "--offline-dir", offline]);
    assert.equal(exp.status, 0, exp.stderr);
    assert.match(exp.stdout, /\nkubelet\/worker1 +\w{3} \d\d, \d{4} \d\d:\d\d UTC {3}364d {12}ca {22}no\n/);
  });

  it("the text output says how to install the pair and join; no key bytes", () => {
    const { root, offline } = cluster();
    const r = kubepki(["node", "add", "worker1=10.0.0.21", "--root", root, "--offline-dir", offline]);
    assert.equal(r.status, 0, r.stderr);
    const key = readFileSync(join(offline, "nodes/worker1/kubelet.key"), "utf8");
    assertNoKeyBytes(r.stdout + r.stderr, key);
    assert.match(
      r.stdout,
      /kubelet serving cert is signed for DNS names \[worker1\] and IPs \[10\.0\.0\.21\]/,
    );
    assert.match(r.stdout, /install -D -m 0644 kubelet.crt \/var\/lib\/kubelet\/pki\/kubelet.crt/);
    assert.match(
      r.stdout,
      /tlsCertFile: \/var\/lib\/kubelet\/pki\/kubelet.crt\\ntlsPrivateKeyFile: \/var\/lib\/kubelet\/pki\/kubelet.key/,
    );
    assert.match(r.stdout, /kubeletconfiguration\+merge\.yaml/);
    assert.match(
      r.stdout,
      /kubeadm join 10\.0\.0\.10:6443 --token <token> --discovery-token-ca-cert-hash sha256:[0-9a-f]{64} --patches \/etc\/kubernetes\/patches/,
    );
    assert.match(r.stderr, /private key: copy it over an encrypted channel/);
  });

  it("refuses to overwrite an existing pair without --force; --force backs it up in the offline folder", () => {
    const { root, offline } = cluster();
    const args = ["node", "add", "worker2=10.0.0.22", "--root", root, "--offline-dir", offline];
    const before = { node: snapshot(root), off: snapshot(offline) };
    const r = kubepki(args);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /node worker2 already has a kubelet serving pair: .*nodes\/worker2\/kubelet.crt \(system:node:worker2, until/,
    );
    assert.match(r.stderr, /Nothing was written\. Use --force/);
    assert.deepEqual(snapshot(offline), before.off);
    assert.deepEqual(snapshot(root), before.node);

    const oldKey = readFileSync(join(offline, "nodes/worker2/kubelet.key"), "utf8");
    const old = parseCertificatePem(readFileSync(join(offline, "nodes/worker2/kubelet.crt"), "utf8"), "old");
    const f = kubepki([...args, "--force", "-o", "json"]);
    assert.equal(f.status, 0, f.stderr);
    const res = JSON.parse(f.stdout);
    assert.equal(res.action, "replaced");
    assert.equal(res.supersededSha256, old.sha256);
    assert.equal(res.backedUp.length, 2);
    for (const b of res.backedUp) assert.ok(b.startsWith(`${join(offline, "backups")}/`), b);
    assert.equal(
      readFileSync(
        res.backedUp.find((b: string) => b.endsWith(".key")),
        "utf8",
      ),
      oldKey,
    );
    assert.equal(existsSync(join(root, "var/lib/kubepki/backups")), false);
    const ledger = JSON.parse(kubepki(["ledger", "list", "--root", root, "-o", "json"]).stdout) as {
      sha256: string;
      status: string;
    }[];
    assert.equal(ledger.find((e) => e.sha256 === old.sha256)?.status, "superseded");
  });

  it("--out writes the pair to that folder; inside the node tree it is refused", () => {
    const { root, offline, dir } = cluster();
    const out = join(dir, "w3");
    const r = kubepki([
      "node",
      "add",
      "worker3=10.0.0.23",
      "--root",
      root,
      "--offline-dir",
      offline,
      "--out",
      out,
      "-o",
      "yaml",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const doc = parse(r.stdout);
    assert.equal(doc.cert, join(out, "kubelet.crt"));
    assert.equal(doc.node, "worker3");
    assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
    const v = openssl(["verify", "-CAfile", join(root, PKI, "ca.crt"), join(out, "kubelet.crt")]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(mode(join(out, "kubelet.key")), "600");
    assert.equal(existsSync(join(offline, "nodes/worker3")), false);

    const before = snapshot(root);
    const inside = kubepki([
      "node",
      "add",
      "worker4=10.0.0.24",
      "--root",
      root,
      "--out",
      join(root, "tmp/w4"),
    ]);
    assert.equal(inside.status, 2);
    assert.match(inside.stderr, /inside the node tree/);
    assert.deepEqual(snapshot(root), before);
  });

  it("bad input: exit 2 with the reason, no stack trace, nothing written", () => {
    const { root, offline } = cluster();
    const before = { node: snapshot(root), off: snapshot(offline) };
    const cases: [string, RegExp][] = [
      ["worker1", /"worker1" must look like NAME=IP\[,DNS\.\.\.\]/],
      ["Worker_1=10.0.0.21", /"Worker_1" is not a valid DNS name/],
      ["worker1=worker1.example.com", /node "worker1" needs at least one IP address/],
      ["worker1=10.0.0.21,10.0.0.300", /"10\.0\.0\.300" is not a valid IP address/],
      ["worker1=10.0.0.21,bad_name", /"bad_name" is neither a valid IP address nor an RFC 1123 DNS name/],
    ];
    for (const [arg, re] of cases) {
      const r = kubepki(["node", "add", arg, "--root", root, "--offline-dir", offline]);
      assert.equal(r.status, 2, arg);
      assert.match(r.stderr, re, arg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
    const noArg = kubepki(["node", "add", "--root", root]);
    assert.equal(noArg.status, 2);
    const badAlg = kubepki([
      "node",
      "add",
      "w5=10.0.0.25",
      "--root",
      root,
      "--offline-dir",
      offline,
      "--algorithm",
      "DSA",
    ]);
    assert.equal(badAlg.status, 2);
    assert.deepEqual(snapshot(offline), before.off);
    assert.deepEqual(snapshot(root), before.node);

    // No PKI under the root: the CA is missing.
    const empty = tempDir();
    const r = kubepki([
      "node",
      "add",
      "w6=10.0.0.26",
      "--root",
      join(empty, "node"),
      "--offline-dir",
      join(empty, "off"),
    ]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /certificate .*ca\.crt is missing/);
    assert.equal(existsSync(join(empty, "off")), false);
    assert.equal(existsSync(join(empty, "node")), false, "no lock or ledger folder under a mistyped root");
  });

  it("with the CA key offline (--external-ca) it signs only with --offline-dir holding the key", () => {
    const { root, offline, dir } = cluster("--external-ca");
    const out = join(dir, "w7");
    const r = kubepki(["node", "add", "w7=10.0.0.27", "--root", root, "--out", out]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Detected external ca: the CA key .*ca\.key is absent/);
    assert.equal(existsSync(join(out, "kubelet.crt")), false);
    const ok = kubepki(["node", "add", "w7=10.0.0.27", "--root", root, "--offline-dir", offline]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(
      openssl(["verify", "-CAfile", join(root, PKI, "ca.crt"), join(offline, "nodes/w7/kubelet.crt")]).status,
      0,
    );
  });

  it("--help has an example; the top-level help names the command", () => {
    const h = kubepki(["node", "add", "--help"]);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /Examples:\n {2}kubepki node add worker1=10\.0\.0\.21 --root \/ --offline-dir/);
    assert.match(kubepki(["node", "--help"]).stdout, /add \[options\] <NAME=IP\[,DNS\.\.\.\]>/);
    assert.match(kubepki(["--help"]).stdout, /kubepki node add/);
  });
});
