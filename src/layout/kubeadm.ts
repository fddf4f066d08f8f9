import { baseLayout, type Layout } from "./types.js";

const PKI = "/etc/kubernetes/pki";

/**
 * kubeadm, and kind (kubeadm inside a container): docs/distributions.md, "kubeadm and kind". "generic" is a
 * node without any distribution's fingerprint: Kubernetes' default paths, and whatever the
 * components' flags point at.
 */
export function kubeadmLayout(distro: "kubeadm" | "kind" | "generic" = "kubeadm"): Layout {
  return baseLayout(distro, {
    // kubepki keeps the webhook's pairs beside kubeadm's files; audit them with the rest.
    pkiDirs: [PKI, "/etc/kubernetes/kubepki"],
    kubeconfigs: [
      "/etc/kubernetes/admin.conf",
      "/etc/kubernetes/super-admin.conf",
      "/etc/kubernetes/controller-manager.conf",
      "/etc/kubernetes/scheduler.conf",
      "/etc/kubernetes/kubelet.conf",
      "/etc/kubernetes/bootstrap-kubelet.conf",
      "/root/.kube/config",
      "/home",
    ],
    manifestDirs: ["/etc/kubernetes/manifests"],
    caKeys: [
      { path: `${PKI}/ca.key`, name: "cluster CA", signsCsrs: true },
      { path: `${PKI}/etcd/ca.key`, name: "etcd CA", signsCsrs: false },
      { path: `${PKI}/front-proxy-ca.key`, name: "front-proxy CA", signsCsrs: false },
    ],
    saKeys: [`${PKI}/sa.key`],
    superAdmin: ["/etc/kubernetes/super-admin.conf"],
    adminKubeconfigs: ["/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"],
    controlPlaneMarkers: ["/etc/kubernetes/manifests/kube-apiserver.yaml", `${PKI}/apiserver.crt`],
    fingerprints:
      distro === "kind"
        ? ["/kind/version", "/kind/kubeadm.conf"]
        : distro === "generic"
          ? []
          : [`${PKI}/ca.crt`, "/etc/kubernetes/kubelet.conf"],
  });
}
