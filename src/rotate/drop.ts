import { join, relative } from "node:path";
import { InputError } from "../errors.js";
import { MODE_CERT, MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { isInside, readFileLimited } from "../fsx/read.js";
import { backupTargets } from "../pki/backup.js";
import type { RotationId } from "../pki/catalog.js";
import { replaceKubeconfigCa } from "../pki/kubeconfig.js";
import type { CertInfo } from "../x509/parse.js";
import { signedBy } from "../x509/verify.js";
import type { PhaseContext } from "./context.js";
import { certFiles, kubeconfigFiles, kubeconfigView } from "./inventory.js";
import { bundleText, type Generation, generationsIn, isSa, rotationFiles } from "./material.js";
import { leafOf } from "./sign.js";
import { restartFor } from "./steps.js";

/**
 * Phase 3: the old CA is trusted no more. Bundles and kubeconfigs keep only the new CA; the old
 * certificate and key go to the backups. Refused while a certificate of the node still chains only
 * to the old CA (it would stop working), unless --force.
 */
export function dropPhase(ctx: PhaseContext, id: RotationId): void {
  const rot = ctx.state.cas[id];
  if (!rot) throw new Error(`internal: no rotation of ${id}`);
  const [old] = generationsIn(id, rot.old, "rotation.json");
  if (!old) throw new Error("internal: rotation.json lacks the old CA");
  if (old.cert) refuseStillOld(ctx, id, old.cert);
  const f = rotationFiles(ctx.paths, id);
  const bundled = ctx.ws.read(f.bundle);
  const kept = (bundled ? generationsIn(id, bundled, f.bundle) : []).filter((g) => g.sha256 !== old.sha256);
  if (kept.length > 0) ctx.ws.write(f.bundle, bundleText(kept), isSa(id) ? MODE_KEY : MODE_CERT);
  if (id === "ca") dropFromKubeconfigs(ctx, old);
  backUpOldPair(ctx, [f.cert, f.key]);
  for (const c of restartFor(id, "drop")) ctx.restart.add(c);
  rot.phase = "drop";
  rot.at.drop = ctx.now.toISOString();
}

/** Certificates of the node the old CA signed: they stop working at drop. */
export function stillSignedBy(ctx: PhaseContext, id: RotationId, old: CertInfo): string[] {
  return certFiles(ctx.paths)
    .filter((c) => c.ca === id)
    .filter((c) => {
      const cert = leafOf(ctx, c);
      return cert !== undefined && signedBy(cert, old);
    })
    .map((c) => `${c.name} (${c.path})`);
}

function refuseStillOld(ctx: PhaseContext, id: RotationId, old: CertInfo): void {
  const still = stillSignedBy(ctx, id, old);
  if (still.length === 0) return;
  const list = still.join("\n  - ");
  if (!ctx.force)
    throw new InputError(
      `drop refused: these certificates on the node chain only to the old ${id} and would stop working:\n  - ${list}\nrun --phase sign (with --from or --offline-dir where the new key is), or --force to drop anyway`,
    );
  ctx.notes.push(
    `--force: these certificates chain only to the old ${id} and stop working now:\n  - ${list}`,
  );
}

function dropFromKubeconfigs(ctx: PhaseContext, old: Generation): void {
  for (const k of kubeconfigFiles(ctx.paths)) {
    const text = ctx.ws.read(k.path);
    const caPem = text === undefined ? undefined : kubeconfigView(ctx.ws, k.path)?.caPem;
    if (text === undefined || caPem === undefined) continue;
    const gens = generationsIn("ca", caPem, `${k.path} certificate-authority-data`);
    const kept = gens.filter((g) => g.sha256 !== old.sha256);
    if (kept.length === gens.length || kept.length === 0) continue;
    ctx.ws.write(k.path, replaceKubeconfigCa(text, k.path, bundleText(kept)), MODE_KEY);
  }
}

/** The old CA's certificate and key, as the session kept them before sign replaced them, into the backups. */
function backUpOldPair(ctx: PhaseContext, files: string[]): void {
  const targets = backupTargets(ctx.paths, ctx.now);
  for (const path of files) {
    const entry = ctx.state.session?.files.find((e) => e.path === path);
    const data = entry?.copy ? readFileLimited(entry.copy) : undefined;
    const t = targets.find((b) => isInside(b.base, path));
    if (!data || !t) continue;
    ctx.ws.write(
      join(t.dir, relative(t.base, path)),
      data.toString("utf8"),
      entry?.mode ?? MODE_KEY,
      MODE_OFFLINE_DIR,
    );
    ctx.notes.push(`the old ${relative(t.base, path)} is kept in ${t.dir}`);
  }
}
