import type { Command } from "commander";
import type {
  AbortOutcome,
  DroppedCredential,
  RotateCaOutcome,
  RotateCaRequest,
  RotationStatus,
} from "../app/rotate.js";
import { ROTATION_IDS } from "../pki/catalog.js";
import { PHASES as ROTATION_PHASES } from "../rotate/types.js";

/** The --ca choices (app/rotate.ts's ROTATION_CAS, without loading the use case for --help). */
const ROTATION_CAS = [...ROTATION_IDS, "all"] as const;

import { act, type Common, oneOf, printData, warnAll, withFlags } from "./common.js";
import { info, out, table, warn } from "./output.js";

type Flags = Common &
  Partial<Pick<RotateCaRequest, "ca" | "phase" | "from" | "dryRun" | "force">> & { output: string };

export function registerRotate(program: Command): void {
  const cmd = program
    .command("rotate-ca")
    .description(
      "Rotate a CA (or the service-account key pair) without downtime: trust, sign, drop; status; abort",
    );
  withFlags(cmd, {
    root: true,
    ledger: true,
    certDir: true,
    offlineDir:
      "the offline folder: offline CA keys, super-admin.conf, other nodes' kubelet pairs; the first node publishes the new CA there",
  })
    .option("--ca <ca>", `which: ${ROTATION_CAS.join(", ")}`, oneOf(ROTATION_CAS))
    .option(
      "--phase <phase>",
      `${ROTATION_PHASES.join(", ")} (in that order, on every node)`,
      oneOf(ROTATION_PHASES),
    )
    .option(
      "--from <dir>",
      "take the new CA the first node published in this offline folder instead of making one",
    )
    .option("--dry-run", "show what would change; write nothing")
    .option(
      "--force",
      "sign before every trust file holds the new CA, or drop while certificates still chain only to the old one",
    )
    .option("-o, --output <format>", "text | json", oneOf(["text", "json"] as const), "text")
    .addHelpText(
      "after",
      `
Examples:
  kubepki rotate-ca --ca all --phase trust --root / --offline-dir /mnt/usb/kubepki    # first node
  kubepki rotate-ca --ca all --phase trust --root / --from /mnt/usb/kubepki           # every other node
  kubepki rotate-ca status --root /
  kubepki rotate-ca --ca all --phase sign --root / --from /mnt/usb/kubepki
  kubepki rotate-ca --ca all --phase drop --root /
  kubepki rotate-ca abort --root /                                                   # before drop

Run each phase on every node (control planes, then workers) before the next phase anywhere.`,
    );
  act(cmd, async (flags: Flags) => {
    if (!flags.ca || !flags.phase) {
      cmd.error("error: rotate-ca needs --ca and --phase (or the status or abort subcommand)", {
        exitCode: 2,
      });
    }
    const { rotateCa } = await import("../app/rotate.js");
    const r = await rotateCa({
      ...flags,
      ca: flags.ca as RotateCaRequest["ca"],
      phase: flags.phase as RotateCaRequest["phase"],
    });
    warnAll(r.notices);
    if (!(await printData(flags.output, { ...r.result, stopWorking: r.stopWorking }))) printPhase(r);
    if (r.unfinished) throw r.unfinished;
    return undefined;
  });
  registerStatus(cmd);
  registerAbort(cmd);
}

function registerStatus(cmd: Command): void {
  const status = cmd
    .command("status")
    .description(
      "Per CA its phase and whether the next is safe; per trust file its CAs; per certificate its signer",
    )
    .configureHelp({ showGlobalOptions: true })
    .addHelpText("after", "\nExample:\n  kubepki rotate-ca status --root / -o json");
  act(status, async (_own: unknown, self: Command) => {
    const flags = self.optsWithGlobals() as Flags;
    refuseFlags(self, flags, ["ca", "phase", "from", "dryRun", "force"]);
    const { rotationStatus } = await import("../app/rotate.js");
    const s = await rotationStatus(flags);
    if (!(await printData(flags.output, s))) printStatus(s);
    return undefined;
  });
}

function registerAbort(cmd: Command): void {
  const abort = cmd
    .command("abort")
    .description(
      "Before drop: the old CA signs and is trusted alone again; every file as it was before trust",
    )
    .configureHelp({ showGlobalOptions: true })
    .addHelpText("after", "\nExample:\n  kubepki rotate-ca abort --root /");
  act(abort, async (_own: unknown, self: Command) => {
    const flags = self.optsWithGlobals() as Flags;
    refuseFlags(self, flags, ["ca", "phase", "from", "force"]);
    const { abortRotation } = await import("../app/rotate.js");
    const r = await abortRotation(flags);
    warnAll(r.notices);
    if (!(await printData(flags.output, r.result))) printAbort(r);
    return undefined;
  });
}

function refuseFlags(cmd: Command, flags: Flags, names: (keyof Flags)[]): void {
  const given = names.filter((n) => flags[n] !== undefined);
  if (given.length > 0)
    cmd.error(
      `error: rotate-ca ${cmd.name()} takes no ${given.map((g) => `--${kebab(String(g))}`).join(", ")}`,
      { exitCode: 2 },
    );
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const short = (fp?: string) => (fp ? `${fp.slice(0, 16)}…` : "-");

function printPhase(r: RotateCaOutcome): void {
  const res = r.result;
  for (const c of res.cas)
    out(
      `${res.dryRun ? "would run" : c.outcome === "done" ? "done" : "already done, nothing changed"}: ${res.phase} ${c.id}  (old ${short(c.old)}, new ${short(c.new)})`,
    );
  out(`${res.dryRun ? "would change" : "changed"} ${res.changed.length} file(s)`);
  for (const n of res.notes) info(n);
  for (const l of res.restartSteps) info(l);
  if (res.clusterSteps.length > 0) {
    info("Then, once for the cluster (from a control-plane node):");
    for (const s of res.clusterSteps) info(s);
  }
  printStopWorking(r.stopWorking);
  for (const l of res.left) warn(l);
}

function printStopWorking(list: DroppedCredential[]): void {
  if (list.length === 0) return;
  warn(`${list.length} credential(s) signed by the old CA stop working now:`);
  out(
    table([
      ["USER", "GROUPS", "SERIAL", "PROFILE", "EXPIRES", "BREAK-GLASS"],
      ...list.map((c) => [
        c.user,
        c.groups.join(",") || "-",
        c.serial,
        c.profile,
        c.notAfter,
        c.breakGlass ? "yes" : "no",
      ]),
    ]),
  );
}

function printStatus(s: RotationStatus): void {
  out(
    table([
      ["CA", "PHASE", "NEXT", "SAFE", "FINGERPRINT (old -> new)"],
      ...s.cas.map((c) => [
        c.id,
        c.phase,
        c.next,
        c.nextSafe ? "yes" : "no",
        c.current ? short(c.current) : `${short(c.old)} -> ${short(c.new)}`,
      ]),
    ]),
  );
  for (const c of s.cas) for (const why of c.reasons) warn(`${c.id}: ${c.next}: ${why}`);
  out("");
  out(
    table([
      ["TRUST FILE", "HOLDS", "USED BY"],
      ...s.trustFiles.map((t) => [t.path, t.holds.join(", "), t.usedBy.join("; ")]),
    ]),
  );
  out("");
  out(
    table([["CERTIFICATE", "SIGNED BY", "PATH"], ...s.certificates.map((c) => [c.name, c.signedBy, c.path])]),
  );
  out("");
  out(
    table([
      ["SIGNING FILE", "CERTIFICATES", "KEY MATCHES"],
      ...s.signingFiles.map((f) => [
        f.path,
        String(f.certificates),
        f.keyMatches === undefined ? "(no key here)" : f.keyMatches ? "yes" : "NO",
      ]),
    ]),
  );
  if (s.session)
    out(
      `rotation session since ${s.session.startedAt}: ${s.session.ids.join(", ")}; abort restores ${s.session.files} file(s)`,
    );
}

function printAbort(r: AbortOutcome): void {
  const res = r.result;
  out(
    `${res.dryRun ? "would abort" : "aborted"}: ${res.cas.map((c) => c.id).join(", ")}; ${res.changed.length} file(s) restored or removed`,
  );
  for (const l of res.restartSteps) info(l);
}
