/**
 * bench/webhook: requests per second and p50/p99 latency of `kubepki serve` over keep-alive mTLS
 * connections, next to a bare Node HTTPS server (same TLS setup, constant body) in the same run,
 * with 0 and with 100,000 revoked certificates in the ledger. Target: >= 0.85 of the bare server's
 * throughput, and no loss from 0 to 100,000 entries.
 *
 *   node --import tsx bench/webhook.ts [seconds]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openLedger } from "../src/ledger/record.js";
import type { LedgerEntry } from "../src/ledger/store.js";
import { treePaths } from "../src/pki/paths.js";
import { setupWebhook } from "../src/revoke/webhook-setup.js";
import { buildTree, freePort } from "../test/helpers.js";
import { type LoadResult, load as loadAt, type TlsClient } from "./load.js";

const SECONDS = Number(process.argv[2] ?? 5);
const CONCURRENCY = 32;
const repo = new URL("..", import.meta.url).pathname;

async function start(args: string[]): Promise<ChildProcess> {
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr?.on("data", (d) => {
    log += d;
  });
  const t0 = Date.now();
  while (!/listening on/.test(log)) {
    if (proc.exitCode !== null || Date.now() - t0 > 20_000) throw new Error(`server did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return proc;
}

const load = (port: number, tls: TlsClient, body: string): Promise<LoadResult> =>
  loadAt(port, tls, body, { seconds: SECONDS, concurrency: CONCURRENCY });

const { root, dir } = await buildTree();
const paths = treePaths(root);
const store = openLedger(paths.ledgerFile, "create");
const port = await freePort();
const files = await setupWebhook(paths, store, `127.0.0.1:${port}`);
const tls = {
  ca: readFileSync(files.caCert, "utf8"),
  cert: readFileSync(files.clientCert, "utf8"),
  key: readFileSync(files.clientKey, "utf8"),
};
const body = JSON.stringify({
  apiVersion: "authorization.k8s.io/v1",
  kind: "SubjectAccessReview",
  spec: {
    resourceAttributes: { namespace: "default", verb: "list", group: "", version: "v1", resource: "pods" },
    user: "jane",
    groups: ["dev", "system:authenticated"],
    extra: {
      "authentication.kubernetes.io/credential-id": [`X509SHA256=${randomBytes(32).toString("hex")}`],
    },
  },
});

async function fill(n: number): Promise<void> {
  const now = new Date().toISOString();
  const entries: LedgerEntry[] = [];
  for (let i = 0; i < n; i++)
    entries.push({
      sha256: randomBytes(32).toString("hex"),
      serial: randomBytes(8).toString("hex"),
      issuerSha256: "0".repeat(64),
      subjectCN: `user-${i}`,
      subjectO: [],
      sans: [],
      notBefore: now,
      notAfter: now,
      profile: "client",
      source: "issued",
      status: "revoked",
      recordedAt: now,
      revokedAt: now,
      reason: "keyCompromise",
    });
  await store.record(entries);
}

const rounds: { name: string; r: LoadResult }[] = [];
const bare = async () => {
  const p = await freePort();
  const proc = await start([
    "--import",
    "tsx",
    join(repo, "bench/bare-https.ts"),
    files.serverCert,
    files.serverKey,
    files.caCert,
    String(p),
  ]);
  try {
    return await load(p, tls, body);
  } finally {
    proc.kill();
  }
};
const serve = async () => {
  const proc = await start([
    join(repo, "bin/kubepki.js"),
    "serve",
    "--root",
    root,
    "--listen",
    `127.0.0.1:${port}`,
  ]);
  try {
    return await load(port, tls, body);
  } finally {
    proc.kill();
  }
};

rounds.push({ name: "bare https (0)", r: await bare() });
rounds.push({ name: "kubepki serve, 0 revoked", r: await serve() });
await fill(100_000);
rounds.push({ name: "bare https (100k)", r: await bare() });
rounds.push({ name: "kubepki serve, 100,000 revoked", r: await serve() });
await store.close();

console.log(
  `bench/webhook: ${SECONDS} s per run, ${CONCURRENCY} keep-alive mTLS connections, one client process, same machine`,
);
for (const { name, r } of rounds)
  console.log(
    `${name.padEnd(32)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms`,
  );
const [b0, s0, b1, s1] = rounds.map((x) => x.r.rps) as [number, number, number, number];
console.log(
  `serve/bare: ${(s0 / b0).toFixed(2)} with 0 revoked, ${(s1 / b1).toFixed(2)} with 100,000 revoked (target >= 0.85); 100k/0: ${(s1 / s0).toFixed(2)}`,
);
rmSync(dir, { recursive: true, force: true });
