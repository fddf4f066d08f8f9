import { type Command, InvalidArgumentError } from "commander";
import { parseDuration } from "../pki/duration.js";
import { treePaths } from "../pki/paths.js";

export type OutputFormat = "text" | "json" | "yaml" | "sarif" | "html";

export function outputFormat(allowed: OutputFormat[]) {
  return (value: string): OutputFormat => {
    if (!(allowed as string[]).includes(value))
      throw new InvalidArgumentError(`must be one of ${allowed.join(", ")}`);
    return value as OutputFormat;
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

/** --root and --state, shared by the commands that use the ledger; --offline-dir for those that sign. */
export const rootOpt = (c: Command, { signs = true } = {}) => {
  c.option("--root <dir>", "treat this folder as the node's /", "/").option(
    "--state <dir>",
    "folder of the ledger (default: <root>/var/lib/kubepki)",
  );
  return signs
    ? c.option("--offline-dir <dir>", "where the CA keys are kept when they are not on the node")
    : c;
};

/** -o text|json|yaml (or the formats given), for every command with machine output. */
export const outputOpt = (c: Command, formats: OutputFormat[] = ["text", "json", "yaml"]) =>
  c.option("-o, --output <format>", formats.join(" | "), outputFormat(formats), "text");

/** Prints data as JSON or YAML and returns true; false for text (the caller prints its own). */
export async function printData(format: string, data: unknown): Promise<boolean> {
  if (format === "json") process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else if (format === "yaml") process.stdout.write((await import("yaml")).stringify(data));
  else return false;
  return true;
}

export interface Common {
  root: string;
  state?: string;
  offlineDir?: string;
}

export const pathsOf = (f: Common) => treePaths(f.root, undefined, f.offlineDir, f.state);

export function duration(flag: string) {
  return (v: string) => {
    try {
      return parseDuration(v, flag);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}
