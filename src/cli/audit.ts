import { type Command, InvalidArgumentError } from "commander";
import type { AuditRequest } from "../app/audit.js";
import { SEVERITIES } from "../audit/finding.js";
import { ExitCode } from "../errors.js";
import { DISTROS } from "../layout/types.js";
import { act, type OutputFormat, oneOf, withFlags, withOutput } from "./common.js";
import { info, out, useColor } from "./output.js";

type AuditFlags = AuditRequest & { output: OutputFormat; out?: string };

export function registerAudit(program: Command): void {
  const cmd = program
    .command("audit")
    .description("Inspect a node read-only and report every weakness of its PKI and TLS wiring");
  withFlags(cmd, { root: true, ledger: true })
    .option("--distro <name>", `override detection: ${DISTROS.join(", ")}`, oneOf(DISTROS))
    .option("--processes", "also read the flags of running processes (/proc/*/cmdline), with --root /");
  withOutput(cmd, ["text", "json", "yaml", "sarif", "html"])
    .option("--out <file>", "write the report to this file instead of stdout")
    .option(
      "--fail-on <severity>",
      `exit 1 when a finding at or above it exists: ${SEVERITIES.join(", ")}`,
      oneOf(SEVERITIES),
    )
    .option(
      "--profile <profile>",
      "cis (CIS 1.11/1.12 modes) | strict (certificates 600 too)",
      oneOf(["cis", "strict"] as const),
      "cis",
    )
    .option("--expiring-days <n>", "report leaf certificates expiring within n days", wholeDays, 30)
    .addHelpText(
      "after",
      `
Examples:
  kubepki audit                                   # this node, text report
  kubepki audit --root /mnt/node-image --distro k3s -o json
  kubepki audit --root /mnt/node-image -o yaml
  kubepki audit --processes -o sarif --out audit.sarif --fail-on high
  kubepki audit --root ./node -o html --out report.html`,
    );
  act(cmd, async ({ output, out: file, ...req }: AuditFlags) => {
    const { audit, renderReport, writeReport } = await import("../app/audit.js");
    const { report, failed } = await audit(req);
    const text = await renderReport(report, output, !file && useColor());
    if (file) {
      await writeReport(req.root, file, text);
      info(`wrote ${output} report to ${file}: ${report.summary.total} findings`);
    } else out(text.trimEnd());
    return failed ? ExitCode.Findings : undefined;
  });
}

function wholeDays(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number of days");
  return n;
}
