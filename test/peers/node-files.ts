import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";

/**
 * What the real peers read from a node tree: the flags of a static pod manifest and the kubelet's
 * configuration, exactly as they are on disk (so a rotation's rewiring is what gets tested), with
 * node paths (`/etc/kubernetes/pki/ca.crt`) resolved under the tree's root.
 */
export type Flags = Map<string, string[]>;

export const MANIFESTS = "etc/kubernetes/manifests";
export const KUBELET_CONFIG = "var/lib/kubelet/config.yaml";

export function inRoot(root: string, nodePath: string): string {
  return join(root, nodePath);
}

/** The flags of the first container of `etc/kubernetes/manifests/<component>.yaml` (`--a=b` and `--a b`). */
export function manifestFlags(root: string, component: string): Flags {
  const file = inRoot(root, `${MANIFESTS}/${component}.yaml`);
  const pod = parse(readFileSync(file, "utf8")) as {
    spec?: { containers?: { command?: string[]; args?: string[] }[] };
  };
  const c = pod.spec?.containers?.[0];
  if (!c) throw new Error(`${file}: no container`);
  const words = [...(c.command ?? []), ...(c.args ?? [])];
  const flags: Flags = new Map();
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? "";
    if (!w.startsWith("--")) continue;
    const eq = w.indexOf("=");
    const [name, value] =
      eq > 0
        ? [w.slice(2, eq), w.slice(eq + 1)]
        : [w.slice(2), (words[i + 1] ?? "").startsWith("--") ? "" : (words[++i] ?? "")];
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return flags;
}

/** The last value of a flag (as pflag keeps it), or undefined. */
export function flag(flags: Flags, name: string): string | undefined {
  return flags.get(name)?.at(-1);
}

/** A flag that must be there (the peer cannot run without it). */
export function need(flags: Flags, name: string, where: string): string {
  const v = flag(flags, name);
  if (v === undefined || v === "") throw new Error(`${where}: --${name} is not set`);
  return v;
}

export interface KubeletTls {
  tlsCertFile: string;
  tlsPrivateKeyFile: string;
  clientCAFile: string;
  anonymous: boolean;
}

/** The kubelet's serving pair and client CA from `var/lib/kubelet/config.yaml` (node paths). */
export function kubeletTls(root: string): KubeletTls {
  const file = inRoot(root, KUBELET_CONFIG);
  const docs = parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS());
  const cfg = docs.find((d) => d?.kind === "KubeletConfiguration");
  if (!cfg) throw new Error(`${file}: no KubeletConfiguration`);
  const ca = cfg.authentication?.x509?.clientCAFile;
  if (!cfg.tlsCertFile || !cfg.tlsPrivateKeyFile || !ca)
    throw new Error(
      `${file}: tlsCertFile, tlsPrivateKeyFile and authentication.x509.clientCAFile must be set`,
    );
  return {
    tlsCertFile: cfg.tlsCertFile,
    tlsPrivateKeyFile: cfg.tlsPrivateKeyFile,
    clientCAFile: ca,
    anonymous: cfg.authentication?.anonymous?.enabled === true,
  };
}

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** Every PEM block of a text, with its type. */
export function pemBlocks(text: string): { type: string; pem: string }[] {
  return [...text.matchAll(PEM)].map((m) => ({ type: m[1] ?? "", pem: `${m[0]}\n` }));
}

/** Every certificate of a PEM bundle file. */
export function readCerts(file: string): X509Certificate[] {
  return pemBlocks(readFileSync(file, "utf8"))
    .filter((b) => b.type === "CERTIFICATE")
    .map((b) => new X509Certificate(b.pem));
}

/** Every public key of a file as kube-apiserver's keyutil.PublicKeysFromFile reads it (keys, certificates). */
export function readPublicKeys(file: string): KeyObject[] {
  const keys = pemBlocks(readFileSync(file, "utf8")).map((b) =>
    b.type === "CERTIFICATE" ? new X509Certificate(b.pem).publicKey : createPublicKey(b.pem),
  );
  if (keys.length === 0) throw new Error(`${file}: no public key`);
  return keys;
}
