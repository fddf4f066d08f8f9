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
  const out: UnitCommand[] = [];
  for (const [name, path] of serviceUnits(files)) {
    if (!path) continue;
    const text = files.read(path, 256 * 1024)?.toString("utf8");
    if (text === undefined || !(INTERESTING.test(name) || INTERESTING.test(text))) continue;
    const cmd = applyUnit(files, name, [path, ...dropInsOf(files, name)], text);
    if (cmd) out.push(cmd);
  }
  return out;
}

/**
 * Service units by name, the first folder's winning. A unit linked to /dev/null is masked
 * (systemd's convention): it never starts, whatever later folders hold under its name ("").
 */
function serviceUnits(files: NodeFiles): Map<string, string> {
  const units = new Map<string, string>();
  for (const dir of UNIT_DIRS)
    for (const p of files.walk(dir, 0).filter((p) => p.endsWith(".service")))
      if (!units.has(basename(p))) units.set(basename(p), files.linkTarget(p) === "/dev/null" ? "" : p);
  return units;
}

/** Drop-ins apply in file-name order across folders; a name in an earlier folder hides the later one. */
function dropInsOf(files: NodeFiles, name: string): string[] {
  const dropIns = UNIT_DIRS.flatMap((d) =>
    files.walk(`${d}/${name}.d`, 0).filter((p) => p.endsWith(".conf")),
  );
  const byName = new Map<string, string>();
  for (const p of dropIns) if (!byName.has(basename(p))) byName.set(basename(p), p);
  return [...byName.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, p]) => p);
}

/** What a unit and its drop-ins set, in order: later settings win, ExecStart= (empty) resets. */
interface UnitSettings {
  env: Map<string, string>;
  envFiles: string[];
  exec?: string;
  execSource: string;
  sources: string[];
}

function applyUnit(
  files: NodeFiles,
  unit: string,
  paths: string[],
  mainText: string,
): UnitCommand | undefined {
  const st: UnitSettings = { env: new Map(), envFiles: [], execSource: paths[0] ?? unit, sources: [] };
  for (const p of paths) {
    const text = p === paths[0] ? mainText : files.read(p, 256 * 1024)?.toString("utf8");
    if (text === undefined) continue;
    st.sources.push(p);
    for (const [key, value] of serviceSettings(text)) applySetting(st, key, value, p);
  }
  // EnvironmentFile= is read after Environment= and wins over it (systemd.exec(5)).
  for (const spec of st.envFiles) readEnvFile(files, unit, spec, st.env, st.sources);
  if (st.exec === undefined) return undefined;
  const argv = expandCommand(st.exec.replace(/^[-@:+!]+/, ""), st.env);
  return { unit, sources: st.sources, execSource: st.execSource, argv, env: st.env };
}

function applySetting(st: UnitSettings, key: string, value: string, path: string): void {
  if (key === "Environment") for (const [k, v] of assignments(value)) st.env.set(k, v);
  else if (key === "EnvironmentFile") st.envFiles.push(value);
  else if (key === "ExecStart") {
    st.exec = value === "" ? undefined : value;
    st.execSource = path;
  }
}

/** An EnvironmentFile= ("-" before the path: optional) into `env`; a missing required one is a warning. */
function readEnvFile(
  files: NodeFiles,
  unit: string,
  spec: string,
  env: Map<string, string>,
  sources: string[],
): void {
  const optional = spec.startsWith("-");
  const path = optional ? spec.slice(1) : spec;
  const data = files.read(path, 256 * 1024);
  if (!data) {
    if (!optional) files.warn(path, `EnvironmentFile of ${unit} is missing`);
    return;
  }
  sources.push(path);
  for (const [k, v] of envFileAssignments(data.toString("utf8"))) env.set(k, v);
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
  const st: Words = { words: [], quote: "" };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? "";
    // A backslash escapes the next character outside quotes and inside "..." (not inside '...').
    if (ch === "\\" && st.quote !== "'" && i + 1 < text.length) append(st, text[++i] ?? "");
    else if (st.quote) inQuotes(st, ch);
    else outsideQuotes(st, ch);
  }
  if (st.cur !== undefined) st.words.push(st.cur);
  return st.words;
}

interface Words {
  words: string[];
  /** The word being read; undefined between words ("" is an empty quoted word). */
  cur?: string;
  /** The open quote character, or "". */
  quote: string;
}

const append = (st: Words, ch: string) => {
  st.cur = (st.cur ?? "") + ch;
};

function inQuotes(st: Words, ch: string): void {
  if (ch === st.quote) st.quote = "";
  else append(st, ch);
}

function outsideQuotes(st: Words, ch: string): void {
  if (ch === '"' || ch === "'") {
    st.quote = ch;
    st.cur = st.cur ?? "";
  } else if (/\s/.test(ch)) {
    if (st.cur !== undefined) st.words.push(st.cur);
    st.cur = undefined;
  } else append(st, ch);
}
