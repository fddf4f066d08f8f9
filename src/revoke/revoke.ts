import { InputError } from "../errors.js";
import { readTextLimited } from "../fsx/read.js";
import type { LedgerEntry, LedgerStore, RevokeMatch } from "../ledger/store.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { caPaths, type TreePaths } from "../pki/paths.js";
import { CRL_REASONS, type CrlReason } from "../x509/crl.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { decodePem } from "../x509/pem.js";
import { type PublishedCrl, publishCrls } from "./crl.js";

export function parseReason(value: string): CrlReason {
  const found = (Object.keys(CRL_REASONS) as CrlReason[]).find(
    (r) => r.toLowerCase() === value.toLowerCase(),
  );
  if (!found)
    throw new InputError(
      `--reason: "${value}" is not a CRL reason; use one of ${Object.keys(CRL_REASONS).join(", ")}`,
    );
  return found;
}

export interface RevokeResult {
  revoked: LedgerEntry[];
  crls: PublishedCrl[];
  crlSkipped: { ca: CaId; reason: string }[];
  /** Revoked system:masters certificates: no authorizer can stop them. */
  unstoppable: LedgerEntry[];
}

/** Which of the tree's CAs issued entries with these issuer fingerprints. */
function casOf(paths: TreePaths, issuers: Set<string>): CaId[] {
  return CAS.filter((ca) => {
    const text = readTextLimited(caPaths(paths, ca.id).cert);
    const block = text ? decodePem(text, ca.id).find((b) => b.label === "CERTIFICATE") : undefined;
    return block ? issuers.has(sha256Hex(block.der)) : false;
  }).map((ca) => ca.id);
}

/**
 * Marks ledger entries revoked and rewrites the CRLs of the CAs that issued them, so etcd refuses
 * them at the next handshake and `kubepki serve` denies them at the API server.
 */
export async function revokeCertificates(
  paths: TreePaths,
  store: LedgerStore,
  match: RevokeMatch,
  reason: CrlReason,
  now = new Date(),
): Promise<RevokeResult> {
  if (!match.serial && !match.sha256 && !match.user)
    throw new InputError("say what to revoke: --serial, --fingerprint or --user");
  const revoked = await store.revoke(match, reason, now);
  if (revoked.length === 0) {
    const what = match.serial
      ? `serial ${match.serial}`
      : match.sha256
        ? `fingerprint ${match.sha256}`
        : `user ${match.user}`;
    throw new InputError(
      `no active certificate with ${what} in the ledger (kubepki ledger import records a node's existing certificates)`,
    );
  }
  const only = casOf(paths, new Set(revoked.map((e) => e.issuerSha256)));
  const { published, skipped } =
    only.length > 0 ? await publishCrls(paths, store, { now, only }) : { published: [], skipped: [] };
  return {
    revoked,
    crls: published,
    crlSkipped: skipped,
    unstoppable: revoked.filter((e) => e.subjectO.includes("system:masters")),
  };
}
