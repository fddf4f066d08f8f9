import { Counter, Gauge, Registry } from "prom-client";
import { CHANGE_KINDS } from "../node/integrity.js";
import { CERT_LABELS, type Scan } from "./scan.js";

/**
 * `kubepki watch`'s Prometheus metrics. The certificate gauges carry the names, help texts and
 * labels of enix/x509-certificate-exporter (its v3 collector, internal/collector.go), so its
 * Grafana dashboard 13922 and its alerts work unchanged; the relative gauges are always on.
 */
export function watchMetrics() {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: readonly string[] = CERT_LABELS) =>
    new Gauge({ name, help, labelNames: [...labelNames], registers: [registry] });
  const g = {
    expired: gauge("x509_cert_expired", "Indicates if the certificate is expired"),
    notBefore: gauge("x509_cert_not_before", "Indicates the certificate's not before timestamp"),
    notAfter: gauge("x509_cert_not_after", "Indicates the certificate's not after timestamp"),
    expiresIn: gauge(
      "x509_cert_expires_in_seconds",
      "Indicates the remaining time before the certificate's not after timestamp",
    ),
    validSince: gauge(
      "x509_cert_valid_since_seconds",
      "Indicates the elapsed time since the certificate's not before timestamp",
    ),
    readErrors: gauge("x509_read_errors", "Indicates the number of read failure(s)", []),
    crlNext: gauge(
      "kubepki_crl_next_update_seconds",
      "Seconds until the CRL's nextUpdate (negative: stale, consumers may reject it)",
      ["filename", "filepath", ...CERT_LABELS.filter((l) => l.startsWith("issuer_"))],
    ),
  };
  const violations = new Counter({
    name: "kubepki_integrity_violations_total",
    help: "Changes to key and certificate files that no kubepki command made, and reads of indicator files, by kind",
    labelNames: ["change"],
    registers: [registry],
  });
  // Every kind starts at 0, so an alert on increase() sees the first one.
  for (const change of [...CHANGE_KINDS, "indicator-read"]) violations.inc({ change }, 0);
  const unknown = new Counter({
    name: "kubepki_unknown_certificates_total",
    help: "Certificates that appeared on the node which the ledger does not know",
    registers: [registry],
  });
  const crlRefreshes = new Counter({
    name: "kubepki_crl_refreshes_total",
    help: "CRLs re-signed because their nextUpdate was near",
    labelNames: ["filepath"],
    registers: [registry],
  });
  /** Replaces every gauge with what the scan found (a file that went away leaves no series behind). */
  const update = (scan: Scan, now = new Date()) => {
    for (const x of Object.values(g)) x.reset();
    for (const c of scan.certs) {
      g.expired.set(c.labels, now > c.notAfter ? 1 : 0);
      g.notBefore.set(c.labels, Math.floor(c.notBefore.getTime() / 1000));
      g.notAfter.set(c.labels, Math.floor(c.notAfter.getTime() / 1000));
      g.expiresIn.set(c.labels, (c.notAfter.getTime() - now.getTime()) / 1000);
      g.validSince.set(c.labels, (now.getTime() - c.notBefore.getTime()) / 1000);
    }
    g.readErrors.set(scan.readErrors.length);
    for (const crl of scan.crls)
      if (crl.nextUpdate) g.crlNext.set(crl.labels, (crl.nextUpdate.getTime() - now.getTime()) / 1000);
  };
  return { registry, update, violations, unknown, crlRefreshes };
}

export type WatchMetrics = ReturnType<typeof watchMetrics>;
