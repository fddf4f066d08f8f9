import { kubeletSetting } from "../../node/snapshot.js";
import { KUBELET_FILES, KUBELET_SELF_SIGNED_CN } from "../../pki/catalog.js";
import { type AuditContext, type Check, certsAt, finding, type Rule, runChecks } from "../context.js";
import type { Finding } from "../finding.js";

type Kubelet = AuditContext["snap"]["kubelet"];

/** The kubelet's serving certificate, from tlsCertFile or its cert dir. */
function selfSignedServing(snap: AuditContext["snap"]): Finding[] {
  const k = snap.kubelet;
  const tlsCert = kubeletSetting(k, "tls-cert-file", "tlsCertFile");
  const certDir = k.flags.get("cert-dir") ?? snap.layout.kubeletPkiDirs[0];
  const servingPath = tlsCert
    ? String(tlsCert.value)
    : certDir
      ? `${certDir}/${KUBELET_FILES.servingCert}`
      : undefined;
  const serving = certsAt(snap, servingPath);
  const leaf = serving[0];
  if (!leaf || !servingPath) return [];
  const issuer = serving.find((c) => c !== leaf && leaf.x509.checkIssued(c.x509));
  const throwaway =
    KUBELET_SELF_SIGNED_CN.test(leaf.commonName) && (issuer?.commonName.includes("-ca@") ?? leaf.selfSigned);
  if (!leaf.selfSigned && !throwaway) return [];
  return [
    finding(
      "kubelet.serving.self-signed",
      `${servingPath} ("${leaf.commonName}") is self-signed${throwaway ? " (the kubelet's throwaway CA)" : ""}: nobody can verify it, and it is never renewed.`,
      servingPath,
      { file: servingPath, sha256: leaf.sha256, issuer: leaf.issuerCommonName },
    ),
  ];
}

/** The kubelet's configuration (file and flags), one check each; `src` is where it was read. */
const CONFIG_CHECKS: Check<{ k: Kubelet; src: string }>[] = [
  ({ k, src }) => {
    const bootstrap = kubeletSetting(k, "rotate-server-certificates", "serverTLSBootstrap");
    if (kubeletSetting(k, "tls-cert-file", "tlsCertFile") || String(bootstrap?.value ?? "false") === "true")
      return undefined;
    return finding(
      "kubelet.server-tls-bootstrap.off",
      "The kubelet has neither tlsCertFile nor serverTLSBootstrap: it serves a certificate it signed itself.",
      src,
      { source: src, serverTLSBootstrap: String(bootstrap?.value ?? "unset") },
    );
  },
  ({ k, src }) => {
    const rotate = kubeletSetting(k, "rotate-certificates", "rotateCertificates");
    if (rotate && String(rotate.value) === "false")
      return finding(
        "kubelet.client-rotation.off",
        `Kubelet client certificate rotation is off (${rotate.source}).`,
        src,
        { source: rotate.source },
      );
    if (rotate) return undefined;
    return finding(
      "kubelet.client-rotation.off",
      "rotateCertificates is unset and defaults to false: the node credential is never rotated.",
      src,
      { source: src },
      "low",
    );
  },
  ({ k, src }) => {
    const anon = kubeletSetting(k, "anonymous-auth", "authentication", "anonymous", "enabled");
    if (String(anon?.value ?? "true") === "false") return undefined;
    return finding(
      "kubelet.anonymous",
      `Kubelet anonymous authentication is ${anon ? `${anon.value} (${anon.source})` : "unset (default enabled)"}.`,
      src,
      { source: anon?.source ?? src },
    );
  },
  ({ k, src }) => {
    const authz = kubeletSetting(k, "authorization-mode", "authorization", "mode");
    const value = authz ? String(authz.value) : k.config ? "Webhook" : "AlwaysAllow";
    if (!value.includes("AlwaysAllow")) return undefined;
    return finding(
      "kubelet.authz",
      `Kubelet authorization mode is AlwaysAllow${authz ? ` (${authz.source})` : " (the flag default)"}.`,
      src,
      { source: authz?.source ?? src },
    );
  },
  ({ k, src }) =>
    kubeletSetting(k, "client-ca-file", "authentication", "x509", "clientCAFile")
      ? undefined
      : finding(
          "kubelet.client-ca",
          "The kubelet has no client CA file: it cannot authenticate client certificates.",
          src,
          { source: src },
        ),
];

export const kubeletRule: Rule = ({ snap }) => {
  const k = snap.kubelet;
  const out = selfSignedServing(snap);
  // Without a config file or flags there is nothing to judge the kubelet's settings by.
  if (k.config === undefined && k.flags.size === 0) return out;
  const src = k.configPath ?? k.flagSources[0] ?? "kubelet";
  return [...out, ...runChecks(CONFIG_CHECKS, { k, src })];
};
