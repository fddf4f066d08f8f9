import { createPrivateKey, createPublicKey, type KeyObject, webcrypto } from "node:crypto";
import { errorMessage, InputError } from "../errors.js";
import { describeKey, keyBits, webCryptoParams } from "./algorithms.js";
import { sha256Hex } from "./fingerprint.js";
import { decodePem, encodePem, type PemBlock } from "./pem.js";

/** kubeadm's encoding: PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY", never PKCS#8. */
export function privateKeyToPem(key: KeyObject): string {
  if (key.asymmetricKeyType === "rsa") return key.export({ type: "pkcs1", format: "pem" }) as string;
  if (key.asymmetricKeyType === "ec") return key.export({ type: "sec1", format: "pem" }) as string;
  return key.export({ type: "pkcs8", format: "pem" }) as string;
}

export function publicKeyToPem(key: KeyObject): string {
  return key.export({ type: "spki", format: "pem" }) as string;
}

/** The PEM labels of a private key: PKCS#1 RSA, SEC1 EC, PKCS#8. */
export const PRIVATE_KEY_LABELS: readonly string[] = ["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"];

export function isPrivateKeyBlock(block: PemBlock): boolean {
  return PRIVATE_KEY_LABELS.includes(block.label);
}

/** The key of one private-key PEM block. Errors name the file but never echo its content. */
export function privateKeyFromBlock(block: PemBlock, source: string): KeyObject {
  try {
    if (block.label === "PRIVATE KEY")
      return createPrivateKey({ key: block.der, format: "der", type: "pkcs8" });
    return createPrivateKey({ key: encodePem(block.label, block.der), format: "pem" });
  } catch (err) {
    throw new InputError(
      `${source}: the ${block.label} block does not hold a readable key (${errorMessage(err)})`,
      { cause: err },
    );
  }
}

/**
 * Reads the first private key block, as kubeadm does (other blocks such as EC PARAMETERS are
 * skipped).
 */
export function parsePrivateKeyPem(text: string, source: string): KeyObject {
  const block = decodePem(text, source).find(isPrivateKeyBlock);
  if (!block) throw new InputError(`${source}: no private key PEM block (${PRIVATE_KEY_LABELS.join(", ")})`);
  return privateKeyFromBlock(block, source);
}

export function parsePublicKeyPem(text: string, source: string): KeyObject {
  const block = decodePem(text, source).find((b) => b.label === "PUBLIC KEY" || b.label === "RSA PUBLIC KEY");
  if (!block) throw new InputError(`${source}: no PUBLIC KEY PEM block`);
  try {
    return createPublicKey({ key: encodePem(block.label, block.der), format: "pem" });
  } catch (err) {
    throw new InputError(
      `${source}: the ${block.label} block does not hold a readable key (${errorMessage(err)})`,
      { cause: err },
    );
  }
}

/** True when the private key belongs to the public key (compares the SPKI encodings). */
export function keysMatch(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const a = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  const b = publicKey.export({ type: "spki", format: "der" });
  return a.equals(b);
}

// Node's own WebCrypto, not through provider.ts: reading keys and certificates must not load @peculiar/x509.
const { subtle } = webcrypto;

/** WebCrypto can only import PKCS#8, so the key is re-encoded in memory. */
export async function toSigningKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ type: "pkcs8", format: "der" });
  // Node's webcrypto.CryptoKey knows more key usages than the DOM's type @peculiar/x509 takes.
  return subtle.importKey("pkcs8", der, webCryptoParams(key).importParams, false, [
    "sign",
  ]) as Promise<CryptoKey>;
}

export async function toPublicCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ type: "spki", format: "der" });
  return subtle.importKey("spki", der, webCryptoParams(key).importParams, true, [
    "verify",
  ]) as Promise<CryptoKey>;
}

/** The DER form of what privateKeyToPem writes (PKCS#1 for RSA, SEC1 for EC). */
export function privateKeyToDer(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === "rsa") return key.export({ type: "pkcs1", format: "der" });
  if (key.asymmetricKeyType === "ec") return key.export({ type: "sec1", format: "der" });
  return key.export({ type: "pkcs8", format: "der" });
}

/** A private key as PEM (any of the three labels) or as DER (PKCS#8, PKCS#1 or SEC1). */
export function parsePrivateKey(data: Buffer, source: string): KeyObject {
  const head = data.subarray(0, 64).toString("latin1");
  if (head.includes("-----BEGIN")) return parsePrivateKeyPem(data.toString("utf8"), source);
  for (const type of ["pkcs8", "pkcs1", "sec1"] as const) {
    try {
      return createPrivateKey({ key: data, format: "der", type });
    } catch {
      // try the next encoding
    }
  }
  throw new InputError(`${source}: not a private key in PEM or DER (PKCS#8, PKCS#1 or SEC1)`);
}

/** What an inventory keeps of a private key: its kind and its public half's fingerprint, never the key. */
export interface KeyFact {
  path: string;
  keyType: string;
  keyBits: number | undefined;
  /** SHA-256 of the public key's SPKI, to pair keys with certificates without keeping key bytes around. */
  publicSpki: string;
}

/** The SHA-256 of a public key's SPKI: pairs keys with certificates. */
export function spkiSha256(key: KeyObject): string {
  return sha256Hex(key.export({ type: "spki", format: "der" }));
}

export function keyFact(key: KeyObject, path: string): KeyFact {
  return {
    path,
    keyType: describeKey(key),
    keyBits: keyBits(key),
    publicSpki: spkiSha256(createPublicKey(key)),
  };
}
