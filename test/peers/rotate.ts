import { CLI } from "../helpers.js";
import { type Ran, runAsync } from "./kubectl.js";

export type Phase = "trust" | "sign" | "drop";
export const PHASES: Phase[] = ["trust", "sign", "drop"];
export type RotationId = "ca" | "etcd-ca" | "front-proxy-ca" | "sa" | "all";

const COMPONENTS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubelet",
] as const;
export type Component = (typeof COMPONENTS)[number];

export interface RotateRun extends Ran {
  /** The components of the printed "Restart, in this order: ..." line, in its order. */
  restart: Component[];
}

/** The components a "Restart, in this order:" line names, in order, each once. */
export function restartOrder(text: string): Component[] {
  const line = /Restart, in this order:([^\n]*)/.exec(text)?.[1] ?? "";
  const seen: Component[] = [];
  for (const m of line.matchAll(
    /\b(kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|etcd)\b/g,
  )) {
    const c = m[1] as Component;
    if (!seen.includes(c)) seen.push(c);
  }
  return seen;
}

/**
 * `kubepki rotate-ca --ca ID --phase P --root ROOT --offline-dir OFFLINE` through bin/kubepki.js
 * (the built CLI), without blocking the event loop: the stand-ins and etcd's client keep running.
 */
export async function rotateCa(
  root: string,
  offline: string,
  id: RotationId,
  phase: Phase,
  ...extra: string[]
): Promise<RotateRun> {
  const r = await runAsync(
    process.execPath,
    [CLI, "rotate-ca", "--ca", id, "--phase", phase, "--root", root, "--offline-dir", offline, ...extra],
    { ...process.env, NO_COLOR: "1" },
    120_000,
  );
  return { ...r, restart: restartOrder(`${r.stdout}\n${r.stderr}`) };
}

/** `kubepki rotate-ca abort --root ROOT --offline-dir OFFLINE`, as rotateCa runs a phase. */
export async function abortRotation(root: string, offline: string): Promise<RotateRun> {
  const r = await runAsync(
    process.execPath,
    [CLI, "rotate-ca", "abort", "--root", root, "--offline-dir", offline],
    { ...process.env, NO_COLOR: "1" },
    120_000,
  );
  return { ...r, restart: restartOrder(`${r.stdout}\n${r.stderr}`) };
}
