import { kubeadmLayout } from "./kubeadm.js";
import { baseLayout, type Layout } from "./types.js";

const SNAP = "/var/snap/microk8s/current";

/** MicroK8s (distributions.md 3.4): keys 0660 group microk8s unless CIS-hardened. */
export function microk8sLayout(): Layout {
  return baseLayout("microk8s", {
    pkiDirs: [`${SNAP}/certs`, `${SNAP}/var/kubernetes/backend`],
    kubeletPkiDirs: [],
    kubeconfigs: [`${SNAP}/credentials`, "/root/.kube/config", "/home"],
    kubeletConfigFiles: [],
    kubeletFlagSources: [`${SNAP}/args/kubelet`],
    caKeys: [
      { path: `${SNAP}/certs/ca.key`, name: "cluster CA", signsCsrs: true },
      { path: `${SNAP}/certs/front-proxy-ca.key`, name: "front-proxy CA", signsCsrs: false },
    ],
    saKeys: [`${SNAP}/certs/serviceaccount.key`],
    adminKubeconfigs: [`${SNAP}/credentials/client.config`],
    expectedKeyMode: 0o660,
    componentArgs: {
      "kube-apiserver": `${SNAP}/args/kube-apiserver`,
      "kube-controller-manager": `${SNAP}/args/kube-controller-manager`,
      "kube-scheduler": `${SNAP}/args/kube-scheduler`,
    },
    vars: { SNAP_DATA: SNAP, SNAP: "/snap/microk8s/current" },
    controlPlaneMarkers: [`${SNAP}/certs/ca.key`, `${SNAP}/args/kube-apiserver`],
    fingerprints: [SNAP],
    notes: [
      "MicroK8s keys are 0660 group microk8s unless CIS hardening is applied; component certificates last 10 years",
    ],
  });
}

/** k0s (distributions.md 3.5): keys 0640 owned by the component user are expected. */
export function k0sLayout(): Layout {
  const pki = "/var/lib/k0s/pki";
  return baseLayout("k0s", {
    pkiDirs: [pki],
    kubeletPkiDirs: ["/var/lib/k0s/kubelet/pki"],
    kubeconfigs: [pki, "/var/lib/k0s/kubelet.conf", "/root/.kube/config", "/home"],
    kubeletConfigFiles: ["/var/lib/k0s/kubelet-config.yaml"],
    caKeys: [
      { path: `${pki}/ca.key`, name: "cluster CA", signsCsrs: true },
      { path: `${pki}/etcd/ca.key`, name: "etcd CA", signsCsrs: false },
      { path: `${pki}/front-proxy-ca.key`, name: "front-proxy CA", signsCsrs: false },
    ],
    saKeys: [`${pki}/sa.key`],
    adminKubeconfigs: [`${pki}/admin.conf`],
    expectedKeyMode: 0o640,
    controlPlaneMarkers: [`${pki}/server.crt`, `${pki}/ca.key`],
    fingerprints: [pki, "/etc/k0s/k0s.yaml"],
    notes: ["k0s writes keys 0640 owned by the component user: that is expected, not a finding"],
  });
}

/** Best effort for kops, OpenShift, Talos and managed nodes: their trust and kubelet files. */
export function bestEffortLayout(distro: "kops" | "openshift" | "talos" | "eks" | "gke" | "aks"): Layout {
  const kube = kubeadmLayout();
  const byDistro: Record<typeof distro, Partial<Layout>> = {
    kops: {
      pkiDirs: ["/srv/kubernetes", "/etc/kubernetes/pki", "/etc/kubernetes/kops-controller"],
      kubeconfigs: ["/var/lib/kubelet/kubeconfig", "/root/.kube/config", "/home"],
      caKeys: [
        { path: "/srv/kubernetes/kube-controller-manager/ca.key", name: "kubernetes CA", signsCsrs: true },
        {
          path: "/etc/kubernetes/kops-controller/kubernetes-ca.key",
          name: "kubernetes CA (kops-controller)",
          signsCsrs: true,
        },
      ],
      saKeys: ["/srv/kubernetes/kube-controller-manager/service-account.key"],
      manifestDirs: ["/etc/kubernetes/manifests"],
      controlPlaneMarkers: ["/srv/kubernetes/kube-apiserver"],
      fingerprints: ["/srv/kubernetes", "/etc/kubernetes/kops-controller", "/opt/kops"],
    },
    openshift: {
      pkiDirs: ["/etc/kubernetes/static-pod-resources", "/etc/kubernetes/static-pod-certs"],
      kubeconfigs: [
        "/var/lib/kubelet/kubeconfig",
        "/etc/kubernetes/kubeconfig",
        "/root/.kube/config",
        "/home",
      ],
      manifestDirs: ["/etc/kubernetes/manifests"],
      controlPlaneMarkers: ["/etc/kubernetes/static-pod-resources/kube-apiserver-certs"],
      fingerprints: ["/etc/kubernetes/static-pod-resources"],
      notes: ["OpenShift keeps its root signers as Secrets; a missing CA key on disk is normal"],
    },
    talos: {
      pkiDirs: ["/system/secrets/kubernetes", "/system/secrets/etcd", "/etc/kubernetes/pki"],
      kubeconfigs: ["/etc/kubernetes/kubeconfig-kubelet", "/system/secrets/kubernetes"],
      caKeys: [
        {
          path: "/system/secrets/kubernetes/kube-controller-manager/ca.key",
          name: "cluster CA",
          signsCsrs: true,
        },
        { path: "/system/secrets/etcd/ca.key", name: "etcd CA", signsCsrs: false },
      ],
      expectedKeyMode: 0o400,
      controlPlaneMarkers: ["/system/secrets/kubernetes/kube-apiserver"],
      fingerprints: ["/system/secrets/kubernetes", "/system/secrets/etcd"],
    },
    eks: {
      pkiDirs: ["/etc/kubernetes/pki"],
      kubeconfigs: ["/var/lib/kubelet/kubeconfig", "/root/.kube/config", "/home"],
      kubeletConfigFiles: [
        "/etc/kubernetes/kubelet/config.json",
        "/etc/kubernetes/kubelet/kubelet-config.json",
      ],
      fingerprints: ["/etc/eks/release"],
    },
    gke: {
      pkiDirs: ["/etc/srv/kubernetes/pki"],
      kubeconfigs: ["/var/lib/kubelet/kubeconfig", "/root/.kube/config", "/home"],
      kubeletConfigFiles: ["/home/kubernetes/kubelet-config.yaml"],
      fingerprints: ["/etc/srv/kubernetes/pki/ca-certificates.crt"],
    },
    aks: {
      pkiDirs: ["/etc/kubernetes/certs"],
      kubeconfigs: ["/var/lib/kubelet/kubeconfig", "/root/.kube/config", "/home"],
      fingerprints: ["/etc/kubernetes/azure.json", "/etc/kubernetes/certs/kubeletserver.crt"],
      notes: [
        "AKS kubelet serving certificates are self-signed for 20 years unless serving-certificate rotation is on",
      ],
    },
  };
  return baseLayout(distro, { kubeletFlagSources: kube.kubeletFlagSources, ...byDistro[distro] });
}
