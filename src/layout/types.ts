/**
 * Where a distribution keeps what, as paths on the node (absolute, "/"-rooted). The node reader
 * joins them to --root. docs/distributions.md describes every path.
 */
export const DISTROS = [
  "kubeadm",
  "kind",
  "k3s",
  "rke2",
  "microk8s",
  "k0s",
  "kops",
  "openshift",
  "talos",
  "eks",
  "gke",
  "aks",
  "generic",
] as const;
export type Distro = (typeof DISTROS)[number];

/** What a CA key is for, and whether a running control plane needs it on disk. */
export interface CaKeyRole {
  path: string;
  name: string;
  /** The controller-manager signs CSRs with it, so a control plane legitimately holds it. */
  signsCsrs: boolean;
}

export interface Layout {
  distro: Distro;
  /** Folders whose certificates and keys are inventoried (recursively). */
  pkiDirs: string[];
  /** The kubelet's own certificate folder(s). */
  kubeletPkiDirs: string[];
  /** Kubeconfig files to read; folders are scanned for *.conf, *.kubeconfig, config, *.yaml kubeconfigs. */
  kubeconfigs: string[];
  /** Folders of static pod manifests. */
  manifestDirs: string[];
  kubeletConfigFiles: string[];
  /** systemd units, drop-in folders and environment files that carry kubelet flags. */
  kubeletFlagSources: string[];
  etcdConfigFiles: string[];
  caKeys: CaKeyRole[];
  saKeys: string[];
  /** Break-glass system:masters kubeconfigs. */
  superAdmin: string[];
  /** Admin kubeconfigs (CIS 1.1.13). */
  adminKubeconfigs: string[];
  /** Mode a private key is expected to have here (k0s writes 0640, MicroK8s 0660: not findings there). */
  expectedKeyMode: number;
  /** Files holding a component's arguments, one per line or shell-quoted (MicroK8s args/). */
  componentArgs: Partial<
    Record<"kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "etcd", string>
  >;
  /** Variables the distribution's argument files use (${SNAP_DATA}). */
  vars: Record<string, string>;
  /** Paths whose presence marks a control-plane node. */
  controlPlaneMarkers: string[];
  /** Paths whose presence identifies the distribution, most specific first. */
  fingerprints: string[];
  notes: string[];
}

export function baseLayout(distro: Distro, over: Partial<Layout>): Layout {
  return {
    distro,
    pkiDirs: [],
    kubeletPkiDirs: ["/var/lib/kubelet/pki"],
    kubeconfigs: ["/root/.kube/config", "/home"],
    manifestDirs: [],
    kubeletConfigFiles: ["/var/lib/kubelet/config.yaml"],
    kubeletFlagSources: [
      "/etc/systemd/system/kubelet.service",
      "/etc/systemd/system/kubelet.service.d",
      "/lib/systemd/system/kubelet.service",
      "/usr/lib/systemd/system/kubelet.service",
      "/usr/lib/systemd/system/kubelet.service.d",
      "/var/lib/kubelet/kubeadm-flags.env",
      "/etc/default/kubelet",
      "/etc/sysconfig/kubelet",
    ],
    etcdConfigFiles: [],
    caKeys: [],
    saKeys: [],
    superAdmin: [],
    adminKubeconfigs: [],
    expectedKeyMode: 0o600,
    componentArgs: {},
    vars: {},
    controlPlaneMarkers: [],
    fingerprints: [],
    notes: [],
    ...over,
  };
}
