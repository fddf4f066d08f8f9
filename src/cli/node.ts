import { dirname } from "node:path";
import type { Command } from "commander";
import { stringify } from "yaml";
import type { NodeAddResult } from "../pki/node-add.js";
import { KEY_ALGORITHMS, parseKeyAlgorithm } from "../x509/algorithms.js";
import { duration, outputFormat } from "./common.js";
import { info, out, paint, warn } from "./output.js";

interface NodeAddFlags {
  root: string;
  certDir: string;
  offlineDir?: string;
  out?: string;
  force?: boolean;
  algorithm?: string;
  certValidity?: number;
  state?: string;
  output: "text" | "json" | "yaml";
}

export function registerNode(program: Command): void {
  const node = program.command("node").description("Other nodes of the cluster: add");
  node
    .command("add")
    .description(
      "Sign a node's kubelet serving pair from the cluster CA into the offline folder, and say how to install it and join the node",
    )
    .argument("<NAME=IP[,DNS...]>", "the node's name and addresses (at least one IP)")
    .option("--root <dir>", "the control-plane node's / (where the cluster CA is)", "/")
    .option("--cert-dir <dir>", "certificates directory on the node", "/etc/kubernetes/pki")
    .option("--offline-dir <dir>", "the offline folder: the pair goes to nodes/NAME/; CA key if kept offline")
    .option("--out <dir>", "write kubelet.crt and kubelet.key to this folder instead")
    .option("--force", "replace an existing pair (the old one is backed up beside it)")
    .option("--algorithm <alg>", `key algorithm: ${KEY_ALGORITHMS.join(" | ")} (default: the CA's)`)
    .option("--cert-validity <duration>", "validity (default: 8760h)", duration("--cert-validity"))
    .option("--state <dir>", "folder of the issuance ledger (default: <root>/var/lib/kubepki)")
    .option("-o, --output <format>", "text | json | yaml", outputFormat(["text", "json", "yaml"]), "text")
    .addHelpText(
      "after",
      `
Examples:
  kubepki node add worker1=10.0.0.21 --root / --offline-dir /mnt/usb/kubepki
  kubepki node add worker2=10.0.0.22,worker2.example.com --root ./node --offline-dir ./offline -o json
  kubepki node add worker1=10.0.0.21 --root ./node --offline-dir ./offline --force   # re-sign

The certificate: CN system:node:NAME, O system:nodes, serverAuth, SANs NAME, the IPs and DNS
names given; signed by the cluster CA (the profile init uses for --node). Recorded in the ledger.`,
    )
    .action(nodeAdd);
}

/** Parses, signs, records in the ledger, prints. */
async function nodeAdd(spec: string, flags: NodeAddFlags): Promise<void> {
  const [
    { nodeFromFlag },
    { resolveOfflineDir },
    { treePaths, kubeletServingPaths },
    { addNode },
    { readSettings },
  ] = await Promise.all([
    import("../pki/node-input.js"),
    import("../pki/init.js"),
    import("../pki/paths.js"),
    import("../pki/node-add.js"),
    import("../pki/settings.js"),
  ]);
  const node = nodeFromFlag(spec, `node add ${spec}`);
  // The pair is another node's secret: like the offline folder, it is never written into this node's tree.
  const base = treePaths(flags.root, flags.certDir);
  const outDir = flags.out ? resolveOfflineDir(base, flags.out) : undefined;
  const offline =
    flags.offlineDir || !outDir
      ? resolveOfflineDir(base, flags.offlineDir, readSettings(base.stateDir).offlineDir)
      : undefined;
  for (const w of [...(outDir?.warnings ?? []), ...(offline?.warnings ?? [])]) warn(w);
  const offlineDir = offline?.dir;
  const paths = treePaths(flags.root, flags.certDir, offlineDir, flags.state);
  const algorithm = flags.algorithm ? parseKeyAlgorithm(flags.algorithm, "--algorithm") : undefined;
  const pair = kubeletServingPaths(paths, node.name, false);
  const result = await addNode({
    paths,
    node,
    outDir: outDir?.dir ?? dirname(pair?.cert ?? ""),
    force: flags.force,
    algorithm,
    certValidityMs: flags.certValidity,
  });
  const { withLedger, recordIssued } = await import("../ledger/record.js");
  await withLedger(paths.ledgerFile, (store) =>
    recordIssued(store, [result.issued], result.supersededSha256 ? [result.supersededSha256] : []),
  );
  const { issued: _issued, ...printable } = result;
  const doc = { ...printable, steps: joinSteps(result) };
  if (flags.output === "json") out(JSON.stringify(doc, null, 2));
  else if (flags.output === "yaml") out(stringify(doc).trimEnd());
  else printNodeAdd(result);
}

function printNodeAdd(r: NodeAddResult): void {
  out(`${paint("kubepki node add", "bold")}: kubelet serving certificate of node ${r.node} (${r.action})`);
  out(`  ${r.cert}  sha256 ${r.sha256}`);
  out(`  ${r.key}  (mode 0600)`);
  out(`  ${r.subject}; serverAuth; issued by ca; until ${r.notAfter}`);
  out(
    `[certs] kubelet serving cert is signed for DNS names [${r.sans.dns.join(" ")}] and IPs [${r.sans.ips.join(" ")}]`,
  );
  out("");
  out(`Next, on ${r.node}:`);
  for (const step of joinSteps(r)) out(step);
  if (r.backedUp.length > 0) info(`the replaced pair was backed up to ${r.backedUp.join(", ")}`);
  warn(
    `${r.key} is node ${r.node}'s private key: copy it over an encrypted channel and keep the folder off this host`,
  );
}

const PATCHES = "/etc/kubernetes/patches";

/** How to install the pair and join the node; kubeadm join reads no KubeletConfiguration from --config. */
export function joinSteps(r: NodeAddResult): string[] {
  const server = r.apiServer ?? "<control-plane-endpoint>:6443";
  return [
    `  1. Copy ${r.cert} and ${r.key} to ${r.node}, and install them where the kubelet reads them:`,
    "       install -D -m 0644 kubelet.crt /var/lib/kubelet/pki/kubelet.crt",
    "       install -D -m 0600 kubelet.key /var/lib/kubelet/pki/kubelet.key",
    "  2. Point the kubelet at them (KubeletConfiguration tlsCertFile/tlsPrivateKeyFile). A cluster made",
    "     by kubepki init has them in its kubelet-config ConfigMap already; otherwise patch this node:",
    `       mkdir -p ${PATCHES}`,
    `       printf 'tlsCertFile: /var/lib/kubelet/pki/kubelet.crt\\ntlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key\\nserverTLSBootstrap: false\\n' > ${PATCHES}/kubeletconfiguration+merge.yaml`,
    "  3. Join (a token from `kubeadm token create` on a control-plane node):",
    `       kubeadm join ${server} --token <token> --discovery-token-ca-cert-hash ${r.discoveryTokenCaCertHash} --patches ${PATCHES}`,
    "     (kubeadm join ignores a KubeletConfiguration document in its --config file; the patch, kubeadm",
    "     1.25+, is how one node's kubelet settings are set.)",
  ];
}
