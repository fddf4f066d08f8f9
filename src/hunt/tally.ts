import type { CertEvent } from "./event.js";

/** Bounds that keep memory flat whatever the log holds: per credential and in total. */
export const LIMITS = { credentials: 100_000, perList: 32 } as const;

/** When a revoked certificate was used, relative to its revocation. */
export interface RevocationUse {
  revokedAt: number;
  before: number;
  /** Within the cache delay after the revocation (kube-apiserver's unauthorizedTTL plus the webhook's reload). */
  duringDelay: number;
  after: number;
  /** Of the requests after the revocation (delay included): answered below 400, or refused with 403. */
  allowedAfter: number;
  deniedAfter: number;
  firstAfter?: number;
  lastAfter?: number;
}

/** Everything seen of one client certificate across the logs. */
export interface CredentialTally {
  sha256: string;
  user: string;
  groups: Set<string>;
  sourceIPs: Set<string>;
  verbs: Map<string, number>;
  /** Every event (each request can log several stages). */
  events: number;
  /** Requests: events at their final stage (ResponseComplete, Panic). */
  requests: number;
  firstSeen: number;
  lastSeen: number;
  /** Where it was first seen: file and line. */
  firstAt: { path: string; line: number };
  revocation?: RevocationUse;
}

const addBounded = (set: Set<string>, values: string[]) => {
  for (const v of values) if (set.size < LIMITS.perList) set.add(v);
};

/** Per-credential activity, bounded: beyond LIMITS.credentials new certificates are only counted. */
export class Tally {
  readonly credentials = new Map<string, CredentialTally>();
  untracked = 0;

  /** `revokedAt` maps the fingerprints of revoked certificates to their revocation time (ms). */
  constructor(
    private readonly revokedAt: Map<string, number>,
    private readonly delayMs: number,
  ) {}

  add(e: CertEvent, path: string, line: number): void {
    const t = this.credentials.get(e.sha256) ?? this.start(e, path, line);
    if (!t) return;
    t.events++;
    addBounded(t.groups, e.groups);
    addBounded(t.sourceIPs, e.sourceIPs);
    if (e.time < t.firstSeen || Number.isNaN(t.firstSeen)) {
      t.firstSeen = e.time;
      t.firstAt = { path, line };
    }
    if (e.time > t.lastSeen || Number.isNaN(t.lastSeen)) t.lastSeen = e.time;
    // RequestReceived and ResponseStarted precede the final stage of the same request.
    if (e.stage === "RequestReceived" || e.stage === "ResponseStarted") return;
    t.requests++;
    if (t.verbs.has(e.verb) || t.verbs.size < LIMITS.perList)
      t.verbs.set(e.verb, (t.verbs.get(e.verb) ?? 0) + 1);
    if (t.revocation) countRevoked(t.revocation, e, this.delayMs);
  }

  private start(e: CertEvent, path: string, line: number): CredentialTally | undefined {
    if (this.credentials.size >= LIMITS.credentials) {
      this.untracked++;
      return undefined;
    }
    const revokedAt = this.revokedAt.get(e.sha256);
    const t: CredentialTally = {
      sha256: e.sha256,
      user: e.user,
      groups: new Set(),
      sourceIPs: new Set(),
      verbs: new Map(),
      events: 0,
      requests: 0,
      firstSeen: e.time,
      lastSeen: e.time,
      firstAt: { path, line },
      ...(revokedAt === undefined
        ? {}
        : {
            revocation: { revokedAt, before: 0, duringDelay: 0, after: 0, allowedAfter: 0, deniedAfter: 0 },
          }),
    };
    this.credentials.set(e.sha256, t);
    return t;
  }
}

function countRevoked(r: RevocationUse, e: CertEvent, delayMs: number): void {
  if (e.time < r.revokedAt) {
    r.before++;
    return;
  }
  if (e.time - r.revokedAt <= delayMs) r.duringDelay++;
  else r.after++;
  if (e.code !== undefined && e.code < 400) r.allowedAfter++;
  if (e.code === 403) r.deniedAfter++;
  if (r.firstAfter === undefined || e.time < r.firstAfter) r.firstAfter = e.time;
  if (r.lastAfter === undefined || e.time > r.lastAfter) r.lastAfter = e.time;
}
