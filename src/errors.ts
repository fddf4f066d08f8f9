/**
 * Errors are values a person can act on. Every command ends with one of these exit codes
 * (docs/design.md, "Errors and exit codes").
 */
export const ExitCode = {
  /** Done, nothing to report. */
  Ok: 0,
  /** Done, and something was found: an audit finding at --fail-on, an expired certificate, a ledger difference. */
  Findings: 1,
  /** Usage or input error: bad flags, bad configuration, bad files handed to us. */
  Input: 2,
  /** I/O or environment error: the disk, permissions, a missing tool, work left undone. */
  Io: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class KubepkiError extends Error {
  constructor(
    message: string,
    readonly exitCode: typeof ExitCode.Input | typeof ExitCode.Io = ExitCode.Input,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flags, bad configuration, bad files handed to us: exit 2. */
export class InputError extends KubepkiError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Input, options);
  }
}

/** A path that leads out of the tree it belongs to: refused even with --force. */
export class UnsafePathError extends InputError {}

/** The environment failed us (disk, permissions, missing tools): exit 3. */
export class IoError extends KubepkiError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Io, options);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The error and every cause under it, one line each (`--debug`): the errno of a failed write, the
 * parse error of a bad PEM. With stacks, the unexpected ones show where they came from.
 */
export function describeChain(err: unknown, { stacks = false } = {}): string[] {
  const lines: string[] = [];
  const seen = new Set<unknown>();
  for (let e: unknown = err, depth = 0; e !== undefined && !seen.has(e); depth++) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    const head = `${depth === 0 ? "" : "caused by: "}${e instanceof Error ? e.name : typeof e}: ${errorMessage(e)}`;
    lines.push(typeof code === "string" ? `${head} [${code}]` : head);
    if (stacks && e instanceof Error && e.stack)
      lines.push(
        ...e.stack
          .split("\n")
          .slice(1)
          .map((l) => `  ${l.trim()}`),
      );
    e = e instanceof Error ? e.cause : undefined;
  }
  return lines;
}
