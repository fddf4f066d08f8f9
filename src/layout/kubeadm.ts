import {
  adminKubeconfigs,
  BOOTSTRAP_KUBELET_CONF,
  CAS,
  KUBECONFIGS,
  type KubeconfigEntry,
  kubeconfigEntry,
  leafEntry,
} from "../pki/catalog.js";
import { caPaths, leafPaths, saPaths, treePaths } from "../pki/paths.js";
import { baseLayout, type Layout } from "./types.js";

/** kubeadm's node, as paths from "/": every file name comes from the catalog. */
const NODE = treePaths("/");
const onNode = (entry: KubeconfigEntry) => `${NODE.kubeconfigDir}/${entry.fileName}`;
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * kubeadm, and kind (kubeadm inside a container): docs/distributions.md, "kubeadm and kind". "generic" is a
 * node without any distribution's fingerprint: Kubernetes' default paths, and whatever the
 * components' flags point at.
 */
export function kubeadmLayout(distro: "kubeadm" | "kind" | "generic" = "kubeadm"): Layout {
  const superAdmin = KUBECONFIGS.filter((k) => k.organizations.includes("system:masters")).map(onNode);
  return baseLayout(distro, {
    // kubepki keeps the webhook's pairs beside kubeadm's files; audit them with the rest.
    pkiDirs: [NODE.pkiDir, NODE.configDir],
    kubeconfigs: [
      // super-admin.conf too: the audit reports one left on the node.
      ...KUBECONFIGS.map(onNode),
      `${NODE.kubeconfigDir}/${BOOTSTRAP_KUBELET_CONF}`,
      "/root/.kube/config",
      "/home",
    ],
    manifestDirs: [`${NODE.kubeconfigDir}/manifests`],
    caKeys: [...CAS]
      .sort(byId)
      .map((c) => ({ path: caPaths(NODE, c.id).key, name: c.shortName, signsCsrs: c.signsCsrs })),
    saKeys: [saPaths(NODE).key],
    superAdmin,
    adminKubeconfigs: adminKubeconfigs().map(onNode),
    controlPlaneMarkers: [
      `${NODE.kubeconfigDir}/manifests/kube-apiserver.yaml`,
      leafPaths(NODE, leafEntry("apiserver")).cert,
    ],
    fingerprints:
      distro === "kind"
        ? ["/kind/version", "/kind/kubeadm.conf"]
        : distro === "generic"
          ? []
          : [caPaths(NODE, "ca").cert, onNode(kubeconfigEntry("kubelet.conf"))],
  });
}
