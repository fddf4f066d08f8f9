import { closeSync, openSync, readSync, statSync } from "node:fs";
import { posix } from "node:path";
import type { WatchEvent } from "./events.js";

/**
 * Reads auditd's log (/var/log/audit/audit.log, its raw format) and turns the records of kubepki's
 * rules into events. One syscall is several records sharing `msg=audit(SECONDS.MILLIS:SERIAL)`:
 * SYSCALL (who: exe, comm, pid, uid, auid, and the rule's key), CWD, one PATH per name (the file),
 * PROCTITLE, then EOE. Values auditd could not print as they are come hex-encoded, unquoted; the
 * ENRICHED format appends translated fields after a 0x1d byte.
 */
interface Group {
  time: number;
  serial: string;
  syscall?: Record<string, string>;
  cwd?: string;
  paths: Record<string, string>[];
  seenAt: number;
  ended: boolean;
}

const HEADER = /^type=(\w+) msg=audit\((\d+)\.(\d+):(\d+)\):\s?(.*)$/;
const FIELD = /([\w-]+)=("[^"]*"|\S*)/g;

/** The fields auditd hex-encodes (unquoted) when their text has spaces, quotes or control bytes. */
const ENCODED = new Set(["comm", "exe", "name", "key", "cwd", "proctitle"]);

/** A field's value: quoted text as it is, hex-encoded text decoded, "(null)" as absent. */
function value(field: string, raw: string): string | undefined {
  if (raw.startsWith('"')) return raw.slice(1, -1);
  if (raw === "(null)" || raw === "") return undefined;
  if (ENCODED.has(field) && /^([0-9A-F]{2})+$/.test(raw)) {
    // Keys joined by auditd are separated by 0x01; the first is kubepki's when it is one.
    const text = Buffer.from(raw, "hex").toString("utf8").split("\x01")[0] ?? "";
    if (/^[\x20-\x7e]+$/.test(text)) return text;
  }
  return raw;
}

export function parseFields(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of (body.split("\x1d")[0] ?? "").matchAll(FIELD)) {
    const v = value(m[1] ?? "", m[2] ?? "");
    if (v !== undefined && m[1]) out[m[1]] = v;
  }
  return out;
}

export class AuditdReader {
  private readonly groups = new Map<string, Group>();
  private rest = "";

  constructor(
    /** Only rules whose key starts with this are kubepki's. */
    private readonly keyPrefix = "kubepki-",
    /** This process's own reads (the watch fingerprints the keys) are not events. */
    private readonly ownPid = String(process.pid),
  ) {}

  /** Feeds a chunk of the log; returns the events of every syscall it completed. */
  push(text: string, now = Date.now()): WatchEvent[] {
    const lines = (this.rest + text).split("\n");
    this.rest = lines.pop() ?? "";
    for (const line of lines) this.line(line.replace(/\r$/, ""), now);
    return this.flush(false, now);
  }

  /** Completes what is left (the end of a file read once, or records older than a second). */
  flush(all = true, now = Date.now()): WatchEvent[] {
    if (all && this.rest) {
      this.line(this.rest, now);
      this.rest = "";
    }
    const out: WatchEvent[] = [];
    for (const [serial, g] of this.groups) {
      if (!(g.ended || all || now - g.seenAt > 1000)) continue;
      this.groups.delete(serial);
      const e = this.event(g);
      if (e) out.push(e);
    }
    return out;
  }

  private line(line: string, now: number): void {
    const m = HEADER.exec(line);
    if (!m) return;
    const [, type, secs, millis, serial, body] = m as unknown as string[];
    const id = `${secs}:${serial}`;
    let g = this.groups.get(id);
    if (!g) {
      g = {
        time: Number(secs) * 1000 + Number(millis),
        serial: serial ?? "",
        paths: [],
        seenAt: now,
        ended: false,
      };
      this.groups.set(id, g);
    }
    g.seenAt = now;
    const fields = parseFields(body ?? "");
    if (type === "SYSCALL") g.syscall = fields;
    else if (type === "CWD") g.cwd = fields.cwd;
    else if (type === "PATH") g.paths.push(fields);
    else if (type === "EOE") g.ended = true;
  }

  private event(g: Group): WatchEvent | undefined {
    const s = g.syscall;
    if (!s?.key?.startsWith(this.keyPrefix) || s.pid === this.ownPid) return undefined;
    const file = g.paths.find((p) => p.nametype !== "PARENT" && p.name) ?? g.paths[0];
    const name = file?.name;
    if (!name) return undefined;
    const path = posix.isAbsolute(name) || !g.cwd ? name : posix.join(g.cwd, name);
    const by: Record<string, unknown> = { key: s.key };
    for (const f of ["exe", "comm", "pid", "ppid", "uid", "auid", "syscall", "success"])
      if (s[f] !== undefined) by[f] = s[f];
    return {
      time: new Date(g.time).toISOString(),
      path,
      change: "indicator-read",
      by: { ...by, auditSerial: g.serial },
    };
  }
}

/** Follows a log file: from where it ends (or its start), through truncation and rotation. */
export class LogTail {
  private offset = 0;
  private inode = -1;

  constructor(
    readonly file: string,
    fromStart: boolean,
  ) {
    if (fromStart) return;
    try {
      const st = statSync(file);
      this.offset = st.size;
      this.inode = st.ino;
    } catch {
      // not there yet: read it from its start once it appears
    }
  }

  /** What was appended since the last read. */
  read(): string {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(this.file);
    } catch {
      return "";
    }
    if (st.ino !== this.inode || st.size < this.offset) this.offset = 0;
    this.inode = st.ino;
    if (st.size === this.offset) return "";
    const fd = openSync(this.file, "r");
    try {
      const buf = Buffer.alloc(Math.min(Number(st.size) - this.offset, 16 * 1024 * 1024));
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      return buf.subarray(0, n).toString("utf8");
    } finally {
      closeSync(fd);
    }
  }
}
