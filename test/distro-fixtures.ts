import { chownSync } from "node:fs";
import { join } from "node:path";
import { buildKubeconfig } from "../src/pki/kubeconfig.js";
import type { KeyAlgorithm } from "../src/x509/algorithms.js";
import { type ExtKeyUsageName, type IssuedCertificate, issueCertificate } from "../src/x509/certificate.js";
import { generateKeyPair, type KeyPair } from "../src/x509/keygen.js";
import { privateKeyToPem } from "../src/x509/keys.js";
import { put } from "./fixtures.js";
import { tempDir } from "./helpers.js";

const DAY = 86_400_000;

/** One certificate (and key) of a hand-laid distribution tree. */
export interface Item {
  /** Node path stem: "<stem>.crt" and "<stem>.key". */
  stem: string;
  cn: string;
  o?: string[];
  /** Stem of the CA that signs it; none for a CA. */
  signer?: string;
  eku?: ExtKeyUsageName[];
  dns?: string[];
  ips?: string[];
  days?: number;
  keyMode?: number;
  uid?: number;
  /** Write the leaf followed by its CA (k3s does). */
  chain?: boolean;
  alg?: KeyAlgorithm;
  /** Do not write the key (a CA kept elsewhere). */
  noKey?: boolean;
}

export interface Laid {
  root: string;
  certs: Map<string, IssuedCertificate & { keys: KeyPair }>;
}

export async function layTree(items: Item[]): Promise<Laid> {
  const root = join(tempDir("kubepki-distro-"), "node");
  const certs = new Map<string, IssuedCertificate & { keys: KeyPair }>();
  const now = Date.now();
  for (const it of items) {
    const keys = await generateKeyPair(it.alg ?? "ECDSA-P256");
    const signer = it.signer ? certs.get(it.signer) : undefined;
    if (it.signer && !signer) throw new Error(`sign ${it.stem}: ${it.signer} not laid yet`);
    const issued = await issueCertificate(
      {
        commonName: it.cn,
        organizations: it.o,
        isCA: !it.signer,
        keyUsage: it.signer
          ? ["digitalSignature", "keyEncipherment"]
          : ["digitalSignature", "keyEncipherment", "keyCertSign"],
        extKeyUsage: it.signer ? (it.eku ?? ["clientAuth"]) : [],
        dnsNames: it.dns,
        ipAddresses: it.ips,
        notBefore: new Date(now - DAY),
        notAfter: new Date(now + (it.days ?? (it.signer ? 365 : 3650)) * DAY),
      },
      keys.publicKey,
      signer
        ? { certificate: signer.cert, privateKey: signer.keys.privateKey }
        : { selfSigned: keys.privateKey },
    );
    certs.set(it.stem, { ...issued, keys });
    put(root, `${it.stem}.crt`, it.chain && signer ? issued.pem + signer.pem : issued.pem, 0o644);
    if (!it.noKey) put(root, `${it.stem}.key`, privateKeyToPem(keys.privateKey), it.keyMode ?? 0o600);
    if (it.uid !== undefined) {
      chownSync(join(root, `${it.stem}.crt`), it.uid, it.uid);
      if (!it.noKey) chownSync(join(root, `${it.stem}.key`), it.uid, it.uid);
    }
  }
  return { root, certs };
}

export function kubeconfigFor(
  laid: Laid,
  stem: string,
  caStem: string,
  server: string,
  user: string,
): string {
  const c = laid.certs.get(stem);
  const ca = laid.certs.get(caStem);
  if (!c || !ca) throw new Error(`kubeconfig: ${stem} or ${caStem} missing`);
  return buildKubeconfig({
    clusterName: "default",
    server,
    caPem: ca.pem,
    userName: user,
    clientCertPem: c.pem,
    clientKeyPem: privateKeyToPem(c.keys.privateKey),
  });
}

/** A k3s (or RKE2) server as docs/distributions.md ("k3s and RKE2") lays it out. */
export async function rancherServer(distro: "k3s" | "rke2"): Promise<Laid> {
  const t = `/var/lib/rancher/${distro}/server/tls`;
  const a = `/var/lib/rancher/${distro}/agent`;
  const laid = await layTree([
    { stem: `${t}/client-ca`, cn: `${distro}-client-ca@1760000000` },
    { stem: `${t}/server-ca`, cn: `${distro}-server-ca@1760000000` },
    { stem: `${t}/request-header-ca`, cn: `${distro}-request-header-ca@1760000000` },
    { stem: `${t}/etcd/server-ca`, cn: "etcd-server-ca@1760000000" },
    { stem: `${t}/etcd/peer-ca`, cn: "etcd-peer-ca@1760000000" },
    {
      stem: `${t}/serving-kube-apiserver`,
      cn: "kube-apiserver",
      signer: `${t}/server-ca`,
      eku: ["serverAuth"],
      dns: ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"],
      ips: ["127.0.0.1", "10.43.0.1"],
      chain: true,
    },
    {
      stem: `${t}/client-kube-apiserver`,
      cn: "system:apiserver",
      o: ["system:masters"],
      signer: `${t}/client-ca`,
      chain: true,
    },
    {
      stem: `${t}/client-admin`,
      cn: "system:admin",
      o: ["system:masters"],
      signer: `${t}/client-ca`,
      chain: true,
    },
    {
      stem: `${t}/client-auth-proxy`,
      cn: "system:auth-proxy",
      signer: `${t}/request-header-ca`,
      chain: true,
    },
    {
      stem: `${t}/etcd/server-client`,
      cn: "etcd-server",
      signer: `${t}/etcd/server-ca`,
      eku: ["serverAuth", "clientAuth"],
      dns: ["localhost"],
      ips: ["127.0.0.1"],
      chain: true,
    },
    { stem: `${t}/etcd/client`, cn: "etcd-client", signer: `${t}/etcd/server-ca`, chain: true },
    {
      stem: `${a}/serving-kubelet`,
      cn: "node1",
      signer: `${t}/server-ca`,
      eku: ["serverAuth"],
      dns: ["node1", "localhost"],
      ips: ["10.0.0.20"],
      chain: true,
    },
    {
      stem: `${a}/client-kubelet`,
      cn: "system:node:node1",
      o: ["system:nodes"],
      signer: `${t}/client-ca`,
      chain: true,
    },
  ]);
  put(laid.root, `${t}/service.key`, privateKeyToPem((await generateKeyPair("RSA-2048")).privateKey));
  put(
    laid.root,
    `/etc/rancher/${distro}/${distro}.yaml`,
    kubeconfigFor(laid, `${t}/client-admin`, `${t}/server-ca`, "https://127.0.0.1:6443", "default"),
  );
  put(
    laid.root,
    `/var/lib/rancher/${distro}/server/cred/admin.kubeconfig`,
    kubeconfigFor(laid, `${t}/client-admin`, `${t}/server-ca`, "https://127.0.0.1:6443", "default"),
  );
  return laid;
}

/** MicroK8s (distributions.md 3.4): RSA keys 0660, 10-year component certificates, embedded credentials. */
export async function microk8sNode(): Promise<Laid> {
  const c = "/var/snap/microk8s/current/certs";
  const laid = await layTree([
    { stem: `${c}/ca`, cn: "10.152.183.1", keyMode: 0o660, alg: "RSA-2048" },
    { stem: `${c}/front-proxy-ca`, cn: "front-proxy-ca", keyMode: 0o660, alg: "RSA-2048" },
    {
      stem: `${c}/server`,
      cn: "127.0.0.1",
      signer: `${c}/ca`,
      eku: ["serverAuth", "clientAuth"],
      dns: ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"],
      ips: ["127.0.0.1", "10.152.183.1"],
      keyMode: 0o660,
      alg: "RSA-2048",
    },
    {
      stem: `${c}/front-proxy-client`,
      cn: "front-proxy-client",
      signer: `${c}/front-proxy-ca`,
      keyMode: 0o660,
      alg: "RSA-2048",
    },
    {
      stem: `${c}/client`,
      cn: "admin",
      o: ["system:masters"],
      signer: `${c}/ca`,
      days: 3650,
      keyMode: 0o660,
      alg: "RSA-2048",
    },
    {
      stem: `${c}/kubelet`,
      cn: "system:node:node1",
      o: ["system:nodes"],
      signer: `${c}/ca`,
      eku: ["serverAuth", "clientAuth"],
      dns: ["node1"],
      days: 3650,
      keyMode: 0o660,
      alg: "RSA-2048",
    },
  ]);
  put(
    laid.root,
    `${c}/serviceaccount.key`,
    privateKeyToPem((await generateKeyPair("RSA-2048")).privateKey),
    0o660,
  );
  put(
    laid.root,
    "/var/snap/microk8s/current/credentials/client.config",
    kubeconfigFor(laid, `${c}/client`, `${c}/ca`, "https://127.0.0.1:16443", "admin"),
    0o660,
  );
  put(
    laid.root,
    "/var/snap/microk8s/current/args/kubelet",
    `--cert-dir=\${SNAP_DATA}/certs\n--client-ca-file=\${SNAP_DATA}/certs/ca.crt\n--anonymous-auth=false\n`,
    0o660,
  );
  put(
    laid.root,
    "/var/snap/microk8s/current/args/kube-apiserver",
    // MicroK8s' own variable syntax, expanded by the reader, not by JavaScript.
    ["--client-ca-file=$", "{SNAP_DATA}/certs/ca.crt\n"].join(""),
    0o660,
  );
  return laid;
}

/** k0s (distributions.md 3.5): keys 0640 owned by the component user. */
export async function k0sNode(): Promise<Laid> {
  const p = "/var/lib/k0s/pki";
  const laid = await layTree([
    { stem: `${p}/ca`, cn: "kubernetes-ca", keyMode: 0o640, uid: 999, alg: "RSA-2048" },
    {
      stem: `${p}/front-proxy-ca`,
      cn: "kubernetes-front-proxy-ca",
      keyMode: 0o640,
      uid: 999,
      alg: "RSA-2048",
    },
    { stem: `${p}/etcd/ca`, cn: "etcd-ca", keyMode: 0o640, uid: 998, alg: "RSA-2048" },
    {
      stem: `${p}/server`,
      cn: "kubernetes",
      signer: `${p}/ca`,
      eku: ["serverAuth"],
      dns: ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"],
      ips: ["127.0.0.1"],
      keyMode: 0o640,
      uid: 997,
      alg: "RSA-2048",
    },
    {
      stem: `${p}/admin`,
      cn: "kube-admin",
      o: ["system:masters"],
      signer: `${p}/ca`,
      keyMode: 0o640,
      alg: "RSA-2048",
    },
    {
      stem: `${p}/etcd/server`,
      cn: "etcd-server",
      signer: `${p}/etcd/ca`,
      eku: ["serverAuth", "clientAuth"],
      dns: ["localhost"],
      ips: ["127.0.0.1"],
      keyMode: 0o640,
      uid: 998,
      alg: "RSA-2048",
    },
  ]);
  put(laid.root, `${p}/sa.key`, privateKeyToPem((await generateKeyPair("RSA-2048")).privateKey), 0o640);
  put(
    laid.root,
    `${p}/admin.conf`,
    kubeconfigFor(laid, `${p}/admin`, `${p}/ca`, "https://localhost:6443", "admin"),
    0o600,
  );
  put(laid.root, "/etc/k0s/k0s.yaml", "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n", 0o600);
  return laid;
}
