import { IoError } from "../errors.js";
import { exists } from "../fsx/read.js";
import { missingLedgerMessage } from "../ledger/messages.js";
import type { StoreTarget } from "../ledger/target.js";
import { CAS } from "../pki/catalog.js";
import { crlPath, type TreePaths } from "../pki/paths.js";
import type { Notice } from "./tree.js";

/** A SQLite ledger may be missing; an etcd one is found (or refused) when it is opened. */
export const ledgerExists = (ledger: StoreTarget): boolean => ledger.kind !== "sqlite" || exists(ledger.file);

/**
 * Whether a run that signed certificates (renew, rotate-ca) records them in the ledger. A tree
 * with published CRLs had one: its loss is refused (an empty new one would forget every
 * revocation); a tree kubepki never managed goes on without recording, with a warning saying
 * what is `unrecorded`.
 */
export function ledgerToRecord(
  ledger: StoreTarget,
  paths: TreePaths,
  notices: Notice[],
  unrecorded: string,
): boolean {
  if (ledger.kind !== "sqlite" || exists(ledger.file)) return true;
  const crls = CAS.map((c) => crlPath(paths, c.id)).filter(exists);
  if (crls.length > 0)
    throw new IoError(
      missingLedgerMessage(ledger.file, `does not exist, though ${crls[0]} was published from it`),
    );
  notices.push(`no ledger at ${ledger.file}: ${unrecorded}`);
  return false;
}
