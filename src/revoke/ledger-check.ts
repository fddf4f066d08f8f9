import { normalizeSerial } from "../ledger/entry.js";
import type { LedgerStore } from "../ledger/store.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { caPaths, crlPath, readTreeText, type TreePaths } from "../pki/paths.js";
import { crlSignWarning, type RevokedEntry } from "../x509/crl.js";
import { type CertInfo, parseCertificatePem } from "../x509/parse.js";
import { crlIssuers, readPublishedCrl } from "./crl.js";

export interface CrlComparison {
  ca: CaId;
  crl: string;
  /** undefined: no CRL published (or one signed by a replaced CA). */
  crlNumber?: string;
  ledgerNumber: string;
  /** Serials the CRL lists as revoked that the ledger does not: revocations the ledger lost. */
  onlyInCrl: RevokedEntry[];
  /** Serials revoked in the ledger but not in the CRL (republish with `kubepki crl`). */
  onlyInLedger: string[];
}

function caCerts(paths: TreePaths): { id: CaId; cert: CertInfo }[] {
  return CAS.flatMap((ca) => {
    const path = caPaths(paths, ca.id).cert;
    const pem = readTreeText(paths, path);
    return pem ? [{ id: ca.id, cert: parseCertificatePem(pem, path) }] : [];
  });
}

/** One warning per CA of the tree without cRLSign (kubeadm's), for `ledger import` and `crl`. */
export function crlSignWarnings(paths: TreePaths): string[] {
  return caCerts(paths).flatMap(({ id, cert }) => crlSignWarning(id, cert) ?? []);
}

/** Compares the ledger's revocations with the CRLs published next to each CA: the second record. */
export async function verifyLedger(paths: TreePaths, store: LedgerStore): Promise<CrlComparison[]> {
  const out: CrlComparison[] = [];
  for (const { id, cert } of caCerts(paths)) {
    const published = await readPublishedCrl(paths, id, cert);
    // During a CA rotation the CRL also lists the old CA's revocations (crlIssuers).
    const ledger = new Set<string>();
    for (const issuer of crlIssuers(paths, id, cert)) {
      for (const e of await store.revoked(issuer.sha256)) ledger.add(e.serial);
      for (const e of await store.serialOnly(issuer.sha256)) ledger.add(e.serial);
    }
    const inCrl = new Set((published?.entries ?? []).map((e) => normalizeSerial(e.serialHex)));
    out.push({
      ca: id,
      crl: crlPath(paths, id),
      crlNumber: published?.number.toString(),
      ledgerNumber: (await store.lastCrlNumber(cert.sha256)).toString(),
      onlyInCrl: (published?.entries ?? []).filter((e) => !ledger.has(normalizeSerial(e.serialHex))),
      onlyInLedger: [...ledger].filter((s) => !inCrl.has(s)),
    });
  }
  return out;
}

/**
 * Restores revocations found only in a published CRL: the ledger entry with that serial and CA is
 * marked revoked (with the CRL's date and reason); a serial the ledger does not know at all is kept
 * as a serial-only revocation, so every later CRL still lists it.
 */
export async function repairLedger(
  paths: TreePaths,
  store: LedgerStore,
): Promise<{ restored: number; serialOnly: number; comparisons: CrlComparison[] }> {
  return store.exclusive(async () => {
    const comparisons = await verifyLedger(paths, store);
    let restored = 0;
    let serialOnly = 0;
    const issuers = new Map(caCerts(paths).map((x) => [x.id, x.cert.sha256]));
    for (const c of comparisons) {
      const issuer = issuers.get(c.ca) ?? "";
      const unknown: RevokedEntry[] = [];
      for (const e of c.onlyInCrl) {
        const hits = (await store.find({ serial: e.serialHex })).filter((x) => x.issuerSha256 === issuer);
        const n = await store.markRevoked(
          hits.map((h) => ({ sha256: h.sha256, revokedAt: e.revokedAt.toISOString(), reason: e.reason })),
        );
        if (n > 0) restored += n;
        else unknown.push(e);
      }
      await store.recordSerialOnly(
        issuer,
        unknown.map((e) => ({ serial: e.serialHex, revokedAt: e.revokedAt.toISOString(), reason: e.reason })),
      );
      serialOnly += unknown.length;
      if (c.crlNumber && BigInt(c.crlNumber) > BigInt(c.ledgerNumber))
        await store.nextCrlNumber(issuer, BigInt(c.crlNumber) - 1n);
    }
    return { restored, serialOnly, comparisons };
  });
}
