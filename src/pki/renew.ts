import type { KeyObject } from "node:crypto";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { MODE_CERT, MODE_KEY } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import { commitFiles, type PendingWrite, recoverJournal } from "../fsx/transaction.js";
import { algorithmOfKey, DEFAULT_KEY_ALGORITHM, type KeyAlgorithm } from "../x509/algorithms.js";
import { type IssuedCertificate, issueCertificate } from "../x509/certificate.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { generateKeyPair } from "../x509/keygen.js";
import { privateKeyToPem } from "../x509/keys.js";
import { type CertInfo, extKeyUsageNames } from "../x509/parse.js";
import { backupTargets } from "./backup.js";
import { type CaId, TRUST_BUNDLES } from "./catalog.js";
import { parseDuration } from "./duration.js";
import { readItemChain, selfContained } from "./expiry.js";
import type { IssuedCert } from "./init.js";
import { noPkiError, pkiPresent, type TreeItem, treeItems } from "./inventory.js";
import { replaceKubeconfigCredentials } from "./kubeconfig.js";
import { kubeletServingPaths, readTreeText, type TreePaths } from "./paths.js";
import { leafTemplate } from "./profiles.js";
import { type CaSigner, loadCaSigner } from "./signer.js";
import { KUBEADM_DEFAULTS } from "./spec.js";

export interface RenewOptions {
  paths: TreePaths;
  /** Certificate names, or ["all"]. */
  names: string[];
  dryRun?: boolean;
  /** Key algorithm of the new keys; by default each keeps the algorithm of the key it replaces. */
  algorithm?: KeyAlgorithm;
  certValidityMs?: number;
  now?: Date;
  onKey?: (done: number, total: number) => void;
}

export interface RenewedItem {
  name: string;
  path: string;
  action: "renewed" | "would-renew" | "skipped";
  reason?: string;
  /** Skipped by design, not for want of something (kubeadm's self-signed kubelet pair, an offline file). */
  deliberate?: boolean;
  oldSha256?: string;
  newSha256?: string;
  notAfter?: string;
}

export interface RenewResult {
  items: RenewedItem[];
  backedUp: string[];
  /** The new certificates, and the fingerprints they replace, for the ledger. */
  issued: IssuedCert[];
  superseded: string[];
}

/**
 * kubeadm's `certs renew`: keeps subject, SANs and extended key usages of the existing certificate,
 * with a new key and serial, signed by the CA on disk (or in the offline folder). Unlike kubeadm it
 * replaces everything in one journaled transaction and keeps a timestamped backup.
 */
export async function renewCertificates(opts: RenewOptions): Promise<RenewResult> {
  // A mistyped --root gets an error, not a lock folder.
  if (!exists(opts.paths.journal) && !pkiPresent(opts.paths)) throw noPkiError(opts.paths);
  return withTreeLock(opts.paths.stateDir, () => renewLocked(opts));
}

async function renewLocked(opts: RenewOptions): Promise<RenewResult> {
  const now = opts.now ?? new Date();
  recoverJournal(opts.paths.journal);
  const { plans, items, all } = planRenewal(opts);
  const skipped = items.filter((i) => i.action === "skipped");
  if (!all && skipped.length > 0)
    throw new InputError(
      `nothing was renewed:\n  - ${skipped.map((s) => `${s.name}: ${s.reason}`).join("\n  - ")}`,
    );
  const signed = await signRenewals(plans, opts, now);
  items.push(...signed.map((s) => renewedItem(s, !!opts.dryRun)));
  items.sort((a, b) => a.name.localeCompare(b.name));
  if (opts.dryRun || signed.length === 0) return { items, backedUp: [], issued: [], superseded: [] };
  const result = commitFiles(
    signed.flatMap((s) => renewalWrites(opts.paths, s)),
    {
      journalPath: opts.paths.journal,
      backup: backupTargets(opts.paths, now),
    },
  );
  return {
    items,
    backedUp: result.backedUp,
    issued: signed.map((s) => ({
      der: s.issued.der,
      issuerDer: s.signer.cert.der,
      profile: s.item.kind === "kubeconfig" ? `kubeconfig:${s.item.name}` : s.item.name,
      path: s.item.path,
    })),
    superseded: signed.map((s) => s.old.sha256),
  };
}

/** The plan: which certificates to renew with which signer, and which are skipped and why (reads only). */
function planRenewal(opts: RenewOptions): { plans: Plan[]; items: RenewedItem[]; all: boolean } {
  const { paths } = opts;
  const renewable = treeItems(paths).filter((i) => i.renewable);
  const all = opts.names.includes("all");
  // `all` is this node's set: other nodes' kubelet pairs are renewed by name only.
  const chosen = all
    ? renewable.filter((i) => !i.otherNode && !(i.offline && !paths.offlineDir))
    : opts.names.map((n) => findItem(renewable, n, paths));
  const signers = new Map<CaId, CaSigner | string>();
  const signerFor = (id: CaId): CaSigner | string => {
    const s = signers.get(id) ?? loadCaSigner(paths, id, "renewed");
    signers.set(id, s);
    return s;
  };
  const plans: Plan[] = [];
  const items: RenewedItem[] = [];
  for (const item of chosen) {
    const decided = decide(paths, item, signerFor);
    if ("action" in decided) items.push(decided);
    else plans.push(decided);
  }
  return { plans, items, all };
}

type SignedRenewal = Plan & { issued: IssuedCertificate; key: KeyObject };

/** A new key (the old one's algorithm unless told) and a certificate with the old one's names. */
function signRenewals(plans: Plan[], opts: RenewOptions, now: Date): Promise<SignedRenewal[]> {
  const validityMs =
    opts.certValidityMs ?? parseDuration(KUBEADM_DEFAULTS.certValidity, "certificateValidityPeriod");
  let done = 0;
  return Promise.all(
    plans.map(async (plan) => {
      const alg = opts.algorithm ?? algorithmOfKey(plan.old.publicKey) ?? DEFAULT_KEY_ALGORITHM;
      const kp = await generateKeyPair(alg);
      opts.onKey?.(++done, plans.length);
      const tpl = leafTemplate(
        {
          commonName: plan.old.commonName,
          organizations: plan.old.organizations,
          extKeyUsage: extKeyUsageNames(plan.old),
          sans: { dns: plan.old.dnsNames, ips: plan.old.ipAddresses },
        },
        now,
        validityMs,
        plan.signer.cert.notAfter,
      );
      const issued = await issueCertificate(tpl, kp.publicKey, {
        certificate: plan.signer.cert,
        privateKey: plan.signer.key,
      });
      return { ...plan, issued, key: kp.privateKey };
    }),
  );
}

/** The files a renewal replaces: the pair, or the kubeconfig with its credentials swapped. */
function renewalWrites(paths: TreePaths, s: SignedRenewal): PendingWrite[] {
  const keyPem = privateKeyToPem(s.key);
  if (s.keyPath !== undefined)
    return [
      { path: s.item.path, data: s.issued.pem, mode: MODE_CERT },
      { path: s.keyPath, data: keyPem, mode: MODE_KEY },
    ];
  const text = readTreeText(paths, s.item.path) ?? "";
  const updated = replaceKubeconfigCredentials(text, s.item.path, {
    // During a CA rotation (rotate-ca) a kubeconfig trusts the bundle: old and new CA.
    caPem: readTreeText(paths, join(paths.pkiDir, TRUST_BUNDLES.ca)) ?? s.signer.pem,
    clientCertPem: s.issued.pem,
    clientKeyPem: keyPem,
  });
  return [{ path: s.item.path, data: updated, mode: MODE_KEY }];
}

function renewedItem(s: SignedRenewal, dryRun: boolean): RenewedItem {
  return {
    name: s.item.name,
    path: s.item.path,
    action: dryRun ? "would-renew" : "renewed",
    oldSha256: s.old.sha256,
    newSha256: dryRun ? undefined : sha256Hex(s.issued.der),
    notAfter: s.issued.cert.notAfter.toISOString(),
  };
}

/** `keyPath`: the key file of a certificate pair; a kubeconfig carries its key inside. */
type Plan = { item: TreeItem; old: CertInfo; signer: CaSigner; keyPath?: string };

/** What to do with one certificate: a renewal plan, or why it is skipped. */
function decide(
  paths: TreePaths,
  item: TreeItem,
  signerFor: (id: CaId) => CaSigner | string,
): Plan | RenewedItem {
  const signer = signerFor(item.caId);
  const chain = readItemChain(paths, item);
  const old = chain?.[0];
  const skip = (reason: string, deliberate?: boolean): RenewedItem => ({
    name: item.name,
    path: item.path,
    action: "skipped",
    reason,
    oldSha256: old?.sha256,
    deliberate,
  });
  if (!chain || !old)
    return item.offline && !paths.offlineDir
      ? skip("kept off the node; pass --offline-dir where it is", true)
      : skip(`MISSING! ${item.path}`);
  // Renewing it from the cluster CA would silently change who issued it.
  if (selfContained(chain))
    return skip(
      `${item.path} is self-signed (the kubelet's own certificate, as kubeadm leaves it), not issued by ${item.caId}; remove the pair and restart the kubelet to regenerate it, or let kubepki init sign one from the cluster CA`,
      true,
    );
  if (typeof signer === "string") return skip(signer);
  if (item.kind === "certificate" && !item.keyPath) return skip(`${item.path} has no key file to replace`);
  return { item, old, signer, keyPath: item.kind === "certificate" ? item.keyPath : undefined };
}

function findItem(items: TreeItem[], name: string, paths: TreePaths): TreeItem {
  const found = items.find((i) => i.name === name);
  if (!found && name.startsWith("kubelet/"))
    throw new InputError(
      paths.offlineDir
        ? `"${name}": no ${kubeletServingPaths(paths, name.slice(8), false)?.cert} (kubepki node add signs one)`
        : `"${name}": other nodes' kubelet pairs are kept in the offline folder; pass --offline-dir`,
    );
  if (!found)
    throw new InputError(
      `"${name}" cannot be renewed here; renewable: all, ${items.map((i) => i.name).join(", ")}`,
    );
  return found;
}
