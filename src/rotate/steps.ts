import { type Component, LEAVES, RESTART_ORDER, type RotationId, TRUST_FLAGS } from "../pki/catalog.js";
import type { Phase } from "./types.js";

/**
 * Which components read what a phase of a CA changes: trust and drop change trust files (the flags'
 * components; for the cluster CA also the kubelet and the kubeconfigs' readers), sign changes the
 * signing pair and the certificates it signs (their consumers).
 */
export function restartFor(id: RotationId, phase: Phase): Component[] {
  const set = new Set<Component>();
  if (phase === "sign") {
    if (id === "sa") set.add("kube-apiserver").add("kube-controller-manager");
    for (const l of LEAVES.filter((leaf) => leaf.ca === id)) for (const c of l.consumers) set.add(c);
    if (id === "ca") set.add("kube-controller-manager").add("kube-scheduler").add("kubelet");
  } else {
    for (const f of TRUST_FLAGS.filter((t) => t.id === id && t.kubeadm)) set.add(f.component);
    if (id === "ca") set.add("kube-scheduler").add("kubelet");
  }
  return RESTART_ORDER.filter((c) => set.has(c));
}

/**
 * The order after `abort`: kube-apiserver before etcd. After sign it still presents its new-CA etcd
 * client certificate, and an etcd member restarted first comes back trusting the old CA alone and
 * refuses it (TLS "bad certificate") until kube-apiserver restarts. Restarted first, kube-apiserver
 * presents the restored old-CA certificate, which the running members still trust (old and new),
 * and verifies their serving certificates, which they re-read at each handshake, with the old CA.
 * After an abort at trust nothing presents a new-CA certificate, so this order is safe there too.
 */
export const ABORT_RESTART_ORDER: Component[] = [
  "kube-apiserver",
  "etcd",
  ...RESTART_ORDER.filter((c) => c !== "etcd" && c !== "kube-apiserver"),
];

/** The components in the order a phase (or abort) restarts them. */
export function restartOrder(components: Iterable<Component>, phase: Phase | "abort"): Component[] {
  const set = new Set(components);
  return (phase === "abort" ? ABORT_RESTART_ORDER : RESTART_ORDER).filter((c) => set.has(c));
}

/** The restart order (components as `restartOrder` gives them), with how: etcd one member at a time. */
export function restartLines(ordered: Component[]): string[] {
  if (ordered.length === 0) return [];
  const how: Record<Component, string> = {
    etcd: "etcd (one member at a time; wait for `etcdctl endpoint health` before the next)",
    "kube-apiserver": "kube-apiserver",
    "kube-controller-manager": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
    kubelet: "kubelet (systemctl restart kubelet)",
  };
  return [
    `Restart, in this order: ${ordered.map((c) => how[c]).join(", then ")}.`,
    "A static pod restarts when its manifest changes; otherwise move the manifest out of /etc/kubernetes/manifests and back (or crictl stop its container).",
  ];
}

const K = "kubectl --kubeconfig /etc/kubernetes/admin.conf";

/** The cluster-side steps a node cannot do itself, as exact kubectl commands, after a phase of a CA. */
export function clusterSteps(id: RotationId, phase: Phase, clusterInfoPatch?: string): string[] {
  const steps: string[] = [];
  if (id === "ca" && clusterInfoPatch)
    steps.push(
      `# bootstrap-token discovery hands joining nodes this CA data (kube-controller-manager re-signs it):\n${K} -n kube-public patch configmap cluster-info --type merge --patch-file ${clusterInfoPatch}`,
    );
  if (id === "ca" && phase !== "sign")
    steps.push(
      `# once kube-controller-manager runs with the new --root-ca-file, every namespace's kube-root-ca.crt and legacy token Secret carries it; check:\n${K} get configmap -A --field-selector metadata.name=kube-root-ca.crt -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.data.ca\\.crt}{"\\n"}{end}' | grep -c 'BEGIN CERTIFICATE'`,
      `# pods that read the CA once (in-cluster configuration) pick it up on restart:\n${restartPods()}`,
    );
  if (id === "sa" && phase === "sign")
    steps.push(
      `# legacy service-account token Secrets were signed with the old key: have kube-controller-manager sign them again:\n${K} get secrets -A --field-selector type=kubernetes.io/service-account-token -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\\n"}{end}' | while read ns name; do ${K} -n "$ns" patch secret "$name" --type json -p '[{"op":"remove","path":"/data/token"}]'; done`,
      `# projected tokens are renewed by the kubelet; restart pods so none holds a token of the old key at drop:\n${restartPods()}`,
    );
  return steps;
}

function restartPods(): string {
  return `for ns in $(${K} get ns -o jsonpath='{.items[*].metadata.name}'); do ${K} -n "$ns" rollout restart deployment,daemonset,statefulset; done`;
}
