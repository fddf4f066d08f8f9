import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseCertificatePem } from "../src/x509/parse.js";
import { CLI, kubepki, PKI, snapshot, tempDir } from "./helpers.js";
import { rotateCa, rotationNode, rotationStatus } from "./rotate-helpers.js";

type Tree = { root: string; offline: string };

function copyOf(template: string): Tree {
  const dir = join(tempDir("kubepki-rotkill-"), "t");
  assert.equal(spawnSync("cp", ["-a", template, dir]).status, 0);
  return { root: join(dir, "node"), offline: join(dir, "offline") };
}

/** The tree without what the ledger and the lock add: the files a phase commits. */
function files(t: Tree): Record<string, string> {
  const keep = (s: Record<string, string>) =>
    Object.fromEntries(Object.entries(s).filter(([k]) => !/ledger\.db|\/lock$/.test(k)));
  return { ...keep(snapshot(t.root)), ...keep(snapshot(t.offline)) };
}

function temps(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((n) => n.includes(".kubepki-tmp-"));
}

function phases(t: Tree): string[] {
  const state = JSON.parse(readFileSync(join(t.root, "var/lib/kubepki/rotation.json"), "utf8"));
  return Object.values(state.cas as Record<string, { phase: string }>).map((c) => c.phase);
}

describe("rotate-ca kill-safety", () => {
  it("sign killed with SIGKILL at random moments leaves the node before or after the phase, never between", async () => {
    const built = await rotationNode();
    assert.equal(rotateCa(built, "--ca", "all", "--phase", "trust").status, 0);
    const template = join(built.root, "..");
    const trusted = files(built);
    const timing = copyOf(template);
    const t0 = Date.now();
    assert.equal(rotateCa(timing, "--ca", "all", "--phase", "sign").status, 0);
    const span = Date.now() - t0;
    const outcome = { before: 0, after: 0, killed: 0, journals: 0 };
    // Where in a run the kills land, as a fraction of one run's length: it moves later after a kill
    // that landed before the commit and earlier after one that landed after, so the kills keep
    // circling the commit whatever the machine's load.
    let aim = 0.7;
    for (let trial = 0; trial < 20; trial++) {
      const t = copyOf(template);
      const args = [
        "rotate-ca",
        "--ca",
        "all",
        "--phase",
        "sign",
        "--root",
        t.root,
        "--offline-dir",
        t.offline,
      ];
      const child = spawn(process.execPath, [CLI, ...args], { stdio: "ignore" });
      const timer = setTimeout(() => child.kill("SIGKILL"), span * aim * (0.75 + Math.random() * 0.5));
      const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
        child.on("exit", (c, s) => r([c, s])),
      );
      clearTimeout(timer);
      if (signal === "SIGKILL") outcome.killed++;
      else assert.equal(code, 0);
      if (existsSync(join(t.root, "var/lib/kubepki/journal.json"))) outcome.journals++;
      // Any later command finishes or undoes what the kill interrupted before it reads the tree.
      const status = rotationStatus(t);
      assert.equal(existsSync(join(t.root, "var/lib/kubepki/journal.json")), false);
      assert.deepEqual([...temps(t.root), ...temps(t.offline)], []);
      const at = new Set(phases(t));
      assert.equal(at.size, 1, `every CA at the same phase: ${[...at]}`);
      if (at.has("trust")) {
        outcome.before++;
        aim *= 1.15;
        assert.deepEqual(files(t), trusted, "before: byte-identical to the trusted tree");
      } else {
        outcome.after++;
        aim *= 0.9;
        assert.ok(at.has("sign"));
        for (const c of status.certificates) assert.match(c.signedBy, / new$/, `${c.name}: ${c.signedBy}`);
        for (const f of status.signingFiles)
          assert.ok(f.certificates === 1 && f.keyMatches !== false, f.path);
        // Run again, the phase is done already; the ledger holds every certificate of the node.
        assert.equal(rotateCa(t, "--ca", "all", "--phase", "sign").status, 0);
        const list = kubepki(["ledger", "list", "--root", t.root, "-o", "json"]);
        const known = new Set(JSON.parse(list.stdout).map((e: { sha256: string }) => e.sha256));
        const apiserver = parseCertificatePem(readFileSync(join(t.root, PKI, "apiserver.crt"), "utf8"), "a");
        assert.ok(known.has(apiserver.sha256), "the ledger records what the killed run signed");
      }
    }
    assert.ok(outcome.killed >= 6, `only ${outcome.killed} of 20 runs were killed mid-way`);
    assert.ok(outcome.before > 0 && outcome.after > 0, "kills landed on both sides of the commit");
    console.log(`# rotate-ca kill-safety: ${JSON.stringify(outcome)}`);
  });
});
