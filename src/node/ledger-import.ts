import type { Distro } from "../layout/types.js";
import { entryFrom } from "../ledger/entry.js";
import type { LedgerStore } from "../ledger/store.js";
import type { CertInfo } from "../x509/parse.js";
import { signedBy } from "../x509/verify.js";
import { takeSnapshot } from "./snapshot.js";

/**
 * Inventories the certificates of a node kubepki did not issue (an existing kubeadm or k3s node)
 * into the ledger, so they can be revoked too. Each is linked to the CA on the node that signed it.
 */
export async function importNode(
  store: LedgerStore,
  root: string,
  distro?: Distro,
  now = new Date(),
): Promise<{ imported: number; known: number; unlinked: number }> {
  const snap = takeSnapshot({ root, distro, now });
  const cas = snap.certs.filter((c) => c.isCA);
  const counts = { imported: 0, known: 0, unlinked: 0 };
  for (const c of firstOfEach(snap.certs)) {
    if (await store.get(c.sha256)) {
      counts.known++;
      continue;
    }
    const issuer = issuerOf(c, cas);
    if (!issuer) counts.unlinked++;
    await store.record([entryFrom(importedCert(c, issuer), "imported", now)]);
    counts.imported++;
  }
  return counts;
}

/** One certificate per fingerprint: the first place it was found. */
function firstOfEach(certs: CertInfo[]): CertInfo[] {
  const seen = new Set<string>();
  return certs.filter((c) => !seen.has(c.sha256) && Boolean(seen.add(c.sha256)));
}

/** The CA on the node that signed it (itself when self-signed). */
function issuerOf(c: CertInfo, cas: CertInfo[]): CertInfo | undefined {
  return c.selfSigned ? c : cas.find((ca) => signedBy(c, ca));
}

/** Unlinked: recorded as its own issuer. */
function importedCert(c: CertInfo, issuer: CertInfo | undefined) {
  const der = c.x509.raw;
  return {
    der,
    issuerDer: issuer ? issuer.x509.raw : der,
    profile: c.isCA ? "ca" : c.field ? `kubeconfig:${c.path}` : "imported",
    path: c.path,
  };
}
