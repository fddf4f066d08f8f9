import { existsSync, readFileSync } from "node:fs";

/**
 * kubepki's version, from package.json: one level above src/ and dist/, two above the bundle's
 * chunks in dist/bundle/.
 */
function readVersion(): string {
  for (const rel of ["../package.json", "../../package.json"]) {
    const url = new URL(rel, import.meta.url);
    if (!existsSync(url)) continue;
    const pkg = JSON.parse(readFileSync(url, "utf8")) as { name?: string; version?: string };
    if (pkg.name === "kubepki" && pkg.version) return pkg.version;
  }
  return "0.0.0";
}

export const VERSION: string = readVersion();
