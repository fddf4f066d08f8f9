import { Lexer } from "yaml";
import { errorMessage, InputError } from "../errors.js";

/**
 * A cheap scan of untrusted YAML (or JSON) before a parser sees it. The `yaml` parser recurses
 * once per nesting level: half a megabyte of "[[[[" exhausts the stack (a V8 fatal error in some
 * call paths) and megabytes of nested maps cost hundreds of megabytes. Real Kubernetes files nest
 * a dozen levels deep, so a bound far above that refuses only hostile text.
 */
export const MAX_YAML_DEPTH = 64;

/**
 * The input error (exit 2) the text must be refused with (naming `source`), or undefined when its
 * nesting stays within `maxDepth`.
 */
export function yamlNestingError(
  text: string,
  source?: string,
  maxDepth = MAX_YAML_DEPTH,
): InputError | undefined {
  const at = source ? `${source}: ` : "";
  const too = (how: string) =>
    new InputError(`${at}YAML nested more than ${maxDepth} levels deep (${how}): not parsed`);
  if (maxFlowDepth(text, maxDepth) > maxDepth) return too("brackets");
  if (maxBlockDepth(text, maxDepth) > maxDepth) return too("indentation");
  return undefined;
}

/**
 * Depth of flow collections, from the `yaml` package's own lexer: it is iterative, and it knows
 * quoted and block scalars exactly as the parser will, so no bracket is miscounted. Stops once
 * over the limit.
 */
function maxFlowDepth(text: string, limit: number): number {
  // Depth never exceeds the number of openers: most files (a kubeconfig has one "{}") need no lexing,
  // which costs more than parsing them does.
  if (openers(text, limit) <= limit) return 0;
  let depth = 0;
  let max = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === "[" || token === "{") {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if ((token === "]" || token === "}") && depth > 0) depth--;
  }
  return max;
}

/** How many "[" and "{" the text holds, counted up to just past `limit`. */
function openers(text: string, limit: number): number {
  let n = 0;
  for (let i = 0; i < text.length && n <= limit; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) n++;
  }
  return n;
}

/** Block nesting: increasing indentation levels plus "- " and "? " markers at the start of a line. */
function maxBlockDepth(text: string, limit: number): number {
  const indents: number[] = [];
  let max = 0;
  for (const line of text.split("\n")) {
    const m = /^( *)((?:[-?] +)*)(.?)/.exec(line);
    if (!m || m[3] === "" || m[3] === "#") continue;
    const indent = m[1]?.length ?? 0;
    while (indents.length > 0 && (indents[indents.length - 1] ?? 0) >= indent) indents.pop();
    indents.push(indent);
    const markers = (m[2] ?? "").replace(/ +/g, "").length;
    const depth = indents.length + markers;
    if (depth > max) max = depth;
    if (max > limit) return max;
  }
  return max;
}

/** The YAML parser's error as an input error: `what`, then the first line of its message; kept as the cause. */
export function yamlError(what: string, cause: unknown): InputError {
  return new InputError(`${what}: ${errorMessage(cause).split("\n")[0]}`, { cause });
}

/** Throws an input error (exit 2) naming `source` when the text nests too deeply to parse safely. */
export function assertYamlNesting(text: string, source: string): void {
  const err = yamlNestingError(text, source);
  if (err) throw err;
}
