import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildTree, freePort, PKI, peerDir, run } from "./helpers.js";

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

describe("a real etcd enforces the etcd PKI init wrote", () => {
  let root: string;
  let etcd: EtcdHandle;
  before(async () => {
    ({ root } = await buildTree());
    etcd = await startEtcd(root);
  });
  after(async () => {
    await etcd?.stop();
  });

  it("serves etcdctl with apiserver-etcd-client (and the healthcheck client)", () => {
    const ca = join(root, PKI, "etcd/ca.crt");
    const c = (b: string) => [join(root, PKI, `${b}.crt`), join(root, PKI, `${b}.key`)] as const;
    const put = etcdctl(etcd.endpoint, ca, ...c("apiserver-etcd-client"), ["put", "/kubepki/test", "ok"]);
    assert.equal(put.status, 0, put.stderr);
    const get = etcdctl(etcd.endpoint, ca, ...c("etcd/healthcheck-client"), [
      "get",
      "/kubepki/test",
      "--print-value-only",
    ]);
    assert.equal(get.status, 0, get.stderr);
    assert.equal(get.stdout.trim(), "ok");
  });

  it("refuses a client certificate of the cluster CA", () => {
    const ca = join(root, PKI, "etcd/ca.crt");
    const r = etcdctl(
      etcd.endpoint,
      ca,
      join(root, PKI, "apiserver-kubelet-client.crt"),
      join(root, PKI, "apiserver-kubelet-client.key"),
      ["get", "/kubepki/test"],
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /certificate|deadline exceeded|context deadline|connection/i);
  });
});
