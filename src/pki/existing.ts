import type { KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { errorMessage, UnsafePathError } from "../errors.js";
import { canonicalIp } from "../x509/ip.js";
import { keysMatch, parsePrivateKeyPem } from "../x509/keys.js";
import { type CertInfo, parseCertificatesPem } from "../x509/parse.js";
import { verifyPath } from "../x509/verify.js";
import type { PairPaths } from "./paths.js";
import type { SanSet } from "./spec.js";

/** A certificate/key pair as found on disk, with what is wrong with it. */
export interface LoadedPair {
  cert?: CertInfo;
  chain: CertInfo[];
  key?: KeyObject;
  certExists: boolean;
  keyExists: boolean;
  problems: string[];
}

export function loadPair(
  paths: PairPaths,
  read: (path: string) => string | undefined,
  keyPath = paths.key,
): LoadedPair {
  const out: LoadedPair = { chain: [], certExists: false, keyExists: false, problems: [] };
  try {
    const text = read(paths.cert);
    if (text !== undefined) {
      out.certExists = true;
      const certs = parseCertificatesPem(text, paths.cert);
      out.cert = certs[0];
      out.chain = certs.slice(1);
    }
  } catch (err) {
    if (err instanceof UnsafePathError) throw err;
    out.certExists = true;
    out.problems.push(errorMessage(err));
  }
  try {
    const text = read(keyPath);
    if (text !== undefined) {
      out.keyExists = true;
      out.key = parsePrivateKeyPem(text, keyPath);
    }
  } catch (err) {
    if (err instanceof UnsafePathError) throw err;
    out.keyExists = true;
    out.problems.push(errorMessage(err));
  }
  if (out.cert && out.key && !keysMatch(out.key, out.cert.publicKey))
    out.problems.push(`${keyPath} is not the private key of ${paths.cert}`);
  return out;
}

/** kubeadm's rule: an existing leaf is kept only if it chains to its CA and covers every required SAN. */
export async function leafProblems(
  pair: LoadedPair,
  ca: CertInfo,
  required: SanSet,
  now: Date,
): Promise<string[]> {
  const problems = [...pair.problems];
  if (!pair.certExists) problems.push("the certificate is missing while its key exists");
  if (!pair.keyExists) problems.push("the key is missing while its certificate exists");
  const cert = pair.cert;
  if (!cert || problems.length > 0) return problems;
  // An expired leaf is only warned about (kubeadm: CheckCertificatePeriodValidity); check the chain inside its window.
  const at = now > cert.notAfter ? cert.notAfter : now < cert.notBefore ? cert.notBefore : now;
  const res = verifyPath(cert, [ca], pair.chain, { at });
  if (!res.ok) problems.push(`${cert.path} does not verify against ${ca.path}: ${res.reason}`);
  const missing = missingSans(cert, required);
  if (missing.length > 0)
    problems.push(`${cert.path} does not cover the required SANs ${missing.join(", ")}`);
  return problems;
}

export function missingSans(cert: Pick<CertInfo, "dnsNames" | "ipAddresses">, required: SanSet): string[] {
  const ips = new Set(cert.ipAddresses.map(canonicalIp));
  const missing = required.ips.filter((ip) => !ips.has(canonicalIp(ip)));
  for (const dns of required.dns) {
    if (isIP(dns) !== 0) continue;
    const covered = cert.dnsNames.some(
      (n) => n === dns || (n.startsWith("*.") && dns.split(".").slice(1).join(".") === n.slice(2)),
    );
    if (!covered) missing.push(dns);
  }
  return missing;
}
