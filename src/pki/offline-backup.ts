import { join } from "node:path";

/**
 * Where copies of replaced offline files are kept: inside the offline folder itself, so a
 * break-glass credential or another node's key never lands on the node as a backup.
 */
export function offlineBackupsDir(offlineDir: string): string {
  return join(offlineDir, "backups");
}
