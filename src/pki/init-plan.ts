import { createPublicKey, type KeyObject } from "node:crypto";
import { dirname, isAbsolute, join } from "node:path";
import { InputError, UnsafePathError } from "../errors.js";
import { exists } from "../fsx/read.js";
import { keysMatch, parsePrivateKeyPem, parsePublicKeyPem } from "../x509/keys.js";
import type { CertInfo } from "../x509/parse.js";
import {
  type CaEntry,
  type CaId,
  type Component,
  isKubeletSelfSigned,
  KUBECONFIGS,
  type KubeconfigEntry,
  kubeletServingEntry,
  type LeafEntry,
  leavesFor,
  TRUST_BUNDLES,
} from "./catalog.js";
import { leafProblems, loadPair } from "./existing.js";
import { parseKubeconfig } from "./kubeconfig.js";
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
} from "./paths.js";
import type { LeafProfile } from "./profiles.js";
import type { ClusterSpec, SanSet } from "./spec.js";

/* What init finds on disk and decides for each CA, leaf, kubeconfig and the SA pair (no writes). */

/** moved: taken from the node into the offline folder unchanged; skipped: deliberately not made. */
export type Action = "generated" | "kept" | "replaced" | "written" | "moved" | "skipped";
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
  /** Why this artifact was handled the way it was, when that is not obvious. */
  note?: string;
}

/** Something on disk that init cannot keep; --force replaces it unless `unfixable` says why not. */
export interface Inconsistency {
  what: string;
  problems: string[];
  unfixable?: string;
}

export interface CaState {
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

export interface LeafJob {
  id: string;
  kind: "certificate" | "kubeconfig";
  ca: CaId;
  profile: LeafProfile;
  location: "node" | "offline";
  pair?: PairPaths;
  kubeconfig?: { path: string; server: string };
  action: Action;
  existing?: CertInfo;
  consumers: Component[];
  note?: string;
  /** For "moved": the node file whose content goes to the offline folder. */
  moveFrom?: string;
}

/**
 * Refuses the run when anything found cannot be kept: every inconsistency at once, with what
 * --force would replace (or why it cannot).
 */
export function refuseInconsistent(issues: Inconsistency[], force: boolean): void {
  const unfixable = issues.filter((i) => i.unfixable);
  if (issues.length === 0 || (force && unfixable.length === 0)) return;
  const lines = issues.flatMap((i) => [`${i.what}:`, ...i.problems.map((p) => `    - ${p}`)]);
  const fixable = issues.filter((i) => !i.unfixable).map((i) => i.what);
  const tail = [
    fixable.length > 0 && !force
      ? `With --force kubepki replaces ${fixable.join("; ")} (keeping a timestamped backup).`
      : "",
    ...unfixable.map((i) => `--force cannot replace ${i.what}: ${i.unfixable}.`),
  ].filter(Boolean);
  throw new InputError(
    `the existing PKI is inconsistent (${issues.length} item${issues.length === 1 ? "" : "s"}); nothing was written:\n  ${lines.join("\n  ")}\n${tail.join("\n")}`,
  );
}

export function inspectCa(
  entry: CaEntry,
  paths: TreePaths,
  spec: ClusterSpec,
  issues: Inconsistency[],
): CaState {
  const p = caPaths(paths, entry.id);
  const offlineKey = offlineCaKeyPath(paths, entry.id);
  const offlineKeyExists = offlineKey !== undefined && exists(offlineKey);
  const keyPath =
    exists(p.key) || !offlineKey || (!offlineKeyExists && !spec.externalCA) ? p.key : offlineKey;
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
    issues.push({ what: `the ${entry.longName} (${entry.id}) and every certificate it signed`, problems });
    state.action = "replaced";
  } else if (!pair.certExists) {
    state.action = "generated";
  } else {
    state.cert = pair.cert;
    state.key = pair.key;
    state.external = !pair.keyExists;
  }
  return spec.externalCA && offlineKey ? externalCaKey(state, offlineKey, pair.keyExists) : state;
}

/**
 * --external-ca: a new CA's key goes to the offline folder, and on a tree whose CA key sits on the
 * node the key moves there.
 */
function externalCaKey(state: CaState, offlineKey: string, keyExists: boolean): CaState {
  const offline = { ...state, keyPath: offlineKey, keyLocation: "offline" as const };
  if (state.action !== "kept") return offline;
  if (state.keyLocation === "node" && keyExists) return { ...offline, removeNodeKey: true };
  return state;
}

function serverUrl(spec: ClusterSpec, which: KubeconfigEntry["server"]): string {
  if (which === "endpoint" && spec.controlPlaneEndpoint)
    return `https://${hostPort(spec.controlPlaneEndpoint.host, spec.controlPlaneEndpoint.port)}`;
  return `https://${hostPort(spec.advertiseAddress, spec.bindPort)}`;
}

export function planLeafJobs(spec: ClusterSpec, paths: TreePaths): LeafJob[] {
  return [...certificateJobs(spec, paths), ...kubeletJobs(spec, paths), ...kubeconfigJobs(spec, paths)];
}

const profileOf = (
  spec: ClusterSpec,
  e: Pick<LeafEntry, "commonName" | "organizations" | "extKeyUsage" | "sans">,
): LeafProfile => ({
  commonName: e.commonName(spec),
  organizations: e.organizations,
  extKeyUsage: e.extKeyUsage,
  sans: e.sans(spec),
});

function certificateJobs(spec: ClusterSpec, paths: TreePaths): LeafJob[] {
  return leavesFor(spec).map((leaf) => ({
    id: leaf.id,
    kind: "certificate",
    ca: leaf.ca,
    profile: profileOf(spec, leaf),
    location: "node",
    pair: leafPaths(paths, leaf),
    action: "kept",
    consumers: leaf.consumers,
  }));
}

/** Each node's kubelet serving pair: this node's on the node, the others' in the offline folder. */
function kubeletJobs(spec: ClusterSpec, paths: TreePaths): LeafJob[] {
  return spec.nodes.flatMap((node, i): LeafJob[] => {
    // With serverTLSBootstrap the kubelet gets its serving pair through a CSR: none to sign here.
    if (i === 0 && spec.kubeletServerTLSBootstrap) return [];
    const entry = kubeletServingEntry(node);
    const pair = kubeletServingPaths(paths, node.name, i === 0);
    if (!pair) return [];
    return [
      {
        id: i === 0 ? "kubelet" : `kubelet/${node.name}`,
        kind: "certificate",
        ca: "ca",
        profile: profileOf(spec, entry),
        location: i === 0 ? "node" : "offline",
        pair,
        action: "kept",
        consumers: i === 0 ? entry.consumers : [],
      },
    ];
  });
}

function kubeconfigJobs(spec: ClusterSpec, paths: TreePaths): LeafJob[] {
  return KUBECONFIGS.flatMap((entry): LeafJob[] => {
    const path = kubeconfigPath(paths, entry);
    if (!path) return [];
    return [
      {
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
        consumers: entry.consumers,
      },
    ];
  });
}

export interface LeafInspectOptions {
  now: Date;
  issues: Inconsistency[];
  /** Keep the kubelet's own self-signed serving certificate instead of replacing it. */
  keepSelfSignedKubelet?: boolean;
}

/** What to do with one leaf, given what is on disk and what happens to its CA: a new job, the old one untouched. */
export async function inspectLeaf(
  job: LeafJob,
  cas: Map<CaId, CaState>,
  paths: TreePaths,
  opts: LeafInspectOptions,
): Promise<LeafJob> {
  const ca = cas.get(job.ca);
  if (!ca) throw new Error(`internal: no CA ${job.ca}`);
  const found = job.pair
    ? await inspectPair(job, job.pair, ca, paths, opts.now)
    : await inspectKubeconfig(paths, job, ca, opts.now);
  return { ...job, existing: found.cert, ...leafDecision(job, ca, found, opts) };
}

function leafDecision(
  job: LeafJob,
  ca: CaState,
  found: Found,
  opts: LeafInspectOptions,
): Pick<LeafJob, "action" | "note"> {
  const path = job.pair?.cert ?? job.kubeconfig?.path ?? job.id;
  if (ca.action !== "kept") return { action: found.present ? "replaced" : "generated" };
  if (!found.present) {
    if (!ca.external) return { action: "generated" };
    opts.issues.push({
      what: path,
      problems: ["missing"],
      unfixable: `the ${ca.entry.longName} key is not available (${ca.paths.key}); in external-CA mode every certificate must already be in place, or pass --offline-dir where the key is kept`,
    });
    return { action: job.action };
  }
  if (job.id === "kubelet" && found.kubeletSelfSigned)
    return opts.keepSelfSignedKubelet
      ? {
          action: "kept",
          note: "the kubelet's self-signed serving certificate is kept (--keep-kubelet-serving): kube-apiserver cannot verify this kubelet",
        }
      : {
          action: "replaced",
          note: "replaces the kubelet's self-signed serving certificate with one from the cluster CA",
        };
  if (found.problems.length === 0) return { action: job.action };
  opts.issues.push(
    ca.external
      ? { what: path, problems: found.problems, unfixable: `the ${ca.entry.longName} key is not available` }
      : { what: path, problems: found.problems },
  );
  return { action: "replaced" };
}

export interface Found {
  present: boolean;
  problems: string[];
  cert?: CertInfo;
  kubeletSelfSigned?: boolean;
}

async function inspectPair(
  job: LeafJob,
  pairPaths: PairPaths,
  ca: CaState,
  paths: TreePaths,
  now: Date,
): Promise<Found> {
  const pair = loadPair(pairPaths, (f) => readTreeText(paths, f));
  const present = pair.certExists || pair.keyExists;
  const cert = pair.cert;
  const issuerCN = pair.chain[0]?.commonName ?? cert?.issuerCommonName ?? "";
  const kubeletSelfSigned = !!cert && isKubeletSelfSigned(cert.commonName, issuerCN);
  const problems =
    present && ca.cert ? await leafProblems(pair, ca.cert, job.profile.sans, now) : pair.problems;
  return { present, problems, cert, kubeletSelfSigned };
}

/**
 * kubeadm's kubeconfig check: readable, the current CA, a matching client pair (embedded, or in
 * files as kubelet.conf's kubelet-client-current.pem), and the API server URL init would write.
 */
export async function inspectKubeconfig(
  paths: TreePaths,
  job: LeafJob,
  ca: CaState,
  now: Date,
  path = job.kubeconfig?.path ?? "",
): Promise<Found> {
  let view: ReturnType<typeof parseKubeconfig>;
  try {
    const text = readTreeText(paths, path);
    if (text === undefined) return { present: false, problems: [] };
    view = parseKubeconfig(text, path);
  } catch (err) {
    if (err instanceof UnsafePathError) throw err;
    return { present: true, problems: [(err as Error).message] };
  }
  const pair = kubeconfigPair(paths, path, view);
  const problems = [...pair.problems];
  const caPem = ca.cert?.pem.trim();
  // During a CA rotation (rotate-ca) kubeconfigs trust the bundle, old and new CA.
  const bundle = () => readTreeText(paths, join(paths.pkiDir, TRUST_BUNDLES.ca))?.trim();
  if (
    caPem &&
    view.caPem?.trim() !== caPem &&
    view.caPem?.trim() !== readTreeText(paths, ca.paths.cert)?.trim() &&
    view.caPem?.trim() !== bundle()
  )
    problems.push(`${path} embeds a different CA than ${ca.paths.cert}`);
  const expected = job.kubeconfig?.server;
  if (expected && !sameServer(view.server, expected))
    problems.push(`${path} points at ${view.server ?? "no server"}, not ${expected}`);
  if (problems.length === 0 && pair.cert && ca.cert)
    problems.push(...(await leafProblems(pair, ca.cert, job.profile.sans, now)));
  return { present: true, problems, cert: pair.cert };
}

/** The client pair of a kubeconfig: embedded data, or files it names (relative to the kubeconfig). */
function kubeconfigPair(paths: TreePaths, path: string, view: ReturnType<typeof parseKubeconfig>) {
  if (view.clientCert && view.clientKey) {
    const pair = { cert: view.clientCert, key: view.clientKey, chain: [], certExists: true, keyExists: true };
    const problems = keysMatch(view.clientKey, view.clientCert.publicKey)
      ? []
      : [`${path}: the embedded client key does not match the embedded certificate`];
    return { ...pair, problems };
  }
  if (view.clientCertificatePath && view.clientKeyPath) {
    const onNode = (f: string) => (isAbsolute(f) ? join(paths.root, f) : join(dirname(path), f));
    return loadPair({ cert: onNode(view.clientCertificatePath), key: onNode(view.clientKeyPath) }, (f) =>
      readTreeText(paths, f),
    );
  }
  return {
    chain: [],
    certExists: false,
    keyExists: false,
    problems: [`${path} has no client certificate and key (embedded or as files)`],
  };
}

/** Two API server URLs name the same endpoint (scheme, host and port; a trailing slash is no difference). */
function sameServer(actual: string | undefined, expected: string): boolean {
  if (!actual) return false;
  try {
    const a = new URL(actual);
    const e = new URL(expected);
    return a.protocol === e.protocol && a.host === e.host && a.pathname.replace(/\/$/, "") === "";
  } catch {
    return false;
  }
}

export interface SaState {
  paths: { key: string; pub: string };
  action: Action;
  writePub: boolean;
  publicKey?: KeyObject;
}

/** kubeadm reuses an existing, readable sa.key; sa.pub is rewritten from it when absent or different. */
export function inspectSa(paths: TreePaths, issues: Inconsistency[]): SaState {
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
    if (err instanceof UnsafePathError) throw err;
    issues.push({
      what: "the service-account key pair (sa.key, sa.pub)",
      problems: [(err as Error).message],
    });
    state.action = "replaced";
    return state;
  }
}

export function caReport(ca: CaState): ArtifactReport {
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

export function leafReport(job: LeafJob): ArtifactReport {
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
    note: job.note,
    sans:
      c && (c.dnsNames.length > 0 || c.ipAddresses.length > 0)
        ? { dns: c.dnsNames, ips: c.ipAddresses }
        : undefined,
  };
}
