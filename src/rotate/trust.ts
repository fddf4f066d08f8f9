import { InputError } from "../errors.js";
import { MODE_CERT, MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import type { RotationId } from "../pki/catalog.js";
import { replaceKubeconfigCa } from "../pki/kubeconfig.js";
import type { PhaseContext } from "./context.js";
import { certFiles, kubeconfigFiles, kubeconfigView } from "./inventory.js";
import {
  bundleText,
  currentGeneration,
  type Generation,
  generationsIn,
  isSa,
  label,
  makeNext,
  pemOf,
  publishedFiles,
  readPublished,
  rotationFiles,
} from "./material.js";
import { restartFor } from "./steps.js";
import { replaceYamlPath, wireTrust } from "./wiring.js";

/**
 * Phase 1: a new CA (or, with --from, the one the first node made), trusted beside the old one by
 * every trust file and kubeconfig of the node. The signing files are not touched.
 */
export async function trustPhase(ctx: PhaseContext, id: RotationId): Promise<void> {
  applyTrust(ctx, id, await prepareTrust(ctx, id));
}

export interface PreparedTrust {
  old: Generation;
  next: { gen: Generation; keyPem?: string };
}

/** The slow part, safe to run for several CAs at once: the new key and certificate (or --from's). */
export async function prepareTrust(ctx: PhaseContext, id: RotationId): Promise<PreparedTrust> {
  const f = rotationFiles(ctx.paths, id);
  const old = currentGeneration(id, (p) => ctx.ws.read(p), f);
  return { old, next: await nextFor(ctx, id, old, f.key) };
}

/** The edits, in a fixed order across CAs so that every node writes the same files. */
export function applyTrust(ctx: PhaseContext, id: RotationId, { old, next }: PreparedTrust): void {
  const { ws, paths } = ctx;
  const f = rotationFiles(paths, id);
  ws.write(f.nextCert, pemOf(next.gen), isSa(id) ? MODE_KEY : MODE_CERT);
  if (next.keyPem !== undefined && exists(f.key))
    ws.write(f.nextKey, next.keyPem, MODE_KEY, f.keyOffline ? MODE_OFFLINE_DIR : undefined);
  publish(ctx, id, next);
  const bundled = ws.read(f.bundle);
  const trusted = bundled === undefined ? [old] : generationsIn(id, bundled, f.bundle);
  ws.write(f.bundle, bundleText([...trusted, next.gen]), isSa(id) ? MODE_KEY : MODE_CERT);
  wireTrust(ws, id, ws.nodePath(f.cert), ws.nodePath(f.bundle));
  if (id === "ca") addToKubeconfigs(ctx, old, next.gen, ws.nodePath(f.cert), ws.nodePath(f.bundle));
  for (const c of restartFor(id, "trust")) ctx.restart.add(c);
  preserveForSign(ctx, id, [f.cert, f.key]);
  ctx.state.cas[id] = {
    phase: "trust",
    old: pemOf(old),
    next: pemOf(next.gen),
    at: { trust: ctx.now.toISOString() },
    ...(ctx.from ? { from: ctx.from } : {}),
  };
}

async function nextFor(
  ctx: PhaseContext,
  id: RotationId,
  old: Generation,
  keyPath: string,
): Promise<{ gen: Generation; keyPem?: string }> {
  if (ctx.from) {
    const published = readPublished(ctx.from, id);
    if (published.gen.sha256 === old.sha256)
      throw new InputError(
        `--from ${ctx.from}: its ${id} is the one this node signs with already, not a new one`,
      );
    return published;
  }
  if (!exists(keyPath))
    throw new InputError(
      `the ${label(id)}'s key is not on this node (${keyPath}): take the new one the first node published with --from <offline folder>, or pass --offline-dir where the key is kept`,
    );
  return makeNext(id, old, ctx.now);
}

/** The first node leaves the new CA in the offline folder, for `--from` on the others. */
function publish(ctx: PhaseContext, id: RotationId, next: { gen: Generation; keyPem?: string }): void {
  if (ctx.from) return;
  const dir = ctx.paths.offlineDir;
  if (!dir || next.keyPem === undefined) {
    ctx.notes.push(
      `${id}: no offline folder known, so the new ${label(id)} is not published for the other nodes (pass --offline-dir)`,
    );
    return;
  }
  const files = publishedFiles(dir, id);
  ctx.ws.write(files.cert, pemOf(next.gen), isSa(id) ? MODE_KEY : MODE_CERT, MODE_OFFLINE_DIR);
  ctx.ws.write(files.key, next.keyPem, MODE_KEY, MODE_OFFLINE_DIR);
  ctx.notes.push(
    `${id}: the new ${label(id)} is in ${files.cert}; the other nodes take it with --from ${dir}`,
  );
}

/** Every kubeconfig that trusts the old cluster CA trusts the new one too. */
function addToKubeconfigs(
  ctx: PhaseContext,
  old: Generation,
  next: Generation,
  from: string,
  to: string,
): void {
  for (const k of kubeconfigFiles(ctx.paths)) {
    const text = ctx.ws.read(k.path);
    if (text === undefined) continue;
    const caPem = kubeconfigView(ctx.ws, k.path)?.caPem;
    if (caPem === undefined) {
      // A kubeconfig that names the CA file (the webhook's) names the bundle instead.
      const wired = replaceYamlPath(text, "certificate-authority", from, to);
      if (wired !== text) ctx.ws.write(k.path, wired, MODE_KEY);
      continue;
    }
    const gens = generationsIn("ca", caPem, `${k.path} certificate-authority-data`);
    if (!gens.some((g) => g.sha256 === old.sha256)) continue;
    ctx.ws.write(k.path, replaceKubeconfigCa(text, k.path, bundleText([...gens, next])), MODE_KEY);
  }
}

/** What sign will replace, copied into the session now (sign then only swaps). */
function preserveForSign(ctx: PhaseContext, id: RotationId, signing: string[]): void {
  const files = isSa(id) ? [] : certFiles(ctx.paths).filter((c) => c.ca === id);
  for (const p of [...signing, ...files.flatMap((c) => (c.keyPath ? [c.path, c.keyPath] : [c.path]))])
    if (exists(p)) ctx.preserve.add(p);
}
