import { IoError } from "../errors.js";
import type { LedgerEntry } from "../ledger/store.js";
import type { PublishedCrl } from "../revoke/crl.js";
import type { CrlReason } from "../x509/crl.js";
import { inTree, type Notice, pathsOf, storeOf, type TreeOptions } from "./tree.js";

export interface RevokeRequest extends TreeOptions {
  /** What to revoke: a serial (hex), a SHA-256 fingerprint, or every active certificate of a user (CN). */
  serial?: string;
  fingerprint?: string;
  user?: string;
  /** keyCompromise, superseded, cessationOfOperation, affiliationChanged, ... */
  reason: string;
  /** Also revoke control-plane identities still in use (the cluster loses them). */
  force?: boolean;
}

export interface RevokeOutcome {
  reason: CrlReason;
  revoked: LedgerEntry[];
  crls: Omit<PublishedCrl, "der" | "pem">[];
  crlSkipped: { ca: string; reason: string }[];
  notices: Notice[];
  /**
   * Set when a CRL could not be rewritten (exit 3): the ledger has the revocation (kubepki serve
   * denies it), but etcd still accepts the certificate.
   */
  unfinished?: IoError;
}

/** `kubepki revoke`: marks ledger entries revoked and rewrites the CRLs of the CAs that issued them. */
export function revoke(req: RevokeRequest): Promise<RevokeOutcome> {
  return inTree(pathsOf(req), () => revokeIn(req));
}

async function revokeIn(req: RevokeRequest): Promise<RevokeOutcome> {
  const [{ withLedger }, m] = await Promise.all([
    import("../ledger/record.js"),
    import("../revoke/revoke.js"),
  ]);
  const reason = m.parseReason(req.reason);
  const paths = pathsOf(req);
  const target = await storeOf(req, paths);
  const r = await withLedger(target, (store) =>
    m.revokeCertificates(
      paths,
      store,
      { serial: req.serial, sha256: req.fingerprint, user: req.user },
      reason,
      {
        force: req.force,
      },
    ),
  ).catch((err: unknown) => {
    throw target.kind === "etcd" ? notReached(err) : err;
  });
  const notices: Notice[] = r.unstoppable.map(
    (e) =>
      `${e.subjectCN} (serial ${e.serial}) is in system:masters: kube-apiserver allows it before any authorizer runs. It is in the CRLs, but only rotating the cluster CA cuts it off at the API server.`,
  );
  for (const c of r.crls) if (c.warning) notices.push(c.warning);
  return {
    reason,
    revoked: r.revoked,
    crls: r.crls.map(({ der: _d, pem: _p, ...c }) => c),
    crlSkipped: r.crlSkipped,
    notices,
    unfinished: r.crlSkipped.length > 0 ? crlsLeft(req.root, r.crlSkipped) : undefined,
  };
}

/** etcd could not be reached or opened: nothing was written, and saying so tells the operator a retry is safe. */
function notReached(err: unknown): unknown {
  if (!(err instanceof IoError) || /^(nothing was revoked|revoked in the ledger)/.test(err.message))
    return err;
  return new IoError(`nothing was revoked: ${err.message}\nRetrying is safe.`, { cause: err });
}

function crlsLeft(root: string, skipped: { ca: string; reason: string }[]): IoError {
  const left = skipped.map((s) =>
    s.ca.startsWith("issuer ")
      ? `  - ${s.ca}: ${s.reason}; publish a CRL with the CA that issued it`
      : `  - ${s.ca}: ${s.reason}\n    What is left: kubepki crl --root ${root} --ca ${s.ca} --offline-dir <where the CA key is>`,
  );
  return new IoError(
    `revoked in the ledger (kubepki serve denies it), but a CRL was not rewritten, so etcd still accepts the certificate:\n${left.join("\n")}`,
  );
}
