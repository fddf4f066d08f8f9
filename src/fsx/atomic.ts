import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { errorMessage, IoError } from "../errors.js";
import { checkWriteParent, checkWritePath } from "./confine.js";
import { MODE_DIR } from "./modes.js";

export function ensureDir(dir: string, mode = MODE_DIR): void {
  checkWritePath(dir);
  try {
    mkdirSync(dir, { recursive: true, mode });
  } catch (err) {
    throw new IoError(`cannot create directory ${dir}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Path of a temporary sibling of `path`; same directory, so rename(2) is atomic. */
export function tempPathFor(path: string, tag = randomBytes(6).toString("hex")): string {
  return join(dirname(path), `.${basename(path)}.kubepki-tmp-${tag}`);
}

/**
 * Writes `data` to a new file at `path` that must not exist, with `mode` set before the first byte
 * is written (O_EXCL, then fchmod so the umask cannot widen or narrow it), and fsyncs it.
 */
export function writeNewFileDurable(path: string, data: string | Uint8Array, mode: number): void {
  checkWriteParent(path);
  let fd: number;
  try {
    fd = openSync(path, "wx", mode);
  } catch (err) {
    throw new IoError(`cannot create ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    fchmodSync(fd, mode);
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    safeUnlink(path);
    throw new IoError(`cannot write ${path}: ${errorMessage(err)}`, { cause: err });
  }
  closeSync(fd);
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function safeUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Writes one file atomically: temp file with its final mode, fsync, rename, fsync of the directory.
 * `syncDir: false` leaves the rename's durability to a later fsync of the same directory (the file
 * is then, after a crash, either absent or complete, never empty).
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number,
  dirMode = MODE_DIR,
  { syncDir = true } = {},
): void {
  const dir = dirname(path);
  ensureDir(dir, dirMode);
  const tmp = tempPathFor(path);
  writeNewFileDurable(tmp, data, mode);
  try {
    checkWriteParent(path);
    renameSync(tmp, path);
  } catch (err) {
    safeUnlink(tmp);
    throw new IoError(`cannot replace ${path}: ${errorMessage(err)}`, { cause: err });
  }
  if (syncDir) fsyncDir(dir);
}
