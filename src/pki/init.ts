import { join, resolve, sep } from "node:path";
import { InputError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists, isInside } from "../fsx/read.js";
import { commitFiles, type PendingWrite, recoverJournal } from "../fsx/transaction.js";
import { issueCertificate } from "../x509/certificate.js";
import { KeyPool } from "../x509/keygen.js";
import { privateKeyToPem, publicKeyToPem } from "../x509/keys.js";
import { certInfoFromDer } from "../x509/parse.js";
import { backupTargets } from "./backup.js";
import { type BreakGlassOptions, planBreakGlass } from "./break-glass.js";
import { type CaId, type Component, casFor, RESTART_ORDER } from "./catalog.js";
import { type KubeadmConfig, kubeadmConfig } from "./component-config.js";
import {
  type ArtifactReport,
  type CaState,
  caReport,
  type Inconsistency,
  inspectCa,
  inspectLeaf,
  inspectSa,
  type LeafJob,
  leafReport,
  planLeafJobs,
  refuseInconsistent,
} from "./init-plan.js";
import { buildKubeconfig } from "./kubeconfig.js";
import { type TreePaths, treePaths } from "./paths.js";
import { caTemplate, leafTemplate } from "./profiles.js";
import { readSettings, settingsWrite } from "./settings.js";
import type { ClusterSpec } from "./spec.js";

export type { Action, ArtifactKind, ArtifactReport } from "./init-plan.js";

import { MODE_CERT, MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";

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
}

export interface InitResult {
  root: string;
  offlineDir: string;
  artifacts: ArtifactReport[];
  warnings: string[];
  backedUp: string[];
  /** Every certificate this run signed, for the ledger. */
  issued: IssuedCert[];
  /** Components to restart, in order, because a file they read was replaced. */
  restart: Component[];
  /** What init added to or changed in the operator's --config file, and what they must know. */
  kubeadmConfig: Pick<KubeadmConfig, "changes" | "notes">;
}

/** A certificate signed by a run, with its issuer, for the issuance ledger (one layer up). */
export interface IssuedCert {
  der: Buffer;
  issuerDer: Buffer;
  profile: string;
  path?: string;
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

export async function initPki(opts: InitOptions): Promise<InitResult> {
  const base = treePaths(opts.root, opts.spec.certificatesDir);
  const offline = resolveOfflineDir(base, opts.spec.offlineDir, readSettings(base.stateDir).offlineDir);
  const paths = treePaths(opts.root, opts.spec.certificatesDir, offline.dir);
  return withTreeLock(paths.stateDir, () => initLocked(opts, paths, offline.warnings));
}

/** Phase 1: what exists and what to do with it; nothing is written or generated. */
async function inspectTree(opts: InitOptions, paths: TreePaths, now: Date) {
  const { spec } = opts;
  const issues: Inconsistency[] = [];
  const cas = new Map<CaId, CaState>();
  for (const entry of casFor(spec)) cas.set(entry.id, inspectCa(entry, paths, spec, issues));
  const jobs = planLeafJobs(spec, paths);
  const leafOpts = { now, issues, keepSelfSignedKubelet: opts.keepSelfSignedKubelet };
  for (const job of jobs) await inspectLeaf(job, cas, paths, leafOpts);
  const sa = inspectSa(paths, issues);
  refuseInconsistent(issues, !!opts.force);
  const breakGlass = await planBreakGlass(jobs, cas, paths, { ...opts.breakGlass, now });
  return { cas, jobs, sa, breakGlass };
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
  const offlineDir = paths.offlineDir ?? "";
  recoverJournal(paths.journal);
  const { cas, jobs, sa, breakGlass } = await inspectTree(opts, paths, now);
  const warnings = [...spec.warnings, ...offlineWarnings, ...breakGlass.warnings];

  // Phase 2: keys for everything new, from a pool that may already be generating them (the CLI
  // starts a fresh tree's keys while code loads). Requested in order: CAs, leaves, sa.
  const casToMake = [...cas.values()].filter((c) => c.action !== "kept");
  const jobsToMake = jobs.filter((j) => j.action === "generated" || j.action === "replaced");
  const pool = opts.keyPool?.algorithm === spec.algorithm ? opts.keyPool : new KeyPool(spec.algorithm);
  pool.expect(casToMake.length + jobsToMake.length + (sa.action === "kept" ? 0 : 1));
  if (opts.onKey) pool.onKey = opts.onKey;
  const caKeys = casToMake.map(() => pool.take());
  const jobKeys = jobsToMake.map(() => pool.take());
  const saKey = sa.action === "kept" ? undefined : pool.take();

  const writes: PendingWrite[] = [];
  const reports: ArtifactReport[] = [];
  const offlineWrite = (path: string, data: string | undefined, mode: number): PendingWrite => ({
    path,
    data,
    mode,
    dirMode: path.startsWith(offlineDir) ? MODE_OFFLINE_DIR : undefined,
  });

  // Phase 3: sign, each certificate as soon as its key and its CA are ready.
  const issuedCerts: IssuedCert[] = [];
  const caReady = new Map<CaId, Promise<CaState>>();
  for (const ca of cas.values()) {
    const i = casToMake.indexOf(ca);
    const keyPromise = caKeys[i];
    if (i < 0 || !keyPromise) {
      caReady.set(ca.entry.id, Promise.resolve(ca));
      continue;
    }
    caReady.set(
      ca.entry.id,
      keyPromise.then(async (kp) => {
        const tpl = caTemplate(ca.entry, now, spec.caValidityMs);
        const issued = await issueCertificate(tpl, kp.publicKey, { selfSigned: kp.privateKey });
        ca.cert = certInfoFromDer(issued.der, ca.paths.cert);
        issuedCerts.push({ der: issued.der, issuerDer: issued.der, profile: "ca", path: ca.paths.cert });
        ca.key = kp.privateKey;
        writes.push({ path: ca.paths.cert, data: issued.pem, mode: MODE_CERT });
        writes.push(offlineWrite(ca.keyPath, privateKeyToPem(kp.privateKey), MODE_KEY));
        return ca;
      }),
    );
  }
  const signed = await Promise.all(
    jobsToMake.map(async (job, i) => {
      const [ca, kp] = await Promise.all([caReady.get(job.ca), jobKeys[i]]);
      if (!ca?.cert || !ca.key || !kp) throw new Error(`internal: CA ${job.ca} not ready`);
      const tpl = leafTemplate(job.profile, now, spec.certValidityMs, ca.cert.notAfter);
      const issued = await issueCertificate(tpl, kp.publicKey, {
        certificate: ca.cert,
        privateKey: ca.key,
      });
      return { job, issued, key: kp.privateKey, ca };
    }),
  );
  await Promise.all(caReady.values());
  for (const ca of cas.values()) {
    if (ca.removeNodeKey && ca.key) {
      writes.push(offlineWrite(ca.keyPath, privateKeyToPem(ca.key), MODE_KEY));
      writes.push({ path: ca.paths.key, data: undefined, mode: MODE_KEY });
    }
    reports.push(caReport(ca));
  }
  for (const { job, issued, key, ca } of signed) {
    job.existing = certInfoFromDer(issued.der, job.pair?.cert ?? job.kubeconfig?.path ?? job.id);
    issuedCerts.push({
      der: issued.der,
      issuerDer: ca.cert?.der ?? issued.der,
      profile: job.kind === "kubeconfig" ? `kubeconfig:${job.id}` : job.id,
      path: job.pair?.cert ?? job.kubeconfig?.path,
    });
    if (job.pair) {
      writes.push(offlineWrite(job.pair.cert, issued.pem, MODE_CERT));
      writes.push(offlineWrite(job.pair.key, privateKeyToPem(key), MODE_KEY));
    } else if (job.kubeconfig && ca.cert) {
      const text = buildKubeconfig({
        clusterName: spec.clusterName,
        server: job.kubeconfig.server,
        caPem: ca.cert.pem,
        userName: job.profile.commonName,
        clientCertPem: issued.pem,
        clientKeyPem: privateKeyToPem(key),
      });
      writes.push(offlineWrite(job.kubeconfig.path, text, MODE_KEY));
    }
  }
  for (const job of jobs) reports.push(leafReport(job));
  // A credential moved off the node is recorded where it now lives (kubeadm signed it, not this run).
  for (const job of jobs.filter((j) => j.action === "moved")) {
    const issuer = cas.get(job.ca)?.cert;
    if (job.existing && issuer)
      issuedCerts.push({
        der: job.existing.der,
        issuerDer: issuer.der,
        profile: `kubeconfig:${job.id}`,
        path: job.kubeconfig?.path,
      });
  }

  if (sa.action !== "kept" || sa.writePub) {
    const kp = await saKey;
    if (kp) writes.push({ path: sa.paths.key, data: privateKeyToPem(kp.privateKey), mode: MODE_KEY });
    const pub = kp?.publicKey ?? sa.publicKey;
    if (pub) writes.push({ path: sa.paths.pub, data: publicKeyToPem(pub), mode: MODE_KEY });
  }
  reports.push({
    id: "sa",
    kind: "key-pair",
    action: sa.action,
    location: "node",
    path: sa.paths.pub,
    keyPath: sa.paths.key,
  });

  const configPath = join(paths.configDir, "kubeadm-config.yaml");
  const config = kubeadmConfig(spec);
  if (jobs.some((j) => j.id === "kubelet" && j.action === "kept" && j.note))
    warnings.push(
      "kubeadm-config.yaml sets kube-apiserver's --kubelet-certificate-authority, which refuses this kubelet's self-signed certificate (kubectl logs and exec to this node fail): rerun init without --keep-kubelet-serving before kube-apiserver uses it",
    );
  writes.push({ path: configPath, data: config.yaml, mode: MODE_CERT });
  reports.push({
    id: "kubeadm-config",
    kind: "config",
    action: "written",
    location: "node",
    path: configPath,
  });

  writes.push(...breakGlass.writes);
  writes.push({ ...settingsWrite(paths.stateDir, { offlineDir }), backupDir: "none" });
  const replacing = reports.some((r) => r.action === "replaced") || writes.some((w) => w.data === undefined);
  const result = commitFiles(writes, {
    journalPath: paths.journal,
    backup: replacing ? backupTargets(paths, now) : undefined,
  });
  return {
    root: paths.root,
    offlineDir,
    artifacts: reports,
    warnings,
    backedUp: result.backedUp,
    issued: issuedCerts,
    restart: restartAfter(cas, jobs),
    kubeadmConfig: { changes: config.changes, notes: config.notes },
  };
}
