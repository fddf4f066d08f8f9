import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import { openLedger } from "../src/ledger/record.js";
import { treePaths } from "../src/pki/paths.js";
import { issueClient } from "../src/revoke/issue-client.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { kubeadmStyleCa, signWith, writeManifests } from "./fixtures.js";
import { CLI, initArgs, initTree, kubepki, openssl, PKI, snapshot, tempDir } from "./helpers.js";
import { call, sar, startServe, waitFor } from "./webhook-client.js";

const LEDGER = "var/lib/kubepki/ledger.db";
const json = (args: string[]) => {
  const r = kubepki([...args, "-o", "json"]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
};
const issue = (root: string, user: string, extra: string[] = []) =>
  json([
    "issue",
    "client",
    "--root",
    root,
    "--user",
    user,
    "--out",
    join(tempDir(), `${user}.conf`),
    ...extra,
  ]);
const revoke = (root: string, ...args: string[]) =>
  kubepki(["revoke", "--root", root, "--reason", "keyCompromise", ...args]);
const crlSerials = (path: string) => {
  const t = openssl(["crl", "-inform", "DER", "-in", path, "-noout", "-text"]);
  assert.equal(t.status, 0, t.stderr);
  return {
    number: Number(/CRL Number: \n\s+(\d+)/.exec(t.stdout)?.[1]),
    serials: [...t.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]),
  };
};
const rmLedger = (root: string) => {
  for (const s of ["", "-wal", "-shm"]) rmSync(join(root, `${LEDGER}${s}`), { force: true });
};

describe("the revoked set never silently shrinks", () => {
  it("only init and ledger init create a ledger: every other command refuses a missing one (exit 3)", async () => {
    const { root } = await initTree();
    rmLedger(root);
    const out = join(tempDir(), "x.conf");
    for (const args of [
      ["revoke", "--root", root, "--user", "x", "--reason", "keyCompromise"],
      ["crl", "--root", root],
      ["issue", "client", "--root", root, "--user", "bob", "--out", out],
      ["ledger", "list", "--root", root],
      ["ledger", "import", "--root", root],
      ["ledger", "verify", "--root", root],
      ["serve", "--root", root, "--setup-only"],
      ["certs", "renew", "apiserver", "--root", root],
    ]) {
      const r = kubepki(args);
      assert.equal(r.status, 3, `${args.slice(0, 2).join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /ledger .* does not exist.*never recreates it silently/s, args.join(" "));
      assert.ok(!existsSync(join(root, LEDGER)), `${args.join(" ")} created a ledger`);
    }
    assert.ok(!existsSync(out));
    const created = kubepki(["ledger", "init", "--root", root]);
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /created/);
    assert.equal(json(["ledger", "list", "--root", root]).length, 0);
  });

  it("a truncated or foreign ledger is refused, not taken for a new one", async () => {
    const { root } = await initTree();
    rmLedger(root);
    writeFileSync(join(root, LEDGER), "");
    const empty = revoke(root, "--user", "x");
    assert.equal(empty.status, 3);
    assert.match(empty.stderr, /is empty \(0 bytes\)/);
    rmLedger(root);
    const db = new DatabaseSync(join(root, LEDGER));
    db.exec("CREATE TABLE other (x)");
    db.close();
    const foreign = kubepki(["crl", "--root", root]);
    assert.equal(foreign.status, 3);
    assert.match(foreign.stderr, /no certificates table/);
  });

  it("a CRL is never replaced by one with fewer entries; ledger verify and repair restore the revocations", async () => {
    const { root } = await initTree();
    for (const u of ["a", "b", "c"]) issue(root, u);
    for (const u of ["a", "b", "c"]) assert.equal(revoke(root, "--user", u).status, 0);
    assert.equal(revoke(root, "--user", "kube-etcd-healthcheck-client").status, 0);
    const caCrl = join(root, PKI, "ca.crl");
    const before = crlSerials(caCrl);
    assert.equal(before.serials.length, 3);
    const bytes = readFileSync(caCrl);
    // The ledger is lost and recreated empty.
    rmLedger(root);
    assert.equal(kubepki(["ledger", "init", "--root", root]).status, 0);
    const refused = kubepki(["crl", "--root", root, "--ca", "ca"]);
    assert.equal(refused.status, 3);
    assert.match(
      refused.stderr,
      /refusing to replace .*ca\.crl.*lists 3 revoked certificate\(s\) the ledger does not/,
    );
    assert.deepEqual(readFileSync(caCrl), bytes, "the CRL on disk is untouched");
    const verify = kubepki(["ledger", "verify", "--root", root, "-o", "json"]);
    assert.equal(verify.status, 1);
    const rows = JSON.parse(verify.stdout);
    assert.equal(rows.find((r: { ca: string }) => r.ca === "ca").onlyInCrl.length, 3);
    assert.equal(rows.find((r: { ca: string }) => r.ca === "etcd-ca").onlyInCrl.length, 1);
    const serve = kubepki(["serve", "--root", root, "--setup-only"]);
    assert.equal(serve.status, 0, serve.stderr);
    assert.match(
      serve.stderr,
      /4 revocation\(s\) are in a published CRL but not in the ledger.*ledger repair/,
    );
    assert.equal(kubepki(["ledger", "import", "--root", root]).status, 0);
    const repair = kubepki(["ledger", "repair", "--root", root]);
    assert.equal(repair.status, 0, repair.stderr);
    // The etcd client certificate is on the node (imported): restored; a, b, c are known by serial only.
    assert.match(repair.stdout, /restored 1 revocation\(s\); 3 known only by serial/);
    assert.deepEqual(
      json(["ledger", "list", "--root", root, "--status", "revoked"]).map(
        (e: { subjectCN: string }) => e.subjectCN,
      ),
      ["kube-etcd-healthcheck-client"],
    );
    assert.equal(kubepki(["ledger", "verify", "--root", root]).status, 0);
    const again = kubepki(["crl", "--root", root, "--ca", "ca"]);
    assert.equal(again.status, 0, again.stderr);
    const after = crlSerials(caCrl);
    assert.ok(after.number > before.number, `CRL number ${after.number} > ${before.number}`);
    assert.deepEqual(after.serials.sort(), before.serials.sort());
  });
});

describe("kubepki serve notices a lost ledger and keeps the last good set", () => {
  for (const variant of ["deleted", "replaced", "truncated"] as const)
    it(`ledger ${variant}: readyz fails within the poll interval, the revoked stay denied, the metric shows it`, async () => {
      const { root } = await initTree();
      const jane = issue(root, "jane");
      assert.equal(revoke(root, "--user", "jane").status, 0);
      const serve = await startServe(root);
      try {
        const c = serve.client;
        const denied = async () =>
          JSON.parse((await call(c, sar("v1", "jane", jane.credentialId))).body).status.denied;
        assert.equal(await denied(), true);
        assert.equal((await call(c, "", { method: "GET", path: "/readyz" })).status, 200);
        const file = join(root, LEDGER);
        if (variant === "deleted") rmLedger(root);
        else if (variant === "truncated") truncateSync(file, 0);
        else {
          const other = tempDir();
          assert.equal(kubepki(["ledger", "init", "--root", root, "--state", other]).status, 0);
          renameSync(join(other, "ledger.db"), file);
        }
        const took = await waitFor(
          async () => (await call(c, "", { method: "GET", path: "/readyz" })).status === 503,
          3000,
        );
        assert.ok(took >= 0 && took < 1000, `readyz failed after ${took} ms`);
        assert.equal(await denied(), true, "still denied from the last good set");
        const m = (await call(c, "", { method: "GET", path: "/metrics" })).body;
        assert.match(m, /kubepki_ledger_healthy 0/);
        assert.match(m, /kubepki_revoked_certificates 1/);
        assert.match(m, /kubepki_ledger_failures_total [1-9]/);
        assert.match(serve.logs(), /serving the last good revoked set \(1\)/);
      } finally {
        await serve.stop();
      }
    });
});

/** Runs the CLI without blocking the test's event loop. */
function kubepkiAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
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
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("concurrent revocations", () => {
  it("10 concurrent revokers over 200 certificates: all exit 0, the last CRL lists all 200, numbers strictly increase", async () => {
    const { root } = await initTree();
    const paths = treePaths(root);
    const store = openLedger(paths.ledgerFile);
    const dir = tempDir();
    const ids: { sha256: string; credentialId: string }[] = [];
    try {
      for (let i = 0; i < 200; i++)
        ids.push(
          await issueClient({
            paths,
            store,
            user: `u${i}`,
            groups: ["dev"],
            ttlMs: 3_600_000,
            maxTtlMs: 7_200_000,
            breakGlass: false,
            out: join(dir, `u${i}.conf`),
          }),
        );
    } finally {
      await store.close();
    }
    const serve = await startServe(root);
    try {
      const results: { number: number; revoked: number }[] = [];
      const worker = async (w: number) => {
        for (let i = w; i < 200; i += 10) {
          const r = await kubepkiAsync([
            "--debug",
            "revoke",
            "--root",
            root,
            "--fingerprint",
            ids[i]?.sha256 ?? "",
            "--reason",
            "keyCompromise",
            "-o",
            "json",
          ]);
          assert.equal(r.status, 0, r.stderr);
          const crl = JSON.parse(r.stdout).crls[0];
          results.push({ number: Number(crl.number), revoked: crl.revoked });
        }
      };
      await Promise.all(Array.from({ length: 10 }, (_, w) => worker(w)));
      results.sort((a, b) => a.number - b.number);
      for (let i = 1; i < results.length; i++) {
        assert.ok((results[i]?.number ?? 0) > (results[i - 1]?.number ?? 0), "CRL numbers strictly increase");
        assert.ok((results[i]?.revoked ?? 0) > (results[i - 1]?.revoked ?? 0), "entries never drop");
      }
      const last = crlSerials(join(root, PKI, "ca.crl"));
      assert.equal(last.serials.length, 200);
      assert.equal(last.number, results.at(-1)?.number);
      for (const id of ids) {
        const body = JSON.parse((await call(serve.client, sar("v1", "x", id.credentialId))).body);
        assert.equal(body.status.denied, true);
      }
    } finally {
      await serve.stop();
    }
  });
});

describe("revocation that cannot hurt the cluster by accident", () => {
  it("CA certificates are never matched", async () => {
    const { root } = await initTree();
    const before = readFileSync(join(root, PKI, "ca.crl"));
    const byUser = revoke(root, "--user", "kubernetes");
    assert.equal(byUser.status, 2);
    assert.match(byUser.stderr, /matches only CA certificates.*rotation's job/s);
    const ca = parseCertificatePem(readFileSync(join(root, PKI, "ca.crt"), "utf8"), "ca");
    assert.equal(revoke(root, "--fingerprint", ca.sha256, "--force").status, 2);
    assert.deepEqual(readFileSync(join(root, PKI, "ca.crl")), before);
    assert.equal(json(["ledger", "list", "--root", root, "--status", "revoked"]).length, 0);
  });

  it("control-plane identities are refused without --force, naming what breaks; renewed ones are not", async () => {
    const { root } = await initTree();
    const r = revoke(root, "--user", "kube-apiserver-etcd-client");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /kube-apiserver loses etcd/);
    assert.match(r.stderr, /kubepki certs renew apiserver-etcd-client/);
    for (const user of [
      "system:kube-controller-manager",
      "system:kube-scheduler",
      "system:node:cp1",
      "kube-apiserver-kubelet-client",
      "cp1",
    ])
      assert.equal(revoke(root, "--user", user).status, 2, user);
    assert.equal(json(["ledger", "list", "--root", root, "--status", "revoked"]).length, 0);
    const old = parseCertificatePem(
      readFileSync(join(root, PKI, "apiserver-kubelet-client.crt"), "utf8"),
      "c",
    );
    assert.equal(kubepki(["certs", "renew", "apiserver-kubelet-client", "--root", root]).status, 0);
    assert.equal(revoke(root, "--fingerprint", old.sha256).status, 0, "superseded: no longer in use");
    const forced = revoke(root, "--user", "kube-apiserver-etcd-client", "--force");
    assert.equal(forced.status, 0, forced.stderr);
  });

  it("revoke without the CA key exits 3 and says what is left; certs renew all that renewed nothing exits 3", () => {
    const dir = tempDir();
    const root = join(dir, "node");
    const off = join(dir, "off");
    assert.equal(kubepki(initArgs(root, off, "--external-ca")).status, 0);
    issue(root, "u", ["--offline-dir", off]);
    const r = revoke(root, "--user", "u");
    assert.equal(r.status, 3);
    assert.match(r.stderr, /a CRL was not rewritten.*- ca: .*What is left: kubepki crl --root .* --ca ca/s);
    assert.equal(json(["ledger", "list", "--root", root, "--status", "revoked"]).length, 1, "recorded");
    const crl = kubepki(["crl", "--root", root, "--ca", "ca", "--offline-dir", off]);
    assert.equal(crl.status, 0, crl.stderr);
    assert.match(crl.stdout, /1 revoked/);
    const renew = kubepki(["certs", "renew", "all", "--root", root]);
    assert.equal(renew.status, 3);
    assert.match(renew.stderr, /nothing was renewed; what is left/);
  });

  it("a certificate whose CA is not in the tree is revoked in the ledger, and the command exits 3", async () => {
    const { root } = await initTree();
    const foreign = join(tempDir(), "foreign");
    mkdirSync(foreign);
    kubeadmStyleCa(foreign, "/ca", "foreign-ca");
    const stray = await signWith(foreign, "/ca", { commonName: "stray" });
    writeFileSync(join(root, PKI, "stray.crt"), stray.crt);
    assert.equal(kubepki(["ledger", "import", "--root", root]).status, 0);
    const r = revoke(root, "--user", "stray");
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /not a CA of this tree/);
    assert.equal(json(["ledger", "list", "--root", root, "--status", "revoked"]).length, 1);
  });

  it("issue client --out onto an existing file refuses without --force", async () => {
    const { root } = await initTree();
    const out = join(tempDir(), "jane.conf");
    writeFileSync(out, "precious");
    const r = kubepki(["issue", "client", "--root", root, "--user", "jane", "--out", out]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /already exists; pass --force/);
    assert.equal(readFileSync(out, "utf8"), "precious");
    assert.equal(
      kubepki(["issue", "client", "--root", root, "--user", "jane", "--out", out, "--force"]).status,
      0,
    );
    assert.match(readFileSync(out, "utf8"), /client-certificate-data/);
  });

  it("a kubeadm CA without cRLSign is named at crl, ledger import and in the audit", async () => {
    const { root } = await initTree();
    kubeadmStyleCa(root, `${PKI}/etcd/ca`, "etcd-ca");
    const crl = kubepki(["crl", "--root", root, "--ca", "etcd-ca"]);
    assert.equal(crl.status, 0, crl.stderr);
    assert.match(crl.stderr, /etcd-ca: the CA certificate has no cRLSign.*OpenSSL and Go reject/);
    const imp = kubepki(["ledger", "import", "--root", root]);
    assert.equal(imp.status, 0, imp.stderr);
    assert.match(imp.stderr, /etcd-ca: the CA certificate has no cRLSign/);
    writeManifests(root, true);
    const audit = kubepki(["audit", "--root", root, "-o", "json"]);
    const ids = JSON.parse(audit.stdout).findings.map((f: { ruleId: string }) => f.ruleId);
    assert.ok(ids.includes("etcd.crl.ca-no-crlsign"), ids.join(","));
  });
});

describe("init reconciles the ledger with the tree", () => {
  it("after a failed ledger write, init exits non-zero; a rerun records every certificate", () => {
    const dir = tempDir();
    const root = join(dir, "node");
    const off = join(dir, "off");
    writeFileSync(join(dir, "file"), "");
    const failed = kubepki([...initArgs(root, off), "--state", join(dir, "file", "state")]);
    assert.equal(failed.status, 3, failed.stderr);
    const again = kubepki(initArgs(root, off));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /recorded 16 certificate\(s\) of the tree the ledger lacked/);
    assert.equal(json(["ledger", "list", "--root", root]).length, 16);
  });

  it("a rerun of init after the ledger was lost takes the revocations back from the published CRLs", async () => {
    const { root, offline } = await initTree();
    issue(root, "a");
    assert.equal(revoke(root, "--user", "a").status, 0);
    assert.equal(revoke(root, "--user", "kube-etcd-healthcheck-client").status, 0);
    rmLedger(root);
    const again = kubepki(initArgs(root, offline));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /restored 2 revocation\(s\) from the published CRLs/);
    assert.equal(json(["ledger", "list", "--root", root, "--status", "revoked"]).length, 1);
    assert.equal(kubepki(["ledger", "verify", "--root", root]).status, 0);
    const crl = kubepki(["crl", "--root", root, "--ca", "ca"]);
    assert.equal(crl.status, 0, crl.stderr);
    assert.match(crl.stdout, /CRL number 3, 1 revoked/);
  });

  it("certificates missing from an existing ledger are recorded on the next run", async () => {
    const { root, offline } = await initTree();
    const db = new DatabaseSync(join(root, LEDGER));
    db.exec("DELETE FROM certificates WHERE profile != 'ca'");
    db.close();
    const again = kubepki(initArgs(root, offline));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /recorded 13 certificate/);
    assert.equal(json(["ledger", "list", "--root", root]).length, 16);
  });
});

describe("writes stay inside the root", () => {
  const variants = [
    { link: "etc/kubernetes/pki", relative: false },
    { link: "etc/kubernetes/pki", relative: true },
    { link: "var/lib/kubepki", relative: false },
    { link: "var/lib/kubepki", relative: true },
  ];
  for (const v of variants)
    it(`init refuses ${v.link} linked out of the root (${v.relative ? "relative" : "absolute"})`, () => {
      const dir = tempDir();
      const root = join(dir, "node");
      const elsewhere = join(dir, "elsewhere");
      mkdirSync(elsewhere);
      mkdirSync(join(root, v.link, ".."), { recursive: true });
      const depth = v.link.split("/").length;
      symlinkSync(v.relative ? `${"../".repeat(depth)}elsewhere` : elsewhere, join(root, v.link));
      const r = kubepki(initArgs(root, join(dir, "off")));
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /is a link to .*elsewhere, outside .*node: kubepki refuses to write through it/);
      assert.deepEqual(snapshot(elsewhere), {});
    });

  for (const v of variants)
    it(`certs renew refuses ${v.link} linked out of the root (${v.relative ? "relative" : "absolute"})`, async () => {
      const { root } = await initTree();
      const elsewhere = join(tempDir(), "elsewhere");
      renameSync(join(root, v.link), elsewhere);
      const depth = root.split("/").length + v.link.split("/").length - 1;
      symlinkSync(v.relative ? `${"../".repeat(depth)}${elsewhere.slice(1)}` : elsewhere, join(root, v.link));
      const before = snapshot(elsewhere);
      const r = kubepki(["certs", "renew", "all", "--root", root]);
      assert.notEqual(r.status, 0, r.stderr);
      assert.deepEqual(snapshot(elsewhere), before, "nothing written outside the root");
    });

  it("a link that stays inside the root is followed", () => {
    const dir = tempDir();
    const root = join(dir, "node");
    mkdirSync(join(root, "srv/pki"), { recursive: true });
    mkdirSync(join(root, "etc/kubernetes"), { recursive: true });
    symlinkSync("../../srv/pki", join(root, "etc/kubernetes/pki"));
    const r = kubepki(initArgs(root, join(dir, "off")));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(root, "srv/pki/ca.crt")));
  });
});
