import { certsAt, finding, flagEvidence, type Rule } from "../context.js";
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

/** kube-apiserver's flags (CIS 1.2.x) and its front-proxy wiring. */
export const apiserverRule: Rule = ({ snap }) => {
  const c = snap.components.get("kube-apiserver");
  if (!c) return [];
  const f = c.flags;
  const src = c.source;
  const out: Finding[] = [];
  const ev = flagEvidence(c);
  if (!f.get("kubelet-certificate-authority"))
    out.push(
      finding(
        "apiserver.kubelet-ca.missing",
        "kube-apiserver has no --kubelet-certificate-authority: it does not verify kubelet serving certificates.",
        src,
        ev("kubelet-certificate-authority"),
      ),
    );
  if (!f.get("kubelet-client-certificate") || !f.get("kubelet-client-key"))
    out.push(
      finding(
        "apiserver.kubelet-client.missing",
        "kube-apiserver lacks --kubelet-client-certificate or --kubelet-client-key.",
        src,
        ev("kubelet-client-certificate"),
      ),
    );
  if (!f.get("client-ca-file"))
    out.push(
      finding(
        "apiserver.client-ca.missing",
        "kube-apiserver has no --client-ca-file.",
        src,
        ev("client-ca-file"),
      ),
    );
  if (!f.get("tls-cert-file") || !f.get("tls-private-key-file"))
    out.push(
      finding(
        "apiserver.tls-files.missing",
        "kube-apiserver lacks --tls-cert-file or --tls-private-key-file.",
        src,
        ev("tls-cert-file"),
      ),
    );
  const servers = f.get("etcd-servers") ?? "";
  // A unix socket (k3s' kine) never leaves the host: there is no network to protect.
  const localSocket = servers !== "" && servers.split(",").every((u) => u.startsWith("unix://"));
  if (
    (!localSocket && (!f.get("etcd-cafile") || !f.get("etcd-certfile") || !f.get("etcd-keyfile"))) ||
    /(^|,)http:\/\//.test(servers)
  )
    out.push(
      finding(
        "apiserver.etcd-tls.missing",
        `kube-apiserver reaches etcd without full TLS (--etcd-servers=${servers || "(unset)"}, --etcd-cafile/--etcd-certfile/--etcd-keyfile ${f.get("etcd-certfile") && f.get("etcd-cafile") && f.get("etcd-keyfile") ? "set" : "missing"}).`,
        src,
        ev("etcd-servers"),
      ),
    );
  if (f.get("anonymous-auth") !== "false" && !f.get("authentication-config"))
    out.push(
      finding(
        "apiserver.anonymous",
        `kube-apiserver --anonymous-auth is ${f.get("anonymous-auth") ?? "unset (default true)"}.`,
        src,
        ev("anonymous-auth"),
      ),
    );
  if (f.get("token-auth-file"))
    out.push(
      finding(
        "apiserver.token-auth-file",
        `kube-apiserver reads static tokens from ${f.get("token-auth-file")}.`,
        src,
        ev("token-auth-file"),
      ),
    );
  const min = f.get("tls-min-version");
  const weakSuites = (f.get("tls-cipher-suites") ?? "")
    .split(",")
    .filter((s) => s && !STRONG_SUITES.has(s.trim()));
  if ((min && /VersionTLS1[01]$/.test(min)) || weakSuites.length > 0)
    out.push(
      finding(
        "apiserver.tls-weak",
        `kube-apiserver allows ${[min && /VersionTLS1[01]$/.test(min) ? min : "", ...weakSuites].filter(Boolean).join(", ")}.`,
        src,
        ev("tls-min-version"),
      ),
    );
  const rhCa = f.get("requestheader-client-ca-file");
  if (rhCa && !f.get("requestheader-allowed-names")?.trim())
    out.push(
      finding(
        "apiserver.requestheader.allowed-names",
        "--requestheader-client-ca-file is set and --requestheader-allowed-names is empty: any certificate of that CA may assert user identities.",
        src,
        ev("requestheader-allowed-names"),
      ),
    );
  const clientCa = certsAt(snap, f.get("client-ca-file"))[0];
  const frontCa = certsAt(snap, rhCa)[0];
  if (clientCa && frontCa && clientCa.sha256 === frontCa.sha256)
    out.push(
      finding(
        "apiserver.requestheader.ca-reuse",
        `--requestheader-client-ca-file (${rhCa}) holds the same CA as --client-ca-file (fingerprint ${clientCa.sha256.slice(0, 16)}…).`,
        src,
        { ...ev("requestheader-client-ca-file"), sha256: clientCa.sha256 },
      ),
    );
  return out;
};
