import type { KeyObject } from "node:crypto";
import { isMap, parseAllDocuments, stringify } from "yaml";
import { InputError } from "../errors.js";
import { yamlNestingError } from "../fsx/yaml-guard.js";
import { type KeyFact, parsePrivateKeyPem } from "../x509/keys.js";
import { type CertInfo, parseCertificatePem, parsePemFile } from "../x509/parse.js";

/**
 * kubepki's one kubeconfig module: the writer (kubeadm's shape), and one reader with two variants
 * over the same parse: `parseKubeconfig` (strict: throws an InputError naming the file; init, renew,
 * the ledger) and `readKubeconfig` (collecting: returns its errors, never throws; the audit).
 */

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

type Doc = Record<string, unknown>;

const isRecord = (v: unknown): v is Doc => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const records = (v: unknown): Doc[] => (Array.isArray(v) ? v.filter(isRecord) : []);

/**
 * The one parse: nesting bounded before the parser runs, duplicate keys refused, aliases bounded
 * (a "billion laughs" document fails instead of eating memory), one mapping expected.
 */
function parseDoc(text: string): { raw: Doc } | { error: string } {
  if (text.includes("\u0000")) return { error: "binary content, not YAML" };
  const nesting = yamlNestingError(text);
  if (nesting) return { error: nesting.message };
  try {
    const docs = parseAllDocuments(text, { uniqueKeys: true });
    const [doc, ...more] = Array.isArray(docs) ? docs : [];
    const err = doc?.errors[0];
    if (err) return { error: `invalid YAML: ${err.message.split("\n")[0]}` };
    if (more.some((d) => d.contents !== null)) return { error: "invalid YAML: more than one document" };
    if (!doc || !isMap(doc.contents)) return { error: "not a kubeconfig (expected a mapping)" };
    return { raw: doc.toJS({ maxAliasCount: 100 }) as Doc };
  } catch (err) {
    return { error: `YAML refused: ${(err as Error).message.split("\n")[0]}` };
  }
}

/** The entry of a named list ("clusters", "users", "contexts") with that name, and its inner map. */
function named(raw: Doc, list: string, inner: string, name: unknown): Doc | undefined {
  const entry = records(raw[list]).find((e) => e.name === name)?.[inner];
  return isRecord(entry) ? entry : undefined;
}

function currentContext(raw: Doc): Doc | undefined {
  return named(raw, "contexts", "context", raw["current-context"]);
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

function decodeData(value: unknown, what: string, source: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new InputError(`${source}: ${what} must be a base64 string`);
  return Buffer.from(value, "base64").toString("utf8");
}

/** Strict: the current context's cluster and user; throws an InputError naming `source`. */
export function parseKubeconfig(text: string, source: string): KubeconfigView {
  const parsed = parseDoc(text);
  if ("error" in parsed) throw new InputError(`${source}: ${parsed.error}`);
  const raw = parsed.raw;
  const ctx = currentContext(raw);
  const cluster = named(raw, "clusters", "cluster", ctx?.cluster);
  const user = named(raw, "users", "user", ctx?.user);
  const certPem = decodeData(user?.["client-certificate-data"], "client-certificate-data", source);
  const keyPem = decodeData(user?.["client-key-data"], "client-key-data", source);
  return {
    raw,
    clusterName: str(ctx?.cluster),
    server: str(cluster?.server),
    caPem: decodeData(cluster?.["certificate-authority-data"], "certificate-authority-data", source),
    userName: str(ctx?.user),
    clientCert: certPem ? parseCertificatePem(certPem, `${source} client-certificate-data`) : undefined,
    clientKey: keyPem ? parsePrivateKeyPem(keyPem, `${source} client-key-data`) : undefined,
    clientCertificatePath: str(user?.["client-certificate"]),
    clientKeyPath: str(user?.["client-key"]),
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
  const { raw } = parseKubeconfig(text, source);
  const ctx = currentContext(raw);
  const cluster = named(raw, "clusters", "cluster", ctx?.cluster);
  const user = named(raw, "users", "user", ctx?.user);
  if (!cluster || !user) throw new InputError(`${source}: the current context names no cluster or user`);
  cluster["certificate-authority-data"] = b64(update.caPem);
  user["client-certificate-data"] = b64(update.clientCertPem);
  user["client-key-data"] = b64(update.clientKeyPem);
  return stringify(raw);
}

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

/** Every cluster and user of a kubeconfig, as an inventory (the audit) sees them. */
export interface KubeconfigFact {
  path: string;
  /** The component flags that name this kubeconfig ("kube-scheduler --kubeconfig"), if any. */
  usedBy?: string[];
  currentUser?: string;
  clusters: KubeconfigCluster[];
  users: KubeconfigUser[];
}

const data = (value: unknown) => (typeof value === "string" ? Buffer.from(value, "base64") : undefined);

function clusterFact(c: Doc, path: string): KubeconfigCluster {
  const cl = isRecord(c.cluster) ? c.cluster : {};
  const ca = data(cl["certificate-authority-data"]);
  const where = `${path} clusters[${String(c.name)}].certificate-authority-data`;
  return {
    name: String(c.name ?? ""),
    server: str(cl.server),
    insecureSkipTlsVerify: cl["insecure-skip-tls-verify"] === true,
    caCerts: ca ? parsePemFile(ca, where).certs : [],
    caFile: str(cl["certificate-authority"]),
  };
}

function userFact(u: Doc, path: string): KubeconfigUser {
  const us = isRecord(u.user) ? u.user : {};
  const cert = data(us["client-certificate-data"]);
  const key = data(us["client-key-data"]);
  const field = `users[${String(u.name)}].client-certificate-data`;
  const clientCert = cert ? parsePemFile(cert, `${path} ${field}`).certs[0] : undefined;
  if (clientCert) Object.assign(clientCert, { origin: "kubeconfig", field, path });
  return {
    name: String(u.name ?? ""),
    clientCert,
    clientKey: key
      ? parsePemFile(key, `${path} users[${String(u.name)}].client-key-data`).keys[0]
      : undefined,
    clientCertificateFile: str(us["client-certificate"]),
    clientKeyFile: str(us["client-key"]),
    token: typeof us.token === "string" || typeof us.tokenFile === "string",
    exec: isRecord(us.exec) ? String(us.exec.command ?? "") : undefined,
  };
}

/** Collecting: every cluster and user, unreadable data skipped; never throws (errors are returned). */
export function readKubeconfig(text: string, path: string): { fact?: KubeconfigFact; error?: string } {
  const parsed = parseDoc(text);
  if ("error" in parsed) return { error: parsed.error };
  const raw = parsed.raw;
  if ((raw.kind !== undefined && raw.kind !== "Config") || !("clusters" in raw || "users" in raw))
    return { error: "not a kubeconfig" };
  const ctx = currentContext(raw);
  return {
    fact: {
      path,
      currentUser: ctx ? String(ctx.user ?? "") : undefined,
      clusters: records(raw.clusters).map((c) => clusterFact(c, path)),
      users: records(raw.users).map((u) => userFact(u, path)),
    },
  };
}

/** The CA data of the current context's cluster, as PEM text (undefined when it names a file or nothing). */
export function kubeconfigCaPem(text: string, source: string): string | undefined {
  return parseKubeconfig(text, source).caPem;
}

/** Sets the current context's certificate-authority-data (a CA rotation's bundle); every other field kept. */
export function replaceKubeconfigCa(text: string, source: string, caPem: string): string {
  const { raw } = parseKubeconfig(text, source);
  const cluster = named(raw, "clusters", "cluster", currentContext(raw)?.cluster);
  if (!cluster) throw new InputError(`${source}: the current context names no cluster`);
  cluster["certificate-authority-data"] = b64(caPem);
  return stringify(raw);
}
