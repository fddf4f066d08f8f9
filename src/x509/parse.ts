import type { KeyObject } from "node:crypto";
import { errorMessage, InputError } from "../errors.js";
import { EKU_OIDS, type ExtKeyUsageName, type KeyUsageName, publicKeyOf } from "./certificate.js";
import { sha256Hex } from "./fingerprint.js";
import { canonicalIp } from "./ip.js";
import { decodePem, encodePem } from "./pem.js";
import { x509 } from "./provider.js";

/** What kubepki needs to know about a certificate, read once. */
export interface CertInfo {
  cert: x509.X509Certificate;
  der: Buffer;
  pem: string;
  source: string;
  commonName: string;
  organizations: string[];
  issuerCommonName: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  isCA: boolean;
  pathLen: number | undefined;
  /** undefined when the extension is absent (then every usage is allowed, RFC 5280 4.2.1.3). */
  keyUsage: KeyUsageName[] | undefined;
  extKeyUsageOids: string[] | undefined;
  publicKey: KeyObject;
  selfIssued: boolean;
  sha256: string;
}

const KU_NAMES: [KeyUsageName, number][] = [
  ["digitalSignature", x509.KeyUsageFlags.digitalSignature],
  ["keyEncipherment", x509.KeyUsageFlags.keyEncipherment],
  ["keyCertSign", x509.KeyUsageFlags.keyCertSign],
  ["cRLSign", x509.KeyUsageFlags.cRLSign],
];

export function certInfoFromDer(der: Buffer, source: string): CertInfo {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(new Uint8Array(der));
  } catch (err) {
    throw new InputError(`${source}: not a valid X.509 certificate (${errorMessage(err)})`, { cause: err });
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const names = san?.names.items ?? [];
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyOf(cert);
  } catch (err) {
    throw new InputError(`${source}: unreadable public key (${errorMessage(err)})`, { cause: err });
  }
  return {
    cert,
    der,
    pem: encodePem("CERTIFICATE", der),
    source,
    commonName: cert.subjectName.getField("CN")[0] ?? "",
    organizations: cert.subjectName.getField("O"),
    issuerCommonName: cert.issuerName.getField("CN")[0] ?? "",
    serialHex: cert.serialNumber.toLowerCase(),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === "ip").map((n) => canonicalIp(n.value)),
    isCA: bc?.ca ?? false,
    pathLen: bc?.pathLength,
    keyUsage: ku ? KU_NAMES.filter(([, f]) => (ku.usages & f) !== 0).map(([n]) => n) : undefined,
    extKeyUsageOids: eku ? Array.from(eku.usages, String) : undefined,
    publicKey,
    selfIssued: Buffer.from(cert.subjectName.toArrayBuffer()).equals(
      Buffer.from(cert.issuerName.toArrayBuffer()),
    ),
    sha256: sha256Hex(der),
  };
}

/** Every CERTIFICATE block of a PEM file, leaf first. */
export function parseCertificatesPem(text: string, source: string): CertInfo[] {
  const blocks = decodePem(text, source).filter((b) => b.label === "CERTIFICATE");
  if (blocks.length === 0) throw new InputError(`${source}: no CERTIFICATE PEM block found`);
  return blocks.map((b, i) => certInfoFromDer(b.der, blocks.length > 1 ? `${source}[${i}]` : source));
}

export function parseCertificatePem(text: string, source: string): CertInfo {
  const [first] = parseCertificatesPem(text, source);
  if (!first) throw new InputError(`${source}: no certificate`);
  return first;
}

export function hasExtKeyUsage(info: CertInfo, usage: ExtKeyUsageName): boolean {
  return info.extKeyUsageOids?.includes(EKU_OIDS[usage]) ?? false;
}

export function extKeyUsageNames(info: CertInfo): ExtKeyUsageName[] {
  return (Object.keys(EKU_OIDS) as ExtKeyUsageName[]).filter((u) => hasExtKeyUsage(info, u));
}
