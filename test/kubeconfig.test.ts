import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InputError } from "../src/errors.js";
import { buildKubeconfig, parseKubeconfig, readKubeconfig } from "../src/pki/kubeconfig.js";
import { issueCertificate } from "../src/x509/certificate.js";
import { generateKeyPair } from "../src/x509/keygen.js";
import { privateKeyToPem, spkiSha256 } from "../src/x509/keys.js";

const DAY = 86_400_000;

async function admin(): Promise<{ text: string; sha256: string; spki: string }> {
  const kp = await generateKeyPair("ECDSA-P256");
  const now = Date.now();
  const ca = await issueCertificate(
    {
      commonName: "kubernetes",
      isCA: true,
      keyUsage: ["digitalSignature", "keyCertSign"],
      extKeyUsage: [],
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + DAY),
    },
    kp.publicKey,
    { selfSigned: kp.privateKey },
  );
  const text = buildKubeconfig({
    clusterName: "kubernetes",
    server: "https://127.0.0.1:6443",
    caPem: ca.pem,
    userName: "kubernetes-admin",
    clientCertPem: ca.pem,
    clientKeyPem: privateKeyToPem(kp.privateKey),
  });
  return { text, sha256: ca.cert.sha256, spki: spkiSha256(kp.publicKey) };
}

describe("one kubeconfig reader, a strict and a collecting variant", () => {
  it("both read the same credentials from a good kubeconfig", async () => {
    const { text, sha256, spki } = await admin();
    const view = parseKubeconfig(text, "admin.conf");
    const { fact, error } = readKubeconfig(text, "admin.conf");
    assert.equal(error, undefined);
    assert.equal(view.clientCert?.sha256, sha256);
    assert.equal(view.server, "https://127.0.0.1:6443");
    assert.equal(fact?.currentUser, "kubernetes-admin");
    const user = fact?.users[0];
    assert.equal(user?.clientCert?.sha256, sha256);
    assert.equal(user?.clientCert?.origin, "kubeconfig");
    assert.equal(user?.clientCert?.field, "users[kubernetes-admin].client-certificate-data");
    assert.equal(user?.clientKey?.publicSpki, spki);
    assert.equal(fact?.clusters[0]?.caCerts[0]?.sha256, sha256);
  });

  it("bad input: strict throws an InputError naming the file, collecting returns the error", async () => {
    const { text } = await admin();
    const bad: [string, string, RegExp][] = [
      ["invalid YAML", "users: [\n", /invalid YAML/],
      ["duplicate keys", "users: []\nusers: []\n", /invalid YAML/],
      ["a list", "- a\n- b\n", /not a kubeconfig/],
      ["nested too deep", `${"[".repeat(100)}${"]".repeat(100)}`, /nested more than 64/],
      ["binary", "users:\u0000", /binary content/],
      ["two documents", `${text}---\n${text}`, /more than one document/],
    ];
    for (const [name, input, reason] of bad) {
      assert.throws(
        () => parseKubeconfig(input, "k.conf"),
        (e: Error) => e instanceof InputError && e.message.startsWith("k.conf: ") && reason.test(e.message),
        name,
      );
      const r = readKubeconfig(input, "k.conf");
      assert.equal(r.fact, undefined, name);
      assert.match(r.error?.message ?? "", reason, name);
    }
  });

  it("damaged credentials: strict refuses, collecting skips them", async () => {
    const { text } = await admin();
    const damaged = text.replace(/client-certificate-data: \S+/, "client-certificate-data: bm90IGEgY2VydA==");
    assert.throws(
      () => parseKubeconfig(damaged, "k.conf"),
      /k\.conf client-certificate-data: no CERTIFICATE/,
    );
    const { fact } = readKubeconfig(damaged, "k.conf");
    assert.equal(fact?.users[0]?.clientCert, undefined);
    assert.ok(fact?.users[0]?.clientKey, "the key is still read");
    const notString = text.replace(/client-key-data: \S+/, "client-key-data: [1, 2]");
    assert.throws(() => parseKubeconfig(notString, "k.conf"), /client-key-data must be a base64 string/);
    assert.equal(readKubeconfig(notString, "k.conf").fact?.users[0]?.clientKey, undefined);
  });
});
