import { dirname } from "node:path";
import { confineWrites } from "../fsx/confine.js";
import { type TreePaths, treePaths } from "../pki/paths.js";

/** Where a command works: the node's / and, where it applies, the folders beside it. */
export interface TreeOptions {
  /** The node's / (a built tree's folder, or "/" on a real node). */
  root: string;
  /** Folder of the issuance ledger (default: <root>/var/lib/kubepki). */
  state?: string;
  /** The offline folder: super-admin.conf, offline CA keys, other nodes' kubelet pairs. */
  offlineDir?: string;
  /** Certificates directory on the node (default: /etc/kubernetes/pki). */
  certDir?: string;
}

export function pathsOf(t: TreeOptions): TreePaths {
  return treePaths(t.root, t.certDir, t.offlineDir, t.state);
}

/**
 * Runs a use case with every write it makes confined (fsx/confine.ts) to the folders its request
 * names: the root, the offline folder, kubepki's state, the ledger's folder, and `more` (an --out).
 * A program calling the library is confined as the CLI is.
 */
export function inTree<T>(
  paths: TreePaths,
  fn: () => Promise<T>,
  ...more: (string | undefined)[]
): Promise<T> {
  return confineWrites(
    [paths.root, paths.offlineDir, paths.stateDir, dirname(paths.ledgerFile), ...more],
    fn,
  );
}

/** Something the caller should tell the operator (a warning), in the order it arose. */
export type Notice = string;

/** A duration as milliseconds, or as kubeadm writes it ("8760h", "30d"); `flag` names it in errors. */
export type Duration = number | string;

export async function durationMs(value: Duration | undefined, flag: string): Promise<number | undefined> {
  if (value === undefined || typeof value === "number") return value;
  const { parseDuration } = await import("../pki/duration.js");
  return parseDuration(value, flag);
}
