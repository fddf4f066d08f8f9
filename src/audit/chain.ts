import type { CertFact } from "../node/certs.js";
import type { NodeSnapshot } from "../node/snapshot.js";
import { readPem } from "../node/snapshot.js";

/**
 * Does `leaf` (with the rest of its file as untrusted intermediates) chain to one of `cas`?
 * Each link: issuer name and key identifiers match (checkIssued), the signature verifies, and the
 * issuer is a CA. Native crypto, so it stays cheap on large trees.
 */
export function chainsTo(
  leaf: CertFact,
  intermediates: CertFact[],
  cas: CertFact[],
  at: Date,
): { ok: boolean; reason?: string } {
  let current = leaf;
  const pool = intermediates.filter((c) => c.sha256 !== leaf.sha256);
  for (let depth = 0; depth < 8; depth++) {
    const anchor = cas.find(
      (ca) => ca.isCA && current.x509.checkIssued(ca.x509) && current.x509.verify(ca.x509.publicKey),
    );
    if (anchor) {
      if (anchor.notAfter < at) return { ok: false, reason: `the CA "${anchor.commonName}" has expired` };
      return { ok: true };
    }
    const next = pool.find(
      (c) => c.isCA && current.x509.checkIssued(c.x509) && current.x509.verify(c.x509.publicKey),
    );
    if (!next)
      return {
        ok: false,
        reason: `"${current.commonName}" (issuer "${current.issuerCommonName}") is not signed by ${cas.map((c) => `"${c.commonName}"`).join(", ") || "any CA in the file"}`,
      };
    current = next;
  }
  return { ok: false, reason: "chain too long" };
}

/** Certificates in a file a flag points at (read on demand, confined to the root). */
export function certsAt(snap: NodeSnapshot, path: string | undefined): CertFact[] {
  return path ? (readPem(snap, path)?.certs ?? []) : [];
}
