import { lstatSync } from "node:fs";
import { join, relative } from "node:path";
import { stringify } from "yaml";
import { InputError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { MODE_CERT, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { exists, isInside, readFileLimited } from "../fsx/read.js";
import { commitFiles, type PendingWrite, recoverJournal } from "../fsx/transaction.js";
import { type Component, ROTATION_IDS, type RotationId } from "../pki/catalog.js";
import type { IssuedCert } from "../pki/init.js";
import { noPkiError, pkiPresent } from "../pki/inventory.js";
import type { TreePaths } from "../pki/paths.js";
import { abortSession } from "./abort.js";
import { PHASE_ORDER, type PhaseContext } from "./context.js";
import { dropPhase } from "./drop.js";
import { kubeconfigFiles, kubeconfigView } from "./inventory.js";
import { currentGeneration, generationsIn, label, readPublished, rotationFiles } from "./material.js";
import { signLeftovers, signPhase } from "./sign.js";
import { pruneEmpty, readState, snapshotDirs, stateWrite } from "./state.js";
import { blockers, type RotationStatus, rotationStatus } from "./status.js";
import { clusterSteps, restartLines, restartOrder } from "./steps.js";
import { applyTrust, prepareTrust, trustPhase } from "./trust.js";
import type { Phase, RotationState } from "./types.js";
import { onNode } from "./wiring.js";
import { Workspace } from "./workspace.js";

export interface RotateOptions {
  paths: TreePaths;
  /** The CAs to rotate ("all": every one this node has). */
  ids: RotationId[] | "all";
  phase: Phase;
  from?: string;
  dryRun?: boolean;
  force?: boolean;
  now?: Date;
}

export interface RotateResult {
  phase: Phase | "abort";
  dryRun: boolean;
  /** Per CA: "done", or "already" (the phase had run; nothing changed). */
  cas: { id: RotationId; outcome: "done" | "already"; old?: string; new?: string }[];
  /** Files written or removed (host paths). */
  changed: string[];
  restart: Component[];
  restartSteps: string[];
  clusterSteps: string[];
  notes: string[];
  /** What could not be done here (the command exits 3). */
  left: string[];
  issued: IssuedCert[];
  superseded: string[];
}

const PHASE_FN = { trust: trustPhase, sign: signPhase, drop: dropPhase } as const;

/** One phase for one or more CAs: one journaled transaction with rotation.json, or nothing at all. */
export async function rotate(opts: RotateOptions): Promise<RotateResult> {
  if (!exists(opts.paths.journal) && !pkiPresent(opts.paths)) throw noPkiError(opts.paths);
  return withTreeLock(opts.paths.stateDir, () => rotateLocked(opts));
}

async function rotateLocked(opts: RotateOptions): Promise<RotateResult> {
  recoverJournal(opts.paths.journal);
  const ctx = context(opts.paths, opts);
  const ids = chosen(ctx, opts.ids);
  const todo = ids.filter((id) => order(ctx.state, id, opts.phase) === "run");
  if (ctx.from) for (const id of ids.filter((i) => !todo.includes(i))) sameNewCa(ctx, id);
  for (const id of ids) ctx.outcome[id] = todo.includes(id) ? "done" : "already";
  if (opts.phase === "sign")
    await finishLeftovers(
      ctx,
      ids.filter((id) => !todo.includes(id)),
    );
  if (opts.phase === "sign" && !ctx.force) refuseUntrusted(ctx, todo);
  await runPhase(ctx, opts.phase, todo);
  if (todo.length === 0)
    return finish(ctx, opts.phase, !!opts.dryRun, ctx.ws.changed().length > 0 ? snapshot(ctx) : []);
  if (opts.phase === "trust") joinSession(ctx.state, todo, ctx.now);
  if (todo.includes("ca")) clusterInfoPatch(ctx);
  const extra = opts.phase === "drop" ? endSession(ctx) : snapshot(ctx);
  return finish(ctx, opts.phase, !!opts.dryRun, extra);
}

/** `rotate-ca abort`: the session's files back as they were, byte for byte. */
export async function abort(opts: {
  paths: TreePaths;
  dryRun?: boolean;
  now?: Date;
}): Promise<RotateResult & { supersede: string[] }> {
  if (!exists(opts.paths.journal) && !pkiPresent(opts.paths)) throw noPkiError(opts.paths);
  return withTreeLock(opts.paths.stateDir, () => {
    recoverJournal(opts.paths.journal);
    const ctx = context(opts.paths, opts);
    const { ids, issued } = abortSession(ctx);
    for (const id of ids) ctx.outcome[id] = "done";
    return { ...finish(ctx, "abort", !!opts.dryRun, []), supersede: issued };
  });
}

/** `rotate-ca status`: read-only. */
export function status(paths: TreePaths): RotationStatus {
  if (!pkiPresent(paths)) throw noPkiError(paths);
  const ctx = context(paths, {});
  return rotationStatus(ctx);
}

function context(paths: TreePaths, o: { from?: string; force?: boolean; now?: Date }): PhaseContext {
  return {
    ws: new Workspace(paths),
    paths,
    state: readState(paths),
    now: o.now ?? new Date(),
    from: o.from,
    force: !!o.force,
    notes: [],
    restart: new Set(),
    issued: [],
    superseded: [],
    left: [],
    preserve: new Set(),
    outcome: {},
  };
}

/** `all`: every CA this node has; a CA named but absent is an input error. */
function chosen(ctx: PhaseContext, ids: RotationId[] | "all"): RotationId[] {
  const present = (id: RotationId) => {
    try {
      currentGeneration(id, (p) => ctx.ws.read(p), rotationFiles(ctx.paths, id));
      return true;
    } catch {
      return ctx.state.cas[id] !== undefined;
    }
  };
  if (ids === "all") return ROTATION_IDS.filter(present);
  for (const id of ids)
    if (!present(id)) currentGeneration(id, (p) => ctx.ws.read(p), rotationFiles(ctx.paths, id));
  return ids;
}

/** "run", "already" (done before: nothing changes), or an InputError naming the phase that comes next. */
function order(state: RotationState, id: RotationId, phase: Phase): "run" | "already" {
  const at = state.cas[id]?.phase ?? "none";
  if (at === phase) return "already";
  if (PHASE_ORDER[at] === phase) return "run";
  const why =
    at === "none" || at === "drop"
      ? `no rotation of the ${label(id)} is in progress`
      : `the ${label(id)} is at phase ${at}`;
  throw new InputError(
    `--phase ${phase} refused for ${id}: ${why}; the next phase is ${PHASE_ORDER[at]} (rotate-ca status shows where each CA is)`,
  );
}

/**
 * The CAs' keys generate side by side. trust edits files several CAs share (manifests, the kubeadm
 * configuration), so its edits then run in a fixed order; sign's edits touch each CA's own files
 * and run as each CA's keys are ready (no edit yields midway).
 */
async function runPhase(ctx: PhaseContext, phase: Phase, ids: RotationId[]): Promise<void> {
  if (phase === "trust") {
    const prepared = await Promise.all(ids.map((id) => prepareTrust(ctx, id)));
    ids.forEach((id, i) => {
      const p = prepared[i];
      if (p) applyTrust(ctx, id, p);
    });
    return;
  }
  await Promise.all(ids.map((id) => PHASE_FN[phase](ctx, id)));
}

/** sign run again: certificates of the old CA a first sign could not issue (no key here) are issued now. */
async function finishLeftovers(ctx: PhaseContext, ids: RotationId[]): Promise<void> {
  for (const id of ids) if (await signLeftovers(ctx, id)) ctx.outcome[id] = "done";
}

/** A node that trusts a new CA already, told to take one from --from, must be taking the same one. */
function sameNewCa(ctx: PhaseContext, id: RotationId): void {
  const rot = ctx.state.cas[id];
  if (!rot || rot.phase === "drop") return;
  const published = readPublished(ctx.from ?? "", id).gen.sha256;
  if (generationsIn(id, rot.next, "rotation.json")[0]?.sha256 !== published)
    throw new InputError(
      `${id}: this node's rotation has another new CA than the one in --from ${ctx.from}; run rotate-ca abort here, then trust again with --from`,
    );
}

function refuseUntrusted(ctx: PhaseContext, ids: RotationId[]): void {
  const gaps = ids.flatMap((id) => blockers(ctx, id, "sign").map((b) => `${id}: ${b}`));
  if (gaps.length > 0)
    throw new InputError(
      `sign refused: every trust file must hold the new CA first:\n  - ${gaps.join("\n  - ")}\nrun --phase trust (or --force)`,
    );
}

function joinSession(state: RotationState, ids: RotationId[], now: Date): void {
  state.session ??= { startedAt: now.toISOString(), ids: [], files: [] };
  for (const id of ids) if (!state.session.ids.includes(id)) state.session.ids.push(id);
}

/** Copies of the files this phase changes, as they were before the session first touched them. */
function snapshot(ctx: PhaseContext): PendingWrite[] {
  const s = ctx.state.session;
  if (!s) return [];
  const dirs = snapshotDirs(ctx.paths);
  const writes: PendingWrite[] = [];
  for (const path of new Set([...ctx.ws.changed(), ...ctx.preserve])) {
    if (s.files.some((e) => e.path === path)) continue;
    const data = readFileLimited(path);
    if (data === undefined) {
      s.files.push({ path });
      continue;
    }
    const offline =
      ctx.paths.offlineDir && isInside(ctx.paths.offlineDir, path) ? ctx.paths.offlineDir : undefined;
    const copy =
      offline && dirs.offline
        ? join(dirs.offline, relative(offline, path))
        : join(dirs.node, relative(ctx.paths.root, path));
    const mode = lstatSync(path).mode & 0o777;
    writes.push({ path: copy, data, mode, dirMode: MODE_OFFLINE_DIR });
    s.files.push({ path, copy, mode });
  }
  return writes;
}

/** When every CA of the session has been dropped, the session ends and its copies go. */
function endSession(ctx: PhaseContext): PendingWrite[] {
  const s = ctx.state.session;
  if (!s?.ids.every((id) => ctx.state.cas[id]?.phase === "drop")) return [];
  ctx.state.session = undefined;
  return s.files.flatMap((e) => (e.copy ? [{ path: e.copy, data: undefined, mode: 0 }] : []));
}

/** The cluster-info ConfigMap's kubeconfig with the cluster CA data after this phase, for kubectl patch. */
function clusterInfoPatch(ctx: PhaseContext): void {
  const admin = kubeconfigFiles(ctx.paths).find((k) => k.name === "admin.conf");
  const text = admin ? ctx.ws.read(admin.path) : undefined;
  if (!admin || text === undefined) return;
  const view = kubeconfigView(ctx.ws, admin.path);
  const caPem = kubeconfigView(ctx.ws, admin.path)?.caPem;
  if (!caPem || !view?.server) return;
  const kubeconfig = stringify({
    apiVersion: "v1",
    clusters: [
      {
        cluster: { "certificate-authority-data": Buffer.from(caPem).toString("base64"), server: view.server },
        name: "",
      },
    ],
    contexts: null,
    "current-context": "",
    kind: "Config",
    preferences: {},
    users: null,
  });
  ctx.ws.write(
    clusterInfoPath(ctx.paths),
    `${JSON.stringify({ data: { kubeconfig } }, null, 2)}\n`,
    MODE_CERT,
  );
}

export const clusterInfoPath = (p: TreePaths) => join(p.configDir, "cluster-info.patch.json");

function finish(
  ctx: PhaseContext,
  phase: Phase | "abort",
  dryRun: boolean,
  extra: PendingWrite[],
): RotateResult {
  const changed = ctx.ws.changed();
  if (!dryRun && changed.length + extra.length > 0) {
    commitFiles([...ctx.ws.writes(), ...extra, stateWrite(ctx.paths, ctx.state)], {
      journalPath: ctx.paths.journal,
    });
    // Only empty folders go: the published new CA stays for the other nodes' --from.
    if (!ctx.state.session)
      for (const d of [ctx.paths.stateDir, ctx.paths.offlineDir]) if (d) pruneEmpty(join(d, "rotation"));
  }
  const restart = restartOrder(onNode(ctx.paths, ctx.restart), phase);
  const patch = ctx.ws.nodePath(clusterInfoPath(ctx.paths));
  const cas = (Object.entries(ctx.outcome) as [RotationId, "done" | "already"][]).map(([id, outcome]) => {
    const rot = ctx.state.cas[id];
    const fp = (pem?: string) => (pem ? generationsIn(id, pem, "rotation.json")[0]?.sha256 : undefined);
    return { id, outcome, old: fp(rot?.old), new: fp(rot?.next) };
  });
  const steps =
    phase === "abort"
      ? []
      : cas
          .filter((c) => c.outcome === "done")
          .flatMap((c) => clusterSteps(c.id, phase, c.id === "ca" ? patch : undefined));
  return {
    phase,
    dryRun,
    cas,
    changed,
    restart,
    restartSteps: restartLines(restart),
    clusterSteps: steps,
    notes: ctx.notes,
    left: ctx.left,
    issued: ctx.issued,
    superseded: ctx.superseded,
  };
}
