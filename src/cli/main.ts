import { Command, CommanderError } from "commander";
import { describeChain, ExitCode, errorMessage, KubepkiError } from "../errors.js";
import { confineWrites } from "../fsx/confine.js";
import { VERSION } from "../version.js";
import { registerAudit } from "./audit.js";
import { registerCerts } from "./certs.js";
import { outcomeOf } from "./common.js";
import { registerCrl } from "./crl.js";
import { registerInit } from "./init.js";
import { registerIssue } from "./issue.js";
import { registerLedger } from "./ledger.js";
import { registerNode } from "./node.js";
import { paint } from "./output.js";
import { registerRevoke } from "./revoke.js";
import { registerRotate } from "./rotate.js";
import { registerServe } from "./serve.js";

/** The kubepki command tree, ready to parse; nothing runs until it is parsed. */
export function createProgram(): Command {
  const program = new Command("kubepki")
    .description("Builds, audits and guards the PKI of Kubernetes clusters")
    .version(VERSION)
    .option("--debug", "on an error, print its chain of causes (and the stack of an unexpected one)")
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
    const o = action.optsWithGlobals() as { root?: string; offlineDir?: string };
    if (o.root) confineWrites(o.root);
    if (o.offlineDir) confineWrites(o.offlineDir);
  });
  for (const register of [
    registerInit,
    registerCerts,
    registerAudit,
    registerLedger,
    registerNode,
    registerIssue,
    registerRevoke,
    registerCrl,
    registerServe,
    registerRotate,
  ])
    register(program);
  configure(program, "kubepki");
  return program;
}

/** Usage errors print the error and one line pointing to the command's --help, not the whole help. */
function configure(cmd: Command, path: string): void {
  cmd.exitOverride().showHelpAfterError(`(run '${path} --help' for usage and examples)`);
  for (const sub of cmd.commands) configure(sub, `${path} ${sub.name()}`);
}

/**
 * Parses argv (node's form: [node, script, ...args]) and runs the command; returns the exit code
 * instead of exiting, so tests can drive the CLI in-process. Errors end here, printed as one line
 * (with --debug, their chain of causes), never as a stack trace.
 */
export async function runCli(program: Command, argv: string[] = process.argv): Promise<ExitCode> {
  quietOnClosedOutput();
  try {
    await program.parseAsync(argv);
    return outcomeOf(program) ?? ExitCode.Ok;
  } catch (err) {
    return exitCodeOf(err, program.opts().debug === true);
  }
}

/** Where every error ends: one line (with --debug, its chain of causes) and an exit code. */
function exitCodeOf(err: unknown, debug: boolean): ExitCode {
  // --help and --version end here with exit code 0; usage errors were already printed.
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Input;
  if (err instanceof KubepkiError) return fail(err.message, err.exitCode, debug ? describeChain(err) : []);
  const chain = debug ? describeChain(err, { stacks: true }) : [];
  return fail(
    `unexpected: ${errorMessage(err)}${debug ? "" : " (run with --debug for details)"}`,
    ExitCode.Io,
    chain,
  );
}

function fail(message: string, code: ExitCode, chain: string[]): ExitCode {
  process.stderr.write(`${paint("error:", "red", process.stderr)} ${message}\n`);
  for (const line of chain) process.stderr.write(`  ${line}\n`);
  return code;
}

let pipeGuard = false;

/** A reader that goes away (`| head -c 1`) ends the output quietly, for every command. */
function quietOnClosedOutput(): void {
  if (pipeGuard) return;
  pipeGuard = true;
  for (const stream of [process.stdout, process.stderr])
    stream.on("error", (err: NodeJS.ErrnoException) => {
      process.exit(err.code === "EPIPE" ? Number(process.exitCode) || 0 : ExitCode.Io);
    });
}
