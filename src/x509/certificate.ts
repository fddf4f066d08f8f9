import { type KeyObject, randomBytes } from "node:crypto";
import { webCryptoParams } from "./algorithms.js";
import { dedupeDnsNames, dedupeIps } from "./ip.js";
import { toPublicCryptoKey, toSigningKey } from "./keys.js";
import { EKU_OIDS, type ExtKeyUsageName, type KeyUsageName } from "./oids.js";
import { type CertInfo, certInfoFromDer } from "./parse.js";
import { encodePem } from "./pem.js";
import { x509 } from "./provider.js";

export type { ExtKeyUsageName, KeyUsageName };

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
  certificate: CertInfo;
  privateKey: KeyObject;
}

export interface IssuedCertificate {
  cert: CertInfo;
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
  if ("certificate" in signer) extensions.push(await authorityKeyIdExtension(signer.certificate));
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
    issuer: "certificate" in signer ? new x509.Name(new Uint8Array(signer.certificate.subjectDer)) : subject,
    notBefore: tpl.notBefore,
    notAfter: tpl.notAfter,
    publicKey,
    signingKey: await toSigningKey(signingPrivate),
    signingAlgorithm: webCryptoParams(signingPrivate).signParams,
    extensions,
  });
  const der = Buffer.from(cert.rawData);
  return { cert: certInfoFromDer(der, tpl.commonName), der, pem: encodePem("CERTIFICATE", der) };
}

/**
 * The AuthorityKeyIdentifier of what `issuer` signs (certificates and CRLs): its
 * SubjectKeyIdentifier when it has one, else the SHA-1 of its key bits, as Go fills it.
 */
export async function authorityKeyIdExtension(
  issuer: CertInfo,
): Promise<x509.AuthorityKeyIdentifierExtension> {
  if (issuer.subjectKeyId)
    return new x509.AuthorityKeyIdentifierExtension(issuer.subjectKeyId.toString("hex"), false);
  return x509.AuthorityKeyIdentifierExtension.create(await toPublicCryptoKey(issuer.publicKey), false);
}
