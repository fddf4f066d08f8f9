import type { KeyObject } from "node:crypto";
import { InputError } from "../errors.js";

/** kubeadm's encryptionAlgorithm values (v1beta4), the names users already type. */
export const KEY_ALGORITHMS = ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** kubepki's default: ECDSA P-256 is fast to make and every Kubernetes component accepts it. */
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = "ECDSA-P256";

export function parseKeyAlgorithm(value: string, field = "algorithm"): KeyAlgorithm {
  const found = KEY_ALGORITHMS.find((a) => a.toLowerCase() === value.trim().toLowerCase());
  if (!found)
    throw new InputError(
      `${field}: unknown key algorithm "${value}"; use one of ${KEY_ALGORITHMS.join(", ")}`,
    );
  return found;
}

/** Describes an existing key in the same vocabulary; undefined for anything else (Ed25519, DSA, odd sizes). */
export function algorithmOfKey(key: KeyObject): KeyAlgorithm | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === "rsa") {
    const name = `RSA-${d?.modulusLength}`;
    return (KEY_ALGORITHMS as readonly string[]).includes(name) ? (name as KeyAlgorithm) : undefined;
  }
  if (key.asymmetricKeyType === "ec") {
    if (d?.namedCurve === "prime256v1") return "ECDSA-P256";
    if (d?.namedCurve === "secp384r1") return "ECDSA-P384";
  }
  return undefined;
}

/** A human label for any key: "RSA-1024", "ECDSA-P256", "ed25519". */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === "rsa") return `RSA-${d?.modulusLength}`;
  if (key.asymmetricKeyType === "ec") {
    const curves: Record<string, string> = { prime256v1: "P256", secp384r1: "P384", secp521r1: "P521" };
    return `ECDSA-${curves[d?.namedCurve ?? ""] ?? d?.namedCurve}`;
  }
  return key.asymmetricKeyType ?? "unknown";
}

const CURVE_BITS: Record<string, number> = {
  prime256v1: 256,
  secp384r1: 384,
  secp521r1: 521,
  secp224r1: 224,
  prime192v1: 192,
  secp256k1: 256,
};

/** Key size in bits (RSA modulus, EC curve, Ed25519); undefined when unknown. */
export function keyBits(key: KeyObject): number | undefined {
  const d = key.asymmetricKeyDetails;
  if (d?.modulusLength) return d.modulusLength;
  if (d?.namedCurve) return CURVE_BITS[d.namedCurve];
  return key.asymmetricKeyType === "ed25519" ? 256 : undefined;
}

/**
 * WebCrypto parameters for a key. The signature algorithm follows the issuer's key as Go's
 * crypto/x509 picks it: RSA -> sha256WithRSAEncryption, P-256 -> ecdsa-with-SHA256,
 * P-384 -> ecdsa-with-SHA384.
 */
export function webCryptoParams(key: KeyObject): {
  importParams: RsaHashedImportParams | EcKeyImportParams;
  signParams: Algorithm | EcdsaParams;
} {
  if (key.asymmetricKeyType === "rsa") {
    return {
      importParams: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      signParams: { name: "RSASSA-PKCS1-v1_5" },
    };
  }
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1")
      return {
        importParams: { name: "ECDSA", namedCurve: "P-256" },
        signParams: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
      };
    if (curve === "secp384r1")
      return {
        importParams: { name: "ECDSA", namedCurve: "P-384" },
        signParams: { name: "ECDSA", hash: "SHA-384" } as EcdsaParams,
      };
  }
  throw new InputError(
    `unsupported key type ${describeKey(key)}: kubepki signs with RSA or ECDSA P-256/P-384`,
  );
}
