import { kubeletClientCaFile } from "../../node/snapshot.js";
import { crlSignWarning } from "../../x509/crl.js";
import { certsAt, finding, flagEvidence, type Rule } from "../context.js";
import type { Finding } from "../finding.js";

const isTrue = (v: string | undefined) => v !== undefined && v.toLowerCase() === "true";

/** etcd's TLS, client and peer authentication, CA separation and CRL (CIS 2.x). */
export const etcdRule: Rule = ({ snap }) => {
  const c = snap.components.get("etcd");
  if (!c) return [];
  const f = c.flags;
  const src = c.source;
  const out: Finding[] = [];
  const ev = flagEvidence(c);
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
  const kubeletCaPath = kubeletClientCaFile(snap.kubelet);
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
  const noCrlSign = f.get("client-crl-file") && etcdCa ? crlSignWarning("etcd-ca", etcdCa) : undefined;
  if (noCrlSign)
    out.push(
      finding("etcd.crl.ca-no-crlsign", noCrlSign, src, {
        ...ev("client-crl-file"),
        sha256: etcdCa?.sha256 ?? "",
      }),
    );
  return out;
};
