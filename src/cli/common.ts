import { type Command, InvalidArgumentError } from "commander";
import { treePaths } from "../pki/paths.js";
import { parseDuration } from "../pki/validate.js";

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

/** --root, --state and --offline-dir, shared by the commands that use the ledger. */
export const rootOpt = (c: Command) =>
  c
    .option("--root <dir>", "treat this folder as the node's /", "/")
    .option("--state <dir>", "folder of the ledger (default: <root>/var/lib/kubepki)")
    .option("--offline-dir <dir>", "where offline CA keys are kept");

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
