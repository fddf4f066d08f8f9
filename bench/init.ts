/**
 * bench/init: wall time of `kubepki init` (the built CLI, a fresh tree each run) for ECDSA-P256 and
 * RSA-2048, next to bench/openssl-pki.sh making the same certificate set in the same run.
 * For RSA it also prints the floor set by key generation: keys / cores / (RSA-2048 keys per second
 * on one core, measured here), and init's ratio to it.
 *
 *   npm run bench            (after npm ci)
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

const repo = new URL("..", import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** 3 CAs + 7 kubeadm leaves + the kubelet serving certificate + 5 kubeconfigs + sa.key. */
const KEYS = 17;

function timeIt(fn: (dir: string) => void): number {
  const dir = mkdtempSync(join(tmpdir(), "kubepki-bench-"));
  const t0 = process.hrtime.bigint();
  fn(dir);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

function kubepkiInit(alg: string) {
  return (dir: string) =>
    execFileSync(
      process.execPath,
      [
        join(repo, "bin/kubepki.js"),
        "init",
        "--root",
        join(dir, "node"),
        "--offline-dir",
        join(dir, "offline"),
        "--node-name",
        "cp1",
        "--advertise-address",
        "10.0.0.10",
        "--algorithm",
        alg,
        "-o",
        "json",
      ],
      { stdio: "ignore" },
    );
}

function opensslScript(alg: string) {
  return (dir: string) =>
    execFileSync("bash", [join(repo, "bench/openssl-pki.sh"), alg, dir], { stdio: "ignore" });
}

/** RSA key generation time varies a lot from key to key, so the rate is taken over many keys. */
function rsaKeysPerSecondOneCore(n = 3 * KEYS): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) generateKeyPairSync("rsa", { modulusLength: 2048 });
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const cores = availableParallelism();
console.log(`bench/init: ${RUNS} runs each, median wall time, ${cores} cores, ${KEYS} keys per PKI`);
console.log("algorithm     kubepki init   openssl script   kubepki/openssl");
const results: Record<string, number> = {};
for (const alg of ["ECDSA-P256", "RSA-2048"]) {
  const ours: number[] = [];
  const theirs: number[] = [];
  // Interleaved so that noise from the shared machine hits both sides alike.
  for (let i = 0; i < RUNS; i++) {
    ours.push(timeIt(kubepkiInit(alg)));
    theirs.push(timeIt(opensslScript(alg)));
  }
  const a = median(ours);
  const b = median(theirs);
  results[alg] = a;
  console.log(
    `${alg.padEnd(12)}  ${a.toFixed(0).padStart(9)} ms   ${b.toFixed(0).padStart(11)} ms   ${(a / b).toFixed(2).padStart(12)}x`,
  );
}
const rate = rsaKeysPerSecondOneCore();
const floorMs = (KEYS / cores / rate) * 1000;
const rsa = results["RSA-2048"] ?? Number.NaN;
console.log(
  `RSA-2048 key generation: ${rate.toFixed(2)} keys/s on one core -> floor ${KEYS}/${cores}/${rate.toFixed(2)} = ${floorMs.toFixed(0)} ms; ` +
    `init = ${(rsa / floorMs).toFixed(2)}x the floor (target <= 1.3x)`,
);
