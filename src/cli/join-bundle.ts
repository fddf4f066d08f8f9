import type { Command } from "commander";
import type { JoinBundleRequest } from "../app/join.js";
import { act, printData, warnAll, withFlags, withOutput } from "./common.js";
import { info, out, table } from "./output.js";

type JoinBundleFlags = JoinBundleRequest & { output: string };

export function registerJoinBundle(program: Command): void {
  const cmd = program
    .command("join-bundle")
    .description(
      "Encrypt what every control plane shares (the three CAs with their keys, sa.key/sa.pub) for kubepki init --join",
    );
  withFlags(cmd, {
    root: "the first control plane's / (where its PKI is)",
    offlineDir: "where the CA keys are when init kept them off the node (--external-ca)",
    certDir: true,
  })
    .requiredOption("--out <file>", "the bundle file (mode 0600, written atomically)")
    .option("--force", "replace an existing --out file");
  withOutput(cmd, ["text", "json"]).addHelpText(
    "after",
    `
The key that opens the bundle is printed once (stderr; with -o json in the JSON) and stored nowhere.

Examples:
  kubepki join-bundle --root / --out /root/join.bundle
  kubepki join-bundle --root / --offline-dir /mnt/usb/kubepki --out /root/join.bundle -o json
  # on the new control plane:
  kubepki init --root / --join join.bundle --certificate-key <key> --offline-dir /mnt/offline --config kubeadm.yaml`,
  );
  act(cmd, async ({ output, ...req }: JoinBundleFlags) => {
    const { createJoinBundle } = await import("../app/join.js");
    const r = await createJoinBundle(req);
    warnAll(r.notices);
    if (await printData(output, r)) return undefined;
    out(`wrote ${r.out} (0600)`);
    const rows = [["CA", "SHA-256", "KEY"]];
    for (const c of r.cas)
      rows.push([c.ca, c.sha256, c.keyOffline ? "offline on every node" : "on the node"]);
    out(table(rows));
    out("sa.key, sa.pub: the service-account key pair");
    info(
      `certificate key (shown once; kubepki init --join ${r.out} --certificate-key KEY): ${r.certificateKey}`,
    );
    return undefined;
  });
}
