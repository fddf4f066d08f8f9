import { AsyncLocalStorage } from "node:async_hooks";
import { lstatSync, realpathSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { UnsafePathError } from "../errors.js";
import { isInside } from "./read.js";

/** A folder writes are confined to: as given (resolved), and with its links resolved. */
interface Root {
  base: string;
  real: string;
}

/**
 * The folders the running use case writes into. An AsyncLocalStorage, not a module-wide list: two
 * use cases running at once in one program (a library caller, the tests) each keep their own.
 */
const scope = new AsyncLocalStorage<readonly Root[]>();

function rootOf(folder: string): Root {
  const base = resolve(folder);
  let real = base;
  try {
    real = realpathSync(base);
  } catch {
    // not created yet: nothing inside it can be a link
  }
  return { base, real };
}

/**
 * Runs `fn` with every write it makes through fsx (and the ledger) confined to `folders` (--root,
 * the offline folder, the ledger's folder, an --out): a path outside all of them, or one that a
 * link leads out of its folder, is refused before anything is written. Outside such a run writes
 * are not confined (a program using fsx directly chooses its own paths).
 */
export function confineWrites<T>(folders: readonly (string | undefined)[], fn: () => T): T {
  const roots: Root[] = [];
  for (const f of folders)
    if (f !== undefined && !roots.some((r) => r.base === resolve(f))) roots.push(rootOf(f));
  return scope.run(roots, fn);
}

const inside = (path: string, root: string) => path === root || isInside(root, path);

/**
 * Refuses a write at `path` outside every confining folder, or when any existing component from its
 * folder down to `path` (the last one included: callers pass a directory, or a file that is opened,
 * not renamed over) is a link that leads out of that folder. Resolves every component, not only the last.
 */
export function checkWritePath(path: string): void {
  const roots = scope.getStore();
  if (!roots) return;
  const p = resolve(path);
  const mine = roots.filter((r) => inside(p, r.base));
  if (mine.length === 0)
    throw new UnsafePathError(
      `${p} is outside the folders this command writes to (${roots.map((r) => r.base).join(", ")}): kubepki refuses to write there`,
    );
  for (const { base, real } of mine) if (base !== sep) checkComponents(p, base, real);
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
