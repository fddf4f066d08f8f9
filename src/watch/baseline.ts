import { isInside } from "../fsx/read.js";
import type { LedgerStore } from "../ledger/store.js";
import { NodeFiles } from "../node/files.js";
import { fileStates, toRecord } from "../node/integrity.js";
import type { TreePaths } from "../pki/paths.js";
import { type ParsedPem, parsePemFile } from "../x509/parse.js";

/**
 * After a kubepki command wrote these files (host paths), the integrity baseline takes them as
 * they now are, so `kubepki watch` and `kubepki audit` report no change for them. Most of what
 * kubepki writes is recognised anyway (its certificates are in the ledger); this covers what the
 * ledger cannot vouch for, such as the service-account key pair. No baseline yet: nothing to do.
 */
export async function approveWrites(
  paths: TreePaths,
  store: LedgerStore,
  hostPaths: string[],
  by = "kubepki",
  now = new Date(),
): Promise<number> {
  if ((await store.baseline()).length === 0) return 0;
  const files = new NodeFiles(paths.root);
  const pem = new Map<string, ParsedPem>();
  for (const host of hostPaths) {
    if (!isInside(paths.root, host)) continue;
    const nodePath = files.toNodePath(host);
    const data = files.read(nodePath);
    if (data) pem.set(nodePath, parsePemFile(data, nodePath));
  }
  const states = fileStates(pem, (p) => files.stat(p));
  if (states.length) await store.putBaseline(states.map((s) => toRecord(s, by, now)));
  return states.length;
}
