import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { describeKey } from "../x509/algorithms.js";
import { signatureAlgorithmName } from "../x509/der.js";
import { dnFields } from "../x509/dn.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { decodePem, encodePem } from "../x509/pem.js";

/**
 * What the audit knows of a certificate, read with Node's native X509Certificate (7-15x faster
 * than the ASN.1 libraries, docs/stack.md, "Who does what"): the audit may meet tens of thousands.
 */
export interface CertFact {
  path: string;
  /** Position in its file (chains), or the kubeconfig field it came from. */
  index: number;
  origin: "file" | "kubeconfig";
  /** For a certificate embedded in a kubeconfig: which field ("users[admin].client-certificate-data"). */
  field?: string;
  commonName: string;
  organizations: string[];
  issuerCommonName: string;
  subject: string;
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  isCA: boolean;
  /** Extended key usage OIDs; undefined when the extension is absent. */
  extKeyUsage: string[] | undefined;
  keyType: string;
  keyBits: number | undefined;
  signatureAlgorithm: string;
  selfSigned: boolean;
  /** Lowercase hex SHA-256 of the DER: fingerprints and Kubernetes credential ids. */
  sha256: string;
  x509: X509Certificate;
}

export interface KeyFact {
  path: string;
  keyType: string;
  keyBits: number | undefined;
  /** SHA-256 of the public key's SPKI, to pair keys with certificates without keeping key bytes around. */
  publicSpki: string;
}

function keyBits(key: KeyObject): number | undefined {
  const d = key.asymmetricKeyDetails;
  if (d?.modulusLength) return d.modulusLength;
  const curves: Record<string, number> = {
    prime256v1: 256,
    secp384r1: 384,
    secp521r1: 521,
    secp224r1: 224,
    prime192v1: 192,
    secp256k1: 256,
  };
  if (d?.namedCurve) return curves[d.namedCurve];
  return key.asymmetricKeyType === "ed25519" ? 256 : undefined;
}

export function spkiSha256(key: KeyObject): string {
  return sha256Hex(key.export({ type: "spki", format: "der" }));
}

/** One certificate at one place (a file position or a kubeconfig field). */
export function certKey(c: CertFact): string {
  return `${c.path}#${c.field ?? c.index}#${c.sha256}`;
}

/** The certificates without repeats of the same one at the same place. */
export function uniqueCerts(certs: CertFact[]): CertFact[] {
  const seen = new Set<string>();
  return certs.filter((c) => {
    const k = certKey(c);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function certFact(
  der: Buffer,
  path: string,
  index: number,
  origin: CertFact["origin"] = "file",
): CertFact {
  const x = new X509Certificate(der);
  const san = x.subjectAltName ?? "";
  const names = san ? san.split(", ") : [];
  const pub = x.publicKey;
  return {
    path,
    index,
    origin,
    commonName: dnFields(x.subject, "CN")[0] ?? "",
    organizations: dnFields(x.subject, "O"),
    issuerCommonName: dnFields(x.issuer, "CN")[0] ?? "",
    subject: x.subject,
    issuer: x.issuer,
    serial: x.serialNumber.toLowerCase(),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    dnsNames: names.filter((n) => n.startsWith("DNS:")).map((n) => n.slice(4)),
    ipAddresses: names.filter((n) => n.startsWith("IP Address:")).map((n) => n.slice(11)),
    isCA: x.ca,
    extKeyUsage: x.keyUsage,
    keyType: describeKey(pub),
    keyBits: keyBits(pub),
    signatureAlgorithm: signatureAlgorithmName(der),
    selfSigned: x.subject === x.issuer && x.checkIssued(x),
    sha256: x.fingerprint256.replace(/:/g, "").toLowerCase(),
    x509: x,
  };
}

export interface ParsedPem {
  certs: CertFact[];
  keys: KeyFact[];
  errors: string[];
}

const KEY_LABELS = new Set(["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"]);

/** Every certificate and private key in a PEM file (or a single DER certificate). */
export function parsePemFile(data: Buffer, path: string): ParsedPem {
  const out: ParsedPem = { certs: [], keys: [], errors: [] };
  const text = data.toString("latin1");
  if (!text.includes("-----BEGIN")) {
    if (data[0] === 0x30 && /\.(crt|cer|der)$/.test(path)) {
      try {
        out.certs.push(certFact(data, path, 0));
      } catch (err) {
        out.errors.push(`not a certificate: ${(err as Error).message}`);
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
      if (b.label === "CERTIFICATE") out.certs.push(certFact(b.der, path, out.certs.length));
      else if (KEY_LABELS.has(b.label)) {
        const key =
          b.label === "PRIVATE KEY"
            ? createPrivateKey({ key: b.der, format: "der", type: "pkcs8" })
            : createPrivateKey({ key: encodePem(b.label, b.der), format: "pem" });
        const pub = createPublicKey(key);
        out.keys.push({
          path,
          keyType: describeKey(key),
          keyBits: keyBits(key),
          publicSpki: spkiSha256(pub),
        });
      }
    } catch (err) {
      out.errors.push(`unreadable ${b.label} block: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return out;
}
