import { createPublicKey, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { exists, readTextLimited } from "../fsx/read.js";
import { caEntry, nextCaFiles, type RotationId, SIGNING_FILES, TRUST_BUNDLES } from "../pki/catalog.js";
import type { TreePaths } from "../pki/paths.js";
import { BACKDATE_MS, caTemplate } from "../pki/profiles.js";
import { algorithmOfKey, DEFAULT_KEY_ALGORITHM } from "../x509/algorithms.js";
import { issueCertificate } from "../x509/certificate.js";
import { generateKeyPair } from "../x509/keygen.js";
import { keysMatch, parsePrivateKeyPem, privateKeyToPem, publicKeyToPem, spkiSha256 } from "../x509/keys.js";
import { type CertInfo, parseCertificatesPem } from "../x509/parse.js";
import { decodePem, encodePem } from "../x509/pem.js";
import { publishedDir } from "./state.js";

/** One generation of a CA (or of the service-account key pair): what trust files hold. */
export interface Generation {
  pem: string;
  sha256: string;
  publicKey: KeyObject;
  /** X.509 CAs only. */
  cert?: CertInfo;
}

/** A generation with its private key (PEM): what signs. */
export interface SigningPair {
  gen: Generation;
  keyPem: string;
  key: KeyObject;
}

export const isSa = (id: RotationId) => id === "sa";

/** Every generation a trust file holds: certificates, or (sa) public keys. */
export function generationsIn(id: RotationId, text: string, source: string): Generation[] {
  if (!isSa(id))
    return parseCertificatesPem(text, source).map((c) => ({
      pem: c.pem,
      sha256: c.sha256,
      publicKey: c.publicKey,
      cert: c,
    }));
  return decodePem(text, source)
    .filter((b) => b.label === "PUBLIC KEY")
    .map((b) => publicGeneration(createPublicKey({ key: b.der, format: "der", type: "spki" })));
}

function publicGeneration(key: KeyObject): Generation {
  return { pem: publicKeyToPem(key), sha256: spkiSha256(key), publicKey: key };
}

export function samePem(a: Generation[], b: Generation[]): boolean {
  return a.length === b.length && a.every((g, i) => g.sha256 === b[i]?.sha256);
}

export function bundleText(gens: Generation[]): string {
  const seen = new Set<string>();
  return gens
    .filter((g) => !seen.has(g.sha256) && seen.add(g.sha256))
    .map((g) => g.pem)
    .join("");
}

/** Host paths of a rotation's files: the signing pair, the next pair, the trust bundle. */
export function rotationFiles(p: TreePaths, id: RotationId) {
  const s = SIGNING_FILES[id];
  const n = nextCaFiles(id);
  const offlineKey = p.offlineDir ? join(p.offlineDir, "pki", s.key) : undefined;
  const keyOffline = !exists(join(p.pkiDir, s.key)) && offlineKey !== undefined && exists(offlineKey);
  const keyDir = keyOffline && p.offlineDir ? join(p.offlineDir, "pki") : p.pkiDir;
  return {
    cert: join(p.pkiDir, s.cert),
    key: join(keyDir, s.key),
    keyOffline,
    nextCert: join(p.pkiDir, n.cert),
    nextKey: join(keyDir, n.key),
    bundle: join(p.pkiDir, TRUST_BUNDLES[id]),
  };
}

/**
 * The generation a signing file holds now. It must be exactly one certificate (kube-controller-manager
 * refuses more); sa.pub is derived from sa.key when absent.
 */
export function currentGeneration(
  id: RotationId,
  read: (p: string) => string | undefined,
  files: { cert: string; key: string },
): Generation {
  const text = read(files.cert);
  if (isSa(id) && text === undefined) {
    const keyText = read(files.key);
    if (keyText === undefined) throw new InputError(`no ${files.key} or ${files.cert}: nothing to rotate`);
    return publicGeneration(createPublicKey(parsePrivateKeyPem(keyText, files.key)));
  }
  if (text === undefined) throw new InputError(`no ${files.cert}: the ${label(id)} is not on this node`);
  const gens = generationsIn(id, text, files.cert);
  const [only] = gens;
  if (!only || gens.length !== 1)
    throw new InputError(
      `${files.cert} holds ${gens.length} ${isSa(id) ? "public keys" : "certificates"}; a signing file holds exactly one (put trust in ${TRUST_BUNDLES[id]})`,
    );
  return only;
}

export function label(id: RotationId): string {
  return isSa(id) ? "service-account key pair" : caEntry(id).longName;
}

/** A new CA like the old: same subject, profile, key algorithm and lifetime; a new key (so a new key id). */
export async function makeNext(id: RotationId, old: Generation, now: Date): Promise<SigningPair> {
  const alg = algorithmOfKey(old.publicKey) ?? DEFAULT_KEY_ALGORITHM;
  const kp = await generateKeyPair(alg);
  const keyPem = privateKeyToPem(kp.privateKey);
  if (!old.cert) return { gen: publicGeneration(kp.publicKey), keyPem, key: kp.privateKey };
  const lifetime = old.cert.notAfter.getTime() - old.cert.notBefore.getTime() - BACKDATE_MS;
  const tpl = caTemplate({ ...caEntry(id as never), commonName: old.cert.commonName }, now, lifetime);
  if (old.cert.organizations.length > 0) tpl.organizations = old.cert.organizations;
  const issued = await issueCertificate(tpl, kp.publicKey, { selfSigned: kp.privateKey });
  const gen = {
    pem: issued.pem,
    sha256: issued.cert.sha256,
    publicKey: issued.cert.publicKey,
    cert: issued.cert,
  };
  return { gen, keyPem, key: kp.privateKey };
}

/** The files of a published new CA, relative to `--from DIR`. */
export function publishedFiles(folder: string, id: RotationId): { cert: string; key: string } {
  const dir = publishedDir(folder, id);
  const base = isSa(id) ? "sa" : "ca";
  return { cert: join(dir, `${base}.${isSa(id) ? "pub" : "crt"}`), key: join(dir, `${base}.key`) };
}

/** The new CA another node published (`--from DIR`): its certificate and, when present, its key. */
export function readPublished(folder: string, id: RotationId): { gen: Generation; keyPem?: string } {
  const f = publishedFiles(folder, id);
  const text = readTextLimited(f.cert);
  if (text === undefined)
    throw new InputError(
      `--from ${folder}: no ${f.cert}; run \`rotate-ca --phase trust\` on the first node with this offline folder`,
    );
  const [gen, ...more] = generationsIn(id, text, f.cert);
  if (!gen || more.length > 0)
    throw new InputError(`${f.cert} must hold exactly one ${isSa(id) ? "key" : "certificate"}`);
  const keyPem = readTextLimited(f.key);
  if (keyPem !== undefined && !keysMatch(parsePrivateKeyPem(keyPem, f.key), gen.publicKey))
    throw new InputError(`${f.key} is not the private key of ${f.cert}`);
  return { gen, keyPem };
}

/** The new CA's signing pair, from the node, the offline folder or the folder it came from. */
export function nextSigningPair(
  gen: Generation,
  candidates: string[],
  read: (p: string) => string | undefined,
): SigningPair | undefined {
  for (const c of candidates) {
    const keyPem = read(c);
    if (keyPem === undefined) continue;
    const key = parsePrivateKeyPem(keyPem, c);
    if (keysMatch(key, gen.publicKey)) return { gen, keyPem, key };
  }
  return undefined;
}

export function pemOf(gen: Generation): string {
  return gen.cert ? encodePem("CERTIFICATE", gen.cert.der) : gen.pem;
}
