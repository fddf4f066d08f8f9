import { readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import { initCluster } from "../../src/app/init.js";
import { apiserverFlags, etcdFlags, KCM, put, writeManifests } from "../fixtures.js";
import { tempDir } from "../helpers.js";
import { KUBELET_CONFIG } from "./node-files.js";

/**
 * A control-plane node as `kubepki init` and then `kubeadm init --config
 * etc/kubernetes/kubepki/kubeadm-config.yaml` leave it: kubepki's PKI and kubeconfigs, kubeadm's
 * static pod manifests with the config's `extraArgs` applied (kubeadm lets an extra arg replace its
 * own flag of that name), and the config's KubeletConfiguration as `var/lib/kubelet/config.yaml`.
 * The advertise address is 127.0.0.1, so the kubeconfigs' server and the certificates' SANs name
 * the loopback address the stand-ins listen on.
 */
export interface KubeadmNode {
  root: string;
  offline: string;
}

type ExtraArgs = { name: string; value: string }[] | Record<string, string> | undefined;

function applyExtraArgs(flags: string[], extra: ExtraArgs): string[] {
  const pairs = Array.isArray(extra) ? extra.map((a) => [a.name, a.value]) : Object.entries(extra ?? {});
  const out = [...flags];
  for (const [name, value] of pairs) {
    const i = out.findIndex((f) => f.startsWith(`--${name}=`));
    if (i >= 0) out[i] = `--${name}=${value}`;
    else out.push(`--${name}=${value}`);
  }
  return out;
}

const loopback = (flags: string[]) => flags.map((f) => f.replaceAll("10.0.0.10", "127.0.0.1"));

/** Other nodes (NAME=IP) whose kubelet serving pairs init signs into the offline folder. */
export async function kubeadmNode(
  opts: { nodes?: string[]; kubeletConfFiles?: boolean } = {},
): Promise<KubeadmNode> {
  const dir = tempDir("kubepki-peers-node-");
  const root = join(dir, "node");
  const offline = join(dir, "offline");
  await initCluster({
    root,
    offlineDir: offline,
    nodeName: "cp1",
    advertiseAddress: "127.0.0.1",
    node: opts.nodes,
  });
  writeKubeadmFiles(root);
  if (opts.kubeletConfFiles) kubeadmKubeletConf(root);
  return { root, offline };
}

/**
 * What kubeadm writes from `etc/kubernetes/kubepki/kubeadm-config.yaml` (at init, and again at
 * `kubeadm upgrade`, which regenerates the manifests from the ClusterConfiguration): the static pod
 * manifests with the config's extraArgs, and the KubeletConfiguration as var/lib/kubelet/config.yaml.
 */
export function writeKubeadmFiles(root: string): void {
  const docs = parseAllDocuments(
    readFileSync(join(root, "etc/kubernetes/kubepki/kubeadm-config.yaml"), "utf8"),
  ).map((d) => d.toJS());
  const cluster = docs.find((d) => d?.kind === "ClusterConfiguration");
  const kubelet = docs.find((d) => d?.kind === "KubeletConfiguration");
  if (!cluster || !kubelet)
    throw new Error("kubeadm-config.yaml lacks ClusterConfiguration or KubeletConfiguration");
  writeManifests(root, false, {
    apiserver: applyExtraArgs(loopback(apiserverFlags(false)), cluster.apiServer?.extraArgs),
    etcd: applyExtraArgs(loopback(etcdFlags(false)), cluster.etcd?.local?.extraArgs),
    kcm: applyExtraArgs(KCM, cluster.controllerManager?.extraArgs),
  });
  put(root, `/${KUBELET_CONFIG}`, stringify(kubelet), 0o600);
}

/**
 * kubelet.conf as kubeadm leaves it after the TLS bootstrap: the client pair in
 * var/lib/kubelet/pki/kubelet-client-<time>.pem (certificate and key in one file, 0600), named
 * through the kubelet-client-current.pem link (relative here, so it stays inside the tree).
 */
export function kubeadmKubeletConf(root: string): void {
  const file = join(root, "etc/kubernetes/kubelet.conf");
  const cfg = parse(readFileSync(file, "utf8"));
  const user = cfg.users[0].user;
  const pair = Buffer.concat([
    Buffer.from(user["client-certificate-data"], "base64"),
    Buffer.from(user["client-key-data"], "base64"),
  ]);
  const dir = join(root, "var/lib/kubelet/pki");
  put(root, "/var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem", pair, 0o600);
  symlinkSync("kubelet-client-2026-01-01-00-00-00.pem", join(dir, "kubelet-client-current.pem"));
  const current = "/var/lib/kubelet/pki/kubelet-client-current.pem";
  cfg.users[0].user = { "client-certificate": current, "client-key": current };
  put(root, "/etc/kubernetes/kubelet.conf", stringify(cfg), 0o600);
}
