import { randomBytes } from "node:crypto";
import { lstatSync, readdirSync, readlinkSync, renameSync, statSync, symlinkSync, unlinkSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { errorMessage, InputError, IoError, UnsafePathError } from "../errors.js";
import {
  ensureDir,
  fsyncDir,
  safeUnlink,
  tempPathFor,
  writeFileAtomic,
  writeNewFileDurable,
} from "./atomic.js";
import { checkWriteParent } from "./confine.js";
import { MODE_KEY, MODE_OFFLINE_DIR } from "./modes.js";
import { exists, isInside, readFileLimited, readTextLimited } from "./read.js";

/**
 * A group of files that must change together (a certificate and its key; a whole PKI).
 *
 * rename(2) makes one file atomic, not two. So the group is written as temp files first, then a
 * journal marks the group "committing", then the renames run. A process killed during the renames
 * leaves the journal behind, and `recoverJournal` (run by every kubepki command before it reads the
 * tree) finishes the renames: a certificate is never paired with the wrong key for longer than it
 * takes the next command to start.
 */
export interface PendingWrite {
  path: string;
  /** undefined removes the file (a key moving to the offline folder). */
  data: string | Uint8Array | undefined;
  mode: number;
  dirMode?: number;
  /** Where this file's backup goes instead of the default target ("none": its content is kept elsewhere). */
  backupDir?: string | "none";
}

/** Existing files under `base` that get replaced are copied under `dir`, keeping mode and relative path. */
export interface BackupTarget {
  dir: string;
  base: string;
}

export interface CommitOptions {
  journalPath: string;
  /**
   * Existing files that get replaced are copied first into the folder of the first base that holds
   * them, keeping their mode and path relative to that base: backups of offline files stay offline.
   */
  backup?: BackupTarget[];
}

/** Where backups of the files under `base` go. */
export interface BackupTarget {
  dir: string;
  base: string;
}

export interface CommitResult {
  written: string[];
  backedUp: string[];
}

interface Journal {
  version: 1;
  state: "writing" | "committing";
  entries: JournalEntry[];
  /** Backup copies being made, so that a kill mid-copy leaves no temp file behind. */
  backups?: string[];
  tag?: string;
}

interface JournalEntry {
  tmp: string;
  path: string;
  remove?: boolean;
}

export function commitFiles(writes: PendingWrite[], opts: CommitOptions): CommitResult {
  const result: CommitResult = { written: [], backedUp: [] };
  if (writes.length === 0) return result;
  recoverJournal(opts.journalPath);
  const tag = randomBytes(6).toString("hex");
  const entries: JournalEntry[] = writes.map((w) =>
    w.data === undefined
      ? { tmp: "", path: w.path, remove: true }
      : { tmp: tempPathFor(w.path, tag), path: w.path },
  );
  const backups = backupPlan(writes, opts.backup ?? []);
  // fsyncs: every file's content before the journal says "committing", the renames before the
  // journal goes, and its removal (a finished journal recovered again would remove files anew).
  // "writing" needs no fsync of its folder: lost in a crash, it leaves only temp files behind.
  const writeJournal = (state: Journal["state"]) =>
    writeFileAtomic(
      opts.journalPath,
      JSON.stringify({
        version: 1,
        state,
        entries,
        backups: backups.map((b) => b.target),
        tag,
      } satisfies Journal),
      MODE_KEY,
      MODE_OFFLINE_DIR,
      { syncDir: state === "committing" },
    );

  writeJournal("writing");
  try {
    for (const w of writes) ensureDir(dirname(w.path), w.dirMode);
    writes.forEach((w, i) => {
      if (w.data !== undefined) writeNewFileDurable(entries[i]?.tmp ?? "", w.data, w.mode);
    });
    result.backedUp = copyBackups(backups, tag);
  } catch (err) {
    for (const e of entries) if (!e.remove) safeUnlink(e.tmp);
    for (const b of backups) safeUnlink(tempPathFor(b.target, tag));
    safeUnlink(opts.journalPath);
    throw err;
  }
  writeJournal("committing");
  renameAll(entries);
  safeUnlink(opts.journalPath);
  fsyncDir(dirname(opts.journalPath));
  result.written = writes.filter((w) => w.data !== undefined).map((w) => w.path);
  return result;
}

function renameAll(entries: JournalEntry[]): void {
  const dirs = new Set<string>();
  for (const e of entries) {
    if (e.remove) safeUnlink(e.path);
    else if (exists(e.tmp)) {
      checkWriteParent(e.path);
      try {
        renameSync(e.tmp, e.path);
      } catch (err) {
        throw new IoError(`cannot move ${e.tmp} to ${e.path}: ${errorMessage(err)}`, { cause: err });
      }
    }
    dirs.add(dirname(e.path));
  }
  for (const d of dirs) fsyncDir(d);
}

function backupPlan(writes: PendingWrite[], targets: BackupTarget[]) {
  return writes
    .filter((w) => w.backupDir !== "none" && (w.backupDir || targets.length > 0) && exists(w.path))
    .map((w) => {
      if (w.backupDir) return { source: w.path, target: join(w.backupDir, basename(w.path)) };
      const t = targets.find((b) => isInside(b.base, w.path));
      // A backup lands inside the base its file came from, never beside or above it.
      if (!t) throw new UnsafePathError(`${w.path} lies outside every folder kubepki may back up into`);
      return { source: w.path, target: join(t.dir, relative(t.base, w.path)) };
    });
}

/** Copies each file that is about to be replaced, keeping its mode; each copy is itself atomic. */
function copyBackups(plan: { source: string; target: string }[], tag: string): string[] {
  for (const { source, target } of plan) {
    ensureDir(dirname(target), MODE_OFFLINE_DIR);
    if (lstatSync(source).isSymbolicLink()) {
      // Keep the link itself; what it points to is not replaced.
      safeUnlink(target);
      symlinkSync(readlinkSync(source), target);
      continue;
    }
    const old = readFileLimited(source);
    if (old === undefined) continue;
    const tmp = tempPathFor(target, tag);
    writeNewFileDurable(tmp, old, statSync(source).mode & 0o777);
    renameSync(tmp, target);
    fsyncDir(dirname(target));
  }
  return plan.map((b) => b.target);
}

/** Temp copies of the journal a kill left before their rename. */
function journalTemps(journalPath: string): string[] {
  const dir = dirname(journalPath);
  const prefix = `.${basename(journalPath)}.kubepki-tmp-`;
  try {
    return readdirSync(dir)
      .filter((n) => n.startsWith(prefix))
      .map((n) => join(dir, n));
  } catch {
    return [];
  }
}

function parseJournal(journalPath: string, text: string): Journal {
  try {
    const journal = JSON.parse(text) as Journal;
    if (journal.version !== 1 || !Array.isArray(journal.entries)) throw new Error("unknown journal shape");
    return journal;
  } catch (err) {
    throw new InputError(
      `${journalPath} is not a kubepki journal (${errorMessage(err)}); inspect it and remove it by hand`,
      { cause: err },
    );
  }
}

/** Whether a killed run left something for recoverJournal (read-only commands check this first). */
export function recoveryPending(journalPath: string): boolean {
  return exists(journalPath) || journalTemps(journalPath).length > 0;
}

/**
 * Finishes or undoes a group left by a killed process. Returns what it did, or undefined if there
 * was nothing to recover.
 */
export function recoverJournal(journalPath: string): { state: Journal["state"]; files: number } | undefined {
  // A kill while the journal itself was being written leaves its temp copy; the group never started.
  for (const t of journalTemps(journalPath)) safeUnlink(t);
  const text = readTextLimited(journalPath);
  if (text === undefined) return undefined;
  const journal = parseJournal(journalPath, text);
  for (const b of journal.backups ?? []) if (journal.tag) safeUnlink(tempPathFor(b, journal.tag));
  if (journal.state === "committing") renameAll(journal.entries);
  else for (const e of journal.entries) if (!e.remove) safeUnlink(e.tmp);
  try {
    unlinkSync(journalPath);
  } catch (err) {
    throw new IoError(`cannot remove ${journalPath}: ${errorMessage(err)}`, { cause: err });
  }
  fsyncDir(dirname(journalPath));
  return { state: journal.state, files: journal.entries.length };
}
