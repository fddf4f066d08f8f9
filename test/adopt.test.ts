import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { stringify } from "yaml";
import { put, selfSignedKubelet, signWith } from "./fixtures.js";
import { buildTree, initArgs, kubepki, listFiles, openssl, PKI, run, snapshot, tempDir } from "./helpers.js";

interface InitJson {
  offlineDir: string;
  restart: string[];
  artifacts: { id: string; action: string; note?: string }[];
}

const action = (out: InitJson, id: string) => out.artifacts.find((a) => a.id === id)?.action;

/**
 * A control plane as kubeadm leaves it: kubelet.conf naming kubelet-client-current.pem (a link to a
 * dated cert+key file), the kubelet's self-signed serving pair, super-admin.conf on the node, and no
 * trace of kubepki (no ledger, no offline folder, no CRLs).
 */
async function kubeadmNode(): Promise<{ root: string; dir: string }> {
  const { root, offline, dir } = await buildTree();
  const pem = await signWith(root, "/etc/kubernetes/pki/ca", {
    commonName: "system:node:cp1",
    organizations: ["system:nodes"],
  });
  put(root, "/var/lib/kubelet/pki/kubelet-client-2026-11-30-05-00-00.pem", pem.crt + pem.key, 0o600);
  symlinkSync(
    "/var/lib/kubelet/pki/kubelet-client-2026-11-30-05-00-00.pem",
    join(root, "var/lib/kubelet/pki/kubelet-client-current.pem"),
  );
  const ca = readFileSync(join(root, PKI, "ca.crt")).toString("base64");
  const kubeletConf = {
    apiVersion: "v1",
    clusters: [
      { cluster: { "certificate-authority-data": ca, server: "https://10.0.0.10:6443" }, name: "kubernetes" },
    ],
    contexts: [
      { context: { cluster: "kubernetes", user: "system:node:cp1" }, name: "system:node:cp1@kubernetes" },
    ],
    "current-context": "system:node:cp1@kubernetes",
    kind: "Config",
    users: [
      {
        name: "system:node:cp1",
        user: {
          "client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
          "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem",
        },
      },
    ],
  };
  put(root, "/etc/kubernetes/kubelet.conf", stringify(kubeletConf), 0o600);
  const serving = await selfSignedKubelet();
  put(root, "/var/lib/kubelet/pki/kubelet.crt", serving.crt, 0o644);
  put(root, "/var/lib/kubelet/pki/kubelet.key", serving.key, 0o600);
  renameSync(join(offline, "super-admin.conf"), join(root, "etc/kubernetes/super-admin.conf"));
  for (const p of [offline, join(root, "var/lib/kubepki"), join(root, "etc/kubernetes/kubepki")])
    rmSync(p, { recursive: true, force: true });
  return { root, dir };
}

describe("adopting a node kubeadm built", () => {
  it("is accepted without --force: kubelet.conf kept, the self-signed serving pair replaced, super-admin.conf moved off", async () => {
    const { root, dir } = await kubeadmNode();
    const offline = join(dir, "usb");
    const superAdmin = readFileSync(join(root, "etc/kubernetes/super-admin.conf"), "utf8");
    const kubeletConf = readFileSync(join(root, "etc/kubernetes/kubelet.conf"), "utf8");
    const r = kubepki([...initArgs(root, offline), "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as InitJson;
    assert.equal(action(out, "kubelet.conf"), "kept");
    assert.equal(action(out, "kubelet"), "replaced");
    assert.equal(action(out, "super-admin.conf"), "moved");
    assert.equal(action(out, "apiserver"), "kept");
    assert.deepEqual(out.restart, ["kubelet"]);
    assert.equal(readFileSync(join(root, "etc/kubernetes/kubelet.conf"), "utf8"), kubeletConf);
    assert.ok(!existsSync(join(root, "etc/kubernetes/super-admin.conf")));
    assert.equal(readFileSync(join(offline, "super-admin.conf"), "utf8"), superAdmin);
    const v = openssl([
      "verify",
      "-CAfile",
      join(root, PKI, "ca.crt"),
      join(root, "var/lib/kubelet/pki/kubelet.crt"),
    ]);
    assert.equal(v.status, 0, v.stderr);
    const backups = listFiles(join(root, "var/lib/kubepki/backups"));
    assert.ok(
      backups.some((f) => f.endsWith("var/lib/kubelet/pki/kubelet.crt")),
      backups.join(),
    );
    assert.ok(!backups.some((f) => f.includes("super-admin")), backups.join());
    const list = kubepki(["ledger", "list", "--root", root, "-o", "json"]);
    const entries = JSON.parse(list.stdout) as { profile: string; path?: string }[];
    const bg = entries.find((e) => e.profile === "kubeconfig:super-admin.conf");
    assert.equal(bg?.path, join(offline, "super-admin.conf"));
  });

  it("the text output names the kubelet in the restart hint and says why its certificate changed", async () => {
    const { root, dir } = await kubeadmNode();
    const r = kubepki(initArgs(root, join(dir, "usb")));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\[kubelet\] replaces the kubelet's self-signed serving certificate/);
    assert.match(r.stdout, /Restart, in this order: kubelet/);
    assert.match(r.stdout, /\[super-admin.conf\] moved from .*super-admin.conf/);
  });

  it("--keep-kubelet-serving keeps the kubelet's own pair as it is", async () => {
    const { root, dir } = await kubeadmNode();
    const before = readFileSync(join(root, "var/lib/kubelet/pki/kubelet.crt"), "utf8");
    const r = kubepki([...initArgs(root, join(dir, "usb"), "--keep-kubelet-serving"), "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as InitJson;
    assert.equal(action(out, "kubelet"), "kept");
    assert.deepEqual(out.restart, []);
    assert.equal(readFileSync(join(root, "var/lib/kubelet/pki/kubelet.crt"), "utf8"), before);
  });

  it("lists every inconsistency in one run, with what --force would replace, and writes nothing", async () => {
    const { root, dir } = await kubeadmNode();
    const other = await signWith(root, "/etc/kubernetes/pki/ca", { commonName: "x" });
    put(root, `/${PKI}/apiserver.key`, other.key, 0o600);
    rmSync(join(root, PKI, "front-proxy-client.key"));
    writeFileSync(join(root, "etc/kubernetes/scheduler.conf"), "not: [a kubeconfig");
    const before = snapshot(root);
    const r = kubepki(initArgs(root, join(dir, "usb")));
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /inconsistent \(3 items\); nothing was written/);
    assert.match(r.stderr, /apiserver.key is not the private key of .*apiserver.crt/);
    assert.match(r.stderr, /front-proxy-client.crt:\n\s+- the key is missing while its certificate exists/);
    assert.match(r.stderr, /scheduler.conf: invalid YAML/);
    assert.match(
      r.stderr,
      /With --force kubepki replaces .*apiserver.crt; .*front-proxy-client.crt; .*scheduler.conf/,
    );
    assert.deepEqual(snapshot(root), before);
    assert.ok(!existsSync(join(dir, "usb")));
  });
});

describe("a changed control-plane endpoint", () => {
  it("is refused without --force, naming every kubeconfig with the old server; --force rewrites them", async () => {
    const dir = tempDir();
    const [root, offline] = [join(dir, "node"), join(dir, "offline")];
    assert.equal(kubepki(initArgs(root, offline, "--control-plane-endpoint", "cp.example.com")).status, 0);
    const cm = readFileSync(join(root, "etc/kubernetes/controller-manager.conf"), "utf8");
    const moved = initArgs(root, offline, "--control-plane-endpoint", "lb.example.com:6443");
    const refused = kubepki(moved);
    assert.equal(refused.status, 2);
    for (const f of ["admin.conf", "kubelet.conf", "super-admin.conf"])
      assert.match(
        refused.stderr,
        new RegExp(`${f} points at https://cp.example.com:6443, not https://lb.example.com:6443`),
      );
    assert.match(refused.stderr, /apiserver.crt does not cover the required SANs lb.example.com/);
    const forced = kubepki([...moved, "--force"]);
    assert.equal(forced.status, 0, forced.stderr);
    for (const conf of [
      join(root, "etc/kubernetes/admin.conf"),
      join(root, "etc/kubernetes/kubelet.conf"),
      join(offline, "super-admin.conf"),
    ]) {
      const server = run("kubectl", [
        "config",
        "view",
        "--kubeconfig",
        conf,
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
      ]);
      assert.equal(server.stdout, "https://lb.example.com:6443", conf);
    }
    assert.equal(readFileSync(join(root, "etc/kubernetes/controller-manager.conf"), "utf8"), cm);
    const san = openssl([
      "x509",
      "-in",
      join(root, PKI, "apiserver.crt"),
      "-noout",
      "-ext",
      "subjectAltName",
    ]);
    assert.match(san.stdout, /DNS:lb.example.com/);
    assert.match(forced.stdout, /Restart, in this order: kube-apiserver, kubelet/);
  });
});

describe("one break-glass credential, never on the node", () => {
  it("renewing super-admin.conf under a deep --root backs it up in the offline folder only", async () => {
    const dir = tempDir();
    const [root, offline] = [join(dir, "a/b/c/node"), join(dir, "off")];
    assert.equal(kubepki(initArgs(root, offline)).status, 0);
    const r = kubepki(["certs", "renew", "super-admin.conf", "--root", root, "--offline-dir", offline]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(listFiles(join(offline, "backups")).some((f) => f.endsWith("/super-admin.conf")));
    assert.ok(!listFiles(root).some((f) => f.includes("super-admin")), listFiles(root).join());
  });

  it("a rerun without --offline-dir uses the recorded folder, never <root>-offline", () => {
    const dir = tempDir();
    const [root, offline] = [join(dir, "node"), join(dir, "usb")];
    assert.equal(kubepki(initArgs(root, offline)).status, 0);
    const again = ["init", "--root", root, "--node-name", "cp1", "--advertise-address", "10.0.0.10"];
    const r = kubepki([...again, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as InitJson).offlineDir, offline);
    assert.ok(!existsSync(`${root}-offline`));
    rmSync(offline, { recursive: true });
    const gone = kubepki(again);
    assert.equal(gone.status, 2);
    assert.match(
      gone.stderr,
      /offline folder .*usb that an earlier run recorded is not there: mount it, or pass --offline-dir/,
    );
  });

  it("mints no second super-admin.conf while the ledger holds an active one, unless --new-break-glass", () => {
    const dir = tempDir();
    const root = join(dir, "node");
    assert.equal(kubepki(initArgs(root, join(dir, "usb1"))).status, 0);
    const r = kubepki([...initArgs(root, join(dir, "usb2")), "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as InitJson;
    assert.equal(action(out, "super-admin.conf"), "skipped");
    assert.match(
      out.artifacts.find((a) => a.id === "super-admin.conf")?.note ?? "",
      /ledger holds an active break-glass credential .*usb1/,
    );
    assert.ok(!existsSync(join(dir, "usb2/super-admin.conf")));
    const minted = kubepki([...initArgs(root, join(dir, "usb2"), "--new-break-glass"), "-o", "json"]);
    assert.equal(minted.status, 0, minted.stderr);
    assert.equal(action(JSON.parse(minted.stdout) as InitJson, "super-admin.conf"), "generated");
    assert.ok(existsSync(join(dir, "usb2/super-admin.conf")));
  });

  it("a second super-admin.conf on the node moves to the offline folder's backups, with a warning", async () => {
    const { root, offline } = await buildTree();
    const other = await buildTree();
    const stray = readFileSync(join(other.offline, "super-admin.conf"), "utf8");
    put(root, "/etc/kubernetes/super-admin.conf", stray, 0o600);
    const r = kubepki(initArgs(root, offline));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /second system:masters credential on the node: moved to .*backups/);
    assert.ok(!existsSync(join(root, "etc/kubernetes/super-admin.conf")));
    const kept = listFiles(join(offline, "backups")).find((f) =>
      f.endsWith("node/etc/kubernetes/super-admin.conf"),
    );
    assert.ok(kept);
    assert.equal(readFileSync(join(offline, "backups", kept), "utf8"), stray);
  });
});
