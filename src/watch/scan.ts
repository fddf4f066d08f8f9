import { basename, dirname } from "node:path";
import { type NodeSnapshot, takeSnapshot } from "../node/snapshot.js";
import { readCrlUnverified } from "../x509/crl.js";
import { readName } from "../x509/der.js";
import type { CertInfo } from "../x509/parse.js";

/**
 * One look at the node for `kubepki watch`: every certificate the node reader finds (PKI folders,
 * the kubelet's, files the components' flags name, certificates embedded in kubeconfigs), the
 * CRLs beside them, and the folders to watch for changes.
 */
export interface CertSample {
  labels: Record<string, string>;
  notBefore: Date;
  notAfter: Date;
}

export interface CrlSample {
  path: string;
  labels: Record<string, string>;
  issuerDer: Buffer;
  thisUpdate: Date;
  nextUpdate?: Date;
  number: bigint;
  revoked: number;
}

export interface Scan {
  snap: NodeSnapshot;
  certs: CertSample[];
  crls: CrlSample[];
  /** Files that could not be read or parsed (x509_read_errors). */
  readErrors: { path: string; message: string }[];
  /** Node folders whose changes trigger a rescan. */
  dirs: string[];
}

/** The name attributes enix/x509-certificate-exporter turns into labels (first value of each). */
const NAME_LABELS: [string, string][] = [
  ["C", "2.5.4.6"],
  ["ST", "2.5.4.8"],
  ["L", "2.5.4.7"],
  ["O", "2.5.4.10"],
  ["OU", "2.5.4.11"],
  ["CN", "2.5.4.3"],
];

export const CERT_LABELS = [
  "filename",
  "filepath",
  "serial_number",
  "embedded_kind",
  "embedded_key",
  ...["subject", "issuer"].flatMap((p) => NAME_LABELS.map(([n]) => `${p}_${n}`)),
];

function nameLabels(der: Buffer, prefix: string, out: Record<string, string>): void {
  const attrs = readName(der);
  for (const [label, oid] of NAME_LABELS) {
    const value = attrs.find((a) => a.oid === oid)?.value;
    if (value) out[`${prefix}_${label}`] = value;
  }
}

/** The exporter's labels: file, decimal serial (Go's big.Int), subject and issuer attributes. */
export function certLabels(
  c: CertInfo,
  filepath: string,
  embedded?: { kind: "user" | "cluster"; key: string },
): Record<string, string> {
  const labels: Record<string, string> = {
    filename: basename(filepath),
    filepath,
    serial_number: BigInt(`0x${c.serialHex || "0"}`).toString(10),
  };
  nameLabels(c.issuerDer, "issuer", labels);
  nameLabels(c.subjectDer, "subject", labels);
  if (embedded) {
    labels.embedded_kind = embedded.kind;
    labels.embedded_key = embedded.key;
  }
  return labels;
}

const sample = (c: CertInfo, labels: Record<string, string>): CertSample => ({
  labels,
  notBefore: c.notBefore,
  notAfter: c.notAfter,
});

/**
 * The kubelet keeps every pair it rotated to (kubelet-client-2026-11-30-05-00-00.pem) and points
 * kubelet-client-current.pem at the one in use: only that link is listed, or the old ones would
 * raise expiry alerts for files nothing reads.
 */
const ROTATED = /\/kubelet-(client|server)-(?!current\.pem$)[^/]+\.pem$/;

function fileSamples(snap: NodeSnapshot): CertSample[] {
  const out: CertSample[] = [];
  for (const [path, parsed] of snap.pem) {
    if (ROTATED.test(path) && snap.files.exists(path.replace(ROTATED, "/kubelet-$1-current.pem"))) continue;
    for (const c of parsed.certs) out.push(sample(c, certLabels(c, path)));
  }
  return out;
}

/** Certificates embedded in kubeconfigs: embedded_kind and embedded_key, as the exporter labels them. */
function kubeconfigSamples(snap: NodeSnapshot): CertSample[] {
  const out: CertSample[] = [];
  for (const k of snap.kubeconfigs) {
    for (const cl of k.clusters)
      for (const c of cl.caCerts)
        out.push(sample(c, certLabels(c, k.path, { kind: "cluster", key: cl.name })));
    for (const u of k.users)
      if (u.clientCert)
        out.push(sample(u.clientCert, certLabels(u.clientCert, k.path, { kind: "user", key: u.name })));
  }
  return out;
}

function crlSamples(snap: NodeSnapshot, errors: Scan["readErrors"]): CrlSample[] {
  const out: CrlSample[] = [];
  const seen = new Set<string>();
  for (const dir of snap.pkiDirs)
    for (const path of snap.files.walk(dir, 8)) {
      if (!path.endsWith(".crl") || seen.has(path)) continue;
      seen.add(path);
      const data = snap.files.read(path);
      if (!data) continue;
      try {
        const crl = readCrlUnverified(data);
        const labels: Record<string, string> = { filename: basename(path), filepath: path };
        nameLabels(crl.issuerDer, "issuer", labels);
        out.push({ path, labels, ...crl, revoked: crl.entries.length });
      } catch (err) {
        errors.push({ path, message: `not a CRL: ${(err as Error).message}` });
      }
    }
  return out;
}

/** Reads the node once. */
export function scanNode(root: string, now = new Date()): Scan {
  const snap = takeSnapshot({ root, now });
  const readErrors: Scan["readErrors"] = snap.warnings.map((w) => ({ path: w.path, message: w.message }));
  const certs = [...fileSamples(snap), ...kubeconfigSamples(snap)];
  const crls = crlSamples(snap, readErrors);
  const dirs = new Set<string>([...snap.pkiDirs, ...snap.layout.kubeletPkiDirs]);
  for (const p of [...snap.pem.keys(), ...snap.kubeconfigs.map((k) => k.path)]) dirs.add(dirname(p));
  for (const d of [...dirs]) for (const p of snap.files.walk(d, 8)) dirs.add(dirname(p));
  return { snap, certs, crls, readErrors, dirs: [...dirs].filter((d) => snap.files.isDir(d)).sort() };
}
