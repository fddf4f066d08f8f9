import { CRL_REASONS, type CrlReason } from "../x509/crl.js";
import { type LedgerEntry, type SerialOnly, STATUSES } from "./store.js";

/**
 * The etcd ledger's keys, relative to the prefix (docs/ledger-etcd.md is the reference). Every
 * value is JSON but the CRLs (DER) and the index keys (empty).
 */
export const SCHEMA_VERSION = 1;
export const K = {
  /** {"version":1,"id":"<uuid>","createdAt":"..."} */
  schema: "schema",
  /** The lease-held write lock exclusive() takes. */
  lock: "lock",
  entries: "entries/",
  entry: (sha: string) => `entries/${sha}`,
  serials: (serial: string) => `index/serial/${serial}/`,
  serial: (serial: string, sha: string) => `index/serial/${serial}/${sha}`,
  users: (cn: string) => `index/user/${encodeURIComponent(cn)}/`,
  user: (cn: string, sha: string) => `index/user/${encodeURIComponent(cn)}/${sha}`,
  issued: (issuer: string) => `index/issuer/${issuer}/`,
  issuer: (issuer: string, sha: string) => `index/issuer/${issuer}/${sha}`,
  /** The revoked set: what `kubepki serve` loads and watches. */
  revokedAll: "revoked/",
  revoked: (sha: string) => `revoked/${sha}`,
  serialOnlyOf: (issuer: string) => `serial-only/${issuer}/`,
  serialOnly: (issuer: string, serial: string) => `serial-only/${issuer}/${serial}`,
  crlNumber: (issuer: string) => `crl-number/${issuer}`,
  crlAll: "crl/",
  crl: (issuer: string) => `crl/${issuer}`,
  /**
   * kubepki watch's integrity baseline. It describes one node's files (the same path differs from
   * node to node), so each node keeps its own under its host name.
   */
  baselineOf: (node: string) => `baseline/${encodeURIComponent(node)}/`,
  baseline: (node: string, path: string) =>
    `baseline/${encodeURIComponent(node)}/${encodeURIComponent(path)}`,
} as const;

/** What revoked/<sha256> holds: enough to deny (and to deny by user name) without the entry. */
export interface RevokedValue {
  issuerSha256: string;
  serial: string;
  subjectCN: string;
  revokedAt: string;
  reason: CrlReason;
}

export function revokedValue(e: LedgerEntry): RevokedValue {
  return {
    issuerSha256: e.issuerSha256,
    serial: e.serial,
    subjectCN: e.subjectCN,
    revokedAt: e.revokedAt ?? "",
    reason: e.reason ?? "unspecified",
  };
}

const HEX64 = /^[0-9a-f]{64}$/;
const isStr = (v: unknown): v is string => typeof v === "string";
const isStrs = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

/** The reason a value is not a ledger entry, or undefined when it is one. */
function entryProblem(v: Record<string, unknown>): string | undefined {
  if (!isStr(v.sha256) || !HEX64.test(v.sha256)) return "no sha256";
  if (!isStr(v.serial) || !isStr(v.issuerSha256) || !isStr(v.subjectCN))
    return "no serial, issuer or subject";
  if (!isStrs(v.subjectO) || !isStrs(v.sans)) return "subjectO or sans not a list of strings";
  if (!isStr(v.notBefore) || !isStr(v.notAfter) || !isStr(v.recordedAt)) return "dates missing";
  if (!isStr(v.profile) || (v.source !== "issued" && v.source !== "imported")) return "no profile or source";
  if (!(STATUSES as readonly unknown[]).includes(v.status)) return `status ${JSON.stringify(v.status)}`;
  if (v.reason !== undefined && !(isStr(v.reason) && v.reason in CRL_REASONS)) return "unknown reason";
  return undefined;
}

/** Parses a value as JSON: the object, or why it is not one. */
function parseObject(value: Buffer): Record<string, unknown> | string {
  try {
    const v = JSON.parse(value.toString("utf8")) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : "not an object";
  } catch {
    return "not valid JSON";
  }
}

/** An entry read back, or why the value under `key` is not one (the caller warns and skips it). */
export function parseEntry(key: string, value: Buffer): LedgerEntry | string {
  const v = parseObject(value);
  if (typeof v === "string") return v;
  const problem = entryProblem(v);
  if (problem) return `not a ledger entry (${problem})`;
  if (key !== K.entry(v.sha256 as string)) return "its sha256 is not its key";
  return v as unknown as LedgerEntry;
}

export function parseRevoked(value: Buffer): RevokedValue | string {
  const v = parseObject(value);
  if (typeof v === "string") return v;
  if (!isStr(v.issuerSha256) || !isStr(v.serial) || !isStr(v.subjectCN) || !isStr(v.revokedAt))
    return "not a revocation";
  return v as unknown as RevokedValue;
}

export function parseSerialOnly(value: Buffer): SerialOnly | string {
  const v = parseObject(value);
  if (typeof v === "string") return v;
  if (!isStr(v.serial) || !isStr(v.revokedAt) || !isStr(v.reason)) return "not a serial-only revocation";
  return v as unknown as SerialOnly;
}

export interface SchemaValue {
  version: number;
  id: string;
  createdAt: string;
}

export function parseSchema(value: Buffer): SchemaValue | string {
  const v = parseObject(value);
  if (typeof v === "string") return v;
  if (typeof v.version !== "number" || !isStr(v.id)) return "no version and id";
  return v as unknown as SchemaValue;
}

/** The value of entries/<sha256>: the entry as stored (status as recorded; "expired" is computed on read). */
export function entryValue(e: LedgerEntry): string {
  const { status, ...rest } = e;
  return JSON.stringify({ ...rest, status: status === "expired" ? "active" : status });
}
