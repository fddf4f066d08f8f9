import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Registry } from "prom-client";
import type { LedgerStore } from "../ledger/store.js";
import { sha256Hex } from "../x509/fingerprint.js";
import { readBody } from "./webhook-body.js";
import { type Metrics, metrics, send } from "./webhook-metrics.js";
import { decide, parseSar } from "./webhook-sar.js";
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
  bodyLimit?: number;
  /** How often the ledger is checked for changes (ms). */
  pollMs?: number;
  limits?: Partial<WebhookLimits>;
  log?: (message: string) => void;
}

export interface WebhookServer {
  server: Server;
  registry: Registry;
  reload: () => Promise<void>;
  close: () => Promise<void>;
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
function getRoutes(set: RevocationView, m: Metrics): Record<string, Handler> {
  const text = { type: "text/plain" };
  return {
    "/healthz": (_req, res, path) => send(m, res, path, 200, "ok", text),
    "/readyz": (_req, res, path) =>
      set.error ? send(m, res, path, 503, `ledger: ${set.error}`, text) : send(m, res, path, 200, "ok", text),
    "/metrics": (_req, res, path) => {
      m.registry.metrics().then(
        (body) => send(m, res, path, 200, body, { type: m.registry.contentType }),
        () => send(m, res, path, 500, '{"error":"metrics"}'),
      );
    },
  };
}

function requestHandler(o: WebhookOptions, set: RevocationView, m: Metrics) {
  const gets = getRoutes(set, m);
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
    const { status, decision } = decide(sar, set, !!o.denyRevokedUsers);
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
