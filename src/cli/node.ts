import type { Command } from "commander";
import type { NodeAddOutcome, NodeAddRequest } from "../app/node.js";
import { KEY_ALGORITHMS } from "../x509/algorithms.js";
import { act, duration, printData, warnAll, withFlags, withOutput } from "./common.js";
import { info, out, paint, warn } from "./output.js";

type NodeAddFlags = Omit<NodeAddRequest, "node"> & { output: "text" | "json" | "yaml" };

export function registerNode(program: Command): void {
  const node = program.command("node").description("Other nodes of the cluster: add");
  const cmd = node
    .command("add")
    .description(
      "Sign a node's kubelet serving pair from the cluster CA into the offline folder, and say how to install it and join the node",
    )
    .argument("<NAME=IP[,DNS...]>", "the node's name and addresses (at least one IP)");
  withFlags(cmd, {
    root: "the control-plane node's / (where the cluster CA is)",
    certDir: true,
    offlineDir: "the offline folder: the pair goes to nodes/NAME/; CA key if kept offline",
  })
    .option("--out <dir>", "write kubelet.crt and kubelet.key to this folder instead")
    .option("--force", "replace an existing pair (the old one is backed up beside it)")
    .option("--algorithm <alg>", `key algorithm: ${KEY_ALGORITHMS.join(" | ")} (default: the CA's)`)
    .option("--cert-validity <duration>", "validity (default: 8760h)", duration("--cert-validity"));
  withOutput(withFlags(cmd, { ledger: true })).addHelpText(
    "after",
    `
Examples:
  kubepki node add worker1=10.0.0.21 --root / --offline-dir /mnt/usb/kubepki
  kubepki node add worker2=10.0.0.22,worker2.example.com --root ./node --offline-dir ./offline -o json
  kubepki node add worker1=10.0.0.21 --root ./node --offline-dir ./offline --force   # re-sign

The certificate: CN system:node:NAME, O system:nodes, serverAuth, SANs NAME, the IPs and DNS
names given; signed by the cluster CA (the profile init uses for --node). Recorded in the ledger.`,
  );
  act(cmd, async (spec: string, { output, ...req }: NodeAddFlags) => {
    const { addNode } = await import("../app/node.js");
    const r = await addNode({ ...req, node: spec });
    warnAll(r.notices);
    if (!(await printData(output, { ...r.result, steps: r.steps }))) printNodeAdd(r);
    return undefined;
  });
}

function printNodeAdd({ result: r, steps }: NodeAddOutcome): void {
  out(`${paint("kubepki node add", "bold")}: kubelet serving certificate of node ${r.node} (${r.action})`);
  out(`  ${r.cert}  sha256 ${r.sha256}`);
  out(`  ${r.key}  (mode 0600)`);
  out(`  ${r.subject}; serverAuth; issued by ca; until ${r.notAfter}`);
  out(
    `[certs] kubelet serving cert is signed for DNS names [${r.sans.dns.join(" ")}] and IPs [${r.sans.ips.join(" ")}]`,
  );
  out("");
  out(`Next, on ${r.node}:`);
  for (const step of steps) out(step);
  if (r.backedUp.length > 0) info(`the replaced pair was backed up to ${r.backedUp.join(", ")}`);
  warn(
    `${r.key} is node ${r.node}'s private key: copy it over an encrypted channel and keep the folder off this host`,
  );
}
