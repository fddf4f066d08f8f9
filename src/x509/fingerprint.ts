import { createHash } from "node:crypto";

export function sha256Hex(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

/** "AB:CD:..." as openssl x509 -fingerprint -sha256 prints it. */
export function sha256Fingerprint(der: Uint8Array): string {
  return sha256Hex(der).toUpperCase().match(/.{2}/g)?.join(":") ?? "";
}

/** The user.extra key under which kube-apiserver 1.32+ puts a request's credential id. */
export const CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id";

/**
 * The credential id kube-apiserver (v1.32+) attaches to requests authenticated by a client
 * certificate: user.extra["authentication.kubernetes.io/credential-id"].
 */
export function credentialId(der: Uint8Array): string {
  return `X509SHA256=${sha256Hex(der)}`;
}
