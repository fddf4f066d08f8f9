/**
 * Just enough DER to read what node:crypto's X509Certificate does not expose (the signature
 * algorithm, raw names, KeyUsage bits, pathLenConstraint, key identifiers, criticality). Every read
 * is bounds-checked and returns undefined on anything malformed.
 */
export interface Tlv {
  tag: number;
  /** First byte of the header. */
  at: number;
  /** First byte of the value. */
  start: number;
  end: number;
}

export function tlv(buf: Uint8Array, off: number, limit = buf.length): Tlv | undefined {
  if (off + 2 > limit) return undefined;
  const tag = buf[off] ?? 0;
  let len = buf[off + 1] ?? 0;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] ?? 0);
    start += n;
  }
  const end = start + len;
  return end > limit ? undefined : { tag, at: off, start, end };
}

/** The elements inside a constructed value; undefined when they do not fill it exactly. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  for (let off = parent.start; off < parent.end; ) {
    const t = tlv(buf, off, parent.end);
    if (!t) return undefined;
    out.push(t);
    off = t.end;
  }
  return out;
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

const TAG = { boolean: 0x01, integer: 0x02, bitString: 0x03, octetString: 0x04, oid: 0x06, seq: 0x30 };

export interface RawExtension {
  oid: string;
  critical: boolean;
  /** The extnValue contents (the DER of the extension's own structure). */
  value: Buffer;
}

/** The parts of a certificate kubepki reads from DER. */
export interface CertificateDer {
  /** Lowercase hex of the serial without DER's sign byte (as openssl prints it). */
  serialHex: string;
  issuer: Buffer;
  subject: Buffer;
  signatureOid: string;
  extensions: RawExtension[];
}

function readExtension(buf: Buffer, ext: Tlv): RawExtension | undefined {
  const parts = children(buf, ext);
  const [oid, second, third] = parts ?? [];
  if (oid?.tag !== TAG.oid) return undefined;
  const critical = second?.tag === TAG.boolean && buf[second.start] !== 0;
  const value = second?.tag === TAG.boolean ? third : second;
  if (value?.tag !== TAG.octetString) return undefined;
  return {
    oid: oidToString(buf.subarray(oid.start, oid.end)),
    critical,
    value: buf.subarray(value.start, value.end),
  };
}

function readExtensions(buf: Buffer, tagged: Tlv | undefined): RawExtension[] | undefined {
  if (!tagged) return [];
  const [seq] = children(buf, tagged) ?? [];
  if (seq?.tag !== TAG.seq) return undefined;
  const out: RawExtension[] = [];
  for (const e of children(buf, seq) ?? []) {
    const ext = readExtension(buf, e);
    if (!ext) return undefined;
    out.push(ext);
  }
  return out;
}

export function readCertificateDer(der: Buffer): CertificateDer | undefined {
  const cert = tlv(der, 0);
  if (cert?.tag !== TAG.seq) return undefined;
  const [tbs, alg] = children(der, cert) ?? [];
  if (tbs?.tag !== TAG.seq || alg?.tag !== TAG.seq) return undefined;
  const fields = children(der, tbs) ?? [];
  const body = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  const [serial, , issuer, , subject] = body;
  const algOid = children(der, alg)?.[0];
  if (serial?.tag !== TAG.integer || issuer?.tag !== TAG.seq || subject?.tag !== TAG.seq) return undefined;
  if (algOid?.tag !== TAG.oid) return undefined;
  const extensions = readExtensions(
    der,
    body.find((f) => f.tag === 0xa3),
  );
  if (!extensions) return undefined;
  return {
    serialHex: der
      .subarray(serial.start + (der[serial.start] === 0 && serial.end - serial.start > 1 ? 1 : 0), serial.end)
      .toString("hex"),
    issuer: der.subarray(issuer.at, issuer.end),
    subject: der.subarray(subject.at, subject.end),
    signatureOid: oidToString(der.subarray(algOid.start, algOid.end)),
    extensions,
  };
}

function decodeString(tag: number, bytes: Buffer): string {
  // BMPString is UCS-2 big-endian; an odd length is malformed.
  if (tag === 0x1e) return bytes.length % 2 === 0 ? Buffer.from(bytes).swap16().toString("utf16le") : "";
  return bytes.toString(tag === 0x14 ? "latin1" : "utf8");
}

/** The attributes of a DER Name in order: [{ oid: "2.5.4.3", value: "kube-apiserver" }, ...]. */
export function readName(der: Buffer): { oid: string; value: string }[] {
  const name = tlv(der, 0);
  if (name?.tag !== TAG.seq) return [];
  const out: { oid: string; value: string }[] = [];
  for (const rdn of children(der, name) ?? [])
    for (const atv of children(der, rdn) ?? []) {
      const [oid, value] = children(der, atv) ?? [];
      if (oid?.tag !== TAG.oid || !value) continue;
      out.push({
        oid: oidToString(der.subarray(oid.start, oid.end)),
        value: decodeString(value.tag, der.subarray(value.start, value.end)),
      });
    }
  return out;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
export function readBasicConstraints(v: Buffer): { ca: boolean; pathLen?: number } {
  const seq = tlv(v, 0);
  if (seq?.tag !== TAG.seq) return { ca: false };
  let ca = false;
  let pathLen: number | undefined;
  for (const c of children(v, seq) ?? []) {
    if (c.tag === TAG.boolean) ca = v[c.start] !== 0;
    if (c.tag === TAG.integer && c.end - c.start <= 4)
      pathLen = v.subarray(c.start, c.end).readUIntBE(0, c.end - c.start);
  }
  return { ca, pathLen };
}

/** KeyUsage BIT STRING: the numbers of the bits set (0 = digitalSignature ... 8 = decipherOnly). */
export function readBitNumbers(v: Buffer): number[] {
  const bits = tlv(v, 0);
  if (bits?.tag !== TAG.bitString) return [];
  const out: number[] = [];
  for (let i = bits.start + 1; i < bits.end; i++)
    for (let b = 0; b < 8; b++) if ((v[i] ?? 0) & (0x80 >> b)) out.push((i - bits.start - 1) * 8 + b);
  return out;
}

/** ExtKeyUsageSyntax ::= SEQUENCE OF OBJECT IDENTIFIER */
export function readOidSequence(v: Buffer): string[] {
  const seq = tlv(v, 0);
  if (seq?.tag !== TAG.seq) return [];
  return (children(v, seq) ?? [])
    .filter((c) => c.tag === TAG.oid)
    .map((c) => oidToString(v.subarray(c.start, c.end)));
}

/** SubjectKeyIdentifier (an OCTET STRING) or AuthorityKeyIdentifier's [0] keyIdentifier. */
export function readKeyIdentifier(v: Buffer, kind: "subject" | "authority"): Buffer | undefined {
  const outer = tlv(v, 0);
  if (kind === "subject")
    return outer?.tag === TAG.octetString ? v.subarray(outer.start, outer.end) : undefined;
  if (outer?.tag !== TAG.seq) return undefined;
  const id = children(v, outer)?.find((c) => c.tag === 0x80);
  return id ? v.subarray(id.start, id.end) : undefined;
}

/** GeneralNames: the dNSName ([2]) and iPAddress ([7]) entries. */
export function readGeneralNames(v: Buffer): { dns: string[]; ips: Buffer[] } {
  const seq = tlv(v, 0);
  const out = { dns: [] as string[], ips: [] as Buffer[] };
  if (seq?.tag !== TAG.seq) return out;
  for (const c of children(v, seq) ?? []) {
    if (c.tag === 0x82) out.dns.push(v.subarray(c.start, c.end).toString("latin1"));
    if (c.tag === 0x87) out.ips.push(v.subarray(c.start, c.end));
  }
  return out;
}

/** OID of Certificate.signatureAlgorithm. */
export function signatureAlgorithmOid(der: Buffer): string | undefined {
  return readCertificateDer(der)?.signatureOid;
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

export function algorithmNameOfOid(oid: string | undefined): string {
  return oid ? (SIGNATURE_ALGORITHMS[oid] ?? oid) : "unknown";
}

export function signatureAlgorithmName(der: Buffer): string {
  return algorithmNameOfOid(signatureAlgorithmOid(der));
}
