import { join } from "node:path";
import { MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import type { PendingWrite } from "../fsx/transaction.js";
import { offlineBackupDir } from "./backup.js";
import type { CaId } from "./catalog.js";
import { type CaState, inspectKubeconfig, type LeafJob } from "./init-plan.js";
import { readTreeText, type TreePaths } from "./paths.js";

/** The catalog id of the break-glass kubeconfig (group system:masters). */
export const BREAK_GLASS_ID = "super-admin.conf";

export interface BreakGlassOptions {
  /** An active break-glass credential the ledger already holds. */
  recorded?: { path?: string; sha256: string; notAfter: string };
  /** Mint another although one is recorded (--new-break-glass). */
  mintNew?: boolean;
  /** A control plane joining with the cluster's CAs: the break-glass credential is the first node's. */
  joining?: boolean;
}

export interface BreakGlassPlan {
  /** The jobs, the break-glass one as decided here (the input is not changed). */
  jobs: LeafJob[];
  writes: PendingWrite[];
  warnings: string[];
}

/**
 * One break-glass credential per cluster, never on the node. A super-admin.conf that kubeadm left
 * in /etc/kubernetes moves to the offline folder (unchanged when it is valid, so no second
 * credential is minted); a second copy on the node goes to the offline folder's backups; none is
 * minted while the ledger holds an active one, unless asked.
 */
export async function planBreakGlass(
  jobs: LeafJob[],
  cas: Map<CaId, CaState>,
  paths: TreePaths,
  opts: BreakGlassOptions & { now: Date },
): Promise<BreakGlassPlan> {
  const job = jobs.find((j) => j.id === BREAK_GLASS_ID);
  const ca = cas.get("ca");
  if (!job?.kubeconfig || !ca) return { jobs, writes: [], warnings: [] };
  const nodeCopy = join(paths.kubeconfigDir, BREAK_GLASS_ID);
  const onNode = exists(nodeCopy);
  const decided = await decideBreakGlass(job, ca, nodeCopy, onNode, paths, opts);
  const withJob = jobs.map((j) => (j === job ? decided.job : j));
  if (decided.job.action === "moved") return { ...adopt(decided.job, nodeCopy, paths), jobs: withJob };
  const plan: BreakGlassPlan = { jobs: withJob, writes: [], warnings: [] };
  if (onNode) {
    const dir = join(offlineBackupDir(paths.offlineDir ?? "", opts.now), "node", "etc/kubernetes");
    plan.writes.push({ path: nodeCopy, data: undefined, mode: MODE_KEY, backupDir: dir });
    plan.warnings.push(
      `${nodeCopy} was a second system:masters credential on the node: moved to ${dir}. It stays valid until the cluster CA is rotated (kubepki revoke cannot cut it off at the API server).`,
    );
  }
  return plan;
}

/** Adopt the node's valid copy, skip minting while the ledger holds one, or make it as planned. */
async function decideBreakGlass(
  job: LeafJob,
  ca: CaState,
  nodeCopy: string,
  onNode: boolean,
  paths: TreePaths,
  opts: BreakGlassOptions & { now: Date },
): Promise<{ job: LeafJob }> {
  if (job.action === "generated" && onNode && ca.action === "kept") {
    const found = await inspectKubeconfig(paths, job, ca, opts.now, nodeCopy);
    if (found.problems.length === 0) {
      const sha256 = found.cert?.sha256;
      return {
        job: {
          ...job,
          existing: found.cert,
          action: "moved",
          moveFrom: nodeCopy,
          note: `moved from ${nodeCopy} (kubeadm's break-glass credential, kept as it is${sha256 ? `, ${sha256.slice(0, 16)}…` : ""})`,
        },
      };
    }
  }
  if (job.action === "generated" && opts.joining)
    return {
      job: {
        ...job,
        action: "skipped",
        note: "a joining control plane mints no break-glass credential: the cluster's is the first control plane's (in its offline folder)",
      },
    };
  if (job.action === "generated" && opts.recorded && !opts.mintNew)
    return {
      job: {
        ...job,
        action: "skipped",
        note: `the ledger holds an active break-glass credential (${opts.recorded.path ?? "path unknown"}, valid until ${opts.recorded.notAfter}); none minted. --new-break-glass mints another (both stay valid until the cluster CA is rotated)`,
      },
    };
  return { job };
}

/** The node's valid super-admin.conf becomes the offline one, byte for byte. */
function adopt(job: LeafJob, nodeCopy: string, paths: TreePaths): Omit<BreakGlassPlan, "jobs"> {
  const target = job.kubeconfig?.path ?? "";
  return {
    writes: [
      { path: target, data: readTreeText(paths, nodeCopy), mode: MODE_KEY, dirMode: MODE_OFFLINE_DIR },
      // Its content lives on in the offline folder: no backup copy on the node.
      { path: nodeCopy, data: undefined, mode: MODE_KEY, backupDir: "none" },
    ],
    warnings: [],
  };
}
