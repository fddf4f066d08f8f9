import { resolve } from "node:path";
import { InputError, IoError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists } from "../fsx/read.js";
import { recoverJournal, recoveryPending } from "../fsx/transaction.js";
import type { LedgerEntry } from "../ledger/store.js";
import { CAS, ROTATION_IDS, type RotationId } from "../pki/catalog.js";
import { crlPath, type TreePaths } from "../pki/paths.js";
import { readSettings } from "../pki/settings.js";
import type { RotateResult } from "../rotate/engine.js";
import type { RotationStatus } from "../rotate/status.js";
import { PHASES, type Phase } from "../rotate/types.js";
import { type Notice, pathsOf, type TreeOptions } from "./tree.js";

export type { RotationStatus };
export type RotationCa = RotationId | "all";
export const ROTATION_CAS: readonly RotationCa[] = [...ROTATION_IDS, "all"];
export { PHASES as ROTATION_PHASES, type Phase as RotationPhase };

export interface RotateCaRequest extends TreeOptions {
  /** Which CA: ca, etcd-ca, front-proxy-ca, sa (the service-account key pair), or all. */
  ca: RotationCa;
  phase: Phase;
  /** The offline folder where another node published the new CA (`trust` on every node but the first). */
  from?: string;
  dryRun?: boolean;
  /** sign before every trust file holds the new CA; drop while certificates still chain only to the old. */
  force?: boolean;
}

/** A credential the ledger knows that the old CA signed and that nothing on this node replaced: it stops working at drop. */
export interface DroppedCredential {
  id: RotationId;
  user: string;
  groups: string[];
  serial: string;
  profile: string;
  notAfter: string;
  breakGlass: boolean;
  path?: string;
}

export interface RotateCaOutcome {
  result: Omit<RotateResult, "issued">;
  /** At drop: what stops working (issue-client users, break-glass certificates, anything not reissued). */
  stopWorking: DroppedCredential[];
  notices: Notice[];
  /** Set when something was left undone (exit 3). */
  unfinished?: IoError;
}

/** `kubepki rotate-ca --phase trust|sign|drop`: one phase for one CA or all, recorded in the ledger. */
export async function rotateCa(req: RotateCaRequest): Promise<RotateCaOutcome> {
  if (!ROTATION_CAS.includes(req.ca)) throw new InputError(`--ca must be one of ${ROTATION_CAS.join(", ")}`);
  if (!PHASES.includes(req.phase)) throw new InputError(`--phase must be one of ${PHASES.join(", ")}`);
  const notices: Notice[] = [];
  const paths = rotationPaths(req, notices);
  const from = req.from ? resolve(req.from) : undefined;
  if (from && !exists(from)) throw new InputError(`--from ${from} does not exist (mount the offline folder)`);
  const { rotate } = await import("../rotate/engine.js");
  if (!req.dryRun && req.phase !== "trust") await recordLeftovers(paths, req.ca);
  const dropping = req.phase === "drop" ? await oldCredentials(paths, req.ca) : [];
  const { issued, ...result } = await rotate({
    paths,
    ids: req.ca === "all" ? "all" : [req.ca],
    phase: req.phase,
    from,
    dryRun: req.dryRun,
    force: req.force,
  });
  const dropped = result.cas.filter((c) => c.outcome === "done").map((c) => c.id);
  const stopWorking = dropping.filter((d) => dropped.includes(d.credential.id));
  if (!req.dryRun && dropped.length > 0 && ledgerPresent(paths, notices)) {
    const { withLedger, recordIssued } = await import("../ledger/record.js");
    await withLedger(paths.ledgerFile, async (store) => {
      await recordIssued(store, issued, result.superseded);
      await store.supersede(stopWorking.map((d) => d.sha256));
    });
    await republishCrls(paths, req.phase, dropped, { info: result.notes, warn: notices });
  }
  const unfinished =
    result.left.length > 0 ? new IoError(`left undone:\n  - ${result.left.join("\n  - ")}`) : undefined;
  const listed = stopWorking.filter((d) => !d.self).map((d) => d.credential);
  return { result, stopWorking: listed, notices, unfinished };
}

/** `kubepki rotate-ca status`: per CA its phase, per trust file its CAs, per certificate its signer. */
export async function rotationStatus(t: TreeOptions): Promise<RotationStatus> {
  const notices: Notice[] = [];
  const paths = rotationPaths(t, notices);
  if (recoveryPending(paths.journal)) await withTreeLock(paths.stateDir, () => recoverJournal(paths.journal));
  const { status } = await import("../rotate/engine.js");
  return status(paths);
}

export interface AbortOutcome {
  result: Omit<RotateResult, "issued">;
  notices: Notice[];
}

/** `kubepki rotate-ca abort`: before drop, the old CA signs and is trusted alone again, the files byte for byte as before. */
export async function abortRotation(t: TreeOptions & { dryRun?: boolean }): Promise<AbortOutcome> {
  const notices: Notice[] = [];
  const paths = rotationPaths(t, notices);
  const { abort } = await import("../rotate/engine.js");
  const { issued: _issued, supersede, ...result } = await abort({ paths, dryRun: t.dryRun });
  if (t.dryRun || !ledgerPresent(paths, notices)) return { result, notices };
  if (supersede.length > 0) {
    const { withLedger } = await import("../ledger/record.js");
    await withLedger(paths.ledgerFile, (store) => store.supersede(supersede));
    notices.push(
      `the ledger marks the ${supersede.length} certificate(s) sign issued as superseded; the restored ones stay marked superseded there (they are valid again on the node)`,
    );
  }
  // The CRLs are signed again by the old CA: what was revoked meanwhile stays revoked.
  const aborted = result.cas.map((c) => c.id);
  await republishCrls(paths, "abort", aborted, { info: result.notes, warn: notices });
  return { result, notices };
}

/** --offline-dir, else the one init recorded when it is mounted. */
function rotationPaths(t: TreeOptions, notices: Notice[]): TreePaths {
  const base = pathsOf(t);
  if (t.offlineDir) return base;
  const remembered = readSettings(base.stateDir).offlineDir;
  if (!remembered) return base;
  if (!exists(remembered)) {
    notices.push(`the offline folder ${remembered} init recorded is not mounted; working without it`);
    return base;
  }
  return pathsOf({ ...t, offlineDir: remembered });
}

function ledgerPresent(paths: TreePaths, notices: Notice[]): boolean {
  if (exists(paths.ledgerFile)) return true;
  const crls = CAS.map((c) => crlPath(paths, c.id)).filter(exists);
  if (crls.length > 0)
    throw new IoError(`the ledger ${paths.ledgerFile} is missing, though ${crls[0]} was published from it`);
  notices.push(`no ledger at ${paths.ledgerFile}: what the rotation signed is not recorded`);
  return false;
}

/** Credentials the ledger knows from each old CA being dropped, still active. */
async function oldCredentials(
  paths: TreePaths,
  ca: RotationCa,
): Promise<{ sha256: string; credential: DroppedCredential; self: boolean }[]> {
  if (!exists(paths.ledgerFile)) return [];
  const [{ readState }, { generationsIn }, { withLedger }] = await Promise.all([
    import("../rotate/state.js"),
    import("../rotate/material.js"),
    import("../ledger/record.js"),
  ]);
  const state = readState(paths);
  const olds = (ca === "all" ? ROTATION_IDS : [ca]).flatMap((id) => {
    const rot = state.cas[id];
    const gen = rot?.phase === "sign" ? generationsIn(id, rot.old, "rotation.json")[0] : undefined;
    return gen?.cert ? [{ id, sha256: gen.sha256 }] : [];
  });
  if (olds.length === 0) return [];
  const active = await withLedger(paths.ledgerFile, (s) => s.list({ status: "active" }), "readonly");
  // The old CA's own entry is superseded too, but it is no one's credential.
  return olds.flatMap((o) =>
    active
      .filter((e) => e.issuerSha256 === o.sha256)
      .map((e) => ({ sha256: e.sha256, credential: credential(o.id, e), self: e.sha256 === o.sha256 })),
  );
}

function credential(id: RotationId, e: LedgerEntry): DroppedCredential {
  return {
    id,
    user: e.subjectCN,
    groups: e.subjectO,
    serial: e.serial,
    profile: e.profile,
    notAfter: e.notAfter,
    breakGlass: !!e.breakGlass,
    ...(e.path ? { path: e.path } : {}),
  };
}

/**
 * After drop (and abort) the CRLs are signed again by the CA that now signs, listing only its
 * revocations. A CA key kept offline is a notice with the command to run.
 */
async function republishCrls(
  paths: TreePaths,
  phase: Phase | "abort",
  ids: RotationId[],
  say: { info: string[]; warn: Notice[] },
): Promise<void> {
  const cas = CAS.filter((c) => ids.includes(c.id) && exists(crlPath(paths, c.id)));
  // Until drop the CRL on disk may stay the old CA's: it is read as such, and etcd matches serials.
  if (phase === "trust" || phase === "sign" || cas.length === 0) return;
  const [{ withLedger }, { publishCrls }] = await Promise.all([
    import("../ledger/record.js"),
    import("../revoke/crl.js"),
  ]);
  const { published, skipped } = await withLedger(paths.ledgerFile, (store) =>
    publishCrls(paths, store, { only: cas.map((c) => c.id) }),
  );
  for (const p of published)
    say.info.push(`${p.path}: CRL number ${p.number} from the new ${p.ca}, ${p.revoked} revoked`);
  for (const s of skipped)
    say.warn.push(
      `${s.ca}: CRL not signed again (${s.reason}); run kubepki crl --ca ${s.ca} --offline-dir DIR`,
    );
}

/**
 * A run killed after its files were committed but before the ledger heard of them leaves
 * certificates on the node the ledger lacks: recorded now (as found on the node), before sign or
 * drop reads the ledger.
 */
async function recordLeftovers(paths: TreePaths, ca: RotationCa): Promise<void> {
  if (!exists(paths.ledgerFile)) return;
  const [{ withLedger }, { reconcile }, { readState }] = await Promise.all([
    import("../ledger/record.js"),
    import("../ledger/reconcile.js"),
    import("../rotate/state.js"),
  ]);
  // Only sign issues certificates: nothing can be missing before a CA has been signed.
  const state = readState(paths);
  const ids = ca === "all" ? ROTATION_IDS : [ca];
  if (!ids.some((id) => state.cas[id]?.phase === "sign")) return;
  await withLedger(paths.ledgerFile, (store) => reconcile(store, paths, []));
}
