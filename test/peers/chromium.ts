import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { peerDir } from "../helpers.js";

/**
 * Debian's headless Chromium on a local file, offline (no network, no updates, its own profile
 * folder): `--dump-dom`, `--screenshot=FILE` and the like go in `args`.
 */
export function chromium(file: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(
    "/usr/bin/chromium",
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${peerDir("kubepki-chromium-")}`,
      "--enable-logging=stderr",
      "--v=0",
      ...args,
      `file://${file}`,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
}
