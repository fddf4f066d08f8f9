import { dirname, join, relative, sep } from "node:path";
import { isInside } from "../fsx/read.js";
import type { BackupTarget } from "../fsx/transaction.js";
import type { TreePaths } from "./paths.js";

/** A sortable, filesystem-safe timestamp for backup folders: 2026-11-26T19-58-03.123Z. */
export function backupStamp(now: Date): string {
  return now.toISOString().replace(/:/g, "-");
}

/**
 * Where replaced files are kept: node files under the node's var/lib/kubepki/backups, offline files
 * (break-glass credentials, offline CA keys, other nodes' pairs) under the offline folder's own
 * backups/, so a backup never brings offline material onto the node. The offline folder comes
 * first: with --root / it lies inside the root.
 */
export function backupTargets(p: TreePaths, now: Date): BackupTarget[] {
  const stamp = backupStamp(now);
  const node = { dir: join(p.backupsDir, stamp), base: p.root };
  return p.offlineDir ? [{ dir: offlineBackupDir(p.offlineDir, now), base: p.offlineDir }, node] : [node];
}

/** Where copies of replaced offline files are kept: inside the offline folder itself. */
export function offlineBackupsDir(offlineDir: string): string {
  return join(offlineDir, "backups");
}

export function offlineBackupDir(offlineDir: string, now: Date): string {
  return join(offlineBackupsDir(offlineDir), backupStamp(now));
}

/** How many backup copies went into each timestamped folder (the node's, the offline folder's). */
export function backupFolders(backedUp: string[], p: TreePaths): { dir: string; files: number }[] {
  const roots = [p.backupsDir, ...(p.offlineDir ? [offlineBackupsDir(p.offlineDir)] : [])];
  const counts = new Map<string, number>();
  for (const b of backedUp) {
    const base = roots.find((r) => isInside(r, b)) ?? dirname(b);
    const dir = join(base, relative(base, b).split(sep)[0] ?? "");
    counts.set(dir, (counts.get(dir) ?? 0) + 1);
  }
  return [...counts].map(([dir, files]) => ({ dir, files }));
}
