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
  revoke(match: RevokeMatch, reason: CrlReason, at: Date): Promise<LedgerEntry[]>;
  /** Revoked entries signed by the CA with this fingerprint (every CA if omitted). */
  revoked(issuerSha256?: string): Promise<LedgerEntry[]>;
  /** The set of revoked fingerprints, for the webhook. */
  revokedFingerprints(): Promise<Set<string>>;
  /** Next CRL number for a CA (monotonic, persisted). */
  nextCrlNumber(issuerSha256: string): Promise<bigint>;
  version(): Promise<number>;
  close(): Promise<void>;
}
