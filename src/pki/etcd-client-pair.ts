import { join } from "node:path";
import { exists } from "../fsx/read.js";
import { parseCertificatePem } from "../x509/parse.js";
import { KUBEPKI_ETCD_CLIENT } from "./catalog.js";
import { leafProblems, loadPair } from "./existing.js";
import type { IssuedCert } from "./init-sign.js";
import { issueOwnPair } from "./own-pair.js";
import { caPaths, type PairPaths, readTreeText, type TreePaths } from "./paths.js";
import { requireCaSigner } from "./signer.js";

/** The pair verifies against the etcd CA's certificate (no key needed) with more than 30 days left. */
async function stillGood(paths: TreePaths, pair: PairPaths, now: Date): Promise<boolean> {
  if (!exists(pair.cert) || !exists(pair.key)) return false;
  const caFile = caPaths(paths, KUBEPKI_ETCD_CLIENT.ca).cert;
  const caPem = readTreeText(paths, caFile);
  if (!caPem) return false;
  const loaded = loadPair(pair, (f) => readTreeText(paths, f));
  const problems = await leafProblems(loaded, parseCertificatePem(caPem, caFile), { dns: [], ips: [] }, now);
  return (
    problems.length === 0 && !!loaded.cert && loaded.cert.notAfter.getTime() - now.getTime() > 30 * 86_400_000
  );
}

/**
 * kubepki's etcd client pair (catalog: KUBEPKI_ETCD_CLIENT), what an etcd-backed ledger connects
 * with: kept while it verifies against the etcd CA with more than 30 days left, else issued from
 * the etcd CA (key 0600 from the first byte, one journaled group). Returns what to record.
 */
export async function ensureEtcdClientPair(
  paths: TreePaths,
  now = new Date(),
): Promise<IssuedCert | undefined> {
  const pair = {
    cert: join(paths.root, KUBEPKI_ETCD_CLIENT.cert),
    key: join(paths.root, KUBEPKI_ETCD_CLIENT.key),
  };
  if (await stillGood(paths, pair, now)) return undefined;
  const ca = requireCaSigner(
    paths,
    KUBEPKI_ETCD_CLIENT.ca,
    "used to issue kubepki's etcd client certificate",
  );
  const issued = await issueOwnPair(
    paths,
    ca,
    pair,
    { commonName: KUBEPKI_ETCD_CLIENT.commonName, extKeyUsage: "clientAuth" },
    now,
  );
  return { ...issued, profile: KUBEPKI_ETCD_CLIENT.profile, path: pair.cert };
}
