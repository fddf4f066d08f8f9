import { stringify } from "yaml";
import { type ConfigChange, formatChange } from "./config-edit.js";
import { formatHours } from "./duration.js";
import { hostPort } from "./net.js";
import { KUBELET_SERVING_CERT, KUBELET_SERVING_KEY, mergeOperatorConfig } from "./operator-config.js";
import type { ClusterSpec } from "./spec.js";

export { type ConfigChange, formatChange };

export interface KubeadmConfig {
  yaml: string;
  /** What kubepki added to or changed in the operator's --config file (empty without one). */
  changes: ConfigChange[];
  /** What the operator must know or do about choices kubepki kept (e.g. serverTLSBootstrap). */
  notes: string[];
}

/**
 * The kubeadm configuration init writes: the operator's --config file with only what kubepki needs
 * added (see operator-config.ts), or, without one, a configuration generated from the spec.
 */
export function kubeadmConfig(spec: ClusterSpec): KubeadmConfig {
  if (spec.source) return mergeOperatorConfig(spec, spec.source);
  return { yaml: generatedConfigYaml(spec), changes: [], notes: [] };
}

/**
 * Without --config: the kubeadm configuration that wires kubepki's PKI into the cluster, for
 * `kubeadm init --config`. Besides the fields that shaped the PKI it carries the two settings that
 * close the API server -> kubelet adversary-in-the-middle gap:
 * - kube-apiserver --kubelet-certificate-authority=<ca.crt>: the API server verifies kubelets;
 * - KubeletConfiguration tlsCertFile/tlsPrivateKeyFile: the kubelet serves the CA-signed
 *   certificate kubepki wrote instead of generating a self-signed one.
 */
function generatedConfigYaml(spec: ClusterSpec): string {
  const pki = spec.certificatesDir;
  const init = {
    apiVersion: "kubeadm.k8s.io/v1beta4",
    kind: "InitConfiguration",
    nodeRegistration: { name: spec.nodeName },
    localAPIEndpoint: { advertiseAddress: spec.advertiseAddress, bindPort: spec.bindPort },
  };
  const cluster: Record<string, unknown> = {
    apiVersion: "kubeadm.k8s.io/v1beta4",
    kind: "ClusterConfiguration",
    clusterName: spec.clusterName,
    certificatesDir: pki,
    encryptionAlgorithm: spec.algorithm,
    certificateValidityPeriod: formatHours(spec.certValidityMs),
    caCertificateValidityPeriod: formatHours(spec.caValidityMs),
    networking: { serviceSubnet: spec.serviceSubnet, dnsDomain: spec.dnsDomain },
    apiServer: {
      certSANs: [...spec.apiServerCertSANs.dns, ...spec.apiServerCertSANs.ips],
      extraArgs: [{ name: "kubelet-certificate-authority", value: `${pki}/ca.crt` }],
    },
  };
  if (spec.controlPlaneEndpoint)
    cluster.controlPlaneEndpoint = hostPort(spec.controlPlaneEndpoint.host, spec.controlPlaneEndpoint.port);
  if (!spec.externalEtcd)
    cluster.etcd = {
      local: {
        // etcd refuses client certificates listed here (re-read at every handshake); kubepki revoke rewrites it.
        extraArgs: [{ name: "client-crl-file", value: `${pki}/etcd/ca.crl` }],
        serverCertSANs: [...spec.etcdServerCertSANs.dns, ...spec.etcdServerCertSANs.ips],
        peerCertSANs: [...spec.etcdPeerCertSANs.dns, ...spec.etcdPeerCertSANs.ips],
      },
    };
  const kubelet = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: `${pki}/ca.crt` },
    },
    authorization: { mode: "Webhook" },
    tlsCertFile: KUBELET_SERVING_CERT,
    tlsPrivateKeyFile: KUBELET_SERVING_KEY,
    rotateCertificates: true,
    serverTLSBootstrap: false,
  };
  const header =
    "# Written by kubepki. Use with: kubeadm init --config <this file>\n" +
    "# kubelet-certificate-authority makes kube-apiserver verify kubelet serving certificates,\n" +
    "# which kubepki signed with the cluster CA (var/lib/kubelet/pki/kubelet.crt on every node).\n";
  return header + [init, cluster, kubelet].map((d) => stringify(d)).join("---\n");
}
