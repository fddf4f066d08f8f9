import assert from "node:assert/strict";
import { existsSync, lstatSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { signWith } from "./fixtures.js";
import { CLI, listFiles, openssl, PKI } from "./helpers.js";
import { canUnshare, type NodeRoot, nodeRoot } from "./peers/node-root.js";

const OFFLINE = "/mnt/usb/kubepki";
const ID = ["--node-name", "cp1", "--advertise-address", "10.0.0.10"];

describe("the README flow with --root / in a private mount namespace", { skip: !canUnshare }, () => {
  let node: NodeRoot;
  const realEtc = existsSync("/etc/kubernetes") ? listFiles("/etc/kubernetes").length : -1;

  it("init --root / accepts an offline folder on the host, says it must leave, and writes kubeadm's layout", () => {
    node = nodeRoot();
    const r = node.kubepki(["init", "--root", "/", "--offline-dir", OFFLINE, ...ID]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /offline folder \/mnt\/usb\/kubepki is on this host: unmount the disk or move the folder/,
    );
    for (const f of ["ca.crt", "ca.key", "apiserver.crt", "etcd/ca.crt", "sa.key", "ca.crl"])
      assert.ok(existsSync(node.host(`/etc/kubernetes/pki/${f}`)), f);
    assert.ok(existsSync(node.host("/etc/kubernetes/admin.conf")));
    assert.ok(!existsSync(node.host("/etc/kubernetes/super-admin.conf")));
    assert.ok(existsSync(node.host(`${OFFLINE}/super-admin.conf`)));
    assert.equal(statSync(node.host("/var/lib/kubepki/ledger.db")).mode & 0o777, 0o600);
    assert.ok(existsSync(node.host("/var/lib/kubelet/pki/kubelet.crt")));
    const v = openssl([
      "verify",
      "-CAfile",
      node.host("/etc/kubernetes/pki/ca.crt"),
      node.host("/etc/kubernetes/pki/apiserver.crt"),
    ]);
    assert.equal(v.status, 0, v.stderr);
  });

  it("writes nothing outside /etc/kubernetes, /var/lib/kubelet, /var/lib/kubepki and the offline folder", () => {
    const hostEtc = listFiles("/etc").length;
    const copy = listFiles(node.host("/etc"));
    const present = (p: string) => {
      try {
        return !!lstatSync(p);
      } catch {
        return false;
      }
    };
    const extra = copy.filter((f) => !f.startsWith("kubernetes/") && !present(join("/etc", f)));
    assert.deepEqual(extra, []);
    assert.ok(copy.length >= hostEtc);
    assert.deepEqual(readdirSync(node.host("/var/lib")).sort(), ["kubelet", "kubepki"]);
    assert.deepEqual(readdirSync(node.host("/mnt")), ["usb"]);
    assert.equal(existsSync("/etc/kubernetes") ? listFiles("/etc/kubernetes").length : -1, realEtc);
  });

  it("a second run without --offline-dir uses the folder the first one recorded and keeps everything", () => {
    const r = node.kubepki(["init", "--root", "/", ...ID, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { offlineDir: string; artifacts: { action: string }[] };
    assert.equal(out.offlineDir, OFFLINE);
    assert.ok(out.artifacts.every((a) => a.action === "kept" || a.action === "written"));
  });

  it("refuses an offline folder that overlaps the node's own folders", () => {
    for (const bad of ["/etc/kubernetes/offline", "/var/lib/kubepki/off", "/etc"]) {
      const r = node.kubepki(["init", "--root", "/", "--offline-dir", bad, ...ID]);
      assert.equal(r.status, 2, bad);
      assert.match(r.stderr, /overlaps .* which stays on the node/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it("certs renew keeps node backups on the node and the break-glass backup offline", () => {
    const r = node.kubepki([
      "certs",
      "renew",
      "apiserver",
      "super-admin.conf",
      "--root",
      "/",
      "--offline-dir",
      OFFLINE,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const nodeBackups = listFiles(node.host("/var/lib/kubepki/backups"));
    assert.ok(
      nodeBackups.some((f) => f.endsWith("etc/kubernetes/pki/apiserver.crt")),
      nodeBackups.join(),
    );
    assert.ok(!nodeBackups.some((f) => f.includes("super-admin")), nodeBackups.join());
    const offBackups = listFiles(node.host(`${OFFLINE}/backups`));
    assert.ok(
      offBackups.some((f) => f.endsWith("/super-admin.conf")),
      offBackups.join(),
    );
  });

  it("issue client, revoke and audit work on the node", () => {
    const issue = node.kubepki([
      "issue",
      "client",
      "--root",
      "/",
      "--user",
      "jane",
      "--group",
      "dev",
      "--out",
      "/mnt/jane.kubeconfig",
    ]);
    assert.equal(issue.status, 0, issue.stderr);
    const revoke = node.kubepki(["revoke", "--root", "/", "--user", "jane", "--reason", "keyCompromise"]);
    assert.equal(revoke.status, 0, revoke.stderr);
    const crl = openssl(["crl", "-inform", "DER", "-in", node.host(`/${PKI}/ca.crl`), "-noout", "-text"]);
    assert.match(crl.stdout, /Key Compromise/);
    const audit = node.kubepki(["audit", "--root", "/", "-o", "json"]);
    assert.equal(audit.status, 0, audit.stderr);
    const report = JSON.parse(audit.stdout) as {
      root: string;
      findings: { severity: string; ruleId: string; path?: string }[];
      inventory: { path: string }[];
    };
    assert.equal(report.root, "/");
    assert.ok(report.inventory.some((c) => c.path === "/etc/kubernetes/pki/apiserver.crt"));
    // This machine's own units (its etcd package's, say) are audited too; what kubepki wrote has no high finding.
    const ours = report.findings.filter((f) => /^\/(etc\/kubernetes|var\/lib\/kube)/.test(f.path ?? ""));
    assert.ok(!ours.some((f) => f.severity === "high" || f.severity === "critical"), JSON.stringify(ours));
    assert.ok(
      !report.findings.some((f) => /\/dev\/null is not a regular file/.test(JSON.stringify(f))),
      "masked units are skipped",
    );
  });
});

const KUBEADM_YAML = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp1
  criSocket: unix:///run/containerd/containerd.sock
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.32.0
controlPlaneEndpoint: k8s.example.com:6443
networking:
  podSubnet: 10.244.0.0/16
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`;

describe("the README's whole flow, step 1, as written", { skip: !canUnshare }, () => {
  it("init with the operator's kubeadm.yaml, kubeadm's new super-admin.conf moved off by the second run", async () => {
    const node = nodeRoot();
    writeFileSync(node.host("/mnt/kubeadm.yaml"), KUBEADM_YAML);
    const first = node.sh(
      `cd /mnt && ${process.execPath} ${CLI} init --root / --offline-dir /mnt/offline --config kubeadm.yaml`,
    );
    assert.equal(first.status, 0, first.stderr);
    const config = readFileSync(node.host("/etc/kubernetes/kubepki/kubeadm-config.yaml"), "utf8");
    const docs = parseAllDocuments(config).map((d) => d.toJS() as Record<string, unknown>);
    assert.deepEqual(
      docs.map((d) => d.kind),
      ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"],
    );
    assert.match(config, /kubernetesVersion: v1.32.0/);
    assert.match(config, /cgroupDriver: systemd/);
    assert.match(config, /kubelet-certificate-authority/);
    assert.match(config, /client-crl-file/);
    // What `kubeadm init` does next: it writes a super-admin.conf of its own (ca.key is on the node).
    const minted = await signWith(node.dir, "/etc/kubernetes/pki/ca", {
      commonName: "kubernetes-super-admin",
      organizations: ["system:masters"],
    });
    const b64 = (t: string) => Buffer.from(t).toString("base64");
    const kubeadmCopy = readFileSync(node.host("/mnt/offline/super-admin.conf"), "utf8")
      .replace(/client-certificate-data: \S+/, `client-certificate-data: ${b64(minted.crt)}`)
      .replace(/client-key-data: \S+/, `client-key-data: ${b64(minted.key)}`);
    writeFileSync(node.host("/etc/kubernetes/super-admin.conf"), kubeadmCopy, { mode: 0o600 });
    const second = node.sh(`cd /mnt && ${process.execPath} ${CLI} init --root / --config kubeadm.yaml`);
    assert.equal(second.status, 0, second.stderr);
    assert.match(
      second.stderr,
      /second system:masters credential on the node: moved to \/mnt\/offline\/backups/,
    );
    assert.ok(!existsSync(node.host("/etc/kubernetes/super-admin.conf")));
  });
});
