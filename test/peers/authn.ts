import { createPrivateKey, type KeyObject, sign, verify, type X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

/** Who a request is, as kube-apiserver's authenticators would say. */
export interface UserInfo {
  username: string;
  groups: string[];
  /** Which authenticator said so. */
  via: "x509" | "requestheader" | "serviceaccount";
}

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

/** The subject's CN and O values, as Go reads them (the last CN wins). */
export function subjectNames(cert: X509Certificate): { cn: string; o: string[] } {
  const lines = cert.subject.split("\n");
  const cns = lines.filter((l) => l.startsWith("CN=")).map((l) => l.slice(3));
  const os = lines.filter((l) => l.startsWith("O=")).map((l) => l.slice(2));
  return { cn: cns.at(-1) ?? "", o: os };
}

/**
 * True when `leaf` was issued by one of `cas` (signature checked), is valid now and allows
 * clientAuth: the check kube-apiserver's x509 authenticators make against one CA bundle.
 */
export function issuedByOneOf(leaf: X509Certificate, cas: X509Certificate[], now = new Date()): boolean {
  if (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo)) return false;
  const eku = leaf.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(CLIENT_AUTH)) return false;
  return cas.some((ca) => {
    try {
      return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
    } catch {
      return false;
    }
  });
}

interface JwtClaims {
  iss?: string;
  sub?: string;
  exp?: number;
  nbf?: number;
  aud?: string | string[];
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** The signing algorithm kube-apiserver uses for a key: RS256 for RSA, ES256/ES384 for P-256/P-384. */
function jwtAlg(key: KeyObject): { alg: string; hash: string } {
  if (key.asymmetricKeyType === "rsa") return { alg: "RS256", hash: "sha256" };
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === "prime256v1" || curve === "P-256") return { alg: "ES256", hash: "sha256" };
  if (curve === "secp384r1" || curve === "P-384") return { alg: "ES384", hash: "sha384" };
  throw new Error(`unsupported service-account key type ${key.asymmetricKeyType} ${curve ?? ""}`);
}

/** A service-account token signed with a private key file (sa.key), as kube-apiserver's TokenRequest mints it. */
export function mintServiceAccountToken(
  keyFile: string,
  opts: { namespace: string; name: string; issuer: string; ttlSeconds?: number },
): string {
  const key = createPrivateKey(readFileSync(keyFile));
  const { alg, hash } = jwtAlg(key);
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: opts.issuer,
    sub: `system:serviceaccount:${opts.namespace}:${opts.name}`,
    aud: [opts.issuer],
    iat: now,
    nbf: now - 5,
    exp: now + (opts.ttlSeconds ?? 3600),
    "kubernetes.io": { namespace: opts.namespace, serviceaccount: { name: opts.name } },
  };
  const input = `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign(hash, Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${b64url(sig)}`;
}

/** Verifies a service-account JWT against the keys of --service-account-key-file; the user or a reason. */
export function verifyServiceAccountToken(
  token: string,
  keys: KeyObject[],
  issuers: string[],
): { user?: UserInfo; reason?: string } {
  const parts = token.split(".");
  if (parts.length !== 3) return { reason: "not a JWT" };
  const [h, p, s] = parts as [string, string, string];
  let header: { alg?: string };
  let claims: JwtClaims;
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString());
    claims = JSON.parse(Buffer.from(p, "base64url").toString());
  } catch {
    return { reason: "malformed JWT" };
  }
  const ok = keys.some((key) => {
    try {
      const { alg, hash } = jwtAlg(key);
      if (alg !== header.alg) return false;
      return verify(
        hash,
        Buffer.from(`${h}.${p}`),
        { key, dsaEncoding: "ieee-p1363" },
        Buffer.from(s, "base64url"),
      );
    } catch {
      return false;
    }
  });
  if (!ok) return { reason: "signature matches no --service-account-key-file key" };
  const now = Date.now() / 1000;
  if (claims.exp !== undefined && now > claims.exp) return { reason: "expired" };
  if (claims.nbf !== undefined && now + 60 < claims.nbf) return { reason: "not yet valid" };
  if (issuers.length > 0 && !issuers.includes(claims.iss ?? "")) return { reason: `issuer ${claims.iss}` };
  if (!claims.sub?.startsWith("system:serviceaccount:")) return { reason: "not a service account" };
  const ns = claims.sub.split(":")[2] ?? "";
  return {
    user: {
      username: claims.sub,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"],
      via: "serviceaccount",
    },
  };
}
