import type { Finding } from "../audit/finding.js";
import { severityRank } from "../audit/finding.js";
import { parseLine } from "./event.js";
import { credentialFindings, type KnownCert } from "./findings.js";
import { type LineStats, readLines } from "./lines.js";
import { type CredentialTally, Tally } from "./tally.js";

/** What one log held: lines by kind, malformed ones with a few examples. */
export interface LogSummary extends LineStats {
  /** Events authenticated by a client certificate (an X509SHA256 credential id). */
  certificateEvents: number;
  /** Events without one: tokens, service accounts, clusters before 1.32. */
  otherEvents: number;
  blank: number;
  malformed: number;
  /** The first malformed lines: line number and why (never the line itself: it may hold secrets). */
  malformedSamples: { line: number; reason: string }[];
}

export interface HuntInput {
  files: string[];
  /** Every certificate the ledger records, by fingerprint. */
  ledger: Map<string, KnownCert>;
  /** How long after a revocation requests may still pass (cache TTL plus reload), ms. */
  cacheDelayMs: number;
  maxLineBytes?: number;
}

export interface HuntResult {
  logs: LogSummary[];
  credentials: CredentialTally[];
  findings: Finding[];
  /** Distinct certificates beyond the tracking limit: counted, not analysed. */
  untracked: number;
}

const MAX_SAMPLES = 5;

/** Reads the logs one after the other, streaming; joins every certificate seen with the ledger. */
export async function huntLogs(input: HuntInput): Promise<HuntResult> {
  const revokedAt = new Map<string, number>();
  for (const e of input.ledger.values())
    if (e.status === "revoked" && e.revokedAt) revokedAt.set(e.sha256, Date.parse(e.revokedAt));
  const tally = new Tally(revokedAt, input.cacheDelayMs);
  const logs: LogSummary[] = [];
  for (const file of input.files) logs.push(await readLog(file, tally, input.maxLineBytes));
  const credentials = [...tally.credentials.values()].sort((a, b) => a.firstSeen - b.firstSeen);
  const findings = credentials
    .flatMap((t) => credentialFindings(t, input.ledger.get(t.sha256)))
    .sort((a, b) => severityRank(b.severity) - severityRank(a.severity));
  return { logs, credentials, findings, untracked: tally.untracked };
}

async function readLog(path: string, tally: Tally, maxLine?: number): Promise<LogSummary> {
  const counts = { certificateEvents: 0, otherEvents: 0, blank: 0, malformed: 0 };
  const malformedSamples: LogSummary["malformedSamples"] = [];
  const stats = await readLines(
    path,
    (line, lineNo) => {
      const kind = parseLine(line);
      if (kind === "other") counts.otherEvents++;
      else if (kind === "blank") counts.blank++;
      else if ("malformed" in kind) {
        counts.malformed++;
        if (malformedSamples.length < MAX_SAMPLES)
          malformedSamples.push({ line: lineNo, reason: kind.malformed });
      } else {
        counts.certificateEvents++;
        tally.add(kind, path, lineNo);
      }
    },
    maxLine,
  );
  return { ...stats, ...counts, malformedSamples };
}
