import type { RotationId } from "../pki/catalog.js";

/** The three phases of a rotation, in order (docs/rotation.md). */
export const PHASES = ["trust", "sign", "drop"] as const;
export type Phase = (typeof PHASES)[number];

/** One CA's rotation as recorded in rotation.json. */
export interface CaRotation {
  /** The last phase completed. */
  phase: Phase;
  /** PEM of the old CA certificate (for sa: its public key). */
  old: string;
  /** PEM of the new one. */
  next: string;
  /** When each phase completed. */
  at: Partial<Record<Phase, string>>;
  /** The folder the new CA was taken from (`--from`), if it was not made here. */
  from?: string;
  /** Fingerprints of the certificates `sign` issued (abort marks them superseded in the ledger). */
  issued?: string[];
}

/** A file as it was before the rotation touched it: its copy (absent: the file did not exist). */
export interface SnapshotEntry {
  path: string;
  copy?: string;
  mode?: number;
}

/**
 * var/lib/kubepki/rotation.json. A session starts with the first `trust` and ends when every CA it
 * holds has been dropped; `abort` restores every file it touched, byte for byte.
 */
export interface RotationState {
  version: 1;
  cas: Partial<Record<RotationId, CaRotation>>;
  session?: { startedAt: string; ids: RotationId[]; files: SnapshotEntry[] };
}

/** What `status` and the phases call an authority: the old or new CA of a rotation, or the current one. */
export interface Authority {
  id: RotationId;
  role: "old" | "new" | "current";
  pem: string;
  /** SHA-256 of the certificate's DER (for sa: of the public key's SPKI DER). */
  sha256: string;
}
