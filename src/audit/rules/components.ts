import { kubeletSetting } from "../../node/snapshot.js";
import { certsAt } from "../chain.js";
import { finding, type Rule } from "../context.js";
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

const isTrue = (v: string | undefined) => v !== undefined && v.toLowerCase() === "true";

const apiserver: Rule = ({ snap }) => {
  const c = snap.components.get("kube-apiserver");
  if (!c) return [];
  const f = c.flags;
  const src = c.source;
  const out: Finding[] = [];
  const ev = (flag: string) => ({ flag: `--${flag}`, value: f.get(flag) ?? "(unset)", source: src });
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
  if (
    !f.get("etcd-cafile") ||
    !f.get("etcd-certfile") ||
    !f.get("etcd-keyfile") ||
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

const etcd: Rule = ({ snap }) => {
  const c = snap.components.get("etcd");
  if (!c) return [];
  const f = c.flags;
  const src = c.source;
  const out: Finding[] = [];
  const ev = (flag: string) => ({ flag: `--${flag}`, value: f.get(flag) ?? "(unset)", source: src });
  if (!f.get("cert-file") || !f.get("key-file") || /(^|,)http:\/\//.test(f.get("listen-client-urls") ?? ""))
    out.push(
      finding(
        "etcd.tls.missing",
        `etcd serves clients without TLS (--cert-file ${f.get("cert-file") ? "set" : "unset"}, --listen-client-urls=${f.get("listen-client-urls") ?? "(unset)"}).`,
        src,
        ev("listen-client-urls"),
      ),
    );
  if (!isTrue(f.get("client-cert-auth")))
    out.push(
      finding(
        "etcd.client-cert-auth.off",
        `etcd --client-cert-auth is ${f.get("client-cert-auth") ?? "unset"}.`,
        src,
        ev("client-cert-auth"),
      ),
    );
  if (isTrue(f.get("auto-tls")))
    out.push(finding("etcd.auto-tls", "etcd --auto-tls=true.", src, ev("auto-tls")));
  const peerUrls = `${f.get("listen-peer-urls") ?? ""},${f.get("initial-advertise-peer-urls") ?? ""}`;
  if (!f.get("peer-cert-file") || !f.get("peer-key-file") || /(^|,)http:\/\//.test(peerUrls))
    out.push(
      finding(
        "etcd.peer-tls.missing",
        `etcd peers talk without TLS (--peer-cert-file ${f.get("peer-cert-file") ? "set" : "unset"}, peer URLs ${peerUrls.replace(/^,|,$/g, "") || "(unset)"}).`,
        src,
        ev("peer-cert-file"),
      ),
    );
  if (!isTrue(f.get("peer-client-cert-auth")))
    out.push(
      finding(
        "etcd.peer-client-cert-auth.off",
        `etcd --peer-client-cert-auth is ${f.get("peer-client-cert-auth") ?? "unset"}.`,
        src,
        ev("peer-client-cert-auth"),
      ),
    );
  if (isTrue(f.get("peer-auto-tls")))
    out.push(finding("etcd.peer-auto-tls", "etcd --peer-auto-tls=true.", src, ev("peer-auto-tls")));
  const etcdCa = certsAt(snap, f.get("trusted-ca-file"))[0];
  const api = snap.components.get("kube-apiserver")?.flags;
  const kubeletCaPath =
    snap.kubelet.flags.get("client-ca-file") ??
    (snap.kubelet.config?.authentication as { x509?: { clientCAFile?: string } } | undefined)?.x509
      ?.clientCAFile;
  for (const [who, path] of [
    ["kube-apiserver --client-ca-file", api?.get("client-ca-file")],
    ["kubelet clientCAFile", kubeletCaPath],
  ] as const) {
    const other = certsAt(snap, path)[0];
    if (etcdCa && other && etcdCa.sha256 === other.sha256) {
      out.push(
        finding(
          "etcd.shared-ca",
          `etcd --trusted-ca-file (${f.get("trusted-ca-file")}) holds the same CA as ${who} (${path}), fingerprint ${etcdCa.sha256.slice(0, 16)}….`,
          src,
          { ...ev("trusted-ca-file"), sha256: etcdCa.sha256 },
        ),
      );
      break;
    }
  }
  if (!f.get("client-crl-file"))
    out.push(
      finding(
        "etcd.crl.unused",
        "etcd has no --client-crl-file: a leaked etcd client certificate cannot be refused before it expires.",
        src,
        ev("client-crl-file"),
      ),
    );
  return out;
};

/** The throwaway shape client-go's GenerateSelfSignedCertKey gives a kubelet: CN <host>@<unix-seconds>. */
const SELF_SIGNED_KUBELET = /@\d{9,}$/;

const kubelet: Rule = ({ snap }) => {
  const k = snap.kubelet;
  const out: Finding[] = [];
  const known = k.config !== undefined || k.flags.size > 0;
  const src = k.configPath ?? k.flagSources[0] ?? "kubelet";
  const tlsCert = kubeletSetting(k, "tls-cert-file", "tlsCertFile");
  const bootstrap = kubeletSetting(k, "rotate-server-certificates", "serverTLSBootstrap");
  const certDir = k.flags.get("cert-dir") ?? snap.layout.kubeletPkiDirs[0];
  const servingPath = tlsCert ? String(tlsCert.value) : certDir ? `${certDir}/kubelet.crt` : undefined;
  const serving = certsAt(snap, servingPath);
  const leaf = serving[0];
  if (leaf && servingPath) {
    const issuer = serving.find((c) => c !== leaf && leaf.x509.checkIssued(c.x509));
    const throwaway =
      SELF_SIGNED_KUBELET.test(leaf.commonName) && (issuer?.commonName.includes("-ca@") ?? leaf.selfSigned);
    if (leaf.selfSigned || throwaway)
      out.push(
        finding(
          "kubelet.serving.self-signed",
          `${servingPath} ("${leaf.commonName}") is self-signed${throwaway ? " (the kubelet's throwaway CA)" : ""}: nobody can verify it, and it is never renewed.`,
          servingPath,
          { file: servingPath, sha256: leaf.sha256, issuer: leaf.issuerCommonName },
        ),
      );
  }
  if (!known) return out;
  if (!tlsCert && String(bootstrap?.value ?? "false") !== "true")
    out.push(
      finding(
        "kubelet.server-tls-bootstrap.off",
        "The kubelet has neither tlsCertFile nor serverTLSBootstrap: it serves a certificate it signed itself.",
        src,
        { source: src, serverTLSBootstrap: String(bootstrap?.value ?? "unset") },
      ),
    );
  const rotate = kubeletSetting(k, "rotate-certificates", "rotateCertificates");
  if (rotate && String(rotate.value) === "false")
    out.push(
      finding(
        "kubelet.client-rotation.off",
        `Kubelet client certificate rotation is off (${rotate.source}).`,
        src,
        { source: rotate.source },
      ),
    );
  else if (!rotate)
    out.push(
      finding(
        "kubelet.client-rotation.off",
        "rotateCertificates is unset and defaults to false: the node credential is never rotated.",
        src,
        { source: src },
        "low",
      ),
    );
  const anon = kubeletSetting(k, "anonymous-auth", "authentication", "anonymous", "enabled");
  if (String(anon?.value ?? "true") !== "false")
    out.push(
      finding(
        "kubelet.anonymous",
        `Kubelet anonymous authentication is ${anon ? `${anon.value} (${anon.source})` : "unset (default enabled)"}.`,
        src,
        { source: anon?.source ?? src },
      ),
    );
  const authz = kubeletSetting(k, "authorization-mode", "authorization", "mode");
  const authzValue = authz ? String(authz.value) : k.config ? "Webhook" : "AlwaysAllow";
  if (authzValue.includes("AlwaysAllow"))
    out.push(
      finding(
        "kubelet.authz",
        `Kubelet authorization mode is AlwaysAllow${authz ? ` (${authz.source})` : " (the flag default)"}.`,
        src,
        { source: authz?.source ?? src },
      ),
    );
  const ca = kubeletSetting(k, "client-ca-file", "authentication", "x509", "clientCAFile");
  if (!ca)
    out.push(
      finding(
        "kubelet.client-ca",
        "The kubelet has no client CA file: it cannot authenticate client certificates.",
        src,
        { source: src },
      ),
    );
  return out;
};

export const componentRules: Rule[] = [apiserver, etcd, kubelet];
