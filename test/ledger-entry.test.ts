import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { entryFrom } from "../src/ledger/entry.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { openssl, tempDir } from "./helpers.js";

/** A self-signed certificate made by openssl with the subject and SANs given. */
function opensslCert(subject: string, san: string): string {
  const dir = tempDir();
  const crt = join(dir, "c.crt");
  const r = openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "c.key"),
    "-out",
    crt,
    "-subj",
    subject,
    "-addext",
    `subjectAltName=${san}`,
    "-set_serial",
    "0x00ff01",
    "-days",
    "1",
  ]);
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(crt, "utf8");
}

describe("ledger entries from the one certificate model", () => {
  it("reads subject, SANs and serial as Kubernetes sees them; the stored forms stay as they were", () => {
    const pem = opensslCert(
      "/O=system:masters/O=dev, ops/CN=first/CN=last+OU=x",
      "DNS:a.example,IP:fd00::1,IP:10.0.0.1,URI:spiffe://x/y",
    );
    const cert = parseCertificatePem(pem, "c.crt");
    const now = new Date("2026-01-01T00:00:00Z");
    const e = entryFrom(
      { der: cert.der, issuerDer: cert.der, profile: "client", path: "c.crt" },
      "imported",
      now,
    );
    // The last CN is the user name (Go's pkix.Name), also inside a multi-valued RDN; an O with a
    // comma is the group "dev, ops", not Node's display form "dev\, ops".
    assert.equal(e.subjectCN, "last");
    assert.deepEqual(e.subjectO, ["system:masters", "dev, ops"]);
    assert.equal(e.breakGlass, true);
    // Serials lowercase hex without leading zeros; SANs in the form the ledger has always kept.
    assert.equal(e.serial, "ff01");
    assert.deepEqual(e.sans, [
      "DNS:a.example",
      "IP Address:FD00:0:0:0:0:0:0:1",
      "IP Address:10.0.0.1",
      "URI:spiffe://x/y",
    ]);
    assert.equal(e.sha256, cert.sha256);
    assert.equal(e.issuerSha256, cert.sha256);
    assert.equal(e.notAfter, cert.notAfter.toISOString());
    assert.equal(e.recordedAt, now.toISOString());
    // A record that carries the parsed certificate gives the same entry.
    const carried = entryFrom(
      { der: cert.der, cert, issuerDer: cert.der, profile: "client", path: "c.crt" },
      "imported",
      now,
    );
    assert.deepEqual(carried, e);
  });

  it("a record whose DER is not a certificate is an input error naming its file", () => {
    assert.throws(
      () =>
        entryFrom(
          {
            der: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]),
            issuerDer: Buffer.alloc(0),
            profile: "x",
            path: "bad.crt",
          },
          "imported",
        ),
      (err: Error) =>
        err.name === "InputError" && /bad\.crt: not a valid X\.509 certificate/.test(err.message),
    );
  });
});
