#!/usr/bin/env node
const { createProgram, runCli } = await import("../dist/cli/main.js");
const code = await runCli(createProgram());
// An error ends the process at once, whatever is still open; otherwise pending output drains.
if (code >= 2) process.exit(code);
process.exitCode = code;
