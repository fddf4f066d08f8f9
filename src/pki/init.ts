import { join, resolve, sep } from "node:path";
import { InputError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists, isInside } from "../fsx/read.js";
import { commitFiles, recoverJournal } from "../fsx/transaction.js";
import type { KeyPool } from "../x509/keygen.js";
import { backupFolders, backupTargets } from "./backup.js";
import { type BreakGlassOptions, type BreakGlassPlan, planBreakGlass } from "./break-glass.js";
import { type CaId, type Component, casFor, KUBECONFIGS, RESTART_ORDER } from "./catalog.js";
import { type KubeadmConfig, kubeadmConfig } from "./component-config.js";
import {
  type ArtifactReport,
  type CaState,
  type Inconsistency,
  inspectCa,
  inspectLeaf,
  inspectSa,
  type LeafJob,
  planLeafJobs,
  refuseInconsistent,
  type SaState,
} from "./init-plan.js";
import { type IssuedCert, signInit } from "./init-sign.js";
import { InitWrites } from "./init-writes.js";
import { type TreePaths, treePaths } from "./paths.js";
import { readSettings, settingsWrite } from "./settings.js";
import type { ClusterSpec } from "./spec.js";
import { keepTrustWiring } from "./trust-wiring.js";

export type { Action, ArtifactKind, ArtifactReport } from "./init-plan.js";
export type { IssuedCert } from "./init-sign.js";

export interface InitOptions {
  root: string;
  spec: ClusterSpec;
  force?: boolean;
  now?: Date;
  /** Called as each key is generated (keys dominate the run time with RSA). */
  onKey?: (done: number, total: number) => void;
  /** Keys already being generated for this run (see plannedKeyCount). */
  keyPool?: KeyPool;
  /** Keep the kubelet's self-signed serving certificate (kubeadm's default) instead of replacing it. */
  keepSelfSignedKubelet?: boolean;
  /** What the ledger knows of the cluster's break-glass credential. */
  breakGlass?: BreakGlassOptions;
  /** The offline folder, when the caller resolved it already (offlineFolderFor). */
  offline?: OfflineFolder;
}

export interface InitResult {
  root: string;
  offlineDir: string;
  artifacts: ArtifactReport[];
  warnings: string[];
  backedUp: string[];
  /** The timestamped folders those copies went into, with how many each. */
  backups: { dir: string; files: number }[];
  /** Every certificate this run signed, for the ledger. */
  issued: IssuedCert[];
  /** Components to restart, in order, because a file they read was replaced. */
  restart: Component[];
  /** What init added to or changed in the operator's --config file, and what they must know. */
  kubeadmConfig: Pick<KubeadmConfig, "changes" | "notes">;
}

/**
 * Where the offline folder is: --offline-dir, else the one an earlier run recorded. Inside a built
 * tree (--root DIR) it must lie outside DIR, or it protects nothing. On a real node (--root /) every
 * path is inside the root: the folder is a mounted removable disk or a path the operator moves away
 * afterwards, so only the node's own Kubernetes folders are refused and the operator is told.
 */
export function resolveOfflineDir(
  base: TreePaths,
  given: string | undefined,
  remembered?: string,
): { dir: string; warnings: string[] } {
  const r = base.root;
  const chosen = given ?? remembered;
  if (!chosen) {
    if (r === sep)
      throw new InputError(
        "--offline-dir is required with --root /: super-admin.conf and offline keys never go onto the node",
      );
    return { dir: `${r}-offline`, warnings: [] };
  }
  const o = resolve(chosen);
  if (!given && !exists(o))
    throw new InputError(
      `the offline folder ${o} that an earlier run recorded is not there: mount it, or pass --offline-dir`,
    );
  if (r !== sep) {
    if (o === r || isInside(r, o))
      throw new InputError(`--offline-dir ${o} is inside the node tree ${r}; it must be kept off the node`);
    return { dir: o, warnings: [] };
  }
  const nodeDirs = [base.kubeconfigDir, base.pkiDir, base.kubeletPkiDir, base.stateDir];
  const inNode = nodeDirs.find((d) => o === d || isInside(d, o) || isInside(o, d));
  if (inNode || o === sep)
    throw new InputError(`--offline-dir ${o} overlaps ${inNode ?? sep}, which stays on the node`);
  return {
    dir: o,
    warnings: [
      `the offline folder ${o} is on this host: unmount the disk or move the folder off the node once init is done`,
    ],
  };
}

export type OfflineFolder = ReturnType<typeof resolveOfflineDir>;

/** The offline folder init writes into: the spec's (--offline-dir), else the one recorded, else <root>-offline. */
export function offlineFolderFor(root: string, spec: ClusterSpec): OfflineFolder {
  const base = treePaths(root, spec.certificatesDir);
  return resolveOfflineDir(base, spec.offlineDir, readSettings(base.stateDir).offlineDir);
}

export async function initPki(opts: InitOptions): Promise<InitResult> {
  const offline = opts.offline ?? offlineFolderFor(opts.root, opts.spec);
  const paths = treePaths(opts.root, opts.spec.certificatesDir, offline.dir);
  return withTreeLock(paths.stateDir, () => initLocked(opts, paths, offline.warnings));
}

interface InitPlan {
  cas: Map<CaId, CaState>;
  jobs: LeafJob[];
  sa: SaState;
  breakGlass: BreakGlassPlan;
}

/** Phase 1, the plan: what exists and what to do with it; nothing is written or generated. */
async function planInit(opts: InitOptions, paths: TreePaths, now: Date): Promise<InitPlan> {
  const { spec } = opts;
  const issues: Inconsistency[] = [];
  const cas = new Map<CaId, CaState>();
  for (const entry of casFor(spec)) cas.set(entry.id, inspectCa(entry, paths, spec, issues));
  const leafOpts = { now, issues, keepSelfSignedKubelet: opts.keepSelfSignedKubelet };
  const inspected: LeafJob[] = [];
  for (const job of planLeafJobs(spec, paths)) inspected.push(await inspectLeaf(job, cas, paths, leafOpts));
  const sa = inspectSa(paths, issues);
  refuseInconsistent(issues, !!opts.force);
  const jobs = opts.breakGlass?.joining ? inspected.map(joiningJob) : inspected;
  const breakGlass = await planBreakGlass(jobs, cas, paths, { ...opts.breakGlass, now });
  return { cas, jobs: breakGlass.jobs, sa, breakGlass };
}

/**
 * A joining control plane gets no kubelet.conf, as with kubeadm join: the kubelet makes its own
 * through its TLS bootstrap, and kubeadm join's preflight refuses a kubelet.conf already there.
 */
function joiningJob(job: LeafJob): LeafJob {
  const entry = KUBECONFIGS.find((k) => k.id === job.id);
  if (!entry?.madeByJoin || job.action !== "generated") return job;
  return {
    ...job,
    action: "skipped",
    note: "kubeadm join makes it (the kubelet's TLS bootstrap) and refuses one already there",
  };
}

/** Components to restart because a file they read was replaced (a new CA: all of them). */
function restartAfter(cas: Map<CaId, CaState>, jobs: LeafJob[]): Component[] {
  const newCa = [...cas.values()].some((c) => c.action === "replaced");
  const changed = new Set(jobs.filter((j) => j.action === "replaced").flatMap((j) => j.consumers));
  return RESTART_ORDER.filter((c) => newCa || changed.has(c));
}

async function initLocked(
  opts: InitOptions,
  paths: TreePaths,
  offlineWarnings: string[],
): Promise<InitResult> {
  const { spec } = opts;
  const now = opts.now ?? new Date();
  recoverJournal(paths.journal);
  const plan = await planInit(opts, paths, now);
  const signed = await signInit(plan, opts, now);
  const out = new InitWrites(paths.offlineDir ?? "");
  out.cas(signed.cas);
  out.leaves(plan.jobs, signed, spec.clusterName);
  out.sa(plan.sa, signed.saKey);
  const config = kubeadmConfig(spec);
  out.config(join(paths.configDir, "kubeadm-config.yaml"), keepTrustWiring(paths, config.yaml));
  const warnings = [...spec.warnings, ...offlineWarnings, ...plan.breakGlass.warnings];
  if (plan.jobs.some((j) => j.id === "kubelet" && j.action === "kept" && j.note))
    warnings.push(
      "kubeadm-config.yaml sets kube-apiserver's --kubelet-certificate-authority, which refuses this kubelet's self-signed certificate (kubectl logs and exec to this node fail): rerun init without --keep-kubelet-serving before kube-apiserver uses it",
    );
  const backedUp = commitInit(out, plan, paths, now);
  return {
    root: paths.root,
    offlineDir: out.offlineDir,
    artifacts: out.reports,
    warnings,
    backedUp,
    backups: backupFolders(backedUp, paths),
    issued: [...signed.issued, ...movedIssued(plan)],
    restart: restartAfter(plan.cas, plan.jobs),
    kubeadmConfig: { changes: config.changes, notes: config.notes },
  };
}

/** Phase 3, the commit: every write in one journaled transaction, with a backup when anything is replaced. */
function commitInit(out: InitWrites, plan: InitPlan, paths: TreePaths, now: Date): string[] {
  const writes = [
    ...out.writes,
    ...plan.breakGlass.writes,
    {
      ...settingsWrite(paths.stateDir, { ...readSettings(paths.stateDir), offlineDir: out.offlineDir }),
      backupDir: "none" as const,
    },
  ];
  const replacing =
    out.reports.some((r) => r.action === "replaced") || writes.some((w) => w.data === undefined);
  return commitFiles(writes, {
    journalPath: paths.journal,
    backup: replacing ? backupTargets(paths, now) : undefined,
  }).backedUp;
}

/** A credential moved off the node is recorded where it now lives (kubeadm signed it, not this run). */
function movedIssued(plan: InitPlan): IssuedCert[] {
  return plan.jobs.flatMap((job) => {
    const issuer = plan.cas.get(job.ca)?.cert;
    if (job.action !== "moved" || !job.existing || !issuer) return [];
    return [
      {
        der: job.existing.der,
        cert: job.existing,
        issuerDer: issuer.der,
        profile: `kubeconfig:${job.id}`,
        path: job.kubeconfig?.path,
      },
    ];
  });
}
