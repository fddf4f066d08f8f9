import { dirname, isAbsolute, join } from "node:path";
import type { CaKeyRole, Layout } from "../layout/types.js";
import { caEntry } from "../pki/catalog.js";
import type { KubeconfigFact } from "../pki/kubeconfig.js";
import { type KeyFact, spkiSha256 } from "../x509/keys.js";
import type { CertInfo } from "../x509/parse.js";
import type { ComponentFlags } from "./flags.js";
import { get } from "./yaml.js";

/** Flags whose value names a certificate, key or CA bundle (--client-ca-file, --etcd-certfile, ...). */
const PKI_FLAG = /(?:ca-?file|cert-?file|key-?file|certificate|certificate-authority|client-key)$/;
const KUBECONFIG_FLAG =
  /^(?:kubeconfig|authentication-kubeconfig|authorization-kubeconfig|bootstrap-kubeconfig)$/;
/** Trust stores hold hundreds of public roots, top folders hold everything: follow the file, not the folder. */
const TRUST_STORES = [
  "/etc/ssl",
  "/etc/pki/tls",
  "/etc/pki/ca-trust",
  "/usr/share/ca-certificates",
  "/usr/local/share/ca-certificates",
];
const TOP_FOLDERS = new Set(["/", "/etc", "/root", "/home", "/usr", "/var", "/var/lib", "/tmp"]);

/** Files the components point at: path -> the flags that name it ("kube-apiserver --client-ca-file"). */
export interface Flagged {
  pem: Map<string, string[]>;
  kubeconfigs: Map<string, string[]>;
}

function add(map: Map<string, string[]>, path: string, who: string): void {
  if (!isAbsolute(path)) return;
  map.set(path, [...(map.get(path) ?? []), who]);
}

/** Every PKI file and kubeconfig named by a component flag or the kubelet's configuration. */
export function flaggedFiles(components: Iterable<ComponentFlags>, kubeletConfig: unknown): Flagged {
  const out: Flagged = { pem: new Map(), kubeconfigs: new Map() };
  for (const c of components) for (const [flag, value] of c.flags) addFlagged(out, c, flag, value);
  for (const field of [["tlsCertFile"], ["tlsPrivateKeyFile"], ["authentication", "x509", "clientCAFile"]]) {
    const v = get(kubeletConfig, ...field);
    if (typeof v === "string") add(out.pem, v, `kubelet ${field.join(".")}`);
  }
  return out;
}

/** A kubeconfig flag names one file; a PKI flag may name several, comma-separated. */
function addFlagged(out: Flagged, c: ComponentFlags, flag: string, value: string): void {
  const who = `${c.component} --${flag}`;
  if (KUBECONFIG_FLAG.test(flag)) add(out.kubeconfigs, value, who);
  else if (PKI_FLAG.test(flag)) for (const v of value.split(",")) add(out.pem, v.trim(), who);
}

/** The system trust store (an --oidc-ca-file often names its bundle): public roots, not the cluster's PKI. */
export function inTrustStore(path: string): boolean {
  return TRUST_STORES.some((t) => path.startsWith(`${t}/`));
}

/** The folder of a flagged file, when it is worth inventorying as a PKI folder (not a trust store). */
export function pkiDirOf(path: string): string | undefined {
  const dir = dirname(path);
  return TOP_FOLDERS.has(dir) || inTrustStore(path) ? undefined : dir;
}

/** Files a kubeconfig references (certificate-authority, client-certificate, client-key), made absolute. */
export function kubeconfigFiles(k: KubeconfigFact): string[] {
  const rel = (p: string) => (isAbsolute(p) ? p : join(dirname(k.path), p));
  return [
    ...k.clusters.flatMap((c) => (c.caFile ? [rel(c.caFile)] : [])),
    ...k.users.flatMap((u) =>
      [u.clientCertificateFile, u.clientKeyFile].filter((p) => p !== undefined).map(rel),
    ),
  ];
}

/**
 * CA private keys found by content rather than by layout: a key whose public half is a CA
 * certificate's. Named by what the components use that CA for.
 */
export function caKeysByContent(
  layout: Layout,
  certs: CertInfo[],
  keys: KeyFact[],
  flagged: Flagged,
  signingKeys: Set<string>,
): CaKeyRole[] {
  const known = new Set(layout.caKeys.map((k) => k.path));
  const cas = casBySpki(certs);
  const out: CaKeyRole[] = [];
  for (const k of keys) {
    const ca = cas.get(k.publicSpki);
    if (!ca || known.has(k.path)) continue;
    known.add(k.path);
    const uses = ca.flatMap((c) => flagged.pem.get(c.path) ?? []).join(" ");
    const name = CA_BY_USE.find(([use]) => use.test(uses))?.[1] ?? `CA "${ca[0]?.commonName ?? ""}"`;
    out.push({ path: k.path, name, signsCsrs: name === caEntry("ca").shortName || signingKeys.has(k.path) });
  }
  return out;
}

/** Which CA a certificate is, by the flags that name it (first match wins). */
const CA_BY_USE: [RegExp, string][] = [
  [/client-ca-file|cluster-signing|kubelet-certificate-authority|root-ca-file/, caEntry("ca").shortName],
  [/requestheader-client-ca-file/, caEntry("front-proxy-ca").shortName],
  [/etcd|trusted-ca-file/, caEntry("etcd-ca").shortName],
];

/** CA certificates read from files, by the hash of their public key. */
function casBySpki(certs: CertInfo[]): Map<string, CertInfo[]> {
  const cas = new Map<string, CertInfo[]>();
  for (const c of certs.filter((c) => c.isCA && c.origin === "file")) {
    const spki = spkiSha256(c.x509.publicKey);
    cas.set(spki, [...(cas.get(spki) ?? []), c]);
  }
  return cas;
}

/** Every key file kube-controller-manager signs CSRs with (--cluster-signing-key-file and the per-signer ones). */
export function signingKeyFiles(kcm: ComponentFlags | undefined): Set<string> {
  const out = new Set<string>();
  for (const [flag, value] of kcm?.flags ?? [])
    if (/^cluster-signing-(?:.+-)?key-file$/.test(flag) && value) out.add(value);
  return out;
}
