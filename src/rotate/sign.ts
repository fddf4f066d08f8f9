import type { KeyObject } from "node:crypto";
import { MODE_CERT, MODE_KEY } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import type { RotationId } from "../pki/catalog.js";
import { parseKubeconfig, replaceKubeconfigCredentials } from "../pki/kubeconfig.js";
import { BACKDATE_MS, leafTemplate } from "../pki/profiles.js";
import { algorithmOfKey, DEFAULT_KEY_ALGORITHM } from "../x509/algorithms.js";
import { issueCertificate } from "../x509/certificate.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { generateKeyPair } from "../x509/keygen.js";
import { privateKeyToPem } from "../x509/keys.js";
import { type CertInfo, extKeyUsageNames, parseCertificatesPem } from "../x509/parse.js";
import { signedBy } from "../x509/verify.js";
import type { PhaseContext } from "./context.js";
import { type CertFile, certFiles, kubeconfigView } from "./inventory.js";
import {
  type Generation,
  generationsIn,
  isSa,
  label,
  nextSigningPair,
  pemOf,
  publishedFiles,
  rotationFiles,
  type SigningPair,
} from "./material.js";
import { restartFor } from "./steps.js";

/**
 * Phase 2: the new CA signs. The signing files become the new pair, and every certificate of the
 * node the old CA signed is issued again by the new one with its subject, SANs and usages.
 */
export async function signPhase(ctx: PhaseContext, id: RotationId): Promise<void> {
  const { ws, paths } = ctx;
  const rot = ctx.state.cas[id];
  if (!rot) throw new Error(`internal: no rotation of ${id}`);
  const f = rotationFiles(paths, id);
  const [next] = generationsIn(id, rot.next, "rotation.json");
  const [old] = generationsIn(id, rot.old, "rotation.json");
  if (!next || !old) throw new Error("internal: rotation.json lacks a CA");
  const pair = newPair(ctx, id, next);
  ws.write(f.cert, pemOf(next), isSa(id) ? MODE_KEY : MODE_CERT);
  // The key goes where the old one was; a node without the old key (a worker) gets none.
  if (pair && exists(f.key)) ws.write(f.key, pair.keyPem, MODE_KEY);
  else if (!pair && exists(f.key))
    ctx.left.push(
      `${id}: the new ${label(id)}'s key is nowhere here; pass --from <offline folder> (or --offline-dir)`,
    );
  ws.remove(f.nextCert);
  ws.remove(f.nextKey);
  if (next.cert)
    ctx.issued.push({ der: next.cert.der, issuerDer: next.cert.der, profile: "ca", path: f.cert });
  const issued = !isSa(id) && old.cert ? await reissueAll(ctx, id, old.cert, pair) : [];
  for (const c of restartFor(id, "sign")) ctx.restart.add(c);
  if (id === "ca" && ctx.ws.changed().some((p) => p.startsWith(`${paths.configDir}/`) && p.endsWith(".crt")))
    ctx.notes.push(
      "kubepki's webhook pairs were issued again: a running kubepki serve re-reads them and the trust bundle within a second, no restart needed",
    );
  rot.phase = "sign";
  rot.at.sign = ctx.now.toISOString();
  rot.issued = issued;
}

/** The new CA's key: waiting beside the old key, in the offline folder, or where --from points. */
function newPair(ctx: PhaseContext, id: RotationId, next: Generation): SigningPair | undefined {
  const f = rotationFiles(ctx.paths, id);
  const folders = [ctx.paths.offlineDir, ctx.from, ctx.state.cas[id]?.from];
  const candidates = [f.nextKey, f.key, ...folders.flatMap((d) => (d ? [publishedFiles(d, id).key] : []))];
  return nextSigningPair(next, candidates, (p) => ctx.ws.read(p));
}

/**
 * sign run again after it left certificates of the old CA (the new key was not here): those are
 * issued now, when the key is (--from). Returns whether there was anything to do.
 */
export async function signLeftovers(ctx: PhaseContext, id: RotationId): Promise<boolean> {
  const rot = ctx.state.cas[id];
  const [next] = rot ? generationsIn(id, rot.next, "rotation.json") : [];
  const [old] = rot ? generationsIn(id, rot.old, "rotation.json") : [];
  if (!rot || !next || !old?.cert || rot.phase !== "sign") return false;
  const oldCert = old.cert;
  if (!certFiles(ctx.paths).some((c) => c.ca === id && isSignedBy(ctx, c, oldCert))) return false;
  const issued = await reissueAll(ctx, id, oldCert, newPair(ctx, id, next));
  rot.issued = [...(rot.issued ?? []), ...issued];
  for (const c of restartFor(id, "sign")) ctx.restart.add(c);
  return true;
}

function isSignedBy(ctx: PhaseContext, file: CertFile, ca: CertInfo): boolean {
  const cert = leafOf(ctx, file);
  return cert !== undefined && signedBy(cert, ca);
}

/** Every certificate of the node that the old CA signed, issued again by the new one. */
async function reissueAll(
  ctx: PhaseContext,
  id: RotationId,
  old: CertInfo,
  pair: SigningPair | undefined,
): Promise<string[]> {
  const targets = certFiles(ctx.paths).filter((c) => c.ca === id);
  const found: { file: CertFile; cert: CertInfo }[] = [];
  for (const file of targets) {
    const cert = leafOf(ctx, file);
    if (cert && signedBy(cert, old)) found.push({ file, cert });
  }
  if (!pair) {
    for (const x of found)
      ctx.left.push(`${x.file.name}: signed by the old ${id}; the new key is not here to issue it again`);
    return [];
  }
  const signer = pair.gen.cert;
  if (!signer) return [];
  const fresh: string[] = [];
  await Promise.all(
    found.map(async ({ file, cert }) => {
      const { pem, der, keyPem } = await reissue(cert, signer, pair.key, ctx.now);
      writeReissued(ctx, file, pem, keyPem);
      ctx.issued.push({ der, issuerDer: signer.der, profile: profileOf(file), path: file.path });
      ctx.superseded.push(cert.sha256);
      fresh.push(sha256Hex(der));
    }),
  );
  return fresh;
}

export function leafOf(ctx: PhaseContext, file: CertFile): CertInfo | undefined {
  if (file.kind !== "kubeconfig")
    return ctx.ws.parse(file.path, "pem", (t) => parseCertificatesPem(t, file.path))?.[0];
  return ctx.ws.parse(file.path, "kubeconfig", (t) => parseKubeconfig(t, file.path))?.clientCert;
}

/** The same subject, SANs, usages and lifetime, a new key of the same algorithm, signed by the new CA. */
async function reissue(cert: CertInfo, signer: CertInfo, signerKey: KeyObject, now: Date) {
  const kp = await generateKeyPair(algorithmOfKey(cert.publicKey) ?? DEFAULT_KEY_ALGORITHM);
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime() - BACKDATE_MS;
  const tpl = leafTemplate(
    {
      commonName: cert.commonName,
      organizations: cert.organizations,
      extKeyUsage: extKeyUsageNames(cert),
      sans: { dns: cert.dnsNames, ips: cert.ipAddresses },
    },
    now,
    lifetime,
    signer.notAfter,
  );
  const issued = await issueCertificate(tpl, kp.publicKey, { certificate: signer, privateKey: signerKey });
  return { pem: issued.pem, der: issued.der, keyPem: privateKeyToPem(kp.privateKey) };
}

function writeReissued(ctx: PhaseContext, file: CertFile, pem: string, keyPem: string): void {
  const { ws } = ctx;
  if (file.kind === "pair" && file.keyPath) {
    ws.write(file.path, pem, MODE_CERT);
    ws.write(file.keyPath, keyPem, MODE_KEY);
  } else if (file.kind === "combined") ws.write(file.path, pem + keyPem, MODE_KEY);
  else {
    const text = ws.read(file.path) ?? "";
    const caPem = kubeconfigView(ws, file.path)?.caPem ?? "";
    ws.write(
      file.path,
      replaceKubeconfigCredentials(text, file.path, { caPem, clientCertPem: pem, clientKeyPem: keyPem }),
      MODE_KEY,
    );
  }
}

function profileOf(file: CertFile): string {
  return file.kind === "kubeconfig" ? `kubeconfig:${file.name}` : file.name;
}
