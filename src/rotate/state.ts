import { readdirSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { errorMessage, InputError } from "../errors.js";
import { MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { readTextLimited } from "../fsx/read.js";
import type { PendingWrite } from "../fsx/transaction.js";
import { ROTATION_IDS } from "../pki/catalog.js";
import type { TreePaths } from "../pki/paths.js";
import { PHASES, type RotationState } from "./types.js";

export function statePath(p: TreePaths): string {
  return join(p.stateDir, "rotation.json");
}

/** Where the session keeps its copies of the files it changed: node files on the node, offline ones offline. */
export function snapshotDirs(p: TreePaths): { node: string; offline?: string } {
  return {
    node: join(p.stateDir, "rotation", "before"),
    offline: p.offlineDir ? join(p.offlineDir, "rotation", "before") : undefined,
  };
}

/** Where the first node publishes a new CA for the others (`--from`): <offline>/rotation/<id>/. */
export function publishedDir(folder: string, id: string): string {
  return join(folder, "rotation", id);
}

export function readState(p: TreePaths): RotationState {
  const file = statePath(p);
  const text = readTextLimited(file);
  if (text === undefined) return { version: 1, cas: {} };
  try {
    const raw = JSON.parse(text) as RotationState;
    if (raw.version !== 1 || typeof raw.cas !== "object" || raw.cas === null)
      throw new Error("unknown shape");
    for (const [id, r] of Object.entries(raw.cas)) {
      if (!ROTATION_IDS.includes(id as never) || !PHASES.includes(r?.phase as never))
        throw new Error(`bad entry ${id}`);
    }
    return raw;
  } catch (err) {
    throw new InputError(
      `${file} is not a kubepki rotation state (${errorMessage(err)}); restore it from var/lib/kubepki/backups or remove it by hand`,
      { cause: err },
    );
  }
}

/** The state file; removed once nothing is left in it (after abort the tree is as before the rotation). */
export function stateWrite(p: TreePaths, state: RotationState): PendingWrite {
  const empty = Object.keys(state.cas).length === 0 && !state.session;
  return {
    path: statePath(p),
    data: empty ? undefined : `${JSON.stringify(state, null, 2)}\n`,
    mode: MODE_KEY,
    dirMode: MODE_OFFLINE_DIR,
  };
}

/** Folders the session's copies and publications leave empty (best effort, after the commit). */
export function pruneEmpty(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const sub = join(dir, n);
    if (statSync(sub).isDirectory()) pruneEmpty(sub);
  }
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // kept: not empty, or not ours to remove
  }
}
