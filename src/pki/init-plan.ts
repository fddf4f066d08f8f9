import { createPublicKey, type KeyObject } from "node:crypto";
import { InputError, UnsafePathError } from "../errors.js";
import { exists } from "../fsx/read.js";
import { keysMatch, parsePrivateKeyPem, parsePublicKeyPem } from "../x509/keys.js";
import type { CertInfo } from "../x509/parse.js";
import {
  type CaEntry,
  type CaId,
  KUBECONFIGS,
  type KubeconfigEntry,
  kubeletServingEntry,
  leavesFor,
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
}

function refuse(what: string, problems: string[]): never {
  throw new InputError(
    `${what} is inconsistent:\n  - ${problems.join("\n  - ")}\nNothing was written. Use --force to replace it (a timestamped backup is kept).`,
  );
}

export function inspectCa(entry: CaEntry, paths: TreePaths, spec: ClusterSpec, force: boolean): CaState {
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

export function planLeafJobs(spec: ClusterSpec, paths: TreePaths): LeafJob[] {
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

export async function inspectLeaf(
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

export interface SaState {
  paths: { key: string; pub: string };
  action: Action;
  writePub: boolean;
  publicKey?: KeyObject;
}

/** kubeadm reuses an existing, readable sa.key; sa.pub is rewritten from it when absent or different. */
export function inspectSa(paths: TreePaths, force: boolean): SaState {
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
    sans:
      c && (c.dnsNames.length > 0 || c.ipAddresses.length > 0)
        ? { dns: c.dnsNames, ips: c.ipAddresses }
        : undefined,
  };
}
