import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CAS, KUBECONFIGS, LEAVES } from "../src/pki/catalog.js";
import { initPki } from "../src/pki/init.js";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { algorithmOfKey, KEY_ALGORITHMS } from "../src/x509/algorithms.js";
import { parsePrivateKeyPem } from "../src/x509/keys.js";
import { type CertInfo, parseCertificatePem } from "../src/x509/parse.js";
import { PKI, tempDir, testSpec } from "./helpers.js";

const HOUR = 3_600_000;
const BACKDATE = 5 * 60_000;
const EKU = { serverAuth: "1.3.6.1.5.5.7.3.1", clientAuth: "1.3.6.1.5.5.7.3.2" };

/** docs/kubeadm-pki.md (certificates and SANs), for node cp1 at 10.0.0.10 with defaults and one extra SAN. */
const EXPECTED: Record<
  string,
  { cn: string; o: string[]; issuer: string; eku: string[]; dns: string[]; ips: string[] }
> = {
  apiserver: {
    cn: "kube-apiserver",
    o: [],
    issuer: "kubernetes",
    eku: [EKU.serverAuth],
    dns: [
      "api.example.com",
      "cp.example.com",
      "cp1",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ],
    ips: ["10.96.0.1", "10.0.0.10", "192.0.2.7"],
  },
  "apiserver-kubelet-client": {
    cn: "kube-apiserver-kubelet-client",
    o: ["kubeadm:cluster-admins"],
    issuer: "kubernetes",
    eku: [EKU.clientAuth],
    dns: [],
    ips: [],
  },
  "front-proxy-client": {
    cn: "front-proxy-client",
    o: [],
    issuer: "front-proxy-ca",
    eku: [EKU.clientAuth],
    dns: [],
    ips: [],
  },
  "etcd-server": {
    cn: "cp1",
    o: [],
    issuer: "etcd-ca",
    eku: [EKU.serverAuth, EKU.clientAuth],
    dns: ["cp1", "localhost"],
    ips: ["10.0.0.10", "127.0.0.1", "::1"],
  },
  "etcd-peer": {
    cn: "cp1",
    o: [],
    issuer: "etcd-ca",
    eku: [EKU.serverAuth, EKU.clientAuth],
    dns: ["cp1", "localhost"],
    ips: ["10.0.0.10", "127.0.0.1", "::1"],
  },
  "etcd-healthcheck-client": {
    cn: "kube-etcd-healthcheck-client",
    o: [],
    issuer: "etcd-ca",
    eku: [EKU.clientAuth],
    dns: [],
    ips: [],
  },
  "apiserver-etcd-client": {
    cn: "kube-apiserver-etcd-client",
    o: [],
    issuer: "etcd-ca",
    eku: [EKU.clientAuth],
    dns: [],
    ips: [],
  },
};

function ext(c: CertInfo, oid: string) {
  return c.extensions.find((e) => e.oid === oid);
}

/** The signature algorithm Go's crypto/x509 picks for the issuer's key. */
function sigFor(alg: string) {
  if (alg.startsWith("RSA")) return "sha256WithRSAEncryption";
  return alg === "ECDSA-P384" ? "ecdsa-with-SHA384" : "ecdsa-with-SHA256";
}

describe("profiles match kubeadm's field by field", () => {
  for (const alg of KEY_ALGORITHMS) {
    it(`${alg}: CAs, leaves, kubeconfigs, key encodings and file modes`, async () => {
      const dir = tempDir();
      const root = join(dir, "node");
      const now = new Date("2026-11-26T12:00:00Z");
      const spec = testSpec(
        {
          algorithm: { value: alg, where: "t" },
          apiServerCertSANs: [
            { value: "api.example.com", where: "t" },
            { value: "192.0.2.7", where: "t" },
          ],
          controlPlaneEndpoint: { value: "cp.example.com:8443", where: "t" },
        },
        join(dir, "offline"),
      );
      await initPki({ root, spec, now });
      const read = (p: string) => readFileSync(join(root, p), "utf8");
      const mode = (p: string) => statSync(join(root, p)).mode & 0o777;
      const sig = sigFor(alg);

      const cas = new Map<string, CertInfo>();
      for (const ca of CAS) {
        const c = parseCertificatePem(read(`${PKI}/${ca.baseName}.crt`), ca.id);
        cas.set(ca.commonName, c);
        assert.equal(c.commonName, ca.commonName);
        assert.ok(c.selfIssued);
        assert.equal(c.isCA, true);
        assert.equal(c.pathLen, undefined, "kubeadm CAs carry no pathLenConstraint");
        assert.equal(ext(c, "2.5.29.19")?.critical, true);
        assert.equal(ext(c, "2.5.29.15")?.critical, true);
        assert.deepEqual(c.keyUsage, ["digitalSignature", "keyEncipherment", "keyCertSign", "cRLSign"]);
        assert.equal(c.extKeyUsageOids, undefined);
        assert.ok(ext(c, "2.5.29.14"), "CA has a SubjectKeyIdentifier");
        assert.deepEqual(c.dnsNames, [ca.commonName]);
        assert.equal(c.notBefore.getTime(), now.getTime() - BACKDATE);
        assert.equal(c.notAfter.getTime(), now.getTime() + 87600 * HOUR);
        assert.equal(mode(`${PKI}/${ca.baseName}.crt`), 0o644);
        assert.equal(mode(`${PKI}/${ca.baseName}.key`), 0o600);
      }

      const leafChecks = (c: CertInfo, issuer: string) => {
        assert.equal(c.issuerCommonName, issuer);
        assert.equal(c.isCA, false);
        assert.equal(ext(c, "2.5.29.19")?.critical, true);
        assert.equal(ext(c, "2.5.29.15")?.critical, true);
        assert.deepEqual(c.keyUsage, ["digitalSignature", "keyEncipherment"]);
        assert.equal(ext(c, "2.5.29.14"), undefined, "leaves carry no SubjectKeyIdentifier");
        const caSki = cas.get(issuer)?.subjectKeyId;
        assert.ok(
          caSki && c.authorityKeyId?.equals(caSki),
          "AuthorityKeyIdentifier = the CA's SubjectKeyIdentifier",
        );
        const serial = BigInt(`0x${c.serialHex}`);
        assert.ok(serial >= 1n && serial < 1n << 63n, "serial in [1, 2^63-1)");
        assert.equal(c.notBefore.getTime(), now.getTime() - BACKDATE);
        assert.equal(c.notAfter.getTime(), now.getTime() + 8760 * HOUR);
        assert.equal(c.signatureAlgorithm, sig);
      };

      for (const leaf of LEAVES) {
        const e = EXPECTED[leaf.id];
        assert.ok(e, leaf.id);
        const c = parseCertificatePem(read(`${PKI}/${leaf.baseName}.crt`), leaf.id);
        assert.equal(c.commonName, e.cn, leaf.id);
        assert.deepEqual(c.organizations, e.o, leaf.id);
        assert.deepEqual(c.extKeyUsageOids, e.eku, leaf.id);
        assert.deepEqual(c.dnsNames, e.dns, leaf.id);
        assert.deepEqual(c.ipAddresses, e.ips, leaf.id);
        leafChecks(c, e.issuer);
        const keyPem = read(`${PKI}/${leaf.baseName}.key`);
        assert.match(
          keyPem,
          alg.startsWith("RSA") ? /^-----BEGIN RSA PRIVATE KEY-----/ : /^-----BEGIN EC PRIVATE KEY-----/,
        );
        assert.equal(algorithmOfKey(parsePrivateKeyPem(keyPem, leaf.id)), alg);
        assert.equal(mode(`${PKI}/${leaf.baseName}.crt`), 0o644);
        assert.equal(mode(`${PKI}/${leaf.baseName}.key`), 0o600);
      }

      const kubelet = parseCertificatePem(read("var/lib/kubelet/pki/kubelet.crt"), "kubelet");
      assert.equal(kubelet.commonName, "system:node:cp1");
      assert.deepEqual(kubelet.organizations, ["system:nodes"]);
      assert.deepEqual(kubelet.extKeyUsageOids, [EKU.serverAuth]);
      assert.deepEqual(kubelet.dnsNames, ["cp1"]);
      assert.deepEqual(kubelet.ipAddresses, ["10.0.0.10"]);
      leafChecks(kubelet, "kubernetes");
      assert.equal(mode("var/lib/kubelet/pki/kubelet.key"), 0o600);
      assert.equal(mode("var/lib/kubelet/pki/kubelet.crt"), 0o644);

      const servers: Record<string, string> = {
        "admin.conf": "https://cp.example.com:8443",
        "kubelet.conf": "https://cp.example.com:8443",
        "controller-manager.conf": "https://10.0.0.10:6443",
        "scheduler.conf": "https://10.0.0.10:6443",
      };
      for (const entry of KUBECONFIGS) {
        const path = entry.offline
          ? join(dir, "offline", entry.fileName)
          : join(root, "etc/kubernetes", entry.fileName);
        const v = parseKubeconfig(readFileSync(path, "utf8"), entry.id);
        const user = entry.clientName(spec);
        assert.equal(v.userName, user);
        assert.equal(v.clusterName, "kubernetes");
        assert.equal(v.raw["current-context"], `${user}@kubernetes`);
        assert.equal(v.server, servers[entry.id] ?? "https://cp.example.com:8443", entry.id);
        assert.equal(v.caPem?.trim(), read(`${PKI}/ca.crt`).trim());
        assert.ok(v.clientCert);
        assert.equal(v.clientCert.commonName, user);
        assert.deepEqual(v.clientCert.organizations, entry.organizations);
        assert.deepEqual(v.clientCert.extKeyUsageOids, [EKU.clientAuth]);
        leafChecks(v.clientCert, "kubernetes");
        assert.equal(statSync(path).mode & 0o777, 0o600, entry.id);
      }
      assert.match(read(`${PKI}/sa.pub`), /^-----BEGIN PUBLIC KEY-----/);
      assert.equal(mode(`${PKI}/sa.pub`), 0o600);
      assert.equal(mode(`${PKI}/sa.key`), 0o600);
      assert.equal(algorithmOfKey(parsePrivateKeyPem(read(`${PKI}/sa.key`), "sa.key")), alg);
      // super-admin.conf never lands in the node tree.
      assert.throws(() => statSync(join(root, "etc/kubernetes/super-admin.conf")));
    });
  }
});
