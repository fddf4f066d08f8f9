import { InputError, IoError } from "../errors.js";
import { readTextLimited } from "../fsx/read.js";
import type { LedgerEntry, LedgerStore, RevokeMatch } from "../ledger/store.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { caPaths, type TreePaths } from "../pki/paths.js";
import { CRL_REASONS, type CrlReason } from "../x509/crl.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { decodePem } from "../x509/pem.js";
import { controlPlaneImpact } from "./control-plane.js";
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
  /** CRLs that could not be rewritten (no CA key, or an issuer that is not a CA of this tree). */
  crlSkipped: { ca: string; reason: string }[];
  /** Revoked system:masters certificates: no authorizer can stop them. */
  unstoppable: LedgerEntry[];
}

/** Which of the tree's CAs issued entries with these issuer fingerprints, and which issuers are none of them. */
function casOf(paths: TreePaths, issuers: Set<string>): { cas: CaId[]; unknown: string[] } {
  const found = new Map<string, CaId>();
  for (const ca of CAS) {
    const text = readTextLimited(caPaths(paths, ca.id).cert);
    const block = text ? decodePem(text, ca.id).find((b) => b.label === "CERTIFICATE") : undefined;
    if (block && issuers.has(sha256Hex(block.der))) found.set(sha256Hex(block.der), ca.id);
  }
  return { cas: [...new Set(found.values())], unknown: [...issuers].filter((i) => !found.has(i)) };
}

/**
 * Marks ledger entries revoked and rewrites the CRLs of the CAs that issued them, so etcd refuses
 * them at the next handshake and `kubepki serve` denies them at the API server. The whole step
 * holds the ledger's write lock: concurrent revokers never publish a CRL that misses an entry.
 * CA certificates are never revoked (rotation's job); active control-plane identities need `force`.
 */
export async function revokeCertificates(
  paths: TreePaths,
  store: LedgerStore,
  match: RevokeMatch,
  reason: CrlReason,
  opts: { now?: Date; force?: boolean } = {},
): Promise<RevokeResult> {
  if (!match.serial && !match.sha256 && !match.user)
    throw new InputError("say what to revoke: --serial, --fingerprint or --user");
  const now = opts.now ?? new Date();
  const what = match.serial
    ? `serial ${match.serial}`
    : match.sha256
      ? `fingerprint ${match.sha256}`
      : `user ${match.user}`;
  let committed: LedgerEntry[] = [];
  try {
    return await store.exclusive(() =>
      revokeLocked(paths, store, {
        match,
        what,
        reason,
        now,
        force: opts.force,
        onCommitted: (r) => {
          committed = r;
        },
      }),
    );
  } catch (err) {
    throw store.autocommit ? notCommitted(err, committed) : err;
  }
}

/**
 * A shared store commits each write on its own: say what was committed when the step failed, so the
 * operator knows a retry is safe (nothing revoked) or what is left (the CRL of a committed revocation).
 */
function notCommitted(err: unknown, committed: LedgerEntry[]): unknown {
  if (!(err instanceof IoError)) return err;
  if (committed.length === 0)
    return new IoError(
      `nothing was revoked (the ledger's transaction did not commit): ${err.message}. Retrying is safe`,
      {
        cause: err,
      },
    );
  const serials = committed.map((e) => e.serial).join(", ");
  return new IoError(
    `revoked in the ledger (serial ${serials}; every kubepki serve denies it), but the CRL was not published: ${err.message}. Publish it with kubepki crl (the CA that issued it)`,
    { cause: err },
  );
}

interface LockedRevoke {
  match: RevokeMatch;
  what: string;
  reason: CrlReason;
  now: Date;
  force?: boolean;
  onCommitted: (revoked: LedgerEntry[]) => void;
}

async function revokeLocked(
  paths: TreePaths,
  store: LedgerStore,
  { match, what, reason, now, force, onCommitted }: LockedRevoke,
): Promise<RevokeResult> {
  {
    const found = await store.find(match);
    const leaves = found.filter((e) => !e.isCA);
    if (leaves.length === 0 && found.length > 0)
      throw new InputError(
        `${what} matches only CA certificates (${found.map((e) => e.subjectCN).join(", ")}): a CA is never revoked into a CRL, not even its own. Revoking a CA is rotation's job: replace it (kubepki init --force) and re-issue what it signed`,
      );
    if (leaves.length === 0)
      throw new InputError(
        `no active certificate with ${what} in the ledger (kubepki ledger import records a node's existing certificates)`,
      );
    if (!force) refuseControlPlane(leaves);
    const revoked = await store.revoke(
      leaves.map((e) => e.sha256),
      reason,
      now,
    );
    onCommitted(revoked);
    const { cas: only, unknown } = casOf(paths, new Set(revoked.map((e) => e.issuerSha256)));
    const { published, skipped } =
      only.length > 0 ? await publishCrls(paths, store, { now, only }) : { published: [], skipped: [] };
    const noCa = unknown.map((i) => ({
      ca: `issuer ${i.slice(0, 16)}…`,
      reason: "not a CA of this tree, so no CRL of this node can list it",
    }));
    return {
      revoked,
      crls: published,
      crlSkipped: [...skipped, ...noCa],
      unstoppable: revoked.filter((e) => e.subjectO.includes("system:masters")),
    };
  }
}

function refuseControlPlane(entries: LedgerEntry[]): void {
  const hits = entries.flatMap((e) => {
    const impact = controlPlaneImpact(e);
    return impact ? [{ e, ...impact }] : [];
  });
  if (hits.length === 0) return;
  const lines = hits.map(
    (h) =>
      `  - ${h.e.subjectCN} (serial ${h.e.serial}): ${h.breaks}${h.renew ? `; renew it first: kubepki certs renew ${h.renew}` : ""}`,
  );
  throw new InputError(
    `refusing to revoke ${hits.length} control-plane identit${hits.length === 1 ? "y" : "ies"} still in use; the cluster would cut itself off at the next connection:\n${lines.join("\n")}\nRenew first (the old certificate is then superseded and can be revoked), or pass --force if you accept the outage.`,
  );
}
