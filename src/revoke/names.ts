import { KUBEPKI_ETCD_CLIENT } from "../pki/catalog.js";

/** The CNs kubepki issues for its webhook: its serving certificate and kube-apiserver's client certificate. */
export const WEBHOOK_SERVER_CN = "kubepki-authz-webhook";
export const WEBHOOK_CLIENT_CN = "kube-apiserver-kubepki-authz";

/**
 * Subject CNs of the cluster's own identities (kubeadm's and kubepki's): a user certificate with one
 * of them could pass for a component (the webhook's caller check, --requestheader-allowed-names).
 */
export const RESERVED_CNS = new Set([
  "kubernetes",
  "etcd-ca",
  "front-proxy-ca",
  "kube-apiserver",
  "kube-apiserver-etcd-client",
  "kube-apiserver-kubelet-client",
  "kube-etcd-healthcheck-client",
  "front-proxy-client",
  WEBHOOK_SERVER_CN,
  WEBHOOK_CLIENT_CN,
  KUBEPKI_ETCD_CLIENT.commonName,
]);
