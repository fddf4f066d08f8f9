import { InputError, IoError } from "../errors.js";
import { readFileLimited } from "../fsx/read.js";
import type { RotationId } from "../pki/catalog.js";
import type { PhaseContext } from "./context.js";
import { restartFor } from "./steps.js";
import type { SnapshotEntry } from "./types.js";

/**
 * Back to before the session's first `trust`: every file it changed gets its old bytes and mode
 * back, every file it made is removed, and the old CA signs and is trusted alone again. Refused once
 * a CA of the session has been dropped (its old key is gone from the trust files of other nodes).
 */
export function abortSession(ctx: PhaseContext): { ids: RotationId[]; issued: string[] } {
  const s = ctx.state.session;
  if (!s) throw new InputError("no CA rotation is in progress here: nothing to abort");
  const dropped = s.ids.filter((id) => ctx.state.cas[id]?.phase === "drop");
  if (dropped.length > 0)
    throw new InputError(
      `abort refused: ${dropped.join(", ")} ${dropped.length > 1 ? "were" : "was"} dropped already, so the old CA is gone; finish the rotation of ${s.ids.filter((i) => !dropped.includes(i)).join(", ") || "the others"} with sign and drop instead`,
    );
  restoreFiles(ctx, s.files);
  const issued = s.ids.flatMap((id) => forget(ctx, id));
  ctx.state.session = undefined;
  return { ids: s.ids, issued };
}

/** Each file back with its old bytes and mode (or removed, if the session made it); the copies go. */
function restoreFiles(ctx: PhaseContext, files: SnapshotEntry[]): void {
  for (const e of files) {
    if (!e.copy) {
      ctx.ws.remove(e.path);
      continue;
    }
    const data = readFileLimited(e.copy);
    if (data === undefined)
      throw new IoError(`${e.copy}, the copy of ${e.path} taken before the rotation, is missing`);
    ctx.ws.write(e.path, data.toString("utf8"), e.mode ?? 0o600);
    ctx.ws.remove(e.copy);
  }
}

/** The CA's rotation leaves the state; returns what its sign issued. */
function forget(ctx: PhaseContext, id: RotationId): string[] {
  const rot = ctx.state.cas[id];
  const phases = rot?.phase === "sign" ? (["trust", "sign"] as const) : (["trust"] as const);
  for (const phase of phases) for (const c of restartFor(id, phase)) ctx.restart.add(c);
  delete ctx.state.cas[id];
  return rot?.issued ?? [];
}
