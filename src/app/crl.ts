import { dirname, resolve } from "node:path";
import type { CaId } from "../pki/catalog.js";
import type { PublishedCrl } from "../revoke/crl.js";
import { type Duration, durationMs, inTree, pathsOf, storeOf, type TreeOptions } from "./tree.js";

export interface CrlRequest extends TreeOptions {
  /** ca (default), etcd-ca or front-proxy-ca. */
  ca?: CaId;
  /** Where to write it (default: the CA's published CRL, DER, next to the CA). */
  out?: string;
  /** DER instead of PEM (with out). */
  der?: boolean;
  /** nextUpdate - thisUpdate (default 30d). */
  validity?: Duration;
}

/** `kubepki crl`: an X.509 v2 CRL signed by a CA, listing every certificate of it revoked in the ledger. */
export function writeCrl(req: CrlRequest): Promise<PublishedCrl> {
  return inTree(pathsOf(req), () => writeCrlIn(req), req.out && dirname(resolve(req.out)));
}

async function writeCrlIn(req: CrlRequest): Promise<PublishedCrl> {
  const [{ withLedger }, { publishCrl }] = await Promise.all([
    import("../ledger/record.js"),
    import("../revoke/crl.js"),
  ]);
  const paths = pathsOf(req);
  const validityMs = await durationMs(req.validity, "--validity");
  return withLedger(await storeOf(req, paths), (store) =>
    publishCrl(paths, store, req.ca ?? "ca", {
      out: req.out ? resolve(req.out) : undefined,
      der: req.der,
      validityMs,
    }),
  );
}
