import { resolve } from "node:path";
import type { Command } from "commander";
import { type Common, collect, duration, outputOpt, pathsOf, printData, rootOpt } from "./common.js";
import { out, warn } from "./output.js";

export function registerIssue(program: Command): void {
  const issue = program.command("issue").description("Issue short-lived credentials");
  outputOpt(rootOpt(issue.command("client")))
    .description("A kubeconfig with a fresh key and a short-lived client certificate from the cluster CA")
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
    )
    .action(
      async (
        f: Common & {
          user: string;
          group?: string[];
          ttl?: number;
          maxTtl?: number;
          server?: string;
          breakGlass?: boolean;
          force?: boolean;
          out: string;
          output: string;
        },
      ) => {
        const [{ withLedger }, m] = await Promise.all([
          import("../ledger/record.js"),
          import("../revoke/issue-client.js"),
        ]);
        const paths = pathsOf(f);
        const groups = f.group ?? [];
        if (f.breakGlass && groups.includes(m.SYSTEM_MASTERS))
          warn(
            "break-glass: this certificate is in system:masters. kube-apiserver allows it before any authorizer runs, so neither RBAC nor kubepki's webhook can stop it: only rotating the cluster CA can cut it off before it expires. Keep it offline and short.",
          );
        const r = await withLedger(paths.ledgerFile, (store) =>
          m.issueClient({
            paths,
            store,
            user: f.user,
            groups,
            ttlMs: f.ttl ?? m.DEFAULT_CLIENT_TTL_MS,
            maxTtlMs: f.maxTtl ?? m.DEFAULT_CLIENT_MAX_TTL_MS,
            breakGlass: !!f.breakGlass,
            server: f.server,
            out: resolve(f.out),
            force: f.force,
          }),
        );
        if (await printData(f.output, r)) return;
        out(
          `wrote ${r.out}: user ${r.user}${r.groups.length ? ` groups ${r.groups.join(",")}` : ""}, until ${r.notAfter}`,
        );
        out(`serial ${r.serial}, credential id ${r.credentialId}`);
      },
    );
}
