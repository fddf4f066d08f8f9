import { CREDENTIAL_ID_KEY } from "../x509/fingerprint.js";

const X509_PREFIX = "X509SHA256=";
const FINGERPRINT = /^[0-9a-f]{64}$/;

/** What hunt reads of one audit.k8s.io/v1 Event authenticated by a client certificate. */
export interface CertEvent {
  /** Lower-case hex SHA-256 of the client certificate's DER. */
  sha256: string;
  user: string;
  groups: string[];
  sourceIPs: string[];
  verb: string;
  stage: string;
  /** requestReceivedTimestamp (else stageTimestamp), ms since the epoch; NaN when absent. */
  time: number;
  /** responseStatus.code, when the stage has one. */
  code?: number;
}

/** A line is an event with a certificate, an event without one, blank, or malformed (with why). */
export type LineKind = CertEvent | "other" | "blank" | { malformed: string };

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

/** One line of a kube-apiserver JSON audit log; never throws, whatever the line holds. */
export function parseLine(line: string): LineKind {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return line.trim() === "" ? "blank" : { malformed: "not JSON" };
  }
  if (!isRecord(v)) return { malformed: "not a JSON object" };
  if (v.kind !== "Event" || typeof v.apiVersion !== "string" || !v.apiVersion.startsWith("audit.k8s.io/"))
    return { malformed: "not an audit.k8s.io Event" };
  const user = v.user;
  if (!isRecord(user) || typeof user.username !== "string") return { malformed: "an Event without a user" };
  const sha256 = certificateId(user.extra);
  if (sha256 === undefined) return "other";
  return {
    sha256,
    user: user.username,
    groups: strings(user.groups),
    sourceIPs: strings(v.sourceIPs),
    verb: typeof v.verb === "string" ? v.verb : "",
    stage: typeof v.stage === "string" ? v.stage : "",
    time: timeOf(v),
    code:
      isRecord(v.responseStatus) && typeof v.responseStatus.code === "number"
        ? v.responseStatus.code
        : undefined,
  };
}

/** The X509SHA256 credential id of user.extra, as a fingerprint; undefined for tokens and older clusters. */
function certificateId(extra: unknown): string | undefined {
  if (!isRecord(extra)) return undefined;
  for (const id of strings(extra[CREDENTIAL_ID_KEY])) {
    if (!id.startsWith(X509_PREFIX)) continue;
    const fp = id.slice(X509_PREFIX.length).toLowerCase();
    if (FINGERPRINT.test(fp)) return fp;
  }
  return undefined;
}

function timeOf(v: Record<string, unknown>): number {
  const t = typeof v.requestReceivedTimestamp === "string" ? v.requestReceivedTimestamp : v.stageTimestamp;
  return typeof t === "string" ? Date.parse(t) : Number.NaN;
}
