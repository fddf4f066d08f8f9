import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildKubeconfig } from "../src/pki/kubeconfig.js";
import { put } from "./fixtures.js";
import { tempDir } from "./helpers.js";

const ssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, stdio: "pipe" });

interface Leaf {
  name: string;
  subj: string;
  eku: string;
  san?: string;
}

/** A CA and its leaves made with the openssl command line, as Kubernetes the Hard Way makes them. */
function makePki(leaves: Leaf[]): { dir: string; read: (f: string) => string } {
  const dir = tempDir("kubepki-kthw-ca-");
  ssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca-key.pem"], dir);
  ssl(
    [
      ...["req", "-x509", "-new", "-key", "ca-key.pem", "-days", "3650", "-out", "ca.pem"],
      ...["-subj", "/CN=Kubernetes/O=Kubernetes"],
      ...["-addext", "basicConstraints=critical,CA:TRUE"],
      ...["-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"],
    ],
    dir,
  );
  for (const l of leaves) {
    ssl(
      ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${l.name}-key.pem`],
      dir,
    );
    ssl(["req", "-new", "-key", `${l.name}-key.pem`, "-subj", l.subj, "-out", `${l.name}.csr`], dir);
    writeFileSync(
      join(dir, `${l.name}.ext`),
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        `extendedKeyUsage=${l.eku}`,
        ...(l.san ? [`subjectAltName=${l.san}`] : []),
      ].join("\n"),
    );
    ssl(
      [
        ...["x509", "-req", "-in", `${l.name}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem"],
        ...["-set_serial", `0x${Date.now().toString(16)}${leaves.indexOf(l)}`, "-days", "365"],
        ...["-extfile", `${l.name}.ext`, "-out", `${l.name}.pem`],
      ],
      dir,
    );
  }
  return { dir, read: (f) => readFileSync(join(dir, f), "utf8") };
}

const unit = (description: string, lines: string[], service: string[] = []) =>
  [
    `[Unit]`,
    `Description=${description}`,
    "",
    "[Service]",
    ...service,
    ...lines,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
const exec = (bin: string, flags: string[]) => `ExecStart=${bin} \\\n  ${flags.join(" \\\n  ")}`;

/**
 * A control plane built by hand as Kubernetes the Hard Way builds it: systemd units under
 * /etc/systemd/system, certificates under /var/lib/kubernetes, /etc/etcd and /var/lib/kubelet,
 * no distribution's fingerprint. Weaknesses a kubeadm node could have too: no
 * --kubelet-certificate-authority, anonymous auth on the API server and (through a drop-in's
 * environment) on the kubelet, the CA key 0644, a component kubeconfig 0644, etcd trusting the
 * cluster CA, an admin kubeconfig in a home folder.
 */
export function kthwNode(): { root: string } {
  const k = "/var/lib/kubernetes";
  const pki = makePki([
    {
      name: "kubernetes",
      subj: "/CN=kubernetes/O=Kubernetes",
      eku: "serverAuth,clientAuth",
      san: "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.32.0.1",
    },
    { name: "service-account", subj: "/CN=service-accounts/O=Kubernetes", eku: "clientAuth" },
    { name: "admin", subj: "/CN=admin/O=system:masters", eku: "clientAuth" },
    {
      name: "kcm",
      subj: "/CN=system:kube-controller-manager/O=system:kube-controller-manager",
      eku: "clientAuth",
    },
    { name: "scheduler", subj: "/CN=system:kube-scheduler/O=system:kube-scheduler", eku: "clientAuth" },
    { name: "kube-proxy", subj: "/CN=system:kube-proxy/O=system:node-proxier", eku: "clientAuth" },
    {
      name: "node-0",
      subj: "/CN=system:node:node-0/O=system:nodes",
      eku: "serverAuth,clientAuth",
      san: "DNS:node-0,IP:10.240.0.20",
    },
  ]);
  const root = join(tempDir("kubepki-kthw-"), "node");
  const kc = (user: string, name: string) =>
    buildKubeconfig({
      clusterName: "kubernetes-the-hard-way",
      server: "https://127.0.0.1:6443",
      caPem: pki.read("ca.pem"),
      userName: user,
      clientCertPem: pki.read(`${name}.pem`),
      clientKeyPem: pki.read(`${name}-key.pem`),
    });
  put(root, `${k}/ca.pem`, pki.read("ca.pem"), 0o644);
  put(root, `${k}/ca-key.pem`, pki.read("ca-key.pem"), 0o644);
  for (const n of ["kubernetes", "service-account"]) {
    put(root, `${k}/${n}.pem`, pki.read(`${n}.pem`), 0o644);
    put(root, `${k}/${n}-key.pem`, pki.read(`${n}-key.pem`), 0o600);
  }
  put(root, "/etc/etcd/ca.pem", pki.read("ca.pem"), 0o644);
  // The system trust store an --oidc-ca-file names: public roots, never inventoried as the cluster's.
  put(root, "/etc/ssl/certs/ca-certificates.crt", pki.read("kubernetes.pem"), 0o644);
  put(root, "/etc/etcd/kubernetes.pem", pki.read("kubernetes.pem"), 0o644);
  put(root, "/etc/etcd/kubernetes-key.pem", pki.read("kubernetes-key.pem"), 0o600);
  put(root, "/var/lib/kubelet/ca.pem", pki.read("ca.pem"), 0o644);
  put(root, "/var/lib/kubelet/node-0.pem", pki.read("node-0.pem"), 0o644);
  put(root, "/var/lib/kubelet/node-0-key.pem", pki.read("node-0-key.pem"), 0o600);
  put(root, `${k}/kube-controller-manager.kubeconfig`, kc("system:kube-controller-manager", "kcm"), 0o600);
  put(root, `${k}/kube-scheduler.kubeconfig`, kc("system:kube-scheduler", "scheduler"), 0o644);
  put(root, "/var/lib/kubelet/kubeconfig", kc("system:node:node-0", "node-0"), 0o600);
  // kube-proxy names its kubeconfig in its configuration file, not in a flag.
  put(root, "/var/lib/kube-proxy/kubeconfig", kc("system:kube-proxy", "kube-proxy"), 0o644);
  put(
    root,
    "/var/lib/kube-proxy/kube-proxy-config.yaml",
    'kind: KubeProxyConfiguration\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nclientConnection:\n  kubeconfig: "/var/lib/kube-proxy/kubeconfig"\nmode: "iptables"\n',
    0o644,
  );
  put(root, "/home/ops/.kube/config", kc("admin", "admin"), 0o600);
  put(
    root,
    "/var/lib/kubelet/kubelet-config.yaml",
    [
      "kind: KubeletConfiguration",
      "apiVersion: kubelet.config.k8s.io/v1beta1",
      "authentication:",
      "  anonymous:",
      "    enabled: false",
      "  webhook:",
      "    enabled: true",
      "  x509:",
      '    clientCAFile: "/var/lib/kubelet/ca.pem"',
      "authorization:",
      "  mode: Webhook",
      'tlsCertFile: "/var/lib/kubelet/node-0.pem"',
      'tlsPrivateKeyFile: "/var/lib/kubelet/node-0-key.pem"',
      "rotateCertificates: true",
      "",
    ].join("\n"),
    0o600,
  );
  const sd = "/etc/systemd/system";
  put(
    root,
    `${sd}/etcd.service`,
    unit("etcd", [
      exec("/usr/local/bin/etcd", [
        "--name controller",
        "--cert-file=/etc/etcd/kubernetes.pem",
        "--key-file=/etc/etcd/kubernetes-key.pem",
        "--peer-cert-file=/etc/etcd/kubernetes.pem",
        "--peer-key-file=/etc/etcd/kubernetes-key.pem",
        "--trusted-ca-file=/etc/etcd/ca.pem",
        "--peer-trusted-ca-file=/etc/etcd/ca.pem",
        "--peer-client-cert-auth",
        "--client-cert-auth",
        "--listen-client-urls https://127.0.0.1:2379",
        "--listen-peer-urls https://10.240.0.10:2380",
        "--initial-advertise-peer-urls https://10.240.0.10:2380",
      ]),
    ]),
    0o644,
  );
  put(
    root,
    "/etc/default/kube-apiserver",
    `# TLS of the API server\nKUBE_APISERVER_TLS="--tls-cert-file=${k}/kubernetes.pem --tls-private-key-file=${k}/kubernetes-key.pem"\n`,
    0o644,
  );
  put(
    root,
    `${sd}/kube-apiserver.service`,
    unit(
      "Kubernetes API Server",
      [
        exec("/usr/local/bin/kube-apiserver", [
          "--allow-privileged=true",
          "--authorization-mode=Node,RBAC",
          `--client-ca-file=${k}/ca.pem`,
          `--etcd-cafile=${k}/ca.pem`,
          `--etcd-certfile=${k}/kubernetes.pem`,
          `--etcd-keyfile=${k}/kubernetes-key.pem`,
          `--etcd-servers=\${ETCD_SERVERS}`,
          `--kubelet-client-certificate=${k}/kubernetes.pem`,
          `--kubelet-client-key=${k}/kubernetes-key.pem`,
          `--service-account-key-file=${k}/service-account.pem`,
          `--service-account-signing-key-file=${k}/service-account-key.pem`,
          "--oidc-ca-file=/etc/ssl/certs/ca-certificates.crt",
          "$KUBE_APISERVER_TLS",
        ]),
      ],
      ["Environment=ETCD_SERVERS=https://127.0.0.1:2379", "EnvironmentFile=/etc/default/kube-apiserver"],
    ),
    0o644,
  );
  put(
    root,
    `${sd}/kube-controller-manager.service`,
    unit("Kubernetes Controller Manager", [
      exec("/usr/local/bin/kube-controller-manager", [
        `--cluster-signing-cert-file=${k}/ca.pem`,
        `--cluster-signing-key-file=${k}/ca-key.pem`,
        `--kubeconfig=${k}/kube-controller-manager.kubeconfig`,
        `--root-ca-file=${k}/ca.pem`,
        `--service-account-private-key-file=${k}/service-account-key.pem`,
        "--use-service-account-credentials=true",
      ]),
    ]),
    0o644,
  );
  put(
    root,
    `${sd}/kube-scheduler.service`,
    unit("Kubernetes Scheduler", [
      exec("/usr/local/bin/kube-scheduler", [`--kubeconfig=${k}/kube-scheduler.kubeconfig`, "--v=2"]),
    ]),
    0o644,
  );
  put(
    root,
    `${sd}/kube-proxy.service`,
    unit("Kubernetes Kube Proxy", [
      exec("/usr/local/bin/kube-proxy", ["--config=/var/lib/kube-proxy/kube-proxy-config.yaml"]),
    ]),
    0o644,
  );
  put(
    root,
    `${sd}/kubelet.service`,
    unit(
      "Kubernetes Kubelet",
      [
        exec("/usr/local/bin/kubelet", [
          "--config=/var/lib/kubelet/kubelet-config.yaml",
          "--kubeconfig=/var/lib/kubelet/kubeconfig",
          "$KUBELET_EXTRA_ARGS",
          "--v=2",
        ]),
      ],
      ["EnvironmentFile=-/etc/default/kubelet-missing"],
    ),
    0o644,
  );
  put(
    root,
    `${sd}/kubelet.service.d/20-debug.conf`,
    '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=--anonymous-auth=true --node-ip=10.240.0.20"\n',
    0o644,
  );
  return { root };
}
