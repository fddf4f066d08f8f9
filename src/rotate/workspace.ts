import { lstatSync } from "node:fs";
import { relative, sep } from "node:path";
import type { PendingWrite } from "../fsx/transaction.js";
import { readTreeText, type TreePaths } from "../pki/paths.js";

/**
 * The files a phase changes, gathered before anything is written: reads see earlier edits of the
 * same run (`--ca all` edits one manifest for several CAs), and the whole set is committed as one
 * journaled transaction.
 */
export class Workspace {
  private readonly pending = new Map<string, PendingWrite>();
  private readonly parsed = new Map<string, { text: string; value: unknown }>();

  constructor(readonly paths: TreePaths) {}

  read(path: string): string | undefined {
    const w = this.pending.get(path);
    if (w) return w.data === undefined ? undefined : String(w.data);
    return readTreeText(this.paths, path);
  }

  /** Writes `data` unless the file already holds exactly that (a phase run twice changes nothing). */
  write(path: string, data: string, mode: number, dirMode?: number): void {
    if (this.read(path) === data && this.modeOf(path) === mode) {
      this.pending.delete(path);
      return;
    }
    this.pending.set(path, { path, data, mode, dirMode });
  }

  remove(path: string): void {
    if (this.read(path) === undefined && !this.pending.has(path)) return;
    this.pending.set(path, { path, data: undefined, mode: 0 });
  }

  /** `parse(text)` of a file's current text, parsed once per content (kubeconfigs are read by every step). */
  parse<T>(path: string, kind: string, parse: (text: string) => T): T | undefined {
    const text = this.read(path);
    if (text === undefined) return undefined;
    const key = `${kind}\u0000${path}`;
    const hit = this.parsed.get(key);
    if (hit && hit.text === text) return hit.value as T;
    const value = parse(text);
    this.parsed.set(key, { text, value });
    return value;
  }

  writes(): PendingWrite[] {
    return [...this.pending.values()];
  }

  changed(): string[] {
    return [...this.pending.keys()];
  }

  /** The node path of a host path ("/etc/kubernetes/pki/ca.crt"). */
  nodePath(host: string): string {
    return `/${relative(this.paths.root, host).split(sep).join("/")}`;
  }

  /** The mode a file has (or will have): edits keep it. */
  modeOf(path: string): number | undefined {
    if (this.pending.has(path)) return this.pending.get(path)?.mode;
    try {
      return lstatSync(path).mode & 0o777;
    } catch {
      return undefined;
    }
  }
}
