/**
 * bench/rotate: wall time of `kubepki rotate-ca --ca all --phase sign` (every certificate of the node
 * issued again by the new CAs, the signing files swapped, one journaled transaction) next to
 * `kubepki init` for the same algorithm, in the same run, interleaved. Each sign runs on a fresh
 * tree that init built and `--phase trust` prepared (not timed); trust is timed on its own too.
 *
 *   npm run bench            (after npm ci)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = new URL("..", import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const cli = (args: string[]) =>
  execFileSync(process.execPath, [join(repo, "bin/kubepki.js"), ...args], { stdio: "ignore" });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function tree(dir: string, alg: string): string[] {
  const init = ["init", "--root", join(dir, "node"), "--offline-dir", join(dir, "offline")];
  return [
    ...init,
    "--node-name",
    "cp1",
    "--advertise-address",
    "10.0.0.10",
    "--algorithm",
    alg,
    "-o",
    "json",
  ];
}

const rotate = (dir: string, phase: string) => [
  "rotate-ca",
  "--ca",
  "all",
  "--phase",
  phase,
  "--root",
  join(dir, "node"),
  "--offline-dir",
  join(dir, "offline"),
  "-o",
  "json",
];

console.log(`bench/rotate: ${RUNS} runs each, wall time median (fastest), same run, interleaved`);
console.log("algorithm     kubepki init         rotate-ca sign       sign/init   (rotate-ca trust)");
for (const alg of ["ECDSA-P256", "RSA-2048"]) {
  const init: number[] = [];
  const sign: number[] = [];
  const trust: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const a = mkdtempSync(join(tmpdir(), "kubepki-bench-"));
    init.push(timed(() => cli(tree(a, alg))));
    trust.push(timed(() => cli(rotate(a, "trust"))));
    sign.push(timed(() => cli(rotate(a, "sign"))));
    rmSync(a, { recursive: true, force: true });
  }
  const [i, s, t] = [median(init), median(sign), median(trust)];
  const fmt = (xs: number[], m: number) =>
    `${m.toFixed(0).padStart(6)} ms (${Math.min(...xs)
      .toFixed(0)
      .padStart(5)})`;
  console.log(
    `${alg.padEnd(12)}  ${fmt(init, i)}   ${fmt(sign, s)}   ${(s / i).toFixed(2).padStart(8)}x   (${t.toFixed(0)} ms)`,
  );
}
