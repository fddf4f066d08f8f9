import { resolve } from "node:path";
import { errorMessage, InputError } from "../errors.js";
import { ensureDir, safeUnlink, writeFileAtomic } from "../fsx/atomic.js";
import { withTreeLock } from "../fsx/lock.js";
import { MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { exists, isInside, readTextLimited } from "../fsx/read.js";
import { commitFiles, recoverJournal } from "../fsx/transaction.js";
import { newCertificateKey, parseCertificateKey } from "../pki/bundle-crypto.js";
import { decodeBundle, encodeBundle } from "../pki/bundle-file.js";
import { resolveOfflineDir } from "../pki/init.js";
import { collectShared, planShared, type SharedMaterial } from "../pki/join-bundle.js";
import { treePaths } from "../pki/paths.js";
import { readSettings } from "../pki/settings.js";
import { type InitOutcome, type InitRequest, initCluster, specOf } from "./init.js";
import { inTree, type Notice } from "./tree.js";

export interface JoinBundleRequest {
  /** The control plane whose shared material is bundled (its node's /). */
  root: string;
  /** Where the CA keys are when they are not on the node (default: the folder init recorded). */
  offlineDir?: string;
  /** Certificates directory on the node (default: /etc/kubernetes/pki). */
  certDir?: string;
  /** The bundle file (written 0600, atomically). */
  out: string;
  /** Replace an existing bundle file. */
  force?: boolean;
}

export interface SharedSummary {
  /** kubeadm's name of the CA (ca, front-proxy-ca, etcd-ca). */
  ca: string;
  /** SHA-256 of the CA certificate. */
  sha256: string;
  /** The key stays in the offline folder on the joining node too. */
  keyOffline: boolean;
}

export interface JoinBundleOutcome {
  out: string;
  /** The 32-byte key that opens the bundle, as 64 hex characters: shown once, never stored. */
  certificateKey: string;
  cas: SharedSummary[];
  notices: Notice[];
}

const summary = (m: SharedMaterial): SharedSummary[] =>
  m.cas.map((c) => ({ ca: c.id, sha256: c.sha256, keyOffline: c.keyOffline }));

/**
 * `kubepki join-bundle`: the files every control plane shares (the three CAs with their keys, the
 * service-account pair), encrypted as kubeadm's --certificate-key encrypts them, with a fresh key.
 */
export async function createJoinBundle(req: JoinBundleRequest): Promise<JoinBundleOutcome> {
  const base = treePaths(req.root, req.certDir);
  const remembered = readSettings(base.stateDir).offlineDir;
  const offlineDir = req.offlineDir ?? (remembered && exists(remembered) ? remembered : undefined);
  const paths = treePaths(req.root, req.certDir, offlineDir);
  const out = resolve(req.out);
  if (exists(out) && !req.force) throw new InputError(`${out} exists; --force replaces it`);
  const material = collectShared(paths);
  const key = newCertificateKey();
  writeFileAtomic(out, encodeBundle(material, key), MODE_KEY);
  const notices: Notice[] = [
    `${out} holds the cluster's CA keys: copy it to the new control plane over an encrypted channel, then delete it (the certificate key opens it)`,
  ];
  if (isInside(paths.root, out) && paths.root !== "/")
    notices.push(`${out} is inside the node tree ${paths.root}: move it out once the join is done`);
  return { out, certificateKey: key.toString("hex"), cas: summary(material), notices };
}

export interface JoinRequest extends InitRequest {
  /** The bundle `kubepki join-bundle` wrote on the first control plane. */
  join: string;
  /** The 64-hex-character key join-bundle printed. */
  certificateKey: string;
}

export interface JoinOutcome extends InitOutcome {
  joined: {
    bundle: string;
    createdAt: string;
    cas: SharedSummary[];
    /** The shared files written (absent before), and those already there with the same content. */
    written: string[];
    present: string[];
  };
}

/**
 * `kubepki init --join`: a further control plane. The bundle is opened and checked before anything
 * is written (a wrong key or a changed byte: exit 2, the tree untouched); the shared files go where
 * kubeadm puts them; then init runs as on a node whose CAs exist, signing this node's own leaves and
 * kubeconfigs, recording them, and minting no break-glass credential (the first node's is the one).
 */
export async function joinControlPlane(req: JoinRequest): Promise<JoinOutcome> {
  const key = parseCertificateKey(req.certificateKey);
  if (!key)
    throw new InputError(
      "--certificate-key must be 64 hexadecimal characters (the key kubepki join-bundle printed)",
    );
  if (req.newBreakGlass)
    throw new InputError(
      "--new-break-glass: a joining control plane mints no break-glass credential (the first node's is the cluster's)",
    );
  const bundle = resolve(req.join);
  const text = readBundle(bundle);
  const { material, createdAt } = decodeBundle(text, key, bundle);
  const spec = specOf(req); // flags and --config checked before anything is written
  const base = treePaths(req.root, spec.certificatesDir);
  const offline = resolveOfflineDir(base, spec.offlineDir, readSettings(base.stateDir).offlineDir);
  const paths = treePaths(req.root, spec.certificatesDir, offline.dir, req.state);
  const plan = planShared(paths, material);
  const written = await inTree(paths, () =>
    withTreeLock(paths.stateDir, () => {
      recoverJournal(paths.journal);
      return commitFiles(planShared(paths, material).writes, { journalPath: paths.journal }).written;
    }),
  );
  let outcome: InitOutcome;
  try {
    outcome = await initCluster({ ...req, offlineDir: offline.dir }, { joining: true });
  } catch (err) {
    undoShared(written, err);
  }
  // init recorded this folder; a later run without --offline-dir expects to find it.
  ensureDir(offline.dir, MODE_OFFLINE_DIR);
  return {
    ...outcome,
    joined: { bundle, createdAt, cas: summary(material), written, present: plan.present },
  };
}

function readBundle(path: string): string {
  let text: string | undefined;
  try {
    text = readTextLimited(path, 1024 * 1024);
  } catch (err) {
    throw new InputError(`cannot read the join bundle ${path}: ${errorMessage(err)}`, { cause: err });
  }
  if (text === undefined) throw new InputError(`no join bundle at ${path}`);
  return text;
}

/**
 * init refused the node (its plan found something it cannot keep; nothing of its own was written):
 * the shared files this run added are removed again, and the node is as it was. After any other
 * failure init may have written files that belong with them, so they stay.
 */
function undoShared(written: string[], err: unknown): never {
  if (err instanceof InputError) for (const path of written) safeUnlink(path);
  throw err;
}
