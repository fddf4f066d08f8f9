import type { Command } from "commander";
import type { HuntFormat, HuntRequest } from "../app/hunt.js";
import { SEVERITIES } from "../audit/finding.js";
import { ExitCode } from "../errors.js";
import { act, oneOf, withFlags, withOutput } from "./common.js";
import { info, out, useColor, warn } from "./output.js";

type HuntFlags = Omit<HuntRequest, "auditLogs"> & { auditLog: string[]; output: HuntFormat; out?: string };

export function registerHunt(program: Command): void {
  const cmd = program
    .command("hunt")
    .description(
      "Find client certificates kubepki never issued, revoked ones still used, and system:masters use, in kube-apiserver audit logs",
    );
  withFlags(cmd, { root: true, ledger: true })
    .requiredOption(
      "--audit-log <file...>",
      "kube-apiserver audit logs (JSON lines; gzip and rotated files too; a folder: every file in it)",
    )
    .option(
      "--cache-delay <duration>",
      "how long after a revocation requests may still pass (unauthorizedTTL + reload)",
      "11s",
    );
  withOutput(cmd, ["text", "json", "yaml", "sarif"])
    .option("--out <file>", "write the report to this file instead of stdout")
    .option(
      "--fail-on <severity>",
      `exit 1 when a finding at or above it exists: ${SEVERITIES.join(", ")}`,
      oneOf(SEVERITIES),
    )
    .addHelpText(
      "after",
      `
Examples:
  kubepki hunt --root / --audit-log /var/log/kubernetes/audit/audit.log
  kubepki hunt --root / --audit-log /var/log/kubernetes/audit/ --fail-on high
  kubepki hunt --root / --audit-log audit.log audit-2026-11-30T10-00-00.000.log.gz -o sarif --out hunt.sarif`,
    );
  act(cmd, async ({ output, out: file, auditLog, ...req }: HuntFlags) => {
    const { hunt, renderHuntReport } = await import("../app/hunt.js");
    const { report, failed } = await hunt({ ...req, auditLogs: auditLog });
    for (const w of report.warnings) warn(w);
    const text = await renderHuntReport(report, output, !file && useColor());
    if (file) {
      const { writeReport } = await import("../app/audit.js");
      await writeReport(req.root ?? "", file, text);
      info(`wrote ${output} report to ${file}: ${report.summary.total} findings`);
    } else out(text.trimEnd());
    return failed ? ExitCode.Findings : undefined;
  });
}
