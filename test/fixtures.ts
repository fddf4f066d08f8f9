import { spawnSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { type CertificateTemplate, issueCertificate } from "../src/x509/certificate.js";
import { generateKeyPair } from "../src/x509/keygen.js";
import { parsePrivateKeyPem, privateKeyToPem } from "../src/x509/keys.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { buildTree, PKI, tempDir } from "./helpers.js";

const P = "/etc/kubernetes/pki";
const DAY = 86_400_000;

export function put(root: string, nodePath: string, data: string | Buffer, mode = 0o600): void {
  const p = join(root, nodePath);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
  chmodSync(p, mode);
}

export function copyTree(src: string): string {
  const dst = join(tempDir("kubepki-fixture-"), "node");
  const r = spawnSync("cp", ["-a", src, dst]);
  if (r.status !== 0) throw new Error(`cp -a failed: ${r.stderr}`);
  return dst;
}

function pod(name: string, command: string[], extra: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "kube-system" },
    spec: {
      hostNetwork: true,
      containers: [{ name, image: `registry.k8s.io/${name}:v1.31.0`, command, ...extra }],
    },
  });
}

/** kube-apiserver flags as kubeadm writes them (docs/kubeadm-pki.md, "Flags that wire the files"), plus what `harden` adds. */
export function apiserverFlags(harden: boolean): string[] {
  const flags = [
    "kube-apiserver",
    "--advertise-address=10.0.0.10",
    "--allow-privileged=true",
    "--authorization-mode=Node,RBAC",
    `--client-ca-file=${P}/ca.crt`,
    "--enable-admission-plugins=NodeRestriction",
    "--enable-bootstrap-token-auth=true",
    `--etcd-cafile=${P}/etcd/ca.crt`,
    `--etcd-certfile=${P}/apiserver-etcd-client.crt`,
    `--etcd-keyfile=${P}/apiserver-etcd-client.key`,
    "--etcd-servers=https://127.0.0.1:2379",
    `--kubelet-client-certificate=${P}/apiserver-kubelet-client.crt`,
    `--kubelet-client-key=${P}/apiserver-kubelet-client.key`,
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    `--proxy-client-cert-file=${P}/front-proxy-client.crt`,
    `--proxy-client-key-file=${P}/front-proxy-client.key`,
    "--requestheader-allowed-names=front-proxy-client",
    `--requestheader-client-ca-file=${P}/front-proxy-ca.crt`,
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-username-headers=X-Remote-User",
    "--secure-port=6443",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${P}/sa.pub`,
    `--service-account-signing-key-file=${P}/sa.key`,
    "--service-cluster-ip-range=10.96.0.0/12",
    `--tls-cert-file=${P}/apiserver.crt`,
    `--tls-private-key-file=${P}/apiserver.key`,
  ];
  if (harden)
    flags.push(
      `--kubelet-certificate-authority=${P}/ca.crt`,
      "--anonymous-auth=false",
      "--tls-min-version=VersionTLS12",
    );
  return flags;
}

export function etcdFlags(harden: boolean): string[] {
  const flags = [
    "etcd",
    "--advertise-client-urls=https://10.0.0.10:2379",
    `--cert-file=${P}/etcd/server.crt`,
    "--client-cert-auth=true",
    "--data-dir=/var/lib/etcd",
    "--initial-advertise-peer-urls=https://10.0.0.10:2380",
    "--initial-cluster=cp1=https://10.0.0.10:2380",
    `--key-file=${P}/etcd/server.key`,
    "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.10:2379",
    "--listen-metrics-urls=http://127.0.0.1:2381",
    "--listen-peer-urls=https://10.0.0.10:2380",
    "--name=cp1",
    `--peer-cert-file=${P}/etcd/peer.crt`,
    "--peer-client-cert-auth=true",
    `--peer-key-file=${P}/etcd/peer.key`,
    `--peer-trusted-ca-file=${P}/etcd/ca.crt`,
    `--trusted-ca-file=${P}/etcd/ca.crt`,
  ];
  if (harden) flags.push("--client-crl-file=/etc/kubernetes/pki/etcd/crl.pem");
  return flags;
}

export const KCM = [
  "kube-controller-manager",
  "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
  "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
  "--bind-address=127.0.0.1",
  `--client-ca-file=${P}/ca.crt`,
  `--cluster-signing-cert-file=${P}/ca.crt`,
  `--cluster-signing-key-file=${P}/ca.key`,
  "--kubeconfig=/etc/kubernetes/controller-manager.conf",
  `--requestheader-client-ca-file=${P}/front-proxy-ca.crt`,
  `--root-ca-file=${P}/ca.crt`,
  `--service-account-private-key-file=${P}/sa.key`,
  "--use-service-account-credentials=true",
];

export function kubeletConfig(harden: boolean): Record<string, unknown> {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: `${P}/ca.crt` },
    },
    authorization: { mode: "Webhook" },
    cgroupDriver: "systemd",
    rotateCertificates: true,
    ...(harden
      ? {
          tlsCertFile: "/var/lib/kubelet/pki/kubelet.crt",
          tlsPrivateKeyFile: "/var/lib/kubelet/pki/kubelet.key",
        }
      : {}),
  };
}

export function writeManifests(
  root: string,
  harden: boolean,
  over: { apiserver?: string[]; etcd?: string[]; kcm?: string[] } = {},
): void {
  mkdirSync(join(root, "etc/kubernetes/manifests"), { recursive: true, mode: 0o700 });
  put(
    root,
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    pod("kube-apiserver", over.apiserver ?? apiserverFlags(harden)),
  );
  put(root, "/etc/kubernetes/manifests/etcd.yaml", pod("etcd", over.etcd ?? etcdFlags(harden)));
  put(
    root,
    "/etc/kubernetes/manifests/kube-controller-manager.yaml",
    pod("kube-controller-manager", over.kcm ?? KCM),
  );
  put(
    root,
    "/etc/kubernetes/manifests/kube-scheduler.yaml",
    pod("kube-scheduler", ["kube-scheduler", "--kubeconfig=/etc/kubernetes/scheduler.conf"]),
  );
}

export function writeKubelet(root: string, config: Record<string, unknown>): void {
  put(root, "/var/lib/kubelet/config.yaml", stringify(config), 0o600);
  put(
    root,
    "/var/lib/kubelet/kubeadm-flags.env",
    'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock"\n',
    0o644,
  );
}

/** The kubelet's own self-signed serving pair, shaped as client-go's GenerateSelfSignedCertKey makes it. */
export async function selfSignedKubelet(host = "cp1"): Promise<{ crt: string; key: string }> {
  const ts = 1_760_000_000;
  const now = Date.now();
  const caKp = await generateKeyPair("RSA-2048");
  const ca = await issueCertificate(
    {
      commonName: `${host}-ca@${ts}`,
      isCA: true,
      keyUsage: ["digitalSignature", "keyEncipherment", "keyCertSign"],
      extKeyUsage: [],
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 364 * DAY),
    },
    caKp.publicKey,
    { selfSigned: caKp.privateKey },
  );
  const kp = await generateKeyPair("RSA-2048");
  const leaf = await issueCertificate(
    {
      commonName: `${host}@${ts}`,
      isCA: false,
      keyUsage: ["digitalSignature", "keyEncipherment"],
      extKeyUsage: ["serverAuth"],
      dnsNames: [host],
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 364 * DAY),
    },
    kp.publicKey,
    { certificate: ca.cert, privateKey: caKp.privateKey },
  );
  return { crt: leaf.pem + ca.pem, key: privateKeyToPem(kp.privateKey) };
}

/** Signs a certificate with a CA of the tree (by its node path stem, e.g. /etc/kubernetes/pki/ca). */
export async function signWith(
  root: string,
  caStem: string,
  tpl: Partial<CertificateTemplate> & { commonName: string },
  key?: { publicKey: KeyObject; privateKey: KeyObject },
): Promise<{ crt: string; key: string }> {
  const ca = parseCertificatePem(readFileSync(join(root, `${caStem}.crt`), "utf8"), "ca");
  const caKey = parsePrivateKeyPem(readFileSync(join(root, `${caStem}.key`), "utf8"), "ca.key");
  const kp = key ?? (await generateKeyPair("ECDSA-P256"));
  const now = Date.now();
  const issued = await issueCertificate(
    {
      isCA: false,
      keyUsage: ["digitalSignature", "keyEncipherment"],
      extKeyUsage: ["clientAuth"],
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 300 * DAY),
      ...tpl,
    },
    kp.publicKey,
    { certificate: ca, privateKey: caKey },
  );
  return { crt: issued.pem, key: privateKeyToPem(kp.privateKey) };
}

export function rsa1024(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync("rsa", { modulusLength: 1024 });
}

/** kubepki init with defaults, plus kubeadm's manifests and kubelet config, hardened as kubepki recommends. */
export async function hardenedNode(): Promise<{ root: string; offline: string }> {
  const { root, offline } = await buildTree();
  writeManifests(root, true);
  writeKubelet(root, kubeletConfig(true));
  return { root, offline };
}

/** A stock kubeadm control plane: self-signed kubelet, no kubelet CA flag, super-admin.conf and every CA key on disk. */
export async function stockKubeadmNode(): Promise<string> {
  const { root, offline } = await buildTree({ algorithm: { value: "RSA-2048", where: "t" } });
  writeManifests(root, false);
  writeKubelet(root, kubeletConfig(false));
  const k = await selfSignedKubelet();
  put(root, "/var/lib/kubelet/pki/kubelet.crt", k.crt, 0o644);
  put(root, "/var/lib/kubelet/pki/kubelet.key", k.key, 0o600);
  copyFileSync(join(offline, "super-admin.conf"), join(root, "etc/kubernetes/super-admin.conf"));
  chmodSync(join(root, "etc/kubernetes/super-admin.conf"), 0o600);
  return root;
}

export { PKI };

/** Replaces a CA of the tree (node path stem) with one shaped as kubeadm's: no cRLSign key usage. */
export function kubeadmStyleCa(root: string, stem: string, cn: string): void {
  const cnf = join(tempDir(), "ca.cnf");
  writeFileSync(
    cnf,
    "[req]\ndistinguished_name=dn\nx509_extensions=v3\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyEncipherment,keyCertSign\n",
  );
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      `/CN=${cn}`,
    ].concat([
      "-days",
      "3650",
      "-config",
      cnf,
      "-keyout",
      join(root, `${stem}.key`),
      "-out",
      join(root, `${stem}.crt`),
    ]),
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
}
