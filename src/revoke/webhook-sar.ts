export const CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id";
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
}

/** `denied: true` for a revoked credential id (or, opted in, a revoked user name); else no opinion. */
export function decide(
  sar: Sar,
  revoked: RevokedView,
  denyRevokedUsers: boolean,
): { status: Record<string, unknown>; decision: string } {
  for (const id of sar.credentialIds) {
    if (!id.startsWith("X509SHA256=")) continue;
    if (revoked.fingerprints.has(id.slice(11).toLowerCase()))
      return {
        decision: "deny",
        status: { allowed: false, denied: true, reason: `client certificate ${id} is revoked (kubepki)` },
      };
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
  return { decision: "no-opinion", status: { allowed: false } };
}
