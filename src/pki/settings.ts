import { join } from "node:path";
import { InputError } from "../errors.js";
import { MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { readTextLimited } from "../fsx/read.js";
import type { PendingWrite } from "../fsx/transaction.js";

/**
 * What kubepki remembers about a node between runs (var/lib/kubepki/settings.json): where its
 * offline folder is, so a later run without --offline-dir does not start a second one.
 */
export interface NodeSettings {
  offlineDir?: string;
}

export function settingsPath(stateDir: string): string {
  return join(stateDir, "settings.json");
}

export function readSettings(stateDir: string): NodeSettings {
  const file = settingsPath(stateDir);
  const text = readTextLimited(file, 64 * 1024);
  if (text === undefined) return {};
  try {
    const raw = JSON.parse(text) as unknown;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("not an object");
    const offlineDir = (raw as Record<string, unknown>).offlineDir;
    return typeof offlineDir === "string" ? { offlineDir } : {};
  } catch (err) {
    throw new InputError(
      `${file} is not a kubepki settings file (${(err as Error).message}); fix or remove it`,
      {
        cause: err,
      },
    );
  }
}

export function settingsWrite(stateDir: string, settings: NodeSettings): PendingWrite {
  return {
    path: settingsPath(stateDir),
    data: `${JSON.stringify(settings, null, 2)}\n`,
    mode: MODE_KEY,
    dirMode: MODE_OFFLINE_DIR,
  };
}
