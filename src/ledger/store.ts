import type { CrlReason } from "../x509/crl.js";

export const STATUSES = ["active", "superseded", "revoked", "expired"] as const;
export type Status = (typeof STATUSES)[number];

/** One certificate kubepki issued or inventoried. */
export interface LedgerEntry {
  /** Lowercase hex SHA-256 of the DER: the Kubernetes credential id without its prefix. */
  sha256: string;
  serial: string;
  issuerSha256: string;
  subjectCN: string;
  subjectO: string[];
  sans: string[];
  notBefore: string;
  notAfter: string;
  /** What it is: "ca", "apiserver", "kubeconfig:admin.conf", "client", "imported", ... */
  profile: string;
  /** Where it was written (node path), if anywhere. */
  path?: string;
  /** "issued" by kubepki, or "imported" from a node. */
  source: "issued" | "imported";
  status: Status;
  recordedAt: string;
  revokedAt?: string;
  reason?: CrlReason;
  /** system:masters: recorded, never revocable at the API server. */
  breakGlass?: boolean;
}

/** A revocation known only by serial (restored from a CRL; the certificate itself is not at hand). */
export interface SerialOnly {
  serial: string;
  revokedAt: string;
  reason: CrlReason;
}

/**
 * What `kubepki watch` last approved of one key or certificate file (the integrity baseline):
 * fingerprints, mode and owner, never key material.
 */
export interface BaselineRecord {
  /** The node's absolute path ("/etc/kubernetes/pki/ca.key"). */
  path: string;
  /** SHA-256 (hex) of the first certificate's DER, when the file holds one. */
  certSha256?: string;
  /** The first certificate is a CA. */
  isCA?: boolean;
  /** SHA-256 (hex) of the public key (SPKI) of the private key, when the file holds one. */
  keySpki?: string;
  /** Permission bits (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** When it was approved, and by what ("baseline", "kubepki", "accept", "kubelet rotation"). */
  recordedAt: string;
  by: string;
}

export interface ListFilter {
  status?: Status;
  /** Only certificates that expire before this instant. */
  expiresBefore?: Date;
  user?: string;
}

export interface RevokeMatch {
  serial?: string;
  sha256?: string;
  user?: string;
}

/**
 * Where the ledger lives. SQLite on the node by default; an etcd backend implements the same
 * interface, which is why every call is asynchronous. `version()` changes whenever another process
 * commits, so `kubepki serve` can reload the revoked set without a restart (etcd: a revision).
 */
export interface LedgerStore {
  record(entries: LedgerEntry[]): Promise<void>;
  /** Marks entries superseded (renewal replaced them). */
  supersede(sha256s: string[]): Promise<void>;
  list(filter?: ListFilter, now?: Date): Promise<LedgerEntry[]>;
  get(sha256: string): Promise<LedgerEntry | undefined>;
  /** Entries not yet revoked that match, each marked whether it is a CA. */
  find(match: RevokeMatch): Promise<(LedgerEntry & { isCA: boolean })[]>;
  /** Marks these entries revoked; CA certificates are never revoked (that is rotation's job). */
  revoke(sha256s: string[], reason: CrlReason, at: Date): Promise<LedgerEntry[]>;
  /** Restores revocations found only in a published CRL; returns how many entries changed. */
  markRevoked(items: { sha256: string; revokedAt: string; reason: CrlReason }[]): Promise<number>;
  /** Revoked entries signed by the CA with this fingerprint (every CA if omitted). */
  revoked(issuerSha256?: string): Promise<LedgerEntry[]>;
  /** Revocations of this CA known only by serial (ledger repair); they stay in its CRL. */
  serialOnly(issuerSha256: string): Promise<SerialOnly[]>;
  recordSerialOnly(issuerSha256: string, items: SerialOnly[]): Promise<void>;
  /** The set of revoked fingerprints, for the webhook. */
  revokedFingerprints(): Promise<Set<string>>;
  /**
   * Every fingerprint recorded, any status (serve --unknown-certificates). Optional: a store
   * without it is read through list(), which is slower on a large ledger.
   */
  knownFingerprints?(): Promise<Set<string>>;
  /** Next CRL number for a CA (monotonic, persisted), above `above` (the number of the CRL on disk). */
  nextCrlNumber(issuerSha256: string, above?: bigint): Promise<bigint>;
  lastCrlNumber(issuerSha256: string): Promise<bigint>;
  /**
   * Runs `fn` holding the ledger's write lock, so what it reads and writes (a revocation and the
   * CRL it publishes) is one serialized step across processes.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * The integrity baseline `kubepki watch` keeps (issue 13): every record, sorted by path. A store
   * keeps them as opaque records keyed by `path`; nothing else reads them.
   */
  baseline(): Promise<BaselineRecord[]>;
  /** Inserts or replaces these records (by path) and deletes the paths in `removed`, in one write. */
  putBaseline(records: BaselineRecord[], removed?: string[]): Promise<void>;
  /** The ledger's identity, fixed at creation: a replaced ledger has another. */
  id(): Promise<string>;
  version(): Promise<number>;
  close(): Promise<void>;
  /**
   * Shared stores (etcd) only. Writes commit one by one, also inside exclusive() (which is a lock
   * there, not a transaction): a failure after a write leaves that write in place.
   */
  readonly autocommit?: boolean;
  /** Shared stores: keeps the CRL signed with `number` as the CA's latest, for every node to publish. */
  storeCrl?(issuerSha256: string, number: bigint, der: Buffer): Promise<void>;
  /** Shared stores: the latest CRL of each CA (DER), as storeCrl() left them. */
  latestCrls?(): Promise<{ issuerSha256: string; der: Buffer }[]>;
  /** Shared stores: every change from `fromRevision` on, in order (what `kubepki serve` replicas follow). */
  watch?(fromRevision: string, on: WatchHandlers): Promise<{ cancel: () => Promise<void> }>;
}

/** What a watch reports (keys relative to the store's prefix). */
export interface WatchHandlers {
  /** A put (value) or a delete (undefined). */
  change(key: string, value: Buffer | undefined, revision: string): void;
  connected(): void;
  /** The stream broke; it resumes by itself from the revision after the last one seen. */
  disconnected(err: Error): void;
  /** The watch ended for good (its revision was compacted): load everything again, watch anew. */
  lost(err: Error): void;
}
