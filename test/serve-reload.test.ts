import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initTree, kubepki } from "./helpers.js";
import {
  apiserverClient,
  type Client,
  call,
  type Serve,
  sar,
  startServe,
  waitFor,
} from "./webhook-client.js";

/** One SubjectAccessReview: true when the webhook answered it, false when the connection failed. */
async function answers(c: Client): Promise<boolean> {
  try {
    return (await call(c, sar("v1", "jane"))).status === 200;
  } catch {
    return false;
  }
}

/**
 * `kubepki serve` through a CA rotation, never restarted: it trusts the cluster CA's bundle as soon
 * as `trust` makes it, follows the pairs `sign` issues again, and drops the old CA with `drop`.
 */
describe("kubepki serve follows a CA rotation without a restart", () => {
  let root: string;
  let offline: string;
  let serve: Serve;
  let old: Client;
  const rotate = (phase: string) => {
    const r = kubepki([
      "rotate-ca",
      "--ca",
      "ca",
      "--phase",
      phase,
      "--root",
      root,
      "--offline-dir",
      offline,
    ]);
    assert.equal(r.status, 0, r.stderr);
  };
  const changes = () => serve.logs().match(/TLS files changed/g)?.length ?? 0;

  before(async () => {
    ({ root, offline } = await initTree());
    serve = await startServe(root);
    old = serve.client;
    assert.ok(await answers(old));
  });
  after(() => serve?.stop());

  it("trust: the bundle becomes serve's trust within a few seconds", async () => {
    rotate("trust");
    assert.ok((await waitFor(async () => changes() === 1, 5000)) >= 0, serve.logs());
    assert.match(serve.logs(), /trusting clients of \S*ca-trust\.crt/);
    assert.ok(await answers(old), "the old-CA client pair is still trusted");
    // kube-apiserver restarts as printed: the webhook kubeconfig now names the bundle, its pair is the old CA's.
    old = apiserverClient(root);
    assert.equal(old.ca.match(/BEGIN CERTIFICATE/g)?.length, 2, "the webhook kubeconfig's CA is the bundle");
    assert.ok(await answers(old));
  });

  it("sign: kube-apiserver's new-CA client pair is accepted, the old one too", async () => {
    rotate("sign");
    const now = apiserverClient(root);
    assert.notEqual(now.cert, old.cert, "sign issued kube-apiserver's client pair again");
    // The new pair is known to serve once its ledger poll (250 ms) saw what sign recorded.
    assert.ok(
      (await waitFor(() => answers(now), 2000)) >= 0,
      "the new-CA client pair, before serve saw the new pairs",
    );
    assert.ok((await waitFor(async () => changes() === 2, 5000)) >= 0, serve.logs());
    assert.ok(await answers(now));
    assert.ok(await answers(old));
  });

  it("a key that does not match the certificate (a pair caught half-replaced) is not loaded", async () => {
    const keyFile = join(root, "etc/kubernetes/kubepki/webhook.key");
    const good = readFileSync(keyFile);
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    writeFileSync(keyFile, other.export({ type: "pkcs8", format: "pem" }));
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(changes(), 2, "nothing reloaded");
    assert.ok(await answers(apiserverClient(root)), "still serving the last good pair");
    writeFileSync(keyFile, good);
  });

  it("drop: the old-CA client pair is refused, the new one accepted", async () => {
    rotate("drop");
    assert.ok((await waitFor(async () => !(await answers(old)), 5000)) >= 0, serve.logs());
    assert.ok(await answers(apiserverClient(root)));
  });
});
