import type { LedgerEntry } from "../ledger/store.js";
import { WEBHOOK_CLIENT_CN, WEBHOOK_SERVER_CN } from "./names.js";

interface Identity {
  /** kubepki certs renew NAME, where there is one. */
  renew?: string;
  breaks: string;
  match: (e: LedgerEntry) => boolean;
}

const pathEnds = (e: LedgerEntry, suffix: string) => (e.path ?? "").endsWith(suffix);

/** The cluster's own identities: revoking one cuts the cluster off from itself (etcd enforces its CRL). */
const IDENTITIES: Identity[] = [
  {
    renew: "apiserver-etcd-client",
    breaks:
      "kube-apiserver loses etcd, the whole cluster state, at its next connection (etcd enforces its CRL)",
    match: (e) => e.subjectCN === "kube-apiserver-etcd-client" || e.profile === "apiserver-etcd-client",
  },
  {
    renew: "etcd-server",
    breaks: "etcd's serving certificate: kube-apiserver and the etcd peers stop trusting it",
    match: (e) => e.profile === "etcd-server" || pathEnds(e, "/etcd/server.crt"),
  },
  {
    renew: "etcd-peer",
    breaks: "etcd members refuse each other (the peer CRL), and the cluster loses quorum",
    match: (e) => e.profile === "etcd-peer" || pathEnds(e, "/etcd/peer.crt"),
  },
  {
    renew: "apiserver-kubelet-client",
    breaks: "kube-apiserver can no longer reach the kubelets (logs, exec, port-forward, metrics)",
    match: (e) => e.subjectCN === "kube-apiserver-kubelet-client" || e.profile === "apiserver-kubelet-client",
  },
  {
    renew: "controller-manager.conf",
    breaks: "kube-controller-manager stops reconciling the cluster",
    match: (e) => e.subjectCN === "system:kube-controller-manager",
  },
  {
    renew: "scheduler.conf",
    breaks: "kube-scheduler stops placing pods",
    match: (e) => e.subjectCN === "system:kube-scheduler",
  },
  {
    breaks: "a node's kubelet loses the API server and its node goes NotReady",
    match: (e) => e.subjectCN.startsWith("system:node:") || e.subjectO.includes("system:nodes"),
  },
  {
    breaks:
      "kube-apiserver and kubepki serve stop trusting each other; with failurePolicy Deny every request with a client certificate is denied",
    match: (e) =>
      e.profile.startsWith("webhook:") ||
      e.subjectCN === WEBHOOK_CLIENT_CN ||
      e.subjectCN === WEBHOOK_SERVER_CN,
  },
];

/** What revoking this entry would break, if it is an active control-plane identity. */
export function controlPlaneImpact(e: LedgerEntry): { breaks: string; renew?: string } | undefined {
  if (e.status !== "active") return undefined;
  const id = IDENTITIES.find((i) => i.match(e));
  return id ? { breaks: id.breaks, renew: id.renew } : undefined;
}
