import { createPublicKey, type KeyObject } from "node:crypto";
import { describeKey, keyBits } from "../x509/algorithms.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { isPrivateKeyBlock, privateKeyFromBlock } from "../x509/keys.js";
import { type CertInfo, certInfoFromDer } from "../x509/parse.js";
import { decodePem } from "../x509/pem.js";

export interface KeyFact {
  path: string;
  keyType: string;
  keyBits: number | undefined;
  /** SHA-256 of the public key's SPKI, to pair keys with certificates without keeping key bytes around. */
  publicSpki: string;
}

export function spkiSha256(key: KeyObject): string {
  return sha256Hex(key.export({ type: "spki", format: "der" }));
}

/** One certificate at one place (a file position or a kubeconfig field). */
export function certKey(c: CertInfo): string {
  return `${c.path}#${c.field ?? c.index}#${c.sha256}`;
}

/** The certificates without repeats of the same one at the same place. */
export function uniqueCerts(certs: CertInfo[]): CertInfo[] {
  const seen = new Set<string>();
  return certs.filter((c) => {
    const k = certKey(c);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export interface ParsedPem {
  certs: CertInfo[];
  keys: KeyFact[];
  errors: string[];
}

function keyFact(key: KeyObject, path: string): KeyFact {
  return {
    path,
    keyType: describeKey(key),
    keyBits: keyBits(key),
    publicSpki: spkiSha256(createPublicKey(key)),
  };
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
