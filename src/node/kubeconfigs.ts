import type { CertInfo } from "../x509/parse.js";
import { type KeyFact, parsePemFile } from "./certs.js";
import { isRecord, parseUntrustedYaml } from "./yaml.js";

export interface KubeconfigCluster {
  name: string;
  server?: string;
  insecureSkipTlsVerify: boolean;
  caCerts: CertInfo[];
  caFile?: string;
}

export interface KubeconfigUser {
  name: string;
  clientCert?: CertInfo;
  clientKey?: KeyFact;
  clientCertificateFile?: string;
  clientKeyFile?: string;
  token: boolean;
  exec?: string;
}

export interface KubeconfigFact {
  path: string;
  /** The component flags that name this kubeconfig ("kube-scheduler --kubeconfig"), if any. */
  usedBy?: string[];
  currentUser?: string;
  clusters: KubeconfigCluster[];
  users: KubeconfigUser[];
}

function b64(value: unknown): Buffer | undefined {
  return typeof value === "string" ? Buffer.from(value, "base64") : undefined;
}

/** A kubeconfig as the audit needs it; never throws (errors are returned). */
export function readKubeconfig(text: string, path: string): { fact?: KubeconfigFact; error?: string } {
  const parsed = parseUntrustedYaml(text);
  if ("error" in parsed) return { error: parsed.error };
  const doc = parsed.docs[0];
  if (
    !isRecord(doc) ||
    (doc.kind !== undefined && doc.kind !== "Config") ||
    !("clusters" in doc || "users" in doc)
  )
    return { error: "not a kubeconfig" };
  const list = (v: unknown) => (Array.isArray(v) ? v.filter(isRecord) : []);
  const clusters: KubeconfigCluster[] = list(doc.clusters).map((c) => {
    const cl = isRecord(c.cluster) ? c.cluster : {};
    const ca = b64(cl["certificate-authority-data"]);
    return {
      name: String(c.name ?? ""),
      server: typeof cl.server === "string" ? cl.server : undefined,
      insecureSkipTlsVerify: cl["insecure-skip-tls-verify"] === true,
      caCerts: ca
        ? parsePemFile(ca, `${path} clusters[${String(c.name)}].certificate-authority-data`).certs
        : [],
      caFile: typeof cl["certificate-authority"] === "string" ? cl["certificate-authority"] : undefined,
    };
  });
  const users: KubeconfigUser[] = list(doc.users).map((u) => {
    const us = isRecord(u.user) ? u.user : {};
    const cert = b64(us["client-certificate-data"]);
    const key = b64(us["client-key-data"]);
    const where = `${path} users[${String(u.name)}]`;
    const exec = isRecord(us.exec) ? String(us.exec.command ?? "") : undefined;
    return {
      name: String(u.name ?? ""),
      clientCert: cert ? parsePemFile(cert, `${where}.client-certificate-data`).certs[0] : undefined,
      clientKey: key ? parsePemFile(key, `${where}.client-key-data`).keys[0] : undefined,
      clientCertificateFile:
        typeof us["client-certificate"] === "string" ? us["client-certificate"] : undefined,
      clientKeyFile: typeof us["client-key"] === "string" ? us["client-key"] : undefined,
      token: typeof us.token === "string" || typeof us.tokenFile === "string",
      exec,
    };
  });
  const contexts = list(doc.contexts);
  const current = contexts.find((c) => c.name === doc["current-context"]);
  const currentUser = isRecord(current?.context) ? String(current.context.user ?? "") : undefined;
  for (const u of users) {
    if (!u.clientCert) continue;
    u.clientCert.origin = "kubeconfig";
    u.clientCert.field = `users[${u.name}].client-certificate-data`;
    u.clientCert.path = path;
  }
  return { fact: { path, currentUser, clusters, users } };
}
