import { createPublicKey, type KeyObject, randomBytes } from "node:crypto";
import { webCryptoParams } from "./algorithms.js";
import { dedupeDnsNames, dedupeIps } from "./ip.js";
import { toPublicCryptoKey, toSigningKey } from "./keys.js";
import { encodePem } from "./pem.js";
import { x509 } from "./provider.js";

export type KeyUsageName = "digitalSignature" | "keyEncipherment" | "keyCertSign" | "cRLSign";
export type ExtKeyUsageName = "serverAuth" | "clientAuth";

export const EKU_OIDS: Record<ExtKeyUsageName, string> = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
};

const KU_FLAGS: Record<KeyUsageName, number> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
};

export interface CertificateTemplate {
  commonName: string;
  organizations?: string[];
  isCA: boolean;
  keyUsage: KeyUsageName[];
  extKeyUsage: ExtKeyUsageName[];
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore: Date;
  notAfter: Date;
  /** Hex; random 63-bit positive by default. */
  serialHex?: string;
}

export interface Signer {
  certificate: x509.X509Certificate;
  privateKey: KeyObject;
}

export interface IssuedCertificate {
  cert: x509.X509Certificate;
  der: Buffer;
  pem: string;
}

/**
 * kubeadm's serial: a uniform random integer in [1, 2^63-1), positive and at most 63 bits, so the
 * DER INTEGER needs no sign byte.
 */
export function randomSerialHex(): string {
  const max = (1n << 63n) - 2n;
  let n: bigint;
  do {
    n = randomBytes(8).readBigUInt64BE() & ((1n << 63n) - 1n);
  } while (n >= max);
  const hex = (n + 1n).toString(16);
  return hex.length % 2 ? `0${hex}` : hex;
}

/** Subject as Go's pkix.Name writes it: O before CN, one RDN per value. */
export function subjectName(commonName: string, organizations: string[] = []): x509.JsonName {
  return [...organizations.map((o) => ({ O: [o] })), { CN: [commonName] }];
}

/**
 * Builds and signs a certificate with kubeadm's extension set: KeyUsage and BasicConstraints
 * critical; CA certificates get a SubjectKeyIdentifier (SHA-1 of the key bits, as Go fills it);
 * certificates signed by another get an AuthorityKeyIdentifier; SANs deduplicated as kubeadm does.
 * `signer` undefined means self-signed with `subjectPrivateKey`.
 */
export async function issueCertificate(
  tpl: CertificateTemplate,
  subjectPublicKey: KeyObject,
  signer: Signer | { selfSigned: KeyObject },
): Promise<IssuedCertificate> {
  const publicKey = await toPublicCryptoKey(subjectPublicKey);
  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(
      tpl.keyUsage.reduce((acc, k) => acc | KU_FLAGS[k], 0),
      true,
    ),
  ];
  if (tpl.extKeyUsage.length > 0)
    extensions.push(
      new x509.ExtendedKeyUsageExtension(
        tpl.extKeyUsage.map((e) => EKU_OIDS[e]),
        false,
      ),
    );
  extensions.push(new x509.BasicConstraintsExtension(tpl.isCA, undefined, true));
  if (tpl.isCA) extensions.push(await x509.SubjectKeyIdentifierExtension.create(publicKey));
  if ("certificate" in signer) extensions.push(await authorityKeyId(signer.certificate));
  const names = [
    ...dedupeDnsNames(tpl.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...dedupeIps(tpl.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));

  const signingPrivate = "certificate" in signer ? signer.privateKey : signer.selfSigned;
  const subject = subjectName(tpl.commonName, tpl.organizations);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: tpl.serialHex ?? randomSerialHex(),
    subject,
    issuer: "certificate" in signer ? signer.certificate.subjectName : subject,
    notBefore: tpl.notBefore,
    notAfter: tpl.notAfter,
    publicKey,
    signingKey: await toSigningKey(signingPrivate),
    signingAlgorithm: webCryptoParams(signingPrivate).signParams,
    extensions,
  });
  const der = Buffer.from(cert.rawData);
  return { cert, der, pem: encodePem("CERTIFICATE", der) };
}

async function authorityKeyId(issuer: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false);
  return x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey, false);
}

/** The public key of a parsed certificate as a node:crypto KeyObject. */
export function publicKeyOf(cert: x509.X509Certificate): KeyObject {
  return createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: "der", type: "spki" });
}
