// Bundles the CLI (dist/cli/main.js, as tsc emitted it, with its dependencies) into dist/bundle,
// which bin/kubepki.js runs. Start-up time is mostly module loading: resolving, reading and
// compiling some 150 small files. One file for what every command needs, and one chunk per
// dynamic import(), so a command still loads only what it uses. dist/bundle sits as deep as
// dist/cli, so paths relative to import.meta.url stay right.
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * esbuild gives `await import("pkg")` of a CommonJS package only a default export, where Node
 * also gives the named ones (`(await import("yaml")).stringify`). Such an import goes through a
 * small ES module that names each export of the package.
 */
const requireHere = createRequire(import.meta.url);
const namedCjsExports = {
  name: "named-cjs-exports",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.kind === "dynamic-import" && !args.path.startsWith("node:") && !args.path.startsWith("etcd3")
        ? { path: args.path, namespace: "named-exports" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "named-exports" }, (args) => {
      const names = Object.keys(requireHere(args.path)).filter((k) => k !== "default" && /^[A-Za-z_$][\w$]*$/.test(k));
      const from = JSON.stringify(args.path);
      return {
        contents: `import m from ${from}; export default m; export const { ${names.join(", ")} } = m;`,
        resolveDir: fileURLToPath(new URL("..", import.meta.url)),
      };
    });
  },
};

const outdir = fileURLToPath(new URL("../dist/bundle/", import.meta.url));
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: fileURLToPath(new URL("../dist/cli/main.js", import.meta.url)) },
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
  plugins: [namedCjsExports],
  // etcd3 reads its .proto files next to its own code (lib/../proto) and gRPC loads at run time:
  // both stay in node_modules, loaded only by commands given an etcd store.
  external: ["etcd3", "etcd3/*"],
  logLevel: "warning",
});
