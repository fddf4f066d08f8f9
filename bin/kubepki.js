#!/usr/bin/env node
// kubepki needs Node.js MINIMUM or newer (node:sqlite, module.enableCompileCache). Started by an
// older Node, it runs again on the runtime the package pins (the `node` devDependency) when that is
// installed next to it, or says which version it needs (exit 3). Plain JavaScript that older
// Node versions parse, so that they get as far as this check.
import module from "node:module";
import { fileURLToPath } from "node:url";

// Built-ins through require(): importing node:fs as an ES module loads fs/promises and the streams.
const require = module.createRequire(import.meta.url);

// node:sqlite works without a flag from 22.13 on the 22 line and from 23.4 on.
const MINIMUM = [22, 13];
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
const supported = (major === 22 && minor >= 13) || (major === 23 && minor >= 4) || major >= 24;

if (supported) {
  quietSqliteWarning();
  // Caches compiled code in the package's own folder: writable by whoever installed kubepki, not
  // by every user (a shared /tmp cache could be filled by someone else). Silently off when read-only.
  module.enableCompileCache?.(fileURLToPath(new URL("../node_modules/.cache/kubepki", import.meta.url)));
  const { createProgram, runCli } = await import("../dist/bundle/main.js");
  const code = await runCli(createProgram());
  // An error ends the process at once, whatever is still open; otherwise pending output drains.
  if (code >= 2) process.exit(code);
  process.exitCode = code;
} else {
  reexec();
}

/**
 * Node before 24.15 warns on every run that node:sqlite is experimental; kubepki depends on what it
 * does today (the ledger's tests run on the pinned runtime), so that one warning is not repeated.
 */
function quietSqliteWarning() {
  const emit = process.emitWarning;
  process.emitWarning = (warning, ...rest) => {
    if (String(warning).startsWith("SQLite is an experimental feature")) return;
    emit.call(process, warning, ...rest);
  };
}

function reexec() {
  const pinned = [
    new URL("../node_modules/node/bin/node", import.meta.url),
    new URL("../node_modules/.bin/node", import.meta.url),
  ]
    .map((u) => fileURLToPath(u))
    .find((p) => require("node:fs").existsSync(p));
  if (!pinned || process.env.KUBEPKI_REEXEC) {
    process.stderr.write(
      `error: kubepki needs Node.js ${MINIMUM.join(".")} or newer (this is ${process.version}); install Node.js 24 LTS, or run \`npm ci\` in the kubepki checkout, which brings it\n`,
    );
    process.exit(3);
  }
  // Required here, not at the top: node:child_process pulls in net, dgram and the streams.
  const { spawn } = require("node:child_process");
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, KUBEPKI_REEXEC: "1" },
  });
  // A terminal's Ctrl-C reaches the child too (same process group): forwarding it would be a second one.
  process.on("SIGINT", () => {});
  for (const signal of ["SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("error", (err) => {
    process.stderr.write(`error: cannot start ${pinned}: ${err.message}\n`);
    process.exit(3);
  });
  child.on("exit", (code, signal) => {
    if (!signal) process.exit(code ?? 3);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}
