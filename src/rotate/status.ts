import { join } from "node:path";
import { exists } from "../fsx/read.js";
import { CAS, ROTATION_IDS, type RotationId, SIGNING_FILES } from "../pki/catalog.js";
import { selfContained } from "../pki/expiry.js";
import { caPaths, type TreePaths } from "../pki/paths.js";
import { keysMatch, parsePrivateKeyPem } from "../x509/keys.js";
import { parseCertificatesPem } from "../x509/parse.js";
import { signedBy } from "../x509/verify.js";
import { PHASE_ORDER, type PhaseContext } from "./context.js";
import { stillSignedBy } from "./drop.js";
import { certFiles, kubeconfigView, type TrustFile, trustFiles } from "./inventory.js";
import { currentGeneration, type Generation, generationsIn, rotationFiles } from "./material.js";
import { leafOf } from "./sign.js";
import type { Phase, RotationState } from "./types.js";
import type { Workspace } from "./workspace.js";

export interface CaStatus {
  id: RotationId;
  phase: Phase | "none";
  /** SHA-256 fingerprints (of the certificate; for sa, of the public key). */
  current?: string;
  old?: string;
  new?: string;
  next: Phase;
  /** Whether the next phase may run now, and if not, why. */
  nextSafe: boolean;
  reasons: string[];
}

export interface RotationStatus {
  cas: CaStatus[];
  /** Per trust file, which CAs it holds ("ca old", "ca new", "etcd-ca"). */
  trustFiles: { path: string; usedBy: string[]; holds: string[] }[];
  /** Per certificate of the node, which CA signed it. */
  certificates: { name: string; path: string; signedBy: string }[];
  /** Each signing file: how many certificates it holds and whether its key matches (exactly one, true). */
  signingFiles: { id: RotationId; path: string; certificates: number; keyMatches?: boolean }[];
  session?: { startedAt: string; ids: RotationId[]; files: number };
}

interface Known {
  label: string;
  id: RotationId;
  gen: Generation;
}

/** The generations this node knows: each rotation's old and new, else each CA's current one. */
function knownGenerations(ws: Workspace, state: RotationState): Known[] {
  const known: Known[] = [];
  for (const id of ROTATION_IDS) {
    const rot = state.cas[id];
    if (rot && rot.phase !== "drop") {
      for (const [role, pem] of [
        ["old", rot.old],
        ["new", rot.next],
      ] as const)
        for (const gen of generationsIn(id, pem, "rotation.json"))
          known.push({ label: `${id} ${role}`, id, gen });
      continue;
    }
    try {
      known.push({
        label: id,
        id,
        gen: currentGeneration(id, (p) => ws.read(p), rotationFiles(ws.paths, id)),
      });
    } catch {
      // not on this node
    }
  }
  return known;
}

function holdsOf(ws: Workspace, t: TrustFile, known: Known[]): string[] {
  const text = ws.read(t.path);
  if (text === undefined) return ["(missing)"];
  try {
    const pem = t.kind === "kubeconfig" ? kubeconfigView(ws, t.path)?.caPem : text;
    if (pem === undefined) return ["(no embedded CA data)"];
    const kind: RotationId = t.id === "sa" ? "sa" : "ca";
    return generationsIn(kind, pem, t.path).map(
      (g) => known.find((k) => k.gen.sha256 === g.sha256)?.label ?? `unknown ${g.sha256.slice(0, 16)}`,
    );
  } catch (err) {
    return [`(unreadable: ${(err as Error).message})`];
  }
}

/** The trust files of a CA that do not hold its new generation yet (sign must wait for them). */
export function trustGaps(ws: Workspace, state: RotationState, id: RotationId): string[] {
  const known = knownGenerations(ws, state);
  return trustFiles(ws)
    .map((t) => ({ t, holds: holdsOf(ws, t, known) }))
    .filter(
      ({ t, holds }) =>
        (t.id === id || holds.some((h) => h.startsWith(`${id} `))) && !holds.includes(`${id} new`),
    )
    .filter(({ t, holds }) => t.kind === "pem" || holds.includes(`${id} old`))
    .map(({ t, holds }) => `${t.path} (${t.usedBy.join(", ")}) holds ${holds.join(", ") || "nothing"}`);
}

export function rotationStatus(ctx: PhaseContext): RotationStatus {
  const { ws, state } = ctx;
  const known = knownGenerations(ws, state);
  const x509 = known.filter((k) => k.gen.cert);
  const certificates = certFiles(ctx.paths).map((c) => {
    const cert = safe(() => leafOf(ctx, c));
    const by = cert && x509.find((k) => k.gen.cert && signedBy(cert, k.gen.cert));
    const chain = cert ? safe(() => parseCertificatesPem(ws.read(c.path) ?? "", c.path)) : undefined;
    const self = c.kind !== "kubeconfig" && chain && selfContained(chain);
    return {
      name: c.name,
      path: c.path,
      signedBy: by ? by.label : self ? "self-signed" : cert ? "unknown issuer" : "unreadable",
    };
  });
  const s = state.session;
  return {
    cas: ROTATION_IDS.filter((id) => known.some((k) => k.id === id)).map((id) => caStatus(ctx, id, known)),
    trustFiles: trustFiles(ws).map((t) => ({ path: t.path, usedBy: t.usedBy, holds: holdsOf(ws, t, known) })),
    certificates,
    signingFiles: signingFiles(ctx.paths, ws),
    ...(s ? { session: { startedAt: s.startedAt, ids: s.ids, files: s.files.length } } : {}),
  };
}

function caStatus(ctx: PhaseContext, id: RotationId, known: Known[]): CaStatus {
  const rot = ctx.state.cas[id];
  const phase = rot?.phase ?? "none";
  const next = PHASE_ORDER[phase];
  const reasons = blockers(ctx, id, next);
  const fp = (role: string) => known.find((k) => k.id === id && k.label === `${id}${role}`)?.gen.sha256;
  return {
    id,
    phase,
    ...(rot && phase !== "drop" ? { old: fp(" old"), new: fp(" new") } : { current: fp("") }),
    next,
    nextSafe: reasons.length === 0,
    reasons,
  };
}

/** Why the next phase may not run yet. */
export function blockers(ctx: PhaseContext, id: RotationId, next: Phase): string[] {
  const rot = ctx.state.cas[id];
  if (next === "sign") return trustGaps(ctx.ws, ctx.state, id).map((g) => `not trusted yet: ${g}`);
  if (next === "drop" && rot) {
    const [old] = generationsIn(id, rot.old, "rotation.json");
    return old?.cert
      ? stillSignedBy(ctx, id, old.cert).map((c) => `still signed by the old CA only: ${c}`)
      : [];
  }
  return [];
}

function signingFiles(p: TreePaths, ws: Workspace): RotationStatus["signingFiles"] {
  const out: RotationStatus["signingFiles"] = [];
  for (const ca of CAS) {
    const cert = caPaths(p, ca.id).cert;
    const text = ws.read(cert);
    if (text === undefined) continue;
    const certs = safe(() => parseCertificatesPem(text, cert)) ?? [];
    const f = rotationFiles(p, ca.id);
    const keyText = exists(f.key) ? ws.read(f.key) : undefined;
    const key = keyText ? safe(() => parsePrivateKeyPem(keyText, f.key)) : undefined;
    const first = certs[0];
    out.push({
      id: ca.id,
      path: cert,
      certificates: certs.length,
      ...(key && first ? { keyMatches: keysMatch(key, first.publicKey) } : {}),
    });
  }
  const sa = join(p.pkiDir, SIGNING_FILES.sa.cert);
  const saText = ws.read(sa);
  if (saText === undefined) return out;
  const pubs = generationsIn("sa", saText, sa);
  const saKeyText = ws.read(join(p.pkiDir, SIGNING_FILES.sa.key));
  const saKey = saKeyText ? safe(() => parsePrivateKeyPem(saKeyText, SIGNING_FILES.sa.key)) : undefined;
  const first = pubs[0];
  out.push({
    id: "sa",
    path: sa,
    certificates: pubs.length,
    ...(saKey && first ? { keyMatches: keysMatch(saKey, first.publicKey) } : {}),
  });
  return out;
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
