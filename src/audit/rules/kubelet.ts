import { kubeletSetting } from "../../node/snapshot.js";
import { certsAt, finding, type Rule } from "../context.js";
import type { Finding } from "../finding.js";

/** The throwaway shape client-go's GenerateSelfSignedCertKey gives a kubelet: CN <host>@<unix-seconds>. */
const SELF_SIGNED_KUBELET = /@\d{9,}$/;

export const kubeletRule: Rule = ({ snap }) => {
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
