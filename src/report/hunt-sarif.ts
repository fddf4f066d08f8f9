import { pathToFileURL } from "node:url";
import { HUNT_RULES } from "../hunt/taxonomy.js";
import type { HuntReport } from "./hunt-model.js";
import { sarifLog } from "./sarif.js";

/** SARIF 2.1.0 of a hunt: hunt's rules, each result at the audit-log line its certificate was first seen on. */
export function renderHuntSarif(r: HuntReport): string {
  return sarifLog({
    rules: HUNT_RULES,
    findings: r.findings,
    location: (f) => ({ uri: pathToFileURL(f.path ?? "/").href }),
    generatedAt: r.generatedAt,
    properties: {
      ledger: r.ledger.path,
      logs: r.logs.map((l) => ({
        path: l.path,
        lines: l.lines,
        malformed: l.malformed,
        oversized: l.oversized,
      })),
    },
  });
}
