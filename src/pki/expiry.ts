import { join } from "node:path";
import { errorMessage, InputError } from "../errors.js";
import { exists } from "../fsx/read.js";
import { type CertInfo, parseCertificatesPem } from "../x509/parse.js";
import { signedBy } from "../x509/verify.js";
import type { CaId } from "./catalog.js";
import { caItems, noPkiError, type TreeItem, treeItems } from "./inventory.js";
import { parseKubeconfig } from "./kubeconfig.js";
import { caPaths, offlineCaKeyPath, readTreeText, type TreePaths } from "./paths.js";

/** One row, in kubeadm's output.kubeadm.k8s.io/v1alpha3 Certificate shape (+ path, error, ...). */
export interface ExpirationRow {
  name: string;
  expirationDate?: string;
  residualTime: number;
  externallyManaged: boolean;
  /** Absent when the certificate was not issued by a CA of the cluster (the kubelet's self-signed one). */
  caName?: string;
  missing: boolean;
  path: string;
  /** Kept off the node (super-admin.conf, other nodes' kubelet pairs); not checked without --offline-dir. */
  offline?: boolean;
  /** Why the file could not be read, with its cause (`-o json` prints the message). */
  error?: Error;
  /** Something to know that does not stop the row (a certificate its CA did not sign). */
  warning?: string;
}

export interface CertificateExpirationInfo {
  kind: "CertificateExpirationInfo";
  apiVersion: "output.kubeadm.k8s.io/v1alpha3";
  certificates: ExpirationRow[];
  certificateAuthorities: ExpirationRow[];
}

/** Reads the certificates an item stands for: a PEM file (leaf first), or a kubeconfig's client certificate. */
export function readItemChain(
  paths: TreePaths,
  item: { kind: TreeItem["kind"]; path: string },
): CertInfo[] | undefined {
  const text = readTreeText(paths, item.path);
  if (text === undefined) return undefined;
  if (item.kind === "certificate") return parseCertificatesPem(text, item.path);
  const view = parseKubeconfig(text, item.path);
  if (view.clientCert) return [view.clientCert];
  if (view.clientCertificatePath) {
    const inner = join(paths.root, view.clientCertificatePath);
    return readItemChain(paths, { kind: "certificate", path: inner });
  }
  throw new InputError(`${item.path} has no client certificate in its current context`);
}

export function readItemCertificate(
  paths: TreePaths,
  item: { kind: TreeItem["kind"]; path: string },
): CertInfo | undefined {
  return readItemChain(paths, item)?.[0];
}

function caKeyAvailable(paths: TreePaths, id: CaId): boolean {
  const offline = offlineCaKeyPath(paths, id);
  return exists(caPaths(paths, id).key) || (offline !== undefined && exists(offline));
}

/** Self-signed, or signed by a CA shipped in the same file (what the kubelet makes for itself). */
export function selfContained(chain: CertInfo[]): boolean {
  const [leaf, ...rest] = chain;
  if (!leaf) return false;
  return (leaf.selfIssued && signedBy(leaf, leaf)) || rest.some((c) => signedBy(leaf, c));
}

type Attribution = { caName?: string; warning?: string };

/**
 * Which CA a certificate belongs to: its catalog CA when that CA signed it. A self-signed
 * certificate, or one signed by a CA shipped in its own file (the kubelet's throwaway
 * `<host>-ca@<ts>`), belongs to none. With the CA certificate unreadable, the catalog's.
 */
function attribute(chain: CertInfo[], caId: CaId, ca: CertInfo | undefined, caPath: string): Attribution {
  const [leaf] = chain;
  if (!leaf) return {};
  if (ca && signedBy(leaf, ca)) return { caName: caId };
  if (selfContained(chain)) return {};
  if (!ca) return { caName: caId };
  return { warning: `not signed by the ${caId} in ${caPath}` };
}

/** A CA certificate read once for its own row and for the rows it signed: absent, read, or why not. */
type CaRead = { cert?: CertInfo; error?: Error };

function readCa(paths: TreePaths, id: CaId): CaRead {
  try {
    return { cert: readItemCertificate(paths, { kind: "certificate", path: caPaths(paths, id).cert }) };
  } catch (err) {
    return { error: asError(err) };
  }
}

function certificateRow(
  paths: TreePaths,
  item: TreeItem,
  ca: CertInfo | undefined,
  now: Date,
): ExpirationRow {
  const base = { name: item.name, residualTime: 0, path: item.path, missing: false };
  const offline = item.offline ? { offline: true } : {};
  try {
    const chain = readItemChain(paths, item);
    const leaf = chain?.[0];
    if (!chain || !leaf) {
      // Off the node and not looked for: offline, not missing.
      if (item.offline && !paths.offlineDir) return { ...base, externallyManaged: false, ...offline };
      return { ...base, externallyManaged: false, caName: item.caId, missing: true, ...offline };
    }
    const who = attribute(chain, item.caId, ca, caPaths(paths, item.caId).cert);
    return {
      ...base,
      expirationDate: isoSeconds(leaf.notAfter),
      residualTime: Math.trunc((leaf.notAfter.getTime() - now.getTime()) / 1000),
      externallyManaged: who.caName !== undefined && !caKeyAvailable(paths, item.caId),
      ...(who.caName ? { caName: who.caName } : {}),
      ...offline,
      ...(who.warning ? { warning: who.warning } : {}),
    };
  } catch (err) {
    return { ...base, externallyManaged: false, caName: item.caId, ...offline, error: asError(err) };
  }
}

function caRow(paths: TreePaths, ca: { id: CaId; cert: string }, read: CaRead, now: Date): ExpirationRow {
  const base = { name: ca.id, residualTime: 0, path: ca.cert, missing: false };
  const externallyManaged = !caKeyAvailable(paths, ca.id);
  const { cert, error } = read;
  if (error) return { ...base, externallyManaged, error };
  if (!cert) return { ...base, externallyManaged, missing: true };
  return {
    ...base,
    expirationDate: isoSeconds(cert.notAfter),
    residualTime: Math.trunc((cert.notAfter.getTime() - now.getTime()) / 1000),
    externallyManaged,
  };
}

const asError = (err: unknown) => (err instanceof Error ? err : new Error(errorMessage(err)));

const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** kubeadm's field order first, then ours; absent fields left out. */
function ordered(r: ExpirationRow): ExpirationRow {
  const keys: (keyof ExpirationRow)[] = [
    "name",
    "expirationDate",
    "residualTime",
    "caName",
    "externallyManaged",
    "missing",
    "path",
    "offline",
    "error",
    "warning",
  ];
  return Object.fromEntries(
    keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]),
  ) as unknown as ExpirationRow;
}

/**
 * kubeadm's `certs check-expiration` over a tree. A tree with none of the files (an empty or
 * mistyped root) is an input error, not a table of !MISSING! rows.
 */
export function checkExpiration(paths: TreePaths, now = new Date()): CertificateExpirationInfo {
  const cas = new Map<CaId, CaRead>();
  const caOf = (id: CaId) => {
    const read = cas.get(id) ?? readCa(paths, id);
    cas.set(id, read);
    return read;
  };
  const certificates = treeItems(paths).map((item) =>
    ordered(certificateRow(paths, item, caOf(item.caId).cert, now)),
  );
  const certificateAuthorities = caItems(paths).map((ca) => ordered(caRow(paths, ca, caOf(ca.id), now)));
  const found = (r: ExpirationRow) => r.expirationDate !== undefined || r.error !== undefined;
  if (!certificates.some(found) && !certificateAuthorities.some(found)) throw noPkiError(paths);
  return {
    kind: "CertificateExpirationInfo",
    apiVersion: "output.kubeadm.k8s.io/v1alpha3",
    certificates,
    certificateAuthorities,
  };
}

/** The rows that make check-expiration exit 1: unreadable, missing or expired. */
export function expirationProblems(info: CertificateExpirationInfo): ExpirationRow[] {
  return [...info.certificates, ...info.certificateAuthorities].filter(
    (r) => r.missing || r.error !== undefined || (r.expirationDate !== undefined && r.residualTime <= 0),
  );
}
