import { createHash, X509Certificate } from "node:crypto";
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

function fields(dn: string, name: string): string[] {
  return dn
    .split("\n")
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));
}

export function entryFrom(rec: IssuedRecord, source: LedgerEntry["source"], now = new Date()): LedgerEntry {
  const x = new X509Certificate(rec.der);
  const sha = (d: Buffer) => createHash("sha256").update(d).digest("hex");
  const orgs = fields(x.subject, "O");
  return {
    sha256: sha(rec.der),
    serial: normalizeSerial(x.serialNumber),
    issuerSha256: sha(rec.issuerDer),
    subjectCN: fields(x.subject, "CN")[0] ?? "",
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
