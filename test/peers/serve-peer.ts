import { type ChildProcess, spawn } from "node:child_process";
import { CLI, freePort } from "../helpers.js";
import { apiserverClient, type Client, call, sar } from "../webhook-client.js";

/**
 * The real `kubepki serve` (the built CLI) on a fixed loopback port, restartable, stopped by its PID;
 * and kube-apiserver's side of it: the webhook kubeconfig's CA and client pair as read when
 * kube-apiserver last started.
 */
export class ServePeer {
  private proc: ChildProcess | undefined;
  private logs = "";
  port = 0;

  constructor(readonly root: string) {}

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    this.logs = "";
    const proc = spawn(
      process.execPath,
      [CLI, "serve", "--root", this.root, "--listen", `127.0.0.1:${this.port}`],
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    this.proc = proc;
    proc.stderr?.on("data", (d) => {
      this.logs += d;
    });
    const deadline = Date.now() + 20_000;
    while (!/listening on/.test(this.logs)) {
      if (proc.exitCode !== null) throw new Error(`kubepki serve exited: ${this.logs.slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`kubepki serve did not listen: ${this.logs.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    process.kill(proc.pid ?? 0, "SIGTERM");
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/** kube-apiserver's webhook client as it reads etc/kubernetes/kubepki/webhook.kubeconfig at start. */
export function webhookClientOf(root: string): Client {
  return apiserverClient(root);
}

/** One SubjectAccessReview from kube-apiserver's side: the HTTP status, or the connection error. */
export async function webhookAnswer(c: Client): Promise<{ ok: boolean; detail: string }> {
  try {
    const r = await call(c, sar("v1", "jane"));
    const kind = r.status === 200 ? JSON.parse(r.body)?.kind : undefined;
    return { ok: kind === "SubjectAccessReview", detail: `HTTP ${r.status} ${r.body.slice(0, 200)}` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, detail: `${e.code ?? ""} ${e.message}` };
  }
}
