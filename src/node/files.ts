import { lstatSync, readdirSync, readlinkSync, type Stats, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { errorMessage } from "../errors.js";
import { MAX_PKI_FILE_BYTES, readFileLimited, resolveInRoot } from "../fsx/read.js";

/** A file as the node holds it; `path` is the node's absolute path ("/etc/kubernetes/pki/ca.key"). */
export interface FileFact {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  isLink: boolean;
}

export interface Warning {
  path: string;
  message: string;
}

/**
 * A read-only view of the files under a root. Links are followed as the node would follow them
 * and never out of the root; files over the size limit are reported, not read; nothing throws.
 */
export class NodeFiles {
  readonly facts = new Map<string, FileFact>();
  readonly warnings: Warning[] = [];
  private visited = 0;

  constructor(
    readonly root: string,
    readonly maxFiles = 250_000,
  ) {}

  /** The host path of a node path, or undefined (with a warning) when a link leads out of the root. */
  private real(nodePath: string): string | undefined {
    const real = resolveInRoot(this.root, join(this.root, nodePath));
    if (real === undefined) this.warn(nodePath, "a link that leads out of the root: not followed");
    return real;
  }

  private readonly warned = new Set<string>();

  warn(path: string, message: string): void {
    const key = `${path}\0${message}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warnings.push({ path, message });
  }

  toNodePath(hostPath: string): string {
    return `/${relative(this.root, hostPath).split(sep).join("/")}`;
  }

  stat(nodePath: string): FileFact | undefined {
    const known = this.facts.get(nodePath);
    if (known) return known;
    let l: Stats;
    try {
      l = lstatSync(join(this.root, nodePath));
    } catch {
      return undefined;
    }
    let st = l;
    if (l.isSymbolicLink()) {
      const real = this.real(nodePath);
      if (!real) return undefined;
      try {
        st = statSync(real);
      } catch {
        this.warn(nodePath, "a dangling link");
        return undefined;
      }
    }
    const fact = {
      path: nodePath,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: st.size,
      isLink: l.isSymbolicLink(),
    };
    if (st.isFile()) this.facts.set(nodePath, fact);
    return fact;
  }

  /** What a symbolic link says, as written; undefined for anything else. */
  linkTarget(nodePath: string): string | undefined {
    try {
      return readlinkSync(join(this.root, nodePath));
    } catch {
      return undefined;
    }
  }

  exists(nodePath: string): boolean {
    try {
      lstatSync(join(this.root, nodePath));
      return true;
    } catch {
      return false;
    }
  }

  isDir(nodePath: string): boolean {
    const real = resolveInRoot(this.root, join(this.root, nodePath));
    try {
      return real !== undefined && statSync(real).isDirectory();
    } catch {
      return false;
    }
  }

  /** Reads a file of at most `limit` bytes; undefined (with a warning where it matters) otherwise. */
  read(nodePath: string, limit = MAX_PKI_FILE_BYTES): Buffer | undefined {
    const fact = this.stat(nodePath);
    if (!fact) return undefined;
    if (fact.size > limit) {
      this.warn(nodePath, `${fact.size} bytes, over the ${limit}-byte limit: not read`);
      return undefined;
    }
    const real = this.real(nodePath);
    if (!real) return undefined;
    try {
      return readFileLimited(real, limit);
    } catch (err) {
      this.warn(nodePath, `unreadable: ${errorMessage(err)}`);
      return undefined;
    }
  }

  /** Files below a folder, depth-first, links to folders not descended. */
  walk(nodeDir: string, maxDepth = 8): string[] {
    const out: string[] = [];
    this.visit(nodeDir, nodeDir, 0, maxDepth, out);
    return out;
  }

  private visit(nodeDir: string, dir: string, depth: number, maxDepth: number, out: string[]): void {
    if (depth > maxDepth) return;
    const names = this.listDir(dir);
    for (const name of names) {
      if (this.overLimit(nodeDir)) return;
      const p = dir === "/" ? `/${name}` : `${dir}/${name}`;
      const l = this.lstatQuiet(p);
      if (!l) continue;
      if (l.isDirectory()) this.visit(nodeDir, p, depth + 1, maxDepth, out);
      else if (l.isFile() || l.isSymbolicLink()) out.push(p);
      else this.warn(p, "not a regular file (FIFO, socket or device): not read");
    }
  }

  /** Counts a file; past the limit the walk stops, with one warning. */
  private overLimit(nodeDir: string): boolean {
    if (++this.visited <= this.maxFiles) return false;
    if (this.visited === this.maxFiles + 1)
      this.warn(nodeDir, `more than ${this.maxFiles} files: the rest were skipped`);
    return true;
  }

  /** A folder's names, sorted; none when it is outside the root or unreadable. */
  private listDir(dir: string): string[] {
    const real = resolveInRoot(this.root, join(this.root, dir));
    if (!real) return [];
    try {
      return readdirSync(real).sort();
    } catch {
      return [];
    }
  }

  private lstatQuiet(p: string): Stats | undefined {
    try {
      return lstatSync(join(this.root, p));
    } catch {
      return undefined;
    }
  }
}
