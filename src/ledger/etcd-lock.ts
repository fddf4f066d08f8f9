import { IoError } from "../errors.js";
import type { EtcdConnection } from "./etcd-client.js";
import { K } from "./etcd-keys.js";

/** The lock's lease: a holder that dies (SIGKILL, lost network) frees it after this many seconds. */
export const LOCK_TTL_S = 10;
/** How long a writer waits for another node's writer, as SQLite's busy timeout. */
export const LOCK_WAIT_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * exclusive() across nodes: a key under the prefix put only if absent (create revision 0), attached
 * to a lease this process keeps alive. Others retry with a short random pause until it is deleted or
 * its lease expires. Returns the release function; the lease id goes with every write made under it.
 */
export async function acquireLock(conn: EtcdConnection, owner: string): Promise<() => Promise<void>> {
  const lease = conn.client.lease(LOCK_TTL_S, { autoKeepAlive: true });
  lease.on("lost", () => {
    // keep-alive failed: the next write's compare (the lock is ours) will fail and say so
  });
  const leaseId = await lease.grant();
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    const r = await conn.ns
      .if(K.lock, "Create", "==", 0)
      .then(conn.ns.put(K.lock).value(owner).lease(leaseId))
      .commit();
    if (r.succeeded) break;
    if (Date.now() > deadline) {
      await lease.revoke().catch(() => {});
      throw new IoError(
        `the etcd ledger stayed locked for ${LOCK_WAIT_MS / 1000} s (key ${conn.target.prefix}${K.lock}): another kubepki process is writing to it; try again`,
      );
    }
    await sleep(pause / 2 + Math.random() * pause);
  }
  return async () => {
    await lease.revoke();
  };
}
