import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { KEY_ALGORITHMS } from "../src/x509/algorithms.js";
import { buildCsr, parseCsrPem } from "../src/x509/csr.js";
import { generateKeyPair } from "../src/x509/keygen.js";
import { keysMatch, parsePrivateKey, privateKeyToDer, privateKeyToPem } from "../src/x509/keys.js";
import { openssl, tempDir } from "./helpers.js";

describe("x509 keys and CSRs", () => {
  it("every key algorithm round-trips through PEM and DER, and openssl reads both", async () => {
    const dir = tempDir();
    for (const alg of KEY_ALGORITHMS.filter((a) => a !== "RSA-4096")) {
      const kp = await generateKeyPair(alg);
      const pem = privateKeyToPem(kp.privateKey);
      const der = privateKeyToDer(kp.privateKey);
      assert.ok(keysMatch(parsePrivateKey(Buffer.from(pem), "k.pem"), kp.publicKey), alg);
      assert.ok(keysMatch(parsePrivateKey(der, "k.der"), kp.publicKey), alg);
      const pkcs8 = kp.privateKey.export({ type: "pkcs8", format: "der" });
      assert.ok(keysMatch(parsePrivateKey(pkcs8, "k8.der"), kp.publicKey), alg);
      writeFileSync(join(dir, "k.der"), der);
      const r = openssl(["pkey", "-inform", "DER", "-in", join(dir, "k.der"), "-noout"]);
      assert.equal(r.status, 0, `${alg}: ${r.stderr}`);
    }
    assert.throws(
      () => parsePrivateKey(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), "g.der"),
      /g.der: not a private key/,
    );
  });

  it("a CSR carries subject and SANs, verifies, and openssl agrees", async () => {
    const kp = await generateKeyPair("ECDSA-P256");
    const csr = await buildCsr(
      {
        commonName: "system:node:w1",
        organizations: ["system:nodes"],
        dnsNames: ["w1", "w1"],
        ipAddresses: ["10.0.0.21"],
      },
      kp,
    );
    const info = await parseCsrPem(csr.pem, "w1.csr");
    assert.equal(info.commonName, "system:node:w1");
    assert.deepEqual(info.organizations, ["system:nodes"]);
    assert.deepEqual(info.dnsNames, ["w1"]);
    assert.deepEqual(info.ipAddresses, ["10.0.0.21"]);
    assert.equal(info.signatureValid, true);
    assert.ok(keysMatch(kp.privateKey, info.publicKey));
    const file = join(tempDir(), "w1.csr");
    writeFileSync(file, csr.pem);
    const r = openssl(["req", "-in", file, "-verify", "-noout", "-text"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Subject: O = system:nodes, CN = system:node:w1/);
    assert.match(r.stdout, /DNS:w1, IP Address:10.0.0.21/);
    await assert.rejects(
      parseCsrPem(
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "bad.csr",
      ),
      /bad.csr: not a valid PKCS#10/,
    );
  });
});
