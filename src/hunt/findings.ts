import type { Finding } from "../audit/finding.js";
import type { LedgerEntry } from "../ledger/store.js";
import type { CredentialTally, RevocationUse } from "./tally.js";
import { type HuntRuleId, huntRule } from "./taxonomy.js";

/** What hunt needs of a ledger entry. */
export type KnownCert = Pick<
  LedgerEntry,
  "sha256" | "status" | "revokedAt" | "breakGlass" | "profile" | "source" | "subjectCN"
>;

const iso = (ms: number) => (Number.isNaN(ms) ? "unknown" : new Date(ms).toISOString());

/** What every finding about a credential carries: who, from where, what, when. */
export function activity(t: CredentialTally): Record<string, string | number> {
  return {
    credentialId: `X509SHA256=${t.sha256}`,
    user: t.user,
    groups: [...t.groups].join(","),
    sourceIPs: [...t.sourceIPs].join(","),
    verbs: [...t.verbs].map(([v, n]) => `${v}=${n}`).join(","),
    requests: t.requests,
    firstSeen: iso(t.firstSeen),
    lastSeen: iso(t.lastSeen),
    log: `${t.firstAt.path}:${t.firstAt.line}`,
  };
}

function finding(id: HuntRuleId, t: CredentialTally, message: string, extra = {}): Finding {
  const rule = huntRule(id);
  return {
    ruleId: id,
    severity: rule.severity,
    title: rule.title,
    message,
    path: t.firstAt.path,
    line: t.firstAt.line,
    evidence: { ...activity(t), ...extra },
  };
}

const isNodeIdentity = (t: CredentialTally) =>
  t.user.startsWith("system:node:") && t.groups.has("system:nodes") && !t.groups.has("system:masters");

/** The findings of one credential, given what the ledger knows of it (undefined: nothing). */
export function credentialFindings(t: CredentialTally, known: KnownCert | undefined): Finding[] {
  const out: Finding[] = [];
  const who = `${t.user} (X509SHA256=${t.sha256.slice(0, 16)}…)`;
  const span = `${t.requests} request(s) from ${[...t.sourceIPs].join(", ") || "no source IP"}, ${iso(t.firstSeen)} to ${iso(t.lastSeen)}`;
  if (!known && isNodeIdentity(t))
    out.push(
      finding("hunt.cert.unknown-node", t, `${who}: a kubelet client certificate not in the ledger; ${span}`),
    );
  else if (!known)
    out.push(
      finding("hunt.cert.unknown", t, `${who}: a certificate kubepki never issued or imported; ${span}`),
    );
  if (t.groups.has("system:masters") || known?.breakGlass)
    out.push(
      finding(
        "hunt.cert.system-masters.used",
        t,
        `${who}${known?.breakGlass ? ", the recorded break-glass credential," : ""} is in system:masters and bypasses every authorizer; ${span}`,
        { profile: known?.profile ?? "unknown" },
      ),
    );
  if (t.revocation) out.push(revokedFinding(t, t.revocation, known, who));
  return out;
}

function revokedFinding(
  t: CredentialTally,
  r: RevocationUse,
  known: KnownCert | undefined,
  who: string,
): Finding {
  const extra = {
    revokedAt: iso(r.revokedAt),
    usedBeforeRevocation: r.before,
    usedDuringCacheDelay: r.duringDelay,
    usedAfterCacheDelay: r.after,
    allowedAfterRevocation: r.allowedAfter,
    deniedAfterRevocation: r.deniedAfter,
    profile: known?.profile ?? "unknown",
  };
  const afterCount = r.duringDelay + r.after;
  if (afterCount === 0)
    return finding(
      "hunt.cert.revoked.before",
      t,
      `${who} was revoked at ${iso(r.revokedAt)}; ${r.before} request(s) before that, none after`,
      extra,
    );
  const when = [
    `${r.before} request(s) before the revocation at ${iso(r.revokedAt)}`,
    `${r.duringDelay} within the cache delay after it`,
    `${r.after} later (${iso(r.firstAfter ?? Number.NaN)} to ${iso(r.lastAfter ?? Number.NaN)})`,
    `${r.allowedAfter} of those after it allowed, ${r.deniedAfter} denied`,
  ];
  return finding("hunt.cert.revoked.used", t, `${who} is revoked and still used: ${when.join("; ")}`, extra);
}
