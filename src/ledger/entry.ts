import { X509Certificate } from "node:crypto";
import { dnFields } from "../x509/dn.js";
import { sha256Hex } from "../x509/fingerprint.js";
import type { LedgerEntry } from "./store.js";

/** Serial numbers as the ledger keeps them: lowercase hex, no colons, no leading zeros. */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().toLowerCase().replace(/^0x/, "").replace(/[:\s]/g, "");
  return hex.replace(/^0+(?=.)/, "");
}

/** Fingerprints as typed by people: "AB:CD:..", "X509SHA256=abcd..", or plain hex. */
export function normalizeFingerprint(fp: string): string {
  return fp
    .trim()
    .replace(/^X509SHA256=/i, "")
    .replace(/[:\s]/g, "")
    .toLowerCase();
}

export interface IssuedRecord {
  der: Buffer;
  /** DER of the issuing CA (the certificate itself for a root). */
  issuerDer: Buffer;
  profile: string;
  path?: string;
  breakGlass?: boolean;
}

export function entryFrom(rec: IssuedRecord, source: LedgerEntry["source"], now = new Date()): LedgerEntry {
  const x = new X509Certificate(rec.der);
  const orgs = dnFields(x.subject, "O");
  return {
    sha256: sha256Hex(rec.der),
    serial: normalizeSerial(x.serialNumber),
    issuerSha256: sha256Hex(rec.issuerDer),
    // Kubernetes (Go's pkix.Name) takes the last CN as the user name.
    subjectCN: dnFields(x.subject, "CN").at(-1) ?? "",
    subjectO: orgs,
    sans: x.subjectAltName ? x.subjectAltName.split(", ") : [],
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
    profile: rec.profile,
    path: rec.path,
    source,
    status: "active",
    recordedAt: now.toISOString(),
    breakGlass: rec.breakGlass || orgs.includes("system:masters") || undefined,
  };
}
