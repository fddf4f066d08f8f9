import { CREDENTIAL_ID_KEY } from "../x509/fingerprint.js";

export { CREDENTIAL_ID_KEY };
export const API_VERSIONS = new Set(["authorization.k8s.io/v1", "authorization.k8s.io/v1beta1"]);

/** The fields of a SubjectAccessReview the webhook reads, checked before any is used. */
export interface Sar {
  apiVersion: string;
  user?: string;
  credentialIds: string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Validates the shape of a parsed body: a SubjectAccessReview (v1 or v1beta1) whose spec, user and
 * extra, when present, have the types kube-apiserver sends. Anything else is a string saying why;
 * nothing here can throw, whatever JSON value it is given.
 */
export function parseSar(body: unknown): Sar | string {
  if (!isRecord(body)) return "the body is not a JSON object";
  const { apiVersion, kind, spec } = body;
  if (typeof apiVersion !== "string" || !API_VERSIONS.has(apiVersion) || kind !== "SubjectAccessReview")
    return "expected a SubjectAccessReview, authorization.k8s.io/v1 or v1beta1";
  if (spec === undefined || spec === null) return { apiVersion, credentialIds: [] };
  if (!isRecord(spec)) return "spec is not an object";
  const parsed = parseSpec(spec);
  return typeof parsed === "string" ? parsed : { apiVersion, ...parsed };
}

const absent = (v: unknown): v is undefined | null => v === undefined || v === null;

function parseSpec(spec: Record<string, unknown>): Omit<Sar, "apiVersion"> | string {
  const { user, extra } = spec;
  if (!absent(user) && typeof user !== "string") return "spec.user is not a string";
  if (!absent(extra) && !isRecord(extra)) return "spec.extra is not an object";
  const ids = extra && Object.hasOwn(extra, CREDENTIAL_ID_KEY) ? extra[CREDENTIAL_ID_KEY] : undefined;
  if (!absent(ids) && !(Array.isArray(ids) && ids.every((i) => typeof i === "string")))
    return `spec.extra["${CREDENTIAL_ID_KEY}"] is not a list of strings`;
  return { user: typeof user === "string" ? user : undefined, credentialIds: ids ?? [] };
}

export interface RevokedView {
  fingerprints: Set<string>;
  users: Set<string>;
  /** Every fingerprint the ledger records (any status), for --unknown-certificates. */
  known?: Set<string>;
}

/** What the webhook does with a credential id the ledger does not know: count and log it, or deny it. */
export type UnknownPolicy = "log" | "deny";

export interface Decision {
  status: Record<string, unknown>;
  decision: string;
  /** The fingerprint of a certificate the ledger does not know (with a policy set). */
  unknown?: string;
}

const NO_OPINION: Record<string, unknown> = Object.freeze({ allowed: false });

/**
 * `denied: true` for a revoked credential id (or, opted in, a revoked user name); with `unknown`,
 * a certificate the ledger does not know is reported (log) or denied (deny); else no opinion.
 * Two Set lookups per credential id: the revoked set, then the known one.
 */
export function decide(
  sar: Sar,
  revoked: RevokedView,
  denyRevokedUsers: boolean,
  unknown?: UnknownPolicy,
): Decision {
  for (const id of sar.credentialIds) {
    if (!id.startsWith("X509SHA256=")) continue;
    const fp = id.slice(11).toLowerCase();
    if (revoked.fingerprints.has(fp))
      return {
        decision: "deny",
        status: { allowed: false, denied: true, reason: `client certificate ${id} is revoked (kubepki)` },
      };
    if (unknown && revoked.known && !revoked.known.has(fp)) return unknownDecision(id, fp, unknown);
  }
  if (
    sar.credentialIds.length === 0 &&
    denyRevokedUsers &&
    sar.user !== undefined &&
    revoked.users.has(sar.user)
  )
    return {
      decision: "deny-user",
      status: {
        allowed: false,
        denied: true,
        reason: `user ${sar.user} holds a revoked client certificate (kubepki, by user name)`,
      },
    };
  return { decision: "no-opinion", status: NO_OPINION };
}

function unknownDecision(id: string, fp: string, policy: UnknownPolicy): Decision {
  if (policy === "log") return { decision: "unknown-log", status: NO_OPINION, unknown: fp };
  return {
    decision: "unknown-deny",
    unknown: fp,
    status: {
      allowed: false,
      denied: true,
      reason: `client certificate ${id} was not issued by kubepki (not in its ledger; kubepki serve --unknown-certificates deny)`,
    },
  };
}
