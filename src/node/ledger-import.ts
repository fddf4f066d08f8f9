import type { Distro } from "../layout/types.js";
import { entryFrom } from "../ledger/entry.js";
import type { LedgerStore } from "../ledger/store.js";
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
  let imported = 0;
  let known = 0;
  let unlinked = 0;
  const seen = new Set<string>();
  for (const c of snap.certs) {
    if (seen.has(c.sha256)) continue;
    seen.add(c.sha256);
    if (await store.get(c.sha256)) {
      known++;
      continue;
    }
    const issuer = c.selfSigned ? c : cas.find((ca) => signedBy(c, ca));
    if (!issuer) unlinked++;
    const der = c.x509.raw;
    await store.record([
      entryFrom(
        {
          der,
          issuerDer: issuer ? issuer.x509.raw : der,
          profile: c.isCA ? "ca" : c.field ? `kubeconfig:${c.path}` : "imported",
          path: c.path,
        },
        "imported",
        now,
      ),
    ]);
    imported++;
  }
  return { imported, known, unlinked };
}
