import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { cpSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { CLI, tempDir } from "../helpers.js";

/**
 * A private "real node" for `--root /`: commands run inside their own mount namespace
 * (`unshare -m`) where /etc is a copy of this machine's, and /var/lib and /mnt are empty folders of
 * this test. The machine's real /etc is never touched; what a command wrote is read afterwards
 * through `host()`.
 */
export interface NodeRoot {
  dir: string;
  /** The test-side path of a path on the private node. */
  host(nodePath: string): string;
  kubepki(args: string[]): SpawnSyncReturns<string>;
  sh(script: string): SpawnSyncReturns<string>;
}

const MOUNTS: [string, string][] = [
  ["/etc", "etc"],
  ["/var/lib", "var-lib"],
  ["/mnt", "mnt"],
];

export function nodeRoot(): NodeRoot {
  const dir = tempDir("kubepki-noderoot-");
  cpSync("/etc", join(dir, "etc"), { recursive: true, verbatimSymlinks: true });
  for (const [, name] of MOUNTS.slice(1)) mkdirSync(join(dir, name));
  const binds = MOUNTS.map(([node, name]) => `mount --bind '${join(dir, name)}' '${node}'`).join(" && ");
  const inNs = (cmd: string[]) =>
    spawnSync(
      "unshare",
      ["-m", "--propagation", "private", "sh", "-c", `${binds} && exec "$@"`, "sh", ...cmd],
      {
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
  return {
    dir,
    host: (p) => {
      const m = MOUNTS.find(([node]) => p === node || p.startsWith(`${node}/`));
      if (!m) throw new Error(`${p} is not on the private node`);
      return join(dir, m[1], p.slice(m[0].length));
    },
    kubepki: (args) => inNs([process.execPath, CLI, ...args]),
    sh: (script) => inNs(["sh", "-c", script]),
  };
}

/** Mount namespaces need root (CI and these machines run as root). */
export const canUnshare = spawnSync("unshare", ["-m", "true"]).status === 0;
