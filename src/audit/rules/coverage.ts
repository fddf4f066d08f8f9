import { finding, type Rule } from "../context.js";

/** A node where nothing was found is a finding: silence must never read as a clean report. */
export const coverageRule: Rule = ({ snap }) => {
  const nothing =
    snap.certs.length === 0 &&
    snap.keys.length === 0 &&
    snap.kubeconfigs.length === 0 &&
    snap.components.size === 0 &&
    snap.kubelet.flags.size === 0 &&
    snap.kubelet.config === undefined;
  if (!nothing) return [];
  return [
    finding(
      "node.nothing-found",
      `No certificate, key, kubeconfig, static pod manifest, systemd unit or configuration of a Kubernetes component was found under ${snap.root} (${snap.layout.distro} layout, ${snap.detectedBy}).`,
      undefined,
      { root: snap.root, layout: snap.layout.distro },
    ),
  ];
};
