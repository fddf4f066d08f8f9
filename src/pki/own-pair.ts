import { MODE_CERT, MODE_KEY } from "../fsx/modes.js";
import { commitFiles } from "../fsx/transaction.js";
import { DEFAULT_KEY_ALGORITHM } from "../x509/algorithms.js";
import { issueCertificate } from "../x509/certificate.js";
import { generateKeyPair } from "../x509/keygen.js";
import { privateKeyToPem } from "../x509/keys.js";
import type { PairPaths, TreePaths } from "./paths.js";
import { leafTemplate } from "./profiles.js";
import type { CaSigner } from "./signer.js";
import type { SanSet } from "./spec.js";

/** kubepki's own pairs (the webhook's, the etcd ledger client's) live a year; they are renewed before the last 30 days. */
export const OWN_PAIR_VALIDITY_MS = 365 * 86_400_000;

export interface OwnPairRequest {
  commonName: string;
  extKeyUsage: "serverAuth" | "clientAuth";
  sans?: SanSet;
}

/**
 * Issues one of kubepki's own pairs from `ca` and writes key and certificate as one journaled
 * group (the key 0600 from its first byte), so the two never disagree on disk. Returns the DERs
 * to record in the ledger.
 */
export async function issueOwnPair(
  paths: TreePaths,
  ca: CaSigner,
  pair: PairPaths,
  req: OwnPairRequest,
  now = new Date(),
): Promise<{ der: Buffer; issuerDer: Buffer }> {
  const kp = await generateKeyPair(DEFAULT_KEY_ALGORITHM);
  const tpl = leafTemplate(
    {
      commonName: req.commonName,
      organizations: [],
      extKeyUsage: [req.extKeyUsage],
      sans: req.sans ?? { dns: [], ips: [] },
    },
    now,
    OWN_PAIR_VALIDITY_MS,
    ca.cert.notAfter,
  );
  const c = await issueCertificate(tpl, kp.publicKey, { certificate: ca.cert, privateKey: ca.key });
  commitFiles(
    [
      { path: pair.key, data: privateKeyToPem(kp.privateKey), mode: MODE_KEY },
      { path: pair.cert, data: c.pem, mode: MODE_CERT },
    ],
    { journalPath: paths.journal },
  );
  return { der: c.der, issuerDer: ca.cert.der };
}
