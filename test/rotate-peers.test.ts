import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { issueClient } from "../src/app/issue.js";
import { signWith } from "./fixtures.js";
import { CLI, PKI, tempDir } from "./helpers.js";
import {
  everyKubeconfig,
  frontProxyPair,
  kubeconfigCa,
  kubeconfigClient,
  kubeconfigWithPair,
  kubeletThroughApiserver,
  NODE_KUBECONFIGS,
  opensslVerifies,
  pairProblems,
  signingPairs,
  tokenWhoami,
  whoamiWithPair,
} from "./peers/checks.js";
import { type Apiserver, type Kubelet, startControlPlane } from "./peers/control-plane.js";
import { type EtcdCluster, startEtcdCluster } from "./peers/etcd-cluster.js";
import { EtcdLoad, putWith } from "./peers/etcd-load.js";
import { type KubeadmNode, kubeadmNode } from "./peers/kubeadm-node.js";
import { whoami } from "./peers/kubectl.js";
import { flag, inRoot, manifestFlags, readCerts, readPublicKeys } from "./peers/node-files.js";
import { PHASES, type Phase, type RotateRun, rotateCa } from "./peers/rotate.js";

/**
 * Issue 12's acceptance with real peers: `kubepki rotate-ca` (the built CLI) takes each CA of a node
 * through trust, sign and drop; after each phase the peers restart as the printed order says and
 * are configured from the node's files as the phase left them. Run alone (it starts etcd members):
 * `node --import tsx --test test/rotate-peers.test.ts` after `npm run build`.
 */

/** Until the engine is merged, the built CLI has no rotate-ca: the suites say so and skip. */
const engine = spawnSync(process.execPath, [CLI, "rotate-ca", "--help"], { encoding: "utf8" });
const skip =
  engine.status === 0 && engine.stdout.includes("rotate-ca")
    ? false
    : "the built CLI has no `rotate-ca` (npm run build with the engine merged)";

const phaseRan = (r: RotateRun) =>
  `exit ${r.status}\nstdout: ${r.stdout.slice(-1500)}\nstderr: ${r.stderr.slice(-1500)}`;

function pem(file: string): string {
  return readFileSync(file, "utf8");
}

/** A file holding one PEM text (a CA to verify against alone). */
function fileWith(text: string | Buffer, name = "ca.crt"): string {
  const f = join(tempDir("kubepki-rotate-peers-"), name);
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

const sameCert = (a: string | Buffer, b: X509Certificate) =>
  new X509Certificate(a).fingerprint256 === b.fingerprint256;

/** The number of CA certificates a trust file holds, for each phase: both during trust and sign, the new one after drop. */
const TRUST_COUNT: Record<Phase, number> = { trust: 2, sign: 2, drop: 1 };

describe("rotate-ca etcd-ca: a three-member etcd cluster under continuous load, rolling restart after each phase", {
  skip,
}, () => {
  let node: KubeadmNode;
  let etcd: EtcdCluster;
  let load: EtcdLoad;
  let oldCa: string;
  let oldPair: { cert: Buffer; key: Buffer };
  const etcdPki = () => join(node.root, PKI, "etcd");

  before(async () => {
    node = await kubeadmNode();
    oldCa = pem(join(etcdPki(), "ca.crt"));
    oldPair = {
      cert: readFileSync(join(etcdPki(), "healthcheck-client.crt")),
      key: readFileSync(join(etcdPki(), "healthcheck-client.key")),
    };
    etcd = await startEtcdCluster(node.root);
    load = new EtcdLoad(node.root, etcd.endpoints);
    load.start();
  });
  after(async () => {
    await load?.stop();
    await etcd?.stop();
  });

  for (const phase of PHASES)
    it(`${phase}: members restart one at a time, the old-CA client is ${phase === "drop" ? "refused" : "accepted"}, pairs and openssl agree`, async (t) => {
      const r = await rotateCa(node.root, node.offline, "etcd-ca", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      assert.equal(r.status, 0, phaseRan(r));
      assert.ok(r.restart.includes("etcd") && r.restart.includes("kube-apiserver"), phaseRan(r));
      for (const c of r.restart) {
        if (c === "etcd") await etcd.rollingRestart();
        if (c === "kube-apiserver") load.reload();
      }
      const f = manifestFlags(node.root, "etcd");
      const trust = inRoot(node.root, flag(f, "trusted-ca-file") ?? "");
      const peerTrust = inRoot(node.root, flag(f, "peer-trusted-ca-file") ?? "");
      const apiTrust = inRoot(
        node.root,
        flag(manifestFlags(node.root, "kube-apiserver"), "etcd-cafile") ?? "",
      );
      for (const t of [trust, peerTrust, apiTrust]) assert.equal(readCerts(t).length, TRUST_COUNT[phase], t);
      assert.deepEqual(signingPairs(node.root).flatMap(pairProblems), []);
      const caNow = pem(join(etcdPki(), "ca.crt"));
      assert.equal(caNow === oldCa, phase === "trust", "etcd/ca.crt is the new CA from sign on");
      const leaves = ["server", "peer", "healthcheck-client"].map((n) => join(etcdPki(), `${n}.crt`));
      leaves.push(join(node.root, PKI, "apiserver-etcd-client.crt"));
      for (const leaf of leaves) {
        assert.ok(opensslVerifies(trust, pem(leaf)).ok, `${leaf} against ${trust}`);
        assert.equal(
          opensslVerifies(fileWith(oldCa), pem(leaf)).ok,
          phase === "trust",
          `${leaf} against the old CA`,
        );
      }
      assert.equal(
        opensslVerifies(trust, oldPair.cert).ok,
        phase !== "drop",
        "the old client against the trust file",
      );
      assert.deepEqual(etcd.tlsRejections(), [], "no member refused a peer or client for its certificate");
      const probe = await putWith(etcd.endpoints[0] ?? "", { ca: readFileSync(apiTrust), ...oldPair });
      if (phase === "drop") assert.deepEqual(probe.ok === false && probe.kind, "tls", JSON.stringify(probe));
      else assert.deepEqual(probe, { ok: true });
    });

  it("zero failed operations over the whole rotation (resets retried on another member are allowed)", async (t) => {
    const s = await load.stop();
    t.diagnostic(
      `etcd load: ${s.ops} operations (put + read), ${s.retries} retries on another member, ${s.failedOps} failed`,
    );
    assert.ok(s.ops > 50, `only ${s.ops} operations`);
    assert.deepEqual(
      { failed: s.failedOps, tls: s.tls, other: s.other, mismatches: s.mismatches },
      {
        failed: 0,
        tls: [],
        other: [],
        mismatches: 0,
      },
    );
    assert.deepEqual(
      etcd.members.map((m) => m.starts),
      [4, 4, 4],
      "each member restarted after each phase",
    );
  });
});

describe("rotate-ca ca: kubectl with every kubeconfig and the apiserver's kubelet client at every phase", {
  skip,
}, () => {
  let node: KubeadmNode;
  let apiserver: Apiserver;
  let kubelet: Kubelet;
  let oldCa: string;
  const users: Partial<Record<"before" | "trust" | "sign", string>> = {};
  let masters: { cert: Buffer; key: Buffer };
  let superAdmin: { cert: Buffer; key: Buffer };
  let trustUserAtSign: Awaited<ReturnType<typeof whoami>> | undefined;
  const pki = () => join(node.root, PKI);
  const issueAs = async (when: "before" | "trust" | "sign") => {
    const out = join(tempDir(), `${when}.kubeconfig`);
    await issueClient({
      root: node.root,
      offlineDir: node.offline,
      user: `user-${when}`,
      groups: ["dev"],
      out,
    });
    users[when] = out;
  };

  before(async () => {
    node = await kubeadmNode();
    oldCa = pem(join(pki(), "ca.crt"));
    ({ apiserver, kubelet } = await startControlPlane(node.root));
    await issueAs("before");
    // A system:masters certificate minted with the old CA key: nothing but the rotation can cut it off.
    const m = await signWith(node.root, `/${PKI}/ca`, {
      commonName: "mallory",
      organizations: ["system:masters"],
    });
    masters = { cert: Buffer.from(m.crt), key: Buffer.from(m.key) };
    superAdmin = kubeconfigClient(join(node.offline, "super-admin.conf"));
  });
  after(async () => {
    await apiserver?.stop();
    await kubelet?.stop();
  });

  for (const phase of PHASES)
    it(`${phase}: the printed restarts, then kubectl with each kubeconfig, the kubelet verified, one-certificate signing files, openssl`, async (t) => {
      const r = await rotateCa(node.root, node.offline, "ca", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      assert.equal(r.status, 0, phaseRan(r));
      assert.ok(r.restart.includes("kube-apiserver") && r.restart.includes("kubelet"), phaseRan(r));
      for (const c of r.restart) {
        if (c === "kube-apiserver") await apiserver.restart();
        if (c === "kubelet") await kubelet.restart();
      }
      if (phase !== "drop") await issueAs(phase);
      // A user's kubeconfig from before trust names only the old CA: from sign on (apiserver.crt is the
      // new CA's) its holder needs the bundle as CA data, as the Kubernetes procedure says (step 5).
      const before = users.before ?? "";
      const refreshed = kubeconfigWithCa(before, kubeconfigCa(join(node.root, "etc/kubernetes/admin.conf")));
      const extra = { trust: [before], sign: [refreshed, users.sign ?? ""], drop: [users.sign ?? ""] }[phase];
      const seen = await everyKubeconfig(node.root, apiserver.url, extra);
      for (const s of seen) assert.equal(s.user, s.expected, `${s.file}: ${s.error}`);
      const k = await kubeletThroughApiserver(node.root, apiserver);
      assert.ok(k.ok && k.call?.verified === true, JSON.stringify(k));
      assert.deepEqual(signingPairs(node.root).flatMap(pairProblems), []);
      checkClusterCaFiles(node.root, phase, oldCa);
      const m = await whoamiWithPair(node.root, apiserver, masters);
      if (phase !== "drop")
        assert.equal(m.user, "mallory", "the old-CA system:masters certificate until drop");
      if (phase === "sign") trustUserAtSign = await whoami(users.trust ?? "", apiserver.url);
    });

  it("a user kubeconfig issued after trust works after sign (its CA data holds the new CA)", {
    todo: "engine gap: `issue client` embeds ca.crt alone (the old CA during trust), not ca-trust.crt",
  }, () => {
    assert.equal(readCertsOf(kubeconfigCa(users.trust ?? "")), 2, "the bundle as CA data");
    assert.equal(trustUserAtSign?.user, "user-trust", trustUserAtSign?.ran.stderr);
  });

  it("after drop, old-CA client certificates (system:masters minted with the old key, super-admin.conf, an issued user) are refused at the handshake", async () => {
    const old = [
      { name: "mallory (system:masters)", ...masters },
      { name: "super-admin.conf (system:masters)", ...superAdmin },
      { name: "user-before", ...kubeconfigClient(users.before ?? "") },
      { name: "user-trust", ...kubeconfigClient(users.trust ?? "") },
    ];
    for (const o of old) {
      assert.ok(
        new X509Certificate(o.cert).verify(new X509Certificate(oldCa).publicKey),
        `${o.name} is the old CA's`,
      );
      const before = apiserver.refusals().length;
      const p = await whoamiWithPair(node.root, apiserver, o);
      assert.equal(p.probe.answered, false, `${o.name}: ${JSON.stringify(p.probe)}`);
      assert.equal(apiserver.refusals().length, before + 1, o.name);
      const kc = await whoami(kubeconfigWithPair(node.root, o), apiserver.url);
      assert.equal(kc.user, undefined, `${o.name}: kubectl got in as ${kc.user}`);
    }
    const fresh = kubeconfigClient(join(node.offline, "super-admin.conf"));
    const ok = await whoamiWithPair(node.root, apiserver, fresh);
    assert.equal(ok.user, "kubernetes-super-admin", "super-admin.conf re-signed by the new CA");
  });
});

/** A copy of a kubeconfig with other CA data. */
function kubeconfigWithCa(file: string, ca: Buffer): string {
  const cfg = parse(readFileSync(file, "utf8"));
  cfg.clusters[0].cluster["certificate-authority-data"] = ca.toString("base64");
  const out = fileWith(stringify(cfg), "refreshed.kubeconfig");
  return out;
}

/** The cluster CA's files at a phase: bundle sizes, who signed what, `openssl verify` against each trust file. */
function checkClusterCaFiles(root: string, phase: Phase, oldCa: string): void {
  const api = manifestFlags(root, "kube-apiserver");
  const clientCa = inRoot(root, flag(api, "client-ca-file") ?? "");
  const kubeletCa = inRoot(root, flag(api, "kubelet-certificate-authority") ?? "");
  assert.equal(readCerts(clientCa).length, TRUST_COUNT[phase], clientCa);
  assert.equal(readCerts(kubeletCa).length, TRUST_COUNT[phase], kubeletCa);
  const signer = pem(join(root, PKI, "ca.crt"));
  assert.equal(signer === oldCa, phase === "trust", "ca.crt is the new CA from sign on");
  const old = new X509Certificate(oldCa);
  const fresh = readCerts(clientCa).find((c) => c.fingerprint256 !== old.fingerprint256);
  assert.ok(fresh, "the trust file holds a CA other than the old one");
  const oldOnly = fileWith(oldCa);
  const newOnly = fileWith(fresh.toString());
  const kubeconfigs = NODE_KUBECONFIGS.map((n) => join(root, `etc/kubernetes/${n}.conf`));
  const serving = [join(root, PKI, "apiserver.crt"), join(root, "var/lib/kubelet/pki/kubelet.crt")];
  const leaves = [...serving, join(root, PKI, "apiserver-kubelet-client.crt")].map(pem);
  for (const kc of kubeconfigs) {
    const ca = kubeconfigCa(kc);
    assert.equal(readCertsOf(ca), TRUST_COUNT[phase], `${kc}: certificate-authority-data`);
    assert.ok(
      opensslVerifies(fileWith(ca), pem(serving[0] ?? "")).ok,
      `apiserver.crt against ${kc}'s CA data`,
    );
    const cert = kubeconfigClient(kc).cert;
    assert.ok(opensslVerifies(clientCa, cert).ok, `${kc}'s client against --client-ca-file`);
    leaves.push(cert.toString());
  }
  assert.ok(
    opensslVerifies(kubeletCa, pem(serving[1] ?? "")).ok,
    "kubelet.crt against --kubelet-certificate-authority",
  );
  for (const [i, c] of leaves.entries()) {
    assert.equal(opensslVerifies(oldOnly, c).ok, phase === "trust", `leaf ${i} against the old CA alone`);
    assert.equal(opensslVerifies(newOnly, c).ok, phase !== "trust", `leaf ${i} against the new CA alone`);
  }
  if (phase !== "trust") assert.ok(sameCert(signer, fresh), "ca.crt is the CA the bundle added");
}

function readCertsOf(data: Buffer): number {
  return readCerts(fileWith(data)).length;
}

describe("rotate-ca front-proxy-ca: the request-header client CA at every phase", { skip }, () => {
  let node: KubeadmNode;
  let apiserver: Apiserver;
  let kubelet: Kubelet;
  let oldPair: { cert: Buffer; key: Buffer };
  let oldCa: string;

  before(async () => {
    node = await kubeadmNode();
    oldCa = pem(join(node.root, PKI, "front-proxy-ca.crt"));
    oldPair = frontProxyPair(node.root);
    ({ apiserver, kubelet } = await startControlPlane(node.root));
  });
  after(async () => {
    await apiserver?.stop();
    await kubelet?.stop();
  });

  for (const phase of PHASES)
    it(`${phase}: the front proxy's user is accepted; the old front-proxy client ${phase === "drop" ? "is refused" : "still works"}`, async (t) => {
      const r = await rotateCa(node.root, node.offline, "front-proxy-ca", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      assert.equal(r.status, 0, phaseRan(r));
      assert.ok(r.restart.includes("kube-apiserver"), phaseRan(r));
      for (const c of r.restart) if (c === "kube-apiserver") await apiserver.restart();
      const h = { "X-Remote-User": "alice", "X-Remote-Group": "dev" };
      const now = await whoamiWithPair(node.root, apiserver, frontProxyPair(node.root), h);
      assert.equal(now.user, "alice", JSON.stringify(now.probe));
      const old = await whoamiWithPair(node.root, apiserver, oldPair, h);
      if (phase === "drop") assert.equal(old.probe.answered, false, JSON.stringify(old.probe));
      else assert.equal(old.user, "alice", JSON.stringify(old.probe));
      const rh = inRoot(
        node.root,
        flag(manifestFlags(node.root, "kube-apiserver"), "requestheader-client-ca-file") ?? "",
      );
      assert.equal(readCerts(rh).length, TRUST_COUNT[phase], rh);
      assert.deepEqual(signingPairs(node.root).flatMap(pairProblems), []);
      const client = pem(join(node.root, PKI, "front-proxy-client.crt"));
      assert.ok(
        opensslVerifies(rh, client).ok,
        "front-proxy-client.crt against --requestheader-client-ca-file",
      );
      assert.equal(opensslVerifies(fileWith(oldCa), client).ok, phase === "trust");
      assert.equal(
        opensslVerifies(rh, oldPair.cert).ok,
        phase !== "drop",
        "the old client against the bundle",
      );
      const admin = await everyKubeconfig(node.root, apiserver.url);
      for (const s of admin) assert.equal(s.user, s.expected, `${s.file}: ${s.error}`);
    });
});

describe("rotate-ca sa: service-account tokens at every phase", { skip }, () => {
  let node: KubeadmNode;
  let apiserver: Apiserver;
  let kubelet: Kubelet;
  let oldKey: string;

  before(async () => {
    node = await kubeadmNode();
    oldKey = join(tempDir(), "old-sa.key");
    copyFileSync(join(node.root, PKI, "sa.key"), oldKey);
    ({ apiserver, kubelet } = await startControlPlane(node.root));
  });
  after(async () => {
    await apiserver?.stop();
    await kubelet?.stop();
  });

  for (const phase of PHASES)
    it(`${phase}: a token of the signing key is accepted; one of the old key ${phase === "drop" ? "is refused" : "still is"}`, async (t) => {
      const r = await rotateCa(node.root, node.offline, "sa", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      assert.equal(r.status, 0, phaseRan(r));
      assert.ok(r.restart.includes("kube-apiserver"), phaseRan(r));
      for (const c of r.restart) if (c === "kube-apiserver") await apiserver.restart();
      const api = manifestFlags(node.root, "kube-apiserver");
      const signing = inRoot(node.root, flag(api, "service-account-signing-key-file") ?? "");
      const verifyKeys = (api.get("service-account-key-file") ?? []).flatMap((p) =>
        readPublicKeys(inRoot(node.root, p)),
      );
      assert.equal(verifyKeys.length, TRUST_COUNT[phase], "keys in --service-account-key-file");
      assert.equal(
        readFileSync(signing).equals(readFileSync(oldKey)),
        phase === "trust",
        "sa.key is new from sign on",
      );
      const now = await tokenWhoami(node.root, apiserver.url, signing);
      assert.equal(now.user, "system:serviceaccount:default:rotation-probe", now.error);
      const old = await tokenWhoami(node.root, apiserver.url, oldKey);
      if (phase === "drop") assert.equal(old.user, undefined, "a token of the old key after drop");
      else assert.equal(old.user, "system:serviceaccount:default:rotation-probe", old.error);
      assert.deepEqual(signingPairs(node.root).flatMap(pairProblems), []);
    });
});
