import type { KeyObject } from "node:crypto";
import { isMap, parseDocument, stringify } from "yaml";
import { InputError } from "../errors.js";
import { assertYamlNesting } from "../fsx/yaml-guard.js";
import { parsePrivateKeyPem } from "../x509/keys.js";
import { type CertInfo, parseCertificatePem } from "../x509/parse.js";

/** A kubeconfig as kubeadm writes it (docs/kubeadm-pki.md, "Kubeconfigs"): one cluster, user and context. */
export interface KubeconfigInput {
  clusterName: string;
  server: string;
  caPem: string;
  userName: string;
  clientCertPem: string;
  clientKeyPem: string;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

export function buildKubeconfig(k: KubeconfigInput): string {
  const context = `${k.userName}@${k.clusterName}`;
  return stringify({
    apiVersion: "v1",
    clusters: [
      { cluster: { "certificate-authority-data": b64(k.caPem), server: k.server }, name: k.clusterName },
    ],
    contexts: [{ context: { cluster: k.clusterName, user: k.userName }, name: context }],
    "current-context": context,
    kind: "Config",
    preferences: {},
    users: [
      {
        name: k.userName,
        user: { "client-certificate-data": b64(k.clientCertPem), "client-key-data": b64(k.clientKeyPem) },
      },
    ],
  });
}

/** What the current context of a kubeconfig holds. Paths (client-certificate) are reported, not followed. */
export interface KubeconfigView {
  raw: Record<string, unknown>;
  clusterName?: string;
  server?: string;
  caPem?: string;
  userName?: string;
  clientCert?: CertInfo;
  clientKey?: KeyObject;
  clientCertificatePath?: string;
  clientKeyPath?: string;
  insecureSkipTlsVerify: boolean;
}

type Named = { name?: unknown; [k: string]: unknown };

function findNamed(list: unknown, name: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined;
  return (list as Named[]).find((e) => e && e.name === name) as Record<string, unknown> | undefined;
}

function decodeData(value: unknown, what: string, source: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new InputError(`${source}: ${what} must be a base64 string`);
  return Buffer.from(value, "base64").toString("utf8");
}

export function parseKubeconfig(text: string, source: string): KubeconfigView {
  assertYamlNesting(text, source);
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors[0]) throw new InputError(`${source}: invalid YAML: ${doc.errors[0].message.split("\n")[0]}`);
  if (!isMap(doc.contents)) throw new InputError(`${source}: not a kubeconfig (expected a mapping)`);
  let raw: Record<string, unknown>;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`${source}: YAML refused: ${(err as Error).message}`, { cause: err });
  }
  const ctx = findNamed(raw.contexts, raw["current-context"])?.context as Record<string, unknown> | undefined;
  const cluster = findNamed(raw.clusters, ctx?.cluster)?.cluster as Record<string, unknown> | undefined;
  const user = findNamed(raw.users, ctx?.user)?.user as Record<string, unknown> | undefined;
  const certPem = decodeData(user?.["client-certificate-data"], "client-certificate-data", source);
  const keyPem = decodeData(user?.["client-key-data"], "client-key-data", source);
  return {
    raw,
    clusterName: typeof ctx?.cluster === "string" ? ctx.cluster : undefined,
    server: typeof cluster?.server === "string" ? cluster.server : undefined,
    caPem: decodeData(cluster?.["certificate-authority-data"], "certificate-authority-data", source),
    userName: typeof ctx?.user === "string" ? ctx.user : undefined,
    clientCert: certPem ? parseCertificatePem(certPem, `${source} client-certificate-data`) : undefined,
    clientKey: keyPem ? parsePrivateKeyPem(keyPem, `${source} client-key-data`) : undefined,
    clientCertificatePath:
      typeof user?.["client-certificate"] === "string" ? user["client-certificate"] : undefined,
    clientKeyPath: typeof user?.["client-key"] === "string" ? user["client-key"] : undefined,
    insecureSkipTlsVerify: cluster?.["insecure-skip-tls-verify"] === true,
  };
}

/**
 * kubeadm renew: swap the current user's embedded client credentials and refresh the embedded CA
 * from ca.crt; every other field is kept as it was.
 */
export function replaceKubeconfigCredentials(
  text: string,
  source: string,
  update: { caPem: string; clientCertPem: string; clientKeyPem: string },
): string {
  const view = parseKubeconfig(text, source);
  const raw = view.raw;
  const ctx = findNamed(raw.contexts, raw["current-context"])?.context as Record<string, unknown> | undefined;
  const cluster = findNamed(raw.clusters, ctx?.cluster)?.cluster as Record<string, unknown> | undefined;
  const user = findNamed(raw.users, ctx?.user)?.user as Record<string, unknown> | undefined;
  if (!cluster || !user) throw new InputError(`${source}: the current context names no cluster or user`);
  cluster["certificate-authority-data"] = b64(update.caPem);
  user["client-certificate-data"] = b64(update.clientCertPem);
  user["client-key-data"] = b64(update.clientKeyPem);
  return stringify(raw);
}
