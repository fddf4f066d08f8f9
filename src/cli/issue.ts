import type { Command } from "commander";
import type { IssueClientRequest } from "../app/issue.js";
import { act, collect, duration, printData, warnAll, withFlags, withOutput } from "./common.js";
import { out } from "./output.js";

type IssueFlags = Omit<IssueClientRequest, "groups"> & { group?: string[]; output: string };

export function registerIssue(program: Command): void {
  const issue = program.command("issue").description("Issue short-lived credentials");
  const cmd = issue
    .command("client")
    .description("A kubeconfig with a fresh key and a short-lived client certificate from the cluster CA");
  withOutput(withFlags(cmd, { root: true, ledger: true, offlineDir: true }))
    .requiredOption("--user <name>", "user name (certificate CN)")
    .option("--group <group>", "group (certificate O), repeatable", collect)
    .option("--ttl <duration>", "lifetime (default: 8h)", duration("--ttl"))
    .option("--max-ttl <duration>", "refuse a --ttl longer than this (default: 168h)", duration("--max-ttl"))
    .option("--server <url>", "API server URL (default: admin.conf's)")
    .option("--break-glass", "allow group system:masters (never revocable; recorded as such)")
    .requiredOption("--out <file>", "where to write the kubeconfig (mode 0600)")
    .option("--force", "replace an existing --out file")
    .addHelpText(
      "after",
      "\nExample:\n  kubepki issue client --root / --user jane --group dev --ttl 8h --out jane.kubeconfig",
    );
  act(cmd, async ({ output, group, ...req }: IssueFlags) => {
    const { issueClient } = await import("../app/issue.js");
    const { client: r, notices } = await issueClient({ ...req, groups: group });
    warnAll(notices);
    if (await printData(output, r)) return undefined;
    out(
      `wrote ${r.out}: user ${r.user}${r.groups.length ? ` groups ${r.groups.join(",")}` : ""}, until ${r.notAfter}`,
    );
    out(`serial ${r.serial}, credential id ${r.credentialId}`);
    return undefined;
  });
}
