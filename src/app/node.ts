import { dirname } from "node:path";
import type { NodeAddResult } from "../pki/node-add.js";
import type { NodeInput } from "../pki/spec.js";
import { parseKeyAlgorithm } from "../x509/algorithms.js";
import { type Duration, durationMs, inTree, type Notice, storeOf, type TreeOptions } from "./tree.js";

export interface NodeAddRequest extends TreeOptions {
  /** "NAME=IP[,DNS...]" or parsed. */
  node: string | NodeInput;
  /** Write kubelet.crt and kubelet.key to this folder instead of <offline>/nodes/NAME/. */
  out?: string;
  /** Replace an existing pair (the old one is backed up beside it). */
  force?: boolean;
  algorithm?: string;
  certValidity?: Duration;
}

export interface NodeAddOutcome {
  result: Omit<NodeAddResult, "issued">;
  /** How to install the pair and join the node. */
  steps: string[];
  notices: Notice[];
}

/** `kubepki node add`: a node's kubelet serving pair from the cluster CA, recorded in the ledger. */
export async function addNode(req: NodeAddRequest): Promise<NodeAddOutcome> {
  const [
    { nodeFromFlag, nodeFromInput },
    { resolveOfflineDir },
    { treePaths, kubeletServingPaths },
    pki,
    { readSettings },
  ] = await Promise.all([
    import("../pki/node-input.js"),
    import("../pki/init.js"),
    import("../pki/paths.js"),
    import("../pki/node-add.js"),
    import("../pki/settings.js"),
  ]);
  const node =
    typeof req.node === "string"
      ? nodeFromFlag(req.node, `node add ${req.node}`)
      : nodeFromInput(req.node, `node add ${req.node.name}`);
  // The pair is another node's secret: like the offline folder, it is never written into this node's tree.
  const base = treePaths(req.root, req.certDir);
  const outDir = req.out ? resolveOfflineDir(base, req.out) : undefined;
  const offline =
    req.offlineDir || !outDir
      ? resolveOfflineDir(base, req.offlineDir, readSettings(base.stateDir).offlineDir)
      : undefined;
  const notices = [...(outDir?.warnings ?? []), ...(offline?.warnings ?? [])];
  const paths = treePaths(req.root, req.certDir, offline?.dir, req.state);
  const pair = kubeletServingPaths(paths, node.name, false);
  const certValidityMs = await durationMs(req.certValidity, "--cert-validity");
  const result = await inTree(
    paths,
    async () => {
      const { issued, ...result } = await pki.addNode({
        paths,
        node,
        outDir: outDir?.dir ?? dirname(pair?.cert ?? ""),
        force: req.force,
        algorithm: req.algorithm ? parseKeyAlgorithm(req.algorithm, "--algorithm") : undefined,
        certValidityMs,
      });
      const { withLedger, recordIssued } = await import("../ledger/record.js");
      await withLedger(await storeOf(req, paths), (store) =>
        recordIssued(store, [issued], result.supersededSha256 ? [result.supersededSha256] : []),
      );
      return result;
    },
    outDir?.dir,
  );
  return { result, steps: joinSteps(result), notices };
}

const PATCHES = "/etc/kubernetes/patches";

/** How to install the pair and join the node; kubeadm join reads no KubeletConfiguration from --config. */
function joinSteps(r: Omit<NodeAddResult, "issued">): string[] {
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
