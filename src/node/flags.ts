import { basename } from "node:path";
import type { InputError } from "../errors.js";
import { isRecord, parseUntrustedYaml } from "./yaml.js";

export const COMPONENTS = [
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "etcd",
  "kubelet",
  "kube-proxy",
] as const;
export type Component = (typeof COMPONENTS)[number];

/** A component's command-line flags and where they were read. */
export interface ComponentFlags {
  component: Component;
  source: string;
  flags: Map<string, string>;
}

/**
 * "--a=b", "--a b" and a bare "--a" (true), as kube-bench reads them. A later flag wins, as in
 * pflag.
 */
export function parseFlags(args: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    if (eq > 2) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith("-")) {
        flags.set(arg.slice(2), next);
        i++;
      } else flags.set(arg.slice(2), "true");
    }
  }
  return flags;
}

/** Flags inside shell-ish text (systemd ExecStart, env files): every --flag[=value] token. */
export function flagsInText(text: string): string[] {
  const out: string[] = [];
  const re = /--[a-zA-Z0-9][a-zA-Z0-9-]*(?:=(?:"[^"]*"|'[^']*'|[^\s"'\\]+))?/g;
  for (const m of text.replace(/\\\n/g, " ").matchAll(re)) out.push(m[0].replace(/=(["'])(.*)\1$/, "=$2"));
  return out;
}

function componentOf(name: string): Component | undefined {
  const base = basename(name);
  return (COMPONENTS as readonly string[]).includes(base) ? (base as Component) : undefined;
}

/** Static pod manifest -> the flags of each control-plane container (env ETCD_* become etcd flags). */
export function flagsFromManifest(
  text: string,
  source: string,
): { found: ComponentFlags[]; error?: InputError } {
  const parsed = parseUntrustedYaml(text);
  if ("error" in parsed) return { found: [], error: parsed.error };
  const found = parsed.docs.flatMap((doc) => {
    const containers =
      isRecord(doc) && isRecord(doc.spec) && Array.isArray(doc.spec.containers) ? doc.spec.containers : [];
    return containers.flatMap((c: unknown) => {
      const f = isRecord(c) ? containerFlags(c, source) : undefined;
      return f ? [f] : [];
    });
  });
  return { found };
}

/** A container that runs a component: its command and args as flags. */
function containerFlags(c: Record<string, unknown>, source: string): ComponentFlags | undefined {
  const command = Array.isArray(c.command) ? c.command.map(String) : [];
  const args = Array.isArray(c.args) ? c.args.map(String) : [];
  const component = componentOf(String(c.name ?? "")) ?? componentOf(command[0] ?? "");
  if (!component) return undefined;
  const flags = parseFlags([...command, ...args]);
  if (component === "etcd" && Array.isArray(c.env)) etcdEnvFlags(flags, c.env);
  return { component, source, flags };
}

/** A container's ETCD_* variables are flags its command line did not set. */
function etcdEnvFlags(flags: Map<string, string>, env: unknown[]): void {
  for (const e of env) {
    if (!isRecord(e) || typeof e.name !== "string" || !e.name.startsWith("ETCD_") || e.value === undefined)
      continue;
    const flag = e.name.slice(5).toLowerCase().replace(/_/g, "-");
    if (!flags.has(flag)) flags.set(flag, String(e.value));
  }
}

/** /proc/<pid>/cmdline -> flags, for the components kube-bench looks for. */
export function flagsFromCmdline(cmdline: Buffer, source: string): ComponentFlags | undefined {
  return flagsFromArgv(cmdline.toString("utf8").split("\0").filter(Boolean), source);
}

/** A command line (a process's, a systemd ExecStart's) -> the component it runs and its flags. */
export function flagsFromArgv(argv: string[], source: string): ComponentFlags | undefined {
  const component = componentOf(argv[0] ?? "");
  return component ? { component, source, flags: parseFlags(argv.slice(1)) } : undefined;
}
