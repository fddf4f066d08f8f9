import { caItems, treeItems } from "../pki/inventory.js";
import { parseKubeconfig } from "../pki/kubeconfig.js";
import { readTreeText, type TreePaths } from "../pki/paths.js";
import { parseCertificatePem } from "../x509/parse.js";
import { entryFrom, type IssuedRecord } from "./entry.js";
import { recordIssued } from "./record.js";
import type { LedgerStore } from "./store.js";

/**
 * Makes the ledger hold every certificate of the tree: first what this run signed, then every CA,
 * leaf and kubeconfig certificate on the node the ledger lacks (a run whose ledger write failed,
 * a file put there by hand). Run on every `init`; a failure to record is an error, never skipped,
 * because a certificate missing from the ledger can never be revoked.
 */
export async function reconcile(
  store: LedgerStore,
  paths: TreePaths,
  issued: IssuedRecord[],
  now = new Date(),
): Promise<{ recorded: number }> {
  await recordIssued(store, issued, [], now);
  const found = treeCertificates(paths);
  const missing: IssuedRecord[] = [];
  for (const r of found) if (!(await store.get(entryFrom(r, "imported", now).sha256))) missing.push(r);
  await store.record(missing.map((r) => entryFrom(r, "imported", now)));
  return { recorded: missing.length };
}

/** Every CA, leaf and kubeconfig client certificate of the tree, with its issuer. */
function treeCertificates(paths: TreePaths): IssuedRecord[] {
  const cas = new Map<string, Buffer>();
  const found: IssuedRecord[] = [];
  for (const ca of caItems(paths)) {
    const pem = readTreeText(paths, ca.cert);
    if (!pem) continue;
    const der = parseCertificatePem(pem, ca.cert).der;
    cas.set(ca.id, der);
    found.push({ der, issuerDer: der, profile: "ca", path: ca.cert });
  }
  for (const item of treeItems(paths)) {
    const text = readTreeText(paths, item.path);
    const issuerDer = cas.get(item.caId);
    if (!text || !issuerDer) continue;
    const der =
      item.kind === "kubeconfig"
        ? parseKubeconfig(text, item.path).clientCert?.der
        : parseCertificatePem(text, item.path).der;
    if (der)
      found.push({
        der,
        issuerDer,
        profile: item.kind === "kubeconfig" ? `kubeconfig:${item.name}` : item.name,
        path: item.path,
      });
  }
  return found;
}
