import { isInside } from "../fsx/read.js";
import type { LedgerStore } from "../ledger/store.js";
import { NodeFiles } from "../node/files.js";
import { fileStates, kubeconfigStates, toRecord } from "../node/integrity.js";
import { type KubeconfigFact, readKubeconfig } from "../pki/kubeconfig.js";
import type { TreePaths } from "../pki/paths.js";
import { type ParsedPem, parsePemFile } from "../x509/parse.js";

/**
 * After a kubepki command wrote these files (host paths), the integrity baseline takes them as
 * they now are, so `kubepki watch` and `kubepki audit` report no change for them. Most of what
 * kubepki writes is recognised anyway (its certificates are in the ledger); this covers what the
 * ledger cannot vouch for, such as the service-account key pair, or the kubeconfigs `rotate-ca
 * abort` puts back (their certificates are superseded in the ledger). No baseline yet: nothing to do.
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
  const kubeconfigs: KubeconfigFact[] = [];
  for (const host of hostPaths) {
    if (!isInside(paths.root, host)) continue;
    const nodePath = files.toNodePath(host);
    const data = files.read(nodePath);
    if (!data) continue;
    const parsed = parsePemFile(data, nodePath);
    if (parsed.certs.length || parsed.keys.length) pem.set(nodePath, parsed);
    else {
      const { fact } = readKubeconfig(data.toString("utf8"), nodePath);
      if (fact) kubeconfigs.push(fact);
    }
  }
  const stat = (p: string) => files.stat(p);
  const states = [...fileStates(pem, stat), ...kubeconfigStates(kubeconfigs, stat)];
  if (states.length) await store.putBaseline(states.map((s) => toRecord(s, by, now)));
  return states.length;
}
