import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EtcdLedger } from "../src/ledger/etcd.js";
import type { LedgerEntry } from "../src/ledger/store.js";
import { storeTarget } from "../src/ledger/target.js";
import { sha256Hex } from "../src/x509/fingerprint.js";
import { decodePem } from "../src/x509/pem.js";
import { CLI, PKI, peerDir, tempDir } from "./helpers.js";
import { type EtcdMember, member, memberFlags } from "./peers/etcd.js";
import { call, type Serve, sar } from "./webhook-client.js";

/** The etcd target of a node tree, as the CLI builds it from --store. */
export function targetOf(root: string, url: string, prefix = "/kubepki/") {
  const t = storeTarget({ store: url, etcdPrefix: prefix }, "", {
    cacert: join(root, PKI, "etcd/ca.crt"),
    cert: join(root, "etc/kubernetes/kubepki/etcd-client.crt"),
    key: join(root, "etc/kubernetes/kubepki/etcd-client.key"),
  });
  if (t.kind !== "etcd") throw new Error("not etcd");
  return t;
}

/** The same tree as another control-plane node: its own root (and CRL files), the same CAs. */
export function copyNode(root: string): string {
  const dir = join(tempDir("kubepki-ha-node-"), "node");
  cpSync(root, dir, { recursive: true });
  return dir;
}

/** `count` client entries of the cluster CA (fingerprints and serials only: the webhook matches fingerprints, the CRL lists serials). */
export function clientEntries(root: string, count: number, tag: string): LedgerEntry[] {
  const ca = decodePem(readFileSync(join(root, PKI, "ca.crt"), "utf8"), "ca")[0];
  if (!ca) throw new Error("no CA");
  const issuer = sha256Hex(ca.der);
  const now = new Date();
  return Array.from({ length: count }, (_, i) => ({
    sha256: randomBytes(32).toString("hex"),
    // 8 bytes, first in 0x10..0x7f: positive, no leading zero (openssl prints it as is).
    serial: `${(16 + ((randomBytes(1)[0] ?? 0) % 112)).toString(16)}${randomBytes(7).toString("hex")}`,
    issuerSha256: issuer,
    subjectCN: `${tag}-${i}`,
    subjectO: ["dev"],
    sans: [],
    notBefore: now.toISOString(),
    notAfter: new Date(now.getTime() + 86_400_000).toISOString(),
    profile: "client",
    source: "issued",
    status: "active",
    recordedAt: now.toISOString(),
  }));
}

export async function recordEntries(root: string, url: string, entries: LedgerEntry[]): Promise<void> {
  const store = await EtcdLedger.open(targetOf(root, url), "existing");
  try {
    await store.record(entries);
  } finally {
    await store.close();
  }
}

/** A CLI run that does not block the test process (several at once). */
export function kubepkiAsync(
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("exit", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Whether the replica denies this credential id (undefined: no answer). */
export async function denies(s: Serve, sha: string): Promise<boolean | undefined> {
  try {
    const r = await call(s.client, sar("v1", "someone", `X509SHA256=${sha}`));
    return r.status === 200 ? JSON.parse(r.body).status.denied === true : undefined;
  } catch {
    return undefined;
  }
}

export async function readyz(s: Serve): Promise<number> {
  try {
    return (await call(s.client, "", { method: "GET", path: "/readyz" })).status;
  } catch {
    return 0;
  }
}

/**
 * This control plane's stacked etcd member, as kubeadm's manifest would run it: the node's own
 * server and peer pairs (their SANs hold its address), the shared etcd CA, the CRL `kubepki` keeps
 * (`--client-crl-file`, which kubepki's kubeadm-config adds). `initialCluster` lists the members so
 * far, this one last; `state` is "new" for the first member, "existing" for one `member add`ed.
 */
export function nodeEtcdMember(
  root: string,
  node: { name: string; ip: string; client: number; peer: number },
  initialCluster: string,
  state: "new" | "existing",
): EtcdMember {
  const pki = join(root, PKI, "etcd");
  const client = `${node.ip}:${node.client}`;
  return member(
    node.name,
    client,
    memberFlags({
      name: node.name,
      dataDir: join(peerDir(`kubepki-etcd-${node.name}-`), "data"),
      client,
      peer: `https://${node.ip}:${node.peer}`,
      initialCluster,
      state,
      token: "kubepki-walkthrough",
      pki,
    }).concat(`--client-crl-file=${pki}/ca.crl`),
  );
}
