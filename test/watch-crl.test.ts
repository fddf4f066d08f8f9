import assert from "node:assert/strict";
import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initTree, kubepki, openssl, PKI } from "./helpers.js";
import { type EtcdHandle, etcdctl, startEtcd } from "./peers/etcd.js";
import { parsePrometheusText } from "./prom-text.js";

const DAY = 86_400;

/** The CRL as openssl reads it: number, nextUpdate, revoked serials. */
function readCrl(file: string): { number: number; nextUpdate: Date; serials: string[] } {
  const r = openssl(["crl", "-inform", "DER", "-in", file, "-noout", "-text"]);
  assert.equal(r.status, 0, r.stderr);
  const number = Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(r.stdout)?.[1]);
  const next = /Next Update: (.+)/.exec(r.stdout)?.[1] ?? "";
  const serials = [...r.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) =>
    (m[1] ?? "").toLowerCase(),
  );
  return { number, nextUpdate: new Date(next), serials };
}

function crlSeconds(stdout: string, filepath: string): number | undefined {
  const m = parsePrometheusText(`${stdout.trimEnd()}\n`);
  return m.get("kubepki_crl_next_update_seconds")?.samples.find((s) => s.labels.filepath === filepath)?.value;
}

describe("kubepki watch keeps CRLs fresh: the real etcd keeps refusing a revoked client", () => {
  let root: string;
  let offline: string;
  let etcd: EtcdHandle;
  const crl = () => join(root, PKI, "etcd/ca.crl");
  const pair = (b: string) => [join(root, PKI, `${b}.crt`), join(root, PKI, `${b}.key`)] as const;
  const get = (b: string) =>
    etcdctl(etcd.endpoint, join(root, PKI, "etcd/ca.crt"), ...pair(b), ["get", "/k"]);
  before(async () => {
    ({ root, offline } = await initTree());
    const revoked = kubepki([
      "revoke",
      "--root",
      root,
      "--user",
      "kube-etcd-healthcheck-client",
      "--reason",
      "keyCompromise",
    ]);
    assert.equal(revoked.status, 0, revoked.stderr);
    // A CRL close to its nextUpdate: two days left, inside the default 7-day window.
    const short = kubepki(["crl", "--root", root, "--ca", "etcd-ca", "--validity", "2d"]);
    assert.equal(short.status, 0, short.stderr);
    etcd = await startEtcd(root, [`--client-crl-file=${crl()}`]);
  });
  after(async () => {
    await etcd?.stop();
  });

  it("re-signs a CRL within --crl-refresh of its nextUpdate: same entries, a higher number", () => {
    const before = readCrl(crl());
    assert.equal(before.serials.length, 1);
    assert.ok(before.nextUpdate.getTime() - Date.now() < 3 * DAY * 1000);
    assert.notEqual(get("etcd/healthcheck-client").status, 0, "refused before the refresh");
    const r = kubepki(["watch", "--root", root, "--once"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`etcd/ca\\.crl: nextUpdate .* re-signed as CRL number ${before.number + 1} \\(1 revoked\\)`),
    );
    const after = readCrl(crl());
    assert.equal(after.number, before.number + 1);
    assert.deepEqual(after.serials, before.serials);
    assert.ok(after.nextUpdate.getTime() - Date.now() > 29 * DAY * 1000);
    assert.ok((crlSeconds(r.stdout, "/etc/kubernetes/pki/etcd/ca.crl") ?? 0) > 29 * DAY);
    assert.match(r.stdout, /kubepki_crl_refreshes_total\{filepath="[^"]*etcd\/ca\.crl"\} 1/);
    // etcd reads the CRL at each handshake: the revoked client stays refused, the others are served.
    assert.notEqual(get("etcd/healthcheck-client").status, 0, "refused after the refresh");
    const ok = get("apiserver-etcd-client");
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(etcd.proc.exitCode, null);
  });

  it("leaves a CRL that is not due alone", () => {
    const before = readFileSync(crl());
    const r = kubepki(["watch", "--root", root, "--once"]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /re-signed/);
    assert.deepEqual(readFileSync(crl()), before);
  });

  it("without the CA key: a warning and the metric; with --offline-dir holding it: refreshed", () => {
    assert.equal(kubepki(["crl", "--root", root, "--ca", "etcd-ca", "--validity", "1d"]).status, 0);
    mkdirSync(join(offline, "pki/etcd"), { recursive: true });
    renameSync(join(root, PKI, "etcd/ca.key"), join(offline, "pki/etcd/ca.key"));
    const before = readFileSync(crl());
    const warned = kubepki(["watch", "--root", root, "--once"]);
    assert.equal(warned.status, 0, warned.stderr);
    assert.match(
      warned.stderr,
      /etcd\/ca\.crl: nextUpdate .* within the refresh window, and .*CA key .* is absent/,
    );
    assert.deepEqual(readFileSync(crl()), before, "left as it was");
    assert.ok((crlSeconds(warned.stdout, "/etc/kubernetes/pki/etcd/ca.crl") ?? DAY * 9) < DAY);
    const done = kubepki(["watch", "--root", root, "--once", "--offline-dir", offline]);
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stderr, /re-signed as CRL number/);
    assert.notEqual(get("etcd/healthcheck-client").status, 0);
    assert.equal(get("apiserver-etcd-client").status, 0);
  });
});
