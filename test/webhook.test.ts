import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { privateKeyToPem } from "../src/x509/keys.js";
import { signWith } from "./fixtures.js";
import { CLI, freePort, initTree, kubepki, PKI, tempDir } from "./helpers.js";
import { apiserverClient, type Client, call, sar, waitFor } from "./webhook-client.js";

describe("kubepki serve, seen from kube-apiserver", () => {
  let root: string;
  let proc: ChildProcess;
  let client: Client;
  let janeId: string;
  let logs = "";

  before(async () => {
    ({ root } = await initTree());
    const out = join(tempDir(), "jane.conf");
    const issued = kubepki([
      "issue",
      "client",
      "--root",
      root,
      "--user",
      "jane",
      "--group",
      "dev",
      "--out",
      out,
      "-o",
      "json",
    ]);
    janeId = JSON.parse(issued.stdout).credentialId;
    const port = await freePort();
    proc = spawn(
      process.execPath,
      [CLI, "serve", "--root", root, "--listen", `127.0.0.1:${port}`, "--deny-revoked-users"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    proc.stderr?.on("data", (d) => {
      logs += d;
    });
    const ready = await waitFor(async () => /listening on/.test(logs), 15_000);
    assert.ok(ready >= 0, logs);
    client = apiserverClient(root);
  });
  after(() => {
    proc?.kill("SIGTERM");
  });

  it("writes an AuthorizationConfiguration with the webhook first, then Node and RBAC", () => {
    const cfg = parse(readFileSync(join(root, "etc/kubernetes/kubepki/authorization-config.yaml"), "utf8"));
    assert.equal(cfg.apiVersion, "apiserver.config.k8s.io/v1");
    assert.deepEqual(
      cfg.authorizers.map((a: { type: string }) => a.type),
      ["Webhook", "Node", "RBAC"],
    );
    const w = cfg.authorizers[0].webhook;
    assert.equal(w.connectionInfo.kubeConfigFile, "/etc/kubernetes/kubepki/webhook.kubeconfig");
    assert.equal(w.failurePolicy, "Deny");
    assert.equal(w.unauthorizedTTL, "10s");
    assert.match(w.matchConditions[0].expression, /X509SHA256=/);
  });

  it("v1 and v1beta1: no opinion before revocation; denied within a second after `kubepki revoke`", async () => {
    for (const v of ["v1", "v1beta1"] as const) {
      const r = await call(client, sar(v, "jane", janeId));
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body);
      assert.equal(body.apiVersion, `authorization.k8s.io/${v}`);
      assert.equal(body.kind, "SubjectAccessReview");
      assert.deepEqual(body.status, { allowed: false });
    }
    const rv = kubepki(["revoke", "--root", root, "--user", "jane", "--reason", "keyCompromise"]);
    assert.equal(rv.status, 0, rv.stderr);
    const took = await waitFor(
      async () => JSON.parse((await call(client, sar("v1", "jane", janeId))).body).status.denied === true,
      3000,
    );
    assert.ok(took >= 0, "denied after revocation");
    assert.ok(took < 1000, `took ${took} ms`);
    for (const v of ["v1", "v1beta1"] as const) {
      const body = JSON.parse((await call(client, sar(v, "jane", janeId))).body);
      assert.equal(body.status.allowed, false);
      assert.equal(body.status.denied, true);
      assert.match(body.status.reason, /revoked/);
    }
    // Another certificate of another user: still no opinion.
    const other = JSON.parse((await call(client, sar("v1", "bob", `X509SHA256=${"ab".repeat(32)}`))).body);
    assert.deepEqual(other.status, { allowed: false });
    // Without a credential id (before 1.32): denied by user name only because --deny-revoked-users is on.
    assert.equal(JSON.parse((await call(client, sar("v1", "jane"))).body).status.denied, true);
    assert.deepEqual(JSON.parse((await call(client, sar("v1", "bob"))).body).status, { allowed: false });
  });

  it("refuses at the handshake a client without a certificate, with one from another CA, or with another CN", async () => {
    await assert.rejects(call({ ...client, cert: undefined, key: undefined }, sar("v1", "x")));
    const etcd = {
      cert: readFileSync(join(root, PKI, "apiserver-etcd-client.crt"), "utf8"),
      key: readFileSync(join(root, PKI, "apiserver-etcd-client.key"), "utf8"),
    };
    await assert.rejects(call({ ...client, ...etcd }, sar("v1", "x")));
    const admin = parseKubeconfig(
      readFileSync(join(root, "etc/kubernetes/admin.conf"), "utf8"),
      "admin.conf",
    );
    await assert.rejects(
      call(
        {
          ...client,
          cert: admin.clientCert?.pem,
          key: admin.clientKey ? privateKeyToPem(admin.clientKey) : undefined,
        },
        sar("v1", "x"),
      ),
    );
    const stranger = await signWith(root, `/${PKI}/ca`, { commonName: "someone-else" });
    await assert.rejects(call({ ...client, cert: stranger.crt, key: stranger.key }, sar("v1", "x")));
  });

  it("bad requests get 400/404/405/413, and the server keeps answering", async () => {
    assert.equal((await call(client, "{not json")).status, 400);
    assert.equal((await call(client, "[]")).status, 400);
    assert.equal((await call(client, JSON.stringify({ apiVersion: "v1", kind: "Pod" }))).status, 400);
    assert.equal((await call(client, "", { method: "GET" })).status, 405);
    assert.equal((await call(client, "", { path: "/nope" })).status, 404);
    assert.equal((await call(client, "x".repeat(2 * 1024 * 1024))).status, 413);
    assert.equal((await call(client, "", { method: "GET", path: "/healthz" })).status, 200);
    assert.equal((await call(client, "", { method: "GET", path: "/readyz" })).status, 200);
    const m = await call(client, "", { method: "GET", path: "/metrics" });
    assert.equal(m.status, 200);
    assert.match(m.body, /kubepki_webhook_decisions_total\{decision="deny",version="v1"\} \d+/);
    assert.match(m.body, /kubepki_revoked_certificates 1/);
    assert.match(m.body, /kubepki_webhook_request_duration_seconds_bucket/);
    assert.match(m.body, /kubepki_revocation_set_age_seconds/);
    assert.equal(JSON.parse((await call(client, sar("v1", "jane", janeId))).body).status.denied, true);
    assert.equal(proc.exitCode, null);
  });
});
