import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { decide } from "../src/revoke/webhook-sar.js";
import { credentialId } from "../src/x509/fingerprint.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { signWith } from "./fixtures.js";
import { initTree, kubepki, PKI, tempDir } from "./helpers.js";
import { call, type Serve, sar, startServe, waitFor } from "./webhook-client.js";

const status = async (s: Serve, id: string, user = "eve") =>
  JSON.parse((await call(s.client, sar("v1", user, id))).body).status;

const metric = async (s: Serve, name: string) => {
  const body = (await call(s.client, "", { method: "GET", path: "/metrics" })).body;
  const line = body.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
};

describe("kubepki serve --unknown-certificates", () => {
  let root: string;
  let janeId: string;
  let eve: { crt: string; key: string };
  let eveId: string;

  before(async () => {
    ({ root } = await initTree());
    const issued = kubepki([
      "issue",
      "client",
      "--root",
      root,
      "--user",
      "jane",
      "--out",
      join(tempDir(), "j.conf"),
    ]);
    assert.equal(issued.status, 0, issued.stderr);
    const list = kubepki(["ledger", "list", "--root", root, "--user", "jane", "-o", "json"]);
    janeId = `X509SHA256=${JSON.parse(list.stdout)[0].sha256}`;
    // Signed with the cluster CA's key, outside kubepki.
    eve = await signWith(root, `/${PKI}/ca`, { commonName: "eve", organizations: ["dev"] });
    eveId = credentialId(parseCertificatePem(eve.crt, "eve").x509.raw);
  });

  it("decide: a Set lookup of known fingerprints; no policy, no check", () => {
    const view = {
      fingerprints: new Set(["aa".repeat(32)]),
      users: new Set<string>(),
      known: new Set(["bb".repeat(32)]),
    };
    const req = (fp: string) => ({
      apiVersion: "authorization.k8s.io/v1",
      credentialIds: [`X509SHA256=${fp}`],
    });
    assert.equal(decide(req("aa".repeat(32)), view, false, "deny").decision, "deny");
    assert.equal(decide(req("bb".repeat(32)), view, false, "deny").decision, "no-opinion");
    assert.deepEqual(decide(req("CC".repeat(32)), view, false, "log"), {
      decision: "unknown-log",
      status: { allowed: false },
      unknown: "cc".repeat(32),
    });
    assert.equal(decide(req("cc".repeat(32)), view, false, "deny").status.denied, true);
    assert.equal(decide(req("cc".repeat(32)), view, false).decision, "no-opinion");
    const token = { apiVersion: "authorization.k8s.io/v1", credentialIds: ["JTI=1234"] };
    assert.equal(decide(token, view, false, "deny").decision, "no-opinion");
  });

  it("log (default): no opinion, counted every time, logged once", async () => {
    const s = await startServe(root);
    try {
      assert.deepEqual(await status(s, eveId), { allowed: false });
      assert.deepEqual(await status(s, eveId), { allowed: false });
      assert.deepEqual(await status(s, janeId, "jane"), { allowed: false });
      assert.equal(await metric(s, 'kubepki_unknown_certificates_total{action="log"}'), 2);
      assert.equal(
        await metric(s, 'kubepki_webhook_decisions_total{decision="unknown-log",version="v1"}'),
        2,
      );
      const lines = s
        .logs()
        .split("\n")
        .filter((l) => l.includes("is not in the ledger"));
      assert.deepEqual(lines, [
        `kubepki serve: client certificate ${eveId} (user eve) is not in the ledger: logged (no opinion)`,
      ]);
      assert.doesNotMatch(s.logs(), new RegExp(janeId.slice(11)));
    } finally {
      await s.stop();
    }
  });

  it("deny: refuses it until `ledger import` makes it known (within a second, no restart)", async () => {
    const s = await startServe(root, ["--unknown-certificates", "deny"]);
    try {
      const denied = await status(s, eveId);
      assert.equal(denied.denied, true);
      assert.match(denied.reason, /not issued by kubepki/);
      assert.deepEqual(await status(s, janeId, "jane"), { allowed: false });
      assert.equal(await metric(s, 'kubepki_unknown_certificates_total{action="deny"}'), 1);
      // The certificate is found on the node and imported (as a kubelet client certificate would be).
      writeFileSync(join(root, "var/lib/kubelet/pki/kubelet-client-current.pem"), eve.crt + eve.key, {
        mode: 0o600,
      });
      const imported = kubepki(["ledger", "import", "--root", root]);
      assert.equal(imported.status, 0, imported.stderr);
      const ms = await waitFor(async () => (await status(s, eveId)).denied !== true, 5_000);
      assert.ok(ms >= 0 && ms < 1_500, `known after ${ms} ms`);
      // Revoked stays denied, whatever the policy.
      const revoked = kubepki(["revoke", "--root", root, "--user", "jane", "--reason", "keyCompromise"]);
      assert.equal(revoked.status, 0, revoked.stderr);
      await waitFor(async () => (await status(s, janeId, "jane")).denied === true, 5_000);
      assert.match((await status(s, janeId, "jane")).reason, /is revoked/);
    } finally {
      await s.stop();
    }
  });

  it("a wrong mode is a usage error", () => {
    const r = kubepki(["serve", "--root", root, "--unknown-certificates", "block"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /must be one of log, deny/);
  });
});
