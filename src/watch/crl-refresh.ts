import { errorMessage } from "../errors.js";
import { exists, readTextLimited } from "../fsx/read.js";
import type { LedgerStore } from "../ledger/store.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { caPaths, crlPath, type TreePaths } from "../pki/paths.js";
import { loadCaSigner } from "../pki/signer.js";
import { DEFAULT_CRL_VALIDITY_MS, publishCrl, readPublishedCrl } from "../revoke/crl.js";
import { parseCertificatePem } from "../x509/parse.js";

export const DEFAULT_CRL_REFRESH_MS = 7 * 86_400_000;

export interface CrlRefresh {
  ca: CaId;
  path: string;
  /** refreshed: re-signed with the same entries and the next number; warning: it could not be. */
  action: "refreshed" | "warning";
  message: string;
  number?: string;
  nextUpdate?: string;
}

/**
 * Keeps the CAs' published CRLs fresh: one within `refreshMs` of its nextUpdate is re-signed with
 * the ledger's revocations (the same entries: publishCrl refuses to drop one) under the next CRL
 * number, for as long as the last one was valid. Without the CA key (on the node or in the offline
 * folder) it says so instead; etcd refuses every client once its CRL is stale.
 */
export async function refreshCrls(
  paths: TreePaths,
  store: LedgerStore,
  refreshMs: number,
  now = new Date(),
): Promise<CrlRefresh[]> {
  const out: CrlRefresh[] = [];
  for (const { id } of CAS) {
    const r = await refreshOne(paths, store, id, refreshMs, now);
    if (r) out.push(r);
  }
  return out;
}

async function refreshOne(
  paths: TreePaths,
  store: LedgerStore,
  id: CaId,
  refreshMs: number,
  now: Date,
): Promise<CrlRefresh | undefined> {
  const path = crlPath(paths, id);
  const certPem = exists(path) ? readTextLimited(caPaths(paths, id).cert) : undefined;
  if (!certPem) return undefined;
  try {
    const ca = parseCertificatePem(certPem, caPaths(paths, id).cert);
    const crl = await readPublishedCrl(paths, id, ca);
    if (!crl?.nextUpdate || crl.nextUpdate.getTime() - now.getTime() > refreshMs) return undefined;
    const due = `${path}: nextUpdate ${crl.nextUpdate.toISOString()} is within the refresh window`;
    const signer = loadCaSigner(paths, id, "used to refresh its CRL");
    if (typeof signer === "string")
      return { ca: id, path, action: "warning", message: `${due}, and ${signer}` };
    const validityMs = crl.nextUpdate.getTime() - crl.thisUpdate.getTime();
    const p = await publishCrl(paths, store, id, {
      now,
      // A validity inside the window would be refreshed again at the next scan.
      validityMs: validityMs > refreshMs ? validityMs : Math.max(DEFAULT_CRL_VALIDITY_MS, 2 * refreshMs),
    });
    return {
      ca: id,
      path,
      action: "refreshed",
      message: `${due}: re-signed as CRL number ${p.number} (${p.revoked} revoked), next update ${p.nextUpdate}`,
      number: p.number,
      nextUpdate: p.nextUpdate,
    };
  } catch (err) {
    return { ca: id, path, action: "warning", message: `${path}: cannot refresh: ${errorMessage(err)}` };
  }
}
