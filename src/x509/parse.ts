import { type KeyObject, X509Certificate } from "node:crypto";
import { errorMessage, InputError } from "../errors.js";
import { describeKey, keyBits } from "./algorithms.js";
import {
  algorithmNameOfOid,
  type RawExtension,
  readBasicConstraints,
  readBitNumbers,
  readCertificateDer,
  readGeneralNames,
  readKeyIdentifier,
  readName,
  readOidSequence,
} from "./der.js";
import { sha256Hex } from "./fingerprint.js";
import { ipFromBytes } from "./ip.js";
import { isPrivateKeyBlock, type KeyFact, keyFact, privateKeyFromBlock } from "./keys.js";
import { EKU_OIDS, type ExtKeyUsageName, type KeyUsageName, OID } from "./oids.js";
import { decodePem, encodePem } from "./pem.js";

/**
 * kubepki's one parsed-certificate model, read once with node:crypto's X509Certificate (7-15x
 * faster than the ASN.1 libraries, docs/stack.md, "Throughput"; an audit may meet tens of thousands)
 * plus a small DER reader for what Node does not expose. @peculiar/x509 only generates.
 */
export interface CertInfo {
  x509: X509Certificate;
  der: Buffer;
  /** PEM of `der`, made on first use. */
  readonly pem: string;
  /** The file it was read from (for a kubeconfig: the kubeconfig). */
  path: string;
  /** Position in its file (chains). */
  index: number;
  origin: "file" | "kubeconfig";
  /** For a certificate embedded in a kubeconfig: which field ("users[admin].client-certificate-data"). */
  field?: string;
  commonName: string;
  organizations: string[];
  issuerCommonName: string;
  /** Node's multi-line form ("O=a\nCN=b"), for display and grouping. */
  subject: string;
  issuer: string;
  /** DER of the subject and issuer Names: byte-exact name chaining and the issuer of what a CA signs. */
  subjectDer: Buffer;
  issuerDer: Buffer;
  /** Lowercase hex of the serial, without DER's sign byte (as openssl prints it). */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  /** Canonical text (reference: x509/ip.ts). */
  ipAddresses: string[];
  isCA: boolean;
  pathLen: number | undefined;
  /** undefined when the extension is absent (then every usage is allowed, RFC 5280 4.2.1.3). */
  keyUsage: KeyUsageName[] | undefined;
  /** Extended key usage OIDs; undefined when the extension is absent. */
  extKeyUsageOids: string[] | undefined;
  subjectKeyId: Buffer | undefined;
  authorityKeyId: Buffer | undefined;
  extensions: RawExtension[];
  publicKey: KeyObject;
  keyType: string;
  keyBits: number | undefined;
  signatureAlgorithm: string;
  /** Subject and issuer are the same name. */
  selfIssued: boolean;
  /** Self-issued and its key identifiers agree with itself (OpenSSL's check_issued, no signature check). */
  selfSigned: boolean;
  /** Lowercase hex SHA-256 of the DER: fingerprints and Kubernetes credential ids. */
  sha256: string;
}

/** Bit numbers of the KeyUsage BIT STRING (RFC 5280 4.2.1.3) kubepki names. */
const KU_BITS: [KeyUsageName, number][] = [
  ["digitalSignature", 0],
  ["keyEncipherment", 2],
  ["keyCertSign", 5],
  ["cRLSign", 6],
];

export interface CertPlace {
  index?: number;
  origin?: CertInfo["origin"];
  field?: string;
}

function invalid(label: string, why: unknown): InputError {
  return new InputError(`${label}: not a valid X.509 certificate (${errorMessage(why)})`, { cause: why });
}

/** The fields kubepki reads from the extensions (RFC 5280 4.2), absent ones as undefined. */
function extensionFields(extensions: RawExtension[]) {
  const ext = (oid: string) => extensions.find((e) => e.oid === oid)?.value;
  const bcValue = ext(OID.basicConstraints);
  const bc = bcValue ? readBasicConstraints(bcValue) : undefined;
  const ku = ext(OID.keyUsage);
  const eku = ext(OID.extKeyUsage);
  const san = readGeneralNames(ext(OID.subjectAltName) ?? Buffer.alloc(0));
  const ski = ext(OID.subjectKeyIdentifier);
  const aki = ext(OID.authorityKeyIdentifier);
  return {
    dnsNames: san.dns,
    ipAddresses: san.ips.map(ipFromBytes),
    isCA: bc?.ca ?? false,
    pathLen: bc?.pathLen,
    keyUsage: ku ? keyUsageNames(readBitNumbers(ku)) : undefined,
    extKeyUsageOids: eku ? readOidSequence(eku) : undefined,
    subjectKeyId: ski ? readKeyIdentifier(ski, "subject") : undefined,
    authorityKeyId: aki ? readKeyIdentifier(aki, "authority") : undefined,
    extensions,
  };
}

function readNative(der: Buffer, label: string): { x: X509Certificate; publicKey: KeyObject } {
  let x: X509Certificate;
  try {
    x = new X509Certificate(der);
  } catch (err) {
    throw invalid(label, err);
  }
  try {
    return { x, publicKey: x.publicKey };
  } catch (err) {
    throw new InputError(`${label}: unreadable public key (${errorMessage(err)})`, { cause: err });
  }
}

const attr = (name: { oid: string; value: string }[], oid: string) =>
  name.filter((a) => a.oid === oid).map((a) => a.value);

export function certInfoFromDer(der: Buffer, path: string, place: CertPlace = {}): CertInfo {
  const label = place.index ? `${path}[${place.index}]` : path;
  const { x, publicKey } = readNative(der, label);
  const raw = readCertificateDer(der);
  if (!raw) throw invalid(label, "malformed DER");
  const subject = readName(raw.subject);
  const issuer = readName(raw.issuer);
  const selfIssued = raw.subject.equals(raw.issuer);
  let pem: string | undefined;
  return {
    x509: x,
    der,
    get pem() {
      pem ??= encodePem("CERTIFICATE", der);
      return pem;
    },
    path,
    index: place.index ?? 0,
    origin: place.origin ?? "file",
    field: place.field,
    commonName: attr(subject, OID.commonName)[0] ?? "",
    organizations: attr(subject, OID.organization),
    issuerCommonName: attr(issuer, OID.commonName)[0] ?? "",
    subject: x.subject,
    issuer: x.issuer,
    subjectDer: raw.subject,
    issuerDer: raw.issuer,
    serialHex: raw.serialHex,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    ...extensionFields(raw.extensions),
    publicKey,
    keyType: describeKey(publicKey),
    keyBits: keyBits(publicKey),
    signatureAlgorithm: algorithmNameOfOid(raw.signatureOid),
    selfIssued,
    selfSigned: selfIssued && x.checkIssued(x),
    sha256: sha256Hex(der),
  };
}

function keyUsageNames(bits: number[]): KeyUsageName[] {
  return KU_BITS.filter(([, bit]) => bits.includes(bit)).map(([name]) => name);
}

/** Every CERTIFICATE block of a PEM file, leaf first. */
export function parseCertificatesPem(text: string, path: string): CertInfo[] {
  const blocks = decodePem(text, path).filter((b) => b.label === "CERTIFICATE");
  if (blocks.length === 0) throw new InputError(`${path}: no CERTIFICATE PEM block found`);
  return blocks.map((b, index) => certInfoFromDer(b.der, path, { index }));
}

export function parseCertificatePem(text: string, path: string): CertInfo {
  const [first] = parseCertificatesPem(text, path);
  if (!first) throw new InputError(`${path}: no certificate`);
  return first;
}

export function hasExtKeyUsage(info: CertInfo, usage: ExtKeyUsageName): boolean {
  return info.extKeyUsageOids?.includes(EKU_OIDS[usage]) ?? false;
}

export function extKeyUsageNames(info: CertInfo): ExtKeyUsageName[] {
  return (Object.keys(EKU_OIDS) as ExtKeyUsageName[]).filter((u) => hasExtKeyUsage(info, u));
}

export interface ParsedPem {
  certs: CertInfo[];
  keys: KeyFact[];
  errors: string[];
}

/** The reason alone: the caller already names the file. */
const reason = (err: unknown, path: string) =>
  ((err as Error).message.split("\n")[0] ?? "").replace(`${path}: `, "");

/** Every certificate and private key in a PEM file (or a single DER certificate); never throws. */
export function parsePemFile(data: Buffer, path: string): ParsedPem {
  const out: ParsedPem = { certs: [], keys: [], errors: [] };
  const text = data.toString("latin1");
  if (!text.includes("-----BEGIN")) {
    if (data[0] === 0x30 && /\.(crt|cer|der)$/.test(path)) {
      try {
        out.certs.push(certInfoFromDer(data, path));
      } catch (err) {
        out.errors.push(`not a certificate: ${reason(err, path)}`);
      }
    }
    return out;
  }
  let blocks: ReturnType<typeof decodePem>;
  try {
    blocks = decodePem(text, path);
  } catch (err) {
    out.errors.push((err as Error).message);
    return out;
  }
  for (const b of blocks) {
    try {
      if (b.label === "CERTIFICATE")
        out.certs.push(certInfoFromDer(b.der, path, { index: out.certs.length }));
      else if (isPrivateKeyBlock(b)) out.keys.push(keyFact(privateKeyFromBlock(b, path), path));
    } catch (err) {
      out.errors.push(`unreadable ${b.label} block: ${reason(err, path)}`);
    }
  }
  return out;
}
