import { parseAllDocuments } from "yaml";
import { InputError } from "../errors.js";
import { yamlError, yamlNestingError } from "../fsx/yaml-guard.js";

/**
 * Parses untrusted YAML (or JSON) from a node: nesting depth bounded before parsing, duplicate keys
 * refused, alias expansion bounded
 * (a "billion laughs" document fails instead of eating memory). Returns the documents, or the
 * input error saying why they cannot be read (the parser's error as its cause): a node's file that
 * does not parse is a finding to report, not a reason to stop.
 */
export function parseUntrustedYaml(text: string): { docs: unknown[] } | { error: InputError } {
  if (text.includes("\u0000")) return { error: new InputError("binary content, not YAML") };
  const nesting = yamlNestingError(text);
  if (nesting) return { error: nesting };
  try {
    const docs = parseAllDocuments(text, { uniqueKeys: true });
    if (!Array.isArray(docs)) return { error: new InputError("not a YAML stream") };
    const out: unknown[] = [];
    for (const d of docs) {
      const err = d.errors[0];
      if (err) return { error: yamlError("invalid YAML", err) };
      out.push(d.toJS({ maxAliasCount: 100 }));
    }
    return { docs: out };
  } catch (err) {
    return { error: yamlError("YAML refused", err) };
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads a nested field: get(obj, "authentication", "x509", "clientCAFile"). */
export function get(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}
