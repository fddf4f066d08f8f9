import { dirname } from "node:path";
import { InputError, IoError } from "../errors.js";
import { withTreeLock } from "../fsx/lock.js";
import { exists } from "../fsx/read.js";
import { recoverJournal, recoveryPending } from "../fsx/transaction.js";
import { backupFolders } from "../pki/backup.js";
import { parseDuration } from "../pki/duration.js";
import type { CertificateExpirationInfo, ExpirationRow } from "../pki/expiry.js";
import type { TreePaths } from "../pki/paths.js";
import type { RenewedItem, RenewResult } from "../pki/renew.js";
import { parseKeyAlgorithm } from "../x509/algorithms.js";
import { ledgerToRecord } from "./recording.js";
import { inTree, type Notice, pathsOf, storeOf, type TreeOptions } from "./tree.js";

export interface ExpirationOutcome {
  report: CertificateExpirationInfo;
  /** Rows missing, unreadable or expired: `certs check-expiration` exits 1 when there are any. */
  problems: ExpirationRow[];
}

/** `kubepki certs check-expiration`: read-only, unless a killed run left a group to finish. */
export function checkExpiration(t: TreeOptions, now = new Date()): Promise<ExpirationOutcome> {
  return inTree(pathsOf(t), () => expirationOf(t, now));
}

async function expirationOf(t: TreeOptions, now: Date): Promise<ExpirationOutcome> {
  const paths = pathsOf(t);
  if (paths.offlineDir && !exists(paths.offlineDir))
    throw new InputError(`--offline-dir ${paths.offlineDir} does not exist`);
  if (recoveryPending(paths.journal)) await withTreeLock(paths.stateDir, () => recoverJournal(paths.journal));
  const expiry = await import("../pki/expiry.js");
  const report = expiry.checkExpiration(paths, now);
  return { report, problems: expiry.expirationProblems(report) };
}

export interface RenewRequest extends TreeOptions {
  /** Names as check-expiration lists them ("apiserver", "admin.conf", "kubelet/worker1"), or "all". */
  names: string[];
  dryRun?: boolean;
  /** Key algorithm of the new keys (default: that of each old key). */
  algorithm?: string;
  /** Validity of the renewed certificates ("8760h", "365d"). */
  certValidity?: string;
  onKey?: (done: number, total: number) => void;
}

export interface RenewOutcome {
  result: Omit<RenewResult, "issued">;
  /** Backup folders with how many files each received. */
  backups: { dir: string; files: number }[];
  /** What to restart or copy now. */
  nextSteps: string[];
  notices: Notice[];
  /** Set when something the request asked for was not renewed (exit 3): what is left. */
  unfinished?: IoError;
}

/** `kubepki certs renew`: new keys and serials, atomically, recorded in the ledger. */
export function renewCertificates(req: RenewRequest): Promise<RenewOutcome> {
  const paths = pathsOf(req);
  return inTree(paths, () => renewIn(paths, req));
}

async function renewIn(paths: TreePaths, req: RenewRequest): Promise<RenewOutcome> {
  const { renewCertificates: renew } = await import("../pki/renew.js");
  const notices: Notice[] = [];
  const ledger = await storeOf(req, paths);
  const record =
    !req.dryRun &&
    ledgerToRecord(
      ledger,
      paths,
      notices,
      "the renewed certificates are not recorded (kubepki ledger init && kubepki ledger import record them)",
    );
  const { issued, ...result } = await renew({
    paths,
    names: req.names,
    dryRun: req.dryRun,
    algorithm: req.algorithm ? parseKeyAlgorithm(req.algorithm, "--algorithm") : undefined,
    certValidityMs: req.certValidity ? parseDuration(req.certValidity, "--cert-validity") : undefined,
    onKey: req.onKey,
  });
  if (record && issued.length > 0) {
    const { withLedger, recordIssued } = await import("../ledger/record.js");
    await withLedger(ledger, (store) => recordIssued(store, issued, result.superseded));
  }
  return {
    result,
    backups: backupFolders(result.backedUp, paths),
    nextSteps: afterRenew(result.items),
    notices,
    unfinished: req.dryRun ? undefined : notAllRenewed(result.items),
  };
}

/** What to restart or copy after a renewal, per kind of certificate renewed. */
function afterRenew(items: RenewedItem[]): string[] {
  const renewed = items.filter((i) => i.action === "renewed");
  const lines: string[] = [];
  if (renewed.some((i) => i.name !== "kubelet" && !i.name.startsWith("kubelet/")))
    lines.push(
      "Done renewing certificates. Restart kube-apiserver, kube-controller-manager, kube-scheduler and etcd so that they use the new certificates.",
    );
  if (renewed.some((i) => i.name === "kubelet"))
    lines.push("Restart the kubelet (systemctl restart kubelet).");
  for (const i of renewed.filter((r) => r.name.startsWith("kubelet/")))
    lines.push(
      `Copy ${dirname(i.path)}/kubelet.crt and kubelet.key to /var/lib/kubelet/pki/ on ${i.name.slice(8)} (key mode 0600), then restart its kubelet.`,
    );
  return lines;
}

/** A renewal that left something undone says what is left (the caller exits 3 with it). */
function notAllRenewed(items: RenewedItem[]): IoError | undefined {
  // Deliberate skips (an offline file, the kubelet's own pair) are notes, unless nothing was renewed.
  const renewed = items.filter((i) => i.action === "renewed").length;
  const skipped = items.filter((i) => i.action === "skipped" && (!i.deliberate || renewed === 0));
  if (skipped.length === 0) return undefined;
  return new IoError(
    `${renewed === 0 ? "nothing was renewed" : `${renewed} renewed, ${skipped.length} not`}; what is left:\n  - ${skipped.map((s) => `${s.name}: ${s.reason ?? ""}`).join("\n  - ")}`,
  );
}
