import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { httpsJson, sleep, type TlsClient } from "./etcd-cluster.js";
import { inRoot, manifestFlags, need } from "./node-files.js";

/**
 * A continuous etcd client, configured as kube-apiserver's etcd client is (the kube-apiserver
 * manifest's --etcd-cafile, --etcd-certfile, --etcd-keyfile; re-read by `reload()`, which stands for
 * restarting kube-apiserver). Each operation is a put through one member and a linearizable read of
 * the same key through the next, over etcd's gRPC gateway with keep-alive connections. A connection
 * reset or refusal, or an etcd "unavailable" answer while a member restarts, is retried on the next
 * member (allowed); a TLS failure (verification of the server, or the server refusing the client's
 * certificate) fails the operation at once: that is what a rotation must never cause.
 */

export type Failure = "tls" | "transient" | "other";

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EHOSTUNREACH",
]);

export function classify(err: unknown): Failure {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? "";
  const msg = e?.message ?? String(err);
  if (/^ERR_SSL_|^ERR_TLS_|CERT|SIGNATURE|SELF_SIGNED|UNABLE_TO_/.test(code)) return "tls";
  if (/certificate|alert|handshake/i.test(msg)) return "tls";
  if (TRANSIENT_CODES.has(code) || /socket hang up/.test(msg)) return "transient";
  return "other";
}

export interface LoadStats {
  ops: number;
  failedOps: number;
  retries: number;
  transient: string[];
  tls: string[];
  other: string[];
  mismatches: number;
}

class OpError extends Error {
  constructor(
    readonly kind: Failure,
    message: string,
  ) {
    super(message);
  }
}

export class EtcdLoad {
  readonly stats: LoadStats = {
    ops: 0,
    failedOps: 0,
    retries: 0,
    transient: [],
    tls: [],
    other: [],
    mismatches: 0,
  };
  private tls!: TlsClient;
  private agents: Agent[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly root: string,
    readonly endpoints: string[],
    readonly pauseMs = 20,
  ) {
    this.reload();
  }

  /** Re-reads the etcd client files from the kube-apiserver manifest (kube-apiserver restarted). */
  reload(): void {
    const f = manifestFlags(this.root, "kube-apiserver");
    const file = (n: string) => readFileSync(inRoot(this.root, need(f, n, "kube-apiserver.yaml")));
    this.tls = { ca: file("etcd-cafile"), cert: file("etcd-certfile"), key: file("etcd-keyfile") };
    for (const a of this.agents) a.destroy();
    this.agents = this.endpoints.map(() => new Agent({ keepAlive: true, maxSockets: 4 }));
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<LoadStats> {
    this.running = false;
    await this.loop;
    for (const a of this.agents) a.destroy();
    return this.stats;
  }

  private async run(): Promise<void> {
    for (let i = 0; this.running; i++) {
      const key = Buffer.from(`/kubepki/load/${i % 64}`).toString("base64");
      const value = Buffer.from(`v${i}`).toString("base64");
      try {
        await this.attempt(i, "/v3/kv/put", { key, value });
        const got = (await this.attempt(i + 1, "/v3/kv/range", { key })) as { kvs?: { value?: string }[] };
        if (got.kvs?.[0]?.value !== value) this.stats.mismatches++;
        this.stats.ops++;
      } catch (err) {
        this.stats.failedOps++;
        const kind = err instanceof OpError ? err.kind : "other";
        this.stats[kind].push(`op ${i}: ${(err as Error).message}`);
      }
      await sleep(this.pauseMs);
    }
  }

  /** One request, starting at member `start`, moving to the next member on a transient failure (at most 15 s). */
  private async attempt(start: number, path: string, body: unknown): Promise<unknown> {
    const deadline = Date.now() + 15_000;
    let lastMsg = "";
    for (let k = 0; Date.now() < deadline; k++) {
      const m = (start + k) % this.endpoints.length;
      try {
        const r = await httpsJson(`${this.endpoints[m]}${path}`, "POST", body, {
          ...this.tls,
          agent: this.agents[m],
        });
        if (r.status === 200) return r.body;
        lastMsg = `${this.endpoints[m]}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
        if (r.status < 500) throw new OpError("other", lastMsg);
      } catch (err) {
        if (err instanceof OpError) throw err;
        const e = err as NodeJS.ErrnoException;
        lastMsg = `${this.endpoints[m]}: ${e.code ?? ""} ${e.message}`;
        const kind = classify(err);
        if (kind !== "transient") throw new OpError(kind, lastMsg);
      }
      this.stats.retries++;
      this.stats.transient.push(lastMsg);
      await sleep(k % this.endpoints.length === this.endpoints.length - 1 ? 200 : 0);
    }
    throw new OpError("transient", `no member answered for 15 s: ${lastMsg}`);
  }
}

/** One put with a given client pair, for checking that a certificate is accepted or refused. */
export async function putWith(
  endpoint: string,
  tls: TlsClient,
): Promise<{ ok: true } | { ok: false; kind: Failure; message: string }> {
  try {
    const r = await httpsJson(
      `${endpoint}/v3/kv/put`,
      "POST",
      { key: Buffer.from("/kubepki/probe").toString("base64"), value: "eA==" },
      { ...tls, agent: false },
    );
    if (r.status === 200) return { ok: true };
    return { ok: false, kind: "other", message: `HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, kind: classify(err), message: `${e.code ?? ""} ${e.message}` };
  }
}
