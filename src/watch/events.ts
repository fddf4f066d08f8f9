import { appendFileSync } from "node:fs";
import { errorMessage, IoError } from "../errors.js";
import { MODE_KEY } from "../fsx/modes.js";

/**
 * One integrity event: a change to a key or certificate file no kubepki command made, or a read of
 * an indicator file by another process (auditd). Fingerprints, modes and owners only: never key
 * material.
 */
export interface WatchEvent {
  time: string;
  path: string;
  /** key-replaced, key-added, mode-widened, owner-changed, certificate-unknown, ca-certificate-changed, indicator-read. */
  change: string;
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  /** Who did it, when the record says (auditd: exe, comm, pid, uid, auid, the rule's key). */
  by?: Record<string, unknown>;
}

export type EventSink = (e: WatchEvent) => void;

/** One JSON line per event, to stdout or appended to a file (created 0600). */
export function eventSink(file?: string): EventSink {
  return (e) => {
    const line = `${JSON.stringify(e)}\n`;
    if (!file) {
      process.stdout.write(line);
      return;
    }
    try {
      appendFileSync(file, line, { mode: MODE_KEY });
    } catch (err) {
      throw new IoError(`cannot write the event to ${file}: ${errorMessage(err)}`, { cause: err });
    }
  };
}

/** Fails early (exit 3) when the events file cannot be written, rather than at the first event. */
export function checkEventsFile(file: string): void {
  try {
    appendFileSync(file, "", { mode: MODE_KEY });
  } catch (err) {
    throw new IoError(`--events ${file}: cannot write: ${errorMessage(err)}`, { cause: err });
  }
}
