import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { CLI, freePort } from "./helpers.js";
import { type Family, parsePrometheusText } from "./prom-text.js";

export interface RunningCli {
  proc: ChildProcess;
  url: string;
  events: string;
  stderr: () => string;
  metrics: () => Promise<Map<string, Family>>;
  eventLines: () => Record<string, unknown>[];
  stop: () => Promise<void>;
}

/** `kubepki watch` as its own process on a free loopback port; events go to <root>/var/log/kubepki. */
export async function startWatchCli(root: string, extra: string[] = []): Promise<RunningCli> {
  const port = await freePort();
  const events = join(root, "var/log/kubepki/events.jsonl");
  mkdirSync(join(root, "var/log/kubepki"), { recursive: true });
  const proc = spawn(
    process.execPath,
    [CLI, "watch", "--root", root, "--listen", `127.0.0.1:${port}`, "--events", events, ...extra],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
  );
  let err = "";
  proc.stderr?.on("data", (d) => {
    err += d;
  });
  const deadline = Date.now() + 20_000;
  while (!err.includes("/metrics")) {
    if (proc.exitCode !== null) throw new Error(`kubepki watch exited ${proc.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`kubepki watch did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    url,
    events,
    stderr: () => err,
    metrics: async () => parsePrometheusText(await (await fetch(`${url}/metrics`)).text()),
    eventLines: () => readLines(events),
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
    },
  };
}

export function readLines(file: string): Record<string, unknown>[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Polls until `check` returns a value, or fails after `ms`; returns the value and how long it took. */
export async function within<T>(
  ms: number,
  check: () => Promise<T | undefined>,
): Promise<{ value: T; took: number }> {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return { value, took: Date.now() - start };
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What an independent reader (node:crypto, not kubepki's parser) finds: one row per certificate. */
export interface Expected {
  filepath: string;
  serial: string;
  subjectCN: string;
  issuerCN: string;
  notAfter: number;
  notBefore: number;
  embedded?: string;
}

const cn = (dn: string) => /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? "";

function certsIn(pem: string): X509Certificate[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map(
    (m) => new X509Certificate(m[0]),
  );
}

function row(c: X509Certificate, filepath: string, embedded?: string): Expected {
  return {
    filepath,
    serial: BigInt(`0x${c.serialNumber}`).toString(10),
    subjectCN: cn(c.subject),
    issuerCN: cn(c.issuer),
    notAfter: Math.floor(new Date(c.validTo).getTime() / 1000),
    notBefore: Math.floor(new Date(c.validFrom).getTime() / 1000),
    embedded,
  };
}

function walk(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => !e.isDirectory())
      .map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

/** Every certificate of a kubeadm tree: PKI files, the kubelet's, and those embedded in /etc/kubernetes/*.conf. */
export function expectedCerts(root: string): Expected[] {
  const out: Expected[] = [];
  for (const f of [...walk(join(root, "etc/kubernetes/pki")), ...walk(join(root, "var/lib/kubelet/pki"))]) {
    if (!/\.(crt|pem)$/.test(f) || /kubelet-client-\d[^/]*\.pem$/.test(f)) continue;
    // The kubelet's links are absolute, as on the node: resolved inside the root.
    const real = lstatSync(f).isSymbolicLink() ? join(root, readlinkSync(f)) : f;
    for (const c of certsIn(readFileSync(real, "utf8"))) out.push(row(c, f.slice(root.length)));
  }
  for (const f of walk(join(root, "etc/kubernetes")).filter((p) =>
    /^[^/]+\.conf$/.test(p.slice(root.length + 16)),
  )) {
    const doc = parse(readFileSync(f, "utf8")) as {
      clusters?: { name: string; cluster: Record<string, string> }[];
      users?: { name: string; user: Record<string, string> }[];
    };
    const b64 = (v?: string) => (v ? Buffer.from(v, "base64").toString("utf8") : "");
    for (const c of doc.clusters ?? [])
      for (const x of certsIn(b64(c.cluster["certificate-authority-data"])))
        out.push(row(x, f.slice(root.length), `cluster/${c.name}`));
    for (const u of doc.users ?? [])
      for (const x of certsIn(b64(u.user["client-certificate-data"])).slice(0, 1))
        out.push(row(x, f.slice(root.length), `user/${u.name}`));
  }
  return out;
}
