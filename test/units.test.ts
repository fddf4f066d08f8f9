import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { humanDuration, kubeadmDate, parseDuration } from "../src/pki/duration.js";
import { firstServiceIp, splitHostPort } from "../src/pki/net.js";
import { randomSerialHex } from "../src/x509/certificate.js";
import { credentialId, sha256Fingerprint } from "../src/x509/fingerprint.js";
import { canonicalIp, dedupeDnsNames, dedupeIps } from "../src/x509/ip.js";
import { decodePem, encodePem } from "../src/x509/pem.js";

describe("small pieces", () => {
  it("humanDuration is apimachinery's HumanDuration", () => {
    const s = 1000;
    const cases: [number, string][] = [
      [-5 * s, "<invalid>"],
      [-0.5 * s, "0s"],
      [59 * s, "59s"],
      [119 * s, "119s"],
      [200 * s, "3m20s"],
      [600 * s, "10m"],
      [5.5 * 3600 * s, "5h30m"],
      [30 * 3600 * s, "30h"],
      [3 * 86400 * s + 4 * 3600 * s, "3d4h"],
      [364 * 86400 * s, "364d"],
      [(2 * 365 + 179) * 86400 * s, "2y179d"],
      [9 * 365 * 86400 * s + 86400 * s, "9y"],
    ];
    for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, String(ms));
    assert.equal(kubeadmDate(new Date("2026-08-19T09:03:59Z")), "Aug 19, 2026 09:03 UTC");
  });

  it("service VIPs and endpoints", () => {
    assert.equal(firstServiceIp("10.96.0.0/12"), "10.96.0.1");
    assert.equal(firstServiceIp("10.96.5.7/12"), "10.96.0.1");
    assert.equal(firstServiceIp("fd00:10:96::/108,10.96.0.0/12"), "fd00:10:96::1");
    assert.throws(() => firstServiceIp("10.96.0.0"), /not a valid CIDR/);
    assert.throws(() => firstServiceIp("10.96.0.0/33"), /not a valid CIDR/);
    assert.deepEqual(splitHostPort("[fd00::1]:6443", "x"), { host: "fd00::1", port: 6443 });
    assert.deepEqual(splitHostPort("api.example.com", "x"), { host: "api.example.com" });
    assert.throws(() => splitHostPort("api:99999", "x"), /invalid port/);
  });

  it("durations: Go syntax plus days", () => {
    assert.equal(parseDuration("8760h", "f"), 8760 * 3600_000);
    assert.equal(parseDuration("1h30m", "f"), 5400_000);
    assert.equal(parseDuration("90d", "f"), 90 * 86400_000);
    for (const bad of ["", "10", "h", "-1h", "1y", "0s"])
      assert.throws(() => parseDuration(bad, "f"), /not a positive duration/);
  });

  it("IP canonical form and kubeadm's SAN de-duplication", () => {
    assert.equal(canonicalIp("0:0:0:0:0:0:0:1"), "::1");
    assert.equal(canonicalIp("2001:DB8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    assert.deepEqual(dedupeIps(["10.0.0.1", "::1", "0::1", "10.0.0.1"]), ["10.0.0.1", "::1"]);
    assert.deepEqual(dedupeDnsNames(["b", "a", "b"]), ["a", "b"]);
  });

  it("serials are positive and below 2^63", () => {
    for (let i = 0; i < 200; i++) {
      const n = BigInt(`0x${randomSerialHex()}`);
      assert.ok(n >= 1n && n < (1n << 63n) - 1n);
    }
  });

  it("PEM round trip and clear errors", () => {
    const pem = encodePem("CERTIFICATE", Buffer.from("hello"));
    assert.deepEqual(decodePem(pem, "x")[0]?.der, Buffer.from("hello"));
    assert.throws(
      () => decodePem(pem.slice(0, 40), "f.crt"),
      /f.crt: PEM block "CERTIFICATE" has no END line/,
    );
    assert.throws(() => decodePem("-----BEGIN X-----\n@@@@\n-----END X-----\n", "f"), /not valid base64/);
    assert.deepEqual(decodePem("no pem here", "f"), []);
  });

  it("fingerprints and Kubernetes credential ids", () => {
    const der = Buffer.from("abc");
    assert.equal(
      credentialId(der),
      "X509SHA256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    assert.match(sha256Fingerprint(der), /^BA:78:16:BF(:[0-9A-F]{2}){28}$/);
  });
});
