import { dirname, resolve } from "node:path";
import type { IssuedClient } from "../revoke/issue-client.js";
import {
  type Duration,
  durationMs,
  inTree,
  type Notice,
  pathsOf,
  storeOf,
  type TreeOptions,
} from "./tree.js";

export interface IssueClientRequest extends TreeOptions {
  /** User name (certificate CN). */
  user: string;
  /** Groups (certificate O). */
  groups?: string[];
  /** Lifetime (default 8h); refused above maxTtl (default 168h). */
  ttl?: Duration;
  maxTtl?: Duration;
  /** API server URL (default: admin.conf's). */
  server?: string;
  /** Allow group system:masters (never revocable; recorded as such). */
  breakGlass?: boolean;
  /** Where the kubeconfig goes (mode 0600). */
  out: string;
  /** Replace an existing out file. */
  force?: boolean;
}

/** `kubepki issue client`: a kubeconfig with a fresh key and a short-lived certificate, recorded in the ledger. */
export function issueClient(req: IssueClientRequest): Promise<{ client: IssuedClient; notices: Notice[] }> {
  return inTree(pathsOf(req), () => issueIn(req), dirname(resolve(req.out)));
}

async function issueIn(req: IssueClientRequest): Promise<{ client: IssuedClient; notices: Notice[] }> {
  const [{ withLedger }, m] = await Promise.all([
    import("../ledger/record.js"),
    import("../revoke/issue-client.js"),
  ]);
  const paths = pathsOf(req);
  const groups = req.groups ?? [];
  const notices: Notice[] = [];
  if (req.breakGlass && groups.includes(m.SYSTEM_MASTERS))
    notices.push(
      "break-glass: this certificate is in system:masters. kube-apiserver allows it before any authorizer runs, so neither RBAC nor kubepki's webhook can stop it: only rotating the cluster CA can cut it off before it expires. Keep it offline and short.",
    );
  const ttlMs = (await durationMs(req.ttl, "--ttl")) ?? m.DEFAULT_CLIENT_TTL_MS;
  const maxTtlMs = (await durationMs(req.maxTtl, "--max-ttl")) ?? m.DEFAULT_CLIENT_MAX_TTL_MS;
  const client = await withLedger(await storeOf(req, paths), (store) =>
    m.issueClient({
      paths,
      store,
      user: req.user,
      groups,
      ttlMs,
      maxTtlMs,
      breakGlass: !!req.breakGlass,
      server: req.server,
      out: resolve(req.out),
      force: req.force,
    }),
  );
  return { client, notices };
}
