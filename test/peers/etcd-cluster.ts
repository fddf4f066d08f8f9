import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { type Agent, request } from "node:https";
import { join } from "node:path";
import { freePort, peerDir } from "../helpers.js";
import { type Flags, flag, inRoot, manifestFlags, need } from "./node-files.js";

/**
 * A three-member etcd (Debian's 3.4) TLS cluster on loopback, configured from the node's
 * `etc/kubernetes/manifests/etcd.yaml` as it is on disk at each member's (re)start: --cert-file,
 * --key-file, --trusted-ca-file, --client-crl-file and their --peer-* twins name files under the
 * root (every member uses this node's pairs; their SANs hold 127.0.0.1). Members are restarted one
 * at a time (`rollingRestart`), each waiting for the previous one to be healthy again.
 */

const TLS_FLAGS = [
  "cert-file",
  "key-file",
  "trusted-ca-file",
  "peer-cert-file",
  "peer-key-file",
  "peer-trusted-ca-file",
  "client-crl-file",
];
const BOOL_FLAGS = ["client-cert-auth", "peer-client-cert-auth"];

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc?: ChildProcess;
  /** This run's log; `past` keeps the runs before (a restart must not hide what a member logged). */
  log: string;
  past: string;
  starts: number;
}

/** The TLS arguments a member gets from the manifest, paths under the root. */
function tlsArgs(root: string, f: Flags): string[] {
  const args: string[] = [];
  for (const name of TLS_FLAGS) {
    const v = flag(f, name);
    if (v) args.push(`--${name}=${inRoot(root, v)}`);
  }
  for (const name of BOOL_FLAGS) {
    const v = flag(f, name);
    if (v !== undefined) args.push(`--${name}=${v === "" ? "true" : v}`);
  }
  return args;
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];

  constructor(readonly root: string) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  async init(size: number): Promise<void> {
    const base = peerDir("kubepki-etcd-cluster-");
    for (let i = 0; i < size; i++) {
      const [c, p] = [await freePort(), await freePort()];
      this.members.push({
        name: `m${i}`,
        clientUrl: `https://127.0.0.1:${c}`,
        peerUrl: `https://127.0.0.1:${p}`,
        dataDir: join(base, `m${i}`),
        log: "",
        past: "",
        starts: 0,
      });
    }
  }

  private args(m: EtcdMember): string[] {
    const f = manifestFlags(this.root, "etcd");
    need(f, "trusted-ca-file", "etcd.yaml");
    const cluster = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(",");
    return [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${cluster}`,
      "--initial-cluster-state=new",
      "--initial-cluster-token=kubepki-peers",
      "--heartbeat-interval=100",
      "--election-timeout=1000",
      "--logger=zap",
      ...tlsArgs(this.root, f),
    ];
  }

  /** Starts one member (re-reading the manifest) and waits until it serves clients. */
  async startMember(m: EtcdMember): Promise<void> {
    m.past += m.log;
    m.log = "";
    m.starts++;
    const proc = spawn("etcd", this.args(m), { stdio: ["ignore", "pipe", "pipe"] });
    m.proc = proc;
    const add = (d: Buffer) => {
      m.log += d;
    };
    proc.stdout?.on("data", add);
    proc.stderr?.on("data", add);
    const deadline = Date.now() + 30_000;
    while (!/ready to serve client requests|serving client traffic securely/.test(m.log)) {
      if (proc.exitCode !== null) throw new Error(`etcd ${m.name} exited: ${m.log.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`etcd ${m.name} did not start: ${m.log.slice(-2000)}`);
      await sleep(100);
    }
  }

  async start(size = 3): Promise<void> {
    await this.init(size);
    await Promise.all(this.members.map((m) => this.startMember(m)));
    for (const m of this.members) await this.waitHealthy(m);
  }

  async stopMember(m: EtcdMember): Promise<void> {
    const proc = m.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  }

  /** GET /health on a member with the healthcheck client pair the manifest's probe would use. */
  async waitHealthy(m: EtcdMember, timeoutMs = 30_000): Promise<void> {
    const pki = inRoot(this.root, "etc/kubernetes/pki/etcd");
    const f = manifestFlags(this.root, "etcd");
    const tls = {
      ca: readFileSync(inRoot(this.root, need(f, "trusted-ca-file", "etcd.yaml"))),
      cert: readFileSync(join(pki, "healthcheck-client.crt")),
      key: readFileSync(join(pki, "healthcheck-client.key")),
    };
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const r = await httpsJson(`${m.clientUrl}/health`, "GET", undefined, { ...tls, agent: false });
        if (r.status === 200 && (r.body as { health?: string }).health === "true") return;
        last = JSON.stringify(r.body);
      } catch (err) {
        last = String(err);
      }
      await sleep(200);
    }
    throw new Error(`etcd ${m.name} not healthy: ${last}`);
  }

  /** Restarts each member in turn (SIGTERM, start with the files now on disk, healthy) before the next. */
  async rollingRestart(between?: () => Promise<void>): Promise<void> {
    for (const m of this.members) {
      await this.stopMember(m);
      await this.startMember(m);
      await this.waitHealthy(m);
      await between?.();
    }
  }

  /** Lines of the members' logs where a peer or client was refused for its certificate. */
  tlsRejections(): string[] {
    return this.members.flatMap((m) =>
      `${m.past}${m.log}`
        .split("\n")
        .filter((l) =>
          /x509:|bad certificate|unknown certificate authority|certificate signed by unknown|provide a certificate/i.test(
            l,
          ),
        )
        .map((l) => `${m.name}: ${l.slice(0, 400)}`),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => this.stopMember(m)));
  }
}

export async function startEtcdCluster(root: string, size = 3): Promise<EtcdCluster> {
  const c = new EtcdCluster(root);
  try {
    await c.start(size);
  } catch (err) {
    await c.stop();
    throw err;
  }
  return c;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface TlsClient {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  agent?: Agent | false;
}

/** One JSON request to etcd's gRPC gateway (or /health); rejects with the socket's error. */
export function httpsJson(
  url: string,
  method: string,
  body: unknown,
  tls: TlsClient,
  timeoutMs = 5000,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const r = request(
      url,
      { method, ...tls, timeout: timeoutMs, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { raw: text } });
          }
        });
        res.on("error", reject);
      },
    );
    r.on("timeout", () => r.destroy(Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" })));
    r.on("error", reject);
    r.end(data);
  });
}
