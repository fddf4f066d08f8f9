import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { freePort, PKI, peerDir, run } from "../helpers.js";

export interface EtcdHandle {
  proc: ChildProcess;
  endpoint: string;
  log: () => string;
  stop: () => Promise<void>;
}

/** Starts Debian's etcd on loopback with kubeadm's TLS flags and the PKI under `root`. */
export async function startEtcd(root: string, extraArgs: string[] = []): Promise<EtcdHandle> {
  const pki = join(root, PKI, "etcd");
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `https://127.0.0.1:${client}`;
  const args = [
    "--name=cp1",
    `--data-dir=${join(peerDir("kubepki-etcd-"), "data")}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=https://127.0.0.1:${peer}`,
    `--initial-advertise-peer-urls=https://127.0.0.1:${peer}`,
    `--initial-cluster=cp1=https://127.0.0.1:${peer}`,
    `--cert-file=${pki}/server.crt`,
    `--key-file=${pki}/server.key`,
    `--trusted-ca-file=${pki}/ca.crt`,
    "--client-cert-auth=true",
    `--peer-cert-file=${pki}/peer.crt`,
    `--peer-key-file=${pki}/peer.key`,
    `--peer-trusted-ca-file=${pki}/ca.crt`,
    "--peer-client-cert-auth=true",
    ...extraArgs,
  ];
  const proc = spawn("etcd", args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stdout?.on("data", (d) => {
    log += d;
  });
  proc.stderr?.on("data", (d) => {
    log += d;
  });
  const deadline = Date.now() + 20_000;
  while (!/ready to serve client requests|serving client traffic securely/.test(log)) {
    if (proc.exitCode !== null) throw new Error(`etcd exited: ${log.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`etcd did not start: ${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    proc,
    endpoint,
    log: () => log,
    stop: async () => {
      if (proc.exitCode === null) {
        proc.kill("SIGTERM");
        await new Promise((r) => proc.once("exit", r));
      }
    },
  };
}

export function etcdctl(endpoint: string, caFile: string, cert: string, key: string, args: string[]) {
  return run(
    "etcdctl",
    [
      `--endpoints=${endpoint}`,
      `--cacert=${caFile}`,
      `--cert=${cert}`,
      `--key=${key}`,
      "--dial-timeout=3s",
      "--command-timeout=5s",
      ...args,
    ],
    {
      env: { ...process.env, ETCDCTL_API: "3" },
    },
  );
}

export interface EtcdMember {
  name: string;
  /** host:port of its client URL. */
  client: string;
  proc: ChildProcess;
  log: () => string;
  /** SIGKILL (or the signal given), waiting for the exit. */
  kill: (signal?: NodeJS.Signals) => Promise<void>;
  /** Starts it again with the same data folder (after kill). */
  restart: () => Promise<void>;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** etcd://a,b,c with the given member first. */
  url: (first?: number) => string;
  stop: () => Promise<void>;
}

/**
 * A three-member (or `size`) etcd cluster on loopback, with kubeadm's TLS flags and the PKI under
 * `root`, each member on its own client and peer ports and data folder. Stopped by PID.
 */
export async function startEtcdCluster(
  root: string,
  size = 3,
  extraArgs: string[] = [],
): Promise<EtcdCluster> {
  const pki = join(root, PKI, "etcd");
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initial = ports.map((p, i) => `m${i + 1}=https://127.0.0.1:${p.peer}`).join(",");
  const data = peerDir("kubepki-etcd-cluster-");
  const argsOf = (i: number) => {
    const p = ports[i] as { client: number; peer: number };
    return memberFlags({
      name: `m${i + 1}`,
      dataDir: join(data, `m${i + 1}`),
      client: `127.0.0.1:${p.client}`,
      peer: `https://127.0.0.1:${p.peer}`,
      initialCluster: initial,
      state: "new",
      token: "kubepki-test",
      pki,
    }).concat(extraArgs);
  };
  const members = ports.map((p, i) => member(`m${i + 1}`, `127.0.0.1:${p.client}`, argsOf(i)));
  await Promise.all(members.map((m) => m.restart()));
  return {
    members,
    url: (first = 0) =>
      `etcd://${[...members.slice(first), ...members.slice(0, first)].map((m) => m.client).join(",")}`,
    stop: async () => {
      await Promise.all(members.map((m) => m.kill("SIGTERM")));
    },
  };
}

/** One etcd process with these arguments, started by `restart()` (which waits until it serves clients). */
/** One member's flags as kubeadm's etcd manifest sets them: client and peer TLS from `pki` (the etcd folder). */
export function memberFlags(o: {
  name: string;
  dataDir: string;
  /** HOST:PORT */
  client: string;
  /** https://HOST:PORT */
  peer: string;
  initialCluster: string;
  state: "new" | "existing";
  token: string;
  pki: string;
}): string[] {
  return [
    `--name=${o.name}`,
    `--data-dir=${o.dataDir}`,
    `--listen-client-urls=https://${o.client}`,
    `--advertise-client-urls=https://${o.client}`,
    `--listen-peer-urls=${o.peer}`,
    `--initial-advertise-peer-urls=${o.peer}`,
    `--initial-cluster=${o.initialCluster}`,
    `--initial-cluster-state=${o.state}`,
    `--initial-cluster-token=${o.token}`,
    `--cert-file=${o.pki}/server.crt`,
    `--key-file=${o.pki}/server.key`,
    `--trusted-ca-file=${o.pki}/ca.crt`,
    "--client-cert-auth=true",
    `--peer-cert-file=${o.pki}/peer.crt`,
    `--peer-key-file=${o.pki}/peer.key`,
    `--peer-trusted-ca-file=${o.pki}/ca.crt`,
    "--peer-client-cert-auth=true",
    "--heartbeat-interval=50",
    "--election-timeout=500",
  ];
}

export function member(name: string, client: string, args: string[]): EtcdMember {
  let log = "";
  const m: EtcdMember = {
    name,
    client,
    proc: undefined as unknown as ChildProcess,
    log: () => log,
    kill: async (signal = "SIGKILL") => {
      const proc = m.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill(signal);
      await exited;
    },
    restart: async () => {
      log = "";
      const proc = spawn("etcd", args, { stdio: ["ignore", "pipe", "pipe"] });
      m.proc = proc;
      proc.stdout?.on("data", (d) => {
        log += d;
      });
      proc.stderr?.on("data", (d) => {
        log += d;
      });
      const deadline = Date.now() + 30_000;
      while (!/ready to serve client requests|serving client traffic securely/.test(log)) {
        if (proc.exitCode !== null) throw new Error(`etcd ${name} exited: ${log.slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`etcd ${name} did not start: ${log.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  return m;
}
