import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import AjvDraft04 from "ajv-draft-04";
import { auditNode } from "../src/audit/audit.js";
import { buildReport } from "../src/report/model.js";
import { renderSarif } from "../src/report/sarif.js";
import { k0sNode, microk8sNode, rancherServer } from "./distro-fixtures.js";
import { hardenedNode, stockKubeadmNode } from "./fixtures.js";
import { buildTree, kubepki, REPO, tempDir } from "./helpers.js";
import { chromium } from "./peers/chromium.js";

const schema = JSON.parse(readFileSync(join(REPO, "test/data/sarif-schema-2.1.0.json"), "utf8"));
// ajv-draft-04 is CommonJS with module.exports = Ajv and exports.default = Ajv; NodeNext types the default import as the module.
const Ajv = (AjvDraft04 as unknown as { default: typeof AjvDraft04 }).default ?? AjvDraft04;
const ajv = new (Ajv as unknown as typeof import("ajv-draft-04").default)({ allErrors: true, strict: false });
const compiled = ajv.compile(schema);
const validate = Object.assign((d: unknown): boolean => compiled(d), {
  get errors() {
    return compiled.errors;
  },
});

describe("SARIF", () => {
  it("validates against the SARIF 2.1.0 schema for every fixture", async () => {
    const trees: [string, string][] = [
      ["kubepki init", (await buildTree()).root],
      ["hardened", (await hardenedNode()).root],
      ["stock kubeadm", await stockKubeadmNode()],
      ["k3s", (await rancherServer("k3s")).root],
      ["rke2", (await rancherServer("rke2")).root],
      ["microk8s", (await microk8sNode()).root],
      ["k0s", (await k0sNode()).root],
    ];
    for (const [name, root] of trees) {
      const report = buildReport(auditNode({ root }));
      const sarif = JSON.parse(renderSarif(report));
      const ok = validate(sarif);
      assert.ok(ok, `${name}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
      const run = sarif.runs[0];
      assert.equal(run.results.length, report.findings.length, name);
      for (const r of run.results) {
        assert.ok(run.tool.driver.rules[r.ruleIndex].id === r.ruleId);
        assert.ok(r.locations[0].physicalLocation.artifactLocation.uri.length > 0);
      }
    }
  });

  it("rules carry help text and CIS and ATT&CK tags", async () => {
    const sarif = JSON.parse(renderSarif(buildReport(auditNode({ root: await stockKubeadmNode() }))));
    const rule = sarif.runs[0].tool.driver.rules.find(
      (r: { id: string }) => r.id === "apiserver.kubelet-ca.missing",
    );
    assert.match(rule.help.text, /Remediation: /);
    assert.ok(rule.properties.tags.includes("CIS-1.2.5"));
    assert.ok(rule.properties.tags.includes("attack-T1557"));
    const result = sarif.runs[0].results.find(
      (r: { ruleId: string }) => r.ruleId === "apiserver.kubelet-ca.missing",
    );
    assert.equal(result.level, "error");
    assert.equal(
      result.locations[0].physicalLocation.artifactLocation.uri,
      "etc/kubernetes/manifests/kube-apiserver.yaml",
    );
  });
});

describe("kubepki audit (CLI)", () => {
  let root: string;
  before(async () => {
    root = await stockKubeadmNode();
  });

  it("--fail-on: exit 1 at or above, 0 below; 2 for a bad value", () => {
    assert.equal(kubepki(["audit", "--root", root, "--fail-on", "high"]).status, 1);
    assert.equal(kubepki(["audit", "--root", root, "--fail-on", "critical"]).status, 0);
    assert.equal(kubepki(["audit", "--root", root]).status, 0);
    const bad = kubepki(["audit", "--root", root, "--fail-on", "severe"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /must be one of info, low, medium, high, critical/);
  });

  it("-o json follows the documented schema; text groups by severity", () => {
    const r = kubepki(["audit", "--root", root, "-o", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.schema, "kubepki.io/audit/v1");
    assert.equal(report.distribution.name, "kubeadm");
    assert.equal(report.summary.total, report.findings.length);
    assert.ok(report.inventory.length >= 15);
    const f = report.findings[0];
    for (const k of [
      "ruleId",
      "severity",
      "title",
      "message",
      "evidence",
      "cis",
      "attack",
      "why",
      "remediation",
    ])
      assert.ok(k in f, k);
    assert.doesNotMatch(r.stdout, /PRIVATE KEY|client-key-data/);
    const text = kubepki(["audit", "--root", root]).stdout;
    assert.ok(text.indexOf("HIGH (1)") < text.indexOf("MEDIUM (5)"));
    assert.ok(!text.includes("\u001b["), "no colour when piped or with NO_COLOR");
  });

  it("--processes refuses to mix a root with this machine's processes", () => {
    const r = kubepki(["audit", "--root", root, "--processes", "-o", "json"]);
    assert.equal(r.status, 0);
    assert.ok(
      JSON.parse(r.stdout).warnings.some((w: { message: string }) =>
        /--processes reads running processes only with --root \//.test(w.message),
      ),
    );
  });

  it("--out writes the report file atomically", () => {
    const out = join(tempDir(), "r.sarif");
    const r = kubepki(["audit", "--root", root, "-o", "sarif", "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(validate(JSON.parse(readFileSync(out, "utf8"))));
    assert.equal(statSync(out).mode & 0o777, 0o644);
  });
});

describe("HTML report in headless Chromium", () => {
  it("renders every finding title and the timeline, with no console errors; a screenshot is kept", async () => {
    const root = await stockKubeadmNode();
    const report = buildReport(auditNode({ root }));
    const dir = join(REPO, "test-artifacts");
    mkdirSync(dir, { recursive: true });
    const html = join(dir, "audit-report.html");
    assert.equal(kubepki(["audit", "--root", root, "-o", "html", "--out", html]).status, 0);
    const chrome = (args: string[]) => chromium(html, args);
    const dom = chrome(["--dump-dom"]);
    assert.equal(dom.status, 0, dom.stderr.slice(-2000));
    for (const f of report.findings)
      assert.ok(dom.stdout.includes(f.title.replace(/&/g, "&amp;")), `title missing: ${f.title}`);
    assert.match(dom.stdout, /<svg id="timeline"/);
    const bars = dom.stdout.match(/<g class="bar">/g) ?? [];
    assert.equal(bars.length, report.inventory.length);
    assert.doesNotMatch(dom.stderr, /CONSOLE\(\d+\)|Uncaught|SyntaxError/);
    const png = join(dir, "audit-report.png");
    const shot = chrome([`--screenshot=${png}`, "--window-size=1200,1800"]);
    assert.equal(shot.status, 0, shot.stderr.slice(-2000));
    assert.ok(existsSync(png) && statSync(png).size > 20_000, "screenshot written");
    assert.doesNotMatch(
      readFileSync(html, "utf8"),
      /<script|https?:\/\/(?!www\.w3\.org)/,
      "self-contained: no script, no network",
    );
  });
});
