import type { CertificateTemplate, ExtKeyUsageName } from "../x509/certificate.js";
import type { CaEntry } from "./catalog.js";
import type { SanSet } from "./spec.js";

/** kubeadm backdates every certificate by five minutes against clock skew (CertificateBackdate). */
export const BACKDATE_MS = 5 * 60 * 1000;

/**
 * CA profile as kubeadm's NewSelfSignedCACert, plus cRLSign: kubepki signs CRLs with these CAs, and
 * OpenSSL refuses a CRL whose issuer's KeyUsage lacks cRLSign. (A deliberate difference; README.)
 */
export function caTemplate(ca: CaEntry, start: Date, validityMs: number): CertificateTemplate {
  return {
    commonName: ca.commonName,
    isCA: true,
    keyUsage: ["digitalSignature", "keyEncipherment", "keyCertSign", "cRLSign"],
    extKeyUsage: [],
    dnsNames: [ca.commonName],
    notBefore: new Date(start.getTime() - BACKDATE_MS),
    notAfter: new Date(start.getTime() + validityMs),
  };
}

export interface LeafProfile {
  commonName: string;
  organizations: string[];
  extKeyUsage: ExtKeyUsageName[];
  sans: SanSet;
}

/**
 * Leaf profile as kubeadm's NewSignedCert: digitalSignature|keyEncipherment (even for ECDSA keys),
 * CA:FALSE. A leaf never outlives its CA: notAfter is cut to the CA's.
 */
export function leafTemplate(
  profile: LeafProfile,
  start: Date,
  validityMs: number,
  caNotAfter: Date,
): CertificateTemplate {
  const notAfter = Math.min(start.getTime() + validityMs, caNotAfter.getTime());
  return {
    commonName: profile.commonName,
    organizations: profile.organizations,
    isCA: false,
    keyUsage: ["digitalSignature", "keyEncipherment"],
    extKeyUsage: profile.extKeyUsage,
    dnsNames: profile.sans.dns,
    ipAddresses: profile.sans.ips,
    notBefore: new Date(start.getTime() - BACKDATE_MS),
    notAfter: new Date(notAfter),
  };
}
