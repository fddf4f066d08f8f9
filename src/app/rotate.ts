import { resolve } from "node:path";
import { InputError, IoError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists } from "../fsx/read.js";
import { recoverJournal, recoveryPending } from "../fsx/transaction.js";
import type { LedgerEntry, LedgerStore } from "../ledger/store.js";
import type { StoreTarget } from "../ledger/target.js";
import { CAS, ROTATION_IDS, type RotationId } from "../pki/catalog.js";
import { crlPath, type TreePaths } from "../pki/paths.js";
import { readSettings } from "../pki/settings.js";
import type { RotateResult } from "../rotate/engine.js";
import type { RotationStatus } from "../rotate/status.js";
import { PHASES, type Phase } from "../rotate/types.js";
import { ledgerExists, ledgerToRecord } from "./recording.js";
import { inTree, type Notice, pathsOf, storeOf, type TreeOptions } from "./tree.js";

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
  const ledger = await storeOf(req, paths);
  return inTree(paths, () => rotateIn(req, { paths, ledger }, notices));
}

/** Where the rotation works: the node's tree, and the ledger (the node's SQLite file, or the shared etcd). */
interface Where {
  paths: TreePaths;
  ledger: StoreTarget;
}

async function rotateIn(req: RotateCaRequest, where: Where, notices: Notice[]): Promise<RotateCaOutcome> {
  const { paths, ledger } = where;
  const from = req.from ? resolve(req.from) : undefined;
  if (from && !exists(from)) throw new InputError(`--from ${from} does not exist (mount the offline folder)`);
  const { rotate } = await import("../rotate/engine.js");
  if (!req.dryRun && req.phase !== "trust") await recordLeftovers(where, req.ca);
  const dropping = req.phase === "drop" ? await oldCredentials(where, req.ca) : [];
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
  if (!req.dryRun && dropped.length > 0 && ledgerPresent(where, notices)) {
    const { withLedger, recordIssued } = await import("../ledger/record.js");
    await withLedger(ledger, async (store) => {
      await recordIssued(store, issued, result.superseded);
      await store.supersede(stopWorking.map((d) => d.sha256));
      await approveRotated(paths, store, result.changed);
    });
    await republishCrls(where, req.phase, dropped, { info: result.notes, warn: notices });
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
  if (recoveryPending(paths.journal))
    await inTree(paths, () => withTreeLock(paths.stateDir, () => recoverJournal(paths.journal)));
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
  const ledger = await storeOf(t, paths);
  return inTree(paths, () => abortIn(t, { paths, ledger }, notices));
}

async function abortIn(
  t: TreeOptions & { dryRun?: boolean },
  where: Where,
  notices: Notice[],
): Promise<AbortOutcome> {
  const { paths, ledger } = where;
  const { abort } = await import("../rotate/engine.js");
  const { issued: _issued, supersede, ...result } = await abort({ paths, dryRun: t.dryRun });
  if (t.dryRun || !ledgerPresent(where, notices)) return { result, notices };
  const { withLedger } = await import("../ledger/record.js");
  await withLedger(ledger, async (store) => {
    if (supersede.length > 0) await store.supersede(supersede);
    await approveRotated(paths, store, result.changed);
  });
  if (supersede.length > 0)
    notices.push(
      `the ledger marks the ${supersede.length} certificate(s) sign issued as superseded; the restored ones stay marked superseded there (they are valid again on the node)`,
    );
  // The CRLs are signed again by the old CA: what was revoked meanwhile stays revoked.
  const aborted = result.cas.map((c) => c.id);
  await republishCrls(where, "abort", aborted, { info: result.notes, warn: notices });
  return { result, notices };
}

/** What a phase wrote is no integrity change for kubepki watch (sa.key above all: no ledger entry vouches for it). */
async function approveRotated(paths: TreePaths, store: LedgerStore, changed: string[]): Promise<void> {
  const { approveWrites } = await import("../watch/baseline.js");
  await approveWrites(paths, store, changed, "kubepki rotate-ca");
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

const ledgerPresent = ({ paths, ledger }: Where, notices: Notice[]): boolean =>
  ledgerToRecord(ledger, paths, notices, "what the rotation signed is not recorded");

/** Credentials the ledger knows from each old CA being dropped, still active. */
async function oldCredentials(
  { paths, ledger }: Where,
  ca: RotationCa,
): Promise<{ sha256: string; credential: DroppedCredential; self: boolean }[]> {
  if (!ledgerExists(ledger)) return [];
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
  const active = await withLedger(ledger, (s) => s.list({ status: "active" }), "readonly");
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
  { paths, ledger }: Where,
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
  const { published, skipped } = await withLedger(ledger, (store) =>
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
async function recordLeftovers({ paths, ledger }: Where, ca: RotationCa): Promise<void> {
  if (!ledgerExists(ledger)) return;
  const [{ withLedger }, { reconcile }, { readState }] = await Promise.all([
    import("../ledger/record.js"),
    import("../ledger/reconcile.js"),
    import("../rotate/state.js"),
  ]);
  // Only sign issues certificates: nothing can be missing before a CA has been signed.
  const state = readState(paths);
  const ids = ca === "all" ? ROTATION_IDS : [ca];
  if (!ids.some((id) => state.cas[id]?.phase === "sign")) return;
  await withLedger(ledger, (store) => reconcile(store, paths, []));
}
