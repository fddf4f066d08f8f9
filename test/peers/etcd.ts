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
