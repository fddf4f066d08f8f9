import { EKU_OIDS, type ExtKeyUsageName, OID } from "./oids.js";
import type { CertInfo } from "./parse.js";

/**
 * kubepki's one chain check, an RFC 5280 section 6 path check used by init, renew, the webhook's
 * set-up and the audit alike. No JavaScript library does this whole (docs/stack.md, "No library checks a whole path":
 * @peculiar/x509 only links signatures, pkijs ignores pathLenConstraint), so kubepki keeps its own
 * and test/verify.test.ts holds it against `openssl verify`. Native crypto, so it stays cheap on the
 * audit's large trees.
 *
 * Checked for every certificate on the path: signature by the next one (byte-equal names), validity
 * window at `at`, no unknown critical extension. For every issuer: CA:TRUE, keyCertSign when KeyUsage
 * is present, pathLenConstraint. With a purpose: the leaf's and every issuer's EKU (when present)
 * must allow it, as OpenSSL's -purpose does, and the leaf's KeyUsage must allow TLS.
 */
export interface VerifyOptions {
  at?: Date;
  purpose?: ExtKeyUsageName;
  maxDepth?: number;
  /**
   * Whose validity window counts: "all" (default, as openssl verify) or "issuers" (the audit, which
   * reports an expired leaf under its own rule and asks here only whether the chain holds).
   */
  validity?: "all" | "issuers";
}

export type VerifyResult = { ok: true; path: CertInfo[] } | { ok: false; reason: string };

const HANDLED_CRITICAL = new Set<string>([
  OID.keyUsage,
  OID.basicConstraints,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
]);

/** `issuer` signed `child`: byte-equal names and a signature that verifies with the issuer's key. */
export function signedBy(child: CertInfo, issuer: CertInfo): boolean {
  if (!child.issuerDer.equals(issuer.subjectDer)) return false;
  try {
    return child.x509.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function findIssuer(child: CertInfo, candidates: CertInfo[]): CertInfo | undefined {
  return candidates.find((c) => signedBy(child, c));
}

/** Builds upward: a trust anchor first, else an untrusted intermediate whose signature holds. */
function buildPath(
  leaf: CertInfo,
  anchors: CertInfo[],
  intermediates: CertInfo[],
  maxDepth: number,
): VerifyResult {
  const path: CertInfo[] = [leaf];
  for (let current = leaf; ; ) {
    const anchor = findIssuer(current, anchors);
    if (anchor) {
      if (anchor.sha256 !== current.sha256) path.push(anchor);
      return { ok: true, path };
    }
    const next = findIssuer(
      current,
      intermediates.filter((c) => !path.includes(c)),
    );
    if (!next)
      return {
        ok: false,
        reason: `unable to get local issuer certificate for "${current.commonName}" (issuer "${current.issuerCommonName}")`,
      };
    path.push(next);
    current = next;
    if (path.length > maxDepth) return { ok: false, reason: "certificate chain too long" };
  }
}

/** The per-certificate rules; undefined when the certificate at position `i` of the path passes. */
function certificateProblem(cert: CertInfo, i: number, at: Date, opts: VerifyOptions): string | undefined {
  const name = `"${cert.commonName}"`;
  if (i > 0 || opts.validity !== "issuers") {
    if (at < cert.notBefore) return `${name} is not yet valid`;
    if (at > cert.notAfter) return `${name} has expired`;
  }
  const unknown = cert.extensions.find((e) => e.critical && !HANDLED_CRITICAL.has(e.oid));
  if (unknown) return `${name} has unhandled critical extension ${unknown.oid}`;
  if (i === 0) return undefined;
  if (!cert.isCA) return `${name} is not a CA (invalid CA certificate)`;
  if (cert.keyUsage && !cert.keyUsage.includes("keyCertSign"))
    return `${name} may not sign certificates (no keyCertSign)`;
  // Intermediates below this issuer, not counting the leaf (RFC 5280 4.2.1.9).
  if (cert.pathLen !== undefined && i - 1 > cert.pathLen) return `path length constraint of ${name} exceeded`;
  return undefined;
}

function purposeProblem(path: CertInfo[], purpose: ExtKeyUsageName): string | undefined {
  const oid = EKU_OIDS[purpose];
  for (const cert of path) {
    const eku = cert.extKeyUsageOids;
    if (eku && !eku.includes(oid) && !eku.includes(OID.anyExtendedKeyUsage))
      return `"${cert.commonName}" is not allowed for ${purpose} (extended key usage)`;
  }
  const leaf = path[0];
  const ku = leaf?.keyUsage;
  const tlsUsable = !ku || ku.includes("digitalSignature") || ku.includes("keyEncipherment");
  return tlsUsable ? undefined : `"${leaf?.commonName}" key usage does not allow TLS`;
}

/** Does `leaf` chain to one of `anchors`, through `intermediates` if need be, under RFC 5280's rules? */
export function verifyPath(
  leaf: CertInfo,
  anchors: CertInfo[],
  intermediates: CertInfo[] = [],
  opts: VerifyOptions = {},
): VerifyResult {
  const at = opts.at ?? new Date();
  const built = buildPath(leaf, anchors, intermediates, opts.maxDepth ?? 10);
  if (!built.ok) return built;
  for (const [i, cert] of built.path.entries()) {
    const reason = certificateProblem(cert, i, at, opts);
    if (reason) return { ok: false, reason };
  }
  const reason = opts.purpose && purposeProblem(built.path, opts.purpose);
  return reason ? { ok: false, reason } : built;
}
