import { InvalidArgumentError } from "commander";

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
