import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { type RunningServe, startServe } from "../src/app/serve.js";
import { type ServeDeployRequest, serveDeployment } from "../src/app/serve-deploy.js";
import type { KubepkiError } from "../src/errors.js";
import { treePaths } from "../src/pki/paths.js";
import { isLoopback, parseHealthListen } from "../src/revoke/health-server.js";
import { writablePaths } from "../src/revoke/serve-deploy.js";
import { CLI, freePort, initTree, kubepki, run, snapshot, tempDir } from "./helpers.js";
import { apiserverClient, call, waitFor } from "./webhook-client.js";

const get = async (url: string, method = "GET") => {
  const r = await fetch(url, { method });
  return { status: r.status, body: await r.text() };
};

describe("serve --health-listen: the health port", () => {
  let root: string;
  let serve: RunningServe;
  let health: string;
  let readiness: { ok: boolean; reason?: string } = { ok: true };

  before(async () => {
    ({ root } = await initTree());
    const port = await freePort();
    const hp = await freePort();
    serve = await startServe({
      root,
      listen: `127.0.0.1:${port}`,
      healthListen: `127.0.0.1:${hp}`,
      ready: () => ({ ok: readiness.ok, reason: readiness.reason }),
      log: () => {},
    });
    health = `http://127.0.0.1:${hp}`;
    assert.equal(serve.healthUrl, health);
  });
  after(() => serve?.close());

  it("/healthz, /readyz and /metrics over plain HTTP, nothing secret in them", async () => {
    assert.deepEqual(await get(`${health}/healthz`), { status: 200, body: "ok" });
    assert.deepEqual(await get(`${health}/readyz`), { status: 200, body: "ok" });
    const m = await get(`${health}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.body, /^kubepki_revoked_certificates \d+$/m);
    assert.match(m.body, /^kubepki_ledger_healthy 1$/m);
    assert.doesNotMatch(m.body, /X509SHA256|BEGIN|PRIVATE|[0-9a-f]{64}/);
  });

  it("the readiness hook fails /readyz (503, with its reason) on both ports, and recovers", async () => {
    readiness = { ok: false, reason: "etcd: no answer for 31s (--max-staleness 30s)" };
    assert.deepEqual(await get(`${health}/readyz`), { status: 503, body: readiness.reason });
    const mtls = await call(apiserverClient(root), "", { method: "GET", path: "/readyz" });
    assert.equal(mtls.status, 503);
    assert.equal(mtls.body, readiness.reason);
    assert.equal((await get(`${health}/healthz`)).status, 200, "liveness is not readiness");
    readiness = { ok: true };
    assert.equal((await get(`${health}/readyz`)).status, 200);
    readiness = undefined as unknown as { ok: boolean }; // a hook that throws is "not ready", not a 500
    const thrown = await get(`${health}/readyz`);
    assert.equal(thrown.status, 503);
    assert.match(thrown.body, /^readiness check failed: /);
    readiness = { ok: true };
  });

  it("serves nothing else: /authorize is 404 there, POST 405", async () => {
    const r = await fetch(`${health}/authorize`, { method: "POST", body: "{}" });
    assert.equal(r.status, 404);
    assert.equal((await get(`${health}/`)).status, 404);
    assert.equal((await get(`${health}/healthz`, "POST")).status, 405);
    assert.equal((await get(`${health}/healthz`, "HEAD")).status, 200);
  });

  it("a health port in use: exit 3, and the webhook port is released", async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const taken = (busy.address() as { port: number }).port;
    const port = await freePort();
    await assert.rejects(
      startServe({ root, listen: `127.0.0.1:${port}`, healthListen: `127.0.0.1:${taken}`, log: () => {} }),
      (e: KubepkiError) => e.exitCode === 3 && /--health-listen .* address in use/.test(e.message),
    );
    busy.close();
    const again = createServer();
    await new Promise<void>((r, j) => again.once("error", j).listen(port, "127.0.0.1", r));
    again.close();
  });
});

describe("health address: loopback unless said otherwise", () => {
  it("loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"])
      assert.ok(isLoopback(h), h);
    for (const h of ["0.0.0.0", "::", "10.0.0.10", "::ffff:10.0.0.1", "example.com"])
      assert.ok(!isLoopback(h), h);
  });

  it("a non-loopback address is refused (exit 2, nothing written) without --health-allow-remote; with it, a warning", async () => {
    const { root } = await initTree();
    const before = snapshot(root);
    const r = kubepki([
      "serve",
      "--root",
      root,
      "--listen",
      "127.0.0.1:1",
      "--health-listen",
      "0.0.0.0:8444",
    ]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /not a loopback address.*--health-allow-remote/s);
    assert.deepEqual(snapshot(root), before);
    assert.throws(() => parseHealthListen("10.0.0.10"), /needs HOST:PORT/);
    const ok = parseHealthListen("10.0.0.10:8444", true);
    assert.deepEqual(ok.listen, { host: "10.0.0.10", port: 8444 });
    assert.match(ok.warnings[0] ?? "", /plain HTTP without authentication and reachable from other hosts/);
  });

  it("the CLI serves the health port and stops on SIGTERM", async () => {
    const { root } = await initTree();
    const [port, hp] = [await freePort(), await freePort()];
    const args = [
      "serve",
      "--root",
      root,
      "--listen",
      `127.0.0.1:${port}`,
      "--health-listen",
      `127.0.0.1:${hp}`,
    ];
    const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: "1" } });
    let logs = "";
    proc.stderr.on("data", (d) => {
      logs += d;
    });
    const up = await waitFor(
      async () => /health on http:\/\/127\.0\.0\.1/.test(logs) || proc.exitCode !== null,
      20_000,
    );
    assert.ok(up >= 0 && proc.exitCode === null, logs);
    assert.deepEqual(await get(`http://127.0.0.1:${hp}/healthz`), { status: 200, body: "ok" });
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    assert.equal(await exited, 0);
  });
});

describe("serve --print-static-pod and --print-systemd-unit", () => {
  const print = (...flags: string[]) => {
    const r = kubepki(["serve", "--root", "/", "--health-listen", "127.0.0.1:9444", ...flags]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };

  it("the static pod: host network, probes on the health port, /etc/kubernetes read-only but what serve writes", () => {
    const pod = parse(print("--print-static-pod", "--image", "registry.example/node:24"));
    assert.equal(pod.kind, "Pod");
    assert.equal(pod.metadata.namespace, "kube-system");
    assert.equal(pod.spec.hostNetwork, true);
    const [c] = pod.spec.containers;
    assert.equal(c.image, "registry.example/node:24");
    assert.deepEqual(c.command.slice(2, 9), [
      "serve",
      "--root",
      "/",
      "--listen",
      "127.0.0.1:8443",
      "--health-listen",
      "127.0.0.1:9444",
    ]);
    for (const [probe, path] of [
      ["startupProbe", "/healthz"],
      ["livenessProbe", "/healthz"],
      ["readinessProbe", "/readyz"],
    ]) {
      const g = c[probe as string].httpGet;
      assert.deepEqual([g.host, g.port, g.path, g.scheme], ["127.0.0.1", 9444, path, "HTTP"], probe);
    }
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    const volumes = new Map(pod.spec.volumes.map((v: { name: string }) => [v.name, v]));
    const writable = ["/etc/kubernetes/kubepki", "/var/lib/kubepki", "/etc/kubernetes/pki", "/tmp"];
    for (const m of c.volumeMounts) {
      assert.equal(m.readOnly, !writable.includes(m.mountPath), `${m.mountPath} readOnly`);
      const v = volumes.get(m.name) as { hostPath?: { path: string } };
      if (v.hostPath && m.mountPath !== "/opt/kubepki") assert.equal(v.hostPath.path, m.mountPath);
    }
    assert.deepEqual(
      c.volumeMounts.map((m: { mountPath: string }) => m.mountPath).sort(),
      ["/etc/kubernetes", ...writable, "/opt/kubepki"].sort(),
    );
    assert.equal(
      c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === "/etc/kubernetes").readOnly,
      true,
    );
  });

  it("the systemd unit: hardened, writable paths only, and systemd-analyze verify accepts it", () => {
    const unit = print("--print-systemd-unit");
    const line = (key: string) => unit.match(new RegExp(`^${key}=(.*)$`, "m"))?.[1];
    assert.match(
      line("ExecStart") ?? "",
      / serve --root \/ --listen 127\.0\.0\.1:8443 --health-listen 127\.0\.0\.1:9444$/,
    );
    assert.equal(line("ProtectSystem"), "strict");
    assert.equal(line("NoNewPrivileges"), "yes");
    assert.equal(line("CapabilityBoundingSet"), "");
    assert.equal(line("ReadWritePaths"), "/etc/kubernetes/kubepki /var/lib/kubepki /etc/kubernetes/pki");
    assert.equal(line("PrivateTmp"), "yes");
    assert.equal(line("Restart"), "always");
    const file = join(tempDir(), "kubepki-serve.service");
    writeFileSync(file, unit);
    const v = run("systemd-analyze", ["verify", file]);
    if (v.error) return; // systemd-analyze is not installed here
    assert.equal(v.status, 0, `${v.stdout}${v.stderr}`);
    assert.doesNotMatch(v.stderr, /kubepki-serve\.service/, v.stderr);
  });

  it("every serve flag is passed on (a store's too), paths made absolute, the offline folder not", async () => {
    const r = await serveDeployment({
      kind: "systemd-unit",
      root: "/",
      state: "rel/state",
      allowedCn: ["a", "b"],
      denyRevokedUsers: true,
      offlineDir: "/mnt/offline",
      ...{ store: "etcd://10.0.0.11:2379,10.0.0.12:2379", etcdCacert: "rel/ca.crt", maxStaleness: 30_000 },
    } as ServeDeployRequest);
    const exec = r.text.match(/^ExecStart=.* serve (.*)$/m)?.[1] ?? "";
    assert.equal(
      exec,
      `--root / --listen 127.0.0.1:8443 --health-listen 127.0.0.1:8444 --state ${resolve("rel/state")} --allowed-cn a --allowed-cn b --deny-revoked-users --store etcd://10.0.0.11:2379,10.0.0.12:2379 --etcd-cacert ${resolve("rel/ca.crt")} --max-staleness 30000ms`,
    );
    assert.match(r.text, new RegExp(`^ReadWritePaths=.* ${resolve("rel/state")}( |$)`, "m"));
  });

  it("refusals: both at once, a non-loopback health address (exit 2)", () => {
    const both = kubepki(["serve", "--root", "/", "--print-systemd-unit", "--print-static-pod"]);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /one at a time/);
    const remote = kubepki([
      "serve",
      "--root",
      "/",
      "--health-listen",
      "10.0.0.10:8444",
      "--print-static-pod",
    ]);
    assert.equal(remote.status, 2);
    const allowed = kubepki([
      "serve",
      "--root",
      "/",
      "--health-listen",
      "10.0.0.10:8444",
      "--health-allow-remote",
      "--print-static-pod",
    ]);
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stderr, /warning: .*reachable from other hosts/);
    assert.equal(parse(allowed.stdout).spec.containers[0].readinessProbe.httpGet.host, "10.0.0.10");
  });

  it("serve runs with the tree read-only but for the paths the unit and pod make writable (mount namespace)", async () => {
    const { root } = await initTree();
    const paths = writablePaths(treePaths(root));
    const [port, hp] = [await freePort(), await freePort()];
    const script = [
      "set -e",
      `mount --bind ${root} ${root} && mount -o remount,ro,bind ${root}`,
      ...paths.map((d) => `mount --bind ${d} ${d} && mount -o remount,rw,bind ${d}`),
      `! touch ${root}/etc/kubernetes/probe 2>/dev/null`,
      `${process.execPath} ${CLI} serve --root ${root} --listen 127.0.0.1:${port} --health-listen 127.0.0.1:${hp} &`,
      "pid=$!",
      `for i in $(seq 100); do ${process.execPath} -e "fetch('http://127.0.0.1:${hp}/readyz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))" && break; sleep 0.2; done`,
      `${process.execPath} -e "fetch('http://127.0.0.1:${hp}/readyz').then(r=>r.text()).then(t=>console.log('readyz:'+t))"`,
      "kill -TERM $pid; wait $pid",
    ].join("\n");
    const r = run("unshare", ["-m", "bash", "-c", script], { env: { ...process.env, NO_COLOR: "1" } });
    if (r.error || /unshare failed|Operation not permitted/.test(r.stderr)) return; // no mount namespace here
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /readyz:ok/);
    assert.match(r.stderr, /issued .*webhook\.crt/);
  });
});
