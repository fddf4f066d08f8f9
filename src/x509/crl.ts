import type { KeyObject } from "node:crypto";
import { webCryptoParams } from "./algorithms.js";
import { authorityKeyIdExtension } from "./certificate.js";
import { toPublicCryptoKey, toSigningKey } from "./keys.js";
import { OID } from "./oids.js";
import type { CertInfo } from "./parse.js";
import { encodePem } from "./pem.js";
import { x509 } from "./provider.js";

/** RFC 5280 5.3.1 reason codes, by the names people type. */
export const CRL_REASONS = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  cACompromise: x509.X509CrlReason.cACompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
  certificateHold: x509.X509CrlReason.certificateHold,
  privilegeWithdrawn: x509.X509CrlReason.privilegeWithdrawn,
  aACompromise: x509.X509CrlReason.aACompromise,
} as const;
export type CrlReason = keyof typeof CRL_REASONS;

export interface RevokedEntry {
  serialHex: string;
  revokedAt: Date;
  reason: CrlReason;
}

/** A DER INTEGER for the CRL Number extension (no class for it in @peculiar/x509; stack.md 4.1). */
export function derInteger(n: bigint): Uint8Array<ArrayBuffer> {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let body = Buffer.from(hex, "hex");
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return new Uint8Array([0x02, body.length, ...body]);
}

/**
 * An X.509 v2 CRL signed by the CA: CRL Number, AuthorityKeyIdentifier, thisUpdate/nextUpdate and a
 * reason code per entry. PEM uses the "X509 CRL" label OpenSSL reads (the library's own says "CRL").
 */
export async function buildCrl(opts: {
  caCert: CertInfo;
  caKey: KeyObject;
  number: bigint;
  entries: RevokedEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
}): Promise<{ der: Buffer; pem: string }> {
  const aki = await authorityKeyIdExtension(opts.caCert);
  const crl = await x509.X509CrlGenerator.create({
    issuer: new x509.Name(new Uint8Array(opts.caCert.subjectDer)),
    thisUpdate: opts.thisUpdate,
    nextUpdate: opts.nextUpdate,
    signingKey: await toSigningKey(opts.caKey),
    signingAlgorithm: webCryptoParams(opts.caKey).signParams,
    extensions: [aki, new x509.Extension(OID.crlNumber, false, derInteger(opts.number))],
    entries: opts.entries.map((e) => ({
      serialNumber: e.serialHex,
      revocationDate: e.revokedAt,
      reason: CRL_REASONS[e.reason],
    })),
  });
  const der = Buffer.from(crl.rawData);
  return { der, pem: encodePem("X509 CRL", der) };
}

export interface ParsedCrl {
  number: bigint;
  thisUpdate: Date;
  /** Absent when the CRL has none (RFC 5280 makes it optional; kubepki always writes one). */
  nextUpdate?: Date;
  entries: RevokedEntry[];
}

const REASON_NAMES = new Map<number, CrlReason>(
  (Object.entries(CRL_REASONS) as [CrlReason, number][]).map(([name, code]) => [code, name]),
);

/**
 * Reads a CRL (DER or PEM) and checks its signature against the CA's certificate. Returns undefined
 * when another key signed it (a CRL of a CA that was since replaced).
 */
export async function readCrl(data: Buffer, caCert: CertInfo): Promise<ParsedCrl | undefined> {
  const text = data.toString("latin1");
  const crl = new x509.X509Crl(text.includes("-----BEGIN") ? text : new Uint8Array(data));
  if (!(await crl.verify({ publicKey: await toPublicCryptoKey(caCert.publicKey) }))) return undefined;
  return crlFields(crl);
}

/** A CRL's fields, its signature unchecked (metrics: which CA's CRL it is, and how fresh). */
export function readCrlUnverified(data: Buffer): ParsedCrl & { issuerDer: Buffer } {
  const text = data.toString("latin1");
  const crl = new x509.X509Crl(text.includes("-----BEGIN") ? text : new Uint8Array(data));
  return { ...crlFields(crl), issuerDer: Buffer.from(crl.issuerName.toArrayBuffer()) };
}

function crlFields(crl: InstanceType<typeof x509.X509Crl>): ParsedCrl {
  const ext = crl.extensions.find((e) => e.type === OID.crlNumber);
  const number = ext ? BigInt(`0x${Buffer.from(ext.value).subarray(2).toString("hex") || "0"}`) : 0n;
  return {
    number,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    entries: crl.entries.map((e) => ({
      serialHex: e.serialNumber.toLowerCase(),
      revokedAt: e.revocationDate,
      reason: REASON_NAMES.get(e.reason ?? 0) ?? "unspecified",
    })),
  };
}

/** kubeadm's CAs have no cRLSign: OpenSSL and Go reject their CRLs (etcd never checks the signature). */
export function crlSignWarning(caName: string, ca: { keyUsage: string[] | undefined }): string | undefined {
  if (!ca.keyUsage || ca.keyUsage.includes("cRLSign")) return undefined;
  return `${caName}: the CA certificate has no cRLSign key usage (kubeadm's CAs lack it), so OpenSSL and Go reject the CRLs it signs; etcd accepts them only because it never checks a CRL's signature. A CA rotation with kubepki init gives the CA cRLSign.`;
}
