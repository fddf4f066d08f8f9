import { lstatSync, realpathSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { UnsafePathError } from "../errors.js";
import { isInside } from "./read.js";

/** Folders kubepki writes into (--root, --offline-dir): no write may leave them through a link. */
const roots: { base: string; real: string }[] = [];

export function confineWrites(root: string): void {
  const base = resolve(root);
  let real = base;
  try {
    real = realpathSync(base);
  } catch {
    // not created yet: nothing inside it can be a link
  }
  if (!roots.some((r) => r.base === base)) roots.push({ base, real });
}

const inside = (path: string, root: string) => path === root || isInside(root, path);

/**
 * Refuses a write at `path` when any existing component from its confining root down to `path`
 * (the last one included: callers pass a directory, or a file that is opened, not renamed over) is
 * a link that leads out of that root. Resolves every component, not only the last.
 */
export function checkWritePath(path: string): void {
  const p = resolve(path);
  for (const { base, real } of roots) {
    if (!inside(p, base) || base === sep) continue;
    checkComponents(p, base, real);
  }
}

/** Every existing component of `p` below `base`: a link may not lead out of `real` (the root, resolved). */
function checkComponents(p: string, base: string, real: string): void {
  let current = base;
  for (const part of relative(base, p).split(sep).filter(Boolean)) {
    current = `${current}${sep}${part}`;
    let link = false;
    try {
      link = lstatSync(current).isSymbolicLink();
    } catch {
      break; // the rest does not exist yet: it will be created inside
    }
    if (!link) continue;
    let target: string;
    try {
      target = realpathSync(current);
    } catch {
      throw new UnsafePathError(`${current} is a dangling link; kubepki does not write through it`);
    }
    if (!inside(target, real))
      throw new UnsafePathError(
        `${current} is a link to ${target}, outside ${base}: kubepki refuses to write through it (replace the link with a folder, or point --root at the real tree)`,
      );
  }
}

/** For a file that is written by rename: its folder must stay inside the root. */
export function checkWriteParent(path: string): void {
  checkWritePath(dirname(resolve(path)));
}
