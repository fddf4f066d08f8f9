import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { privateKeyToPem } from "../src/x509/keys.js";
import { buildTree, PKI } from "./helpers.js";

interface Creds {
  cert: string;
  key: string;
}

/** An HTTPS server that, like kube-apiserver or etcd, requires a client certificate from `ca`. */
async function mtlsServer(serverCert: string, serverKey: string, ca: string) {
  const server = https.createServer(
    { cert: serverCert, key: serverKey, ca, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const peer = (req.socket as import("node:tls").TLSSocket).getPeerCertificate();
      res.end(peer.subject?.CN ?? "");
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port };
}

function get(port: number, ca: string, creds: Creds, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port, ca, cert: creds.cert, key: creds.key, servername, path: "/", agent: false },
      (res) => {
        let body = "";
        res.on("data", (d) => {
          body += d;
        });
        res.on("end", () => resolve(body));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("real TLS handshakes with the PKI init wrote", () => {
  let root: string;
  const file = (p: string) => readFileSync(join(root, p), "utf8");
  const pair = (base: string): Creds => ({
    cert: file(`${PKI}/${base}.crt`),
    key: file(`${PKI}/${base}.key`),
  });
  const kubeconfigCreds = (name: string): Creds => {
    const v = parseKubeconfig(file(`etc/kubernetes/${name}`), name);
    assert.ok(v.clientCert && v.clientKey);
    return { cert: v.clientCert.pem, key: privateKeyToPem(v.clientKey) };
  };
  const servers: https.Server[] = [];

  before(async () => {
    ({ root } = await buildTree());
  });
  after(() => {
    for (const s of servers) s.close();
  });

  it("the apiserver certificate with client CA ca.crt accepts admin.conf and refuses apiserver-etcd-client", async () => {
    const api = pair("apiserver");
    const { server, port } = await mtlsServer(api.cert, api.key, file(`${PKI}/ca.crt`));
    servers.push(server);
    const ca = file(`${PKI}/ca.crt`);
    // The server name is one of the apiserver's SANs, so hostname verification runs for real.
    assert.equal(
      await get(port, ca, kubeconfigCreds("admin.conf"), "kubernetes.default.svc"),
      "kubernetes-admin",
    );
    await assert.rejects(get(port, ca, pair("apiserver-etcd-client"), "kubernetes.default.svc"));
  });

  it("the etcd server certificate with the etcd CA accepts apiserver-etcd-client and refuses admin.conf", async () => {
    const etcd = pair("etcd/server");
    const { server, port } = await mtlsServer(etcd.cert, etcd.key, file(`${PKI}/etcd/ca.crt`));
    servers.push(server);
    const ca = file(`${PKI}/etcd/ca.crt`);
    assert.equal(
      await get(port, ca, pair("apiserver-etcd-client"), "localhost"),
      "kube-apiserver-etcd-client",
    );
    await assert.rejects(get(port, ca, kubeconfigCreds("admin.conf"), "localhost"));
  });

  it("a client refuses the apiserver when it trusts only the etcd CA", async () => {
    const api = pair("apiserver");
    const { server, port } = await mtlsServer(api.cert, api.key, file(`${PKI}/ca.crt`));
    servers.push(server);
    await assert.rejects(get(port, file(`${PKI}/etcd/ca.crt`), kubeconfigCreds("admin.conf"), "kubernetes"));
  });

  it("the kubelet serving certificate verifies as the node's name under the cluster CA", async () => {
    const k = { cert: file("var/lib/kubelet/pki/kubelet.crt"), key: file("var/lib/kubelet/pki/kubelet.key") };
    const { server, port } = await mtlsServer(k.cert, k.key, file(`${PKI}/ca.crt`));
    servers.push(server);
    // kube-apiserver with --kubelet-certificate-authority=ca.crt, presenting apiserver-kubelet-client.
    const cn = await get(port, file(`${PKI}/ca.crt`), pair("apiserver-kubelet-client"), "cp1");
    assert.equal(cn, "kube-apiserver-kubelet-client");
    await assert.rejects(get(port, file(`${PKI}/ca.crt`), pair("apiserver-kubelet-client"), "other-node"));
  });
});
