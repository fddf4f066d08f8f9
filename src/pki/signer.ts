import type { KeyObject } from "node:crypto";
import { InputError } from "../errors.js";
import type { CertInfo } from "../x509/parse.js";
import { type CaId, caEntry } from "./catalog.js";
import { loadPair } from "./existing.js";
import { caPaths, offlineCaKeyPath, readTreeText, type TreePaths } from "./paths.js";

export interface CaSigner {
  cert: CertInfo;
  key: KeyObject;
  /** ca.crt as it is on disk (it may be a bundle during a CA rotation). */
  pem: string;
}

/**
 * A CA's certificate and key: the key from the node, or from the offline folder. When the key is
 * nowhere, the reason (naming `what` cannot be done) instead of a signer.
 */
export function loadCaSigner(paths: TreePaths, id: CaId, what: string): CaSigner | string {
  const p = caPaths(paths, id);
  const offline = offlineCaKeyPath(paths, id);
  const read = (f: string) => readTreeText(paths, f);
  const nodePair = loadPair(p, read);
  const pair = !nodePair.keyExists && offline ? loadPair(p, read, offline) : nodePair;
  if (pair.problems.length > 0) throw new InputError(pair.problems.join("; "));
  if (!pair.cert) throw new InputError(`the ${caEntry(id).longName} certificate ${p.cert} is missing`);
  if (!pair.key)
    return `Detected external ${id}: the CA key ${p.key} is absent, so this certificate can't be ${what} here (pass --offline-dir where the key is kept, or use the external signer)`;
  return { cert: pair.cert, key: pair.key, pem: readTreeText(paths, p.cert) ?? pair.cert.pem };
}

export function requireCaSigner(paths: TreePaths, id: CaId, what: string): CaSigner {
  const s = loadCaSigner(paths, id, what);
  if (typeof s === "string") throw new InputError(s);
  return s;
}
