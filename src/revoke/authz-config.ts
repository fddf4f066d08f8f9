import { stringify } from "yaml";

/** Identities that keep working while the webhook is down (see failurePolicy below). */
export const CONTROL_PLANE_USERS = [
  "system:kube-controller-manager",
  "system:kube-scheduler",
  "kube-apiserver-kubelet-client",
];

/**
 * kube-apiserver's structured authorization configuration (apiserver.config.k8s.io/v1, GA in 1.32):
 * kubepki's webhook first, so its "denied" short-circuits Node and RBAC; then Node, then RBAC.
 *
 * - matchConditions: only requests authenticated by an X.509 client certificate (they carry a
 *   credential id X509SHA256=...) reach the webhook; tokens never pay for the call.
 * - failurePolicy Deny: a revoked certificate must not slip through while the webhook is down. To
 *   keep the control plane alive through such an outage, the controller-manager, the scheduler
 *   and the nodes are excluded by matchConditions (their certificates are short-lived or rotated;
 *   revoke them by rotating them). Everyone else fails closed.
 * - unauthorizedTTL 10s: kube-apiserver caches "no opinion" and "deny" answers for this long, so a
 *   revocation takes effect within ~10 s (+1 s for kubepki serve to reload). authorizedTTL is
 *   irrelevant (the webhook never allows) but must be positive.
 * - timeout 3s: the webhook answers from memory; 3 s leaves room for a slow node without holding
 *   requests for the 30 s maximum.
 */
export function authorizationConfigYaml(kubeconfigPath: string): string {
  const excluded = CONTROL_PLANE_USERS.map((u) => `'${u}'`).join(", ");
  const doc = {
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "AuthorizationConfiguration",
    authorizers: [
      {
        type: "Webhook",
        name: "kubepki-revocation",
        webhook: {
          timeout: "3s",
          subjectAccessReviewVersion: "v1",
          matchConditionSubjectAccessReviewVersion: "v1",
          failurePolicy: "Deny",
          authorizedTTL: "5m",
          unauthorizedTTL: "10s",
          connectionInfo: { type: "KubeConfigFile", kubeConfigFile: kubeconfigPath },
          matchConditions: [
            {
              expression:
                "'authentication.kubernetes.io/credential-id' in request.extra && request.extra['authentication.kubernetes.io/credential-id'].exists(i, i.startsWith('X509SHA256='))",
            },
            { expression: `!(request.user in [${excluded}]) && !request.user.startsWith('system:node:')` },
          ],
        },
      },
      { type: "Node", name: "node" },
      { type: "RBAC", name: "rbac" },
    ],
  };
  return `# Written by kubepki. kube-apiserver --authorization-config=<this file> (replaces --authorization-mode).\n${stringify(doc)}`;
}

/** The kubeconfig kube-apiserver uses to call the webhook (paths are node paths). */
export function webhookKubeconfigYaml(o: {
  server: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "kubepki-revocation", cluster: { server: o.server, "certificate-authority": o.caFile } },
    ],
    users: [{ name: "kube-apiserver", user: { "client-certificate": o.certFile, "client-key": o.keyFile } }],
    contexts: [{ name: "webhook", context: { cluster: "kubepki-revocation", user: "kube-apiserver" } }],
    "current-context": "webhook",
  });
}
