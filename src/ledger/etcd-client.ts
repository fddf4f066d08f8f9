import { readFileSync } from "node:fs";
import type { Etcd3, IOptions, Namespace } from "etcd3";
import { errorMessage, InputError, IoError } from "../errors.js";
import type { StoreTarget } from "./target.js";

export type EtcdTarget = Extract<StoreTarget, { kind: "etcd" }>;

export interface EtcdConnection {
  client: Etcd3;
  /** Every key of the ledger, relative to the prefix. */
  ns: Namespace;
  target: EtcdTarget;
}

function readPem(file: string, flag: string, own: boolean): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const hint = own
      ? " (kubepki's own etcd client pair: `kubepki init` or `kubepki ledger init` with --store etcd://... issues it from the etcd CA, or pass --etcd-cert and --etcd-key)"
      : "";
    throw new IoError(
      `cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}${hint}`,
      {
        cause: err,
      },
    );
  }
}

/** Watches reconnect quickly (100 ms, doubling, at most 1 s): a replica catches up soon after etcd returns. */
function watchBackoff(ms = 100): { duration: number; next: () => ReturnType<typeof watchBackoff> } {
  return { duration: ms, next: () => watchBackoff(Math.min(ms * 2, 1_000)) };
}

/**
 * The etcd3 client for a target: mutual TLS with the given CA and client pair, every endpoint. The
 * endpoints are tried in the order given (the first one is this node's member; the next ones on
 * failure: etcd3 shuffles them unless told otherwise), every unary call bounded by the timeout.
 */
export async function connectEtcd(t: EtcdTarget): Promise<EtcdConnection> {
  const credentials = {
    rootCertificate: readPem(t.cacert, "--etcd-cacert", false),
    certChain: readPem(t.cert, "--etcd-cert", t.ownPair),
    privateKey: readPem(t.key, "--etcd-key", t.ownPair),
  };
  const [{ Etcd3 }, { ConnectionPool }] = await Promise.all([
    import("etcd3"),
    import("etcd3/lib/connection-pool.js"),
  ]);
  quietIpServername();
  // Deterministic order walks the host list from its end: reversed, the first endpoint comes first.
  ConnectionPool.deterministicOrder = true;
  const options: IOptions = {
    hosts: [...t.endpoints].reverse().map((e) => `https://${e}`),
    credentials,
    dialTimeout: t.timeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + t.timeoutMs }),
    faultHandling: { watchBackoff: watchBackoff() },
    grpcOptions: { "grpc.keepalive_time_ms": 5_000, "grpc.keepalive_timeout_ms": 2_000 },
  };
  let client: Etcd3;
  try {
    client = new Etcd3(options);
  } catch (err) {
    throw new InputError(
      `cannot use the etcd TLS files (--etcd-cacert ${t.cacert}, --etcd-cert ${t.cert}, --etcd-key ${t.key}): ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return { client, ns: client.namespace(t.prefix), target: t };
}

let quieted = false;
/**
 * gRPC sets the TLS server name to the endpoint even when it is an IP address, and Node warns
 * (DEP0123) on every first connection. The name is only the SNI hint; the certificate is still
 * checked against the address. That one warning is dropped; every other one passes.
 */
function quietIpServername(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    if (args.includes("DEP0123")) return;
    emit(...args);
  }) as typeof process.emitWarning;
}

/** The gRPC status text of an etcd3 error, without its "Last error:" noise where that says less. */
function cause(err: unknown): string {
  const m = errorMessage(err).replace(/^\d+ [A-Z_]+: /, "");
  const last = /Last error: (.*)$/.exec(m)?.[1];
  return (last ?? m).replace(/^Error: /, "").replace(/\.? ?Resolution note:.*$/, "");
}

/** `p`, or a rejection after `ms` (the timer does not keep the process alive). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
    p.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

/**
 * When a call failed: asks each endpoint on its own (a client per endpoint, one read each, all at
 * once, within what is left of the timeout, at least 300 ms) so the message names every endpoint
 * with its own cause (refused, TLS, certificate refused, no answer).
 */
export async function diagnose(t: EtcdTarget, err: unknown, budgetMs = t.timeoutMs): Promise<IoError> {
  const ms = Math.max(300, budgetMs);
  const results = await Promise.all(
    t.endpoints.map(async (e) => {
      let conn: EtcdConnection | undefined;
      try {
        conn = await connectEtcd({ ...t, endpoints: [e], timeoutMs: ms });
        const c = conn;
        await within(
          c.ns
            .get("schema")
            .exec()
            .then(() => undefined),
          ms,
        );
        return `  - ${e}: reachable`;
      } catch (inner) {
        return `  - ${e}: ${cause(inner)}`;
      } finally {
        conn?.client.close();
      }
    }),
  );
  return new IoError(
    `etcd at ${t.endpoints.join(",")} failed (${cause(err)}; --etcd-timeout ${t.timeoutMs} ms). Each endpoint:\n${results.join("\n")}\nCheck the endpoints, --etcd-cacert (the CA that signed etcd's serving certificate) and the client pair (--etcd-cert/--etcd-key, signed by the CA etcd trusts)`,
    { cause: err },
  );
}

/**
 * Runs one etcd call within --etcd-timeout (whatever etcd3 retries inside it); a failure becomes an
 * IoError naming each endpoint and its cause. `unbounded` for a wait with its own limit (the lock).
 */
export async function call<T>(conn: EtcdConnection, fn: () => Promise<T>, unbounded = false): Promise<T> {
  const started = Date.now();
  try {
    return await (unbounded ? fn() : within(fn(), conn.target.timeoutMs));
  } catch (err) {
    if (err instanceof IoError) throw err;
    throw await diagnose(conn.target, err, conn.target.timeoutMs - (Date.now() - started));
  }
}
