import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { KEY_ALGORITHMS } from "../src/x509/algorithms.js";
import { buildCsr, parseCsrPem } from "../src/x509/csr.js";
import { generateKeyPair } from "../src/x509/keygen.js";
import { keysMatch, parsePrivateKey, privateKeyToDer, privateKeyToPem } from "../src/x509/keys.js";
import { EKU_OIDS } from "../src/x509/oids.js";
import { certInfoFromDer, parseCertificatePem } from "../src/x509/parse.js";
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

describe("the certificate model reads what openssl wrote", () => {
  it("names, serial, SANs, constraints, usages, key ids and criticality", () => {
    const dir = tempDir();
    const key = join(dir, "k.pem");
    const crt = join(dir, "c.pem");
    const ext = join(dir, "ext.cnf");
    writeFileSync(
      ext,
      [
        "[v3]",
        "basicConstraints = critical, CA:TRUE, pathlen:2",
        "keyUsage = critical, digitalSignature, keyCertSign, cRLSign",
        "extendedKeyUsage = serverAuth, clientAuth",
        "subjectAltName = DNS:a.example, IP:10.0.0.1, IP:fd00::1, IP:0:0:0:0:0:0:0:1",
        "subjectKeyIdentifier = hash",
        "",
      ].join("\n"),
    );
    const r = openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-384",
      "-nodes",
      "-keyout",
      key,
      "-out",
      crt,
      "-days",
      "2",
      "-subj",
      "/O=two/O=ünïcode/CN=model-ca",
      "-utf8",
      "-set_serial",
      "0x8f00000000000001",
      "-config",
      ext,
      "-extensions",
      "v3",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const c = parseCertificatePem(readFileSync(crt, "utf8"), crt);
    assert.equal(c.commonName, "model-ca");
    assert.deepEqual(c.organizations, ["two", "ünïcode"]);
    assert.equal(c.issuerCommonName, "model-ca");
    assert.equal(c.serialHex, "8f00000000000001");
    assert.deepEqual(c.dnsNames, ["a.example"]);
    assert.deepEqual(c.ipAddresses, ["10.0.0.1", "fd00::1", "::1"]);
    assert.equal(c.isCA, true);
    assert.equal(c.pathLen, 2);
    assert.deepEqual(c.keyUsage, ["digitalSignature", "keyCertSign", "cRLSign"]);
    assert.deepEqual(c.extKeyUsageOids, [EKU_OIDS.serverAuth, EKU_OIDS.clientAuth]);
    assert.equal(c.keyType, "ECDSA-P384");
    assert.equal(c.keyBits, 384);
    assert.equal(c.signatureAlgorithm, "ecdsa-with-SHA256");
    assert.ok(c.selfIssued && c.selfSigned);
    const printed = openssl(["x509", "-in", crt, "-noout", "-ext", "subjectKeyIdentifier"]).stdout;
    assert.ok(
      c.subjectKeyId && printed.replace(/[\s:]/g, "").toLowerCase().includes(c.subjectKeyId.toString("hex")),
    );
    const critical = c.extensions.filter((e) => e.critical).map((e) => e.oid);
    assert.deepEqual(critical.sort(), ["2.5.29.15", "2.5.29.19"]);
    const fp = openssl(["x509", "-in", crt, "-noout", "-fingerprint", "-sha256"]).stdout;
    assert.equal(fp.trim().split("=")[1]?.replace(/:/g, "").toLowerCase(), c.sha256);
    assert.equal(c.pem, readFileSync(crt, "utf8"));
  });

  it("refuses a damaged certificate with an input error that names the file", () => {
    const der = Buffer.from("308203", "hex");
    assert.throws(
      () => certInfoFromDer(der, "bad.der"),
      (e: Error) => e.name === "InputError" && /bad\.der/.test(e.message),
    );
  });
});
