import { constants, createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { errorMessage, InputError, IoError } from "../errors.js";

/** kube-apiserver writes one event per line; a RequestResponse event with a large object stays well below this. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export interface LineStats {
  path: string;
  gzip: boolean;
  bytes: number;
  lines: number;
  /** Lines longer than the limit: skipped without being held in memory. */
  oversized: number;
  /** A gzip file cut short or corrupt: the lines before the damage were read. */
  truncated?: string;
}

/** Gzip by its magic bytes, not its name: lumberjack's rotated files may or may not end in .gz. */
async function isGzip(path: string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    // O_NONBLOCK: a FIFO given as a log must not hang the reader before it is refused.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    if (!(await fh.stat()).isFile()) throw new InputError(`${path} is not a regular file`);
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new InputError(`${path}: no such file`, { cause: err });
    throw new IoError(`cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  } finally {
    await fh?.close();
  }
}

/**
 * Splits a file (plain or gzip) into lines and hands each to `onLine` as a string, in bounded
 * memory: at most one chunk plus one line of at most `maxLine` bytes is held. A longer line is
 * counted and skipped. Chunks are processed synchronously, so the per-line cost is a slice and a
 * UTF-8 decode, no promise.
 */
export async function readLines(
  path: string,
  onLine: (line: string, lineNo: number) => void,
  maxLine = MAX_LINE_BYTES,
): Promise<LineStats> {
  const gzip = await isGzip(path);
  const stats: LineStats = { path, gzip, bytes: 0, lines: 0, oversized: 0 };
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const source = gzip ? file.pipe(createGunzip()) : file;
  if (gzip) file.on("error", (err) => source.destroy(err));
  const splitter = new Splitter(stats, onLine, maxLine);
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) splitter.push(chunk);
  } catch (err) {
    if (!gzip || (err as NodeJS.ErrnoException).code?.startsWith("Z_") !== true)
      throw new IoError(`cannot read ${path}: ${errorMessage(err)}`, { cause: err });
    stats.truncated = errorMessage(err);
  } finally {
    file.destroy();
  }
  splitter.end();
  return stats;
}

/** Line splitting over chunks: a line split between chunks is joined, an oversized one dropped. */
class Splitter {
  private carry: Buffer[] = [];
  private carryBytes = 0;
  private skipping = false;

  constructor(
    private readonly stats: LineStats,
    private readonly onLine: (line: string, lineNo: number) => void,
    private readonly maxLine: number,
  ) {}

  push(chunk: Buffer): void {
    this.stats.bytes += chunk.length;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.finish(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
  }

  end(): void {
    if (this.carryBytes > 0 || this.skipping) this.finish(Buffer.alloc(0), 0, 0);
  }

  private hold(part: Buffer): void {
    if (this.skipping) return;
    if (this.carryBytes + part.length > this.maxLine) {
      this.skipping = true;
      this.carry = [];
      this.carryBytes = 0;
      return;
    }
    // Copied: the stream may reuse the chunk's memory.
    this.carry.push(Buffer.from(part));
    this.carryBytes += part.length;
  }

  private finish(chunk: Buffer, start: number, end: number): void {
    const lineNo = ++this.stats.lines;
    if (this.skipping || this.carryBytes + (end - start) > this.maxLine) {
      this.stats.oversized++;
      this.skipping = false;
      this.carry = [];
      this.carryBytes = 0;
      return;
    }
    if (this.carryBytes === 0) {
      this.onLine(chunk.toString("utf8", start, end), lineNo);
      return;
    }
    this.carry.push(chunk.subarray(start, end));
    const line = Buffer.concat(this.carry).toString("utf8");
    this.carry = [];
    this.carryBytes = 0;
    this.onLine(line, lineNo);
  }
}
