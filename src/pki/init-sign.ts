import type { KeyObject } from "node:crypto";
import { type IssuedCertificate, issueCertificate } from "../x509/certificate.js";
import { type KeyPair, KeyPool } from "../x509/keygen.js";
import type { CertInfo } from "../x509/parse.js";
import type { CaId } from "./catalog.js";
import type { CaState, LeafJob, SaState } from "./init-plan.js";
import { caTemplate, leafTemplate } from "./profiles.js";
import type { ClusterSpec } from "./spec.js";

/* init's phase 2: keys and certificates for everything the plan makes; nothing is written. */

/** A certificate signed by a run, with its issuer, for the issuance ledger (one layer up). */
export interface IssuedCert {
  der: Buffer;
  /** `der` parsed, when at hand: the ledger records it without parsing it again. */
  cert?: CertInfo;
  issuerDer: Buffer;
  profile: string;
  path?: string;
}

/** A CA as it stands after signing: `pem` set when this run made it. */
export interface SignedCa {
  state: CaState;
  pem?: string;
}

export interface SignedLeaf {
  /** The job with `existing` the new certificate. */
  job: LeafJob;
  issued: IssuedCertificate;
  key: KeyObject;
  ca: CaState;
}

export interface Signed {
  cas: SignedCa[];
  leaves: SignedLeaf[];
  saKey?: KeyPair;
  issued: IssuedCert[];
}

export interface SignOptions {
  spec: ClusterSpec;
  /** Keys already being generated for this run (see plannedKeyCount). */
  keyPool?: KeyPool;
  onKey?: (done: number, total: number) => void;
}

const makes = (j: LeafJob) => j.action === "generated" || j.action === "replaced";

/**
 * Keys for everything new, from a pool that may already be generating them (the CLI starts a fresh
 * tree's keys while code loads), then each certificate signed as soon as its key and its CA are ready.
 */
export async function signInit(
  plan: { cas: Map<CaId, CaState>; jobs: LeafJob[]; sa: SaState },
  opts: SignOptions,
  now: Date,
): Promise<Signed> {
  const { spec } = opts;
  const casToMake = [...plan.cas.values()].filter((c) => c.action !== "kept");
  const jobsToMake = plan.jobs.filter(makes);
  const pool = opts.keyPool?.algorithm === spec.algorithm ? opts.keyPool : new KeyPool(spec.algorithm);
  pool.expect(casToMake.length + jobsToMake.length + (plan.sa.action === "kept" ? 0 : 1));
  if (opts.onKey) pool.onKey = opts.onKey;
  // Requested in order: CAs, leaves, sa.
  const caKeys = new Map(casToMake.map((c) => [c.entry.id, pool.take()]));
  const jobKeys = jobsToMake.map(() => pool.take());
  const saKey = plan.sa.action === "kept" ? undefined : pool.take();

  const caReady = new Map<CaId, Promise<SignedCa>>();
  for (const ca of plan.cas.values()) {
    const key = caKeys.get(ca.entry.id);
    caReady.set(
      ca.entry.id,
      key ? key.then((kp) => selfSign(ca, kp, spec, now)) : Promise.resolve({ state: ca }),
    );
  }
  const leaves = await Promise.all(
    jobsToMake.map((job, i) => signLeaf(job, caReady.get(job.ca), jobKeys[i], spec, now)),
  );
  const cas = await Promise.all(caReady.values());
  return { cas, leaves, saKey: await saKey, issued: [...cas.flatMap(caIssued), ...leaves.map(leafIssued)] };
}

async function selfSign(ca: CaState, kp: KeyPair, spec: ClusterSpec, now: Date): Promise<SignedCa> {
  const tpl = caTemplate(ca.entry, now, spec.caValidityMs);
  const issued = await issueCertificate(tpl, kp.publicKey, { selfSigned: kp.privateKey });
  return {
    state: { ...ca, cert: placed(issued.cert, ca.paths.cert), key: kp.privateKey },
    pem: issued.pem,
  };
}

async function signLeaf(
  job: LeafJob,
  caReady: Promise<SignedCa> | undefined,
  key: Promise<KeyPair> | undefined,
  spec: ClusterSpec,
  now: Date,
): Promise<SignedLeaf> {
  const [ca, kp] = await Promise.all([caReady, key]);
  const cert = ca?.state.cert;
  if (!ca || !cert || !ca.state.key || !kp) throw new Error(`internal: CA ${job.ca} not ready`);
  const tpl = leafTemplate(job.profile, now, spec.certValidityMs, cert.notAfter);
  const issued = await issueCertificate(tpl, kp.publicKey, {
    certificate: cert,
    privateKey: ca.state.key,
  });
  const existing = placed(issued.cert, job.pair?.cert ?? job.kubeconfig?.path ?? job.id);
  return { job: { ...job, existing }, issued, key: kp.privateKey, ca: ca.state };
}

/** What was just signed, parsed once already, as the file it goes into. */
const placed = (cert: CertInfo, path: string): CertInfo => ({ ...cert, path });

function caIssued(ca: SignedCa): IssuedCert[] {
  const cert = ca.state.cert;
  if (!ca.pem || !cert) return [];
  return [{ der: cert.der, cert, issuerDer: cert.der, profile: "ca", path: ca.state.paths.cert }];
}

function leafIssued({ job, issued, ca }: SignedLeaf): IssuedCert {
  return {
    der: issued.der,
    cert: job.existing ?? issued.cert,
    issuerDer: ca.cert?.der ?? issued.der,
    profile: job.kind === "kubeconfig" ? `kubeconfig:${job.id}` : job.id,
    path: job.pair?.cert ?? job.kubeconfig?.path,
  };
}
