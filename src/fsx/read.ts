import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { errorMessage, InputError, IoError } from "../errors.js";

/** Certificates, keys and kubeconfigs are small; anything larger is refused, not read whole. */
export const MAX_PKI_FILE_BYTES = 4 * 1024 * 1024;

export function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads a regular file of at most `limit` bytes. Missing file: undefined. */
export function readFileLimited(path: string, limit = MAX_PKI_FILE_BYTES): Buffer | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted under a certificate's name must not hang the reader.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new IoError(`cannot open ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InputError(`${path} is not a regular file`);
    if (st.size > limit) throw new InputError(`${path} is ${st.size} bytes, over the ${limit}-byte limit`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

export function readTextLimited(path: string, limit = MAX_PKI_FILE_BYTES): string | undefined {
  return readFileLimited(path, limit)?.toString("utf8");
}

/**
 * Resolves `path` (inside `root`) the way the node would see it: a symlink's absolute target is
 * taken relative to `root`, never to this machine's /. Returns undefined if a link leads out of
 * the root or loops.
 */
export function resolveInRoot(root: string, path: string, maxHops = 8): string | undefined {
  const base = resolve(root);
  let current = resolve(path);
  for (let hop = 0; hop <= maxHops; hop++) {
    if (current !== base && !isInside(base, current)) return undefined;
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(current);
    } catch {
      return current;
    }
    if (!st.isSymbolicLink()) return current;
    const target = readlinkSync(current);
    current = isAbsolute(target) ? join(base, target) : resolve(dirname(current), target);
  }
  return undefined;
}

/** True when `path` lies strictly inside `dir` (both resolved first). */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
