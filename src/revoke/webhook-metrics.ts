import type { ServerResponse } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RevocationView } from "./webhook-set.js";

/** The webhook's Prometheus metrics: requests, decisions, latency, and the revoked set's health. */
export function metrics(set: RevocationView) {
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
  const unknown = new Counter({
    name: "kubepki_unknown_certificates_total",
    help: "SubjectAccessReviews for a client certificate the ledger does not know, by what the webhook did",
    labelNames: ["action"],
    registers: [registry],
  });
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  gauge(
    "kubepki_revoked_certificates",
    "Revoked certificates in the loaded set",
    () => set.fingerprints.size,
  );
  gauge(
    "kubepki_revocation_set_age_seconds",
    "Seconds since the revoked set was last confirmed against a healthy ledger",
    () => (Date.now() - set.loadedAt) / 1000,
  );
  gauge("kubepki_ledger_healthy", "1 when the ledger is readable and unchanged in identity, else 0", () =>
    set.error ? 0 : 1,
  );
  gauge(
    "kubepki_ledger_failures_total",
    "Ledger checks that failed (deleted, replaced, unreadable, shrunk)",
    () => set.failures,
  );
  return { registry, requests, decisions, latency, unknown };
}

export type Metrics = ReturnType<typeof metrics>;

/** Answers and counts; with `close`, the connection goes once the answer is sent. */
export function send(
  m: Metrics,
  res: ServerResponse,
  path: string,
  code: number,
  body: string,
  opts: { type?: string; close?: boolean } = {},
): void {
  m.requests.inc({ path, code: String(code) });
  res.writeHead(code, {
    "content-type": opts.type ?? "application/json",
    "content-length": Buffer.byteLength(body),
    ...(opts.close ? { connection: "close" } : {}),
  });
  res.end(body);
  // A refused body is not read to its end: the connection goes.
  if (opts.close) res.once("finish", () => res.req.socket.destroy());
}
