import { basename, dirname, resolve } from "node:path";
import { exists } from "../fsx/read.js";
import type { LedgerEntry, Status } from "../ledger/store.js";
import type { CrlComparison } from "../revoke/ledger-check.js";
import {
  type Duration,
  durationMs,
  ensureOwnEtcdPair,
  inTree,
  type Notice,
  pathsOf,
  rememberStore,
  storeFlags,
  storeOf,
  type TreeOptions,
} from "./tree.js";

/** `kubepki ledger init`: an empty ledger; an existing one is kept. */
export function ledgerInit(t: TreeOptions): Promise<{ file: string; created: boolean; entries: number }> {
  return inTree(pathsOf(t), () => ledgerInitIn(t));
}

async function ledgerInitIn(t: TreeOptions): Promise<{ file: string; created: boolean; entries: number }> {
  const [{ withLedger }, { describeTarget }] = await Promise.all([
    import("../ledger/record.js"),
    import("../ledger/target.js"),
  ]);
  const paths = pathsOf(t);
  const target = await storeOf(t, paths);
  const file = describeTarget(target);
  // etcd: "create" keeps an existing ledger (its schema key is put only when absent).
  const existed = target.kind === "sqlite" ? exists(target.file) : false;
  const pair = await ensureOwnEtcdPair(target, paths);
  const { recordIssued } = await import("../ledger/record.js");
  const entries = await withLedger(
    target,
    async (s) => {
      if (pair) await recordIssued(s, [pair]);
      return (await s.list()).length;
    },
    existed ? "existing" : "create",
  );
  return { file, created: !existed, entries };
}

export interface ImportOutcome {
  imported: number;
  known: number;
  unlinked: number;
  notices: Notice[];
}

/** `kubepki ledger import`: records the certificates of a node kubepki did not issue, so they can be revoked. */
export function ledgerImport(t: TreeOptions): Promise<ImportOutcome> {
  return inTree(pathsOf(t), () => ledgerImportIn(t));
}

async function ledgerImportIn(t: TreeOptions): Promise<ImportOutcome> {
  const [{ withLedger }, { importNode }, { crlSignWarnings }] = await Promise.all([
    import("../ledger/record.js"),
    import("../node/ledger-import.js"),
    import("../revoke/ledger-check.js"),
  ]);
  const paths = pathsOf(t);
  const r = await withLedger(await storeOf(t, paths), (store) => importNode(store, resolve(t.root)));
  return { ...r, notices: crlSignWarnings(paths) };
}

export interface LedgerListRequest extends TreeOptions {
  status?: Status;
  /** Only certificates expiring within this time. */
  expiring?: Duration;
  /** Only certificates of this subject CN. */
  user?: string;
}

/** A ledger entry with kubeadm's name for its file and its path as the node sees it. */
export type ListedEntry = LedgerEntry & { name: string; nodePath: string | undefined };

/** `kubepki ledger list`: entries by profile and expiry. */
export function ledgerList(req: LedgerListRequest, now = new Date()): Promise<ListedEntry[]> {
  return inTree(pathsOf(req), () => ledgerListIn(req, now));
}

async function ledgerListIn(req: LedgerListRequest, now: Date): Promise<ListedEntry[]> {
  const { withLedger } = await import("../ledger/record.js");
  const within = await durationMs(req.expiring, "--expiring");
  const rows = await withLedger(await storeOf(req), (store) =>
    store.list(
      {
        status: req.status,
        user: req.user,
        expiresBefore: within ? new Date(now.getTime() + within) : undefined,
      },
      now,
    ),
  );
  const root = resolve(req.root);
  return rows
    .map((e) => ({ ...e, name: entryName(e), nodePath: nodePath(root, e.path) }))
    .sort((a, b) => a.profile.localeCompare(b.profile) || a.notAfter.localeCompare(b.notAfter));
}

export interface VerifyOutcome {
  rows: CrlComparison[];
  /** True when the ledger and a published CRL disagree (`ledger verify` exits 1). */
  differs: boolean;
  notices: Notice[];
}

/** `kubepki ledger verify`: the ledger's revocations against the CRLs published on disk. */
export function ledgerVerify(t: TreeOptions): Promise<VerifyOutcome> {
  return inTree(pathsOf(t), () => ledgerVerifyIn(t));
}

async function ledgerVerifyIn(t: TreeOptions): Promise<VerifyOutcome> {
  const [{ withLedger }, { verifyLedger }] = await Promise.all([
    import("../ledger/record.js"),
    import("../revoke/ledger-check.js"),
  ]);
  const paths = pathsOf(t);
  const rows = await withLedger(await storeOf(t, paths), (store) => verifyLedger(paths, store));
  const lost = rows.reduce((n, r) => n + r.onlyInCrl.length, 0);
  const notices: Notice[] = [];
  if (lost > 0)
    notices.push(
      `${lost} revocation(s) are in a published CRL but not in the ledger: run kubepki ledger repair`,
    );
  for (const r of rows)
    if (r.onlyInLedger.length > 0) notices.push(`${r.ca}: republish its CRL (kubepki crl --ca ${r.ca})`);
  const differs = rows.some((r) => r.onlyInCrl.length > 0 || r.onlyInLedger.length > 0);
  return { rows, differs, notices };
}

/** `kubepki ledger repair`: restores into the ledger the revocations found only in a published CRL. */
export function ledgerRepair(
  t: TreeOptions,
): Promise<{ restored: number; serialOnly: number; notices: Notice[] }> {
  return inTree(pathsOf(t), () => ledgerRepairIn(t));
}

async function ledgerRepairIn(
  t: TreeOptions,
): Promise<{ restored: number; serialOnly: number; notices: Notice[] }> {
  const [{ withLedger }, { repairLedger }] = await Promise.all([
    import("../ledger/record.js"),
    import("../revoke/ledger-check.js"),
  ]);
  const paths = pathsOf(t);
  const r = await withLedger(await storeOf(t, paths), (store) => repairLedger(paths, store));
  const notices: Notice[] = [];
  if (r.serialOnly > 0)
    notices.push(
      `${r.serialOnly} revoked serial(s) are not in the ledger as certificates: every CRL keeps listing them (etcd refuses them), but kubepki serve matches fingerprints and cannot deny them; ledger import the certificates if you still have them`,
    );
  return { restored: r.restored, serialOnly: r.serialOnly, notices };
}

/** kubeadm's name for the file ("apiserver", "etcd/ca", "admin.conf"), else the profile. */
function entryName(e: LedgerEntry): string {
  if (!e.path) return e.profile;
  const parent = basename(dirname(e.path));
  return `${parent === "etcd" ? "etcd/" : ""}${basename(e.path).replace(/\.crt$/, "")}`;
}

/** The path as the node sees it when it lies under --root. */
function nodePath(root: string, path: string | undefined): string | undefined {
  if (!path || root === "/" || !path.startsWith(`${root}/`)) return path;
  return path.slice(root.length);
}

export interface MigrateRequest extends TreeOptions {
  /** sqlite:PATH or etcd://... */
  from: string;
  to: string;
}

/** `kubepki ledger migrate`: copies a ledger between SQLite and etcd (both ways), then verifies it. */
export async function ledgerMigrate(req: MigrateRequest) {
  const [{ openStore }, { migrateLedger }, { describeTarget }] = await Promise.all([
    import("../ledger/record.js"),
    import("../ledger/migrate.js"),
    import("../ledger/target.js"),
  ]);
  const paths = pathsOf(req);
  const from = await storeOf({ ...req, state: undefined, store: req.from }, paths);
  const to = await storeOf({ ...req, state: undefined, store: req.to }, paths);
  if (describeTarget(from) === describeTarget(to))
    throw new (await import("../errors.js")).InputError("--from and --to name the same ledger");
  const pair = (await ensureOwnEtcdPair(to, paths)) ?? (await ensureOwnEtcdPair(from, paths));
  const source = await openStore(from, from.kind === "sqlite" ? "readonly" : "existing");
  try {
    const target = await openStore(to, "create");
    try {
      const counts = await migrateLedger(source, target);
      if (pair) await (await import("../ledger/record.js")).recordIssued(target, [pair]);
      // From now on this node's commands use the ledger where it went (an etcd one), not the old file.
      await rememberStore(paths, storeFlags({ ...req, store: req.to }) ?? { store: req.to });
      return { from: describeTarget(from), to: describeTarget(to), ...counts };
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}
