import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { auditNode } from "../src/audit/audit.js";
import { yamlNestingError } from "../src/fsx/yaml-guard.js";
import { expandCommand, splitWords } from "../src/node/units.js";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { rancherServer } from "./distro-fixtures.js";
import { put } from "./fixtures.js";
import { CLI, kubepki, snapshot, tempDir } from "./helpers.js";
import { kthwNode } from "./kthw-fixture.js";

const ids = (findings: { severity: string; ruleId: string }[]) => findings.map((f) => f.ruleId);

describe("a control plane built by hand (systemd units, no distribution)", () => {
  const { root } = kthwNode();
  const r = auditNode({ root });

  it("is reported as what it is, with every component read from its unit", () => {
    assert.equal(r.snapshot.layout.distro, "generic");
    assert.equal(r.snapshot.detectedBy, "systemd units; no distribution fingerprint");
    assert.equal(r.snapshot.role, "control-plane");
    assert.deepEqual([...r.snapshot.components.keys()].sort(), [
      "etcd",
      "kube-apiserver",
      "kube-controller-manager",
      "kube-proxy",
      "kube-scheduler",
      "kubelet",
    ]);
    const api = r.snapshot.components.get("kube-apiserver")?.flags;
    // ${ETCD_SERVERS} from Environment=, $KUBE_APISERVER_TLS split from EnvironmentFile=.
    assert.equal(api?.get("etcd-servers"), "https://127.0.0.1:2379");
    assert.equal(api?.get("tls-cert-file"), "/var/lib/kubernetes/kubernetes.pem");
    assert.equal(r.snapshot.components.get("etcd")?.flags.get("client-cert-auth"), "true");
    // The drop-in's environment reaches the kubelet's command line.
    assert.equal(r.snapshot.kubelet.flags.get("anonymous-auth"), "true");
    assert.ok(r.snapshot.kubelet.flagSources.includes("/etc/systemd/system/kubelet.service.d/20-debug.conf"));
  });

  it("finds the PKI by following the flags: /var/lib/kubernetes, /etc/etcd, /var/lib/kubelet, home kubeconfigs", () => {
    const paths = new Set(r.snapshot.certs.map((c) => c.path));
    for (const p of [
      "/var/lib/kubernetes/ca.pem",
      "/var/lib/kubernetes/kubernetes.pem",
      "/etc/etcd/kubernetes.pem",
      "/var/lib/kubelet/node-0.pem",
      "/home/ops/.kube/config",
      "/var/lib/kubernetes/kube-scheduler.kubeconfig",
    ])
      assert.ok(paths.has(p), `${p} not inventoried: ${[...paths].join(", ")}`);
    assert.ok(r.snapshot.keys.some((k) => k.path === "/var/lib/kubernetes/ca-key.pem"));
    assert.ok(![...paths].some((p) => p.startsWith("/etc/ssl/")), "the trust store is not the cluster's PKI");
    // kube-proxy's kubeconfig, named in its --config file, is judged like the others.
    assert.ok(
      r.findings.some(
        (f) => f.ruleId === "kubeconfig.component.mode" && f.path === "/var/lib/kube-proxy/kubeconfig",
      ),
    );
  });

  it("gets the findings a kubeadm node with the same weaknesses gets, and no false ones", () => {
    const got = ids(r.findings);
    for (const rule of [
      "apiserver.kubelet-ca.missing",
      "apiserver.anonymous",
      "kubelet.anonymous",
      "pki.key.mode",
      "etcd.shared-ca",
      "etcd.crl.unused",
      "kubeconfig.component.mode",
      "kubeconfig.admin.embedded",
      "cert.system-masters",
    ])
      assert.ok(got.includes(rule), `${rule} missing from ${got.join(", ")}`);
    const caKey = r.findings.find((f) => f.ruleId === "pki.ca-key.present");
    assert.equal(caKey?.severity, "info", "the controller-manager signs with the CA key");
    assert.equal(caKey?.path, "/var/lib/kubernetes/ca-key.pem");
    for (const rule of [
      "cert.chain",
      "cert.key-mismatch",
      "apiserver.client-ca.missing",
      "apiserver.tls-files.missing",
      "apiserver.etcd-tls.missing",
      "etcd.tls.missing",
      "etcd.client-cert-auth.off",
      "kubelet.client-ca",
      "node.nothing-found",
    ])
      assert.ok(
        !got.includes(rule),
        `${rule} fired: ${JSON.stringify(r.findings.filter((f) => f.ruleId === rule))}`,
      );
  });

  it("the CLI reports the distribution and fails on high findings, and leaves the tree as it was", () => {
    const before = snapshot(root);
    const res = kubepki(["audit", "--root", root, "-o", "json", "--fail-on", "high"]);
    assert.equal(res.status, 1, res.stderr);
    const report = JSON.parse(res.stdout);
    assert.deepEqual(report.distribution, {
      name: "generic",
      detectedBy: "systemd units; no distribution fingerprint",
    });
    // Read-only: no ledger, no folder, no file touched.
    assert.deepEqual(snapshot(root), before);
    assert.ok(!existsSync(join(root, "var/lib/kubepki")));
  });

  it("a worker laid out by hand holding the CA key is critical, found by content", () => {
    const w = kthwNode().root;
    for (const u of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"])
      rmSync(join(w, `etc/systemd/system/${u}.service`));
    put(w, "/var/lib/kubelet/ca-key.pem", readFileSync(join(w, "var/lib/kubernetes/ca-key.pem")), 0o600);
    const found = auditNode({ root: w }).findings.filter((f) => f.ruleId === "pki.ca-key.present");
    assert.ok(
      found.some((f) => f.severity === "critical" && f.path === "/var/lib/kubelet/ca-key.pem"),
      JSON.stringify(found),
    );
  });
});

describe("a k3s server configured through config.yaml", () => {
  it("k3s' own flags give no false findings; *-arg lists from config.yaml and config.yaml.d are judged", async () => {
    const { root } = await rancherServer("k3s");
    const before = ids(auditNode({ root }).findings);
    for (const rule of ["apiserver.anonymous", "apiserver.kubelet-ca.missing", "apiserver.etcd-tls.missing"])
      assert.ok(!before.includes(rule), `${rule} on a stock k3s server`);
    put(
      root,
      "/etc/rancher/k3s/config.yaml",
      'write-kubeconfig-mode: "0600"\nkube-apiserver-arg:\n  - anonymous-auth=true\n  - tls-min-version=VersionTLS10\n',
      0o600,
    );
    put(
      root,
      "/etc/rancher/k3s/config.yaml.d/50-debug.yaml",
      "kube-apiserver-arg+:\n  - token-auth-file=/etc/rancher/tokens.csv\nkubelet-arg:\n  - anonymous-auth=true\n",
      0o600,
    );
    // The service's own command line comes last (k3s' install script writes such a unit).
    put(
      root,
      "/etc/systemd/system/k3s.service",
      "[Service]\nExecStart=/usr/local/bin/k3s \\\n    server \\\n    '--kube-apiserver-arg' 'audit-log-path=/var/log/k3s-audit.log' \\\n    --kube-apiserver-arg=tls-min-version=VersionTLS11\n",
      0o644,
    );
    const r = auditNode({ root });
    const api = r.snapshot.components.get("kube-apiserver");
    assert.equal(api?.flags.get("client-ca-file"), "/var/lib/rancher/k3s/server/tls/client-ca.crt");
    assert.equal(api?.flags.get("audit-log-path"), "/var/log/k3s-audit.log");
    assert.equal(api?.flags.get("tls-min-version"), "VersionTLS11");
    assert.equal(api?.source, "/etc/rancher/k3s/config.yaml.d/50-debug.yaml");
    const got = ids(r.findings);
    for (const rule of [
      "apiserver.anonymous",
      "apiserver.tls-weak",
      "apiserver.token-auth-file",
      "kubelet.anonymous",
    ])
      assert.ok(got.includes(rule), `${rule} missing from ${got.join(", ")}`);
    assert.ok(!got.includes("apiserver.kubelet-ca.missing"));
  });
});

describe("nothing to audit", () => {
  it("an empty --root, a missing one and an empty folder are input errors (exit 2)", () => {
    const empty = tempDir();
    for (const [root, msg] of [
      ["", /--root is empty/],
      [join(empty, "nope"), /no such folder/],
      [empty, /empty folder/],
    ] as const) {
      const r = kubepki(["audit", "--root", root]);
      assert.equal(r.status, 2, `${root}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it("a root without PKI or component is a finding, never a clean report", () => {
    const root = tempDir();
    put(root, "/etc/hostname", "node1\n", 0o644);
    put(root, "/etc/systemd/system/nginx.service", "[Service]\nExecStart=/usr/sbin/nginx\n", 0o644);
    const r = kubepki(["audit", "--root", root, "-o", "json", "--fail-on", "high"]);
    assert.equal(r.status, 1);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(
      report.findings.map((f: { ruleId: string }) => f.ruleId),
      ["node.nothing-found"],
    );
    assert.equal(report.distribution.detectedBy, "no component found; no distribution fingerprint");
  });
});

describe("deeply nested YAML is refused before the parser recurses", () => {
  const nested = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;

  it("the guard: brackets, indentation and '- ' markers over the bound; real files pass", () => {
    assert.match(yamlNestingError(`a: ${nested(100)}`, "t")?.message ?? "", /brackets/);
    assert.equal(
      yamlNestingError(
        `a: ${nested(10)}\nb: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["`,
      ),
      undefined,
    );
    let deep = "";
    for (let i = 0; i < 100; i++) deep += `${" ".repeat(i)}k${i}:\n`;
    assert.match(yamlNestingError(deep, "t")?.message ?? "", /indentation/);
    assert.match(yamlNestingError(`${"- ".repeat(100)}x\n`, "t")?.message ?? "", /indentation/);
    // Brackets are counted as the parser sees them: not inside quoted or block scalars, and a
    // bracket inside quotes cannot hide real nesting.
    assert.equal(yamlNestingError(`a: |\n  ${"[".repeat(100)}\nb: '${"{".repeat(100)}'\n`, "t"), undefined);
    assert.match(yamlNestingError(`a: ${'[ "]", '.repeat(100)}\n`, "t")?.message ?? "", /brackets/);
    assert.match(yamlNestingError(`a: |\n  "\nb: ${nested(100)}\n`, "t")?.message ?? "", /brackets/);
    assert.throws(
      () => parseKubeconfig(`clusters: ${nested(200)}\n`, "x.conf"),
      /x\.conf: YAML nested more than 64/,
    );
  });

  it("a 520 KB manifest and kubelet config of brackets: a warning, not a V8 abort; a 1 MB nested kubeconfig costs little", () => {
    const root = tempDir();
    const big = `spec:\n  containers: ${nested(260_000)}\n`;
    put(root, "/etc/kubernetes/manifests/kube-apiserver.yaml", big);
    put(root, "/var/lib/kubelet/config.yaml", big);
    let kc = "apiVersion: v1\nkind: Config\nusers:\n";
    for (let i = 0; kc.length < 1_000_000; i++) kc += `${" ".repeat(2 + (i % 1400))}u:\n`;
    put(root, "/home/ops/.kube/config", kc);
    put(root, "/home/dev/.kube/config", `apiVersion: v1\nkind: Config\nusers: ${nested(500_000)}\n`);
    // A heap far below the 630 MB the parser needed for that kubeconfig.
    const r = spawnSync(
      process.execPath,
      ["--max-old-space-size=96", CLI, "audit", "--root", root, "-o", "json"],
      {
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    assert.equal(r.status, 0, r.stderr.slice(0, 2000));
    const warnings = JSON.parse(r.stdout).warnings.map(
      (w: { path: string; message: string }) => `${w.path}: ${w.message}`,
    );
    assert.ok(
      warnings.some((w: string) => /kube-apiserver\.yaml: .*nested more than 64 levels/.test(w)),
      warnings.join("\n"),
    );
    assert.ok(
      warnings.some((w: string) => /config\.yaml: .*nested more than 64 levels/.test(w)),
      warnings.join("\n"),
    );
  });

  it("init --config with a nested document: input error, exit 2, nothing written", () => {
    const dir = tempDir();
    const cfg = join(dir, "kubeadm.yaml");
    writeFileSync(
      cfg,
      `apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nx: ${nested(260_000)}\n`,
    );
    const r = kubepki([
      "init",
      "--root",
      join(dir, "node"),
      "--offline-dir",
      join(dir, "off"),
      "--config",
      cfg,
    ]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /kubeadm\.yaml: YAML nested more than 64 levels/);
    assert.ok(!existsSync(join(dir, "node")), "nothing written");
  });
});

describe("systemd command lines", () => {
  it("$VAR splits into words, a braced variable stays one word, quotes group", () => {
    const env = new Map([
      ["ARGS", "--a=1 --b='two words'"],
      ["ONE", "x y"],
    ]);
    assert.deepEqual(expandCommand(`/bin/kubelet $ARGS --c=\${ONE} "--d=e f"`, env), [
      "/bin/kubelet",
      "--a=1",
      "--b=two words",
      "--c=x y",
      "--d=e f",
    ]);
    assert.deepEqual(splitWords(`a "b c" 'd'`), ["a", "b c", "d"]);
  });
});

describe("kubeadm's own unit layout and the kubelet's static pod folder", () => {
  it("a drop-in resets ExecStart=, an env file feeds it, manifests are read where the kubelet looks", () => {
    const root = tempDir();
    const lib = "/usr/lib/systemd/system";
    put(root, `${lib}/kubelet.service`, "[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n", 0o644);
    put(
      root,
      `${lib}/kubelet.service.d/10-kubeadm.conf`,
      [
        "[Service]",
        'Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"',
        "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env",
        "ExecStart=",
        "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_KUBEADM_ARGS",
        "",
      ].join("\n"),
      0o644,
    );
    put(
      root,
      "/var/lib/kubelet/kubeadm-flags.env",
      'KUBELET_KUBEADM_ARGS="--pod-manifest-path=/srv/pods"\n',
      0o644,
    );
    put(
      root,
      "/srv/pods/apiserver.yaml",
      "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --anonymous-auth=true]\n",
    );
    const r = auditNode({ root });
    assert.equal(r.snapshot.kubelet.flags.get("kubeconfig"), "/etc/kubernetes/kubelet.conf");
    assert.equal(r.snapshot.components.get("kubelet")?.source, `${lib}/kubelet.service.d/10-kubeadm.conf`);
    assert.equal(r.snapshot.components.get("kube-apiserver")?.source, "/srv/pods/apiserver.yaml");
    assert.equal(r.snapshot.detectedBy, "systemd units, static pod manifests; no distribution fingerprint");
    assert.ok(r.findings.some((f) => f.ruleId === "apiserver.anonymous"));
  });
});
