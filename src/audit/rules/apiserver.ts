import type { ComponentFlags } from "../../node/flags.js";
import {
  type AuditContext,
  certsAt,
  type FlagCheck,
  finding,
  flagEvidence,
  type Rule,
  runFlagChecks,
} from "../context.js";
import type { Finding } from "../finding.js";

/** CIS 1.2.29 (v1.12): TLS 1.3 suites and ECDHE with AES-GCM or ChaCha20. */
const STRONG_SUITES = new Set([
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
]);

type Flags = Map<string, string>;

/** A unix socket (k3s' kine) never leaves the host: there is no network to protect. */
function etcdWithoutTls(f: Flags): boolean {
  const servers = f.get("etcd-servers") ?? "";
  const localSocket = servers !== "" && servers.split(",").every((u) => u.startsWith("unix://"));
  const files = !!f.get("etcd-cafile") && !!f.get("etcd-certfile") && !!f.get("etcd-keyfile");
  return (!localSocket && !files) || /(^|,)http:\/\//.test(servers);
}

const weakMin = (f: Flags) => {
  const min = f.get("tls-min-version");
  return min && /VersionTLS1[01]$/.test(min) ? min : "";
};
const weakSuites = (f: Flags) =>
  (f.get("tls-cipher-suites") ?? "").split(",").filter((s) => s && !STRONG_SUITES.has(s.trim()));

/** kube-apiserver's flags (CIS 1.2.x), one check each. */
const FLAG_CHECKS: FlagCheck[] = [
  {
    rule: "apiserver.kubelet-ca.missing",
    flag: "kubelet-certificate-authority",
    fails: (f) => !f.get("kubelet-certificate-authority"),
    message: () =>
      "kube-apiserver has no --kubelet-certificate-authority: it does not verify kubelet serving certificates.",
  },
  {
    rule: "apiserver.kubelet-client.missing",
    flag: "kubelet-client-certificate",
    fails: (f) => !f.get("kubelet-client-certificate") || !f.get("kubelet-client-key"),
    message: () => "kube-apiserver lacks --kubelet-client-certificate or --kubelet-client-key.",
  },
  {
    rule: "apiserver.client-ca.missing",
    flag: "client-ca-file",
    fails: (f) => !f.get("client-ca-file"),
    message: () => "kube-apiserver has no --client-ca-file.",
  },
  {
    rule: "apiserver.tls-files.missing",
    flag: "tls-cert-file",
    fails: (f) => !f.get("tls-cert-file") || !f.get("tls-private-key-file"),
    message: () => "kube-apiserver lacks --tls-cert-file or --tls-private-key-file.",
  },
  {
    rule: "apiserver.etcd-tls.missing",
    flag: "etcd-servers",
    fails: etcdWithoutTls,
    message: (f) =>
      `kube-apiserver reaches etcd without full TLS (--etcd-servers=${f.get("etcd-servers") || "(unset)"}, --etcd-cafile/--etcd-certfile/--etcd-keyfile ${f.get("etcd-certfile") && f.get("etcd-cafile") && f.get("etcd-keyfile") ? "set" : "missing"}).`,
  },
  {
    rule: "apiserver.anonymous",
    flag: "anonymous-auth",
    fails: (f) => f.get("anonymous-auth") !== "false" && !f.get("authentication-config"),
    message: (f) =>
      `kube-apiserver --anonymous-auth is ${f.get("anonymous-auth") ?? "unset (default true)"}.`,
  },
  {
    rule: "apiserver.token-auth-file",
    flag: "token-auth-file",
    fails: (f) => !!f.get("token-auth-file"),
    message: (f) => `kube-apiserver reads static tokens from ${f.get("token-auth-file")}.`,
  },
  {
    rule: "apiserver.tls-weak",
    flag: "tls-min-version",
    fails: (f) => weakMin(f) !== "" || weakSuites(f).length > 0,
    message: (f) => `kube-apiserver allows ${[weakMin(f), ...weakSuites(f)].filter(Boolean).join(", ")}.`,
  },
  {
    rule: "apiserver.requestheader.allowed-names",
    flag: "requestheader-allowed-names",
    fails: (f) => !!f.get("requestheader-client-ca-file") && !f.get("requestheader-allowed-names")?.trim(),
    message: () =>
      "--requestheader-client-ca-file is set and --requestheader-allowed-names is empty: any certificate of that CA may assert user identities.",
  },
];

/** kube-apiserver's flags (CIS 1.2.x) and its front-proxy wiring. */
export const apiserverRule: Rule = ({ snap }) => {
  const c = snap.components.get("kube-apiserver");
  if (!c) return [];
  return [...runFlagChecks(FLAG_CHECKS, c), ...frontProxyCaReuse(snap, c)];
};

/** The front proxy's CA must not be the client CA: any client certificate could then assert identities. */
function frontProxyCaReuse(snap: AuditContext["snap"], c: ComponentFlags): Finding[] {
  const rhCa = c.flags.get("requestheader-client-ca-file");
  const clientCa = certsAt(snap, c.flags.get("client-ca-file"))[0];
  const frontCa = certsAt(snap, rhCa)[0];
  if (!clientCa || !frontCa || clientCa.sha256 !== frontCa.sha256) return [];
  return [
    finding(
      "apiserver.requestheader.ca-reuse",
      `--requestheader-client-ca-file (${rhCa}) holds the same CA as --client-ca-file (fingerprint ${clientCa.sha256.slice(0, 16)}…).`,
      c.source,
      { ...flagEvidence(c)("requestheader-client-ca-file"), sha256: clientCa.sha256 },
    ),
  ];
}
