import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { LedgerStore } from "../ledger/store.js";

export const CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id";
const API_VERSIONS = new Set(["authorization.k8s.io/v1", "authorization.k8s.io/v1beta1"]);

export interface WebhookOptions {
  cert: string;
  key: string;
  /** PEM of the CA whose client certificates may call (kube-apiserver's). */
  ca: string;
  allowedCNs: string[];
  store: LedgerStore;
  /** Deny requests without a credential id (clusters before 1.32) by the user name of revoked certificates. */
  denyRevokedUsers?: boolean;
  bodyLimit?: number;
  /** How often the ledger is checked for changes (ms). */
  pollMs?: number;
}

interface RevokedSet {
  fingerprints: Set<string>;
  users: Set<string>;
  loadedAt: number;
}

export interface WebhookServer {
  server: Server;
  registry: Registry;
  reload: () => Promise<void>;
  close: () => Promise<void>;
}

/**
 * kube-apiserver's authorization webhook: answers SubjectAccessReviews (v1 and v1beta1) with
 * `denied: true` for a revoked client certificate (by the credential id kube-apiserver 1.32+ puts
 * in `extra`), and `allowed: false` (no opinion: RBAC decides) for everything else. The revoked set
 * lives in memory and is reloaded within `pollMs` of any change to the ledger.
 */
export async function createWebhookServer(o: WebhookOptions): Promise<WebhookServer> {
  const registry = new Registry();
  const requests = new Counter({
    name: "kubepki_webhook_requests_total",
    help: "HTTP requests by path and status code",
    labelNames: ["path", "code"],
    registers: [registry],
  });
  const decisions = new Counter({
    name: "kubepki_webhook_decisions_total",
    help: "SubjectAccessReview answers",
    labelNames: ["decision", "version"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "kubepki_webhook_request_duration_seconds",
    help: "Time to answer a SubjectAccessReview",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
    registers: [registry],
  });
  let revoked: RevokedSet = { fingerprints: new Set(), users: new Set(), loadedAt: Date.now() };
  new Gauge({
    name: "kubepki_revoked_certificates",
    help: "Revoked certificates in the loaded set",
    registers: [registry],
    collect() {
      this.set(revoked.fingerprints.size);
    },
  });
  new Gauge({
    name: "kubepki_revocation_set_age_seconds",
    help: "Seconds since the revoked set was last loaded",
    registers: [registry],
    collect() {
      this.set((Date.now() - revoked.loadedAt) / 1000);
    },
  });

  let version = -1;
  const reload = async () => {
    version = await o.store.version();
    const fingerprints = await o.store.revokedFingerprints();
    const users = new Set(o.denyRevokedUsers ? (await o.store.revoked()).map((e) => e.subjectCN) : []);
    revoked = { fingerprints, users, loadedAt: Date.now() };
  };
  await reload();
  let polling = false;
  const poll = setInterval(async () => {
    if (polling) return;
    polling = true;
    try {
      if ((await o.store.version()) !== version) await reload();
      else revoked.loadedAt = Date.now();
    } catch {
      // keep serving the last good set; the age metric shows it going stale
    } finally {
      polling = false;
    }
  }, o.pollMs ?? 250);
  poll.unref();

  const limit = o.bodyLimit ?? 1024 * 1024;
  const send = (res: ServerResponse, path: string, code: number, body: string, type = "application/json") => {
    requests.inc({ path, code: String(code) });
    res.writeHead(code, { "content-type": type, "content-length": Buffer.byteLength(body) });
    res.end(body);
  };

  const decide = (sar: Record<string, unknown>): { status: Record<string, unknown>; decision: string } => {
    const spec = (sar.spec ?? {}) as { extra?: Record<string, unknown>; user?: unknown };
    const ids = spec.extra?.[CREDENTIAL_ID_KEY];
    const list = Array.isArray(ids) ? ids.filter((i): i is string => typeof i === "string") : [];
    for (const id of list) {
      if (!id.startsWith("X509SHA256=")) continue;
      const fp = id.slice(11).toLowerCase();
      if (revoked.fingerprints.has(fp))
        return {
          decision: "deny",
          status: { allowed: false, denied: true, reason: `client certificate ${id} is revoked (kubepki)` },
        };
    }
    if (
      list.length === 0 &&
      o.denyRevokedUsers &&
      typeof spec.user === "string" &&
      revoked.users.has(spec.user)
    )
      return {
        decision: "deny-user",
        status: {
          allowed: false,
          denied: true,
          reason: `user ${spec.user} holds a revoked client certificate (kubepki, by user name)`,
        },
      };
    return { decision: "no-opinion", status: { allowed: false } };
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/healthz" || path === "/readyz") {
      if (req.method !== "GET") return send(res, path, 405, '{"error":"method not allowed"}');
      return send(res, path, 200, "ok", "text/plain");
    }
    if (path === "/metrics") {
      if (req.method !== "GET") return send(res, path, 405, '{"error":"method not allowed"}');
      registry.metrics().then(
        (m) => send(res, path, 200, m, registry.contentType),
        () => send(res, path, 500, '{"error":"metrics"}'),
      );
      return;
    }
    if (path !== "/authorize" && path !== "/") return send(res, "other", 404, '{"error":"not found"}');
    if (req.method !== "POST") return send(res, path, 405, '{"error":"method not allowed"}');
    const started = process.hrtime.bigint();
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on("data", (c: Buffer) => {
      if (aborted) return;
      size += c.length;
      if (size > limit) {
        aborted = true;
        send(res, path, 413, '{"error":"request body too large"}');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (aborted) return;
      let sar: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
          throw new Error("not an object");
        sar = parsed as Record<string, unknown>;
      } catch {
        return send(res, path, 400, '{"error":"malformed JSON"}');
      }
      const apiVersion = String(sar.apiVersion ?? "");
      if (sar.kind !== "SubjectAccessReview" || !API_VERSIONS.has(apiVersion))
        return send(
          res,
          path,
          400,
          '{"error":"expected a SubjectAccessReview, authorization.k8s.io/v1 or v1beta1"}',
        );
      const { status, decision } = decide(sar);
      decisions.inc({ decision, version: apiVersion.slice(apiVersion.lastIndexOf("/") + 1) });
      send(res, path, 200, JSON.stringify({ apiVersion, kind: "SubjectAccessReview", status }));
      latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    });
    req.on("error", () => {
      aborted = true;
    });
  };

  const server = createServer(
    {
      cert: o.cert,
      key: o.key,
      ca: o.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
    },
    (req, res) => {
      try {
        handle(req, res);
      } catch {
        if (!res.headersSent) send(res, "other", 500, '{"error":"internal"}');
      }
    },
  );
  // Only kube-apiserver's client certificate (an allowed CN from the CA) completes a connection.
  server.on("secureConnection", (socket: TLSSocket) => {
    const cn = socket.getPeerCertificate()?.subject?.CN;
    const name = Array.isArray(cn) ? cn[0] : cn;
    if (!name || !o.allowedCNs.includes(name)) socket.destroy();
  });
  server.on("tlsClientError", () => {
    // refused at the handshake: no certificate, or one from another CA
  });
  server.keepAliveTimeout = 65_000;
  return {
    server,
    registry,
    reload,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(poll);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
