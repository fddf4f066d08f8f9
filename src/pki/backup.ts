/** A sortable, filesystem-safe timestamp for backup folders: 2026-11-26T19-58-03.123Z. */
export function backupStamp(now: Date): string {
  return now.toISOString().replace(/:/g, "-");
}
