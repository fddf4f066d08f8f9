import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Registry } from "prom-client";
import type { LedgerStore } from "../ledger/store.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { readBody } from "./webhook-body.js";
import { type Metrics, metrics, send } from "./webhook-metrics.js";
import { decide, parseSar, type UnknownPolicy } from "./webhook-sar.js";
import { type RevocationView, RevokedSet } from "./webhook-set.js";

export { CREDENTIAL_ID_KEY } from "./webhook-sar.js";

/**
 * Limits for a webhook whose caller (kube-apiserver) gives up after 3 s: a connection that does not
 * finish its handshake, its headers or its body in time is closed, an idle one too.
 */
export interface WebhookLimits {
  handshakeMs: number;
  headersMs: number;
  requestMs: number;
  keepAliveMs: number;
  /** After its first request, a connection with no traffic for this long is closed. */
  idleMs: number;
  maxConnections: number;
  /** SIGTERM: connections still open after this are destroyed. */
  shutdownMs: number;
}

export const DEFAULT_LIMITS: WebhookLimits = {
  handshakeMs: 5_000,
  headersMs: 5_000,
  requestMs: 5_000,
  keepAliveMs: 30_000,
  idleMs: 60_000,
  maxConnections: 8_192,
  shutdownMs: 2_000,
};

export interface WebhookOptions {
  cert: string;
  key: string;
  /** PEM of the CA whose client certificates may call (kube-apiserver's). */
  ca: string;
  allowedCNs: string[];
  store: LedgerStore;
  /** The ledger's file: its deletion or replacement is noticed within `pollMs`. */
  ledgerFile?: string;
  /** Where the revoked set comes from when not polled from `store` (an etcd replica: watched). */
  source?: (log: (message: string) => void) => RevocationView;
  /** Deny requests without a credential id (clusters before 1.32) by the user name of revoked certificates. */
  denyRevokedUsers?: boolean;
  /** A credential id the ledger does not know: counted and logged ("log", the default) or denied. */
  unknownCertificates?: UnknownPolicy;
  bodyLimit?: number;
  /** How often the ledger is checked for changes (ms). */
  pollMs?: number;
  limits?: Partial<WebhookLimits>;
  log?: (message: string) => void;
  /**
   * A further readiness check for /readyz (a ledger store's staleness, say): called on each probe,
   * it must answer at once; `ok: false` makes /readyz answer 503 with `reason`.
   */
  ready?: ReadinessCheck;
}

/** What /readyz asks besides the ledger's health. */
export type ReadinessCheck = () => { ok: boolean; reason?: string };

export interface WebhookServer {
  server: Server;
  registry: Registry;
  reload: () => Promise<void>;
  close: () => Promise<void>;
  /** The GET endpoints alone (/healthz, /readyz, /metrics), for the plain-HTTP health port. */
  health: (req: IncomingMessage, res: ServerResponse) => void;
}

/** Go and Kubernetes take the last CN of a subject (pkix.Name.CommonName). */
export function lastCommonName(cn: string | string[] | undefined): string | undefined {
  return Array.isArray(cn) ? cn[cn.length - 1] : cn;
}

/**
 * kube-apiserver's authorization webhook: answers SubjectAccessReviews (v1 and v1beta1) with
 * `denied: true` for a revoked client certificate (by the credential id kube-apiserver 1.32+ puts
 * in `extra`), and `allowed: false` (no opinion: RBAC decides) for everything else. The revoked set
 * lives in memory and is reloaded within `pollMs` of any change to the ledger.
 */
export async function createWebhookServer(o: WebhookOptions): Promise<WebhookServer> {
  const limits = { ...DEFAULT_LIMITS, ...o.limits };
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const set: RevocationView =
    o.source?.(log) ??
    new RevokedSet({
      store: o.store,
      file: o.ledgerFile,
      allowedCNs: o.allowedCNs,
      denyRevokedUsers: !!o.denyRevokedUsers,
      loadKnown: true,
      log,
    });
  await set.start();
  const m = metrics(set);
  let polling = false;
  const poll = setInterval(() => {
    if (polling) return;
    polling = true;
    set.poll().finally(() => {
      polling = false;
    });
  }, o.pollMs ?? 250);
  poll.unref();

  const { server, sockets } = httpsServer(o, limits, set, m);
  return {
    server,
    registry: m.registry,
    reload: () => set.poll(),
    close: () => closeServer(server, sockets, poll, limits.shutdownMs).finally(() => set.stop?.()),
    health: healthHandler(getRoutes(set, m, o.ready), m),
  };
}

/** The mTLS server with its limits; only a certificate kubepki issued for the caller stays connected. */
function httpsServer(o: WebhookOptions, limits: WebhookLimits, set: RevocationView, m: Metrics) {
  const handle = requestHandler(o, set, m);
  const server = createServer(
    {
      cert: o.cert,
      key: o.key,
      ca: o.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      handshakeTimeout: limits.handshakeMs,
      requestTimeout: limits.requestMs,
      headersTimeout: limits.headersMs,
      keepAliveTimeout: limits.keepAliveMs,
      connectionsCheckingInterval: Math.min(1000, limits.headersMs / 2),
    },
    (req, res) => {
      try {
        req.socket.setTimeout(limits.idleMs);
        handle(req, res);
      } catch {
        if (!res.headersSent) send(m, res, "other", 500, '{"error":"internal"}', { close: true });
      }
    },
  );
  server.maxConnections = limits.maxConnections;
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // Only a certificate kubepki issued for the caller (an allowed CN, in the ledger, not revoked).
  server.on("secureConnection", (socket: TLSSocket) => {
    try {
      const peer = socket.getPeerCertificate();
      const cn = lastCommonName(peer?.subject?.CN);
      const fp = peer?.raw ? sha256Hex(peer.raw) : "";
      if (!cn || !o.allowedCNs.includes(cn) || !set.callers.has(fp)) return socket.destroy();
      // The first request must come as fast as headers must; the request handler then allows idling.
      socket.setTimeout(limits.headersMs);
    } catch {
      socket.destroy();
    }
  });
  server.on("tlsClientError", (_err, socket) => {
    // refused at the handshake (no certificate, another CA, too slow)
    socket.destroy();
  });
  return { server, sockets };
}

/** Stops accepting, ends idle connections, and destroys whatever is still open after `ms`. */
function closeServer(server: Server, sockets: Set<Socket>, poll: NodeJS.Timeout, ms: number): Promise<void> {
  clearInterval(poll);
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      for (const s of sockets) s.destroy();
      resolve();
    }, ms);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
    // Connections that never sent a request (or are mid-handshake) are not "idle" to http: end them.
    for (const s of sockets) if (!(s as Socket & { _httpMessage?: unknown })._httpMessage) s.destroy();
  });
}

type Handler = (req: IncomingMessage, res: ServerResponse, path: string) => void;

/** The GET endpoints: liveness, readiness (the ledger's health) and metrics. */
function getRoutes(set: RevocationView, m: Metrics, ready?: ReadinessCheck): Record<string, Handler> {
  const text = { type: "text/plain" };
  const notReady = (): string | undefined => {
    if (set.error) return `ledger: ${set.error}`;
    try {
      const r = ready?.();
      return r && !r.ok ? (r.reason ?? "not ready") : undefined;
    } catch (err) {
      return `readiness check failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
  return {
    "/healthz": (_req, res, path) => send(m, res, path, 200, "ok", text),
    "/readyz": (_req, res, path) => {
      const reason = notReady();
      send(m, res, path, reason ? 503 : 200, reason ?? "ok", text);
    },
    "/metrics": (_req, res, path) => {
      m.registry.metrics().then(
        (body) => send(m, res, path, 200, body, { type: m.registry.contentType }),
        () => send(m, res, path, 500, '{"error":"metrics"}'),
      );
    },
  };
}

/** Only the GET endpoints; anything else is 404 (or 405 for another method). */
function healthHandler(gets: Record<string, Handler>, m: Metrics) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const get = Object.hasOwn(gets, path) ? gets[path] : undefined;
    if (!get) return send(m, res, "other", 404, '{"error":"not found"}', { close: true });
    if (req.method !== "GET" && req.method !== "HEAD")
      return send(m, res, path, 405, '{"error":"method not allowed"}', { close: true });
    get(req, res, path);
  };
}

function requestHandler(o: WebhookOptions, set: RevocationView, m: Metrics) {
  const gets = getRoutes(set, m, o.ready);
  const authorize = authorizeHandler(o, set, m);
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const get = Object.hasOwn(gets, path) ? gets[path] : undefined;
    if (get)
      return req.method === "GET"
        ? get(req, res, path)
        : send(m, res, path, 405, '{"error":"method not allowed"}');
    if (path !== "/authorize" && path !== "/") return send(m, res, "other", 404, '{"error":"not found"}');
    authorize(req, res, path);
  };
}

/** POST /authorize: a body within the limit, then the answer. */
function authorizeHandler(o: WebhookOptions, set: RevocationView, m: Metrics): Handler {
  const limit = o.bodyLimit ?? 1024 * 1024;
  const tooLarge = (res: ServerResponse, path: string) =>
    send(m, res, path, 413, '{"error":"request body too large"}', { close: true });
  return (req, res, path) => {
    if (req.method !== "POST") return send(m, res, path, 405, '{"error":"method not allowed"}');
    if (Number(req.headers["content-length"] ?? 0) > limit) return tooLarge(res, path);
    readBody(req, limit, (body) =>
      body === undefined ? tooLarge(res, path) : answer(o, set, m, res, path, body),
    );
  };
}

/** Fingerprints already logged: each unknown certificate is logged once (bounded), counted every time. */
const logged = new WeakMap<WebhookOptions, Set<string>>();
const MAX_LOGGED = 10_000;

function noteUnknown(o: WebhookOptions, m: Metrics, fp: string, user: string | undefined): void {
  const action = o.unknownCertificates ?? "log";
  m.unknown.inc({ action });
  const seen = logged.get(o) ?? new Set<string>();
  logged.set(o, seen);
  if (seen.has(fp) || seen.size >= MAX_LOGGED) return;
  seen.add(fp);
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  log(
    `kubepki serve: client certificate X509SHA256=${fp} (user ${user ?? "?"}) is not in the ledger: ${action === "deny" ? "denied" : "logged (no opinion)"}${seen.size === MAX_LOGGED ? `; the next unknown certificates are counted, not logged` : ""}`,
  );
}

function answer(
  o: WebhookOptions,
  set: RevocationView,
  m: Metrics,
  res: ServerResponse,
  path: string,
  body: Buffer,
) {
  const started = process.hrtime.bigint();
  try {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      return send(m, res, path, 400, '{"error":"malformed JSON"}');
    }
    const sar = parseSar(parsed);
    if (typeof sar === "string") return send(m, res, path, 400, JSON.stringify({ error: sar }));
    const { status, decision, unknown } = decide(
      sar,
      set,
      !!o.denyRevokedUsers,
      o.unknownCertificates ?? "log",
    );
    if (unknown) noteUnknown(o, m, unknown, sar.user);
    m.decisions.inc({ decision, version: sar.apiVersion.slice(sar.apiVersion.lastIndexOf("/") + 1) });
    send(
      m,
      res,
      path,
      200,
      JSON.stringify({ apiVersion: sar.apiVersion, kind: "SubjectAccessReview", status }),
    );
    m.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
  } catch {
    if (!res.headersSent) send(m, res, path, 500, '{"error":"internal"}', { close: true });
  }
}
