import { join, relative, resolve, sep } from "node:path";
import { InputError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists } from "../fsx/read.js";
import { commitFiles, type PendingWrite, recoverJournal } from "../fsx/transaction.js";
import { issueCertificate } from "../x509/certificate.js";
import { KeyPool } from "../x509/keygen.js";
import { privateKeyToPem, publicKeyToPem } from "../x509/keys.js";
import { certInfoFromDer } from "../x509/parse.js";
import { backupStamp } from "./backup.js";
import { type CaId, casFor } from "./catalog.js";
import { kubeadmConfigYaml } from "./component-config.js";
import {
  type ArtifactReport,
  type CaState,
  caReport,
  inspectCa,
  inspectLeaf,
  inspectSa,
  leafReport,
  planLeafJobs,
} from "./init-plan.js";
import { buildKubeconfig } from "./kubeconfig.js";
import { type TreePaths, treePaths } from "./paths.js";
import { caTemplate, leafTemplate } from "./profiles.js";
import type { ClusterSpec } from "./spec.js";

export type { Action, ArtifactKind, ArtifactReport } from "./init-plan.js";

export const MODE_CERT = 0o644;
export const MODE_KEY = 0o600;
export const MODE_OFFLINE_DIR = 0o700;

export interface InitOptions {
  root: string;
  spec: ClusterSpec;
  force?: boolean;
  now?: Date;
  /** Called as each key is generated (keys dominate the run time with RSA). */
  onKey?: (done: number, total: number) => void;
  /** Keys already being generated for this run (see plannedKeyCount). */
  keyPool?: KeyPool;
}

export interface InitResult {
  root: string;
  offlineDir: string;
  artifacts: ArtifactReport[];
  warnings: string[];
  backedUp: string[];
  /** Every certificate this run signed, for the ledger. */
  issued: IssuedCert[];
}

/** A certificate signed by a run, with its issuer, for the issuance ledger (one layer up). */
export interface IssuedCert {
  der: Buffer;
  issuerDer: Buffer;
  profile: string;
  path?: string;
}
/** The offline folder must exist outside the node tree, or it protects nothing. */
export function resolveOfflineDir(root: string, offlineDir: string | undefined): string {
  const r = resolve(root);
  if (!offlineDir) {
    if (r === sep)
      throw new InputError(
        "--offline-dir is required with --root /: super-admin.conf and offline keys never go onto the node",
      );
    return `${r}-offline`;
  }
  const o = resolve(offlineDir);
  const rel = relative(r, o);
  if (rel === "" || (!rel.startsWith("..") && !rel.startsWith(sep)))
    throw new InputError(`--offline-dir ${o} is inside the node tree ${r}; it must be kept off the node`);
  return o;
}

export async function initPki(opts: InitOptions): Promise<InitResult> {
  const offlineDir = resolveOfflineDir(opts.root, opts.spec.offlineDir);
  const paths = treePaths(opts.root, opts.spec.certificatesDir, offlineDir);
  return withTreeLock(paths.stateDir, () => initLocked(opts, paths, offlineDir));
}

async function initLocked(opts: InitOptions, paths: TreePaths, offlineDir: string): Promise<InitResult> {
  const { spec } = opts;
  const now = opts.now ?? new Date();
  recoverJournal(paths.journal);
  const warnings = [...spec.warnings];
  if (exists(join(paths.kubeconfigDir, "super-admin.conf")))
    warnings.push(
      `${join(paths.kubeconfigDir, "super-admin.conf")} is on the node: its system:masters credential can never be revoked; move it off the host`,
    );

  // Phase 1: look at what exists and decide; nothing is written or generated yet.
  const cas = new Map<CaId, CaState>();
  for (const entry of casFor(spec)) cas.set(entry.id, inspectCa(entry, paths, spec, !!opts.force));
  const jobs = planLeafJobs(spec, paths);
  for (const job of jobs) await inspectLeaf(job, cas, paths, now, !!opts.force);
  const sa = inspectSa(paths, !!opts.force);

  // Phase 2: keys for everything new, from a pool that may already be generating them (the CLI
  // starts a fresh tree's keys while code loads). Requested in order: CAs, leaves, sa.
  const casToMake = [...cas.values()].filter((c) => c.action !== "kept");
  const jobsToMake = jobs.filter((j) => j.action !== "kept");
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
        certificate: ca.cert.cert,
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
  writes.push({ path: configPath, data: kubeadmConfigYaml(spec), mode: MODE_CERT });
  reports.push({
    id: "kubeadm-config",
    kind: "config",
    action: "written",
    location: "node",
    path: configPath,
  });

  const replacing = reports.some((r) => r.action === "replaced") || writes.some((w) => w.data === undefined);
  const result = commitFiles(writes, {
    journalPath: paths.journal,
    backup: replacing ? { dir: join(paths.backupsDir, backupStamp(now)), base: paths.root } : undefined,
  });
  if (offlineDir && result.backedUp.some((b) => b.includes(`${sep}super-admin.conf`)))
    warnings.push(
      "a backup of super-admin.conf was kept under var/lib/kubepki/backups: remove it from the node",
    );
  return {
    root: paths.root,
    offlineDir,
    artifacts: reports,
    warnings,
    backedUp: result.backedUp,
    issued: issuedCerts,
  };
}
