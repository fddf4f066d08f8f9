import { parseAllDocuments } from "yaml";
import { yamlNestingError } from "../fsx/yaml-guard.js";

/**
 * Parses untrusted YAML (or JSON) from a node: nesting depth bounded before parsing, duplicate keys
 * refused, alias expansion bounded
 * (a "billion laughs" document fails instead of eating memory). Returns the documents or the
 * reason they cannot be read.
 */
export function parseUntrustedYaml(text: string): { docs: unknown[] } | { error: string } {
  if (text.includes("\u0000")) return { error: "binary content, not YAML" };
  const nesting = yamlNestingError(text);
  if (nesting) return { error: nesting.message };
  try {
    const docs = parseAllDocuments(text, { uniqueKeys: true });
    if (!Array.isArray(docs)) return { error: "not a YAML stream" };
    const out: unknown[] = [];
    for (const d of docs) {
      const err = d.errors[0];
      if (err) return { error: `invalid YAML: ${err.message.split("\n")[0]}` };
      out.push(d.toJS({ maxAliasCount: 100 }));
    }
    return { docs: out };
  } catch (err) {
    return { error: `YAML refused: ${(err as Error).message.split("\n")[0]}` };
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
