import { join } from "node:path";
import { IoError } from "../errors.js";
import { writeFileAtomic } from "../fsx/atomic.js";
import { MODE_CERT } from "../fsx/modes.js";
import { exists, readFileLimited } from "../fsx/read.js";
import { normalizeSerial } from "../ledger/entry.js";
import type { LedgerStore } from "../ledger/store.js";
import { CAS, type CaId, TRUST_BUNDLES } from "../pki/catalog.js";
import { caPaths, crlPath, readTreeText, type TreePaths } from "../pki/paths.js";
import { requireCaSigner } from "../pki/signer.js";
import { buildCrl, crlSignWarning, type ParsedCrl, type RevokedEntry, readCrl } from "../x509/crl.js";
import { type CertInfo, parseCertificatesPem } from "../x509/parse.js";

export const DEFAULT_CRL_VALIDITY_MS = 30 * 86_400_000;

export interface PublishedCrl {
  ca: CaId;
  path: string;
  number: string;
  revoked: number;
  nextUpdate: string;
  der: Buffer;
  pem: string;
  /** The CA has no cRLSign: OpenSSL and Go refuse its CRLs. */
  warning?: string;
}

/**
 * The CAs whose revocations this CA's CRL carries: itself and, during a rotation (rotate-ca), the
 * other CA its trust bundle still holds. Components trust both until `drop`, and etcd matches the
 * CRL's serials whatever the issuer, so the old CA's revocations stay listed.
 */
export function crlIssuers(paths: TreePaths, id: CaId, ca: CertInfo): CertInfo[] {
  const bundle = join(paths.pkiDir, TRUST_BUNDLES[id]);
  const text = readTreeText(paths, bundle);
  if (text === undefined) return [ca];
  return [ca, ...parseCertificatesPem(text, bundle).filter((c) => c.sha256 !== ca.sha256)];
}

/**
 * The CRL published next to the CA, if it was signed by this CA's key or, during a rotation, by the
 * old CA's (else it belongs to a replaced CA).
 */
export async function readPublishedCrl(
  paths: TreePaths,
  id: CaId,
  ca: CertInfo,
): Promise<ParsedCrl | undefined> {
  const path = crlPath(paths, id);
  const data = readFileLimited(path);
  if (!data) return undefined;
  try {
    for (const issuer of crlIssuers(paths, id, ca)) {
      const crl = await readCrl(data, issuer);
      if (crl) return crl;
    }
    return undefined;
  } catch (err) {
    throw new IoError(
      `cannot read the published CRL ${path} (${(err as Error).message}); it is the second record of the revocations: inspect it, and move it aside only if it is damaged`,
      { cause: err },
    );
  }
}

/**
 * Signs a CRL for one CA with every revoked entry the ledger holds for it, with the next CRL
 * number, and writes it atomically: DER at the CA's CRL path (what etcd's --client-crl-file reads;
 * etcd 3.6+ reads DER only), or to `out` as PEM ("X509 CRL") or DER. The published CRL is a second
 * record: it is never replaced by one with a lower number or fewer entries, and the whole step
 * holds the ledger's write lock.
 */
export async function publishCrl(
  paths: TreePaths,
  store: LedgerStore,
  id: CaId,
  opts: { now?: Date; validityMs?: number; out?: string; der?: boolean } = {},
): Promise<PublishedCrl> {
  const { cert, key } = requireCaSigner(paths, id, "used to sign a CRL");
  return store.exclusive(async () => {
    const now = opts.now ?? new Date();
    const published = await readPublishedCrl(paths, id, cert);
    const entries = await revokedEntries(
      store,
      crlIssuers(paths, id, cert).map((c) => c.sha256),
      now,
    );
    // A revocation of a CA that rotate-ca dropped leaves the CRL, but the ledger still holds it.
    const kept = new Set((await store.revoked()).map((e) => e.serial));
    refuseLosing(paths, id, published, entries, kept);
    const number = await store.nextCrlNumber(cert.sha256, published?.number ?? 0n);
    const nextUpdate = new Date(now.getTime() + (opts.validityMs ?? DEFAULT_CRL_VALIDITY_MS));
    const crl = await buildCrl({
      caCert: cert,
      caKey: key,
      number,
      thisUpdate: now,
      nextUpdate,
      entries,
    });
    const path = opts.out ?? crlPath(paths, id);
    // A shared ledger keeps it too: every `kubepki serve` writes it to its node's CRL file.
    if (!opts.out) await store.storeCrl?.(cert.sha256, number, crl.der);
    writeFileAtomic(path, (opts.out ? !!opts.der : true) ? crl.der : crl.pem, MODE_CERT);
    return {
      ca: id,
      path,
      number: number.toString(),
      revoked: entries.length,
      nextUpdate: nextUpdate.toISOString(),
      warning: crlSignWarning(id, cert),
      ...crl,
    };
  });
}

/**
 * The published CRL is a second record: never replaced by one that lists fewer revocations (but
 * for those the ledger still holds, of a CA rotate-ca dropped).
 */
function refuseLosing(
  paths: TreePaths,
  id: CaId,
  published: ParsedCrl | undefined,
  entries: RevokedEntry[],
  kept: Set<string>,
): void {
  const listed = new Set(entries.map((e) => normalizeSerial(e.serialHex)));
  const lost = (published?.entries ?? []).filter((e) => {
    const serial = normalizeSerial(e.serialHex);
    return !listed.has(serial) && !kept.has(serial);
  });
  if (lost.length === 0) return;
  const some = lost
    .slice(0, 3)
    .map((e) => normalizeSerial(e.serialHex))
    .join(", ");
  throw new IoError(
    `refusing to replace ${crlPath(paths, id)} (CRL number ${published?.number}): it lists ${lost.length} revoked certificate(s) the ledger does not (serial ${some}${lost.length > 3 ? ", ..." : ""}). The ledger may have been replaced or lost: run \`kubepki ledger verify\` and \`kubepki ledger repair\``,
  );
}

async function revokedEntries(store: LedgerStore, issuers: string[], now: Date): Promise<RevokedEntry[]> {
  const fromLedger = (await Promise.all(issuers.map((i) => store.revoked(i)))).flat().map((e) => ({
    serial: e.serial,
    revokedAt: e.revokedAt ?? now.toISOString(),
    reason: e.reason ?? ("unspecified" as const),
  }));
  const seen = new Set(fromLedger.map((e) => e.serial));
  const serialOnly = (await Promise.all(issuers.map((i) => store.serialOnly(i)))).flat();
  const onlySerial = serialOnly.filter((e) => !seen.has(e.serial) && seen.add(e.serial));
  return [...fromLedger, ...onlySerial].map((e) => ({
    serialHex: e.serial.length % 2 ? `0${e.serial}` : e.serial,
    revokedAt: new Date(e.revokedAt),
    reason: e.reason,
  }));
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
      if (err instanceof IoError) throw err;
      skipped.push({ ca: ca.id, reason: (err as Error).message });
    }
  }
  return { published, skipped };
}
