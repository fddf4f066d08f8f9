// The README's "Three control planes, end to end", step by step with the README's commands (only
// paths and addresses adjusted): cp1, cp2 and cp3 are three --root folders advertising 127.0.0.1,
// 127.0.0.2 and 127.0.0.3 (all of 127/8 is loopback on Linux: no alias needed), each with its own
// stacked etcd member started from the etcd PKI kubepki made for that node, and its own `kubepki
// serve`. kubeadm is not installed here: `kubeadm init` / `kubeadm join` are skipped; what kubeadm
// join does to etcd (`member add`, then the new member joins the existing cluster) is done by hand.
// Run it alone (scripts/test.sh does, after the rest): it starts three etcd members and three replicas.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { denies, kubepkiAsync, nodeEtcdMember } from "./ha-peers.js";
import { freePort, kubepki, listFiles, openssl, PKI, tempDir } from "./helpers.js";
import { type EtcdMember, etcdctl } from "./peers/etcd.js";
import { type Serve, startServe, waitFor } from "./webhook-client.js";

const KUBEADM_YAML = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
controlPlaneEndpoint: cp.example.com:6443
`;

interface Node {
  name: string;
  ip: string;
  root: string;
  offline: string;
  client: number;
  peer: number;
  health: number;
}

describe("README: three control planes, end to end", { timeout: 120_000 }, () => {
  const dir = tempDir("kubepki-walk-");
  const yaml = join(dir, "kubeadm.yaml");
  const bundle = join(dir, "join.bundle");
  let nodes: Node[] = [];
  const members: EtcdMember[] = [];
  const replicas: Serve[] = [];
  let key = "";
  let jane = { sha: "", serial: "" };
  const at = (i: number) => () => nodes[i] as Node;
  const [cp1, cp2, cp3] = [at(0), at(1), at(2)];
  // etcd://HOST:PORT,... of the members that exist, this node's first ("put this node's member first").
  const store = (first: Node, count = nodes.length) => {
    const some = nodes.slice(0, count);
    return `etcd://${[first, ...some.filter((n) => n !== first)].map((n) => `${n.ip}:${n.client}`).join(",")}`;
  };
  const caOf = (n: Node, file: string) => join(n.root, PKI, file);
  const ctl = (args: string[]) =>
    etcdctl(
      `https://${cp1().ip}:${cp1().client}`,
      caOf(cp1(), "etcd/ca.crt"),
      caOf(cp1(), "etcd/healthcheck-client.crt"),
      caOf(cp1(), "etcd/healthcheck-client.key"),
      args,
    );

  before(async () => {
    writeFileSync(yaml, KUBEADM_YAML);
    // One client and one peer port, the same on every node's address (as 2379/2380 would be).
    const [client, peer] = [await freePort(), await freePort()];
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    nodes = [1, 2, 3].map((i) => ({
      name: `cp${i}`,
      ip: `127.0.0.${i}`,
      root: join(dir, `cp${i}`),
      offline: join(dir, `offline-cp${i}`),
      client,
      peer,
      health: ports[i - 1] as number,
    }));
  });
  after(async () => {
    for (const r of replicas) await r.stop();
    for (const m of members.reverse()) await m.kill("SIGTERM");
  });

  it("1. cp1: kubepki init, (kubeadm init skipped), kubepki init again changes nothing; cp1's etcd starts", async () => {
    const n = cp1();
    const base = ["--root", n.root, "--config", yaml, "--node-name", "cp1", "--advertise-address", n.ip];
    const first = kubepki(["init", "--root", n.root, "--offline-dir", n.offline, ...base.slice(2)]);
    assert.equal(first.status, 0, first.stderr);
    assert.ok(existsSync(join(n.offline, "super-admin.conf")), "cp1's break-glass is in its offline folder");
    // kubeadm init --config etc/kubernetes/kubepki/kubeadm-config.yaml: not available here, skipped.
    assert.match(
      readFileSync(join(n.root, "etc/kubernetes/kubepki/kubeadm-config.yaml"), "utf8"),
      /cp\.example\.com/,
    );
    const again = kubepki(["init", ...base]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /^kept\s+certificate\s+apiserver\s/m);
    assert.doesNotMatch(again.stdout, /^generated/m, "the second init keeps every file");
    // What kubeadm init's etcd static pod would run: a one-member cluster from cp1's own etcd PKI.
    const m = nodeEtcdMember(n.root, n, `cp1=https://${n.ip}:${n.peer}`, "new");
    members.push(m);
    await m.restart();
  });

  it("2. cp1: ledger migrate from cp1's SQLite to etcd (issues kubepki's etcd client pair; a second run adds nothing)", () => {
    const n = cp1();
    const args = [
      "ledger",
      "migrate",
      "--root",
      n.root,
      "--from",
      `sqlite:${join(n.root, "var/lib/kubepki/ledger.db")}`,
    ];
    const r = kubepki([...args, "--to", store(n, 1)]);
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout + r.stderr;
    const copied = Number(/copied (\d+) entries/.exec(out)?.[1]);
    assert.ok(copied > 10, out);
    assert.match(out, new RegExp(`${copied} new, .*; ${copied} fingerprints verified`));
    assert.equal(statSync(join(n.root, "etc/kubernetes/kubepki/etcd-client.key")).mode & 0o777, 0o600);
    const twice = kubepki([...args, "--to", store(n, 1)]);
    assert.equal(twice.status, 0, twice.stderr);
    assert.match(twice.stdout + twice.stderr, / 0 new, /);
  });

  it("3. cp1: join-bundle prints the certificate key once; the bundle is 0600 (scp: cp2 and cp3 read the same file)", () => {
    const r = kubepki(["join-bundle", "--root", cp1().root, "--out", bundle, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    key = JSON.parse(r.stdout).certificateKey;
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(statSync(bundle).mode & 0o777, 0o600);
  });

  it("4. cp2, cp3: init --join ... --certificate-key KEY --store etcd://(members so far); their etcd members join", async () => {
    for (const n of [cp2(), cp3()]) {
      const r = kubepki([
        ...["init", "--root", n.root, "--offline-dir", n.offline, "--config", yaml],
        ...["--node-name", n.name, "--advertise-address", n.ip],
        ...["--join", bundle, "--certificate-key", key, "--store", store(cp1(), members.length)],
      ]);
      assert.equal(r.status, 0, r.stderr);
      // "The offline folder receives nothing here unless the CA keys are kept offline."
      assert.deepEqual(existsSync(n.offline) ? readdirSync(n.offline) : [], []);
      // kubeadm join --control-plane, its etcd part: member add, then the member joins.
      // etcd refuses a member add until the last member has been connected for 5 s ("unhealthy
      // cluster"); kubeadm join retries too.
      const deadline = Date.now() + 20_000;
      let add = ctl(["member", "add", n.name, `--peer-urls=https://${n.ip}:${n.peer}`]);
      while (add.status !== 0 && /unhealthy cluster/.test(add.stderr) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        add = ctl(["member", "add", n.name, `--peer-urls=https://${n.ip}:${n.peer}`]);
      }
      assert.equal(add.status, 0, add.stderr);
      const soFar = [...nodes.slice(0, members.length), n].map((x) => `${x.name}=https://${x.ip}:${x.peer}`);
      const m = nodeEtcdMember(n.root, n, soFar.join(","), "existing");
      members.push(m);
      await m.restart();
    }
    // "Running it again changes nothing."
    const n = cp2();
    const again = kubepki([
      ...["init", "--root", n.root, "--offline-dir", n.offline, "--config", yaml],
      ...["--node-name", n.name, "--advertise-address", n.ip],
      ...["--join", bundle, "--certificate-key", key, "--store", store(n)],
    ]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /^kept\s+certificate\s+apiserver\s/m);
    assert.doesNotMatch(again.stdout, /^generated/m);
    rmSync(bundle);
    const list = ctl(["member", "list"]);
    assert.equal(list.stdout.trim().split("\n").length, 3, list.stdout);
    assert.doesNotMatch(list.stdout, /unstarted/);
  });

  it("cp2 and cp3: no super-admin.conf, no kubelet.conf, one break-glass in the shared ledger; their leaves verify against the shared CAs", () => {
    for (const n of [cp2(), cp3()]) {
      const files = listFiles(n.root);
      assert.ok(!files.some((f) => f.endsWith("super-admin.conf")), `${n.name}: ${files.join(" ")}`);
      assert.ok(!files.includes("etc/kubernetes/kubelet.conf"));
      const chains: [string, string[]][] = [
        ["ca.crt", ["apiserver.crt", "apiserver-kubelet-client.crt"]],
        ["front-proxy-ca.crt", ["front-proxy-client.crt"]],
        [
          "etcd/ca.crt",
          ["etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt", "apiserver-etcd-client.crt"],
        ],
      ];
      for (const [ca, leaves] of chains) {
        assert.deepEqual(
          readFileSync(caOf(n, ca)),
          readFileSync(caOf(cp1(), ca)),
          `${n.name} ${ca} is cp1's`,
        );
        for (const leaf of leaves) {
          const v = openssl(["verify", "-CAfile", caOf(cp1(), ca), caOf(n, leaf)]);
          assert.equal(v.status, 0, `${n.name} ${leaf}: ${v.stdout}${v.stderr}`);
        }
      }
      const san = openssl(["x509", "-in", caOf(n, "etcd/server.crt"), "-noout", "-ext", "subjectAltName"]);
      assert.match(san.stdout, new RegExp(`IP Address:${n.ip.replaceAll(".", "\\.")}`));
    }
    const ledger = kubepki(["ledger", "list", "--root", cp3().root, "--store", store(cp3()), "-o", "json"]);
    assert.equal(ledger.status, 0, ledger.stderr);
    const parsed = JSON.parse(ledger.stdout);
    const entries: { subjectO?: string[]; profile: string }[] = Array.isArray(parsed)
      ? parsed
      : parsed.entries;
    const masters = entries.filter((e) => e.subjectO?.includes("system:masters"));
    assert.deepEqual(
      masters.map((e) => e.profile),
      ["kubeconfig:super-admin.conf"],
      "one break-glass credential: cp1's",
    );
    assert.equal(entries.filter((e) => e.profile === "kubeconfig:kubelet.conf").length, 1);
  });

  it("5. every node: serve --setup-only, --print-static-pod carries --store, serve runs, /readyz on the health port", async () => {
    for (const n of nodes) {
      const setup = kubepki(["serve", "--root", n.root, "--store", store(n), "--setup-only"]);
      assert.equal(setup.status, 0, setup.stderr);
      const health = `${n.ip}:${n.health}`;
      const pod = kubepki([
        "serve",
        "--root",
        n.root,
        "--store",
        store(n),
        "--health-listen",
        health,
        "--print-static-pod",
      ]);
      assert.equal(pod.status, 0, pod.stderr);
      const command: string[] = parse(pod.stdout).spec.containers[0].command;
      assert.equal(command[command.indexOf("--store") + 1], store(n), command.join(" "));
      assert.equal(command[command.indexOf("--health-listen") + 1], health);
    }
    // A client credential to revoke in step 6 (issued before the replicas run: no file changes under them).
    const out = join(dir, "jane.kubeconfig");
    const r = kubepki([
      "issue",
      "client",
      "--root",
      cp1().root,
      "--store",
      store(cp1()),
      "--user",
      "jane",
      "--group",
      "dev",
      "--out",
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const text = r.stdout + r.stderr;
    jane = {
      sha: /credential id X509SHA256=([0-9a-f]{64})/.exec(text)?.[1] ?? "",
      serial: /serial ([0-9a-f]+)/.exec(text)?.[1] ?? "",
    };
    assert.ok(jane.sha && jane.serial, text);
    // The static pod's process, run directly (its --listen moved off 8443: three nodes share this host).
    for (const n of nodes) {
      replicas.push(
        await startServe(n.root, ["--store", store(n), "--health-listen", `${n.ip}:${n.health}`], n.ip),
      );
      const ready = await fetch(`http://${n.ip}:${n.health}/readyz`);
      const body = await ready.text();
      assert.equal(ready.status, 200, `${n.name}: ${body}`);
      assert.match(body, /^ok/, "curl -s http://127.0.0.1:8444/readyz      # ok");
    }
    for (const s of replicas)
      assert.equal(await denies(s, jane.sha), false, "jane is allowed before the revoke");
  });

  it("6. revoke on cp2 --store etcd://...: every replica denies within a second, every node's CRL lists the serial", async (t) => {
    const r = await kubepkiAsync([
      ...["revoke", "--root", cp2().root, "--store", store(cp2())],
      ...["--user", "jane", "--reason", "keyCompromise"],
    ]);
    assert.equal(r.status, 0, r.stderr);
    const t0 = Date.now();
    const waits = await Promise.all(
      replicas.map((s) => waitFor(async () => (await denies(s, jane.sha)) === true, 5000)),
    );
    t.diagnostic(
      `denied after ${waits.map((w, i) => `cp${i + 1} ${w} ms`).join(", ")} (from revoke's return)`,
    );
    for (const [i, w] of waits.entries()) assert.ok(w >= 0 && w <= 1000, `cp${i + 1} denied after ${w} ms`);
    const serial = new RegExp(`Serial Number: 0*${jane.serial.toUpperCase()}\\b`);
    const crls = await Promise.all(
      nodes.map(async (n) => {
        const w = await waitFor(
          async () => serial.test(openssl(["crl", "-in", caOf(n, "ca.crl"), "-noout", "-text"]).stdout),
          5000,
        );
        return w < 0 ? w : Date.now() - t0;
      }),
    );
    t.diagnostic(`CRL files listed the serial after ${crls.map((w, i) => `cp${i + 1} ${w} ms`).join(", ")}`);
    for (const [i, n] of nodes.entries()) {
      assert.ok((crls[i] ?? -1) >= 0, `${n.name}'s ca.crl lists ${jane.serial}`);
      const v = openssl(["crl", "-in", caOf(n, "ca.crl"), "-CAfile", caOf(n, "ca.crt"), "-noout"]);
      assert.equal(v.status, 0, v.stderr);
      assert.match(v.stderr + v.stdout, /verify OK/);
    }
    // cp1 remembers where its ledger went (step 2): a command without --store reads etcd, not the old file.
    const listed = kubepki(["ledger", "list", "--root", cp1().root, "--status", "revoked", "-o", "json"]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.ok(
      (JSON.parse(listed.stdout) as { subjectCN: string }[]).some((e) => e.subjectCN === "jane"),
      listed.stdout,
    );
  });
});
