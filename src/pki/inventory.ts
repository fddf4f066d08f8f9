import { readdirSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { exists } from "../fsx/read.js";
import { CAS, type CaId, KUBECONFIGS, type KubeconfigEntry, LEAVES } from "./catalog.js";
import {
  caPaths,
  kubeconfigPath,
  kubeletClientPath,
  kubeletServingPaths,
  leafPaths,
  type TreePaths,
} from "./paths.js";
import { isDns1123Subdomain } from "./validate.js";

/**
 * The certificates check-expiration lists and renew can act on, found in a tree: kubeadm's set
 * (docs/kubeadm-pki.md, "check-expiration") plus what kubeadm leaves out, the kubelet's certificates.
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
  /** Kept in the offline folder, never on the node (super-admin.conf, other nodes' kubelet pairs). */
  offline?: boolean;
  /** Another node's kubelet serving pair (kubelet/NAME): renewed by name, never by `all`. */
  otherNode?: string;
}

/** kubeadm sorts its rows with Go's string order (bytes), not the locale's. */
export const byName = (a: { name: string }, b: { name: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

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
  for (const entry of KUBECONFIGS) items.push(kubeconfigItem(paths, entry));
  const kubelet = kubeletServingPaths(paths, "", true);
  if (kubelet) items.push({ ...kubeletRow("kubelet", kubelet.cert, true), keyPath: kubelet.key });
  items.push(kubeletRow("kubelet-client-current", kubeletClientPath(paths), false));
  items.push(...otherNodeItems(paths));
  return items.filter((i) => i.always || exists(i.path)).sort(byName);
}

/** kubelet.conf is the kubelet's own to rotate: listed (not renewed) only when present, as kubeadm does. */
function kubeconfigItem(paths: TreePaths, entry: KubeconfigEntry): TreeItem {
  // super-admin.conf lives offline; it is listed where it is found (the node tree is checked too).
  const candidates = entry.offline
    ? [join(paths.kubeconfigDir, entry.fileName), kubeconfigPath(paths, entry)]
    : [kubeconfigPath(paths, entry)];
  const found = candidates.find((c): c is string => c !== undefined && exists(c));
  return {
    name: entry.id,
    kind: "kubeconfig",
    caId: "ca",
    path: found ?? kubeconfigPath(paths, entry) ?? join(paths.kubeconfigDir, entry.fileName),
    renewable: entry.renewable,
    always: entry.renewable,
    // Not on the node: listed as offline (checked when --offline-dir is given).
    offline: entry.offline && found !== candidates[0],
  };
}

/** The kubelet's certificates, which kubeadm does not list: shown only when present. */
function kubeletRow(name: string, path: string, renewable: boolean): TreeItem {
  return { name, kind: "certificate", caId: "ca", path, renewable, always: false };
}

/** Other nodes' kubelet serving pairs in the offline folder: <offline>/nodes/NAME/kubelet.{crt,key}. */
function otherNodeItems(paths: TreePaths): TreeItem[] {
  if (!paths.offlineDir) return [];
  let names: string[];
  try {
    names = readdirSync(join(paths.offlineDir, "nodes"));
  } catch {
    return [];
  }
  return names.filter(isDns1123Subdomain).flatMap((name) => {
    const pair = kubeletServingPaths(paths, name, false);
    return pair
      ? [
          {
            name: `kubelet/${name}`,
            kind: "certificate" as const,
            caId: "ca" as const,
            path: pair.cert,
            keyPath: pair.key,
            renewable: true,
            always: false,
            offline: true,
            otherNode: name,
          },
        ]
      : [];
  });
}

/** The CAs, in kubeadm's order (by name: ca, etcd-ca, front-proxy-ca). */
export function caItems(paths: TreePaths): { id: CaId; cert: string; key: string }[] {
  return CAS.map((c) => ({ id: c.id, name: c.id, ...caPaths(paths, c.id) }))
    .filter((c) => c.id !== "etcd-ca" || exists(c.cert))
    .sort(byName)
    .map(({ name: _name, ...c }) => c);
}

/** Whether the tree holds any of the files kubepki knows (a mistyped --root holds none). */
export function pkiPresent(paths: TreePaths): boolean {
  return (
    caItems(paths).some((c) => exists(c.cert)) || treeItems(paths).some((i) => !i.offline && exists(i.path))
  );
}

export function noPkiError(paths: TreePaths): InputError {
  return new InputError(
    `no PKI found under ${paths.root} (no certificate in ${paths.pkiDir}, ${paths.kubeconfigDir} or ${paths.kubeletPkiDir}); check --root and --cert-dir`,
  );
}
