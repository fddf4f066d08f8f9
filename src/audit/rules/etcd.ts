import type { ComponentFlags } from "../../node/flags.js";
import { kubeletClientCaFile } from "../../node/snapshot.js";
import { crlSignWarning } from "../../x509/crl.js";
import type { CertInfo } from "../../x509/parse.js";
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

const isTrue = (v: string | undefined) => v !== undefined && v.toLowerCase() === "true";

type Flags = Map<string, string>;
const plainHttp = (urls: string) => /(^|,)http:\/\//.test(urls);
const peerUrls = (f: Flags) =>
  `${f.get("listen-peer-urls") ?? ""},${f.get("initial-advertise-peer-urls") ?? ""}`;

/** etcd's flags (CIS 2.x), one check each. */
const FLAG_CHECKS: FlagCheck[] = [
  {
    rule: "etcd.tls.missing",
    flag: "listen-client-urls",
    fails: (f) => !f.get("cert-file") || !f.get("key-file") || plainHttp(f.get("listen-client-urls") ?? ""),
    message: (f) =>
      `etcd serves clients without TLS (--cert-file ${f.get("cert-file") ? "set" : "unset"}, --listen-client-urls=${f.get("listen-client-urls") ?? "(unset)"}).`,
  },
  {
    rule: "etcd.client-cert-auth.off",
    flag: "client-cert-auth",
    fails: (f) => !isTrue(f.get("client-cert-auth")),
    message: (f) => `etcd --client-cert-auth is ${f.get("client-cert-auth") ?? "unset"}.`,
  },
  {
    rule: "etcd.auto-tls",
    flag: "auto-tls",
    fails: (f) => isTrue(f.get("auto-tls")),
    message: () => "etcd --auto-tls=true.",
  },
  {
    rule: "etcd.peer-tls.missing",
    flag: "peer-cert-file",
    fails: (f) => !f.get("peer-cert-file") || !f.get("peer-key-file") || plainHttp(peerUrls(f)),
    message: (f) =>
      `etcd peers talk without TLS (--peer-cert-file ${f.get("peer-cert-file") ? "set" : "unset"}, peer URLs ${peerUrls(f).replace(/^,|,$/g, "") || "(unset)"}).`,
  },
  {
    rule: "etcd.peer-client-cert-auth.off",
    flag: "peer-client-cert-auth",
    fails: (f) => !isTrue(f.get("peer-client-cert-auth")),
    message: (f) => `etcd --peer-client-cert-auth is ${f.get("peer-client-cert-auth") ?? "unset"}.`,
  },
  {
    rule: "etcd.peer-auto-tls",
    flag: "peer-auto-tls",
    fails: (f) => isTrue(f.get("peer-auto-tls")),
    message: () => "etcd --peer-auto-tls=true.",
  },
];

/** etcd's TLS, client and peer authentication, CA separation and CRL (CIS 2.x). */
export const etcdRule: Rule = ({ snap }) => {
  const c = snap.components.get("etcd");
  if (!c) return [];
  const etcdCa = certsAt(snap, c.flags.get("trusted-ca-file"))[0];
  return [...runFlagChecks(FLAG_CHECKS, c), ...sharedCa(snap, c, etcdCa), ...crlChecks(c, etcdCa)];
};

/** etcd's CA shared with the API server's or the kubelet's client CA: any of their client certificates reaches etcd. */
function sharedCa(snap: AuditContext["snap"], c: ComponentFlags, etcdCa: CertInfo | undefined): Finding[] {
  if (!etcdCa) return [];
  const api = snap.components.get("kube-apiserver")?.flags;
  const others = [
    ["kube-apiserver --client-ca-file", api?.get("client-ca-file")],
    ["kubelet clientCAFile", kubeletClientCaFile(snap.kubelet)],
  ] as const;
  const shared = others.find(([, path]) => certsAt(snap, path)[0]?.sha256 === etcdCa.sha256);
  if (!shared) return [];
  const [who, path] = shared;
  return [
    finding(
      "etcd.shared-ca",
      `etcd --trusted-ca-file (${c.flags.get("trusted-ca-file")}) holds the same CA as ${who} (${path}), fingerprint ${etcdCa.sha256.slice(0, 16)}….`,
      c.source,
      { ...flagEvidence(c)("trusted-ca-file"), sha256: etcdCa.sha256 },
    ),
  ];
}

function crlChecks(c: ComponentFlags, etcdCa: CertInfo | undefined): Finding[] {
  const ev = flagEvidence(c);
  if (!c.flags.get("client-crl-file"))
    return [
      finding(
        "etcd.crl.unused",
        "etcd has no --client-crl-file: a leaked etcd client certificate cannot be refused before it expires.",
        c.source,
        ev("client-crl-file"),
      ),
    ];
  const noCrlSign = etcdCa ? crlSignWarning("etcd-ca", etcdCa) : undefined;
  if (!noCrlSign) return [];
  return [
    finding("etcd.crl.ca-no-crlsign", noCrlSign, c.source, {
      ...ev("client-crl-file"),
      sha256: etcdCa?.sha256 ?? "",
    }),
  ];
}
