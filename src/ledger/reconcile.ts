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
  const found = treeCertificates(paths, issued);
  const missing: IssuedRecord[] = [];
  for (const r of found) if (!(await store.get(entryFrom(r, "imported", now).sha256))) missing.push(r);
  await store.record(missing.map((r) => entryFrom(r, "imported", now)));
  return { recorded: missing.length };
}

/**
 * Every CA, leaf and kubeconfig client certificate of the tree, with its issuer. A file this run
 * just wrote (in `issued`) is recorded already: it is not read back.
 */
function treeCertificates(paths: TreePaths, issued: IssuedRecord[]): IssuedRecord[] {
  const written = new Map(issued.flatMap((r) => (r.path ? [[r.path, r] as const] : [])));
  const cas = new Map<string, Buffer>();
  const found: IssuedRecord[] = [];
  for (const ca of caItems(paths)) {
    const der = written.get(ca.cert)?.der ?? readDer(paths, ca.cert, "certificate");
    if (!der) continue;
    cas.set(ca.id, der);
    if (!written.has(ca.cert)) found.push({ der, issuerDer: der, profile: "ca", path: ca.cert });
  }
  for (const item of treeItems(paths)) {
    const issuerDer = cas.get(item.caId);
    if (!issuerDer || written.has(item.path)) continue;
    const der = readDer(paths, item.path, item.kind);
    const profile = item.kind === "kubeconfig" ? `kubeconfig:${item.name}` : item.name;
    if (der) found.push({ der, issuerDer, profile, path: item.path });
  }
  return found;
}

/** The certificate of a file of the tree (a kubeconfig's client certificate); undefined when absent. */
function readDer(paths: TreePaths, path: string, kind: "certificate" | "kubeconfig"): Buffer | undefined {
  const text = readTreeText(paths, path);
  if (!text) return undefined;
  return kind === "kubeconfig"
    ? parseKubeconfig(text, path).clientCert?.der
    : parseCertificatePem(text, path).der;
}
