import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { parse } from "yaml";
import { CLI, freePort } from "./helpers.js";

export interface Client {
  url: URL;
  ca: string;
  cert?: string;
  key?: string;
}

/** kube-apiserver's side: the webhook kubeconfig kubepki wrote, its paths taken under the root. */
export function apiserverClient(root: string): Client {
  const kc = parse(readFileSync(join(root, "etc/kubernetes/kubepki/webhook.kubeconfig"), "utf8"));
  const cluster = kc.clusters[0].cluster;
  const user = kc.users[0].user;
  const f = (p: string) => readFileSync(join(root, p), "utf8");
  return {
    url: new URL(cluster.server),
    ca: f(cluster["certificate-authority"]),
    cert: f(user["client-certificate"]),
    key: f(user["client-key"]),
  };
}

export function call(
  c: Client,
  body: string,
  opts: { method?: string; path?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: c.url.hostname,
        port: c.url.port,
        path: opts.path ?? c.url.pathname,
        method: opts.method ?? "POST",
        ca: c.ca,
        cert: c.cert,
        key: c.key,
        servername: "localhost",
        agent: false,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let data = "";
        res.on("data", (d) => {
          data += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A SubjectAccessReview shaped as kube-apiserver sends it (v1beta1 spells groups "group"). */
export function sar(version: "v1" | "v1beta1", user: string, credentialId?: string): string {
  const groups = ["dev", "system:authenticated"];
  return JSON.stringify({
    apiVersion: `authorization.k8s.io/${version}`,
    kind: "SubjectAccessReview",
    spec: {
      resourceAttributes: {
        namespace: "default",
        verb: "get",
        group: "",
        version: "v1",
        resource: "secrets",
        name: "db",
      },
      user,
      ...(version === "v1" ? { groups } : { group: groups }),
      ...(credentialId ? { extra: { "authentication.kubernetes.io/credential-id": [credentialId] } } : {}),
    },
  });
}

export async function waitFor(pred: () => Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await pred()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 25));
  }
  return -1;
}

export interface Serve {
  proc: ChildProcess;
  port: number;
  client: Client;
  logs: () => string;
  /** SIGTERM; resolves with how long the process took to exit. */
  stop: () => Promise<number>;
}

/** `kubepki serve` as a real process on a free loopback port (of `host`, a 127/8 address), once it listens. */
export async function startServe(root: string, extra: string[] = [], host = "127.0.0.1"): Promise<Serve> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [CLI, "serve", "--root", root, "--listen", `${host}:${port}`, ...extra],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  let logs = "";
  proc.stderr?.on("data", (d) => {
    logs += d;
  });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const ready = await waitFor(async () => /listening on/.test(logs) || proc.exitCode !== null, 20_000);
  assert.ok(ready >= 0 && proc.exitCode === null, logs);
  return {
    proc,
    port,
    client: apiserverClient(root),
    logs: () => logs,
    stop: async () => {
      const t0 = Date.now();
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await exited;
      return Date.now() - t0;
    },
  };
}
