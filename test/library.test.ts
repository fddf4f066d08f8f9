import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { createProgram, runCli } from "../src/cli/main.js";
import { checkExpiration, ExitCode, IoError, initCluster, UnsafePathError } from "../src/index.js";
import { initTree, listFiles, openssl, PKI, REPO, run, tempDir } from "./helpers.js";

/** The program the README shows under "Using kubepki as a library", exactly as written there. */
function readmeExample(): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const m = /<!-- library-example -->\n```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m?.[1], "README.md has the library example");
  return m[1];
}

/** Runs the CLI in this process; what it printed is captured. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const captured = { stdout: "", stderr: "" };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  for (const name of ["stdout", "stderr"] as const)
    process[name].write = ((chunk: string | Uint8Array) => {
      captured[name] += chunk.toString();
      return true;
    }) as typeof process.stdout.write;
  try {
    const code = await runCli(createProgram(), ["node", "kubepki", ...args]);
    return { code, ...captured };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
}

describe("kubepki as a library", () => {
  it("the README's program runs as shown: init, audit, issue a client, revoke it", () => {
    const dir = tempDir("kubepki-example-");
    // The one change: "kubepki" resolves to this checkout's source, as the package's export does to dist/.
    const code = readmeExample().replace(
      'from "kubepki"',
      `from ${JSON.stringify(pathToFileURL(join(REPO, "src/index.ts")).href)}`,
    );
    writeFileSync(join(dir, "example.mts"), code);
    const r = run(process.execPath, ["--import", import.meta.resolve("tsx"), join(dir, "example.mts")], {
      env: { ...process.env, NO_COLOR: "1" },
      cwd: dir,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^init: \d+ files, CRLs 3$/m);
    assert.match(r.stdout, /^audit: \d+ findings, failed at high: (true|false)$/m);
    const serial = /^revoked serial ([0-9a-f]+); CRLs rewritten: 1$/m.exec(r.stdout)?.[1];
    assert.ok(serial, r.stdout);
    // The cluster CA's published CRL lists the serial (openssl prints it in upper case, with the
    // leading zero nibble that the ledger's normalized serial drops).
    const crl = openssl([
      "crl",
      "-inform",
      "DER",
      "-in",
      join(dir, "node", PKI, "ca.crl"),
      "-noout",
      "-text",
    ]);
    assert.equal(crl.status, 0, crl.stderr);
    assert.match(crl.stdout.replace(/[\s:]/g, ""), new RegExp(`SerialNumber0*${serial.toUpperCase()}`, "i"));
  });

  it("the package exports the library with its types, built to dist/", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
    assert.deepEqual(pkg.exports["."], { types: "./dist/index.d.ts", default: "./dist/index.js" });
    assert.equal(pkg.types, "./dist/index.d.ts");
    const build = JSON.parse(readFileSync(join(REPO, "tsconfig.build.json"), "utf8"));
    assert.equal(build.compilerOptions.declaration, true);
  });

  it("errors are thrown with an exit code and keep their cause", async () => {
    const { initCluster } = await import("../src/index.js");
    const dir = tempDir();
    writeFileSync(join(dir, "file"), "");
    // The tree's parent is a file: creating folders under it fails with ENOTDIR.
    const err = await initCluster({
      root: join(dir, "file", "node"),
      offlineDir: join(dir, "offline"),
      nodeName: "cp1",
      advertiseAddress: "10.0.0.10",
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof IoError, String(err));
    assert.equal(err.exitCode, ExitCode.Io);
    assert.equal((err.cause as NodeJS.ErrnoException | undefined)?.code, "ENOTDIR");
  });
});

describe("write confinement in the library (no CLI)", () => {
  const cp1 = { nodeName: "cp1", advertiseAddress: "10.0.0.10" };
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e,
    );

  it("initCluster refuses a link that leads out of the root, and writes nothing there", async () => {
    const dir = tempDir();
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere);
    mkdirSync(join(dir, "node", "etc"), { recursive: true });
    symlinkSync(elsewhere, join(dir, "node", "etc", "kubernetes"));
    const err = await refusal(
      initCluster({ root: join(dir, "node"), offlineDir: join(dir, "offline"), ...cp1 }),
    );
    assert.ok(err instanceof UnsafePathError, String(err));
    assert.equal(err.exitCode, ExitCode.Input);
    assert.match(err.message, /is a link to .*elsewhere, outside/);
    assert.deepEqual(listFiles(elsewhere), []);
  });

  it("a use case writes only inside the folders of its own request, not those of an earlier call", async () => {
    // Tree a was made first (its folders were allowed then). Tree b holds a journal that a killed
    // run left, naming a file inside tree a: b's journal recovery must not write there.
    const a = await initTree();
    const b = await initTree();
    const state = join(b.root, "var/lib/kubepki");
    const tmp = join(state, ".evil.kubepki-tmp-0a0a0a0a0a0a");
    writeFileSync(tmp, "not a certificate\n");
    const target = join(a.root, PKI, "evil.crt");
    writeFileSync(
      join(state, "journal.json"),
      JSON.stringify({
        version: 1,
        state: "committing",
        entries: [{ tmp, path: target }],
        tag: "0a0a0a0a0a0a",
      }),
    );
    const err = await refusal(checkExpiration({ root: b.root }));
    assert.ok(err instanceof UnsafePathError, String(err));
    assert.match(err.message, /is outside the folders this command writes to/);
    assert.equal(existsSync(target), false, "nothing was written into the other tree");
  });
});

describe("the CLI driven in-process", () => {
  it("createProgram parses nothing until run; --version and usage errors give their exit codes", async () => {
    const program = createProgram();
    assert.equal(program.name(), "kubepki");
    const version = await cli(["--version"]);
    assert.equal(version.code, ExitCode.Ok);
    assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version);
    const usage = await cli(["audit", "--fail-on", "severe"]);
    assert.equal(usage.code, ExitCode.Input);
    assert.match(usage.stderr, /must be one of info, low, medium, high, critical/);
  });

  it("audit --fail-on and ledger verify end with 1 for findings, the same ExitCode as the library", async () => {
    const { root } = await initTree();
    const clean = await cli(["ledger", "verify", "--root", root]);
    assert.equal(clean.code, ExitCode.Ok, clean.stderr);
    const audit = await cli(["audit", "--root", root, "--fail-on", "info", "-o", "json"]);
    assert.equal(audit.code, ExitCode.Findings, audit.stderr);
    assert.ok(JSON.parse(audit.stdout).summary.total > 0);
  });

  it("--debug prints the chain of causes: the errno under a failed write", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "file"), "");
    const args = ["init", "--root", join(dir, "file", "node"), "--offline-dir", join(dir, "offline")];
    const plain = await cli([...args, "--node-name", "cp1", "--advertise-address", "10.0.0.10"]);
    assert.equal(plain.code, ExitCode.Io);
    assert.doesNotMatch(plain.stderr, /caused by/);
    const debug = await cli(["--debug", ...args, "--node-name", "cp1", "--advertise-address", "10.0.0.10"]);
    assert.equal(debug.code, ExitCode.Io);
    assert.match(debug.stderr, /caused by: Error: ENOTDIR.* \[ENOTDIR\]/);
    assert.doesNotMatch(debug.stderr, /^\s+at /m, "an expected error has no stack");
  });
});
