import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { SEVERITIES, type Severity, severityRank } from "../audit/finding.js";
import { DISTROS, type Distro } from "../layout/types.js";
import { outputFormat } from "./common.js";
import { info, out, useColor } from "./output.js";

interface AuditFlags {
  root: string;
  distro?: Distro;
  processes?: boolean;
  output: "text" | "json" | "yaml" | "sarif" | "html";
  out?: string;
  failOn?: Severity;
  profile: "cis" | "strict";
  expiringDays: number;
}

function oneOf<T extends string>(values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v))
      throw new InvalidArgumentError(`must be one of ${values.join(", ")}`);
    return v as T;
  };
}

export function registerAudit(program: Command): void {
  program
    .command("audit")
    .description("Inspect a node read-only and report every weakness of its PKI and TLS wiring")
    .option("--root <dir>", "treat this folder as the node's /", "/")
    .option("--distro <name>", `override detection: ${DISTROS.join(", ")}`, oneOf(DISTROS))
    .option("--processes", "also read the flags of running processes (/proc/*/cmdline), with --root /")
    .option(
      "-o, --output <format>",
      "text | json | yaml | sarif | html",
      outputFormat(["text", "json", "yaml", "sarif", "html"]),
      "text",
    )
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
    .option(
      "--expiring-days <n>",
      "report leaf certificates expiring within n days",
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number of days");
        return n;
      },
      30,
    )
    .addHelpText(
      "after",
      `
Examples:
  kubepki audit                                   # this node, text report
  kubepki audit --root /mnt/node-image --distro k3s -o json
  kubepki audit --root /mnt/node-image -o yaml
  kubepki audit --processes -o sarif --out audit.sarif --fail-on high
  kubepki audit --root ./node -o html --out report.html`,
    )
    .action(async (flags: AuditFlags) => {
      const [{ auditNode }, { buildReport }] = await Promise.all([
        import("../audit/audit.js"),
        import("../report/model.js"),
      ]);
      const result = auditNode({
        root: flags.root.trim() === "" ? "" : resolve(flags.root),
        distro: flags.distro,
        processes: flags.processes,
        profile: flags.profile,
        expiringDays: flags.expiringDays,
      });
      const report = buildReport(result);
      let text: string;
      if (flags.output === "json") text = `${JSON.stringify(report, null, 2)}\n`;
      else if (flags.output === "yaml") text = (await import("yaml")).stringify(report);
      else if (flags.output === "sarif") text = (await import("../report/sarif.js")).renderSarif(report);
      else if (flags.output === "html") text = (await import("../report/html.js")).renderHtml(report);
      else text = (await import("../report/text.js")).renderText(report, !flags.out && useColor());
      if (flags.out) {
        const { writeFileAtomic } = await import("../fsx/atomic.js");
        writeFileAtomic(resolve(flags.out), text, 0o644);
        info(`wrote ${flags.output} report to ${flags.out}: ${report.summary.total} findings`);
      } else out(text.trimEnd());
      if (flags.failOn) {
        const limit = severityRank(flags.failOn);
        if (report.findings.some((f) => severityRank(f.severity) >= limit)) process.exitCode = 1;
      }
    });
}
