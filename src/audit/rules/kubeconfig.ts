import type { FileFact } from "../../node/files.js";
import { leafEntry } from "../../pki/catalog.js";
import { missingSans } from "../../pki/existing.js";
import { leafPaths, treePaths } from "../../pki/paths.js";
import type { CertInfo } from "../../x509/parse.js";
import {
  type AuditContext,
  type Check,
  certsAt,
  fileEvidence,
  finding,
  modeExceeds,
  octal,
  type Rule,
  runChecks,
} from "../context.js";
import type { Finding } from "../finding.js";

const ADMIN_GROUPS = ["system:masters", "kubeadm:cluster-admins"];

type Snap = AuditContext["snap"];

interface KubeconfigInput {
  k: Snap["kubeconfigs"][number];
  f: FileFact;
  /** One of the layout's admin kubeconfigs. */
  admin: boolean;
  /** Users whose client certificate is in an admin group. */
  adminUsers: Snap["kubeconfigs"][number]["users"];
  /** In a person's home folder. */
  home: boolean;
}

const groupsOf = (users: KubeconfigInput["adminUsers"]) =>
  users.map((u) => u.clientCert?.organizations.join(",")).join("; ");
/** kubeadm's kubeconfigs live here. */
const KUBECONFIG_DIR = `${treePaths("/").kubeconfigDir}/`;

/** A file's protection, judged by what it is: an admin kubeconfig, one exposing admin users, a component's. */
function modeFinding({ k, f, admin, adminUsers, home }: KubeconfigInput): Finding | undefined {
  const ev = fileEvidence(f);
  const badMode = modeExceeds(f.mode, 0o600) || f.uid !== 0;
  const owner = `${f.uid}:${f.gid}`;
  if (admin)
    return badMode
      ? finding(
          "kubeconfig.admin.mode",
          `${k.path} has mode ${octal(f.mode)}, owner ${owner} (required: 0600 root:root).`,
          k.path,
          ev,
        )
      : undefined;
  if (adminUsers.length > 0 && (modeExceeds(f.mode, 0o600) || (f.uid !== 0 && !home)))
    return finding(
      "kubeconfig.user.exposed",
      `${k.path} embeds an admin credential (${groupsOf(adminUsers)}) and has mode ${octal(f.mode)}, owner ${owner}.`,
      k.path,
      ev,
    );
  const component = k.path.startsWith(KUBECONFIG_DIR) || (k.usedBy?.length ?? 0) > 0;
  if (!component || !badMode) return undefined;
  return finding(
    "kubeconfig.component.mode",
    `${k.path} has mode ${octal(f.mode)}, owner ${owner} (required: 0600 root:root)${k.usedBy?.length ? `; used by ${k.usedBy.join(", ")}` : ""}.`,
    k.path,
    ev,
  );
}

const KUBECONFIG_CHECKS: Check<KubeconfigInput>[] = [
  modeFinding,
  ({ k, f, adminUsers, home }) => {
    const cert = adminUsers[0]?.clientCert;
    if (!home || !cert) return undefined;
    return finding(
      "kubeconfig.admin.embedded",
      `${k.path} embeds a client certificate of ${groupsOf(adminUsers)} (fingerprint ${cert.sha256.slice(0, 16)}…).`,
      k.path,
      { ...fileEvidence(f), sha256: cert.sha256 },
    );
  },
  ({ k }) =>
    k.clusters.some((c) => c.insecureSkipTlsVerify)
      ? finding(
          "kubeconfig.insecure-skip-verify",
          `${k.path} sets insecure-skip-tls-verify: the API server is not authenticated.`,
          k.path,
          { file: k.path },
        )
      : undefined,
];

/** Kubeconfigs: modes of admin and component files, admin credentials where people can read them. */
export const kubeconfigRule: Rule = ({ snap }) => {
  const admin = new Set(snap.layout.adminKubeconfigs);
  const out = snap.kubeconfigs.flatMap((k) => {
    const f = snap.files.stat(k.path);
    if (!f) return [];
    const adminUsers = k.users.filter((u) =>
      u.clientCert?.organizations.some((o) => ADMIN_GROUPS.includes(o)),
    );
    const home = k.path.startsWith("/home/") || k.path.startsWith("/root/");
    return runChecks(KUBECONFIG_CHECKS, { k, f, admin: admin.has(k.path), adminUsers, home });
  });
  for (const p of snap.layout.superAdmin.filter((p) => snap.files.exists(p)))
    out.push(
      finding("cert.super-admin.present", `${p} (group system:masters) is on the node.`, p, { file: p }),
    );
  return out;
};

/**
 * Kubeconfigs of this cluster (their CA signed the API server certificate) whose server address the
 * certificate does not name: TLS verification fails there, e.g. after a changed endpoint.
 */
export const kubeconfigServerRule: Rule = ({ snap }) => {
  const flagged = snap.components.get("kube-apiserver")?.flags.get("tls-cert-file");
  const apiserver = leafEntry("apiserver");
  const certPath =
    flagged ??
    snap.layout.pkiDirs
      .map((d) => leafPaths(treePaths("/", d), apiserver).cert)
      .find((p) => snap.files.exists(p));
  const serving = certsAt(snap, certPath)[0];
  if (!serving || !certPath) return [];
  return snap.kubeconfigs.flatMap((k) =>
    k.clusters
      .filter(
        (c) => c.caCerts.some((ca) => serving.x509.checkIssued(ca.x509)) && notCovered(serving, c.server),
      )
      .map((c) =>
        finding(
          "kubeconfig.server.not-covered",
          `${k.path} points at ${c.server}, which ${certPath} does not name (SANs: ${[...serving.dnsNames, ...serving.ipAddresses].join(", ")}).`,
          k.path,
          { file: k.path, server: c.server ?? "", certificate: certPath },
        ),
      ),
  );
};

/** The server's host is not among the certificate's SANs (no host: nothing to judge). */
function notCovered(serving: CertInfo, server: string | undefined): boolean {
  const host = server ? hostOf(server) : undefined;
  if (!host) return false;
  const required = /^[\d.]+$|:/.test(host) ? { dns: [], ips: [host] } : { dns: [host], ips: [] };
  return missingSans(serving, required).length > 0;
}

function hostOf(server: string): string | undefined {
  try {
    return new URL(server).hostname.replace(/^\[|\]$/g, "") || undefined;
  } catch {
    return undefined;
  }
}
