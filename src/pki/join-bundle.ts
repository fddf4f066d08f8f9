import { createPublicKey, type KeyObject } from "node:crypto";
import { errorMessage, InputError } from "../errors.js";
import { MODE_CERT, MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import type { PendingWrite } from "../fsx/transaction.js";
import { keysMatch, parsePrivateKeyPem, parsePublicKeyPem, publicKeyToPem } from "../x509/keys.js";
import { type CertInfo, parseCertificatePem } from "../x509/parse.js";
import { CAS, type CaEntry, type CaId, sharedFileName } from "./catalog.js";
import { caPaths, offlineCaKeyPath, readTreeText, saPaths, type TreePaths } from "./paths.js";

/*
 * What every control plane of a cluster shares (kubeadm's copycerts list): the three CAs with
 * their keys, and the service-account key pair. Read from a node, checked, and planned onto a
 * joining node; the encryption is bundle-file.ts's.
 */

export interface SharedCa {
  id: CaId;
  certPem: string;
  keyPem: string;
  /** The first node kept this key in its offline folder: the joining node keeps it offline too. */
  keyOffline: boolean;
  /** SHA-256 of the CA certificate (DER). */
  sha256: string;
}

export interface SharedMaterial {
  cas: SharedCa[];
  sa: { keyPem: string; pubPem: string };
}

/** The bundle's entries, named as kubeadm names them in its kubeadm-certs Secret. */
export function sharedFiles(m: SharedMaterial): Record<string, string> {
  const files: Record<string, string> = {};
  for (const ca of m.cas) {
    const base = caEntryOf(ca.id).baseName;
    files[sharedFileName(base, ".crt")] = ca.certPem;
    files[sharedFileName(base, ".key")] = ca.keyPem;
  }
  files["sa.key"] = m.sa.keyPem;
  files["sa.pub"] = m.sa.pubPem;
  return files;
}

const caEntryOf = (id: CaId): CaEntry => CAS.find((c) => c.id === id) as CaEntry;

/** A CA certificate and its key, checked: a CA, and the key is the certificate's. */
function checkedCa(entry: CaEntry, certPem: string, keyPem: string, where: string): CertInfo {
  try {
    const cert = parseCertificatePem(certPem, `${where} ${entry.baseName}.crt`);
    if (!cert.isCA) throw new Error(`${entry.baseName}.crt is not a CA certificate`);
    const key = parsePrivateKeyPem(keyPem, `${where} ${entry.baseName}.key`);
    if (!keysMatch(key, cert.publicKey))
      throw new Error(`${entry.baseName}.key is not the private key of ${entry.baseName}.crt`);
    return cert;
  } catch (err) {
    throw new InputError(`${where}: the ${entry.longName}: ${errorMessage(err)}`, { cause: err });
  }
}

function checkedSa(keyPem: string, pubPem: string, where: string): KeyObject {
  try {
    const key = parsePrivateKeyPem(keyPem, `${where} sa.key`);
    if (!keysMatch(key, parsePublicKeyPem(pubPem, `${where} sa.pub`)))
      throw new Error("sa.pub is not the public key of sa.key");
    return key;
  } catch (err) {
    throw new InputError(`${where}: the service-account key pair: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * The shared material of the control plane under `paths.root`. A CA key absent from the node is
 * read from the offline folder (and marked to stay offline on the joining node); the etcd CA may be
 * absent altogether (external etcd).
 */
export function collectShared(paths: TreePaths): SharedMaterial {
  const cas = CAS.flatMap((entry) => nodeCa(paths, entry));
  return { cas, sa: nodeSa(paths) };
}

function nodeCa(paths: TreePaths, entry: CaEntry): SharedCa[] {
  const p = caPaths(paths, entry.id);
  const certPem = readTreeText(paths, p.cert);
  if (certPem === undefined) {
    if (entry.id === "etcd-ca") return []; // external etcd: kubeadm shares no etcd CA either
    throw new InputError(
      `no ${p.cert}: --root ${paths.root} is not a control plane kubepki or kubeadm built`,
    );
  }
  const offlineKey = offlineCaKeyPath(paths, entry.id);
  const nodeKey = readTreeText(paths, p.key);
  const keyPem = nodeKey ?? (offlineKey ? readTreeText(paths, offlineKey) : undefined);
  if (keyPem === undefined)
    throw new InputError(
      `the ${entry.longName}'s key is neither at ${p.key} nor ${offlineKey ? `at ${offlineKey}` : "on the node: pass --offline-dir (the folder that keeps the CA keys)"}; a joining control plane needs it to sign its own certificates`,
    );
  const cert = checkedCa(entry, certPem, keyPem, paths.root);
  return [{ id: entry.id, certPem, keyPem, keyOffline: nodeKey === undefined, sha256: cert.sha256 }];
}

function nodeSa(paths: TreePaths): SharedMaterial["sa"] {
  const sa = saPaths(paths);
  const keyPem = readTreeText(paths, sa.key);
  if (keyPem === undefined)
    throw new InputError(`no ${sa.key}: the service-account key every API server shares`);
  const pubPem =
    readTreeText(paths, sa.pub) ?? publicKeyToPem(createPublicKey(parsePrivateKeyPem(keyPem, sa.key)));
  checkedSa(keyPem, pubPem, paths.root);
  return { keyPem, pubPem };
}

/** The material from a decrypted bundle's entries, checked as collectShared checks a node's. */
export function materialFromFiles(
  files: Record<string, string>,
  offlineKeys: string[],
  where: string,
): SharedMaterial {
  const cas: SharedCa[] = [];
  for (const entry of CAS) {
    const certName = sharedFileName(entry.baseName, ".crt");
    const keyName = sharedFileName(entry.baseName, ".key");
    const certPem = files[certName];
    const keyPem = files[keyName];
    if (certPem === undefined && entry.id === "etcd-ca") continue;
    if (certPem === undefined || keyPem === undefined)
      throw new InputError(`${where} has no ${certPem === undefined ? certName : keyName}`);
    const cert = checkedCa(entry, certPem, keyPem, where);
    cas.push({
      id: entry.id,
      certPem,
      keyPem,
      keyOffline: offlineKeys.includes(keyName),
      sha256: cert.sha256,
    });
  }
  const keyPem = files["sa.key"];
  const pubPem = files["sa.pub"];
  if (keyPem === undefined || pubPem === undefined) throw new InputError(`${where} has no sa.key/sa.pub`);
  checkedSa(keyPem, pubPem, where);
  return { cas, sa: { keyPem, pubPem } };
}

export interface SharedPlan {
  writes: PendingWrite[];
  /** Files already on the node with the bundle's content (a join run again). */
  present: string[];
}

/**
 * Where the shared files go on the joining node, and which are already there. A file that is there
 * with other content (the node's own CA, another cluster's SA key) is refused with every such file
 * listed: a control plane with a CA of its own is not part of this cluster.
 */
export function planShared(paths: TreePaths, m: SharedMaterial): SharedPlan {
  const plan: SharedPlan = { writes: [], present: [] };
  const conflicts: string[] = [];
  const place = (
    path: string,
    data: string,
    mode: number,
    same: (text: string) => boolean,
    dirMode?: number,
  ) => {
    const text = readTreeText(paths, path);
    if (text === undefined) plan.writes.push({ path, data, mode, ...(dirMode ? { dirMode } : {}) });
    else if (sameOr(text, same)) plan.present.push(path);
    else conflicts.push(path);
  };
  for (const ca of m.cas) {
    const p = caPaths(paths, ca.id);
    const pub = parseCertificatePem(ca.certPem, p.cert).publicKey;
    place(p.cert, ca.certPem, MODE_CERT, (t) => parseCertificatePem(t, p.cert).sha256 === ca.sha256);
    const keyPath = ca.keyOffline ? offlineCaKeyPath(paths, ca.id) : p.key;
    if (!keyPath)
      throw new InputError(
        `the bundle keeps the ${caEntryOf(ca.id).longName}'s key offline: pass --offline-dir`,
      );
    const sameKey = (t: string) => keysMatch(parsePrivateKeyPem(t, keyPath), pub);
    place(keyPath, ca.keyPem, MODE_KEY, sameKey, ca.keyOffline ? MODE_OFFLINE_DIR : undefined);
  }
  const sa = saPaths(paths);
  const saPub = parsePublicKeyPem(m.sa.pubPem, "sa.pub");
  place(sa.key, m.sa.keyPem, MODE_KEY, (t) => keysMatch(parsePrivateKeyPem(t, sa.key), saPub));
  place(
    sa.pub,
    m.sa.pubPem,
    MODE_KEY,
    (t) => publicKeyToPem(parsePublicKeyPem(t, sa.pub)) === publicKeyToPem(saPub),
  );
  if (conflicts.length > 0)
    throw new InputError(
      `this node already has shared files that are not the cluster's (a CA or service-account key of its own); nothing was written:\n  ${conflicts.join("\n  ")}\nA joining control plane uses the cluster's CAs: start from a node without them.`,
    );
  return plan;
}

/** A comparison that cannot parse the file on the node counts as different content. */
function sameOr(text: string, same: (text: string) => boolean): boolean {
  try {
    return same(text);
  } catch {
    return false;
  }
}
