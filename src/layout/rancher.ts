import { baseLayout, type Layout } from "./types.js";

/**
 * k3s and RKE2 share their PKI code (docs/distributions.md, "k3s and RKE2"): five CAs under
 * server/tls, agent copies under agent/, ECDSA keys, leaf files that carry their chain.
 */
export function rancherLayout(distro: "k3s" | "rke2"): Layout {
  const data = `/var/lib/rancher/${distro}`;
  const tls = `${data}/server/tls`;
  return baseLayout(distro, {
    pkiDirs: [tls, `${data}/agent`],
    kubeletPkiDirs: [],
    kubeconfigs: [
      `/etc/rancher/${distro}/${distro}.yaml`,
      `${data}/server/cred`,
      `${data}/agent`,
      "/root/.kube/config",
      "/home",
    ],
    manifestDirs: distro === "rke2" ? [`${data}/agent/pod-manifests`] : [],
    kubeletConfigFiles: [`${data}/agent/etc/kubelet.conf.d`],
    etcdConfigFiles: [`${data}/server/db/etcd/config`],
    caKeys: [
      { path: `${tls}/client-ca.key`, name: "client CA", signsCsrs: true },
      { path: `${tls}/server-ca.key`, name: "server CA", signsCsrs: true },
      { path: `${tls}/request-header-ca.key`, name: "request-header CA", signsCsrs: false },
      { path: `${tls}/etcd/server-ca.key`, name: "etcd server CA", signsCsrs: false },
      { path: `${tls}/etcd/peer-ca.key`, name: "etcd peer CA", signsCsrs: false },
    ],
    saKeys: [`${tls}/service.key`],
    adminKubeconfigs: [`/etc/rancher/${distro}/${distro}.yaml`, `${data}/server/cred/admin.kubeconfig`],
    controlPlaneMarkers: [`${tls}/serving-kube-apiserver.crt`, `${data}/server/cred`],
    fingerprints: [data, `/etc/rancher/${distro}/${distro}.yaml`],
    notes: [
      `${distro} keeps its CA keys on every server and signs kubelet serving certificates with server-ca; the shared legacy kubelet keys (client-kubelet.key, serving-kubelet.key) are worth watching`,
    ],
  });
}
