import { realpathSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage, InputError, IoError } from "../errors.js";
import { exists, isInside } from "../fsx/read.js";
import type { LedgerStore } from "../ledger/store.js";
import { treePaths } from "../pki/paths.js";
import type { WatchEngine } from "../watch/engine.js";
import type { WatchEvent } from "../watch/events.js";
import { inTree, type Notice, pathsOf, storeOf, type TreeOptions } from "./tree.js";

export interface WatchRequest extends TreeOptions {
  /** host:port for /metrics (default 127.0.0.1:9793, the exporter's port, on loopback). */
  listen?: string;
  /** Rescan at least this often (ms, default 60 s). */
  intervalMs?: number;
  debounceMs?: number;
  /** Re-sign a CRL this close to its nextUpdate (ms, default 7 days); 0: warn only. */
  crlRefreshMs?: number;
  /** Events as JSON lines appended to this file (default: stdout). */
  events?: string;
  auditdLog?: string;
  /** Messages (scan failures, CRL refreshes) go here (default: stderr). */
  log?: (message: string) => void;
  /** Events go here instead of stdout or the events file (tests). */
  onEvent?: (e: WatchEvent) => void;
}

export interface RunningWatch {
  url?: string;
  engine: WatchEngine;
  notices: Notice[];
  close: () => Promise<void>;
}

export const DEFAULT_WATCH_LISTEN = "127.0.0.1:9793";

/** This package's bin/kubepki.js: two levels up from src/app, dist/app and dist/bundle alike. */
const OWN_BIN = new URL("../../bin/kubepki.js", import.meta.url);

/** host:port, an IPv6 host in brackets. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new InputError(`--listen ${value}: expected HOST:PORT (127.0.0.1:9793)`);
  return { host: m[1] ?? m[2] ?? "", port };
}

/** The ledger, when there is one: the baseline and CRL numbers live there. */
async function openStore(req: WatchRequest, notices: Notice[]): Promise<LedgerStore | undefined> {
  const target = await storeOf(req);
  if (target.kind === "sqlite" && !exists(target.file)) {
    notices.push(
      `no ledger at ${target.file}: metrics only (no integrity baseline, no CRL refresh); kubepki ledger init or kubepki init make one`,
    );
    return undefined;
  }
  // On a shared (etcd) ledger the baseline is kept per node (docs/ledger-etcd.md).
  const record = await import("../ledger/record.js");
  return record.openStore(target);
}

async function engineFor(req: WatchRequest, store: LedgerStore | undefined, once: boolean) {
  const [{ WatchEngine }, { watchMetrics }, { eventSink }, { DEFAULT_CRL_REFRESH_MS }] = await Promise.all([
    import("../watch/engine.js"),
    import("../watch/metrics.js"),
    import("../watch/events.js"),
    import("../watch/crl-refresh.js"),
  ]);
  const metrics = watchMetrics();
  const engine = new WatchEngine({
    paths: pathsOf(req),
    metrics,
    emit: req.onEvent ?? eventSink(req.events),
    log: req.log ?? ((m) => process.stderr.write(`kubepki watch: ${m}\n`)),
    store,
    intervalMs: req.intervalMs ?? 60_000,
    debounceMs: req.debounceMs ?? 250,
    crlRefreshMs: req.crlRefreshMs ?? DEFAULT_CRL_REFRESH_MS,
    auditdLog: req.auditdLog,
    auditdFromStart: once,
  });
  return { engine, metrics };
}

function checkRoot(req: WatchRequest): void {
  if (!exists(req.root)) throw new InputError(`--root ${req.root}: no such folder`);
  if (req.auditdLog && !exists(req.auditdLog))
    throw new InputError(`--auditd-log ${req.auditdLog}: no such file`);
}

/** `kubepki watch --once`: one scan (metrics text, integrity, CRL refresh, the whole auditd log). */
export async function watchOnce(
  req: WatchRequest,
): Promise<{ metrics: string; events: number; notices: Notice[] }> {
  checkRoot(req);
  return inWatchTree(req, () => watchOnceIn(req));
}

/** A watch writes refreshed CRLs, the baseline in the ledger and its events file: nothing else. */
function inWatchTree<T>(req: WatchRequest, fn: () => Promise<T>): Promise<T> {
  const events = req.onEvent ? undefined : req.events;
  const checked = async () => {
    if (events !== undefined) (await import("../watch/events.js")).checkEventsFile(events);
    return fn();
  };
  return inTree(pathsOf(req), checked, req.events === undefined ? undefined : dirname(resolve(req.events)));
}

async function watchOnceIn(
  req: WatchRequest,
): Promise<{ metrics: string; events: number; notices: Notice[] }> {
  const notices: Notice[] = [];
  const store = await openStore(req, notices);
  let events = 0;
  const onEvent = req.onEvent ?? (await import("../watch/events.js")).eventSink(req.events);
  try {
    const counted = (e: WatchEvent) => {
      events++;
      onEvent(e);
    };
    const { engine, metrics } = await engineFor({ ...req, onEvent: counted }, store, true);
    await engine.scanNow();
    if (engine.pending > 0) {
      // The confirming scan (a kubepki command may be recording what it just wrote).
      const { CONFIRM_MS } = await import("../watch/engine.js");
      await new Promise((r) => setTimeout(r, CONFIRM_MS));
      await engine.scanNow();
    }
    return { metrics: await metrics.registry.metrics(), events, notices };
  } finally {
    await store?.close();
  }
}

/** `kubepki watch`: scans, serves /metrics and /healthz, and reports events until closed. */
export async function startWatch(req: WatchRequest): Promise<RunningWatch> {
  checkRoot(req);
  // The scans, refreshes and events of the running watch inherit this confinement.
  return inWatchTree(req, () => startWatchIn(req));
}

async function startWatchIn(req: WatchRequest): Promise<RunningWatch> {
  const listen = parseListen(req.listen ?? DEFAULT_WATCH_LISTEN);
  const notices: Notice[] = [];
  const store = await openStore(req, notices);
  const { engine, metrics } = await engineFor(req, store, false);
  let server: Server | undefined;
  try {
    await engine.start();
    engine.followAuditd();
    server = createServer((rq, res) => {
      const path = (rq.url ?? "/").split("?")[0];
      if (path === "/metrics")
        void metrics.registry.metrics().then((body) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(body);
        });
      else if (path === "/healthz") res.end(engine.scans > 0 ? "ok\n" : "starting\n");
      else res.writeHead(404).end("not found\n");
    });
    const port = await listenOn(server, listen);
    const running = server;
    const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
    return {
      url: `http://${host}:${port}`,
      engine,
      notices,
      close: async () => {
        await new Promise<void>((r) => running.close(() => r()));
        await engine.close();
        await store?.close();
      },
    };
  } catch (err) {
    server?.close();
    await engine.close();
    await store?.close();
    throw err;
  }
}

function listenOn(server: Server, l: { host: string; port: number }): Promise<number> {
  return new Promise((res, rej) => {
    server.once("error", (err) =>
      rej(new IoError(`cannot listen on ${l.host}:${l.port}: ${errorMessage(err)}`, { cause: err })),
    );
    server.listen(l.port, l.host, () => {
      const a = server.address();
      res(typeof a === "object" && a ? a.port : l.port);
    });
  });
}

/** A path as the node names it: a path under --root, or already the node's own. */
function nodePathOf(root: string, p: string): string {
  const base = resolve(root);
  const abs = resolve(p);
  return base !== "/" && isInside(base, abs) ? `/${relative(base, abs)}` : abs;
}

/** `kubepki watch --accept PATH...`: the baseline takes these files as they are now (or drops them when gone). */
export async function acceptChanges(
  req: TreeOptions,
  files: string[],
): Promise<{ accepted: string[]; removed: string[] }> {
  checkRoot(req);
  const paths = pathsOf(req);
  const [{ withLedger }, { takeSnapshot }, { snapshotStates, toRecord }] = await Promise.all([
    import("../ledger/record.js"),
    import("../node/snapshot.js"),
    import("../node/integrity.js"),
  ]);
  const snap = takeSnapshot({ root: paths.root });
  const states = new Map(snapshotStates(snap).map((s) => [s.path, s]));
  const wanted = files.map((f) => nodePathOf(paths.root, f));
  const now = new Date();
  const accepted = wanted.filter((p) => states.has(p));
  const removed = wanted.filter((p) => !states.has(p));
  const target = await storeOf(req, paths);
  await inTree(paths, () =>
    withLedger(target, async (store) => {
      const known = new Set((await store.baseline()).map((b) => b.path));
      const unknown = removed.filter((p) => !known.has(p));
      if (unknown.length)
        throw new InputError(
          `${unknown.join(", ")}: neither a key or certificate file on the node nor in the baseline`,
        );
      await store.putBaseline(
        accepted.map((p) =>
          toRecord(states.get(p) as NonNullable<ReturnType<typeof states.get>>, "accept", now),
        ),
        removed,
      );
    }),
  );
  return { accepted, removed };
}

export interface PrintRequest extends TreeOptions {
  listen?: string;
  /** The Node.js binary the unit runs (default: this one). */
  nodeBinary?: string;
  /** kubepki's bin/kubepki.js the unit runs (default: this package's). */
  script?: string;
  image?: string;
  namespace?: string;
}

/** `--print-audit-rules`: auditd rules, then a Falco rule, for the indicator files. */
export async function printAuditRules(req: TreeOptions): Promise<{ auditd: string; falco: string }> {
  const { indicators, auditdRules, falcoRules } = await import("../watch/indicators.js");
  const list = indicators(req.certDir);
  return { auditd: auditdRules(list), falco: falcoRules(list) };
}

/** The folders a deployed watch reads (outermost only) and the user it can run as on this node. */
async function deployOptions(req: PrintRequest) {
  const [{ takeSnapshot }, deploy] = await Promise.all([
    import("../node/snapshot.js"),
    import("../watch/deploy.js"),
  ]);
  const snap = takeSnapshot({ root: pathsOf(req).root });
  // The node's own paths (as under --root /): where kubeadm keeps kubeconfigs, PKI and kubepki's state.
  const node = treePaths("/", req.certDir);
  const dirs = [...new Set([node.kubeconfigDir, ...snap.pkiDirs, ...snap.layout.kubeletPkiDirs])].sort();
  const outer = dirs.filter((d) => !dirs.some((o) => o !== d && d.startsWith(`${o}/`)));
  return {
    deploy,
    options: {
      listen: req.listen ?? DEFAULT_WATCH_LISTEN,
      readDirs: outer,
      stateDir: node.stateDir,
      crlDir: node.pkiDir,
      image: req.image ?? deploy.DEFAULT_IMAGE,
      namespace: req.namespace ?? "kube-system",
      runAs: deploy.runAsFor(snap, node.ledgerFile),
    },
  };
}

export async function printSystemdUnit(req: PrintRequest): Promise<string> {
  const { deploy, options } = await deployOptions(req);
  const script = realpathSync(req.script ? resolve(req.script) : fileURLToPath(OWN_BIN));
  return deploy.systemdUnit(options, [req.nodeBinary ?? process.execPath, script]);
}

export async function printDaemonSet(req: PrintRequest): Promise<string> {
  const { deploy, options } = await deployOptions(req);
  return deploy.daemonSet(options);
}
