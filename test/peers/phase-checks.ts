import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { issueClient } from "../../src/app/issue.js";
import { signWith } from "../fixtures.js";
import { PKI, tempDir } from "../helpers.js";
import type { Client } from "../webhook-client.js";
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
  probe,
  signingPairs,
  tokenWhoami,
  whoamiAs,
  whoamiWithPair,
} from "./checks.js";
import { type Apiserver, type Kubelet, startControlPlane } from "./control-plane.js";
import { type EtcdCluster, startEtcdCluster } from "./etcd-cluster.js";
import { EtcdLoad, putWith } from "./etcd-load.js";
import { type KubeadmNode, kubeadmNode } from "./kubeadm-node.js";
import { whoami } from "./kubectl.js";
import { flag, inRoot, manifestFlags, readCerts, readPublicKeys } from "./node-files.js";
import { type Component, type Phase, type RotateRun, type RotationId, rotateCa } from "./rotate.js";
import { ServePeer, webhookClientOf } from "./serve-peer.js";

/**
 * A node with its real peers for the rotation tests, the old material saved before `trust`, and the
 * checks each phase must pass. Every check asserts; its messages say which file or credential failed.
 */

type Pair = { cert: Buffer; key: Buffer };
type User = "before" | "trust" | "sign";

export interface Old {
  etcdCa: string;
  etcdPair: Pair;
  clusterCa: string;
  masters: Pair;
  superAdmin: Pair;
  frontProxyCa: string;
  frontProxyPair: Pair;
  saKey: string;
}

export interface Rig {
  node: KubeadmNode;
  old: Old;
  users: Partial<Record<User, string>>;
  /** The real `kubepki serve`, and kube-apiserver's client of it as read at its last (re)start. */
  serve?: ServePeer;
  webhookClient?: Client;
  apiserver?: Apiserver;
  kubelet?: Kubelet;
  etcd?: EtcdCluster;
  load?: EtcdLoad;
}

/** The number of CA certificates (or SA keys) a trust file holds: both during trust and sign, the new one after drop. */
export const TRUST_COUNT: Record<Phase | "none", number> = { none: 1, trust: 2, sign: 2, drop: 1 };

const pem = (file: string) => readFileSync(file, "utf8");

export function fileWith(text: string | Buffer, name = "ca.crt"): string {
  const f = join(tempDir("kubepki-rotate-peers-"), name);
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

const certCount = (data: Buffer) => readCerts(fileWith(data)).length;

async function saveOld(root: string, offline: string): Promise<Old> {
  const p = (f: string) => join(root, PKI, f);
  const m = await signWith(root, `/${PKI}/ca`, { commonName: "mallory", organizations: ["system:masters"] });
  const saKey = fileWith(readFileSync(p("sa.key")), "old-sa.key");
  copyFileSync(p("sa.key"), saKey);
  return {
    etcdCa: pem(p("etcd/ca.crt")),
    etcdPair: {
      cert: readFileSync(p("etcd/healthcheck-client.crt")),
      key: readFileSync(p("etcd/healthcheck-client.key")),
    },
    clusterCa: pem(p("ca.crt")),
    // A system:masters certificate minted with the old CA key: nothing but the rotation can cut it off.
    masters: { cert: Buffer.from(m.crt), key: Buffer.from(m.key) },
    superAdmin: kubeconfigClient(join(offline, "super-admin.conf")),
    frontProxyCa: pem(p("front-proxy-ca.crt")),
    frontProxyPair: frontProxyPair(root),
    saKey,
  };
}

export async function makeRig(peers: {
  controlPlane?: boolean;
  etcd?: boolean;
  kubeletConfFiles?: boolean;
  webhook?: boolean;
}): Promise<Rig> {
  const node = await kubeadmNode({ kubeletConfFiles: peers.kubeletConfFiles });
  // The webhook's first start issues its pairs: before the old material is saved.
  const serve = peers.webhook ? new ServePeer(node.root) : undefined;
  await serve?.start();
  const rig: Rig = { node, old: await saveOld(node.root, node.offline), users: {}, serve };
  if (serve) rig.webhookClient = webhookClientOf(node.root);
  await issueUser(rig, "before");
  if (peers.controlPlane) Object.assign(rig, await startControlPlane(node.root));
  if (peers.etcd) {
    rig.etcd = await startEtcdCluster(node.root);
    rig.load = new EtcdLoad(node.root, rig.etcd.endpoints);
    rig.load.start();
  }
  return rig;
}

export async function stopRig(rig: Rig | undefined): Promise<void> {
  await rig?.serve?.stop();
  await rig?.load?.stop();
  await rig?.etcd?.stop();
  await rig?.apiserver?.stop();
  await rig?.kubelet?.stop();
}

async function issueUser(rig: Rig, when: User): Promise<void> {
  const out = join(tempDir(), `${when}.kubeconfig`);
  const { root, offline } = rig.node;
  await issueClient({ root, offlineDir: offline, user: `user-${when}`, groups: ["dev"], out });
  rig.users[when] = out;
}

const ran = (r: RotateRun) =>
  `exit ${r.status}\nstdout: ${r.stdout.slice(-1500)}\nstderr: ${r.stderr.slice(-1500)}`;

/** What the printed order must name for the stand-ins to see a phase's changes. */
const MUST_RESTART: Record<Exclude<RotationId, "all">, Component[]> = {
  "etcd-ca": ["etcd", "kube-apiserver"],
  ca: ["kube-apiserver", "kubelet"],
  "front-proxy-ca": ["kube-apiserver"],
  sa: ["kube-apiserver"],
};

/** Restarts the rig's peers in the printed order (etcd: one member at a time). */
export async function restartAsPrinted(rig: Rig, order: Component[]): Promise<void> {
  for (const c of order) {
    if (c === "etcd") await rig.etcd?.rollingRestart();
    if (c === "kube-apiserver") {
      await rig.apiserver?.restart();
      if (rig.serve) rig.webhookClient = webhookClientOf(rig.node.root);
      rig.load?.reload();
    }
    if (c === "kubelet") await rig.kubelet?.restart();
  }
}

/** Runs a phase with the CLI, asserts it succeeded and named the restarts it must, restarts as printed. */
export async function runPhase(rig: Rig, id: RotationId, phase: Phase): Promise<RotateRun> {
  const r = await rotateCa(rig.node.root, rig.node.offline, id, phase);
  assert.equal(r.status, 0, ran(r));
  const ids = id === "all" ? (Object.keys(MUST_RESTART) as (keyof typeof MUST_RESTART)[]) : [id];
  for (const c of ids.flatMap((i) => MUST_RESTART[i]))
    assert.ok(r.restart.includes(c), `${c} not in the printed order\n${ran(r)}`);
  await restartAsPrinted(rig, r.restart);
  return r;
}

/** etcd: bundle sizes, signers, openssl, no member refusing another, the old-CA client accepted until drop. */
export async function checkEtcd(rig: Rig, phase: Phase | "none"): Promise<void> {
  const { root } = rig.node;
  const f = manifestFlags(root, "etcd");
  const trust = inRoot(root, flag(f, "trusted-ca-file") ?? "");
  const apiTrust = inRoot(root, flag(manifestFlags(root, "kube-apiserver"), "etcd-cafile") ?? "");
  for (const t of [trust, inRoot(root, flag(f, "peer-trusted-ca-file") ?? ""), apiTrust])
    assert.equal(readCerts(t).length, TRUST_COUNT[phase], t);
  const before = phase === "none" || phase === "trust";
  assert.equal(
    pem(join(root, PKI, "etcd/ca.crt")) === rig.old.etcdCa,
    before,
    "etcd/ca.crt is the new CA from sign on",
  );
  const oldOnly = fileWith(rig.old.etcdCa);
  const leaves = ["etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client"];
  for (const l of leaves.map((n) => join(root, PKI, `${n}.crt`))) {
    assert.ok(opensslVerifies(trust, pem(l)).ok, `${l} against ${trust}`);
    assert.equal(opensslVerifies(oldOnly, pem(l)).ok, before, `${l} against the old etcd CA alone`);
  }
  assert.equal(
    opensslVerifies(trust, rig.old.etcdPair.cert).ok,
    phase !== "drop",
    "old client vs trust file",
  );
  if (!rig.etcd) return;
  assert.deepEqual(rig.etcd.tlsRejections(), [], "no member refused a peer or client for its certificate");
  const p = await putWith(rig.etcd.endpoints[0] ?? "", { ca: readFileSync(apiTrust), ...rig.old.etcdPair });
  if (phase === "drop") assert.equal(p.ok === false && p.kind, "tls", JSON.stringify(p));
  else assert.deepEqual(p, { ok: true });
}

/** The cluster CA: kubectl with every kubeconfig, the kubelet verified, files and openssl, old masters until drop. */
export async function checkCluster(rig: Rig, phase: Phase | "none"): Promise<void> {
  const { root } = rig.node;
  const api = rig.apiserver;
  if (phase === "trust" || phase === "sign") await issueUser(rig, phase);
  checkClusterFiles(rig, phase);
  if (!api) return;
  const seen = await everyKubeconfig(root, api.url, usersAt(rig, phase));
  for (const s of seen) assert.equal(s.user, s.expected, `${s.file}: ${s.error}`);
  if (phase === "sign" && rig.users.before) {
    // Not refreshed, the kubeconfig issued before trust knows the old CA only: kubectl refuses apiserver.crt.
    const stale = await whoamiAs(root, rig.users.before, api.url);
    assert.equal(
      stale.user,
      undefined,
      "a kubeconfig from before trust works at sign without its CA data refreshed",
    );
    assert.match(stale.error ?? "", /x509|certificate/, stale.error);
  }
  const k = await kubeletThroughApiserver(root, api);
  assert.ok(k.ok && k.call?.verified === true, JSON.stringify(k));
  if (phase !== "drop") {
    const m = await whoamiWithPair(root, api, rig.old.masters);
    assert.equal(m.user, "mallory", "the old-CA system:masters certificate works until drop");
  }
}

/**
 * The `issue client` users kubectl must work for: one issued before trust names only the old CA, so
 * from sign on (apiserver.crt is the new CA's) its holder needs the bundle as CA data (the Kubernetes
 * procedure's step 5: user kubeconfigs get old + new); at drop its certificate is refused (see
 * checkOldRefused). One issued after sign works to the end.
 */
function usersAt(rig: Rig, phase: Phase | "none"): string[] {
  const before = rig.users.before ?? "";
  if (phase === "none" || phase === "trust") return [before];
  if (phase === "sign")
    return [refreshedAsReadme(before, join(rig.node.root, PKI, "ca-trust.crt")), rig.users.sign ?? ""];
  return [rig.users.sign ?? ""];
}

/**
 * The README's remedy, run as shown: a copy of the kubeconfig gets the control plane's trust bundle
 * as its CA data with `kubectl config set-cluster NAME --certificate-authority BUNDLE --embed-certs`.
 */
export function refreshedAsReadme(file: string, bundle: string): string {
  const copy = fileWith(pem(file), "refreshed.kubeconfig");
  const name = parse(pem(file)).clusters[0].name as string;
  const args = [
    "--kubeconfig",
    copy,
    "config",
    "set-cluster",
    name,
    "--certificate-authority",
    bundle,
    "--embed-certs",
  ];
  const r = spawnSync("/usr/bin/kubectl", args, { encoding: "utf8" });
  assert.equal(r.status, 0, `kubectl config set-cluster: ${r.stderr}`);
  assert.equal(readCerts(fileWith(kubeconfigCa(copy))).length, 2, "the refreshed CA data is the bundle");
  return copy;
}

function checkClusterFiles(rig: Rig, phase: Phase | "none"): void {
  const { root } = rig.node;
  const api = manifestFlags(root, "kube-apiserver");
  const clientCa = inRoot(root, flag(api, "client-ca-file") ?? "");
  const kubeletCa = inRoot(root, flag(api, "kubelet-certificate-authority") ?? "");
  for (const t of [clientCa, kubeletCa]) assert.equal(readCerts(t).length, TRUST_COUNT[phase], t);
  assert.deepEqual(signingPairs(root).flatMap(pairProblems), []);
  const before = phase === "none" || phase === "trust";
  const signer = pem(join(root, PKI, "ca.crt"));
  assert.equal(signer === rig.old.clusterCa, before, "ca.crt is the new CA from sign on");
  const old = new X509Certificate(rig.old.clusterCa);
  const fresh = readCerts(clientCa).find((c) => c.fingerprint256 !== old.fingerprint256) ?? old;
  const [oldOnly, newOnly] = [fileWith(rig.old.clusterCa), fileWith(fresh.toString())];
  const serving = [join(root, PKI, "apiserver.crt"), join(root, "var/lib/kubelet/pki/kubelet.crt")];
  const leaves = [...serving, join(root, PKI, "apiserver-kubelet-client.crt")].map(pem);
  for (const kc of NODE_KUBECONFIGS.map((n) => join(root, `etc/kubernetes/${n}.conf`))) {
    const ca = kubeconfigCa(kc);
    assert.equal(certCount(ca), TRUST_COUNT[phase], `${kc}: certificate-authority-data`);
    assert.ok(
      opensslVerifies(fileWith(ca), pem(serving[0] ?? "")).ok,
      `apiserver.crt against ${kc}'s CA data`,
    );
    const cert = kubeconfigClient(kc, root).cert;
    assert.ok(opensslVerifies(clientCa, cert).ok, `${kc}'s client against --client-ca-file`);
    leaves.push(cert.toString());
  }
  assert.ok(
    opensslVerifies(kubeletCa, pem(serving[1] ?? "")).ok,
    "kubelet.crt against --kubelet-certificate-authority",
  );
  if (phase === "none") return;
  for (const [i, c] of leaves.entries()) {
    assert.equal(opensslVerifies(oldOnly, c).ok, before, `leaf ${i} against the old CA alone`);
    assert.equal(opensslVerifies(newOnly, c).ok, !before, `leaf ${i} against the new CA alone`);
  }
}

/** After drop: old-CA clients (masters minted with the old key, super-admin.conf, users) refused at the handshake. */
export async function checkOldRefused(rig: Rig): Promise<void> {
  const api = rig.apiserver;
  const kubelet = rig.kubelet;
  if (!api || !kubelet) throw new Error("checkOldRefused needs the control-plane stand-ins");
  const old = [
    { name: "mallory (system:masters)", ...rig.old.masters },
    { name: "super-admin.conf (system:masters)", ...rig.old.superAdmin },
    { name: "user-before", ...kubeconfigClient(rig.users.before ?? "") },
  ];
  const oldCa = new X509Certificate(rig.old.clusterCa);
  for (const o of old) {
    assert.ok(new X509Certificate(o.cert).verify(oldCa.publicKey), `${o.name} is the old CA's`);
    const before: number = api.refusals().length;
    const p = await whoamiWithPair(rig.node.root, api, o);
    assert.equal(p.probe.answered, false, `${o.name}: ${JSON.stringify(p.probe)}`);
    assert.equal(api.refusals().length, before + 1, o.name);
    const kc = await whoami(kubeconfigWithPair(rig.node.root, o), api.url);
    assert.equal(kc.user, undefined, `${o.name}: kubectl got in as ${kc.user}`);
    const k = await probe(`${kubelet.url}/pods`, {
      ca: readFileSync(join(rig.node.root, PKI, "ca.crt")),
      ...o,
    });
    assert.equal(k.answered, false, `${o.name} at the kubelet: ${JSON.stringify(k)}`);
  }
  const fresh = kubeconfigClient(join(rig.node.offline, "super-admin.conf"));
  const ok = await whoamiWithPair(rig.node.root, api, fresh);
  assert.equal(ok.user, "kubernetes-super-admin", "super-admin.conf re-signed by the new CA");
}

/** front-proxy-ca: the front proxy's user accepted; the old front-proxy client until drop; files and openssl. */
export async function checkFrontProxy(rig: Rig, phase: Phase | "none"): Promise<void> {
  const { root } = rig.node;
  const rh = inRoot(root, flag(manifestFlags(root, "kube-apiserver"), "requestheader-client-ca-file") ?? "");
  assert.equal(readCerts(rh).length, TRUST_COUNT[phase], rh);
  const client = pem(join(root, PKI, "front-proxy-client.crt"));
  assert.ok(opensslVerifies(rh, client).ok, "front-proxy-client.crt against --requestheader-client-ca-file");
  const before = phase === "none" || phase === "trust";
  assert.equal(
    opensslVerifies(fileWith(rig.old.frontProxyCa), client).ok,
    before,
    "front-proxy-client vs old CA",
  );
  assert.equal(opensslVerifies(rh, rig.old.frontProxyPair.cert).ok, phase !== "drop", "old client vs bundle");
  assert.deepEqual(signingPairs(root).flatMap(pairProblems), []);
  if (!rig.apiserver) return;
  const h = { "X-Remote-User": "alice", "X-Remote-Group": "dev" };
  const now = await whoamiWithPair(root, rig.apiserver, frontProxyPair(root), h);
  assert.equal(now.user, "alice", JSON.stringify(now.probe));
  const old = await whoamiWithPair(root, rig.apiserver, rig.old.frontProxyPair, h);
  if (phase === "drop")
    assert.equal(old.probe.answered, false, `old front proxy: ${JSON.stringify(old.probe)}`);
  else assert.equal(old.user, "alice", JSON.stringify(old.probe));
}

/** sa: the signing key's token accepted, the old key's until drop; one signing key, named alike by both flags. */
export async function checkSa(rig: Rig, phase: Phase | "none"): Promise<void> {
  const { root } = rig.node;
  const api = manifestFlags(root, "kube-apiserver");
  const signing = inRoot(root, flag(api, "service-account-signing-key-file") ?? "");
  const kcmKey = flag(manifestFlags(root, "kube-controller-manager"), "service-account-private-key-file");
  assert.equal(inRoot(root, kcmKey ?? ""), signing, "kube-controller-manager signs with the apiserver's key");
  const keys = (api.get("service-account-key-file") ?? []).flatMap((p) => readPublicKeys(inRoot(root, p)));
  assert.equal(keys.length, TRUST_COUNT[phase], "keys in --service-account-key-file");
  const before = phase === "none" || phase === "trust";
  assert.equal(
    readFileSync(signing).equals(readFileSync(rig.old.saKey)),
    before,
    "sa.key is new from sign on",
  );
  if (!rig.apiserver) return;
  const now = await tokenWhoami(root, rig.apiserver.url, signing);
  assert.equal(now.user, "system:serviceaccount:default:rotation-probe", now.error);
  const old = await tokenWhoami(root, rig.apiserver.url, rig.old.saKey);
  if (phase === "drop") assert.equal(old.user, undefined, "a token of the old key after drop");
  else assert.equal(old.user, "system:serviceaccount:default:rotation-probe", old.error);
}
