/**
 * bench/propagation: on a three-member etcd cluster with three `kubepki serve` replicas, the time
 * from `kubepki revoke` returning to every replica denying the credential id, over N revocations
 * (p50, p99; target p99 <= 1 s). Then the webhook throughput of an etcd-backed replica next to the
 * bare HTTPS server (target >= 0.85).
 *
 *   node --import tsx bench/propagation.ts [revocations] [seconds]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { clientEntries, copyNode, denies, kubepkiAsync, recordEntries } from "../test/ha-peers.js";
import { buildTree, freePort, initArgs, kubepki } from "../test/helpers.js";
import { startEtcdCluster } from "../test/peers/etcd.js";
import { type Serve, sar, startServe } from "../test/webhook-client.js";
import { load, type TlsClient } from "./load.js";

const N = Number(process.argv[2] ?? 100);
const SECONDS = Number(process.argv[3] ?? 5);
const CONCURRENCY = 32;
const repo = new URL("..", import.meta.url).pathname;

const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;

const rps = async (port: number, tls: TlsClient, body: string): Promise<number> =>
  (await load(port, tls, body, { seconds: SECONDS, concurrency: CONCURRENCY })).rps;

async function bare(
  root: string,
  tls: { ca: string; cert: string; key: string },
  body: string,
): Promise<number> {
  const port = await freePort();
  const dir = join(root, "etc/kubernetes/kubepki");
  const proc: ChildProcess = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(repo, "bench/bare-https.ts"),
      join(dir, "webhook.crt"),
      join(dir, "webhook.key"),
      join(root, "etc/kubernetes/pki/ca.crt"),
      String(port),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  proc.stderr?.on("data", (d) => {
    log += d;
  });
  while (!/listening on/.test(log)) await new Promise((r) => setTimeout(r, 50));
  try {
    return await rps(port, tls, body);
  } finally {
    proc.kill();
  }
}

const { root, offline } = await buildTree();
const cluster = await startEtcdCluster(root);
const replicas: Serve[] = [];
try {
  const init = kubepki(initArgs(root, offline, "--store", cluster.url(0)));
  if (init.status !== 0) throw new Error(init.stderr);
  const roots = [root, copyNode(root), copyNode(root)];
  for (const [i, r] of roots.entries()) replicas.push(await startServe(r, ["--store", cluster.url(i)]));
  const entries = clientEntries(root, N, "bench");
  await recordEntries(root, cluster.url(0), entries);
  const times: number[] = [];
  for (const [i, e] of entries.entries()) {
    const r = await kubepkiAsync([
      "revoke",
      "--root",
      roots[i % 3] as string,
      "--store",
      cluster.url(i % 3),
      "--serial",
      e.serial,
      "--reason",
      "keyCompromise",
    ]);
    if (r.status !== 0) throw new Error(r.stderr);
    const t0 = performance.now();
    await Promise.all(
      replicas.map(async (s) => {
        while (!(await denies(s, e.sha256))) await new Promise((res) => setTimeout(res, 2));
      }),
    );
    times.push(performance.now() - t0);
  }
  console.log(
    `bench/propagation: ${N} revocations (CLI, rotating over 3 members), 3 replicas on a 3-member etcd cluster`,
  );
  console.log(
    `revoke returned -> every replica denies: p50 ${q(times, 0.5).toFixed(1)} ms, p99 ${q(times, 0.99).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms (target p99 <= 1000 ms)`,
  );
  const dir = join(root, "etc/kubernetes/kubepki");
  const tls = {
    ca: readFileSync(join(root, "etc/kubernetes/pki/ca.crt"), "utf8"),
    cert: readFileSync(join(dir, "apiserver-authz-client.crt"), "utf8"),
    key: readFileSync(join(dir, "apiserver-authz-client.key"), "utf8"),
  };
  const body = sar("v1", "jane", `X509SHA256=${"ab".repeat(32)}`);
  const b = await bare(root, tls, body);
  const s = await rps((replicas[0] as Serve).port, tls, body);
  console.log(
    `webhook, ${SECONDS} s, ${CONCURRENCY} keep-alive mTLS connections: bare ${b.toFixed(0)} req/s, etcd-backed serve ${s.toFixed(0)} req/s (${N} revoked): ratio ${(s / b).toFixed(2)} (target >= 0.85)`,
  );
} finally {
  for (const r of replicas) await r.stop();
  await cluster.stop();
}
