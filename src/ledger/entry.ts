import type { IssuedCert } from "../pki/init-sign.js";
import { readName } from "../x509/der.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { OID } from "../x509/oids.js";
import { type CertInfo, certInfoFromDer } from "../x509/parse.js";
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

/** What a run signed (pki's record of it), and whether it is the break-glass credential. */
export type IssuedRecord = IssuedCert & { breakGlass?: boolean };

export function entryFrom(rec: IssuedRecord, source: LedgerEntry["source"], now = new Date()): LedgerEntry {
  const cert = rec.cert ?? certInfoFromDer(rec.der, rec.path ?? "certificate");
  const orgs = cert.organizations;
  return {
    sha256: cert.sha256,
    serial: normalizeSerial(cert.serialHex),
    issuerSha256: sha256Hex(rec.issuerDer),
    subjectCN: lastCommonName(cert),
    subjectO: orgs,
    // Node's form ("DNS:a, IP Address:10.0.0.1"), as the ledger has always stored them.
    sans: cert.x509.subjectAltName ? cert.x509.subjectAltName.split(", ") : [],
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    profile: rec.profile,
    path: rec.path,
    source,
    status: "active",
    recordedAt: now.toISOString(),
    breakGlass: rec.breakGlass || orgs.includes("system:masters") || undefined,
  };
}

/** Kubernetes (Go's pkix.Name) takes the last CN of the subject as the user name. */
function lastCommonName(cert: CertInfo): string {
  return (
    readName(cert.subjectDer)
      .filter((a) => a.oid === OID.commonName)
      .at(-1)?.value ?? ""
  );
}
