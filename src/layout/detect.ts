import { join } from "node:path";
import { exists } from "../fsx/read.js";
import { kubeadmLayout } from "./kubeadm.js";
import { bestEffortLayout, k0sLayout, microk8sLayout } from "./others.js";
import { rancherLayout } from "./rancher.js";
import type { Distro, Layout } from "./types.js";

export function layoutFor(distro: Distro): Layout {
  switch (distro) {
    case "kubeadm":
    case "kind":
    case "generic":
      return kubeadmLayout(distro);
    case "k3s":
    case "rke2":
      return rancherLayout(distro);
    case "microk8s":
      return microk8sLayout();
    case "k0s":
      return k0sLayout();
    default:
      return bestEffortLayout(distro);
  }
}

/** Most specific first (docs/distributions.md, "Detection"); without any fingerprint the node is "generic". */
const ORDER: Distro[] = [
  "talos",
  "openshift",
  "rke2",
  "k3s",
  "microk8s",
  "k0s",
  "kops",
  "kind",
  "eks",
  "gke",
  "aks",
  "kubeadm",
];

export function detectLayout(root: string): { layout: Layout; evidence: string } {
  for (const distro of ORDER) {
    const layout = layoutFor(distro);
    const hit = layout.fingerprints.find((f) => exists(join(root, f)));
    if (hit) return { layout, evidence: hit };
  }
  return { layout: kubeadmLayout("generic"), evidence: "no distribution fingerprint" };
}
