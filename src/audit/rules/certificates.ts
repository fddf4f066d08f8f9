import { uniqueCerts } from "../../node/certs.js";
import { kubeletClientCaFile, kubeletServingCertFile } from "../../node/snapshot.js";
import { LEAVES, leafEntry, type TlsRole } from "../../pki/catalog.js";
import { caPaths, DEFAULT_CERTIFICATES_DIR, leafPaths, treePaths } from "../../pki/paths.js";
import type { SanSet } from "../../pki/spec.js";
import { spkiSha256 } from "../../x509/keys.js";
import { EKU_OIDS } from "../../x509/oids.js";
import type { CertInfo } from "../../x509/parse.js";
import { verifyPath } from "../../x509/verify.js";
import { type AuditContext, type Check, certsAt, finding, type Rule, runChecks } from "../context.js";
import type { Finding } from "../finding.js";

const DAY = 86_400_000;
const SERVER_AUTH = EKU_OIDS.serverAuth;
const CLIENT_AUTH = EKU_OIDS.clientAuth;

const ev = (c: CertInfo) => ({
  file: c.path,
  subject: c.subject.replace(/\n/g, ", "),
  sha256: c.sha256,
  notAfter: c.notAfter.toISOString(),
});

/** One certificate in its surroundings: what each content check looks at. */
interface CertCheckInput {
  c: CertInfo;
  /** The file, and the field or chain position inside it. */
  where: string;
  now: number;
  opts: AuditContext["opts"];
  revoked: AuditContext["snap"]["revoked"];
  superAdmin: Set<string>;
  /** CA certificates by subject. */
  cas: Map<string, CertInfo[]>;
}

const ekuOf = (c: CertInfo) => c.extKeyUsageOids ?? [];
const named = ({ where, c }: CertCheckInput) => `${where} ("${c.commonName}")`;

/** Content checks, one each: lifetime, strength, identity. */
const CERT_CHECKS: Check<CertCheckInput>[] = [
  (x) => {
    const r = x.revoked.get(x.c.sha256);
    if (!r) return undefined;
    return finding(
      "cert.revoked.present",
      `${named(x)} was revoked${r.reason ? ` (${r.reason})` : ""}${r.revokedAt ? ` on ${r.revokedAt}` : ""} and is still installed.`,
      x.c.path,
      ev(x.c),
    );
  },
  (x) => {
    const { c } = x;
    const left = c.notAfter.getTime() - x.now;
    if (left < 0)
      return finding("cert.expired", `${named(x)} expired on ${c.notAfter.toISOString()}.`, c.path, ev(c));
    // A year's notice for a CA file; chain members inside a leaf's file (the kubelet's throwaway CA) count as the leaf.
    if (left >= (c.isCA && c.index === 0 ? 365 : x.opts.expiringDays) * DAY) return undefined;
    const daysLeft = Math.floor(left / DAY);
    return finding("cert.expiring", `${named(x)} expires in ${daysLeft} days.`, c.path, {
      ...ev(c),
      daysLeft,
    });
  },
  (x) => {
    const { c } = x;
    const bits = c.keyBits ?? 0;
    const weak =
      (c.keyType.startsWith("RSA") && bits < 2048) ||
      (c.keyType.startsWith("ECDSA") && bits < 256) ||
      c.keyType === "dsa";
    if (!weak) return undefined;
    return finding("cert.weak-key", `${named(x)} has a ${c.keyType} key.`, c.path, {
      ...ev(c),
      key: c.keyType,
    });
  },
  (x) =>
    !x.c.selfSigned && /sha1|md5/i.test(x.c.signatureAlgorithm)
      ? finding("cert.weak-sig", `${named(x)} is signed with ${x.c.signatureAlgorithm}.`, x.c.path, {
          ...ev(x.c),
          signature: x.c.signatureAlgorithm,
        })
      : undefined,
  (x) => {
    const eku = ekuOf(x.c);
    if (!x.c.isCA || x.c.selfSigned || !(eku.includes(SERVER_AUTH) || eku.includes(CLIENT_AUTH)))
      return undefined;
    return finding(
      "cert.ca-leaf",
      `${named(x)} is a TLS ${eku.includes(SERVER_AUTH) ? "server" : "client"} certificate with CA:TRUE.`,
      x.c.path,
      ev(x.c),
    );
  },
  (x) => {
    if (!x.c.organizations.includes("system:masters") || x.superAdmin.has(x.c.path)) return undefined;
    const etcdOnly = /etcd/i.test(x.c.issuerCommonName);
    return finding(
      "cert.system-masters",
      `${named(x)} is in group system:masters${etcdOnly ? " (signed by the etcd CA: only an API credential if etcd shares the cluster CA)" : ""}.`,
      x.c.path,
      ev(x.c),
      etcdOnly ? "low" : "high",
    );
  },
  (x) => {
    const { c } = x;
    const eku = ekuOf(c);
    const days = (c.notAfter.getTime() - c.notBefore.getTime()) / DAY;
    if (c.isCA || !eku.includes(CLIENT_AUTH) || eku.includes(SERVER_AUTH) || days <= x.opts.clientMaxDays)
      return undefined;
    return finding(
      "cert.client.long-lived",
      `${named(x)} is a client certificate valid for ${Math.round(days)} days.`,
      c.path,
      { ...ev(c), days: Math.round(days) },
    );
  },
  (x) => {
    const { c } = x;
    if (c.isCA || c.selfSigned) return undefined;
    const issuer = (x.cas.get(c.issuer) ?? []).find((ca) => c.x509.checkIssued(ca.x509));
    if (!issuer || issuer.notAfter >= c.notAfter) return undefined;
    return finding(
      "cert.ca-outlived",
      `${named(x)} outlives its CA "${issuer.commonName}" (${issuer.notAfter.toISOString()}).`,
      c.path,
      ev(c),
    );
  },
  (x) =>
    ekuOf(x.c).includes(SERVER_AUTH) && !x.c.isCA && x.c.dnsNames.length === 0 && x.c.ipAddresses.length === 0
      ? finding("cert.san", `${named(x)} is a server certificate without any SAN.`, x.c.path, ev(x.c))
      : undefined,
];

/** Content of every certificate found: lifetime, strength, identity. */
const content: Rule = ({ snap, opts }) => {
  const certs = uniqueCerts(snap.certs);
  const cas = new Map<string, CertInfo[]>();
  for (const c of certs) if (c.isCA) cas.set(c.subject, [...(cas.get(c.subject) ?? []), c]);
  const base = {
    now: snap.now.getTime(),
    opts,
    revoked: snap.revoked,
    superAdmin: new Set(snap.layout.superAdmin),
    cas,
  };
  return certs.flatMap((c) => {
    const where = c.field ? `${c.path} ${c.field}` : `${c.path}${c.index > 0 ? ` [${c.index}]` : ""}`;
    return runChecks(CERT_CHECKS, { ...base, c, where });
  });
};

type Snap = AuditContext["snap"];

const spki = (c: CertInfo) => spkiSha256(c.x509.publicKey);

/** The key that goes with a certificate file: in the same file, else its sibling x.key. */
function keyFor(snap: Snap, path: string, keys: { publicSpki: string }[]) {
  if (keys[0] || !/\.(crt|cert)$/.test(path)) return { key: keys[0], keyPath: path };
  const keyPath = path.replace(/\.(crt|cert)$/, ".key");
  return { key: snap.pem.get(keyPath)?.keys[0], keyPath };
}

/** Certificate/key pairs: files holding both, siblings (x.crt + x.key), kubeconfig users. */
const pairs: Rule = ({ snap }) => {
  const out: Finding[] = [];
  for (const [path, parsed] of snap.pem) {
    const cert = parsed.certs[0];
    if (!cert) continue;
    const { key, keyPath } = keyFor(snap, path, parsed.keys);
    if (key && key.publicSpki !== spki(cert))
      out.push(
        finding("cert.key-mismatch", `${keyPath} is not the private key of ${path}.`, keyPath, {
          certificate: path,
          key: keyPath,
          sha256: cert.sha256,
        }),
      );
  }
  for (const k of snap.kubeconfigs)
    for (const u of k.users.filter((u) => u.clientCert && u.clientKey))
      if (u.clientKey?.publicSpki !== (u.clientCert && spki(u.clientCert)))
        out.push(
          finding(
            "cert.key-mismatch",
            `${k.path}: user "${u.name}" embeds a key that does not match its certificate.`,
            k.path,
            { file: k.path, user: u.name },
          ),
        );
  return out;
};

type Flags = Map<string, string>;

interface Wiring {
  leaf?: string;
  ca?: string;
  /** CA certificates given directly (a kubeconfig's certificate-authority-data). */
  caCerts?: CertInfo[];
  role: TlsRole;
  who: string;
  sans?: SanSet;
}

/** Which certificate each consumer verifies against which CA: from flags, else kubeadm's catalog. */
function wirings(snap: Snap): Wiring[] {
  const api = snap.components.get("kube-apiserver")?.flags;
  const etcd = snap.components.get("etcd")?.flags;
  const w = [...(api ? apiServerWirings(snap, api, etcd) : []), ...(etcd ? etcdWirings(etcd) : [])];
  if (!api && !etcd && (snap.layout.distro === "kubeadm" || snap.layout.distro === "kind"))
    w.push(...catalogWirings(snap));
  return w.filter((x) => x.leaf);
}

function apiServerWirings(snap: Snap, api: Flags, etcd: Flags | undefined): Wiring[] {
  // Clients of the API server trust the CA in their kubeconfig: the node's admin kubeconfig if any.
  const admin = snap.kubeconfigs.find(
    (k) => snap.layout.adminKubeconfigs.includes(k.path) && (k.clusters[0]?.caCerts.length ?? 0) > 0,
  );
  const w: Wiring[] = [
    {
      leaf: api.get("tls-cert-file"),
      ca: admin ? admin.path : api.get("client-ca-file"),
      caCerts: admin?.clusters[0]?.caCerts,
      role: "server",
      who: admin
        ? `kube-apiserver --tls-cert-file (clients of ${admin.path} trust its CA)`
        : "kube-apiserver --tls-cert-file (--client-ca-file)",
      sans: leafEntry("apiserver").requiredSans,
    },
    {
      leaf: api.get("kubelet-client-certificate"),
      ca: kubeletClientCaFile(snap.kubelet) ?? api.get("client-ca-file"),
      role: "client",
      who: "kube-apiserver --kubelet-client-certificate (kubelets trust their clientCAFile)",
    },
    {
      leaf: api.get("etcd-certfile"),
      ca: etcd?.get("trusted-ca-file") ?? api.get("etcd-cafile"),
      role: "client",
      who: "kube-apiserver --etcd-certfile (etcd trusts --trusted-ca-file)",
    },
    {
      leaf: api.get("proxy-client-cert-file"),
      ca: api.get("requestheader-client-ca-file"),
      role: "client",
      who: "kube-apiserver --proxy-client-cert-file (--requestheader-client-ca-file)",
    },
  ];
  const kubeletServing = kubeletServingCertFile(snap.kubelet);
  if (api.get("kubelet-certificate-authority") && kubeletServing)
    w.push({
      leaf: kubeletServing,
      ca: api.get("kubelet-certificate-authority"),
      role: "server",
      who: "kubelet tlsCertFile (kube-apiserver --kubelet-certificate-authority)",
    });
  return w;
}

function etcdWirings(etcd: Flags): Wiring[] {
  return [
    {
      leaf: etcd.get("cert-file"),
      ca: etcd.get("trusted-ca-file"),
      role: "server",
      who: "etcd --cert-file (--trusted-ca-file)",
      sans: leafEntry("etcd-server").requiredSans,
    },
    {
      leaf: etcd.get("peer-cert-file"),
      ca: etcd.get("peer-trusted-ca-file"),
      role: "peer",
      who: "etcd --peer-cert-file (--peer-trusted-ca-file)",
    },
  ];
}

/** Without the components' flags: kubeadm's own pairs as the catalog wires them. */
function catalogWirings(snap: Snap): Wiring[] {
  const tree = treePaths("/", snap.layout.pkiDirs[0] ?? DEFAULT_CERTIFICATES_DIR);
  return LEAVES.filter((leaf) => snap.files.exists(leafPaths(tree, leaf).cert)).map((leaf) => ({
    leaf: leafPaths(tree, leaf).cert,
    ca: caPaths(tree, leaf.ca).cert,
    role: leaf.role,
    who: `kubeadm's ${leaf.id} (catalog)`,
    sans: leaf.requiredSans,
  }));
}

const EKU_NEEDED: Record<TlsRole, string[]> = {
  server: [SERVER_AUTH],
  client: [CLIENT_AUTH],
  peer: [SERVER_AUTH, CLIENT_AUTH],
};

interface WiredCert {
  w: Wiring & { leaf: string };
  /** The leaf's file: the leaf, then whatever chain the file bundles. */
  certs: CertInfo[];
  leaf: CertInfo;
  now: Date;
  snap: Snap;
}

/** What each wired certificate must be for its consumer: one check each. */
const WIRING_CHECKS: Check<WiredCert>[] = [
  ({ w, certs, leaf, now, snap }) => {
    const cas = w.caCerts ?? certsAt(snap, w.ca);
    if (!w.ca || cas.length === 0) return undefined;
    const res = verifyPath(leaf, cas, certs.slice(1), { at: now, validity: "issuers" });
    if (res.ok) return undefined;
    return finding(
      "cert.chain",
      `${w.leaf} does not verify against ${w.ca}: ${res.reason} (${w.who}).`,
      w.leaf,
      { file: w.leaf, ca: w.ca, sha256: leaf.sha256 },
    );
  },
  ({ w, leaf }) => {
    const eku = leaf.extKeyUsageOids;
    const missing = eku ? EKU_NEEDED[w.role].filter((n) => !eku.includes(n)) : [];
    if (missing.length === 0) return undefined;
    return finding(
      "cert.eku",
      `${w.leaf} is used as a ${w.role} certificate (${w.who}) but lacks ${missing.map((m) => (m === SERVER_AUTH ? "serverAuth" : "clientAuth")).join(" and ")}.`,
      w.leaf,
      { file: w.leaf },
    );
  },
  ({ w, leaf }) => {
    const lacking = w.sans
      ? [
          ...w.sans.dns.filter((d) => !leaf.dnsNames.includes(d)),
          ...w.sans.ips.filter((i) => !leaf.ipAddresses.includes(i)),
        ]
      : [];
    if (lacking.length === 0) return undefined;
    return finding("cert.san", `${w.leaf} lacks the SANs ${lacking.join(", ")} (${w.who}).`, w.leaf, {
      file: w.leaf,
      missing: lacking.join(","),
    });
  },
];

/** Chains, SANs and EKUs of the certificates components actually use. */
const wiringRule: Rule = ({ snap }) =>
  wirings(snap).flatMap((w) => {
    const certs = certsAt(snap, w.leaf);
    const leaf = certs[0];
    if (!leaf || !w.leaf) return [];
    return runChecks(WIRING_CHECKS, { w: { ...w, leaf: w.leaf }, certs, leaf, now: snap.now, snap });
  });

export const certificateRules: Rule[] = [content, pairs, wiringRule];
