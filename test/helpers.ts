import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { initPki } from "../src/pki/init.js";
import { resolveSpec, type SpecInput } from "../src/pki/spec.js";

export const REPO = new URL("..", import.meta.url).pathname;
export const CLI = join(REPO, "bin/kubepki.js");

export function tempDir(prefix = "kubepki-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
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

export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(cmd, args, { encoding: "utf8", input: opts.input, env: opts.env ?? process.env });
}

export function kubepki(args: string[], env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: "1", ...env } });
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
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
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

/** `kubepki init` through the CLI (so the ledger and the first CRLs exist too). */
export function initCli(): { root: string; offline: string } {
  const dir = tempDir();
  const root = join(dir, "node");
  const offline = join(dir, "offline");
  const r = kubepki(initArgs(root, offline));
  if (r.status !== 0) throw new Error(`kubepki init failed: ${r.stderr}`);
  return { root, offline };
}
