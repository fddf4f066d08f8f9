import { readFileSync } from "node:fs";
import { IoError } from "../errors.js";
import type { LedgerStore } from "../ledger/store.js";
import type { TreePaths } from "../pki/paths.js";
import type { HealthListen, HealthServer } from "../revoke/health-server.js";
import type { ReadinessCheck, WebhookServer } from "../revoke/webhook.js";
import type { WebhookFiles } from "../revoke/webhook-setup.js";
import {
  type Duration,
  durationMs,
  inTree,
  type Notice,
  pathsOf,
  storeOf,
  type TreeOptions,
} from "./tree.js";

export interface ServeSetupRequest extends TreeOptions {
  /** host:port the webhook listens on (default 127.0.0.1:8443). */
  listen?: string;
}

export interface ServeSetup {
  files: WebhookFiles;
  /** kube-apiserver's --authorization-config value, as the node sees the path. */
  authorizationConfigFlag: string;
  notices: Notice[];
}

/** `kubepki serve --setup-only`: the certificates, webhook kubeconfig and AuthorizationConfiguration. */
export function setupServe(req: ServeSetupRequest): Promise<ServeSetup> {
  return inTree(pathsOf(req), async () => {
    const { store, setup } = await prepare(req);
    await store.close();
    return setup;
  });
}

export interface ServeRequest extends ServeSetupRequest {
  /** Client certificate CNs allowed to call (default: the one kubepki issues to kube-apiserver). */
  allowedCn?: string[];
  /** Deny requests without a credential id (clusters before 1.32) by the user name of revoked certificates. */
  denyRevokedUsers?: boolean;
  /**
   * A client certificate the ledger does not know (signed outside kubepki): "log" (default) counts
   * it (kubepki_unknown_certificates_total) and logs it once, "deny" also refuses it.
   */
  unknownCertificates?: "log" | "deny";
  /** etcd store: /readyz fails when the revoked set was not confirmed current for this long (default 30s). */
  maxStaleness?: Duration;
  log?: (message: string) => void;
  /** /healthz, /readyz and /metrics also on this plain-HTTP HOST:PORT (loopback unless healthAllowRemote). */
  healthListen?: string;
  /** Let --health-listen be a non-loopback address (a warning says what that exposes). */
  healthAllowRemote?: boolean;
  /**
   * A further readiness check for /readyz, on both ports (a ledger store reports its staleness
   * here): called on every probe, it must answer at once; `{ ok: false, reason }` makes /readyz 503.
   */
  ready?: ReadinessCheck;
  /** How often the TLS files (pairs, trust) are checked for changes, in ms (default 1000). */
  reloadMs?: number;
}

export interface RunningServe extends ServeSetup {
  /** https://host:port the webhook listens on. */
  url: string;
  hook: WebhookServer;
  /** http://host:port of the health port, with --health-listen. */
  healthUrl?: string;
  /** Stops accepting, lets open requests finish (bounded), closes the ledger. */
  close: () => Promise<void>;
}

/** `kubepki serve`: the setup, then the authorization webhook that denies revoked client certificates. */
export function startServe(req: ServeRequest): Promise<RunningServe> {
  return inTree(pathsOf(req), () => startIn(req));
}

async function startIn(req: ServeRequest): Promise<RunningServe> {
  // The health address is checked before anything is written.
  const health = req.healthListen ? await healthAddress(req.healthListen, req.healthAllowRemote) : undefined;
  const { store, setup } = await prepare(req);
  if (health) setup.notices.push(...health.warnings);
  let hook: WebhookServer | undefined;
  let healthServer: HealthServer | undefined;
  try {
    const [{ createWebhookServer }, { WEBHOOK_CLIENT_CN, webhookTrustFile }, { reloadTlsFiles }] =
      await Promise.all([
        import("../revoke/webhook.js"),
        import("../revoke/webhook-setup.js"),
        import("../revoke/tls-reload.js"),
      ]);
    const f = setup.files;
    const paths = pathsOf(req);
    const allowedCNs = req.allowedCn?.length ? req.allowedCn : [WEBHOOK_CLIENT_CN];
    hook = await createWebhookServer({
      cert: readFileSync(f.serverCert, "utf8"),
      key: readFileSync(f.serverKey, "utf8"),
      ca: readFileSync(f.caCert, "utf8"), // the trust bundle during a CA rotation
      allowedCNs,
      store,
      ledgerFile: store.autocommit ? undefined : paths.ledgerFile,
      source: await replicaSource(req, store, { paths, allowedCNs }),
      denyRevokedUsers: req.denyRevokedUsers,
      unknownCertificates: req.unknownCertificates,
      ...(req.log ? { log: req.log } : {}),
      ...(req.ready ? { ready: req.ready } : {}),
    });
    const port = await listen(hook, f.listen, req.listen ?? DEFAULT_LISTEN);
    if (health) healthServer = await startHealth(hook, health.listen);
    const running = hook;
    const healthDone = healthServer;
    const stopReload = reloadTlsFiles(hook.server, () => tlsFiles(f, webhookTrustFile(paths)), {
      intervalMs: req.reloadMs,
      ...(req.log ? { log: req.log } : {}),
    });
    const close = () =>
      Promise.all([running.close(), healthDone?.close(), stopReload()])
        .finally(() => store.close())
        .then(() => {});
    return { ...setup, url: `https://${f.listen.host}:${port}`, hook, close, healthUrl: healthDone?.url };
  } catch (err) {
    await hook?.close().catch(() => {});
    await healthServer?.close().catch(() => {});
    await store.close();
    throw err;
  }
}

async function healthAddress(value: string, allowRemote?: boolean) {
  const { parseHealthListen } = await import("../revoke/health-server.js");
  return parseHealthListen(value, allowRemote);
}

async function startHealth(hook: WebhookServer, at: HealthListen): Promise<HealthServer> {
  const { startHealthServer } = await import("../revoke/health-server.js");
  return startHealthServer(hook.health, at);
}

const DEFAULT_LISTEN = "127.0.0.1:8443";

/** On the etcd ledger, the webhook's set is a watched replica (and writes this node's CRL files). */
async function replicaSource(
  req: ServeRequest,
  store: LedgerStore,
  { paths, allowedCNs }: { paths: TreePaths; allowedCNs: string[] },
) {
  if (!store.autocommit) return undefined;
  const { EtcdLedger } = await import("../ledger/etcd.js");
  if (!(store instanceof EtcdLedger)) return undefined;
  const { ReplicaSet, DEFAULT_MAX_STALENESS_MS } = await import("../revoke/replica.js");
  const maxStalenessMs = (await durationMs(req.maxStaleness, "--max-staleness")) ?? DEFAULT_MAX_STALENESS_MS;
  return (log: (message: string) => void) =>
    new ReplicaSet({
      store,
      paths,
      allowedCNs,
      denyRevokedUsers: !!req.denyRevokedUsers,
      maxStalenessMs,
      loadKnown: true,
      log,
    });
}

/**
 * What serve reads, resolved at each reload tick: during a CA rotation the trust bundle appears
 * (trust), the pairs are issued again (sign) and the bundle shrinks (drop) or goes (abort), and
 * serve follows within a tick. So it trusts kube-apiserver's new-CA client certificate as soon as
 * the bundle holds the new CA, before kube-apiserver restarts with it at sign: no window, and no
 * restart of serve to place in the order (a restart would be a window of its own).
 */
function tlsFiles(f: WebhookFiles, trust: string) {
  return { cert: f.serverCert, key: f.serverKey, ca: trust };
}

/** The setup, with the ledger left open for the server. */
async function prepare(req: ServeSetupRequest): Promise<{ store: LedgerStore; setup: ServeSetup }> {
  const [{ openStore }, { setupWebhook }, { verifyLedger }] = await Promise.all([
    import("../ledger/record.js"),
    import("../revoke/webhook-setup.js"),
    import("../revoke/ledger-check.js"),
  ]);
  const paths = pathsOf(req);
  const store = await openStore(await storeOf(req, paths));
  try {
    const files = await setupWebhook(paths, store, req.listen ?? DEFAULT_LISTEN);
    const notices: Notice[] = [];
    // A ledger that lost revocations the published CRLs still list would let them through here.
    const lost = (await verifyLedger(paths, store)).reduce((n, c) => n + c.onlyInCrl.length, 0);
    if (lost > 0)
      notices.push(
        `${lost} revocation(s) are in a published CRL but not in the ledger, so this webhook cannot deny them: run kubepki ledger repair`,
      );
    const flag = files.authorizationConfig.slice(paths.root.length) || files.authorizationConfig;
    return { store, setup: { files, authorizationConfigFlag: flag, notices } };
  } catch (err) {
    await store.close();
    throw err;
  }
}

function listen(hook: WebhookServer, at: { host: string; port: number }, given: string): Promise<number> {
  return new Promise((resolveListen, reject) => {
    hook.server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new IoError(
          `cannot listen on ${given}: ${err.code === "EADDRINUSE" ? "address in use" : err.message}`,
          {
            cause: err,
          },
        ),
      ),
    );
    hook.server.listen(at.port, at.host, () => {
      const addr = hook.server.address();
      resolveListen(typeof addr === "object" && addr ? addr.port : at.port);
    });
  });
}
