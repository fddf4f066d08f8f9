import type { BaselineRecord } from "../ledger/store.js";
import type { KubeconfigFact } from "../pki/kubeconfig.js";
import { spkiSha256 } from "../x509/keys.js";
import type { CertInfo, ParsedPem } from "../x509/parse.js";
import { signedBy } from "../x509/verify.js";
import type { FileFact } from "./files.js";
import type { NodeSnapshot } from "./snapshot.js";

/**
 * Key-file integrity (issue 13): what a key or certificate file of the node is now, compared with
 * the baseline `kubepki watch` approved. Pure functions: `watch` turns the changes into events,
 * `audit` into findings, so both judge a change the same way.
 */
export const CHANGE_KINDS = [
  "key-replaced",
  "key-added",
  "mode-widened",
  "owner-changed",
  "certificate-unknown",
  "ca-certificate-changed",
] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** A file as it is now; `cert` stays in memory (the baseline keeps fingerprints only). */
export interface FileState extends Omit<BaselineRecord, "recordedAt" | "by"> {
  cert?: CertInfo;
}

/** The fingerprints and permissions an event shows before and after: never key material. */
export type FileFacts = Pick<BaselineRecord, "certSha256" | "keySpki" | "mode" | "uid" | "gid">;

export interface IntegrityChange {
  path: string;
  change: ChangeKind;
  before?: FileFacts;
  after: FileFacts;
}

export interface Judge {
  /** The ledger knows this certificate as current (active or expired; not superseded, not revoked). */
  known(sha256: string): boolean;
  /** CA certificates of the node: a kubelet client certificate they signed is the kubelet's own rotation. */
  cas: CertInfo[];
  /** The kubelet's certificate folders (node paths). */
  kubeletDirs: string[];
}

export interface Comparison {
  changes: IntegrityChange[];
  /** Changes made by kubepki or the kubelet's rotation, and narrowed modes: the baseline takes them. */
  approve: { state: FileState; by: string }[];
  /** Files gone from the node: dropped from the baseline. */
  removed: string[];
}

/** kubepki's own state (backups keep keys of replaced certificates on purpose): never in the baseline. */
const OWN_STATE = "/var/lib/kubepki/";

/** Every key and certificate file read from the node, with its mode and owner. */
export function fileStates(
  pem: Map<string, ParsedPem>,
  stat: (nodePath: string) => FileFact | undefined,
): FileState[] {
  const out: FileState[] = [];
  for (const [path, parsed] of pem) {
    if (path.startsWith(OWN_STATE)) continue;
    const cert = parsed.certs[0];
    const key = parsed.keys[0];
    const fact = stat(path);
    if ((!cert && !key) || !fact) continue;
    out.push({
      path,
      ...(cert ? { certSha256: cert.sha256, isCA: cert.isCA, cert } : {}),
      ...(key ? { keySpki: key.publicSpki } : {}),
      mode: fact.mode,
      uid: fact.uid,
      gid: fact.gid,
    });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Kubeconfigs with an embedded client credential: a replaced client certificate in admin.conf is
 * as much a planted identity as one in a .crt file. The first user with a certificate counts.
 */
export function kubeconfigStates(
  kubeconfigs: KubeconfigFact[],
  stat: (nodePath: string) => FileFact | undefined,
): FileState[] {
  const out: FileState[] = [];
  for (const k of kubeconfigs) {
    const user = k.users.find((u) => u.clientCert);
    const fact = stat(k.path);
    if (!user?.clientCert || !fact || k.path.startsWith(OWN_STATE)) continue;
    const cert = user.clientCert;
    out.push({
      path: k.path,
      certSha256: cert.sha256,
      isCA: false,
      cert,
      ...(user.clientKey ? { keySpki: user.clientKey.publicSpki } : {}),
      mode: fact.mode,
      uid: fact.uid,
      gid: fact.gid,
    });
  }
  return out;
}

/** Every key, certificate and credential-bearing kubeconfig of a snapshot, sorted by path. */
export function snapshotStates(snap: Pick<NodeSnapshot, "pem" | "kubeconfigs" | "files">): FileState[] {
  const stat = (p: string) => snap.files.stat(p);
  const files = fileStates(snap.pem, stat);
  const seen = new Set(files.map((f) => f.path));
  const kubeconfigs = kubeconfigStates(snap.kubeconfigs, stat).filter((k) => !seen.has(k.path));
  return [...files, ...kubeconfigs].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export const factsOf = (s: FileFacts): FileFacts => ({
  ...(s.certSha256 ? { certSha256: s.certSha256 } : {}),
  ...(s.keySpki ? { keySpki: s.keySpki } : {}),
  mode: s.mode,
  uid: s.uid,
  gid: s.gid,
});

/** A certificate the kubelet got through the CSR API: system:node:NAME, signed by a CA of the node, in its folder. */
function kubeletRotation(s: FileState, judge: Judge): boolean {
  const c = s.cert;
  if (!c || !judge.kubeletDirs.some((d) => s.path.startsWith(`${d}/`))) return false;
  if (!c.commonName.startsWith("system:node:") || !c.organizations.includes("system:nodes")) return false;
  return judge.cas.some((ca) => signedBy(c, ca));
}

/** Why a certificate may change without an event (undefined: it may not). */
function certApproval(s: FileState | undefined, judge: Judge): string | undefined {
  if (!s?.certSha256) return undefined;
  if (judge.known(s.certSha256)) return "kubepki";
  return s.cert && kubeletRotation(s, judge) ? "kubelet rotation" : undefined;
}

/** The certificate a key belongs with: in the same file, or the .crt beside a .key. */
function pairedCert(s: FileState, byPath: Map<string, FileState>): FileState | undefined {
  if (s.certSha256) return s;
  return s.path.endsWith(".key") ? byPath.get(`${s.path.slice(0, -4)}.crt`) : undefined;
}

/** A key is approved when the approved certificate it belongs with carries its public key. */
function keyApproval(s: FileState, byPath: Map<string, FileState>, judge: Judge): string | undefined {
  const pair = pairedCert(s, byPath);
  const by = certApproval(pair, judge);
  if (!by || !pair?.cert) return undefined;
  return spkiSha256(pair.cert.publicKey) === s.keySpki ? by : undefined;
}

/** A changed certificate or key: approved (by whom), or the kind of change it is. */
function contentChange(b: BaselineRecord, s: FileState, byPath: Map<string, FileState>, judge: Judge) {
  const out: { kinds: ChangeKind[]; by?: string } = { kinds: [] };
  if (s.certSha256 && s.certSha256 !== b.certSha256) {
    out.by = certApproval(s, judge);
    if (!out.by) out.kinds.push(b.isCA ? "ca-certificate-changed" : "certificate-unknown");
  }
  // A pair replaced in one file (a kubeconfig, a kubelet .pem) is one change: its certificate's.
  const pairedWithCert = out.kinds.length > 0 && s.cert && spkiSha256(s.cert.publicKey) === s.keySpki;
  if (s.keySpki && s.keySpki !== b.keySpki && !pairedWithCert) {
    out.by = keyApproval(s, byPath, judge);
    if (!out.by) out.kinds.push(b.keySpki ? "key-replaced" : "key-added");
  }
  return out;
}

/** The changes of one file that was in the baseline. */
function fileChanges(b: BaselineRecord, s: FileState, byPath: Map<string, FileState>, judge: Judge) {
  const { kinds, by } = contentChange(b, s, byPath, judge);
  if ((s.mode & ~b.mode) !== 0) kinds.push("mode-widened");
  if (s.uid !== b.uid || s.gid !== b.gid) kinds.push("owner-changed");
  return { kinds, by };
}

/** What changed since the baseline, what the baseline may take silently, and what is gone. */
export function compareBaseline(baseline: BaselineRecord[], current: FileState[], judge: Judge): Comparison {
  const out: Comparison = { changes: [], approve: [], removed: [] };
  const before = new Map(baseline.map((b) => [b.path, b]));
  const byPath = new Map(current.map((s) => [s.path, s]));
  for (const s of current) {
    const b = before.get(s.path);
    if (!b) {
      newFile(s, byPath, judge, out);
      continue;
    }
    const { kinds, by } = fileChanges(b, s, byPath, judge);
    for (const change of kinds)
      out.changes.push({ path: s.path, change, before: factsOf(b), after: factsOf(s) });
    if (kinds.length === 0 && !sameFacts(b, s)) out.approve.push({ state: s, by: by ?? "kubepki" });
  }
  for (const b of baseline) if (!byPath.has(b.path)) out.removed.push(b.path);
  return out;
}

function newFile(s: FileState, byPath: Map<string, FileState>, judge: Judge, out: Comparison): void {
  const by = s.keySpki ? keyApproval(s, byPath, judge) : certApproval(s, judge);
  if (by) out.approve.push({ state: s, by });
  else
    out.changes.push({
      path: s.path,
      // A new file with a certificate is about that certificate; a bare key is a key added.
      change: s.certSha256 ? "certificate-unknown" : "key-added",
      after: factsOf(s),
    });
}

function sameFacts(a: FileFacts, b: FileFacts): boolean {
  return (
    a.certSha256 === b.certSha256 &&
    a.keySpki === b.keySpki &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid
  );
}

/** A file state as the baseline stores it. */
export function toRecord(s: FileState, by: string, at: Date): BaselineRecord {
  const { cert: _cert, ...rest } = s;
  return { ...rest, recordedAt: at.toISOString(), by };
}

/** The kubelet's certificate folders: the layout's and its --cert-dir. */
export function kubeletDirs(snap: NodeSnapshot): string[] {
  const certDir = snap.kubelet.flags.get("cert-dir");
  return [...snap.layout.kubeletPkiDirs, ...(certDir ? [certDir] : [])];
}

/** What may change without an event, as the ledger (its current certificates) and the node say now. */
export function judgeOf(snap: NodeSnapshot, known: Set<string>): Judge {
  return {
    known: (sha) => known.has(sha),
    cas: snap.certs.filter((c) => c.isCA && c.origin === "file"),
    kubeletDirs: kubeletDirs(snap),
  };
}

/** The node against its baseline (audit): nothing without a baseline. */
export function snapshotChanges(snap: NodeSnapshot): IntegrityChange[] {
  if (snap.baseline.length === 0) return [];
  const states = snapshotStates(snap);
  return compareBaseline(snap.baseline, states, judgeOf(snap, snap.ledgerCurrent)).changes;
}
