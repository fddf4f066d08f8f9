/**
 * bench/hunt: events per second of `kubepki hunt`'s engine on a generated kube-apiserver audit log,
 * next to the same log read with node:readline and JSON.parse line by line, in the same run. Each
 * measurement runs in its own process, so its peak RSS is its own: hunt's must stay flat from
 * 100 MB to the full size. Target: hunt at least half the JSON.parse rate.
 *
 *   node --import tsx bench/hunt.ts [sizeMB]     (default 1024; the log is deleted afterwards)
 */
import { spawnSync } from "node:child_process";
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { KnownCert } from "../src/hunt/findings.js";
import { huntLogs } from "../src/hunt/hunt.js";

const MB = 1024 * 1024;
const CREDENTIALS = 500;
/** Every third credential is in the ledger; one in 50 is revoked an hour into the log. */
const fp = (i: number) => i.toString(16).padStart(64, "0");
const T0 = Date.parse("2026-11-30T00:00:00Z");

function ledger(): Map<string, KnownCert> {
  const m = new Map<string, KnownCert>();
  for (let i = 0; i < CREDENTIALS; i += 3) {
    const revoked = i % 50 === 0;
    m.set(fp(i), {
      sha256: fp(i),
      status: revoked ? "revoked" : "active",
      revokedAt: revoked ? new Date(T0 + 3600_000).toISOString() : undefined,
      profile: "client",
      source: "issued",
      subjectCN: `user-${i}`,
    });
  }
  return m;
}

/** One event as kube-apiserver's JSON log backend writes it; a quarter are client-certificate requests. */
function line(n: number): string {
  const ts = new Date(T0 + n * 5).toISOString().replace("Z", "417Z");
  const cert = n % 4 === 0;
  const id = cert
    ? `X509SHA256=${fp((n >> 2) % CREDENTIALS)}`
    : `JTI=6b1f0d5e-4b3a-4a8e-9c1d-${String(n % 1e12).padStart(12, "0")}`;
  const user = cert
    ? `{"username":"user-${(n >> 2) % CREDENTIALS}","groups":["dev","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["${id}"]}}`
    : `{"username":"system:serviceaccount:kube-system:replicaset-controller","uid":"2c8a1e0c-4e6f-4d1e-8f4b-0b8e0c6d${String(n % 1e4).padStart(4, "0")}","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["${id}"]}}`;
  return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"4f1c${String(n).padStart(8, "0")}-9f0e-4d7b-b1a2-6c3e5d7f9a0b","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods?limit=500\\u0026resourceVersion=0","verb":"${n % 3 ? "list" : "get"}","user":${user},"sourceIPs":["10.0.${(n >> 8) & 255}.${n & 255}"],"userAgent":"kube-controller-manager/v1.32.0 (linux/amd64) kubernetes/70d3cc9/system:serviceaccount:kube-system:replicaset-controller","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"${ts}","stageTimestamp":"${ts}","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \\"system:controller:replicaset-controller\\""}}\n`;
}

function generate(file: string, bytes: number): number {
  const fd = openSync(file, "w");
  let written = 0;
  let n = 0;
  while (written < bytes) {
    let chunk = "";
    while (chunk.length < 4 * MB) chunk += line(n++);
    written += writeSync(fd, chunk);
  }
  closeSync(fd);
  return n;
}

interface Measure {
  events: number;
  ms: number;
  maxRssMB: number;
  findings?: number;
}

async function baseline(file: string): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const l of rl) if (JSON.parse(l).kind === "Event") n++;
  return n;
}

async function child(mode: string, file: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  let events: number;
  let findings: number | undefined;
  if (mode === "json") events = await baseline(file);
  else {
    const r = await huntLogs({ files: [file], ledger: ledger(), cacheDelayMs: 11_000 });
    events = (r.logs[0]?.certificateEvents ?? 0) + (r.logs[0]?.otherEvents ?? 0);
    findings = r.findings.length;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const m: Measure = { events, ms, maxRssMB: process.resourceUsage().maxRSS / 1024, findings };
  process.stdout.write(JSON.stringify(m));
}

function measure(mode: "json" | "hunt", file: string): Measure {
  const r = spawnSync(process.execPath, ["--import", "tsx", import.meta.filename, "--child", mode, file], {
    encoding: "utf8",
    maxBuffer: MB,
  });
  if (r.status !== 0) throw new Error(`${mode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Measure;
}

async function main(): Promise<void> {
  const sizeMB = Number(process.argv[2] ?? 1024);
  const dir = mkdtempSync(join(tmpdir(), "kubepki-bench-hunt-"));
  try {
    const rows: string[] = [];
    const rss: number[] = [];
    let ratioAtFull = 0;
    for (const mb of [...new Set([Math.min(100, sizeMB), sizeMB])]) {
      const file = join(dir, `audit-${mb}.log`);
      const g0 = Date.now();
      const lines = generate(file, mb * MB);
      const gen = `${((Date.now() - g0) / 1000).toFixed(1)} s to generate ${lines.toLocaleString()} events`;
      // Interleaved, best of two: the machine is shared.
      const runs = { json: [] as Measure[], hunt: [] as Measure[] };
      for (let i = 0; i < 2; i++)
        for (const mode of ["json", "hunt"] as const) runs[mode].push(measure(mode, file));
      const best = (ms: Measure[]) => ms.reduce((a, b) => (b.ms < a.ms ? b : a));
      const j = best(runs.json);
      const h = best(runs.hunt);
      if (j.events !== h.events) throw new Error(`event counts differ: ${j.events} vs ${h.events}`);
      const rate = (m: Measure) => Math.round(m.events / (m.ms / 1000));
      const ratio = rate(h) / rate(j);
      ratioAtFull = ratio;
      rss.push(Math.max(...runs.hunt.map((m) => m.maxRssMB)));
      rows.push(
        `${(statSync(file).size / MB).toFixed(0)} MB (${gen}): JSON.parse ${rate(j).toLocaleString()} ev/s (peak RSS ${j.maxRssMB.toFixed(0)} MB); hunt ${rate(h).toLocaleString()} ev/s, ratio ${ratio.toFixed(2)} (peak RSS ${rss.at(-1)?.toFixed(0)} MB, ${h.findings} findings)`,
      );
      rmSync(file);
    }
    for (const r of rows) console.log(r);
    const flat = (rss.at(-1) ?? 0) <= (rss[0] ?? 0) * 1.25 + 16;
    console.log(
      `target: hunt >= 0.5 of the JSON.parse rate: ${ratioAtFull >= 0.5 ? "met" : "MISSED"}; peak RSS flat in log size (${rss.map((r) => `${r.toFixed(0)} MB`).join(" -> ")}): ${flat ? "met" : "MISSED"}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") await child(process.argv[3] ?? "", process.argv[4] ?? "");
else await main();
