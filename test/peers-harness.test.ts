import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { issueClient } from "../src/app/issue.js";
import { signWith } from "./fixtures.js";
import { PKI, tempDir } from "./helpers.js";
import {
  everyKubeconfig,
  frontProxyPair,
  kubeconfigClient,
  kubeconfigWithPair,
  kubeletThroughApiserver,
  pairProblems,
  probe,
  signingPairs,
  tokenWhoami,
  whoamiWithPair,
} from "./peers/checks.js";
import { type Apiserver, type Kubelet, startControlPlane } from "./peers/control-plane.js";
import { type EtcdCluster, startEtcdCluster } from "./peers/etcd-cluster.js";
import { EtcdLoad, putWith } from "./peers/etcd-load.js";
import { type KubeadmNode, kubeadmNode } from "./peers/kubeadm-node.js";
import { whoami } from "./peers/kubectl.js";
import { MANIFESTS } from "./peers/node-files.js";

/**
 * The real-peer harness of the rotation tests, against a tree made by today's `kubepki init` with
 * kubeadm's manifests: every check passes on a healthy node, and each one can fail (a foreign CA,
 * a wrong --kubelet-certificate-authority, a token from another key are refused).
 */

describe("peers: kube-apiserver and kubelet stand-ins configured from the node's files", () => {
  let node: KubeadmNode;
  let apiserver: Apiserver;
  let kubelet: Kubelet;
  let user: string;

  before(async () => {
    node = await kubeadmNode();
    ({ apiserver, kubelet } = await startControlPlane(node.root));
    user = join(tempDir(), "jane.kubeconfig");
    await issueClient({
      root: node.root,
      offlineDir: node.offline,
      user: "jane",
      groups: ["dev"],
      out: user,
    });
  });
  after(async () => {
    await apiserver?.stop();
    await kubelet?.stop();
  });

  it("the real kubectl gets an answer with every kubeconfig, as the certificate's user", async () => {
    const seen = await everyKubeconfig(node.root, apiserver.url, [user]);
    assert.equal(seen.length, 5);
    for (const s of seen) assert.equal(s.user, s.expected, `${s.file}: ${s.error}`);
    assert.deepEqual(
      seen.map((s) => s.user),
      [
        "kubernetes-admin",
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:node:cp1",
        "jane",
      ],
    );
  });

  it("reaches the kubelet with its kubelet client certificate, verifying the kubelet with --kubelet-certificate-authority", async () => {
    const r = await kubeletThroughApiserver(node.root, apiserver);
    assert.ok(r.ok, r.stderr);
    assert.deepEqual(r.call, { node: "cp1", path: "/healthz", verified: true, status: 200 });
    assert.equal(kubelet.callers.at(-1), "kube-apiserver-kubelet-client");
  });

  it("a client certificate of a foreign CA is refused at the handshake, and kubectl with it fails", async () => {
    const other = await signWith(node.root, `/${PKI}/front-proxy-ca`, {
      commonName: "mallory",
      organizations: ["system:masters"],
    });
    const before = apiserver.refusals().length;
    const p = await whoamiWithPair(node.root, apiserver, {
      cert: Buffer.from(other.crt),
      key: Buffer.from(other.key),
    });
    // front-proxy-ca is in the TLS pool (request header CA) but not an x509 client CA: 401, not masters.
    assert.equal(p.probe.status, 401);
    const foreign = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const self = await signWith(
      node.root,
      `/${PKI}/etcd/ca`,
      { commonName: "mallory", organizations: ["system:masters"] },
      foreign,
    );
    const q = await whoamiWithPair(node.root, apiserver, {
      cert: Buffer.from(self.crt),
      key: Buffer.from(self.key),
    });
    assert.equal(q.probe.answered, false, JSON.stringify(q.probe));
    assert.equal(apiserver.refusals().length, before + 1);
    assert.match(apiserver.refusals().at(-1)?.detail ?? "", /mallory/);
    const k = await whoami(kubeconfigWithPair(node.root, { cert: self.crt, key: self.key }), apiserver.url);
    assert.notEqual(k.ran.status, 0);
    assert.equal(k.user, undefined);
  });

  it("front proxy: the request-header CA's client with X-Remote-User is that user; without the header it is nobody", async () => {
    const pair = frontProxyPair(node.root);
    const a = await whoamiWithPair(node.root, apiserver, pair, {
      "X-Remote-User": "alice",
      "X-Remote-Group": "dev",
    });
    assert.equal(a.user, "alice", JSON.stringify(a.probe));
    const b = await whoamiWithPair(node.root, apiserver, pair);
    assert.equal(b.probe.status, 401);
    // A cluster-CA client cannot assert a user with the header: it stays itself.
    const admin = kubeconfigClient(join(node.root, "etc/kubernetes/admin.conf"));
    const c = await whoamiWithPair(node.root, apiserver, admin, { "X-Remote-User": "alice" });
    assert.equal(c.user, "kubernetes-admin");
  });

  it("service-account tokens: signed with sa.key accepted by kubectl --token; another key's refused", async () => {
    const ok = await tokenWhoami(node.root, apiserver.url, join(node.root, PKI, "sa.key"));
    assert.equal(ok.user, "system:serviceaccount:default:rotation-probe", ok.error);
    const k = join(tempDir(), "other-sa.key");
    writeFileSync(
      k,
      generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }),
    );
    const bad = await tokenWhoami(node.root, apiserver.url, k);
    assert.equal(bad.user, undefined);
    assert.match(bad.error ?? "", /Unauthorized|must be logged in/i);
  });

  it("re-reads the manifest on restart: a wrong --kubelet-certificate-authority makes the kubelet unreachable", async () => {
    const file = join(node.root, MANIFESTS, "kube-apiserver.yaml");
    const original = readFileSync(file, "utf8");
    try {
      writeFileSync(
        file,
        original.replace(
          "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
          "--kubelet-certificate-authority=/etc/kubernetes/pki/front-proxy-ca.crt",
        ),
      );
      await apiserver.restart();
      const r = await kubeletThroughApiserver(node.root, apiserver);
      assert.equal(r.ok, false);
      assert.match(r.call?.error ?? "", /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/);
    } finally {
      writeFileSync(file, original);
      await apiserver.restart();
    }
    assert.ok((await kubeletThroughApiserver(node.root, apiserver)).ok);
  });

  it("every file a signing or serving flag names holds one certificate matching its key", () => {
    const pairs = signingPairs(node.root);
    assert.equal(pairs.length, 8);
    assert.deepEqual(pairs.flatMap(pairProblems), []);
  });
});

describe("peers: a three-member etcd cluster from the node's etcd PKI", () => {
  let node: KubeadmNode;
  let etcd: EtcdCluster;
  before(async () => {
    node = await kubeadmNode();
    etcd = await startEtcdCluster(node.root);
  });
  after(async () => {
    await etcd?.stop();
  });

  it("survives a rolling restart under continuous writes and reads through all members with zero failed operations", async () => {
    const load = new EtcdLoad(node.root, etcd.endpoints);
    load.start();
    await new Promise((r) => setTimeout(r, 500));
    await etcd.rollingRestart();
    await new Promise((r) => setTimeout(r, 500));
    const s = await load.stop();
    assert.ok(s.ops > 20, `only ${s.ops} operations`);
    assert.deepEqual([s.failedOps, s.tls, s.other, s.mismatches], [0, [], [], 0]);
    assert.ok(s.retries > 0, "a restart must have been noticed (a retried reset or refusal)");
    assert.deepEqual(etcd.tlsRejections(), []);
    assert.deepEqual(
      etcd.members.map((m) => m.starts),
      [2, 2, 2],
    );
  });

  it("counts a TLS failure under load as a failed operation, not a retry (the client restarted trusting the wrong CA)", async () => {
    const file = join(node.root, MANIFESTS, "kube-apiserver.yaml");
    const original = readFileSync(file, "utf8");
    try {
      writeFileSync(
        file,
        original.replace(
          "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
          "--etcd-cafile=/etc/kubernetes/pki/ca.crt",
        ),
      );
      const load = new EtcdLoad(node.root, etcd.endpoints);
      load.start();
      await new Promise((r) => setTimeout(r, 300));
      const s = await load.stop();
      assert.equal(s.ops, 0);
      assert.ok(s.failedOps > 0 && s.tls.length === s.failedOps, JSON.stringify(s).slice(0, 500));
      assert.equal(s.retries, 0);
      assert.match(s.tls[0] ?? "", /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    } finally {
      writeFileSync(file, original);
    }
  });

  it("tells a TLS failure from a reset: a cluster-CA client certificate is refused as TLS", async () => {
    const pki = join(node.root, PKI);
    const r = await putWith(etcd.endpoints[0] ?? "", {
      ca: readFileSync(join(pki, "etcd/ca.crt")),
      cert: readFileSync(join(pki, "apiserver-kubelet-client.crt")),
      key: readFileSync(join(pki, "apiserver-kubelet-client.key")),
    });
    assert.equal(r.ok, false);
    assert.equal(r.ok === false && r.kind, "tls");
    const ok = await putWith(etcd.endpoints[1] ?? "", {
      ca: readFileSync(join(pki, "etcd/ca.crt")),
      cert: readFileSync(join(pki, "apiserver-etcd-client.crt")),
      key: readFileSync(join(pki, "apiserver-etcd-client.key")),
    });
    assert.deepEqual(ok, { ok: true });
    const p = await probe(`${etcd.endpoints[2]}/health`, { ca: readFileSync(join(pki, "ca.crt")) });
    assert.equal(p.answered, false);
    assert.match(p.error ?? "", /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });
});
