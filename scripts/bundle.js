// Bundles the CLI (dist/cli/main.js, as tsc emitted it, with its dependencies) into dist/bundle,
// which bin/kubepki.js runs. Start-up time is mostly module loading: resolving, reading and
// compiling some 150 small files. One file for what every command needs, and one chunk per
// dynamic import(), so a command still loads only what it uses. dist/bundle sits as deep as
// dist/cli, so paths relative to import.meta.url stay right.
import { rmSync } from "node:fs";
import { build } from "esbuild";

const outdir = new URL("../dist/bundle/", import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: new URL("../dist/cli/main.js", import.meta.url).pathname },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node22.13",
  chunkNames: "[name]-[hash]",
  // Bundled CommonJS packages (commander, yaml, ...) call require() for Node's built-ins.
  banner: {
    js: 'import { createRequire as kubepkiCreateRequire } from "node:module"; const require = kubepkiCreateRequire(import.meta.url);',
  },
  logLevel: "warning",
});
