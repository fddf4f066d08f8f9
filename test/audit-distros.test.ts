import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { stringify } from "yaml";
import { auditNode } from "../src/audit/audit.js";
import { k0sNode, microk8sNode, rancherServer } from "./distro-fixtures.js";
import { put } from "./fixtures.js";
import { buildTree, PKI } from "./helpers.js";

const ids = (root: string) => auditNode({ root }).findings.map((f) => `${f.severity} ${f.ruleId}`);

describe("distributions", () => {
  it("k3s server: detected, its five CAs judged, system:masters admin reported", async () => {
    const { root } = await rancherServer("k3s");
    const r = auditNode({ root });
    assert.equal(r.snapshot.layout.distro, "k3s");
    assert.equal(r.snapshot.role, "control-plane");
    assert.ok(r.snapshot.certs.length >= 13);
    const got = ids(root);
    assert.ok(got.includes("info pki.ca-key.present"), got.join("\n"));
    assert.equal(got.filter((g) => g === "medium pki.etcd-ca-key.present").length, 2);
    assert.ok(got.includes("medium pki.front-proxy-ca-key.present"));
    assert.ok(got.includes("high cert.system-masters"));
    assert.ok(
      !got.some((g) => /pki\.key\.mode|pki\.owner|cert\.chain|cert\.key-mismatch/.test(g)),
      got.join("\n"),
    );
  });

  it("k3s agent: a worker holding server-ca.key is critical; without it, no custody finding", async () => {
    const { root } = await rancherServer("k3s");
    const { rmSync } = await import("node:fs");
    rmSync(join(root, "var/lib/rancher/k3s/server/cred"), { recursive: true });
    rmSync(join(root, "var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt"));
    const r = auditNode({ root });
    assert.equal(r.snapshot.role, "worker");
    assert.ok(
      r.findings.some(
        (f) =>
          f.ruleId === "pki.ca-key.present" && f.severity === "critical" && f.path?.endsWith("server-ca.key"),
      ),
    );
    assert.ok(r.findings.some((f) => f.ruleId === "pki.sa-key.present"));
  });

  it("RKE2: static pods under agent/pod-manifests are read and their wiring verified", async () => {
    const laid = await rancherServer("rke2");
    const t = "/var/lib/rancher/rke2/server/tls";
    const manifest = stringify({
      apiVersion: "v1",
      kind: "Pod",
      spec: {
        containers: [
          {
            name: "kube-apiserver",
            command: ["kube-apiserver"],
            args: [
              `--client-ca-file=${t}/client-ca.crt`,
              `--tls-cert-file=${t}/serving-kube-apiserver.crt`,
              `--tls-private-key-file=${t}/serving-kube-apiserver.key`,
              `--kubelet-certificate-authority=${t}/server-ca.crt`,
              `--kubelet-client-certificate=${t}/client-kube-apiserver.crt`,
              `--kubelet-client-key=${t}/client-kube-apiserver.key`,
              `--requestheader-client-ca-file=${t}/request-header-ca.crt`,
              "--requestheader-allowed-names=system:auth-proxy",
              `--proxy-client-cert-file=${t}/client-auth-proxy.crt`,
              `--etcd-cafile=${t}/etcd/server-ca.crt`,
              `--etcd-certfile=${t}/etcd/client.crt`,
              `--etcd-keyfile=${t}/etcd/client.key`,
              "--etcd-servers=https://127.0.0.1:2379",
              "--anonymous-auth=false",
            ],
          },
        ],
      },
    });
    put(laid.root, "/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml", manifest);
    const r = auditNode({ root: laid.root });
    assert.equal(r.snapshot.layout.distro, "rke2");
    assert.ok(r.snapshot.components.has("kube-apiserver"));
    const got = r.findings.map((f) => f.ruleId);
    assert.ok(!got.includes("apiserver.kubelet-ca.missing"), got.join(","));
    assert.ok(
      !got.includes("cert.chain"),
      JSON.stringify(r.findings.filter((f) => f.ruleId === "cert.chain")),
    );
    // Same tree with the proxy client signed by the wrong CA: the chain check speaks.
    copyFileSync(join(laid.root, t, "client-admin.crt"), join(laid.root, t, "client-auth-proxy.crt"));
    assert.ok(
      auditNode({ root: laid.root }).findings.some(
        (f) => f.ruleId === "cert.chain" && f.path?.endsWith("client-auth-proxy.crt"),
      ),
    );
  });

  it("MicroK8s: 0660 keys are expected; 10-year client certificates are not", async () => {
    const { root } = await microk8sNode();
    const r = auditNode({ root });
    assert.equal(r.snapshot.layout.distro, "microk8s");
    assert.equal(r.snapshot.role, "control-plane");
    assert.equal(r.snapshot.kubelet.flags.get("cert-dir"), "/var/snap/microk8s/current/certs");
    assert.equal(
      r.snapshot.components.get("kube-apiserver")?.flags.get("client-ca-file"),
      "/var/snap/microk8s/current/certs/ca.crt",
    );
    const got = r.findings.map((f) => f.ruleId);
    assert.ok(!got.includes("pki.key.mode"), got.join(","));
    // Group-readable keys are still reported, low, with the reason they are expected there.
    const group = r.findings.filter((f) => f.ruleId === "pki.key.group-readable");
    assert.ok(group.some((f) => f.path === "/var/snap/microk8s/current/certs/ca.key"));
    assert.ok(
      group.every((f) => f.severity === "low" && /microk8s group.*Expected on MicroK8s/.test(f.message)),
    );
    assert.ok(got.includes("cert.client.long-lived"));
    assert.ok(got.includes("cert.system-masters"));
    // A key opened to everyone is still a finding there.
    const { chmodSync } = await import("node:fs");
    chmodSync(join(root, "var/snap/microk8s/current/certs/ca.key"), 0o664);
    assert.ok(
      auditNode({ root }).findings.some((f) => f.ruleId === "pki.key.mode" && f.path?.endsWith("ca.key")),
    );
  });

  it("k0s: 0640 keys owned by component users are expected", async () => {
    const { root } = await k0sNode();
    const r = auditNode({ root });
    assert.equal(r.snapshot.layout.distro, "k0s");
    const got = r.findings.map((f) => f.ruleId);
    assert.ok(!got.includes("pki.key.mode") && !got.includes("pki.owner"), got.join(","));
    assert.ok(got.includes("cert.system-masters"));
    assert.ok(got.includes("pki.etcd-ca-key.present"));
  });

  it("--distro overrides detection", async () => {
    const { root } = await buildTree();
    assert.equal(auditNode({ root, distro: "k0s" }).snapshot.layout.distro, "k0s");
    assert.equal(auditNode({ root }).snapshot.layout.distro, "kubeadm");
  });
});

describe("hostile trees: findings or warnings, never a crash or an unbounded read", () => {
  it("a link out of the root, a 100 MB ca.crt, garbage in a manifest, a YAML alias bomb, a FIFO", async () => {
    const { root } = await buildTree();
    symlinkSync("../../../../../../../../../../../etc/ssl/certs", join(root, PKI, "linked-out"));
    symlinkSync("/../../../../etc/shadow", join(root, PKI, "abs-escape.key"));
    truncateSync(join(root, PKI, "ca.crt"), 100 * 1024 * 1024);
    mkdirSync(join(root, "etc/kubernetes/manifests"), { recursive: true });
    writeFileSync(
      join(root, "etc/kubernetes/manifests/kube-apiserver.yaml"),
      Buffer.from([0, 1, 2, 255, 254, 0, 10, 13]),
    );
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 12; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(", ")}]`,
      );
    writeFileSync(join(root, "etc/kubernetes/manifests/etcd.yaml"), `${lines.join("\n")}\n`);
    put(root, "/var/lib/kubelet/config.yaml", `${lines.join("\n")}\n`);
    execFileSync("mkfifo", [join(root, PKI, "fifo.crt")]);
    const started = Date.now();
    const r = auditNode({ root });
    assert.ok(Date.now() - started < 10_000, "bounded time");
    const warnings = r.snapshot.warnings.map((w) => `${w.path}: ${w.message}`).join("\n");
    assert.match(warnings, /ca\.crt: 104857600 bytes, over the 4194304-byte limit: not read/);
    assert.match(warnings, /kube-apiserver\.yaml: static pod manifest not readable: binary content/);
    assert.match(warnings, /etcd\.yaml: static pod manifest not readable: YAML refused/);
    assert.match(warnings, /config\.yaml: kubelet configuration not readable/);
    assert.match(warnings, /fifo\.crt: not a regular file/);
    assert.ok(r.findings.some((f) => f.ruleId === "node.unreadable" && f.path?.endsWith("ca.crt")));
    // The absolute link is taken under the root (as the node sees it) and is simply missing there.
    assert.ok(!r.snapshot.certs.some((c) => c.path.includes("ssl")));
  });
});

describe("--processes", () => {
  it("reads the flags of a running component from /proc, as kube-bench does", async () => {
    const { spawn } = await import("node:child_process");
    const { tempDir } = await import("./helpers.js");
    const script = join(tempDir(), "idle.cjs");
    writeFileSync(script, "setTimeout(() => {}, 30000);\n");
    // A stand-in process whose argv[0] is "etcd", started with etcd's flags.
    const child = spawn(process.execPath, [script, "--client-cert-auth=false", "--cert-file=/x/server.crt"], {
      argv0: "etcd",
      stdio: "ignore",
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = auditNode({ root: "/", processes: true, distro: "kubeadm" });
      assert.ok(r.snapshot.processesRead);
      const etcd = r.snapshot.components.get("etcd");
      assert.equal(etcd?.source, `/proc/${child.pid}/cmdline`);
      assert.equal(etcd?.flags.get("client-cert-auth"), "false");
      assert.ok(
        r.findings.some(
          (f) => f.ruleId === "etcd.client-cert-auth.off" && f.path === `/proc/${child.pid}/cmdline`,
        ),
      );
    } finally {
      child.kill();
    }
  });
});
