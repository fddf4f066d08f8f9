import { stderr, stdout } from "node:process";

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(stream: NodeJS.WriteStream = stdout): boolean {
  return stream.isTTY === true && !("NO_COLOR" in process.env && process.env.NO_COLOR !== "");
}

const CODES = { red: 31, yellow: 33, green: 32, bold: 1, dim: 2, cyan: 36 } as const;
export type Style = keyof typeof CODES;

export function paint(text: string, style: Style, stream: NodeJS.WriteStream = stdout): string {
  return useColor(stream) ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text;
}

export function out(line = ""): void {
  stdout.write(`${line}\n`);
}

export function info(line: string): void {
  stderr.write(`${line}\n`);
}

export function warn(line: string): void {
  stderr.write(`${paint("warning:", "yellow", stderr)} ${line}\n`);
}

/** A one-line progress counter on stderr, shown only when stderr is a terminal. */
export function progress(label: string): { tick: (done: number, total: number) => void; end: () => void } {
  if (!stderr.isTTY) return { tick: () => {}, end: () => {} };
  return {
    tick: (done, total) => stderr.write(`\r${label} ${done}/${total}`),
    end: () => stderr.write("\r\x1b[K"),
  };
}

/** Columns padded like Go's tabwriter with padding 3 (kubeadm's check-expiration layout). */
export function table(rows: string[][], minWidth = 10, padding = 3): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? minWidth, cell.length);
    });
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + padding)))
        .join("")
        .trimEnd(),
    )
    .join("\n");
}
