import { join } from "node:path";
import { exists, resolveInRoot } from "../fsx/read.js";
import {
  type CaId,
  KUBECONFIGS,
  KUBEPKI_KUBECONFIGS,
  KUBEPKI_PAIRS,
  type RotationId,
  TRUST_BUNDLES,
  TRUST_FLAGS,
} from "../pki/catalog.js";
import { treeItems } from "../pki/inventory.js";
import { type KubeconfigView, parseKubeconfig } from "../pki/kubeconfig.js";
import { kubeconfigPath, type TreePaths } from "../pki/paths.js";
import { clientCaFile, flagValue, kubeletConfigPath, manifests } from "./wiring.js";
import type { Workspace } from "./workspace.js";

/** A certificate on the node that a CA signs: a pair, a combined PEM, or a kubeconfig's embedded client. */
export interface CertFile {
  name: string;
  ca: CaId;
  kind: "pair" | "combined" | "kubeconfig";
  /** The file that holds the certificate (links resolved: a rewrite replaces the target, not the link). */
  path: string;
  keyPath?: string;
}

/** Every certificate of the node (and of the offline folder, when given) a rotation may reissue. */
export function certFiles(p: TreePaths): CertFile[] {
  const files: CertFile[] = [];
  for (const item of treeItems(p)) {
    if (!exists(item.path)) continue;
    if (item.kind === "kubeconfig")
      files.push({ name: item.name, ca: "ca", kind: "kubeconfig", path: item.path });
    else if (item.name === "kubelet-client-current") {
      const real = resolveInRoot(p.root, item.path);
      if (real) files.push({ name: item.name, ca: "ca", kind: "combined", path: real });
    } else if (item.keyPath)
      files.push({ name: item.name, ca: item.caId, kind: "pair", path: item.path, keyPath: item.keyPath });
  }
  for (const base of KUBEPKI_PAIRS) {
    const path = join(p.configDir, `${base}.crt`);
    if (exists(path))
      files.push({
        name: `kubepki/${base}`,
        ca: "ca",
        kind: "pair",
        path,
        keyPath: join(p.configDir, `${base}.key`),
      });
  }
  return files;
}

/** Every kubeconfig on the node (and offline) whose embedded CA data a cluster-CA rotation maintains. */
export function kubeconfigFiles(p: TreePaths): { name: string; path: string }[] {
  const found: { name: string; path: string }[] = [];
  for (const k of KUBECONFIGS) {
    const path = kubeconfigPath(p, k);
    if (path && exists(path)) found.push({ name: k.id, path });
  }
  for (const name of KUBEPKI_KUBECONFIGS) {
    const path = join(p.configDir, name);
    if (exists(path)) found.push({ name: `kubepki/${name}`, path });
  }
  return found;
}

/** A file (or a kubeconfig's CA data) that components trust, and who reads it. */
export interface TrustFile {
  path: string;
  usedBy: string[];
  kind: "pem" | "kubeconfig";
  /** The CA it is for (a bundle, or the flag that names it). */
  id?: RotationId;
}

/** The trust files of the node: the bundles, every file a trust flag or clientCAFile names, the kubeconfigs. */
export function trustFiles(ws: Workspace): TrustFile[] {
  const p = ws.paths;
  const byPath = new Map<string, TrustFile>();
  const add = (path: string, who: string, kind: TrustFile["kind"], id?: RotationId) => {
    const t = byPath.get(path) ?? { path, usedBy: [], kind, id };
    if (!t.usedBy.includes(who)) t.usedBy.push(who);
    byPath.set(path, t);
  };
  for (const [id, rel] of Object.entries(TRUST_BUNDLES) as [RotationId, string][]) {
    const path = join(p.pkiDir, rel);
    if (ws.read(path) !== undefined) add(path, "trust bundle", "pem", id);
  }
  flagFiles(ws, add);
  const kubelet = ws.read(kubeletConfigPath(p));
  const ca = kubelet ? clientCaFile(kubelet) : undefined;
  if (ca) add(join(p.root, ca), "kubelet clientCAFile", "pem", "ca");
  for (const k of kubeconfigFiles(p)) {
    const text = ws.read(k.path) ?? "";
    const file = /^\s*certificate-authority:\s*["']?([^\s"']+)["']?\s*$/m.exec(text)?.[1];
    if (file) add(join(p.root, file), `${k.name} certificate-authority`, "pem", "ca");
    else add(k.path, `${k.name} certificate-authority-data`, "kubeconfig", "ca");
  }
  return [...byPath.values()];
}

type Add = (path: string, who: string, kind: TrustFile["kind"], id?: RotationId) => void;

/** The files the static pod manifests' trust flags name. */
function flagFiles(ws: Workspace, add: Add): void {
  const p = ws.paths;
  for (const [component, manifest] of manifests(p)) {
    const text = ws.read(manifest);
    if (text === undefined) continue;
    for (const f of TRUST_FLAGS.filter((t) => t.component === component)) {
      const value = flagValue(text, f.flag);
      if (value) add(join(p.root, value), `${component} --${f.flag}`, "pem", f.id);
    }
  }
}

/** A kubeconfig of the workspace, parsed once per content. */
export function kubeconfigView(ws: Workspace, path: string): KubeconfigView | undefined {
  return ws.parse(path, "kubeconfig", (t) => parseKubeconfig(t, path));
}
