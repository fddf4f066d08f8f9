import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/*
 * kubeadm's `--certificate-key` encryption (cmd/kubeadm/app/util/crypto EncryptBytes), byte for
 * byte: AES-256-GCM, a random 12-byte nonce, no additional data, and the nonce prepended to the
 * sealed data (ciphertext, then the 16-byte tag), as Go's gcm.Seal(nonce, nonce, data, nil) lays it out.
 */

/** kubeadm's CertificateKeySize: 32 bytes, printed as 64 hexadecimal characters. */
export const CERTIFICATE_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export function newCertificateKey(): Buffer {
  return randomBytes(CERTIFICATE_KEY_BYTES);
}

/** The key as given on the command line, or undefined when it is not 64 hexadecimal characters. */
export function parseCertificateKey(hex: string): Buffer | undefined {
  const trimmed = hex.trim();
  return /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : undefined;
}

/** nonce || ciphertext || tag. */
export function sealBytes(data: Uint8Array, key: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  const body = Buffer.concat([cipher.update(data), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/**
 * The data sealed by `sealBytes` (or kubeadm's EncryptBytes); undefined when the key is wrong or a
 * single byte was changed (the GCM tag does not verify).
 */
export function openBytes(sealed: Uint8Array, key: Uint8Array): Buffer | undefined {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  const buf = Buffer.from(sealed);
  const nonce = buf.subarray(0, NONCE_BYTES);
  const tag = buf.subarray(buf.length - TAG_BYTES);
  const body = buf.subarray(NONCE_BYTES, buf.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined;
  }
}
