import { writeFileAtomic } from "../fsx/atomic.js";
import { exists } from "../fsx/read.js";
import type { LedgerStore } from "../ledger/store.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { caPaths, crlPath, type TreePaths } from "../pki/paths.js";
import { requireCaSigner } from "../pki/signer.js";
import { buildCrl } from "../x509/crl.js";

export const DEFAULT_CRL_VALIDITY_MS = 30 * 86_400_000;

export interface PublishedCrl {
  ca: CaId;
  path: string;
  number: string;
  revoked: number;
  nextUpdate: string;
  der: Buffer;
  pem: string;
}

/**
 * Signs a CRL for one CA with every revoked entry the ledger holds for it, with the next CRL
 * number, and writes it atomically: DER at the CA's CRL path (what etcd's --client-crl-file reads;
 * etcd 3.6+ reads DER only), or to `out` as PEM ("X509 CRL") or DER.
 */
export async function publishCrl(
  paths: TreePaths,
  store: LedgerStore,
  id: CaId,
  opts: { now?: Date; validityMs?: number; out?: string; der?: boolean } = {},
): Promise<PublishedCrl> {
  const now = opts.now ?? new Date();
  const { cert, key } = requireCaSigner(paths, id, "used to sign a CRL");
  const revoked = await store.revoked(cert.sha256);
  const number = await store.nextCrlNumber(cert.sha256);
  const nextUpdate = new Date(now.getTime() + (opts.validityMs ?? DEFAULT_CRL_VALIDITY_MS));
  const crl = await buildCrl({
    caCert: cert.cert,
    caKey: key,
    number,
    thisUpdate: now,
    nextUpdate,
    entries: revoked.map((e) => ({
      serialHex: e.serial.length % 2 ? `0${e.serial}` : e.serial,
      revokedAt: new Date(e.revokedAt ?? now),
      reason: e.reason ?? "unspecified",
    })),
  });
  const path = opts.out ?? crlPath(paths, id);
  const asDer = opts.out ? !!opts.der : true;
  writeFileAtomic(path, asDer ? crl.der : crl.pem, 0o644);
  return {
    ca: id,
    path,
    number: number.toString(),
    revoked: revoked.length,
    nextUpdate: nextUpdate.toISOString(),
    ...crl,
  };
}

/** Republishes the CRL of every CA whose key is at hand (after a revocation, or the first time). */
export async function publishCrls(
  paths: TreePaths,
  store: LedgerStore,
  opts: { now?: Date; only?: CaId[]; missingOnly?: boolean } = {},
): Promise<{ published: PublishedCrl[]; skipped: { ca: CaId; reason: string }[] }> {
  const published: PublishedCrl[] = [];
  const skipped: { ca: CaId; reason: string }[] = [];
  for (const ca of CAS) {
    if (opts.only && !opts.only.includes(ca.id)) continue;
    if (!exists(caPaths(paths, ca.id).cert)) continue;
    if (opts.missingOnly && exists(crlPath(paths, ca.id))) continue;
    try {
      published.push(await publishCrl(paths, store, ca.id, { now: opts.now }));
    } catch (err) {
      skipped.push({ ca: ca.id, reason: (err as Error).message });
    }
  }
  return { published, skipped };
}
