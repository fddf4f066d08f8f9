import { createPublicKey, type KeyObject } from "node:crypto";
import { join, relative, resolve, sep } from "node:path";
import { InputError, UnsafePathError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists } from "../fsx/read.js";
import { commitFiles, type PendingWrite, recoverJournal } from "../fsx/transaction.js";
import { issueCertificate } from "../x509/certificate.js";
import { KeyPool } from "../x509/keygen.js";
import {
  keysMatch,
  parsePrivateKeyPem,
  parsePublicKeyPem,
  privateKeyToPem,
  publicKeyToPem,
} from "../x509/keys.js";
import { type CertInfo, certInfoFromDer } from "../x509/parse.js";
import { backupStamp } from "./backup.js";
import {
  type CaEntry,
  type CaId,
  casFor,
  KUBECONFIGS,
  type KubeconfigEntry,
  kubeletServingEntry,
  leavesFor,
} from "./catalog.js";
import { kubeadmConfigYaml } from "./component-config.js";
import { leafProblems, loadPair } from "./existing.js";
import { buildKubeconfig, parseKubeconfig } from "./kubeconfig.js";
import { hostPort } from "./net.js";
import {
  caPaths,
  kubeconfigPath,
  kubeletServingPaths,
  leafPaths,
  offlineCaKeyPath,
  type PairPaths,
  readTreeText,
  saPaths,
  type TreePaths,
  treePaths,
} from "./paths.js";
import { caTemplate, type LeafProfile, leafTemplate } from "./profiles.js";
import type { ClusterSpec, SanSet } from "./spec.js";

export const MODE_CERT = 0o644;
export const MODE_KEY = 0o600;
export const MODE_OFFLINE_DIR = 0o700;

export type Action = "generated" | "kept" | "replaced" | "written";
export type ArtifactKind = "ca" | "certificate" | "kubeconfig" | "key-pair" | "config";

export interface ArtifactReport {
  id: string;
  kind: ArtifactKind;
  action: Action;
  location: "node" | "offline";
  path: string;
  keyPath?: string;
  sha256?: string;
  subject?: string;
  notAfter?: string;
  caId?: CaId;
  sans?: SanSet;
}

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

interface CaState {
  entry: CaEntry;
  paths: PairPaths;
  /** Where the key is read from or will be written to. */
  keyPath: string;
  keyLocation: "node" | "offline";
  cert?: CertInfo;
  key?: KeyObject;
  action: Action;
  /** Key absent everywhere: kubeadm's external-CA mode for this CA. */
  external: boolean;
  removeNodeKey?: boolean;
}

interface LeafJob {
  id: string;
  kind: "certificate" | "kubeconfig";
  ca: CaId;
  profile: LeafProfile;
  location: "node" | "offline";
  pair?: PairPaths;
  kubeconfig?: { path: string; server: string };
  action: Action;
  existing?: CertInfo;
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

function refuse(what: string, problems: string[]): never {
  throw new InputError(
    `${what} is inconsistent:\n  - ${problems.join("\n  - ")}\nNothing was written. Use --force to replace it (a timestamped backup is kept).`,
  );
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

function inspectCa(entry: CaEntry, paths: TreePaths, spec: ClusterSpec, force: boolean): CaState {
  const p = caPaths(paths, entry.id);
  const offlineKey = offlineCaKeyPath(paths, entry.id);
  const nodeKeyExists = exists(p.key);
  const offlineKeyExists = offlineKey !== undefined && exists(offlineKey);
  const keyPath =
    nodeKeyExists || !offlineKey || (!offlineKeyExists && !spec.externalCA) ? p.key : offlineKey;
  const state: CaState = {
    entry,
    paths: p,
    keyPath,
    keyLocation: keyPath === p.key ? "node" : "offline",
    action: "kept",
    external: false,
  };
  const pair = loadPair(p, (f) => readTreeText(paths, f), keyPath);
  const problems = [...pair.problems];
  if (pair.cert && !pair.cert.isCA) problems.push(`${p.cert} is not a CA certificate`);
  if (!pair.certExists && pair.keyExists)
    problems.push(`${keyPath} exists without its certificate ${p.cert}`);
  if (problems.length > 0) {
    if (!force) refuse(`the ${entry.longName} (${entry.id})`, problems);
    state.action = "replaced";
  } else if (!pair.certExists) {
    state.action = "generated";
  } else {
    state.cert = pair.cert;
    state.key = pair.key;
    state.external = !pair.keyExists;
  }
  if (state.action !== "kept" && spec.externalCA && offlineKey) {
    state.keyPath = offlineKey;
    state.keyLocation = "offline";
  }
  // --external-ca on a tree whose CA key sits on the node: move the key to the offline folder.
  if (
    state.action === "kept" &&
    spec.externalCA &&
    state.keyLocation === "node" &&
    offlineKey &&
    pair.keyExists
  ) {
    state.removeNodeKey = true;
    state.keyPath = offlineKey;
    state.keyLocation = "offline";
  }
  return state;
}

function serverUrl(spec: ClusterSpec, which: KubeconfigEntry["server"]): string {
  if (which === "endpoint" && spec.controlPlaneEndpoint)
    return `https://${hostPort(spec.controlPlaneEndpoint.host, spec.controlPlaneEndpoint.port)}`;
  return `https://${hostPort(spec.advertiseAddress, spec.bindPort)}`;
}

function planLeafJobs(spec: ClusterSpec, paths: TreePaths): LeafJob[] {
  const jobs: LeafJob[] = [];
  for (const leaf of leavesFor(spec)) {
    jobs.push({
      id: leaf.id,
      kind: "certificate",
      ca: leaf.ca,
      profile: {
        commonName: leaf.commonName(spec),
        organizations: leaf.organizations,
        extKeyUsage: leaf.extKeyUsage,
        sans: leaf.sans(spec),
      },
      location: "node",
      pair: leafPaths(paths, leaf),
      action: "kept",
    });
  }
  for (const [i, node] of spec.nodes.entries()) {
    const entry = kubeletServingEntry(node);
    const pair = kubeletServingPaths(paths, node.name, i === 0);
    if (!pair) continue;
    jobs.push({
      id: i === 0 ? "kubelet" : `kubelet/${node.name}`,
      kind: "certificate",
      ca: "ca",
      profile: {
        commonName: entry.commonName(spec),
        organizations: entry.organizations,
        extKeyUsage: entry.extKeyUsage,
        sans: entry.sans(spec),
      },
      location: i === 0 ? "node" : "offline",
      pair,
      action: "kept",
    });
  }
  for (const entry of KUBECONFIGS) {
    const path = kubeconfigPath(paths, entry);
    if (!path) continue;
    jobs.push({
      id: entry.id,
      kind: "kubeconfig",
      ca: "ca",
      profile: {
        commonName: entry.clientName(spec),
        organizations: entry.organizations,
        extKeyUsage: ["clientAuth"],
        sans: { dns: [], ips: [] },
      },
      location: entry.offline ? "offline" : "node",
      kubeconfig: { path, server: serverUrl(spec, entry.server) },
      action: "kept",
    });
  }
  return jobs;
}

async function inspectLeaf(
  job: LeafJob,
  cas: Map<CaId, CaState>,
  paths: TreePaths,
  now: Date,
  force: boolean,
): Promise<void> {
  const ca = cas.get(job.ca);
  if (!ca) throw new Error(`internal: no CA ${job.ca}`);
  const path = job.pair?.cert ?? job.kubeconfig?.path ?? job.id;
  let problems: string[];
  let present: boolean;
  if (job.pair) {
    const pair = loadPair(job.pair, (f) => readTreeText(paths, f));
    present = pair.certExists || pair.keyExists;
    problems = present && ca.cert ? await leafProblems(pair, ca.cert, job.profile.sans, now) : pair.problems;
    job.existing = pair.cert;
  } else {
    const kc = inspectKubeconfig(paths, job.kubeconfig?.path ?? "", ca);
    present = kc.present;
    problems = kc.problems;
    job.existing = kc.cert;
    if (present && kc.cert && ca.cert && problems.length === 0)
      problems = await leafProblems(
        { cert: kc.cert, chain: [], certExists: true, keyExists: true, problems: [] },
        ca.cert,
        job.profile.sans,
        now,
      );
  }
  if (ca.action !== "kept") {
    job.action = present ? "replaced" : "generated";
    return;
  }
  if (!present) {
    if (ca.external)
      throw new InputError(
        `${path} is missing and the ${ca.entry.longName} key is not available (${ca.paths.key}); ` +
          "in external-CA mode every certificate must already be in place, or pass --offline-dir where the key is kept",
      );
    job.action = "generated";
    return;
  }
  if (problems.length === 0) return;
  if (!force || ca.external) refuse(path, problems);
  job.action = "replaced";
}

function inspectKubeconfig(
  paths: TreePaths,
  path: string,
  ca: CaState,
): { present: boolean; problems: string[]; cert?: CertInfo } {
  const text = (() => {
    try {
      return readTreeText(paths, path);
    } catch (err) {
      if (err instanceof UnsafePathError) throw err;
      return err as Error;
    }
  })();
  if (text === undefined) return { present: false, problems: [] };
  if (text instanceof Error) return { present: true, problems: [text.message] };
  try {
    const view = parseKubeconfig(text, path);
    const problems: string[] = [];
    if (!view.clientCert || !view.clientKey)
      problems.push(`${path} does not embed client-certificate-data and client-key-data`);
    else if (!keysMatch(view.clientKey, view.clientCert.publicKey))
      problems.push(`${path}: the embedded client key does not match the embedded certificate`);
    if (
      ca.cert &&
      view.caPem?.trim() !== ca.cert.pem.trim() &&
      view.caPem?.trim() !== readTreeText(paths, ca.paths.cert)?.trim()
    )
      problems.push(`${path} embeds a different CA than ${ca.paths.cert}`);
    return { present: true, problems, cert: view.clientCert };
  } catch (err) {
    if (err instanceof UnsafePathError) throw err;
    return { present: true, problems: [(err as Error).message] };
  }
}

interface SaState {
  paths: { key: string; pub: string };
  action: Action;
  writePub: boolean;
  publicKey?: KeyObject;
}

/** kubeadm reuses an existing, readable sa.key; sa.pub is rewritten from it when absent or different. */
function inspectSa(paths: TreePaths, force: boolean): SaState {
  const p = saPaths(paths);
  const state: SaState = { paths: p, action: "kept", writePub: false };
  try {
    const keyText = readTreeText(paths, p.key);
    if (keyText === undefined) {
      state.action = "generated";
      return state;
    }
    const key = parsePrivateKeyPem(keyText, p.key);
    const pubText = readTreeText(paths, p.pub);
    const pub = pubText === undefined ? undefined : parsePublicKeyPem(pubText, p.pub);
    state.writePub = !pub || !keysMatch(key, pub);
    state.publicKey = createPublicKey(key);
    return state;
  } catch (err) {
    if (err instanceof UnsafePathError || !force)
      refuse("the service-account key pair", [(err as Error).message]);
    state.action = "replaced";
    return state;
  }
}

function caReport(ca: CaState): ArtifactReport {
  return {
    id: ca.entry.id,
    kind: "ca",
    action: ca.action,
    location: "node",
    path: ca.paths.cert,
    keyPath: ca.external ? undefined : ca.keyPath,
    sha256: ca.cert?.sha256,
    subject: ca.cert ? `CN=${ca.cert.commonName}` : undefined,
    notAfter: ca.cert?.notAfter.toISOString(),
  };
}

function leafReport(job: LeafJob): ArtifactReport {
  const c = job.existing;
  return {
    id: job.id,
    kind: job.kind,
    action: job.action,
    location: job.location,
    path: job.pair?.cert ?? job.kubeconfig?.path ?? "",
    keyPath: job.pair?.key,
    sha256: c?.sha256,
    subject: c ? [...c.organizations.map((o) => `O=${o}`), `CN=${c.commonName}`].join(", ") : undefined,
    notAfter: c?.notAfter.toISOString(),
    caId: job.ca,
    sans:
      c && (c.dnsNames.length > 0 || c.ipAddresses.length > 0)
        ? { dns: c.dnsNames, ips: c.ipAddresses }
        : undefined,
  };
}
