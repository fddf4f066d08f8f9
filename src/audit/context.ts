import type { FileFact } from "../node/files.js";
import type { ComponentFlags } from "../node/flags.js";
import { type NodeSnapshot, readPem } from "../node/snapshot.js";
import type { CertInfo } from "../x509/parse.js";
import type { Finding, Severity } from "./finding.js";
import { type RuleId, ruleInfo } from "./taxonomy.js";

export interface AuditOptions {
  /** "cis": CIS 1.11/1.12 modes (certificates 644); "strict": certificates 600 too. */
  profile: "cis" | "strict";
  /** A leaf expiring within this many days is reported (CAs: a year). */
  expiringDays: number;
  /** Client certificates valid longer than this are long-lived. */
  clientMaxDays: number;
}

export const DEFAULT_AUDIT_OPTIONS: AuditOptions = { profile: "cis", expiringDays: 30, clientMaxDays: 366 };

export interface AuditContext {
  snap: NodeSnapshot;
  opts: AuditOptions;
}

export type Rule = (ctx: AuditContext) => Finding[];

export function finding(
  ruleId: RuleId,
  message: string,
  path: string | undefined,
  evidence: Finding["evidence"] = {},
  severity?: Severity,
): Finding {
  const info = ruleInfo(ruleId);
  return { ruleId, severity: severity ?? info.severity, title: info.title, message, path, evidence };
}

/** kube-bench's bitmask test: the mode may hold no bit outside `allowed`. */
export function modeExceeds(mode: number, allowed: number): boolean {
  return (mode & 0o777 & ~allowed) !== 0;
}

export const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

/** Evidence for a finding about a component flag: the flag, its value, where it was read. */
export function flagEvidence(c: ComponentFlags): (flag: string) => Finding["evidence"] {
  return (flag) => ({ flag: `--${flag}`, value: c.flags.get(flag) ?? "(unset)", source: c.source });
}

/** A check as data: one small function from what it inspects to its findings (none when it passes). */
export type Check<T> = (input: T) => Finding | Finding[] | undefined;

export function runChecks<T>(checks: Check<T>[], input: T): Finding[] {
  return checks.flatMap((check) => check(input) ?? []);
}

type Flags = ComponentFlags["flags"];

/** A check of one component's flags: when `fails`, the rule's finding, with the flag as evidence. */
export interface FlagCheck {
  rule: RuleId;
  /** The flag the evidence shows. */
  flag: string;
  fails: (f: Flags) => boolean;
  message: (f: Flags) => string;
}

export function runFlagChecks(checks: FlagCheck[], c: ComponentFlags): Finding[] {
  const ev = flagEvidence(c);
  return checks
    .filter((k) => k.fails(c.flags))
    .map((k) => finding(k.rule, k.message(c.flags), c.source, ev(k.flag)));
}

/** Evidence for a finding about a file's protection: path, mode, owner. */
export function fileEvidence(f: FileFact): Finding["evidence"] {
  return { file: f.path, mode: octal(f.mode), owner: `${f.uid}:${f.gid}` };
}

/** Certificates in a file a flag points at (read on demand, confined to the root). */
export function certsAt(snap: NodeSnapshot, path: string | undefined): CertInfo[] {
  return path ? (readPem(snap, path)?.certs ?? []) : [];
}
