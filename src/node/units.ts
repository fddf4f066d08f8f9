import { basename } from "node:path";
import type { NodeFiles } from "./files.js";

/** Where systemd looks for units, most important first (systemd.unit(5)). */
export const UNIT_DIRS = [
  "/etc/systemd/system",
  "/run/systemd/system",
  "/usr/local/lib/systemd/system",
  "/lib/systemd/system",
  "/usr/lib/systemd/system",
];

/** A service's command line as systemd would run it: unit, drop-ins and environment applied. */
export interface UnitCommand {
  unit: string;
  /** The unit file, then its drop-ins and environment files, in the order they were applied. */
  sources: string[];
  /** The file whose ExecStart= is in effect. */
  execSource: string;
  argv: string[];
  env: Map<string, string>;
}

/** Only units that may start a Kubernetes component are parsed. */
const INTERESTING = /kube|etcd|k3s|rke2|k0s/;

/** Every service unit under the unit folders whose name or command line mentions a component. */
export function readUnits(files: NodeFiles): UnitCommand[] {
  const units = new Map<string, string>();
  // A unit linked to /dev/null is masked (systemd's convention): it never starts, whatever
  // later folders hold under its name.
  for (const dir of UNIT_DIRS)
    for (const p of files.walk(dir, 0))
      if (p.endsWith(".service") && !units.has(basename(p)))
        units.set(basename(p), files.linkTarget(p) === "/dev/null" ? "" : p);
  const out: UnitCommand[] = [];
  for (const [name, path] of units) {
    if (!path) continue;
    const text = files.read(path, 256 * 1024)?.toString("utf8");
    if (text === undefined || !(INTERESTING.test(name) || INTERESTING.test(text))) continue;
    const dropIns = UNIT_DIRS.flatMap((d) =>
      files.walk(`${d}/${name}.d`, 0).filter((p) => p.endsWith(".conf")),
    );
    // Drop-ins apply in file-name order across folders; a name in an earlier folder hides the later one.
    const byName = new Map<string, string>();
    for (const p of dropIns) if (!byName.has(basename(p))) byName.set(basename(p), p);
    const ordered = [...byName.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, p]) => p);
    const cmd = applyUnit(files, name, [path, ...ordered], text);
    if (cmd) out.push(cmd);
  }
  return out;
}

function applyUnit(
  files: NodeFiles,
  unit: string,
  paths: string[],
  mainText: string,
): UnitCommand | undefined {
  const env = new Map<string, string>();
  const envFiles: string[] = [];
  let exec: string | undefined;
  let execSource = paths[0] ?? unit;
  const sources: string[] = [];
  for (const p of paths) {
    const text = p === paths[0] ? mainText : files.read(p, 256 * 1024)?.toString("utf8");
    if (text === undefined) continue;
    sources.push(p);
    for (const [key, value] of serviceSettings(text)) {
      if (key === "Environment") for (const [k, v] of assignments(value)) env.set(k, v);
      else if (key === "EnvironmentFile") envFiles.push(value);
      else if (key === "ExecStart") {
        exec = value === "" ? undefined : value;
        execSource = p;
      }
    }
  }
  // EnvironmentFile= is read after Environment= and wins over it (systemd.exec(5)).
  for (const spec of envFiles) {
    const optional = spec.startsWith("-");
    const path = optional ? spec.slice(1) : spec;
    const data = files.read(path, 256 * 1024);
    if (!data) {
      if (!optional) files.warn(path, `EnvironmentFile of ${unit} is missing`);
      continue;
    }
    sources.push(path);
    for (const [k, v] of envFileAssignments(data.toString("utf8"))) env.set(k, v);
  }
  if (exec === undefined) return undefined;
  return { unit, sources, execSource, argv: expandCommand(exec.replace(/^[-@:+!]+/, ""), env), env };
}

/** Key/value settings of the [Service] section, with "\" continuations joined. */
function serviceSettings(text: string): [string, string][] {
  const out: [string, string][] = [];
  let section = "";
  for (const raw of text.replace(/\\\r?\n/g, " ").split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) section = line;
    else if (section === "[Service]") {
      const eq = line.indexOf("=");
      if (eq > 0) out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
    }
  }
  return out;
}

/** Environment="A=b c" D=e: shell-like words, each NAME=value. */
function assignments(value: string): [string, string][] {
  return splitWords(value).flatMap((w) => {
    const eq = w.indexOf("=");
    return eq > 0 ? [[w.slice(0, eq), w.slice(eq + 1)] as [string, string]] : [];
  });
}

/** NAME=value lines of an environment file; quotes removed, comments skipped. */
export function envFileAssignments(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of text.replace(/\\\r?\n/g, " ").split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, "");
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const value = line.slice(eq + 1).trim();
    out.push([line.slice(0, eq).trim(), /^(["']).*\1$/s.test(value) ? value.slice(1, -1) : value]);
  }
  return out;
}

/**
 * ExecStart's words: "$NAME" alone splits the variable's value into words, "${NAME}" stays one
 * word (systemd.service(5), "Command lines").
 */
export function expandCommand(command: string, env: Map<string, string>): string[] {
  const out: string[] = [];
  for (const word of splitWords(command)) {
    const alone = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (alone) out.push(...splitWords(env.get(alone[1] ?? "") ?? ""));
    else out.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => env.get(name) ?? ""));
  }
  return out.filter((w) => w !== "");
}

/** Whitespace-separated words with '...' and "..." quoting and backslash escapes. */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? "";
    if (quote) {
      if (ch === quote) quote = "";
      else if (ch === "\\" && quote === '"' && i + 1 < text.length) cur = (cur ?? "") + text[++i];
      else cur = (cur ?? "") + ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur = cur ?? "";
    } else if (/\s/.test(ch)) {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if (ch === "\\" && i + 1 < text.length) cur = (cur ?? "") + text[++i];
    else cur = (cur ?? "") + ch;
  }
  if (cur !== undefined) words.push(cur);
  return words;
}
