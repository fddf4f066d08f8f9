import { type CertFact, spkiSha256, uniqueCerts } from "../../node/certs.js";
import { kubeletClientCaFile, kubeletServingCertFile } from "../../node/snapshot.js";
import { LEAVES, leafEntry, type TlsRole } from "../../pki/catalog.js";
import { caPaths, DEFAULT_CERTIFICATES_DIR, leafPaths, treePaths } from "../../pki/paths.js";
import type { SanSet } from "../../pki/spec.js";
import { certsAt, chainsTo } from "../chain.js";
import { finding, type Rule } from "../context.js";
import type { Finding } from "../finding.js";

const DAY = 86_400_000;
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

const ev = (c: CertFact) => ({
  file: c.path,
  subject: c.subject.replace(/\n/g, ", "),
  sha256: c.sha256,
  notAfter: c.notAfter.toISOString(),
});

/** Content of every certificate found: lifetime, strength, identity. */
const content: Rule = ({ snap, opts }) => {
  const out: Finding[] = [];
  const now = snap.now.getTime();
  const superAdmin = new Set(snap.layout.superAdmin);
  const cas = new Map<string, CertFact[]>();
  const certs = uniqueCerts(snap.certs);
  for (const c of certs) if (c.isCA) cas.set(c.subject, [...(cas.get(c.subject) ?? []), c]);
  for (const c of certs) {
    const where = c.field ? `${c.path} ${c.field}` : `${c.path}${c.index > 0 ? ` [${c.index}]` : ""}`;
    const revoked = snap.revoked.get(c.sha256);
    if (revoked)
      out.push(
        finding(
          "cert.revoked.present",
          `${where} ("${c.commonName}") was revoked${revoked.reason ? ` (${revoked.reason})` : ""}${revoked.revokedAt ? ` on ${revoked.revokedAt}` : ""} and is still installed.`,
          c.path,
          ev(c),
        ),
      );
    const left = c.notAfter.getTime() - now;
    if (left < 0)
      out.push(
        finding(
          "cert.expired",
          `${where} ("${c.commonName}") expired on ${c.notAfter.toISOString()}.`,
          c.path,
          ev(c),
        ),
      );
    // A year's notice for a CA file; chain members inside a leaf's file (the kubelet's throwaway CA) count as the leaf.
    else if (left < (c.isCA && c.index === 0 ? 365 : opts.expiringDays) * DAY)
      out.push(
        finding(
          "cert.expiring",
          `${where} ("${c.commonName}") expires in ${Math.floor(left / DAY)} days.`,
          c.path,
          { ...ev(c), daysLeft: Math.floor(left / DAY) },
        ),
      );
    const weakKey =
      (c.keyType.startsWith("RSA") && (c.keyBits ?? 0) < 2048) ||
      (c.keyType.startsWith("ECDSA") && (c.keyBits ?? 0) < 256) ||
      c.keyType === "dsa";
    if (weakKey)
      out.push(
        finding("cert.weak-key", `${where} ("${c.commonName}") has a ${c.keyType} key.`, c.path, {
          ...ev(c),
          key: c.keyType,
        }),
      );
    if (!c.selfSigned && /sha1|md5/i.test(c.signatureAlgorithm))
      out.push(
        finding(
          "cert.weak-sig",
          `${where} ("${c.commonName}") is signed with ${c.signatureAlgorithm}.`,
          c.path,
          { ...ev(c), signature: c.signatureAlgorithm },
        ),
      );
    const eku = c.extKeyUsage ?? [];
    if (c.isCA && (eku.includes(SERVER_AUTH) || eku.includes(CLIENT_AUTH)) && !c.selfSigned)
      out.push(
        finding(
          "cert.ca-leaf",
          `${where} ("${c.commonName}") is a TLS ${eku.includes(SERVER_AUTH) ? "server" : "client"} certificate with CA:TRUE.`,
          c.path,
          ev(c),
        ),
      );
    if (c.organizations.includes("system:masters") && !superAdmin.has(c.path)) {
      const etcdOnly = /etcd/i.test(c.issuerCommonName);
      out.push(
        finding(
          "cert.system-masters",
          `${where} ("${c.commonName}") is in group system:masters${etcdOnly ? " (signed by the etcd CA: only an API credential if etcd shares the cluster CA)" : ""}.`,
          c.path,
          ev(c),
          etcdOnly ? "low" : "high",
        ),
      );
    }
    const lifetime = (c.notAfter.getTime() - c.notBefore.getTime()) / DAY;
    if (!c.isCA && eku.includes(CLIENT_AUTH) && !eku.includes(SERVER_AUTH) && lifetime > opts.clientMaxDays)
      out.push(
        finding(
          "cert.client.long-lived",
          `${where} ("${c.commonName}") is a client certificate valid for ${Math.round(lifetime)} days.`,
          c.path,
          { ...ev(c), days: Math.round(lifetime) },
        ),
      );
    if (!c.isCA && !c.selfSigned) {
      const issuer = (cas.get(c.issuer) ?? []).find((ca) => c.x509.checkIssued(ca.x509));
      if (issuer && issuer.notAfter < c.notAfter)
        out.push(
          finding(
            "cert.ca-outlived",
            `${where} ("${c.commonName}") outlives its CA "${issuer.commonName}" (${issuer.notAfter.toISOString()}).`,
            c.path,
            ev(c),
          ),
        );
    }
    if (eku.includes(SERVER_AUTH) && !c.isCA && c.dnsNames.length === 0 && c.ipAddresses.length === 0)
      out.push(
        finding(
          "cert.san",
          `${where} ("${c.commonName}") is a server certificate without any SAN.`,
          c.path,
          ev(c),
        ),
      );
  }
  return out;
};

const spki = (c: CertFact) => spkiSha256(c.x509.publicKey);

/** Certificate/key pairs: files holding both, siblings (x.crt + x.key), kubeconfig users. */
const pairs: Rule = ({ snap }) => {
  const out: Finding[] = [];
  for (const [path, parsed] of snap.pem) {
    const cert = parsed.certs[0];
    if (!cert) continue;
    let key = parsed.keys[0];
    let keyPath = path;
    if (!key && /\.(crt|cert)$/.test(path)) {
      keyPath = path.replace(/\.(crt|cert)$/, ".key");
      key = snap.pem.get(keyPath)?.keys[0];
    }
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
    for (const u of k.users)
      if (u.clientCert && u.clientKey && u.clientKey.publicSpki !== spki(u.clientCert))
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

interface Wiring {
  leaf?: string;
  ca?: string;
  /** CA certificates given directly (a kubeconfig's certificate-authority-data). */
  caCerts?: CertFact[];
  role: TlsRole;
  who: string;
  sans?: SanSet;
}

/** Which certificate each consumer verifies against which CA: from flags, else kubeadm's catalog. */
function wirings(snap: Parameters<Rule>[0]["snap"]): Wiring[] {
  const api = snap.components.get("kube-apiserver")?.flags;
  const etcd = snap.components.get("etcd")?.flags;
  const kubeletCa = kubeletClientCaFile(snap.kubelet);
  const w: Wiring[] = [];
  if (api) {
    // Clients of the API server trust the CA in their kubeconfig: the node's admin kubeconfig if any.
    const admin = snap.kubeconfigs.find(
      (k) => snap.layout.adminKubeconfigs.includes(k.path) && (k.clusters[0]?.caCerts.length ?? 0) > 0,
    );
    w.push({
      leaf: api.get("tls-cert-file"),
      ca: admin ? admin.path : api.get("client-ca-file"),
      caCerts: admin?.clusters[0]?.caCerts,
      role: "server",
      who: admin
        ? `kube-apiserver --tls-cert-file (clients of ${admin.path} trust its CA)`
        : "kube-apiserver --tls-cert-file (--client-ca-file)",
      sans: leafEntry("apiserver").requiredSans,
    });
    w.push({
      leaf: api.get("kubelet-client-certificate"),
      ca: kubeletCa ?? api.get("client-ca-file"),
      role: "client",
      who: "kube-apiserver --kubelet-client-certificate (kubelets trust their clientCAFile)",
    });
    w.push({
      leaf: api.get("etcd-certfile"),
      ca: etcd?.get("trusted-ca-file") ?? api.get("etcd-cafile"),
      role: "client",
      who: "kube-apiserver --etcd-certfile (etcd trusts --trusted-ca-file)",
    });
    w.push({
      leaf: api.get("proxy-client-cert-file"),
      ca: api.get("requestheader-client-ca-file"),
      role: "client",
      who: "kube-apiserver --proxy-client-cert-file (--requestheader-client-ca-file)",
    });
    const kubeletServing = kubeletServingCertFile(snap.kubelet);
    if (api.get("kubelet-certificate-authority") && kubeletServing)
      w.push({
        leaf: kubeletServing,
        ca: api.get("kubelet-certificate-authority"),
        role: "server",
        who: "kubelet tlsCertFile (kube-apiserver --kubelet-certificate-authority)",
      });
  }
  if (etcd) {
    w.push({
      leaf: etcd.get("cert-file"),
      ca: etcd.get("trusted-ca-file"),
      role: "server",
      who: "etcd --cert-file (--trusted-ca-file)",
      sans: leafEntry("etcd-server").requiredSans,
    });
    w.push({
      leaf: etcd.get("peer-cert-file"),
      ca: etcd.get("peer-trusted-ca-file"),
      role: "peer",
      who: "etcd --peer-cert-file (--peer-trusted-ca-file)",
    });
  }
  if (!api && !etcd && (snap.layout.distro === "kubeadm" || snap.layout.distro === "kind"))
    w.push(...catalogWirings(snap));
  return w.filter((x) => x.leaf);
}

/** Without the components' flags: kubeadm's own pairs as the catalog wires them. */
function catalogWirings(snap: Parameters<Rule>[0]["snap"]): Wiring[] {
  const tree = treePaths("/", snap.layout.pkiDirs[0] ?? DEFAULT_CERTIFICATES_DIR);
  return LEAVES.filter((leaf) => snap.files.exists(leafPaths(tree, leaf).cert)).map((leaf) => ({
    leaf: leafPaths(tree, leaf).cert,
    ca: caPaths(tree, leaf.ca).cert,
    role: leaf.role,
    who: `kubeadm's ${leaf.id} (catalog)`,
    sans: leaf.requiredSans,
  }));
}

/** Chains, SANs and EKUs of the certificates components actually use. */
const wiringRule: Rule = ({ snap }) => {
  const out: Finding[] = [];
  for (const w of wirings(snap)) {
    const certs = certsAt(snap, w.leaf);
    const leaf = certs[0];
    if (!leaf || !w.leaf) continue;
    const cas = w.caCerts ?? certsAt(snap, w.ca);
    if (w.ca && cas.length > 0) {
      const res = chainsTo(leaf, certs.slice(1), cas, snap.now);
      if (!res.ok)
        out.push(
          finding(
            "cert.chain",
            `${w.leaf} does not verify against ${w.ca}: ${res.reason} (${w.who}).`,
            w.leaf,
            { file: w.leaf, ca: w.ca, sha256: leaf.sha256 },
          ),
        );
    }
    const eku = leaf.extKeyUsage;
    const need =
      w.role === "server" ? [SERVER_AUTH] : w.role === "client" ? [CLIENT_AUTH] : [SERVER_AUTH, CLIENT_AUTH];
    const missing = eku ? need.filter((n) => !eku.includes(n)) : [];
    if (missing.length > 0)
      out.push(
        finding(
          "cert.eku",
          `${w.leaf} is used as a ${w.role} certificate (${w.who}) but lacks ${missing.map((m) => (m === SERVER_AUTH ? "serverAuth" : "clientAuth")).join(" and ")}.`,
          w.leaf,
          { file: w.leaf },
        ),
      );
    if (w.sans) {
      const lacking = [
        ...w.sans.dns.filter((d) => !leaf.dnsNames.includes(d)),
        ...w.sans.ips.filter((i) => !leaf.ipAddresses.includes(i)),
      ];
      if (lacking.length > 0)
        out.push(
          finding("cert.san", `${w.leaf} lacks the SANs ${lacking.join(", ")} (${w.who}).`, w.leaf, {
            file: w.leaf,
            missing: lacking.join(","),
          }),
        );
    }
  }
  return out;
};

export const certificateRules: Rule[] = [content, pairs, wiringRule];
