import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { InputError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { MODE_CERT, MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { exists, readTextLimited } from "../fsx/read.js";
import { commitFiles, recoverJournal } from "../fsx/transaction.js";
import { algorithmOfKey, DEFAULT_KEY_ALGORITHM, type KeyAlgorithm } from "../x509/algorithms.js";
import { issueCertificate } from "../x509/certificate.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { generateKeyPair } from "../x509/keygen.js";
import { privateKeyToPem } from "../x509/keys.js";
import { type CertInfo, parseCertificatePem } from "../x509/parse.js";
import { backupStamp, offlineBackupsDir } from "./backup.js";
import { kubeletServingProfile } from "./catalog.js";
import { parseDuration } from "./duration.js";
import type { IssuedCert } from "./init.js";
import { parseKubeconfig } from "./kubeconfig.js";
import { kubeletPairIn, type PairPaths, readTreeText, type TreePaths } from "./paths.js";
import { leafTemplate } from "./profiles.js";
import { type CaSigner, requireCaSigner } from "./signer.js";
import type { NodeSpec, SanSet } from "./spec.js";
import { KUBEADM_DEFAULTS } from "./spec.js";

export interface NodeAddOptions {
  paths: TreePaths;
  node: NodeSpec;
  /** Folder the pair is written to (<offline>/nodes/NAME by default). */
  outDir: string;
  force?: boolean;
  /** Default: the cluster CA key's algorithm (init uses one algorithm for the whole cluster). */
  algorithm?: KeyAlgorithm;
  certValidityMs?: number;
  now?: Date;
}

export interface NodeAddResult {
  node: string;
  action: "generated" | "replaced";
  cert: string;
  key: string;
  subject: string;
  sans: SanSet;
  serial: string;
  sha256: string;
  notAfter: string;
  algorithm: KeyAlgorithm;
  /** Fingerprint of the pair --force replaced. */
  supersededSha256?: string;
  backedUp: string[];
  /** kubeadm join's --discovery-token-ca-cert-hash for this cluster CA. */
  discoveryTokenCaCertHash: string;
  /** The API server address admin.conf names, when it is readable. */
  apiServer?: string;
  /** For the ledger. */
  issued: IssuedCert;
}

/**
 * Signs another node's kubelet serving pair from the cluster CA with init's --node profile, into
 * a folder kept off the node. An existing pair is replaced only with `force` (backed up next to it,
 * in the offline folder).
 */
export async function addNode(opts: NodeAddOptions): Promise<NodeAddResult> {
  // Refused before the lock, so a mistyped --root gets no folders.
  if (!exists(opts.paths.journal)) requireCaSigner(opts.paths, "ca", "signed");
  return withTreeLock(opts.paths.stateDir, () => addNodeLocked(opts));
}

async function addNodeLocked(opts: NodeAddOptions): Promise<NodeAddResult> {
  const { paths, node } = opts;
  const now = opts.now ?? new Date();
  recoverJournal(paths.journal);
  const pair: PairPaths = kubeletPairIn(opts.outDir);
  const old = existingPair(pair, node.name, !!opts.force);
  const signer = requireCaSigner(paths, "ca", "signed");
  const algorithm = opts.algorithm ?? algorithmOfKey(signer.cert.publicKey) ?? DEFAULT_KEY_ALGORITHM;
  const validityMs =
    opts.certValidityMs ?? parseDuration(KUBEADM_DEFAULTS.certValidity, "certificateValidityPeriod");
  const kp = await generateKeyPair(algorithm);
  const profile = kubeletServingProfile(node);
  const tpl = leafTemplate(profile, now, validityMs, signer.cert.notAfter);
  const issued = await issueCertificate(tpl, kp.publicKey, {
    certificate: signer.cert,
    privateKey: signer.key,
  });
  const result = commitFiles(
    [
      { path: pair.cert, data: issued.pem, mode: MODE_CERT, dirMode: MODE_OFFLINE_DIR },
      { path: pair.key, data: privateKeyToPem(kp.privateKey), mode: MODE_KEY, dirMode: MODE_OFFLINE_DIR },
    ],
    { journalPath: paths.journal, backup: [backupTarget(paths, opts.outDir, now)] },
  );
  return {
    node: node.name,
    action: old.present ? "replaced" : "generated",
    cert: pair.cert,
    key: pair.key,
    subject: `O=${profile.organizations.join("+")}, CN=${profile.commonName}`,
    sans: profile.sans,
    serial: issued.cert.serialHex,
    sha256: sha256Hex(issued.der),
    notAfter: issued.cert.notAfter.toISOString(),
    algorithm,
    supersededSha256: old.cert?.sha256,
    backedUp: result.backedUp,
    discoveryTokenCaCertHash: discoveryHash(signer),
    apiServer: apiServerOf(paths),
    issued: { der: issued.der, issuerDer: signer.cert.der, profile: `kubelet/${node.name}`, path: pair.cert },
  };
}

function existingPair(pair: PairPaths, name: string, force: boolean): { present: boolean; cert?: CertInfo } {
  const present = exists(pair.cert) || exists(pair.key);
  if (!present) return { present };
  let cert: CertInfo | undefined;
  let about = "";
  try {
    const text = readTextLimited(pair.cert);
    cert = text === undefined ? undefined : parseCertificatePem(text, pair.cert);
    if (cert) about = ` (${cert.commonName}, until ${cert.notAfter.toISOString()})`;
  } catch {
    about = " (unreadable)";
  }
  if (!force)
    throw new InputError(
      `node ${name} already has a kubelet serving pair: ${exists(pair.cert) ? pair.cert : pair.key}${about}. ` +
        `Nothing was written. Use --force to replace it (the old pair is backed up), or \`kubepki certs renew kubelet/${name}\` to renew it.`,
    );
  return { present, cert };
}

/** Backups stay where the pair lives: in the offline folder's backups, or beside --out. */
function backupTarget(paths: TreePaths, outDir: string, now: Date) {
  const stamp = backupStamp(now);
  const off = paths.offlineDir;
  if (off && !relative(off, outDir).startsWith(".."))
    return { dir: join(offlineBackupsDir(off), stamp), base: off };
  return { dir: join(outDir, "backups", stamp), base: outDir };
}

/** sha256 of the CA's SubjectPublicKeyInfo, as `kubeadm join --discovery-token-ca-cert-hash` wants it. */
function discoveryHash(signer: CaSigner): string {
  const spki = signer.cert.publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}

function apiServerOf(paths: TreePaths): string | undefined {
  try {
    const file = join(paths.kubeconfigDir, "admin.conf");
    const text = readTreeText(paths, file);
    return text === undefined ? undefined : parseKubeconfig(text, file).server?.replace(/^https:\/\//, "");
  } catch {
    return undefined;
  }
}
