import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { errorMessage, IoError } from "../errors.js";
import { ensureDir } from "./atomic.js";
import { MODE_KEY, MODE_OFFLINE_DIR } from "./modes.js";

/**
 * One kubepki process changes a tree at a time: a second one would take the first one's journal
 * for a crashed run and undo its half-written group. The lock file holds the owner's PID; a lock
 * whose owner is gone (killed) is taken over.
 */
export async function withTreeLock<T>(stateDir: string, fn: () => Promise<T> | T): Promise<T> {
  const release = acquire(stateDir);
  try {
    return await fn();
  } finally {
    release();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function acquire(stateDir: string): () => void {
  ensureDir(stateDir, MODE_OFFLINE_DIR);
  const path = join(stateDir, "lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", MODE_KEY);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, "utf8") === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST")
        throw new IoError(`cannot create lock ${path}: ${errorMessage(err)}`, { cause: err });
    }
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(path, "utf8"));
    } catch {
      // vanished between open and read: try again
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner))
      throw new IoError(
        `another kubepki process (pid ${owner}) is changing this tree; wait for it, or remove ${path} if it is gone`,
      );
    try {
      unlinkSync(path);
    } catch {
      // someone else took it over first; the next attempt decides
    }
  }
  throw new IoError(`cannot take the lock ${path}`);
}
