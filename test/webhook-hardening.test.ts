import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { entryFrom } from "../src/ledger/entry.js";
import { openLedger } from "../src/ledger/record.js";
import type { LedgerStore } from "../src/ledger/store.js";
import { treePaths } from "../src/pki/paths.js";
import { WEBHOOK_CLIENT_CN } from "../src/revoke/names.js";
import { createWebhookServer, type WebhookLimits } from "../src/revoke/webhook.js";
import { decide, parseSar } from "../src/revoke/webhook-sar.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { signWith } from "./fixtures.js";
import { initTree, kubepki, openssl, PKI, tempDir } from "./helpers.js";
import { apiserverClient, type Client, call, type Serve, sar, startServe } from "./webhook-client.js";

/** Any JSON value, nested up to `depth`, with keys the webhook reads showing up often. */
function randomJson(depth = 3): unknown {
  const keys = [
    "apiVersion",
    "kind",
    "spec",
    "user",
    "extra",
    "authentication.kubernetes.io/credential-id",
    "toString",
    "__proto__",
    "constructor",
    "length",
    "x",
  ];
  const r = Math.random();
  if (depth <= 0 || r < 0.35) {
    const leaves = [
      null,
      true,
      false,
      0,
      -1,
      1e308,
      3.5,
      "",
      "authorization.k8s.io/v1",
      "SubjectAccessReview",
      "X509SHA256=00",
      randomBytes(4).toString("hex"),
    ];
    return leaves[Math.floor(Math.random() * leaves.length)];
  }
  if (r < 0.55) return Array.from({ length: Math.floor(Math.random() * 4) }, () => randomJson(depth - 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(Math.random() * 5); i > 0; i--)
    o[keys[Math.floor(Math.random() * keys.length)] ?? "x"] = randomJson(depth - 1);
  return o;
}

/** A SubjectAccessReview with one field replaced by an arbitrary value. */
function mutatedSar(): string {
  const base = JSON.parse(sar("v1", "jane", `X509SHA256=${"ab".repeat(32)}`));
  const where = Math.floor(Math.random() * 5);
  if (where === 0) base.apiVersion = randomJson(2);
  else if (where === 1) base.spec = randomJson(2);
  else if (where === 2) base.spec.user = randomJson(2);
  else if (where === 3) base.spec.extra = randomJson(2);
  else base.spec.extra["authentication.kubernetes.io/credential-id"] = randomJson(2);
  return JSON.stringify(base);
}

const CRAFTED = [
  '{"apiVersion":{"toString":1}}',
  '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"extra":{"authentication.kubernetes.io/credential-id":{"length":3}}}}',
  '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"extra":{"authentication.kubernetes.io/credential-id":[1,{"startsWith":1}]}}}',
  '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":{"toString":1},"extra":[]}}',
  '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":"x"}',
  '{"__proto__":{"apiVersion":"authorization.k8s.io/v1"},"kind":"SubjectAccessReview"}',
  "null",
  "1",
  '"s"',
];

async function libServer(root: string, store: LedgerStore, limits: Partial<WebhookLimits> = {}) {
  const paths = treePaths(root);
  const f = (p: string) => readFileSync(join(root, p), "utf8");
  const logs: string[] = [];
  const hook = await createWebhookServer({
    cert: f("etc/kubernetes/kubepki/webhook.crt"),
    key: f("etc/kubernetes/kubepki/webhook.key"),
    ca: f(`${PKI}/ca.crt`),
    allowedCNs: [WEBHOOK_CLIENT_CN],
    store,
    ledgerFile: paths.ledgerFile,
    limits,
    log: (m) => logs.push(m),
  });
  await new Promise<void>((r) => hook.server.listen(0, "127.0.0.1", r));
  const port = (hook.server.address() as { port: number }).port;
  const client: Client = { ...apiserverClient(root), url: new URL(`https://127.0.0.1:${port}/authorize`) };
  return { hook, port, client, logs };
}

/** Resolves with the ms until the server closes the socket (or -1 after `ms`). */
function closedWithin(s: Socket, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), ms);
    s.on("error", () => {});
    s.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

function tlsTo(port: number, c: Client): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      { host: "127.0.0.1", port, ca: c.ca, cert: c.cert, key: c.key, servername: "localhost" },
      () => resolve(s),
    );
    s.once("error", reject);
  });
}

describe("the webhook never crashes and never hangs", () => {
  let root: string;
  let store: LedgerStore;
  let lib: Awaited<ReturnType<typeof libServer>>;
  before(async () => {
    ({ root } = await initTree());
    assert.equal(kubepki(["serve", "--root", root, "--listen", "127.0.0.1:8443", "--setup-only"]).status, 0);
    store = openLedger(treePaths(root).ledgerFile);
    lib = await libServer(root, store, {
      handshakeMs: 400,
      headersMs: 400,
      requestMs: 800,
      idleMs: 1500,
      keepAliveMs: 1000,
    });
  });
  after(async () => {
    await lib?.hook.close();
    await store?.close();
  });

  it("parseSar and decide never throw, whatever JSON value they get (20,000 fuzzed)", () => {
    const revoked = { fingerprints: new Set(["ab".repeat(32)]), users: new Set(["jane"]) };
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const text =
        i < CRAFTED.length ? (CRAFTED[i] ?? "") : i % 2 ? mutatedSar() : JSON.stringify(randomJson(4));
      const s = parseSar(JSON.parse(text));
      if (typeof s !== "string") {
        valid++;
        const d = decide(s, revoked, true);
        assert.equal(d.status.allowed, false);
      }
    }
    assert.ok(valid > 100, `some fuzzed bodies were valid reviews (${valid})`);
  });

  it("over HTTP, every fuzzed body gets 200 or 400 and the server keeps answering", async () => {
    for (let i = 0; i < 300; i++) {
      const body =
        i < CRAFTED.length ? (CRAFTED[i] ?? "") : i % 2 ? mutatedSar() : JSON.stringify(randomJson(4));
      const r = await call(lib.client, body);
      assert.ok(r.status === 200 || r.status === 400, `${r.status} for ${body}`);
    }
    const ok = await call(lib.client, sar("v1", "bob"));
    assert.deepEqual(JSON.parse(ok.body).status, { allowed: false });
  });

  it("a connection that never starts its handshake is closed after the handshake timeout", async () => {
    const s = tcpConnect(lib.port, "127.0.0.1");
    const took = await closedWithin(s, 5000);
    assert.ok(took >= 300 && took < 2000, `closed after ${took} ms`);
  });

  it("an authenticated connection that never sends a request is closed after the headers timeout", async () => {
    const s = await tlsTo(lib.port, lib.client);
    const took = await closedWithin(s, 5000);
    assert.ok(took >= 300 && took < 2000, `closed after ${took} ms`);
  });

  it("a slow body is cut off at the request timeout", async () => {
    const s = await tlsTo(lib.port, lib.client);
    s.write(
      "POST /authorize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    );
    const trickle = setInterval(() => s.writable && s.write(" "), 100);
    const took = await closedWithin(s, 6000);
    clearInterval(trickle);
    assert.ok(took > 0 && took < 2500, `closed after ${took} ms`);
  });

  it("after a 413 the server stops reading and closes the connection", async () => {
    const s = await tlsTo(lib.port, lib.client);
    let response = "";
    s.on("data", (d) => {
      response += d;
    });
    s.write(
      "POST /authorize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const frame = Buffer.concat([
      Buffer.from(`${chunk.length.toString(16)}\r\n`),
      chunk,
      Buffer.from("\r\n"),
    ]);
    let sent = 0;
    let open = true;
    const closed = closedWithin(s, 8000);
    s.once("close", () => {
      open = false;
    });
    const t0 = Date.now();
    while (open && Date.now() - t0 < 8000) {
      if (!s.write(frame)) await new Promise((r) => setTimeout(r, 5));
      sent += frame.length;
      if (sent % (1024 * 1024) < frame.length) await new Promise((r) => setImmediate(r));
    }
    const took = await closed;
    assert.ok(took >= 0, "the server closed the connection");
    assert.match(response, /^HTTP\/1\.1 413/);
    assert.ok(sent < 256 * 1024 * 1024, `the client could push ${sent} bytes`);
  });

  it("has a connection limit", () => {
    assert.equal(lib.hook.server.maxConnections, 8192);
  });
});

/** A client certificate from the cluster CA with the subject given in OpenSSL's /CN=a/CN=b form. */
function opensslClient(root: string, subject: string): { crt: string; key: string } {
  const dir = tempDir();
  const key = join(dir, "c.key");
  const csr = join(dir, "c.csr");
  const crt = join(dir, "c.crt");
  const ext = join(dir, "ext");
  writeFileSync(ext, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
  assert.equal(openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]).status, 0);
  assert.equal(openssl(["req", "-new", "-key", key, "-subj", subject, "-out", csr]).status, 0);
  const r = openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    join(root, PKI, "ca.crt"),
    "-CAkey",
    join(root, PKI, "ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    ext,
    "-out",
    crt,
  ]);
  assert.equal(r.status, 0, r.stderr);
  return { crt: readFileSync(crt, "utf8"), key: readFileSync(key, "utf8") };
}

describe("only the certificate kubepki issued for kube-apiserver may call", () => {
  let root: string;
  let store: LedgerStore;
  let lib: Awaited<ReturnType<typeof libServer>>;
  const record = async (pem: string, profile: string) => {
    const c = parseCertificatePem(pem, "t");
    const ca = parseCertificatePem(readFileSync(join(root, PKI, "ca.crt"), "utf8"), "ca");
    await store.record([entryFrom({ der: c.der, issuerDer: ca.der, profile }, "imported")]);
  };
  before(async () => {
    ({ root } = await initTree());
    assert.equal(kubepki(["serve", "--root", root, "--listen", "127.0.0.1:8443", "--setup-only"]).status, 0);
    store = openLedger(treePaths(root).ledgerFile);
  });
  after(async () => {
    await lib?.hook.close();
    await store?.close();
  });

  it("the CN is the last one, as in Go; the fingerprint must be in the ledger; user certificates never call", async () => {
    const firstIsAllowed = opensslClient(root, `/CN=${WEBHOOK_CLIENT_CN}/CN=evil`);
    const lastIsAllowed = opensslClient(root, `/CN=evil/CN=${WEBHOOK_CLIENT_CN}`);
    const notInLedger = await signWith(root, `/${PKI}/ca`, { commonName: WEBHOOK_CLIENT_CN });
    const userCert = await signWith(root, `/${PKI}/ca`, { commonName: WEBHOOK_CLIENT_CN });
    await record(firstIsAllowed.crt, "imported");
    await record(lastIsAllowed.crt, "imported");
    await record(userCert.crt, "client");
    lib = await libServer(root, store);
    const as = (p: { crt: string; key: string }) =>
      call({ ...lib.client, cert: p.crt, key: p.key }, sar("v1", "x"));
    assert.equal((await call(lib.client, sar("v1", "x"))).status, 200, "kubepki's own client certificate");
    assert.equal((await as(lastIsAllowed)).status, 200, "last CN is the allowed one");
    await assert.rejects(as(firstIsAllowed), "first CN allowed, last CN evil");
    await assert.rejects(as(notInLedger), "right CN from the right CA, but not issued for the caller");
    await assert.rejects(as(userCert), "recorded as a user certificate");
  });

  it("issue client refuses the webhook's and the control plane's names", () => {
    for (const user of [
      WEBHOOK_CLIENT_CN,
      "kubepki-authz-webhook",
      "kube-apiserver-etcd-client",
      "kubernetes",
    ]) {
      const r = kubepki([
        "issue",
        "client",
        "--root",
        root,
        "--user",
        user,
        "--out",
        join(tempDir(), "x.conf"),
      ]);
      assert.equal(r.status, 2, user);
      assert.match(r.stderr, /control-plane or webhook identity/);
    }
  });

  it("a revoked caller certificate is refused at the next connection", async () => {
    const fp = parseCertificatePem(lib.client.cert ?? "", "c").sha256;
    const r = kubepki([
      "revoke",
      "--root",
      root,
      "--fingerprint",
      fp,
      "--reason",
      "keyCompromise",
      "--force",
    ]);
    assert.equal(r.status, 0, r.stderr);
    await lib.hook.reload();
    await assert.rejects(call(lib.client, sar("v1", "x")));
  });
});

describe("kubepki serve under load and at shutdown", () => {
  let root: string;
  let serve: Serve;
  before(async () => {
    ({ root } = await initTree());
    serve = await startServe(root);
  });
  after(async () => {
    await serve?.stop();
  });

  it("with 2,000 idle connections held, p99 of legitimate requests stays well under 3 s", async () => {
    const c = serve.client;
    const held = new Set<Socket>();
    let holding = true;
    // Each holder keeps one connection open, and opens another when the server closes it.
    const hold = (tls: boolean) =>
      new Promise<void>((ready) => {
        void (async () => {
          while (holding) {
            const s: Socket = tls
              ? await tlsTo(serve.port, c).catch(() => tcpConnect(serve.port, "127.0.0.1"))
              : tcpConnect(serve.port, "127.0.0.1");
            held.add(s);
            s.on("error", () => {});
            ready();
            await new Promise<void>((r) => s.once("close", () => r()));
            held.delete(s);
          }
          ready();
        })();
      });
    // 1,900 that never start a handshake (anyone can open those) and 100 authenticated ones that
    // never send a request; each is reopened as soon as the server closes it.
    await Promise.all(Array.from({ length: 1900 }, () => hold(false)));
    for (let i = 0; i < 100; i += 50) await Promise.all(Array.from({ length: 50 }, () => hold(true)));
    assert.ok(held.size >= 1900, `holding ${held.size}`);
    const latencies: number[] = [];
    for (let i = 0; i < 150; i++) {
      const t0 = performance.now();
      const r = await call(c, sar("v1", "jane", `X509SHA256=${randomBytes(32).toString("hex")}`));
      latencies.push(performance.now() - t0);
      assert.equal(r.status, 200);
    }
    holding = false;
    for (const s of held) s.destroy();
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? Number.NaN;
    const p50 = latencies[Math.floor(latencies.length * 0.5)] ?? Number.NaN;
    console.log(`# 2,000 idle connections: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
    assert.ok(p99 < 1000, `p99 ${p99} ms`);
  });

  it("SIGTERM stops it within a bounded time while peers hold connections", async () => {
    const c = serve.client;
    const sockets: Socket[] = [];
    for (let i = 0; i < 50; i++) sockets.push(tcpConnect(serve.port, "127.0.0.1").on("error", () => {}));
    for (let i = 0; i < 20; i++) sockets.push((await tlsTo(serve.port, c)).on("error", () => {}));
    const slow = await tlsTo(serve.port, c);
    slow.on("error", () => {});
    slow.write("POST /authorize HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
    await new Promise((r) => setTimeout(r, 200));
    const took = await serve.stop();
    for (const s of [...sockets, slow]) s.destroy();
    assert.ok(took < 3500, `stopped after ${took} ms`);
    assert.equal(serve.proc.exitCode, 0);
  });
});

describe("kubepki serve answers a crafted body without crashing", () => {
  it("{apiVersion: {toString: 1}} gets 400 and the next request is answered", async () => {
    const { root } = await initTree();
    const serve = await startServe(root);
    try {
      for (const body of CRAFTED) assert.equal((await call(serve.client, body)).status, 400, body);
      assert.equal((await call(serve.client, sar("v1", "bob"))).status, 200);
      assert.equal(serve.proc.exitCode, null);
    } finally {
      await serve.stop();
    }
  });
});

describe("the revoked set in memory never shrinks", () => {
  it("a read error or a smaller set keeps the last good set and reports it until the ledger is whole again", async () => {
    let set = new Set(["a", "b"]);
    let version = 1;
    let broken = false;
    const store = {
      id: async () => "ledger-1",
      version: async () => {
        if (broken) throw new Error("disk I/O error");
        return version;
      },
      revokedFingerprints: async () => new Set(set),
      revoked: async () => [],
      list: async () => [],
    } as unknown as LedgerStore;
    const logs: string[] = [];
    const { RevokedSet } = await import("../src/revoke/webhook-set.js");
    const rs = new RevokedSet({ store, allowedCNs: [], denyRevokedUsers: false, log: (m) => logs.push(m) });
    await rs.start();
    assert.equal(rs.error, undefined);
    broken = true;
    await rs.poll();
    assert.match(rs.error ?? "", /cannot be read: disk I\/O error/);
    broken = false;
    await rs.poll();
    assert.equal(rs.error, undefined, "healthy again once it reads");
    set = new Set(["a"]);
    version = 2;
    await rs.poll();
    assert.match(rs.error ?? "", /shrank by 1/);
    assert.deepEqual([...rs.fingerprints].sort(), ["a", "b"]);
    set = new Set(["a", "b", "c"]);
    version = 3;
    await rs.poll();
    assert.equal(rs.error, undefined);
    assert.equal(rs.failures, 2);
    assert.equal(logs.filter((l) => /last good revoked set/.test(l)).length, 2);
  });
});
