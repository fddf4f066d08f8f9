import { join } from "node:path";
import { exists } from "../fsx/read.js";
import { CAS, type CaId, KUBECONFIGS, LEAVES } from "./catalog.js";
import { caPaths, kubeconfigPath, kubeletServingPaths, leafPaths, type TreePaths } from "./paths.js";

/**
 * The certificates check-expiration lists and renew can act on, found in a tree: kubeadm's set
 * (reference/kubeadm-pki.md 5.1) plus what kubeadm leaves out, the kubelet's certificates.
 */
export interface TreeItem {
  name: string;
  kind: "certificate" | "kubeconfig";
  caId: CaId;
  /** The .crt file, or the kubeconfig. */
  path: string;
  keyPath?: string;
  renewable: boolean;
  /** Listed even when missing (kubeadm's rows); kubelet extras only when present. */
  always: boolean;
}

export function treeItems(paths: TreePaths): TreeItem[] {
  const etcdPresent = exists(caPaths(paths, "etcd-ca").cert);
  const items: TreeItem[] = [];
  for (const leaf of LEAVES) {
    if (leaf.localEtcd && !etcdPresent) continue;
    const p = leafPaths(paths, leaf);
    items.push({
      name: leaf.id,
      kind: "certificate",
      caId: leaf.ca,
      path: p.cert,
      keyPath: p.key,
      renewable: true,
      always: true,
    });
  }
  for (const entry of KUBECONFIGS) {
    if (entry.id === "kubelet.conf") continue;
    // super-admin.conf lives offline; it is listed where it is found (the node tree is checked too).
    const candidates = entry.offline
      ? [join(paths.kubeconfigDir, entry.fileName), kubeconfigPath(paths, entry)]
      : [kubeconfigPath(paths, entry)];
    const found = candidates.find((c): c is string => c !== undefined && exists(c));
    if (!found && entry.offline) continue;
    items.push({
      name: entry.id,
      kind: "kubeconfig",
      caId: "ca",
      path: found ?? candidates[0] ?? "",
      renewable: entry.renewable,
      always: true,
    });
  }
  const kubelet = kubeletServingPaths(paths, "", true);
  if (kubelet)
    items.push({
      name: "kubelet",
      kind: "certificate",
      caId: "ca",
      path: kubelet.cert,
      keyPath: kubelet.key,
      renewable: true,
      always: false,
    });
  items.push({
    name: "kubelet-client-current",
    kind: "certificate",
    caId: "ca",
    path: join(paths.kubeletPkiDir, "kubelet-client-current.pem"),
    renewable: false,
    always: false,
  });
  items.push({
    name: "kubelet.conf",
    kind: "kubeconfig",
    caId: "ca",
    path: join(paths.kubeconfigDir, "kubelet.conf"),
    renewable: false,
    always: false,
  });
  return items.filter((i) => i.always || exists(i.path)).sort((a, b) => a.name.localeCompare(b.name));
}

export function caItems(paths: TreePaths): { id: CaId; cert: string; key: string }[] {
  return CAS.map((c) => ({ id: c.id, ...caPaths(paths, c.id) })).filter(
    (c) => c.id !== "etcd-ca" || exists(c.cert),
  );
}
