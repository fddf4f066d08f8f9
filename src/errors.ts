/**
 * Errors are values a person can act on. Exit codes follow DESIGN.md:
 * 2 usage or input error, 3 I/O or environment error.
 */
export class KubepkiError extends Error {
  constructor(
    message: string,
    readonly exitCode: 2 | 3 = 2,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flags, bad configuration, bad files handed to us: exit 2. */
export class InputError extends KubepkiError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 2, options);
  }
}

/** A path that leads out of the tree it belongs to: refused even with --force. */
export class UnsafePathError extends InputError {}

/** The environment failed us (disk, permissions, missing tools): exit 3. */
export class IoError extends KubepkiError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 3, options);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
