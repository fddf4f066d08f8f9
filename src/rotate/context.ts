import type { Component, RotationId } from "../pki/catalog.js";
import type { IssuedCert } from "../pki/init.js";
import type { TreePaths } from "../pki/paths.js";
import type { Phase, RotationState } from "./types.js";
import type { Workspace } from "./workspace.js";

/** What one run of a phase works with and gathers, for every CA it covers. */
export interface PhaseContext {
  ws: Workspace;
  paths: TreePaths;
  state: RotationState;
  now: Date;
  /** --from: the folder another node published the new CA in. */
  from?: string;
  force: boolean;
  notes: string[];
  restart: Set<Component>;
  /** Certificates signed in this run, and the fingerprints they supersede (for the ledger). */
  issued: IssuedCert[];
  superseded: string[];
  /** Work that could not be done here, with the reason (the run exits 3). */
  left: string[];
  /**
   * Files a later phase of the session will replace: copied into the session's snapshot now, so
   * the phase that replaces them has no copies to make.
   */
  preserve: Set<string>;
  /** What each CA did: "done", or "already" when the phase had run before. */
  outcome: Partial<Record<RotationId, "done" | "already">>;
}

export const PHASE_ORDER: Record<Phase | "none", Phase> = {
  none: "trust",
  trust: "sign",
  sign: "drop",
  drop: "trust",
};
