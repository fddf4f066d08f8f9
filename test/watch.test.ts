import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { put, signWith } from "./fixtures.js";
import { initTree, kubepki, PKI } from "./helpers.js";
import type { Family } from "./prom-text.js";
import { parsePrometheusText } from "./prom-text.js";
import { expectedCerts, type RunningCli, startWatchCli, within } from "./watch-helpers.js";

const KUBELET = "/var/lib/kubelet/pki";

/** The series of a family whose labels include these. */
function series(f: Map<string, Family>, name: string, labels: Record<string, string>) {
  return (f.get(name)?.samples ?? []).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** A kubelet client pair as the kubelet's rotation writes it: system:node:cp1, signed by the cluster CA. */
async function kubeletClientFile(root: string, stamp: string): Promise<{ path: string; serial: string }> {
  const pair = await signWith(root, `/${PKI}/ca`, {
    commonName: "system:node:cp1",
    organizations: ["system:nodes"],
  });
  const path = `${KUBELET}/kubelet-client-${stamp}.pem`;
  put(root, path, pair.crt + pair.key, 0o600);
  return { path, serial: BigInt(`0x${new X509Certificate(pair.crt).serialNumber}`).toString(10) };
}

/** Points kubelet-client-current.pem at `target` as the kubelet does: a new link renamed over the old one. */
function swapLink(root: string, target: string): void {
  const link = join(root, KUBELET, "kubelet-client-current.pem");
  symlinkSync(target, `${link}.tmp`);
  renameSync(`${link}.tmp`, link);
}

describe("kubepki watch: metrics with x509-certificate-exporter's names and labels", () => {
  let root: string;
  let w: RunningCli;
  let first: { path: string; serial: string };
  before(async () => {
    ({ root } = await initTree());
    first = await kubeletClientFile(root, "2026-11-30-05-00-00");
    swapLink(root, first.path);
    w = await startWatchCli(root, ["--interval", "1h"]);
  });
  after(async () => {
    await w?.stop();
  });

  it("lists every certificate on the node with its file, serial, subject, issuer and dates", async () => {
    const m = await w.metrics();
    const expected = expectedCerts(root);
    assert.ok(expected.length >= 20, `expected certificates: ${expected.length}`);
    const notAfter = m.get("x509_cert_not_after");
    assert.equal(notAfter?.type, "gauge");
    assert.equal(notAfter?.help, "Indicates the certificate's not after timestamp");
    assert.equal(notAfter?.samples.length, expected.length);
    const now = Date.now() / 1000;
    for (const e of expected) {
      const [kind, key] = e.embedded?.split("/") ?? [];
      const labels: Record<string, string> = {
        filepath: e.filepath,
        filename: e.filepath.split("/").pop() ?? "",
        serial_number: e.serial,
        subject_CN: e.subjectCN,
        issuer_CN: e.issuerCN,
        ...(kind && key ? { embedded_kind: kind, embedded_key: key } : {}),
      };
      const [s] = series(m, "x509_cert_not_after", labels);
      assert.ok(s, `no x509_cert_not_after for ${JSON.stringify(labels)}`);
      assert.equal(s.value, e.notAfter);
      if (!kind) assert.equal(s.labels.embedded_kind, undefined);
      assert.equal(series(m, "x509_cert_not_before", labels)[0]?.value, e.notBefore);
      assert.equal(series(m, "x509_cert_expired", labels)[0]?.value, 0);
      const left = series(m, "x509_cert_expires_in_seconds", labels)[0]?.value ?? 0;
      assert.ok(Math.abs(left - (e.notAfter - now)) < 30, `${e.filepath}: expires in ${left}`);
      const since = series(m, "x509_cert_valid_since_seconds", labels)[0]?.value ?? 0;
      assert.ok(Math.abs(since - (now - e.notBefore)) < 30, `${e.filepath}: valid since ${since}`);
    }
    assert.deepEqual(m.get("x509_read_errors")?.samples, [{ labels: {}, value: 0 }]);
  });

  it("gives the CRLs' freshness and starts its counters at 0", async () => {
    const m = await w.metrics();
    const crl = series(m, "kubepki_crl_next_update_seconds", { filepath: "/etc/kubernetes/pki/etcd/ca.crl" });
    assert.equal(crl.length, 1);
    assert.equal(crl[0]?.labels.issuer_CN, "etcd-ca");
    assert.ok((crl[0]?.value ?? 0) > 29 * 86400);
    assert.equal(m.get("kubepki_crl_next_update_seconds")?.samples.length, 3);
    assert.equal(series(m, "kubepki_integrity_violations_total", { change: "key-replaced" })[0]?.value, 0);
    assert.equal(m.get("kubepki_unknown_certificates_total")?.samples[0]?.value, 0);
  });

  it("shows a certificate renewed with kubepki certs renew within 5 s, and no integrity event", async () => {
    const before = series(await w.metrics(), "x509_cert_not_after", {
      filepath: "/etc/kubernetes/pki/apiserver.crt",
    });
    assert.equal(before.length, 1);
    const r = kubepki(["certs", "renew", "apiserver", "--root", root]);
    assert.equal(r.status, 0, r.stderr);
    const fresh = new X509Certificate(readFileSync(join(root, PKI, "apiserver.crt")));
    const serial = BigInt(`0x${fresh.serialNumber}`).toString(10);
    assert.notEqual(serial, before[0]?.labels.serial_number);
    const { took } = await within(5000, async () => {
      const s = series(await w.metrics(), "x509_cert_not_after", {
        filepath: "/etc/kubernetes/pki/apiserver.crt",
      });
      return s.length === 1 && s[0]?.labels.serial_number === serial ? s : undefined;
    });
    assert.ok(took < 5000, `took ${took} ms`);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(w.eventLines(), []);
  });

  it("shows a kubelet-client-current.pem pointed at another file within 5 s (the kubelet's rotation: no event)", async () => {
    const path = "/var/lib/kubelet/pki/kubelet-client-current.pem";
    const now = series(await w.metrics(), "x509_cert_not_after", { filepath: path });
    assert.equal(now[0]?.labels.serial_number, first.serial);
    const next = await kubeletClientFile(root, "2026-11-30-06-00-00");
    swapLink(root, next.path);
    const { took } = await within(5000, async () => {
      const s = series(await w.metrics(), "x509_cert_not_after", { filepath: path });
      return s[0]?.labels.serial_number === next.serial ? s : undefined;
    });
    assert.ok(took < 5000, `took ${took} ms`);
    // Only the link is listed: the rotated files beside it are not read by anything.
    const m = await w.metrics();
    assert.equal(series(m, "x509_cert_not_after", { serial_number: next.serial }).length, 1);
    assert.equal(
      series(m, "x509_cert_not_after", { filename: "kubelet-client-2026-11-30-05-00-00.pem" }).length,
      0,
    );
    assert.deepEqual(w.eventLines(), []);
  });

  it("counts an unreadable certificate file in x509_read_errors", async () => {
    writeFileSync(
      join(root, PKI, "broken.crt"),
      "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    await within(5000, async () => {
      const m = await w.metrics();
      return m.get("x509_read_errors")?.samples[0]?.value === 1 ? m : undefined;
    });
  });
});

describe("kubepki watch: bad input", () => {
  it("refuses a missing root, a bad --listen and a missing --auditd-log with exit code 2", async () => {
    const { root } = await initTree();
    for (const args of [
      ["--root", join(root, "nope"), "--once"],
      ["--root", root, "--listen", "localhost"],
      ["--root", root, "--once", "--auditd-log", join(root, "nope.log")],
      ["--root", root, "--crl-refresh", "soon", "--once"],
      ["--print-systemd-unit", "--print-daemonset"],
    ]) {
      const r = kubepki(["watch", ...args]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
  });

  it("--once prints the metrics as Prometheus text and says when there is no ledger", async () => {
    const { root } = await initTree();
    mkdirSync(join(root, "var/log/kubepki"), { recursive: true });
    const r = kubepki(["watch", "--root", root, "--once", "--state", join(root, "elsewhere")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /no ledger at .*: metrics only/);
    const m = parsePrometheusText(`${r.stdout}`);
    assert.ok((m.get("x509_cert_not_after")?.samples.length ?? 0) >= 15);
  });
});
