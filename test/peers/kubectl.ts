import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse, stringify } from "yaml";
import { peerDir } from "../helpers.js";

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the stand-ins answer from this process). */
export function runAsync(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 60_000,
): Promise<Ran> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const KUBECTL = "/usr/bin/kubectl";
const cacheDir = peerDir("kubepki-kubectl-cache-");

/** The real kubectl against `server` (the stand-in), with a kubeconfig and nothing from $HOME. */
export function kubectl(kubeconfig: string, server: string, args: string[]): Promise<Ran> {
  const env = { ...process.env, KUBECONFIG: kubeconfig, HOME: cacheDir };
  return runAsync(
    KUBECTL,
    [
      `--kubeconfig=${kubeconfig}`,
      `--server=${server}`,
      `--cache-dir=${cacheDir}`,
      "--request-timeout=10s",
      ...args,
    ],
    env,
  );
}

/** A service-account token with kubectl: no kubeconfig, the CA file given, the token as a flag. */
export function kubectlWithToken(
  caFile: string,
  server: string,
  token: string,
  args: string[],
): Promise<Ran> {
  const empty = join(peerDir("kubepki-kubectl-empty-"), "config");
  writeFileSync(empty, "apiVersion: v1\nkind: Config\n", { mode: 0o600 });
  return runAsync(KUBECTL, [
    `--kubeconfig=${empty}`,
    `--server=${server}`,
    `--certificate-authority=${caFile}`,
    `--token=${token}`,
    `--cache-dir=${cacheDir}`,
    "--request-timeout=10s",
    ...args,
  ]);
}

/**
 * A kubeconfig of the node usable from the test: one that names files (kubeadm's kubelet.conf names
 * /var/lib/kubelet/pki/kubelet-client-current.pem) gets a copy with those paths under the root; one
 * with everything embedded is used as it is.
 */
export function kubeconfigForRoot(root: string, file: string): string {
  const cfg = parse(readFileSync(file, "utf8"));
  let changed = false;
  const fix = (o: Record<string, unknown> | undefined, key: string) => {
    const v = o?.[key];
    if (o && typeof v === "string" && isAbsolute(v)) {
      o[key] = join(root, v);
      changed = true;
    }
  };
  for (const c of cfg?.clusters ?? []) fix(c.cluster, "certificate-authority");
  for (const u of cfg?.users ?? []) {
    fix(u.user, "client-certificate");
    fix(u.user, "client-key");
  }
  if (!changed) return file;
  const copy = join(peerDir("kubepki-kubeconfig-"), "config");
  writeFileSync(copy, stringify(cfg), { mode: 0o600 });
  return copy;
}

/** `kubectl auth whoami -o json`: the user name the server saw, or the failure. */
export async function whoami(
  kubeconfig: string,
  server: string,
): Promise<{ user?: string; groups?: string[]; ran: Ran }> {
  const ran = await kubectl(kubeconfig, server, ["auth", "whoami", "-o", "json"]);
  if (ran.status !== 0) return { ran };
  const info = JSON.parse(ran.stdout)?.status?.userInfo;
  return { user: info?.username, groups: info?.groups, ran };
}
