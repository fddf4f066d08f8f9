import { spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { peerDir } from "../helpers.js";
import { mintServiceAccountToken } from "./authn.js";
import type { Apiserver } from "./control-plane.js";
import { kubeconfigForRoot, kubectl, kubectlWithToken, whoami } from "./kubectl.js";
import { flag, inRoot, kubeletTls, manifestFlags, need, pemBlocks } from "./node-files.js";

/**
 * The checks a rotation must keep passing at every phase, each against the stand-ins and the real
 * kubectl, each returning what it saw (so a failing test says why).
 */

export const NODE_KUBECONFIGS = ["admin", "controller-manager", "scheduler", "kubelet"] as const;

/** The certificate-authority-data of a kubeconfig (its first cluster), decoded. */
export function kubeconfigCa(file: string): Buffer {
  const cfg = parse(readFileSync(file, "utf8"));
  const data = cfg?.clusters?.[0]?.cluster?.["certificate-authority-data"];
  if (!data) throw new Error(`${file}: no certificate-authority-data`);
  return Buffer.from(data, "base64");
}

/**
 * The client pair of a kubeconfig (its first user): embedded, or in the files it names (kubeadm's
 * kubelet.conf names /var/lib/kubelet/pki/kubelet-client-current.pem), read under `root`.
 */
export function kubeconfigClient(file: string, root?: string): { cert: Buffer; key: Buffer } {
  const u = parse(readFileSync(file, "utf8"))?.users?.[0]?.user;
  const cert = u?.["client-certificate-data"];
  const key = u?.["client-key-data"];
  if (cert && key) return { cert: Buffer.from(cert, "base64"), key: Buffer.from(key, "base64") };
  const [cf, kf] = [u?.["client-certificate"], u?.["client-key"]];
  if (root && typeof cf === "string" && typeof kf === "string")
    return { cert: readFileSync(join(root, cf)), key: readFileSync(join(root, kf)) };
  throw new Error(`${file}: no client pair`);
}

export interface WhoamiResult {
  file: string;
  expected: string;
  user?: string;
  error?: string;
}

/** kubectl auth whoami with a kubeconfig: the server must see the certificate's CN. */
export async function whoamiAs(root: string, file: string, server: string): Promise<WhoamiResult> {
  const cn = new X509Certificate(kubeconfigClient(file, root).cert).subject.match(/CN=([^\n]+)/)?.[1] ?? "?";
  const w = await whoami(kubeconfigForRoot(root, file), server);
  return { file, expected: cn, user: w.user, error: w.user ? undefined : w.ran.stderr.trim().slice(0, 400) };
}

/** whoami with each of the node's kubeconfigs plus `extra` (e.g. an `issue client` kubeconfig). */
export async function everyKubeconfig(
  root: string,
  server: string,
  extra: string[] = [],
): Promise<WhoamiResult[]> {
  const files = [...NODE_KUBECONFIGS.map((n) => join(root, `etc/kubernetes/${n}.conf`)), ...extra];
  const out: WhoamiResult[] = [];
  for (const f of files) out.push(await whoamiAs(root, f, server));
  return out;
}

/** kube-apiserver -> kubelet through the node proxy, with kubectl: the body and the call the apiserver made. */
export async function kubeletThroughApiserver(root: string, apiserver: Apiserver, node = "cp1") {
  const r = await kubectl(join(root, "etc/kubernetes/admin.conf"), apiserver.url, [
    "get",
    "--raw",
    `/api/v1/nodes/${node}/proxy/healthz`,
  ]);
  return {
    ok: r.status === 0 && r.stdout.trim() === "ok",
    stderr: r.stderr.trim(),
    call: apiserver.kubeletCalls.at(-1),
  };
}

/** A file with the admin kubeconfig's CA data (what a client of the apiserver trusts). */
export function adminCaFile(root: string): string {
  const f = join(peerDir("kubepki-ca-"), "ca.crt");
  writeFileSync(f, kubeconfigCa(join(root, "etc/kubernetes/admin.conf")));
  return f;
}

/** A service-account token signed with `keyFile`, presented with kubectl: the user seen, or the error. */
export async function tokenWhoami(root: string, server: string, keyFile: string) {
  const f = manifestFlags(root, "kube-apiserver");
  const issuer = need(f, "service-account-issuer", "kube-apiserver.yaml");
  const token = mintServiceAccountToken(keyFile, { namespace: "default", name: "rotation-probe", issuer });
  const r = await kubectlWithToken(adminCaFile(root), server, token, ["auth", "whoami", "-o", "json"]);
  const user = r.status === 0 ? JSON.parse(r.stdout)?.status?.userInfo?.username : undefined;
  return { user: user as string | undefined, error: user ? undefined : r.stderr.trim().slice(0, 400) };
}

export interface Probe {
  /** An HTTP answer arrived (any status); false: the connection was closed around the handshake. */
  answered: boolean;
  status?: number;
  body?: string;
  error?: string;
}

/** One HTTPS request with a client pair and headers, verifying the server with `ca`. */
export function probe(
  url: string,
  tls: { ca: Buffer; cert?: Buffer; key?: Buffer },
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Probe> {
  return new Promise((resolve) => {
    const r = request(
      url,
      { method: opts.method ?? "GET", ...tls, headers: opts.headers, agent: false, timeout: 5000 },
      (res) => {
        let body = "";
        res.on("data", (d) => {
          body += d;
        });
        res.on("end", () => resolve({ answered: true, status: res.statusCode, body }));
        res.on("error", (e) => resolve({ answered: false, error: e.message }));
      },
    );
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", (e: NodeJS.ErrnoException) =>
      resolve({ answered: false, error: `${e.code ?? ""} ${e.message}` }),
    );
    r.end(opts.body);
  });
}

const SSR = JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" });

/** A SelfSubjectReview through a client pair: the user name the apiserver saw (or the probe). */
export async function whoamiWithPair(
  root: string,
  apiserver: Apiserver,
  pair: { cert: Buffer; key: Buffer },
  headers: Record<string, string> = {},
): Promise<{ user?: string; probe: Probe }> {
  const ca = kubeconfigCa(join(root, "etc/kubernetes/admin.conf"));
  const p = await probe(
    `${apiserver.url}/apis/authentication.k8s.io/v1/selfsubjectreviews`,
    { ca, ...pair },
    { method: "POST", headers: { "content-type": "application/json", ...headers }, body: SSR },
  );
  const user = p.status === 201 ? JSON.parse(p.body ?? "{}")?.status?.userInfo?.username : undefined;
  return { user, probe: p };
}

/** The front proxy: kube-apiserver's own --proxy-client-cert-file pair with X-Remote-User. */
export function frontProxyPair(root: string): { cert: Buffer; key: Buffer } {
  const f = manifestFlags(root, "kube-apiserver");
  return {
    cert: readFileSync(inRoot(root, need(f, "proxy-client-cert-file", "kube-apiserver.yaml"))),
    key: readFileSync(inRoot(root, need(f, "proxy-client-key-file", "kube-apiserver.yaml"))),
  };
}

/** A cert/key pair of files that a component signs or serves with. */
export interface SigningPair {
  what: string;
  cert: string;
  key: string;
}

/** Every cert/key pair a flag names: the controller-manager's signer, serving and client pairs. */
export function signingPairs(root: string): SigningPair[] {
  const api = manifestFlags(root, "kube-apiserver");
  const etcd = manifestFlags(root, "etcd");
  const kcm = manifestFlags(root, "kube-controller-manager");
  const k = kubeletTls(root);
  const pair = (what: string, f: typeof api, c: string, key: string): SigningPair[] => {
    const cv = flag(f, c);
    const kv = flag(f, key);
    return cv && kv ? [{ what, cert: inRoot(root, cv), key: inRoot(root, kv) }] : [];
  };
  return [
    ...pair(
      "kube-controller-manager --cluster-signing-cert-file",
      kcm,
      "cluster-signing-cert-file",
      "cluster-signing-key-file",
    ),
    ...pair("kube-apiserver --tls-cert-file", api, "tls-cert-file", "tls-private-key-file"),
    ...pair(
      "kube-apiserver --kubelet-client-certificate",
      api,
      "kubelet-client-certificate",
      "kubelet-client-key",
    ),
    ...pair(
      "kube-apiserver --proxy-client-cert-file",
      api,
      "proxy-client-cert-file",
      "proxy-client-key-file",
    ),
    ...pair("kube-apiserver --etcd-certfile", api, "etcd-certfile", "etcd-keyfile"),
    ...pair("etcd --cert-file", etcd, "cert-file", "key-file"),
    ...pair("etcd --peer-cert-file", etcd, "peer-cert-file", "peer-key-file"),
    {
      what: "kubelet tlsCertFile",
      cert: inRoot(root, k.tlsCertFile),
      key: inRoot(root, k.tlsPrivateKeyFile),
    },
  ];
}

/** Problems of a pair: not exactly one certificate, or a key that is not the certificate's. */
export function pairProblems(p: SigningPair): string[] {
  const blocks = pemBlocks(readFileSync(p.cert, "utf8")).filter((b) => b.type === "CERTIFICATE");
  if (blocks.length !== 1) return [`${p.what}: ${p.cert} holds ${blocks.length} certificates`];
  const certKey = new X509Certificate(blocks[0]?.pem ?? "").publicKey.export({ type: "spki", format: "der" });
  const key = createPublicKey(createPrivateKey(readFileSync(p.key))).export({ type: "spki", format: "der" });
  return certKey.equals(key) ? [] : [`${p.what}: ${p.key} is not the key of ${p.cert}`];
}

/** `openssl verify -CAfile ca cert` (a bundle of roots): true when the chain verifies. */
export function opensslVerifies(caFile: string, certPem: string | Buffer): { ok: boolean; out: string } {
  const f = join(peerDir("kubepki-verify-"), "leaf.crt");
  writeFileSync(f, certPem);
  const r = spawnSync("openssl", ["verify", "-CAfile", caFile, f], { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

/** A copy of admin.conf with another client pair embedded (a credential to try with kubectl). */
export function kubeconfigWithPair(
  root: string,
  pair: { cert: string | Buffer; key: string | Buffer },
): string {
  const cfg = parse(readFileSync(join(root, "etc/kubernetes/admin.conf"), "utf8"));
  const user = cfg.users[0].user;
  user["client-certificate-data"] = Buffer.from(pair.cert).toString("base64");
  user["client-key-data"] = Buffer.from(pair.key).toString("base64");
  const f = join(peerDir("kubepki-kubeconfig-"), "config");
  writeFileSync(f, stringify(cfg), { mode: 0o600 });
  return f;
}
