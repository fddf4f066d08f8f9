import { type Command, InvalidArgumentError } from "commander";
import type { WatchRequest } from "../app/watch.js";
import { ExitCode, InputError } from "../errors.js";
import { act, collect, duration, withFlags } from "./common.js";
import { info, out, warn } from "./output.js";

interface WatchFlags extends WatchRequest {
  accept?: string[];
  once?: boolean;
  printAuditRules?: boolean;
  printSystemdUnit?: boolean;
  printDaemonset?: boolean;
  falco?: boolean;
  image?: string;
  namespace?: string;
  interval?: number;
  crlRefresh?: number;
}

/** A duration flag that also takes 0 (off). */
function durationOrZero(flag: string) {
  const parse = duration(flag);
  return (v: string) => {
    if (/^0+[a-z]*$/.test(v)) return 0;
    return parse(v);
  };
}

function port(v: string): string {
  if (!/:\d{1,5}$/.test(v)) throw new InvalidArgumentError("expected HOST:PORT (127.0.0.1:9793)");
  return v;
}

const EXAMPLES = `
Examples:
  kubepki watch --root / --listen 127.0.0.1:9793 --events /var/log/kubepki/events.jsonl
  kubepki watch --root / --once
  kubepki watch --root / --accept /etc/kubernetes/pki/apiserver.key
  kubepki watch --print-audit-rules > /etc/audit/rules.d/kubepki.rules && augenrules --load
  kubepki watch --print-audit-rules --falco > /etc/falco/rules.d/kubepki_rules.yaml
  kubepki watch --root / --auditd-log /var/log/audit/audit.log`;

export function registerWatch(program: Command): void {
  const cmd = program
    .command("watch")
    .description(
      "Watch the node: x509 expiry metrics (x509-certificate-exporter's names), fresh CRLs, key-file integrity events",
    );
  withFlags(cmd, {
    root: true,
    ledger: true,
    offlineDir: "where the CA keys are kept (to re-sign CRLs)",
    certDir: true,
  })
    .option("--listen <host:port>", "address for /metrics and /healthz", port, "127.0.0.1:9793")
    .option("--interval <duration>", "rescan at least this often (default: 60s)", duration("--interval"))
    .option(
      "--crl-refresh <duration>",
      "re-sign a CRL this close to its nextUpdate; 0: warn only (default: 7d)",
      durationOrZero("--crl-refresh"),
    )
    .option(
      "--events <file>",
      "append events (JSON lines) to this file instead of stdout (stderr with --once)",
    )
    .option(
      "--auditd-log <file>",
      "turn auditd records of the --print-audit-rules rules into events (follows the file)",
    )
    .option(
      "--once",
      "scan once: the metrics on stdout, the events on stderr (or --events), refresh CRLs, read the whole --auditd-log; exit 1 on events",
    )
    .option(
      "--accept <path>",
      "the baseline takes this file as it is now (an intended change; repeatable)",
      collect,
    )
    .option(
      "--print-audit-rules",
      "print auditd rules and a Falco rule for reads of the CA keys and other indicator files",
    )
    .option("--falco", "with --print-audit-rules: the Falco rule instead of auditd's")
    .option("--print-systemd-unit", "print a systemd service running kubepki watch")
    .option("--print-daemonset", "print a DaemonSet manifest running kubepki watch")
    .option("--image <image>", "with --print-daemonset: the container image")
    .option("--namespace <ns>", "with --print-daemonset: the namespace (default: kube-system)")
    .addHelpText("after", EXAMPLES);
  act(cmd, runWatch);
}

/** One scan. stdout carries the metrics (a textfile collector reads them): the events go to stderr. */
async function watchOnce(
  app: typeof import("../app/watch.js"),
  req: WatchRequest,
): Promise<ExitCode | undefined> {
  const onEvent = req.events ? undefined : (e: unknown) => process.stderr.write(`${JSON.stringify(e)}\n`);
  const r = await app.watchOnce({ ...req, ...(onEvent ? { onEvent } : {}) });
  for (const n of r.notices) warn(n);
  out(r.metrics.trimEnd());
  return r.events > 0 ? ExitCode.Findings : undefined;
}

async function runWatch(flags: WatchFlags): Promise<ExitCode | undefined> {
  const app = await import("../app/watch.js");
  if (await printOnly(app, flags)) return undefined;
  if (flags.accept?.length) {
    const r = await app.acceptChanges(flags, flags.accept);
    for (const p of r.accepted) info(`accepted ${p} into the baseline`);
    for (const p of r.removed) info(`removed ${p} from the baseline (no longer on the node)`);
    return undefined;
  }
  const req: WatchRequest = { ...flags, intervalMs: flags.interval, crlRefreshMs: flags.crlRefresh };
  if (flags.once) return watchOnce(app, req);
  const running = await app.startWatch(req);
  for (const n of running.notices) warn(n);
  info(`kubepki watch: ${running.url}/metrics; watching ${running.engine.watched.length} folders`);
  await untilSignalled(running.close);
  return undefined;
}

const COMPANIONS: Record<string, [keyof WatchFlags, keyof WatchFlags, string]> = {
  "--falco": ["falco", "printAuditRules", "--print-audit-rules"],
  "--image": ["image", "printDaemonset", "--print-daemonset"],
  "--namespace": ["namespace", "printDaemonset", "--print-daemonset"],
};

async function printOnly(app: typeof import("../app/watch.js"), f: WatchFlags): Promise<boolean> {
  const chosen = [f.printAuditRules, f.printSystemdUnit, f.printDaemonset].filter(Boolean).length;
  if (chosen > 1)
    throw new InputError("give one of --print-audit-rules, --print-systemd-unit, --print-daemonset");
  // Without its --print-* flag, a companion flag would start a watch on --root (default /).
  const orphan = Object.entries(COMPANIONS).find(([, [key, needs]]) => f[key] !== undefined && !f[needs]);
  if (orphan) throw new InputError(`${orphan[0]} goes with ${orphan[1][2]}`);
  if (f.printAuditRules) {
    const r = await app.printAuditRules(f);
    process.stdout.write(f.falco ? r.falco : r.auditd);
  } else if (f.printSystemdUnit) process.stdout.write(await app.printSystemdUnit(f));
  else if (f.printDaemonset) process.stdout.write(await app.printDaemonSet(f));
  return chosen === 1;
}

async function untilSignalled(close: () => Promise<void>): Promise<never> {
  const stop = () => {
    info("kubepki watch: stopping");
    setTimeout(() => process.exit(0), 5000).unref();
    close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  return new Promise<never>(() => {});
}
