import { join } from "node:path";
import { MODE_KEY } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import {
  type Component,
  KUBEADM_CONFIG_FILE,
  KUBELET_CONFIG_FILE,
  type RotationId,
  STATIC_POD_DIR,
  STATIC_POD_MANIFEST,
  TRUST_FLAGS,
} from "../pki/catalog.js";
import type { TreePaths } from "../pki/paths.js";
import { wireKubeadmTrust } from "../pki/trust-wiring.js";
import type { Workspace } from "./workspace.js";

/**
 * Points every trust setting of a CA at its bundle: the static pod manifests' flags, the kubelet's
 * clientCAFile and the kubeadm configuration kubepki manages (extraArgs, so that `kubeadm upgrade`,
 * which regenerates the manifests, keeps the bundle). Only settings that name the CA's signing file
 * are moved; edits are textual, so nothing else in a manifest changes.
 */
export function wireTrust(ws: Workspace, id: RotationId, from: string, to: string): Component[] {
  const touched = new Set<Component>();
  for (const [component, path] of manifests(ws.paths)) {
    const text = ws.read(path);
    if (text === undefined) continue;
    let edited = text;
    for (const f of TRUST_FLAGS.filter((t) => t.id === id && t.component === component))
      edited = replaceFlag(edited, f.flag, from, to);
    if (edited !== text) {
      ws.write(path, edited, ws.modeOf(path) ?? MODE_KEY);
      touched.add(component);
    }
  }
  if (id === "ca" && wireKubelet(ws, from, to)) touched.add("kubelet");
  wireKubeadmConfig(ws, id, to);
  return [...touched];
}

/** The static pod manifests present on the node, by component. */
export function manifests(p: TreePaths): [Component, string][] {
  return Object.entries(STATIC_POD_MANIFEST).map(([c, f]) => [
    c as Component,
    join(p.root, STATIC_POD_DIR, f),
  ]);
}

export const kubeletConfigPath = (p: TreePaths) => join(p.root, KUBELET_CONFIG_FILE);

/**
 * The components that run on this node: a static pod whose manifest is there, the kubelet when its
 * configuration or kubeconfig is (a worker has no control-plane manifests). A node laid out unlike
 * kubeadm (none of them found) keeps the whole list: better a restart too many than one missed.
 */
export function onNode(p: TreePaths, components: Iterable<Component>): Component[] {
  const all = [...components];
  const present = new Set<Component>(manifests(p).flatMap(([c, f]) => (exists(f) ? [c] : [])));
  if (exists(kubeletConfigPath(p)) || exists(join(p.kubeconfigDir, "kubelet.conf"))) present.add("kubelet");
  return present.size === 0 ? all : all.filter((c) => present.has(c));
}
export const kubeadmConfigPath = (p: TreePaths) => join(p.configDir, KUBEADM_CONFIG_FILE);

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** `--flag=FROM` (quoted or not) becomes `--flag=TO`; nothing else changes. */
export function replaceFlag(text: string, flag: string, from: string, to: string): string {
  const re = new RegExp(`(--${escapeRe(flag)}=)(["']?)${escapeRe(from)}\\2(?=[\\s"',\\]]|$)`, "gm");
  return text.replace(re, (_m, head: string, q: string) => `${head}${q}${to}${q}`);
}

/** `key: FROM` (a YAML field naming a file) becomes `key: TO`. */
export function replaceYamlPath(text: string, key: string, from: string, to: string): string {
  const re = new RegExp(`^(\\s*${escapeRe(key)}:\\s*)(["']?)${escapeRe(from)}\\2\\s*$`, "gm");
  return text.replace(re, (_m, head: string, q: string) => `${head}${q}${to}${q}`);
}

/** The value of `--flag=VALUE` in a manifest's text, if it is there. */
export function flagValue(text: string, flag: string): string | undefined {
  const m = new RegExp(`--${escapeRe(flag)}=(["']?)([^\\s"',\\]]+)\\1`, "m").exec(text);
  return m?.[2];
}

/** The kubelet configuration's authentication.x509.clientCAFile, if set. */
export function clientCaFile(text: string): string | undefined {
  return /^\s*clientCAFile:\s*["']?([^\s"']+)["']?\s*$/m.exec(text)?.[1];
}

function wireKubelet(ws: Workspace, from: string, to: string): boolean {
  const path = kubeletConfigPath(ws.paths);
  const text = ws.read(path);
  if (text === undefined) return false;
  const edited = replaceYamlPath(text, "clientCAFile", from, to);
  if (edited === text) return false;
  ws.write(path, edited, ws.modeOf(path) ?? 0o644);
  return true;
}

/** extraArgs for every trust flag kubeadm sets, and the KubeletConfiguration's clientCAFile. */
function wireKubeadmConfig(ws: Workspace, id: RotationId, to: string): void {
  const path = kubeadmConfigPath(ws.paths);
  const text = ws.read(path);
  const wired = text === undefined ? undefined : wireKubeadmTrust(text, id, to);
  if (wired !== undefined) ws.write(path, wired, ws.modeOf(path) ?? 0o600);
}
