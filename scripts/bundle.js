// Bundles the CLI (dist/cli/main.js, as tsc emitted it, with its dependencies) into dist/bundle,
// which bin/kubepki.js runs. Start-up time is mostly module loading: resolving, reading and
// compiling some 150 small files. One file for what every command needs, and one chunk per
// dynamic import(), so a command still loads only what it uses. dist/bundle sits as deep as
// dist/cli, so paths relative to import.meta.url stay right.
import { readFileSync, rmSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * esbuild gives `await import("pkg")` of a CommonJS package only a default export, where Node
 * also gives the named ones (`(await import("yaml")).stringify`). Such an import goes through a
 * small ES module that names each export of the package.
 */
const requireHere = createRequire(import.meta.url);
const repo = fileURLToPath(new URL("..", import.meta.url));
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

/**
 * commander requires node:child_process when it loads, only to run executable subcommands (which
 * kubepki has none of); loading it pulls in net, dgram and the streams, a few ms of every start.
 * commander gets a stand-in that loads the real module on first use.
 */
const lazyChildProcess = {
  name: "lazy-child-process",
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.kind === "require-call" && /[\\/]commander[\\/]/.test(args.importer)
        ? { path: "child_process", namespace: "lazy-child-process" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-child-process" }, () => ({
      contents: 'module.exports = { spawn: (...args) => require("node:child_process").spawn(...args) };',
      loader: "js",
    }));
  },
};

/**
 * `import { readFileSync } from "node:fs"` in an ES module makes Node build the module's ES facade,
 * which reads every export, fs.promises included, and that loads fs/promises, streams and readline
 * (a few ms of every start, on every command). require() does not. So each file's named imports of
 * a built-in come from a stand-in of its own (it lands in that file's chunk) that takes just those
 * names off require()'s module. src/ imports built-ins by name only; anything else fails the build.
 */
const builtinsByRequire = {
  name: "builtins-by-require",
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) =>
      args.kind === "import-statement" && isBuiltin(args.path)
        ? {
            path: args.path,
            namespace: "builtin-by-require",
            suffix: `?${relative(repo, args.importer)}`,
            pluginData: args.importer,
          }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "builtin-by-require" }, (args) => {
      const id = args.path.startsWith("node:") ? args.path : `node:${args.path}`;
      const names = importedNames(readFileSync(args.pluginData, "utf8"), args.path);
      return {
        contents: [
          `const m = require(${JSON.stringify(id)});`,
          ...names.map((n) => `export const ${n} = m.${n};`),
        ].join("\n"),
        loader: "js",
      };
    });
  },
};

/** The names a file imports from a module (`import { a, b as c } from "x"`); refuses other forms. */
function importedNames(source, from) {
  const esc = from.replace(/[/:]/g, "\\$&");
  const all = [...source.matchAll(new RegExp(`^import\\s+([^;]*?)\\s+from\\s*"${esc}";`, "gm"))];
  const names = new Set();
  for (const [, clause] of all) {
    const m = /^\{([^}]*)\}$/.exec(clause.trim());
    if (!m) throw new Error(`bundle: import ${clause} from "${from}": only named imports of built-ins are bundled`);
    for (const part of m[1].split(",").map((p) => p.trim()).filter(Boolean)) names.add(part.split(/\s+as\s+/)[0]);
  }
  return [...names];
}

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
  // Bundled CommonJS packages (commander, yaml, ...) call require() for Node's built-ins: handed
  // out directly (Node 22.3+), with no ES import and no createRequire in every chunk.
  banner: {
    js: 'const require = (id) => process.getBuiltinModule(id) ?? process.getBuiltinModule("node:module").createRequire(import.meta.url)(id);',
  },
  plugins: [namedCjsExports, lazyChildProcess, builtinsByRequire],
  // etcd3 reads its .proto files next to its own code (lib/../proto) and gRPC loads at run time:
  // both stay in node_modules, loaded only by commands given an etcd store.
  external: ["etcd3", "etcd3/*"],
  logLevel: "warning",
});
