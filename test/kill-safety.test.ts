import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { commitFiles, recoverJournal } from "../src/fsx/transaction.js";
import { LEAVES } from "../src/pki/catalog.js";
import { loadPair } from "../src/pki/existing.js";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { keysMatch } from "../src/x509/keys.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { verifyPath } from "../src/x509/verify.js";
import { buildTree, CLI, kubepki, PKI, tempDir } from "./helpers.js";

/** Every certificate/key pair and kubeconfig on disk matches and verifies against its CA. */
async function assertConsistent(root: string): Promise<void> {
  const ca = (f: string) => parseCertificatePem(readFileSync(join(root, PKI, f), "utf8"), f);
  const cas = { ca: ca("ca.crt"), "front-proxy-ca": ca("front-proxy-ca.crt"), "etcd-ca": ca("etcd/ca.crt") };
  const pairs = [
    ...LEAVES.map((l) => ({
      id: l.id,
      ca: cas[l.ca],
      cert: join(root, PKI, `${l.baseName}.crt`),
      key: join(root, PKI, `${l.baseName}.key`),
    })),
    {
      id: "kubelet",
      ca: cas.ca,
      cert: join(root, "var/lib/kubelet/pki/kubelet.crt"),
      key: join(root, "var/lib/kubelet/pki/kubelet.key"),
    },
  ];
  for (const p of pairs) {
    const pair = loadPair(p, (f) => (existsSync(f) ? readFileSync(f, "utf8") : undefined));
    assert.deepEqual(pair.problems, [], p.id);
    assert.ok(pair.cert && pair.key, p.id);
    const v = await verifyPath(pair.cert, [p.ca]);
    assert.ok(v.ok, `${p.id}: ${v.ok ? "" : v.reason}`);
  }
  for (const f of ["admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"]) {
    const view = parseKubeconfig(readFileSync(join(root, "etc/kubernetes", f), "utf8"), f);
    assert.ok(view.clientCert && view.clientKey && keysMatch(view.clientKey, view.clientCert.publicKey), f);
    assert.ok((await verifyPath(view.clientCert, [cas.ca])).ok, f);
  }
}

function leftoverTemps(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.includes(".kubepki-tmp-")) found.push(join(d, e.name));
    }
  };
  walk(dir);
  return found;
}

describe("kill-safety", () => {
  it("certs renew all killed with SIGKILL at random moments leaves matching, verifying pairs (30 trials)", async () => {
    const { root } = await buildTree();
    // Measure one full run to spread the kills over its whole length.
    const t0 = Date.now();
    assert.equal(kubepki(["certs", "renew", "all", "--root", root]).status, 0);
    const span = Date.now() - t0;
    let killed = 0;
    let journalsLeft = 0;
    for (let trial = 0; trial < 30; trial++) {
      const child = spawn(process.execPath, [CLI, "certs", "renew", "all", "--root", root], {
        stdio: "ignore",
      });
      const delay = Math.random() * span * 1.1;
      const timer = setTimeout(() => child.kill("SIGKILL"), delay);
      const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
        child.on("exit", (c, s) => r([c, s])),
      );
      clearTimeout(timer);
      if (signal === "SIGKILL") killed++;
      else assert.equal(code, 0);
      const journal = join(root, "var/lib/kubepki/journal.json");
      if (existsSync(journal)) journalsLeft++;
      else await assertConsistent(root); // no pending group: the pairs on disk match already
      // Any kubepki command finishes an interrupted group before it reads the tree.
      assert.equal(kubepki(["certs", "check-expiration", "--root", root]).status, 0);
      assert.equal(existsSync(journal), false);
      assert.deepEqual(leftoverTemps(root), []);
      await assertConsistent(root);
    }
    assert.ok(killed >= 10, `only ${killed} of 30 runs were killed mid-way`);
    console.log(`# kill-safety: ${killed}/30 runs killed, ${journalsLeft} left a journal to recover`);
  });

  it("a group interrupted between its renames is completed by recovery", () => {
    const dir = tempDir();
    const a = join(dir, "x.crt");
    const b = join(dir, "x.key");
    writeFileSync(a, "old-cert");
    writeFileSync(b, "old-key");
    const journal = join(dir, "state/journal.json");
    commitFiles(
      [
        { path: a, data: "new-cert", mode: 0o644 },
        { path: b, data: "new-key", mode: 0o600 },
      ],
      { journalPath: journal },
    );
    assert.equal(readFileSync(a, "utf8"), "new-cert");
    // Lay out the state a kill leaves between the two renames: journal committing, one temp renamed.
    const ta = join(dir, ".x.crt.kubepki-tmp-abc");
    const tb = join(dir, ".x.key.kubepki-tmp-abc");
    writeFileSync(ta, "newer-cert");
    writeFileSync(tb, "newer-key");
    writeFileSync(
      journal,
      JSON.stringify({
        version: 1,
        state: "committing",
        entries: [
          { tmp: ta, path: a },
          { tmp: tb, path: b },
        ],
      }),
    );
    renameSync(ta, a);
    assert.equal(readFileSync(b, "utf8"), "new-key", "mismatched until recovery");
    assert.deepEqual(recoverJournal(journal), { state: "committing", files: 2 });
    assert.equal(readFileSync(a, "utf8"), "newer-cert");
    assert.equal(readFileSync(b, "utf8"), "newer-key");
    assert.equal(existsSync(journal), false);
  });

  it("a group interrupted while writing its temp files is rolled back", () => {
    const dir = tempDir();
    const a = join(dir, "y.crt");
    writeFileSync(a, "old");
    const t = join(dir, ".y.crt.kubepki-tmp-def");
    writeFileSync(t, "half");
    const journal = join(dir, "journal.json");
    writeFileSync(journal, JSON.stringify({ version: 1, state: "writing", entries: [{ tmp: t, path: a }] }));
    recoverJournal(journal);
    assert.equal(readFileSync(a, "utf8"), "old");
    assert.equal(existsSync(t), false);
  });
});
