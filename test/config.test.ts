import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseConfig } from "../src/pki/config.js";
import { resolveSpec } from "../src/pki/spec.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { kubepki, PKI, tempDir } from "./helpers.js";

const V1BETA4 = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp-a
  criSocket: unix:///run/containerd/containerd.sock
localAPIEndpoint:
  advertiseAddress: 192.168.10.5
  bindPort: 6444
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: prod
controlPlaneEndpoint: "api.prod.example:443"
kubernetesVersion: v1.31.2
certificatesDir: /etc/kubernetes/pki
encryptionAlgorithm: ECDSA-P384
certificateValidityPeriod: 2160h
caCertificateValidityPeriod: 43800h
networking:
  serviceSubnet: "10.200.0.0/16,fd00:10:200::/108"
  podSubnet: 10.244.0.0/16
  dnsDomain: prod.local
apiServer:
  certSANs: [10.1.1.1, extra.prod.example]
  extraArgs:
    - name: audit-log-path
      value: /var/log/audit.log
etcd:
  local:
    dataDir: /var/lib/etcd
    serverCertSANs: [etcd.prod.example]
    peerCertSANs: [10.9.9.9]
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
---
apiVersion: kubepki.io/v1alpha1
kind: KubepkiConfiguration
nodes:
  - name: worker-1
    addresses: [192.168.10.21, worker-1.prod.example]
`;

describe("kubeadm configuration files", () => {
  it("v1beta4: every PKI field is read and shapes the certificates", () => {
    const dir = tempDir();
    const cfg = join(dir, "kubeadm.yaml");
    writeFileSync(cfg, V1BETA4);
    const root = join(dir, "node");
    const r = kubepki(["init", "--root", root, "--offline-dir", join(dir, "off"), "--config", cfg]);
    assert.equal(r.status, 0, r.stderr);
    const cert = (p: string) => parseCertificatePem(readFileSync(join(root, PKI, p), "utf8"), p);
    const api = cert("apiserver.crt");
    assert.deepEqual(api.dnsNames, [
      "api.prod.example",
      "cp-a",
      "extra.prod.example",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.prod.local",
    ]);
    assert.deepEqual(api.ipAddresses, ["10.200.0.1", "192.168.10.5", "10.1.1.1"]);
    assert.equal(api.publicKey.asymmetricKeyDetails?.namedCurve, "secp384r1");
    assert.equal(api.notAfter.getTime() - api.notBefore.getTime(), 2160 * 3600_000 + 5 * 60_000);
    const ca = cert("ca.crt");
    assert.equal(ca.notAfter.getTime() - ca.notBefore.getTime(), 43800 * 3600_000 + 5 * 60_000);
    assert.ok(cert("etcd/server.crt").dnsNames.includes("etcd.prod.example"));
    assert.ok(cert("etcd/peer.crt").ipAddresses.includes("10.9.9.9"));
    assert.equal(cert("etcd/server.crt").commonName, "cp-a");
    const admin = readFileSync(join(root, "etc/kubernetes/admin.conf"), "utf8");
    assert.match(admin, /server: https:\/\/api\.prod\.example:443/);
    assert.match(admin, /name: kubernetes-admin@prod/);
    assert.match(
      readFileSync(join(root, "etc/kubernetes/scheduler.conf"), "utf8"),
      /server: https:\/\/192\.168\.10\.5:6444/,
    );
    const worker = parseCertificatePem(
      readFileSync(join(dir, "off/nodes/worker-1/kubelet.crt"), "utf8"),
      "w",
    );
    assert.deepEqual(worker.dnsNames, ["worker-1", "worker-1.prod.example"]);
    assert.deepEqual(worker.ipAddresses, ["192.168.10.21"]);
    const written = readFileSync(join(root, "etc/kubernetes/kubepki/kubeadm-config.yaml"), "utf8");
    assert.match(written, /name: kubelet-certificate-authority\n\s+value: \/etc\/kubernetes\/pki\/ca.crt/);
    assert.match(written, /tlsCertFile: \/var\/lib\/kubelet\/pki\/kubelet.crt/);
    assert.match(written, /encryptionAlgorithm: ECDSA-P384/);
  });

  it("v1beta3: the PublicKeysECDSA gate chooses ECDSA, v1beta4-only fields are refused", () => {
    const v3 = `apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
featureGates:
  PublicKeysECDSA: false
`;
    const spec = resolveSpec([
      parseConfig(v3, "a.yaml"),
      { nodeName: { value: "n", where: "t" }, advertiseAddress: { value: "10.0.0.1", where: "t" } },
    ]);
    assert.equal(spec.algorithm, "RSA-2048");
    assert.throws(
      () =>
        parseConfig(
          `apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nencryptionAlgorithm: RSA-2048\n`,
          "b.yaml",
        ),
      /b.yaml:3 ClusterConfiguration.encryptionAlgorithm: unknown field/,
    );
  });

  it("refuses what kubeadm refuses, naming file, line and field", () => {
    const cases: [string, RegExp][] = [
      ["apiVersion: v1\nkind: Pod\n", /c.yaml:2 Pod.kind: unsupported document v1 Pod/],
      ["kind: ClusterConfiguration\n", /every document needs apiVersion and kind/],
      [
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: high\n",
        /c.yaml:4 InitConfiguration.localAPIEndpoint.bindPort: must be a number/,
      ],
      [
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: a\nclusterName: b\n",
        /c.yaml:4: invalid YAML/,
      ],
      [
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\netcd:\n  local: {}\n  external: {endpoints: []}\n",
        /c.yaml:\d+ ClusterConfiguration.etcd: local and external are exclusive/,
      ],
      [
        "apiVersion: kubepki.io/v1alpha1\nkind: KubepkiConfiguration\nnodes:\n  - addresses: [10.0.0.2]\n",
        /c.yaml:4 KubepkiConfiguration.nodes.0: a node needs a name/,
      ],
      ["- just\n- a list\n", /every document needs apiVersion and kind|must be a mapping/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseConfig(text, "c.yaml"), re, text);
  });

  it("external etcd: no etcd CA or etcd certificates are made", () => {
    const spec = resolveSpec([
      parseConfig(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\netcd:\n  external:\n    endpoints: [https://10.0.0.50:2379]\n",
        "e.yaml",
      ),
      { nodeName: { value: "n", where: "t" }, advertiseAddress: { value: "10.0.0.1", where: "t" } },
    ]);
    assert.equal(spec.externalEtcd, true);
  });
});

describe("the kubeadm configuration kubepki writes", () => {
  it("reads back: init --config with it keeps every file", async () => {
    const { initTree } = await import("./helpers.js");
    const { root, offline } = await initTree();
    const cfg = join(root, "etc/kubernetes/kubepki/kubeadm-config.yaml");
    const r = kubepki(["init", "--root", root, "--offline-dir", offline, "--config", cfg, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const actions = JSON.parse(r.stdout).artifacts.map((a: { action: string }) => a.action);
    assert.ok(
      actions.every((a: string) => a === "kept" || a === "written"),
      actions.join(","),
    );
  });
});
