import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { buildTree, kubepki, PKI, snapshot, tempDir } from "./helpers.js";

const BASE = ["init", "--node-name", "cp1", "--advertise-address", "10.0.0.10"];

/** Runs init against a copy of a good tree and checks: exit 2, a clear message, no stack, tree untouched. */
function expectRefusal(root: string, offline: string, extra: string[], message: RegExp) {
  const before = snapshot(root);
  const r = kubepki([...BASE, "--root", root, "--offline-dir", offline, ...extra]);
  assert.equal(r.status, 2, `exit code for ${extra.join(" ")}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, "no stack trace");
  assert.equal(r.stdout, "");
  assert.deepEqual(snapshot(root), before, "the tree is left as it was");
}

describe("bad input gets a clear message, exit code 2, and leaves the tree as it was", () => {
  let root: string;
  let offline: string;
  before(async () => {
    ({ root, offline } = await buildTree());
  });

  it("an invalid IP", () =>
    expectRefusal(
      root,
      offline,
      ["--advertise-address", "10.0.0.300"],
      /--advertise-address: "10.0.0.300" is not a valid IP/,
    ));
  it("an invalid DNS name in the extra SANs", () =>
    expectRefusal(
      root,
      offline,
      ["--apiserver-cert-extra-sans", "ok.example.com,bad_name!"],
      /--apiserver-cert-extra-sans: "bad_name!"/,
    ));
  it("an invalid node name", () =>
    expectRefusal(root, offline, ["--node-name", "CP_1"], /--node-name: "CP_1" is not a valid DNS name/));
  it("an unknown algorithm", () =>
    expectRefusal(
      root,
      offline,
      ["--algorithm", "DSA-1024"],
      /--algorithm: unknown key algorithm "DSA-1024"/,
    ));
  it("an invalid --node", () =>
    expectRefusal(root, offline, ["--node", "w1"], /--node: "w1" must look like NAME=IP/));
  it("an invalid duration", () =>
    expectRefusal(
      root,
      offline,
      ["--cert-validity", "1 year"],
      /--cert-validity: "1 year" is not a positive duration/,
    ));
  it("an unknown flag", () => {
    const r = kubepki([...BASE, "--root", root, "--no-such-flag"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown option/);
  });

  it("malformed kubeadm YAML, naming the line", () => {
    const cfg = join(tempDir(), "kubeadm.yaml");
    writeFileSync(
      cfg,
      "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: [10.96.0.0/12\n",
    );
    expectRefusal(root, offline, ["--config", cfg], /kubeadm.yaml:\d+: invalid YAML/);
  });

  it("an unknown field in kubeadm YAML, naming field and line", () => {
    const cfg = join(tempDir(), "kubeadm.yaml");
    writeFileSync(
      cfg,
      "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnt: 10.96.0.0/12\n",
    );
    expectRefusal(
      root,
      offline,
      ["--config", cfg],
      /kubeadm.yaml:4 ClusterConfiguration.networking.serviceSubnt: unknown field/,
    );
  });

  it("a bad value in kubeadm YAML, naming field and line", () => {
    const cfg = join(tempDir(), "kubeadm.yaml");
    writeFileSync(
      cfg,
      "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  certSANs:\n  - good.example.com\n  - bad_name.example.com\n",
    );
    expectRefusal(
      root,
      offline,
      ["--config", cfg],
      /kubeadm.yaml:6 ClusterConfiguration.apiServer.certSANs.1: "bad_name.example.com" is neither/,
    );
  });

  it("a YAML alias bomb", () => {
    const cfg = join(tempDir(), "bomb.yaml");
    const lines = [
      "apiVersion: kubeadm.k8s.io/v1beta4",
      "kind: ClusterConfiguration",
      "a: &a [x, x, x, x, x, x, x, x, x]",
    ];
    for (let i = 1; i < 12; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(", ")}]`,
      );
    writeFileSync(cfg, `${lines.join("\n")}\n`);
    expectRefusal(root, offline, ["--config", cfg], /bomb.yaml/);
  });

  it("a leaf whose key does not match its certificate", () => {
    const { root: r2, offline: o2 } = { root: join(tempDir(), "n"), offline: join(tempDir(), "o") };
    const r = kubepki([...BASE, "--root", r2, "--offline-dir", o2]);
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(join(r2, PKI, "apiserver.key"), readFileSync(join(r2, PKI, "front-proxy-client.key")));
    expectRefusal(r2, o2, [], /apiserver.key is not the private key of .*apiserver.crt/);
  });

  it("a truncated PEM", () => {
    const { root: r2, offline: o2 } = { root: join(tempDir(), "n"), offline: join(tempDir(), "o") };
    assert.equal(kubepki([...BASE, "--root", r2, "--offline-dir", o2]).status, 0);
    const crt = join(r2, PKI, "etcd/server.crt");
    const text = readFileSync(crt, "utf8");
    writeFileSync(crt, text.slice(0, text.length / 2));
    expectRefusal(r2, o2, [], /etcd\/server.crt: PEM block "CERTIFICATE" has no END line/);
  });

  it("garbage DER inside a PEM", () => {
    const { root: r2, offline: o2 } = { root: join(tempDir(), "n"), offline: join(tempDir(), "o") };
    assert.equal(kubepki([...BASE, "--root", r2, "--offline-dir", o2]).status, 0);
    writeFileSync(
      join(r2, PKI, "ca.crt"),
      `-----BEGIN CERTIFICATE-----\n${Buffer.from("garbage, not DER at all").toString("base64")}\n-----END CERTIFICATE-----\n`,
    );
    expectRefusal(r2, o2, [], /ca.crt: not a valid X.509 certificate/);
  });

  it("--force replaces an inconsistent leaf and keeps a timestamped backup", () => {
    const { root: r2, offline: o2 } = { root: join(tempDir(), "n"), offline: join(tempDir(), "o") };
    assert.equal(kubepki([...BASE, "--root", r2, "--offline-dir", o2]).status, 0);
    const badKey = readFileSync(join(r2, PKI, "front-proxy-client.key"));
    writeFileSync(join(r2, PKI, "apiserver.key"), badKey);
    const r = kubepki([...BASE, "--root", r2, "--offline-dir", o2, "--force", "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    const api = result.artifacts.find((a: { id: string }) => a.id === "apiserver");
    assert.equal(api.action, "replaced");
    assert.equal(result.artifacts.find((a: { id: string }) => a.id === "ca").action, "kept");
    const backup = result.backedUp.find((p: string) => p.endsWith("apiserver.key"));
    assert.ok(backup, "the replaced key was backed up");
    assert.deepEqual(readFileSync(backup), badKey);
    assert.match(backup, /var\/lib\/kubepki\/backups\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d/);
  });

  it("--offline-dir inside the node tree is refused", () => {
    const r = kubepki([...BASE, "--root", root, "--offline-dir", join(root, "offline")]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /inside the node tree/);
  });
});

describe("hostile trees", () => {
  it("a 100 MB file named ca.crt is refused without reading it whole", async () => {
    const { truncateSync } = await import("node:fs");
    const { root, offline } = await buildTree();
    truncateSync(join(root, PKI, "ca.crt"), 100 * 1024 * 1024);
    const before = snapshot(root);
    const r = kubepki([...BASE, "--root", root, "--offline-dir", offline]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /ca.crt is 104857600 bytes, over the 4194304-byte limit/);
    assert.deepEqual(snapshot(root), before);
  });

  it("a second kubepki on the same tree waits its turn; a dead owner's lock is taken over", async () => {
    const { mkdirSync } = await import("node:fs");
    const { root, offline } = await buildTree();
    mkdirSync(join(root, "var/lib/kubepki"), { recursive: true });
    const lock = join(root, "var/lib/kubepki/lock");
    writeFileSync(lock, String(process.pid));
    const busy = kubepki([...BASE, "--root", root, "--offline-dir", offline]);
    assert.equal(busy.status, 3);
    assert.match(busy.stderr, new RegExp(`another kubepki process \\(pid ${process.pid}\\)`));
    writeFileSync(lock, "2147483646");
    const ok = kubepki([...BASE, "--root", root, "--offline-dir", offline]);
    assert.equal(ok.status, 0, ok.stderr);
  });
});

describe("links", () => {
  it("a key that is a link out of the root is refused, not read", async () => {
    const { rmSync, symlinkSync } = await import("node:fs");
    const { root, offline } = await buildTree();
    rmSync(join(root, PKI, "apiserver.key"));
    // An absolute target would be read under the root, as the node sees it; this one climbs out.
    symlinkSync("../../../../../../../../../../../../etc/hostname", join(root, PKI, "apiserver.key"));
    const before = snapshot(root);
    const r = kubepki([...BASE, "--root", root, "--offline-dir", offline, "--force"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /apiserver.key is a link that leads out of/);
    assert.deepEqual(snapshot(root), before);
  });

  it("a link inside the root is followed as the node would (absolute targets taken under the root)", async () => {
    const { renameSync, symlinkSync } = await import("node:fs");
    const { root, offline } = await buildTree();
    renameSync(join(root, PKI, "apiserver.crt"), join(root, PKI, "apiserver-real.crt"));
    symlinkSync("/etc/kubernetes/pki/apiserver-real.crt", join(root, PKI, "apiserver.crt"));
    const r = kubepki([...BASE, "--root", root, "--offline-dir", offline, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      JSON.parse(r.stdout).artifacts.find((a: { id: string }) => a.id === "apiserver").action,
      "kept",
    );
  });
});
