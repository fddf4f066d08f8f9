/**
 * bench/startup: wall time of short kubepki commands (the built CLI) as a ratio to `node -e 0`,
 * the floor any Node program pays, measured in the same run on the same runtime. Runs are
 * interleaved (one of each per round) so that noise from a shared machine hits all alike; medians.
 * Targets: --help <= 1.5x, certs check-expiration <= 2x, ECDSA init <= 4x.
 *
 *   npm run bench                        (after npm ci)
 *   BENCH_RUNS=21 node --import tsx bench/startup.ts [path/to/bin/kubepki.js ...]
 *
 * With several builds (a checkout before and after a change), all are measured in the same rounds.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = new URL("..", import.meta.url).pathname;
const bins = process.argv.length > 2 ? process.argv.slice(2) : [join(repo, "bin/kubepki.js")];
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const scratch = mkdtempSync(join(tmpdir(), "kubepki-startup-"));

const initArgs = (dir: string) => [
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
  "ECDSA-P256",
  "-o",
  "json",
];

function run(args: string[]): void {
  execFileSync(process.execPath, args, { stdio: "ignore", env: { ...process.env, NO_COLOR: "1" } });
}

/** Milliseconds one call takes; `prepare` (untimed) makes what the call needs. */
function timeIt(fn: () => void, prepare?: () => void): number {
  prepare?.();
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const tree = join(scratch, "tree");
run([bins[0] ?? "", ...initArgs(tree)]);
let initDir = "";
const freshInitDir = () => {
  if (initDir) rmSync(initDir, { recursive: true, force: true });
  initDir = mkdtempSync(join(scratch, "init-"));
};

interface Case {
  name: string;
  target?: number;
  fn: () => void;
  prepare?: () => void;
}
/** The three commands of one build; named after the build when there are several. */
const casesOf = (bin: string, i: number): Case[] => {
  const tag = bins.length > 1 ? ` [${i + 1}]` : "";
  return [
    { name: `--help${tag}`, target: 1.5, fn: () => run([bin, "--help"]) },
    {
      name: `certs check-expiration${tag}`,
      target: 2,
      fn: () => run([bin, "certs", "check-expiration", "--root", join(tree, "node")]),
    },
    {
      name: `init (ECDSA-P256)${tag}`,
      target: 4,
      fn: () => run([bin, ...initArgs(initDir)]),
      prepare: freshInitDir,
    },
  ];
};
const cases: Case[] = [{ name: "node -e 0", fn: () => run(["-e", "0"]) }, ...bins.flatMap(casesOf)];

const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
for (const c of cases) timeIt(c.fn, c.prepare); // warm-up: the page cache and Node's compile cache
for (let i = 0; i < RUNS; i++) for (const c of cases) times.get(c.name)?.push(timeIt(c.fn, c.prepare));
rmSync(scratch, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const floor = median(times.get("node -e 0") ?? []);
console.log(`bench/startup: Node ${process.version}, ${RUNS} interleaved runs each, median wall time`);
if (bins.length > 1) for (const [i, b] of bins.entries()) console.log(`  [${i + 1}] ${b}`);
console.log("command                          median     ratio to node -e 0   target");
for (const c of cases) {
  const ms = median(times.get(c.name) ?? []);
  const ratio = ms / floor;
  const verdict = c.target === undefined ? "" : `<= ${c.target}x ${ratio <= c.target ? "ok" : "MISSED"}`;
  console.log(
    `${c.name.padEnd(30)} ${ms.toFixed(0).padStart(6)} ms   ${ratio.toFixed(2).padStart(8)}x            ${verdict}`,
  );
}
