/**
 * Just enough DER to read what crypto.X509Certificate (Node 20) does not expose: the signature
 * algorithm of a certificate. Bounds-checked; returns undefined on anything malformed.
 */
function tlv(buf: Uint8Array, off: number): { tag: number; start: number; end: number } | undefined {
  if (off + 2 > buf.length) return undefined;
  const tag = buf[off] ?? 0;
  let len = buf[off + 1] ?? 0;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > buf.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] ?? 0);
    start += n;
  }
  const end = start + len;
  return end > buf.length ? undefined : { tag, start, end };
}

function oidToString(bytes: Uint8Array): string {
  const parts: number[] = [];
  let value = 0;
  for (const [i, b] of bytes.entries()) {
    if (i === 0) {
      parts.push(Math.min(2, Math.floor(b / 40)), b - Math.min(2, Math.floor(b / 40)) * 40);
      continue;
    }
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** OID of Certificate.signatureAlgorithm. */
export function signatureAlgorithmOid(der: Uint8Array): string | undefined {
  const cert = tlv(der, 0);
  if (cert?.tag !== 0x30) return undefined;
  const tbs = tlv(der, cert.start);
  if (!tbs) return undefined;
  const alg = tlv(der, tbs.end);
  if (alg?.tag !== 0x30) return undefined;
  const oid = tlv(der, alg.start);
  if (oid?.tag !== 0x06) return undefined;
  return oidToString(der.subarray(oid.start, oid.end));
}

export const SIGNATURE_ALGORITHMS: Record<string, string> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.113549.1.1.10": "rsassaPss",
  "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
  "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
  "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
  "1.2.840.10040.4.3": "dsa-with-SHA1",
  "1.3.101.112": "ED25519",
};

export function signatureAlgorithmName(der: Uint8Array): string {
  const oid = signatureAlgorithmOid(der);
  return oid ? (SIGNATURE_ALGORITHMS[oid] ?? oid) : "unknown";
}
