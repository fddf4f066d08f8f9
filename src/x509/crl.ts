import type { KeyObject } from "node:crypto";
import { webCryptoParams } from "./algorithms.js";
import { toSigningKey } from "./keys.js";
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
  caCert: x509.X509Certificate;
  caKey: KeyObject;
  number: bigint;
  entries: RevokedEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
}): Promise<{ der: Buffer; pem: string }> {
  const ski = opts.caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = ski
    ? new x509.AuthorityKeyIdentifierExtension(ski.keyId, false)
    : await x509.AuthorityKeyIdentifierExtension.create(opts.caCert.publicKey, false);
  const crl = await x509.X509CrlGenerator.create({
    issuer: opts.caCert.subjectName,
    thisUpdate: opts.thisUpdate,
    nextUpdate: opts.nextUpdate,
    signingKey: await toSigningKey(opts.caKey),
    signingAlgorithm: webCryptoParams(opts.caKey).signParams,
    extensions: [aki, new x509.Extension("2.5.29.20", false, derInteger(opts.number))],
    entries: opts.entries.map((e) => ({
      serialNumber: e.serialHex,
      revocationDate: e.revokedAt,
      reason: CRL_REASONS[e.reason],
    })),
  });
  const der = Buffer.from(crl.rawData);
  return { der, pem: encodePem("X509 CRL", der) };
}
