import { Command, CommanderError } from "commander";
import { errorMessage, KubepkiError } from "../errors.js";
import { confineWrites } from "../fsx/confine.js";
import { registerAudit } from "./audit.js";
import { registerCerts } from "./certs.js";
import { registerCrl } from "./crl.js";
import { registerInit } from "./init.js";
import { registerIssue } from "./issue.js";
import { registerLedger } from "./ledger.js";
import { registerNode } from "./node.js";
import { paint } from "./output.js";
import { registerRevoke } from "./revoke.js";
import { registerServe } from "./serve.js";

const program = new Command("kubepki")
  .description("Builds, audits and guards the PKI of Kubernetes clusters")
  .version("0.1.0")
  .option("--debug", "print stack traces of unexpected errors")
  .exitOverride()
  .addHelpText(
    "after",
    `
Examples:
  kubepki init --root ./node --offline-dir ./offline
  kubepki certs check-expiration --root ./node
  kubepki certs renew all --root ./node
  kubepki node add worker1=10.0.0.21 --root ./node --offline-dir ./offline
  kubepki audit --root ./node -o html --out report.html`,
  );

// Every write stays inside --root and --offline-dir: links that lead out of them are refused.
program.hook("preAction", (_program, action) => {
  const o = action.opts() as { root?: string; offlineDir?: string };
  if (o.root) confineWrites(o.root);
  if (o.offlineDir) confineWrites(o.offlineDir);
});

registerInit(program);
registerCerts(program);
registerAudit(program);
registerLedger(program);
registerNode(program);
registerIssue(program);
registerRevoke(program);
registerCrl(program);
registerServe(program);
/** Usage errors print the error and one line pointing to the command's --help, not the whole help. */
function configure(cmd: Command, path: string): void {
  cmd.exitOverride().showHelpAfterError(`(run '${path} --help' for usage and examples)`);
  for (const sub of cmd.commands) configure(sub, `${path} ${sub.name()}`);
}
configure(program, "kubepki");

// A reader that goes away (`| head -c 1`) ends the output quietly, for every command.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (err: NodeJS.ErrnoException) => {
    process.exit(err.code === "EPIPE" ? Number(process.exitCode) || 0 : 3);
  });

function fail(message: string, code: number): never {
  process.stderr.write(`${paint("error:", "red", process.stderr)} ${message}\n`);
  process.exit(code);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with exit code 0; usage errors were already printed.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof KubepkiError) fail(err.message, err.exitCode);
  if (program.opts().debug) console.error(err);
  fail(`unexpected: ${errorMessage(err)} (run with --debug for details)`, 3);
}
