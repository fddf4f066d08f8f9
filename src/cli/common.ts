import { type Command, InvalidArgumentError, Option } from "commander";
import type { ExitCode } from "../errors.js";
import { parseDuration } from "../pki/duration.js";
import { warn } from "./output.js";

/** A flag's enum: the value must be one of `values` (usage error, exit 2, otherwise). */
export function oneOf<T extends string>(values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v))
      throw new InvalidArgumentError(`must be one of ${values.join(", ")}`);
    return v as T;
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function commaList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

/** A duration flag ("8760h", "30d") parsed to milliseconds. */
export function duration(flag: string) {
  return (v: string) => {
    try {
      return parseDuration(v, flag);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** The flags shared by many commands, declared once: name, argument, default, help line. */
export const SHARED_FLAGS = {
  root: { flags: "--root <dir>", help: "treat this folder as the node's /", default: "/" },
  store: {
    flags: "--store <url>",
    help: "where the ledger lives: sqlite:PATH (default <root>/var/lib/kubepki/ledger.db) or etcd://HOST:PORT[,HOST:PORT...]",
  },
  state: {
    flags: "--state <dir>",
    help: "older name for --store sqlite:DIR/ledger.db (the folder of the SQLite ledger)",
  },
  etcdCacert: {
    flags: "--etcd-cacert <file>",
    help: "etcd store: CA of etcd's serving certificate (default: <root>/etc/kubernetes/pki/etcd/ca.crt)",
  },
  etcdCert: {
    flags: "--etcd-cert <file>",
    help: "etcd store: client certificate (default: kubepki's own, <root>/etc/kubernetes/kubepki/etcd-client.crt, which init issues)",
  },
  etcdKey: { flags: "--etcd-key <file>", help: "etcd store: the client certificate's key" },
  etcdPrefix: {
    flags: "--etcd-prefix <prefix>",
    help: "etcd store: key prefix of the ledger (default: /kubepki/)",
  },
  etcdTimeout: {
    flags: "--etcd-timeout <duration>",
    help: "etcd store: how long one call may take before the endpoint counts as unreachable (default: 5s)",
  },
  offlineDir: {
    flags: "--offline-dir <dir>",
    help: "where the CA keys are kept when they are not on the node",
  },
  certDir: {
    flags: "--cert-dir <dir>",
    help: "certificates directory on the node",
    default: "/etc/kubernetes/pki",
  },
} as const satisfies Record<string, { flags: string; help: string; default?: string }>;

export type SharedFlag = keyof typeof SHARED_FLAGS;

/** `withFlags(cmd, { ledger: true })`: every flag that says where the ledger lives. */
const LEDGER_FLAGS: SharedFlag[] = [
  "store",
  "state",
  "etcdCacert",
  "etcdCert",
  "etcdKey",
  "etcdPrefix",
  "etcdTimeout",
];

/** What the shared flags parse to (root always has a value). */
export interface Common {
  root: string;
  store?: string;
  state?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdPrefix?: string;
  etcdTimeout?: string;
  offlineDir?: string;
  certDir?: string;
}

/**
 * Adds shared flags to a command, in the order given: `true` for the common help line, or a help
 * line of the command's own (what --offline-dir holds differs between init and renew).
 */
export function withFlags(
  cmd: Command,
  flags: Partial<Record<SharedFlag | "ledger", true | string>>,
): Command {
  const entries = Object.entries(flags).flatMap(([name, help]) =>
    name === "ledger" ? LEDGER_FLAGS.map((f) => [f, true] as const) : [[name as SharedFlag, help] as const],
  );
  for (const [name, help] of entries) {
    const spec: { flags: string; help: string; default?: string } = SHARED_FLAGS[name];
    const option = new Option(spec.flags, help === true ? spec.help : help);
    cmd.addOption(spec.default === undefined ? option : option.default(spec.default));
  }
  return cmd;
}

export const OUTPUT_FORMATS = ["text", "json", "yaml", "sarif", "html"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** -o text|json|yaml (or the formats given), for every command with machine output. */
export function withOutput(
  cmd: Command,
  formats: readonly OutputFormat[] = ["text", "json", "yaml"],
  help?: string,
) {
  return cmd.option("-o, --output <format>", help ?? formats.join(" | "), oneOf(formats), "text");
}

/** Prints data as JSON or YAML and returns true; false for text (the caller prints its own). */
export async function printData(format: string, data: unknown): Promise<boolean> {
  if (format === "json") process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else if (format === "yaml") process.stdout.write((await import("yaml")).stringify(data));
  else return false;
  return true;
}

export function warnAll(notices: string[]): void {
  for (const n of notices) warn(n);
}

/** The exit code each parsed program ended with (set by an action that found something). */
const outcomes = new WeakMap<Command, ExitCode>();

/**
 * Registers the action of a command: it may return an exit code (1 when it found something), which
 * the program ends with after printing. Errors are thrown, not returned.
 */
export function act<A extends unknown[]>(
  cmd: Command,
  fn: (...args: A) => Promise<ExitCode | undefined>,
): Command {
  return cmd.action(async (...args: unknown[]) => {
    const code = await fn(...(args as A));
    let top = cmd;
    while (top.parent) top = top.parent;
    if (code !== undefined) outcomes.set(top, code);
  });
}

export function outcomeOf(program: Command): ExitCode | undefined {
  return outcomes.get(program);
}
