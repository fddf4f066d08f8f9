import type { ExtKeyUsageName } from "./certificate.js";
import { EKU_OIDS } from "./certificate.js";
import type { CertInfo } from "./parse.js";

/**
 * An RFC 5280 section 6 path check. No JavaScript library does this whole (docs/stack.md, "No library checks a whole path":
 * @peculiar/x509 only links signatures, pkijs ignores pathLenConstraint), so kubepki keeps its own
 * and the tests hold it against `openssl verify`.
 *
 * Checked for every certificate on the path: signature by the next one, validity window at `at`,
 * no unknown critical extension. For every issuer: CA:TRUE, keyCertSign when KeyUsage is present,
 * pathLenConstraint. With a purpose: the leaf's and every issuer's EKU (when present) must allow it,
 * as OpenSSL's -purpose does, and a server or client leaf's KeyUsage must allow TLS.
 */
export interface VerifyOptions {
  at?: Date;
  purpose?: ExtKeyUsageName;
  maxDepth?: number;
}

export type VerifyResult = { ok: true; path: CertInfo[] } | { ok: false; reason: string };

const ANY_EKU = "2.5.29.37.0";
const HANDLED_CRITICAL = new Set([
  "2.5.29.15", // keyUsage
  "2.5.29.19", // basicConstraints
  "2.5.29.37", // extKeyUsage
  "2.5.29.17", // subjectAltName
  "2.5.29.14", // subjectKeyIdentifier
  "2.5.29.35", // authorityKeyIdentifier
]);

function nameKey(info: CertInfo, which: "subject" | "issuer"): string {
  const name = which === "subject" ? info.cert.subjectName : info.cert.issuerName;
  return Buffer.from(name.toArrayBuffer()).toString("hex");
}

async function signedBy(child: CertInfo, issuer: CertInfo): Promise<boolean> {
  if (nameKey(child, "issuer") !== nameKey(issuer, "subject")) return false;
  try {
    return await child.cert.verify({ publicKey: issuer.cert.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

export async function verifyPath(
  leaf: CertInfo,
  anchors: CertInfo[],
  intermediates: CertInfo[] = [],
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const at = opts.at ?? new Date();
  const maxDepth = opts.maxDepth ?? 10;
  const path: CertInfo[] = [leaf];
  let current = leaf;
  // Build upward: prefer a trust anchor, else an untrusted intermediate whose signature holds.
  for (;;) {
    const anchor = await findIssuer(current, anchors);
    if (anchor) {
      if (anchor.sha256 !== current.sha256) path.push(anchor);
      break;
    }
    const next = await findIssuer(
      current,
      intermediates.filter((c) => !path.includes(c)),
    );
    if (!next) {
      return {
        ok: false,
        reason: `unable to get local issuer certificate for "${current.commonName}" (issuer "${current.issuerCommonName}")`,
      };
    }
    path.push(next);
    current = next;
    if (path.length > maxDepth) return { ok: false, reason: "certificate chain too long" };
  }

  for (const [i, cert] of path.entries()) {
    if (at < cert.notBefore) return { ok: false, reason: `"${cert.commonName}" is not yet valid` };
    if (at > cert.notAfter) return { ok: false, reason: `"${cert.commonName}" has expired` };
    const unknown = cert.cert.extensions.find((e) => e.critical && !HANDLED_CRITICAL.has(e.type));
    if (unknown)
      return { ok: false, reason: `"${cert.commonName}" has unhandled critical extension ${unknown.type}` };
    if (i === 0) continue;
    if (!cert.isCA) return { ok: false, reason: `"${cert.commonName}" is not a CA (invalid CA certificate)` };
    if (cert.keyUsage && !cert.keyUsage.includes("keyCertSign"))
      return { ok: false, reason: `"${cert.commonName}" may not sign certificates (no keyCertSign)` };
    // Intermediates below this issuer, not counting the leaf (RFC 5280 4.2.1.9).
    if (cert.pathLen !== undefined && i - 1 > cert.pathLen)
      return { ok: false, reason: `path length constraint of "${cert.commonName}" exceeded` };
  }

  if (opts.purpose) {
    const oid = EKU_OIDS[opts.purpose];
    for (const cert of path) {
      const eku = cert.extKeyUsageOids;
      if (eku && !eku.includes(oid) && !eku.includes(ANY_EKU))
        return {
          ok: false,
          reason: `"${cert.commonName}" is not allowed for ${opts.purpose} (extended key usage)`,
        };
    }
    const ku = leaf.keyUsage;
    const tlsUsable = !ku || ku.includes("digitalSignature") || ku.includes("keyEncipherment");
    if (!tlsUsable) return { ok: false, reason: `"${leaf.commonName}" key usage does not allow TLS` };
  }
  return { ok: true, path };
}

async function findIssuer(child: CertInfo, candidates: CertInfo[]): Promise<CertInfo | undefined> {
  for (const c of candidates) if (await signedBy(child, c)) return c;
  return undefined;
}
