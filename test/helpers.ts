import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { initCluster } from "../src/app/init.js";
import { initPki } from "../src/pki/init.js";
import { resolveSpec, type SpecInput } from "../src/pki/spec.js";

export const REPO = new URL("..", import.meta.url).pathname;
export const CLI = join(REPO, "bin/kubepki.js");

/** Every temporary folder of this test file lives here, so a command's writes can be checked. */
const TEST_BASE = mkdtempSync(join(tmpdir(), "kubepki-suite-"));
process.on("exit", () => rmSync(TEST_BASE, { recursive: true, force: true }));

export function tempDir(prefix = "kubepki-test-"): string {
  return mkdtempSync(join(TEST_BASE, prefix));
}

/** A folder for a real peer (etcd's data, Chromium's profile) that writes on its own, unchecked. */
const PEER_BASE = mkdtempSync(join(tmpdir(), "kubepki-peers-"));
process.on("exit", () => rmSync(PEER_BASE, { recursive: true, force: true }));

export function peerDir(prefix: string): string {
  return mkdtempSync(join(PEER_BASE, prefix));
}

const s = (value: string) => ({ value, where: "test" });

/** A spec for node cp1 at 10.0.0.10, with overrides. */
export function testSpec(over: SpecInput = {}, offlineDir?: string) {
  return resolveSpec([
    {
      nodeName: s("cp1"),
      advertiseAddress: s("10.0.0.10"),
      ...(offlineDir ? { offlineDir: s(offlineDir) } : {}),
      ...over,
    },
  ]);
}

/** Builds a tree with the library; returns root and offline folder. */
export async function buildTree(
  over: SpecInput = {},
): Promise<{ root: string; offline: string; dir: string }> {
  const dir = tempDir();
  const root = join(dir, "node");
  const offline = join(dir, "offline");
  await initPki({ root, spec: testSpec(over, offline) });
  return { root, offline, dir };
}

export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
) {
  return spawnSync(cmd, args, {
    encoding: "utf8",
    input: opts.input,
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
}

export function kubepki(args: string[], env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  const start = Date.now();
  const r = run(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: "1", ...env } });
  assertWritesConfined(args, start);
  return r;
}

/** The folders and files a command was told it may write: its --root, --offline-dir, --out, --state. */
const WRITE_FLAGS = ["--root", "--offline-dir", "--out", "--state"];

/**
 * No command writes outside what it was given: after every CLI command of the suite, every file or
 * folder of this test file's temporary tree that changed since the command started must lie in one
 * of those places.
 */
function assertWritesConfined(args: string[], start: number): void {
  const allowed = args
    .map((a, i) => (WRITE_FLAGS.includes(args[i - 1] ?? "") ? resolve(a) : undefined))
    .filter((a): a is string => a !== undefined);
  const inside = (p: string) => allowed.some((a) => p === a || p.startsWith(`${a}${sep}`));
  // Creating the parents of a folder it was given is writing that folder.
  const parentOfAllowed = (p: string) => allowed.some((a) => a.startsWith(`${p}${sep}`));
  const stray: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      // Node takes far longer than 10 ms to start; file stamps use a coarse clock (a few ms behind).
      const changed = (st.isDirectory() ? st.birthtimeMs : Math.max(st.mtimeMs, st.ctimeMs)) >= start + 10;
      if (changed && !inside(p) && !(st.isDirectory() && parentOfAllowed(p))) stray.push(p);
      if (st.isDirectory() && !inside(p)) walk(p);
    }
  };
  walk(TEST_BASE);
  if (stray.length > 0)
    throw new Error(`kubepki ${args.join(" ")} wrote outside its folders:\n  ${stray.join("\n  ")}`);
}

export function openssl(args: string[]): SpawnSyncReturns<string> {
  return run("openssl", args);
}

/** Every file under dir with its mode and content hash: to prove a tree was left as it was. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const name of entries) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) out[relative(dir, p)] = `-> ${readlinkSync(p)}`;
      else
        out[relative(dir, p)] =
          `${(st.mode & 0o777).toString(8)} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
    }
  };
  walk(dir);
  return out;
}

export const PKI = "etc/kubernetes/pki";

/** `kubepki init` for node cp1 at 10.0.0.10, the node every test tree describes. */
export function initArgs(root: string, offline: string, ...extra: string[]): string[] {
  return [
    "init",
    "--root",
    root,
    "--offline-dir",
    offline,
    "--node-name",
    "cp1",
    "--advertise-address",
    "10.0.0.10",
    ...extra,
  ];
}

/** A TCP port free on loopback right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as import("node:net").AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * A tree as `kubepki init` makes it for node cp1 at 10.0.0.10 (the ledger and the first CRLs too),
 * through the library's use case, the function the CLI calls.
 */
export async function initTree(): Promise<{ root: string; offline: string }> {
  const dir = tempDir();
  const root = join(dir, "node");
  const offline = join(dir, "offline");
  await initCluster({ root, offlineDir: offline, nodeName: "cp1", advertiseAddress: "10.0.0.10" });
  return { root, offline };
}

/** Every file (not folder) under dir, relative to it; none when dir is absent. */
export function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => !e.isDirectory())
      .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
  } catch {
    return [];
  }
}
