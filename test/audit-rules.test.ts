import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { stringify } from "yaml";
import { auditNode } from "../src/audit/audit.js";
import type { AuditOptions } from "../src/audit/context.js";
import { RULES } from "../src/audit/taxonomy.js";
import {
  apiserverFlags,
  copyTree,
  etcdFlags,
  hardenedNode,
  kubeadmStyleCa,
  kubeletConfig,
  put,
  rsa1024,
  selfSignedKubelet,
  signWith,
  stockKubeadmNode,
  writeKubelet,
  writeManifests,
} from "./fixtures.js";
import { buildTree, PKI, tempDir } from "./helpers.js";
import { INTEGRITY_CHANGES, recordBaseline } from "./integrity-fixtures.js";

const P = "/etc/kubernetes/pki";
const DAY = 86_400_000;

function audit(root: string, opts: Partial<AuditOptions> = {}) {
  return auditNode({ root, ...opts }).findings;
}

const without = (flags: string[], name: string) => flags.filter((f) => !f.startsWith(`--${name}=`));
const with_ = (flags: string[], name: string, value: string) => [
  ...without(flags, name),
  `--${name}=${value}`,
];

interface Case {
  rule: string;
  mutate: (root: string, offline: string) => void | Promise<void>;
  opts?: Partial<AuditOptions>;
  severity?: string;
}

const CASES: Case[] = [
  {
    rule: "pki.ca-key.present",
    severity: "critical",
    mutate: (r) => {
      rmSync(join(r, "etc/kubernetes/manifests"), { recursive: true });
      rmSync(join(r, PKI, "apiserver.crt"));
    },
  },
  {
    rule: "pki.ca-key.present",
    severity: "high",
    mutate: (r) =>
      writeManifests(r, true, {
        kcm: ["kube-controller-manager", "--cluster-signing-key-file=/srv/signer.key"],
      }),
  },
  {
    rule: "pki.sa-key.present",
    mutate: (r) => {
      rmSync(join(r, "etc/kubernetes/manifests"), { recursive: true });
      rmSync(join(r, PKI, "apiserver.crt"));
    },
  },
  {
    rule: "pki.etcd-ca-key.present",
    severity: "critical",
    mutate: (r) => {
      rmSync(join(r, "etc/kubernetes/manifests"), { recursive: true });
      rmSync(join(r, PKI, "apiserver.crt"));
    },
  },
  {
    rule: "pki.front-proxy-ca-key.present",
    severity: "critical",
    mutate: (r) => {
      rmSync(join(r, "etc/kubernetes/manifests"), { recursive: true });
      rmSync(join(r, PKI, "apiserver.crt"));
    },
  },
  { rule: "pki.key.mode", mutate: (r) => chmodSync(join(r, PKI, "apiserver.key"), 0o640) },
  { rule: "pki.cert.mode", mutate: (r) => chmodSync(join(r, PKI, "apiserver.crt"), 0o664) },
  { rule: "pki.cert.mode", opts: { profile: "strict" }, mutate: () => {} },
  { rule: "pki.owner", mutate: (r) => chownSync(join(r, PKI, "front-proxy-client.crt"), 1000, 1000) },
  { rule: "kubelet-pki.mode", mutate: (r) => chmodSync(join(r, "var/lib/kubelet/pki/kubelet.key"), 0o644) },
  { rule: "kubelet.client-ca.mode", mutate: (r) => chmodSync(join(r, PKI, "ca.crt"), 0o666) },
  { rule: "kubeconfig.admin.mode", mutate: (r) => chmodSync(join(r, "etc/kubernetes/admin.conf"), 0o644) },
  {
    rule: "kubeconfig.component.mode",
    mutate: (r) => chmodSync(join(r, "etc/kubernetes/scheduler.conf"), 0o640),
  },
  {
    rule: "kubeconfig.user.exposed",
    mutate: (r) =>
      put(r, "/home/alice/.kube/config", readFileSync(join(r, "etc/kubernetes/admin.conf")), 0o644),
  },
  {
    rule: "kubeconfig.admin.embedded",
    mutate: (r) =>
      put(r, "/home/alice/.kube/config", readFileSync(join(r, "etc/kubernetes/admin.conf")), 0o600),
  },
  {
    rule: "manifest.mode",
    mutate: (r) => chmodSync(join(r, "etc/kubernetes/manifests/kube-apiserver.yaml"), 0o644),
  },
  { rule: "kubelet.config.mode", mutate: (r) => chmodSync(join(r, "var/lib/kubelet/config.yaml"), 0o644) },
  {
    rule: "cert.super-admin.present",
    mutate: (r, o) => copyFileSync(join(o, "super-admin.conf"), join(r, "etc/kubernetes/super-admin.conf")),
  },
  {
    rule: "cert.system-masters",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "legacy-admin",
        organizations: ["system:masters"],
      });
      put(r, `${P}/legacy-admin.crt`, c.crt, 0o644);
      put(r, `${P}/legacy-admin.key`, c.key);
    },
  },
  {
    rule: "cert.client.long-lived",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "jane",
        notAfter: new Date(Date.now() + 800 * DAY),
      });
      put(r, `${P}/jane.crt`, c.crt, 0o644);
    },
  },
  {
    rule: "cert.revoked.present",
    mutate: async (r) => {
      // A client kubeconfig copied into a home folder, then revoked with the CLI.
      const { kubepki } = await import("./helpers.js");
      const out = join(r, "home/alice/.kube/config");
      assert.equal(kubepki(["ledger", "init", "--root", r]).status, 0);
      const issued = kubepki([
        "issue",
        "client",
        "--root",
        r,
        "--user",
        "alice",
        "--ttl",
        "1h",
        "--out",
        out,
      ]);
      assert.equal(issued.status, 0, issued.stderr);
      assert.equal(
        kubepki(["revoke", "--root", r, "--user", "alice", "--reason", "keyCompromise"]).status,
        0,
      );
    },
  },
  {
    rule: "cert.expired",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "old",
        notBefore: new Date(Date.now() - 400 * DAY),
        notAfter: new Date(Date.now() - DAY),
      });
      put(r, `${P}/old.crt`, c.crt, 0o644);
    },
  },
  {
    rule: "cert.expiring",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "soon",
        notAfter: new Date(Date.now() + 10 * DAY),
      });
      put(r, `${P}/soon.crt`, c.crt, 0o644);
    },
  },
  {
    rule: "cert.weak-key",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, { commonName: "weak" }, rsa1024());
      put(r, `${P}/weak.crt`, c.crt, 0o644);
    },
  },
  {
    rule: "cert.weak-sig",
    mutate: (r) => {
      const d = join(r, "tmp");
      const run = (args: string[]) => assert.equal(spawnSync("openssl", args).status, 0, args.join(" "));
      spawnSync("mkdir", ["-p", d]);
      run([
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=sha1",
        "-keyout",
        `${d}/k`,
        "-out",
        `${d}/r`,
      ]);
      run([
        "x509",
        "-req",
        "-sha1",
        "-in",
        `${d}/r`,
        "-CA",
        join(r, PKI, "ca.crt"),
        "-CAkey",
        join(r, PKI, "ca.key"),
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        join(r, PKI, "sha1.crt"),
      ]);
      rmSync(d, { recursive: true });
    },
  },
  {
    rule: "cert.key-mismatch",
    mutate: (r) => copyFileSync(join(r, PKI, "front-proxy-client.key"), join(r, PKI, "apiserver.key")),
  },
  {
    rule: "cert.chain",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/etcd/ca`, {
        commonName: "kube-apiserver",
        extKeyUsage: ["serverAuth"],
        dnsNames: ["kubernetes", "kubernetes.default", "kubernetes.default.svc"],
      });
      put(r, `${P}/apiserver.crt`, c.crt, 0o644);
      put(r, `${P}/apiserver.key`, c.key);
    },
  },
  {
    rule: "cert.san",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "kube-apiserver",
        extKeyUsage: ["serverAuth"],
        dnsNames: ["cp1"],
      });
      put(r, `${P}/apiserver.crt`, c.crt, 0o644);
      put(r, `${P}/apiserver.key`, c.key);
    },
  },
  {
    rule: "cert.ca-leaf",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "rogue",
        isCA: true,
        keyUsage: ["digitalSignature", "keyCertSign"],
        extKeyUsage: ["serverAuth"],
        dnsNames: ["rogue"],
      });
      put(r, `${P}/rogue.crt`, c.crt, 0o644);
    },
  },
  {
    rule: "cert.eku",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "kube-apiserver",
        extKeyUsage: ["clientAuth"],
        dnsNames: ["kubernetes", "kubernetes.default", "kubernetes.default.svc"],
      });
      put(r, `${P}/apiserver.crt`, c.crt, 0o644);
      put(r, `${P}/apiserver.key`, c.key);
    },
  },
  {
    rule: "cert.ca-outlived",
    mutate: async (r) => {
      const c = await signWith(r, `${P}/ca`, {
        commonName: "forever",
        notAfter: new Date(Date.now() + 20 * 365 * DAY),
        extKeyUsage: ["serverAuth"],
        dnsNames: ["x"],
      });
      put(r, `${P}/forever.crt`, c.crt, 0o644);
    },
  },
  {
    rule: "kubeconfig.insecure-skip-verify",
    mutate: (r) => {
      const p = join(r, "etc/kubernetes/scheduler.conf");
      writeFileSync(
        p,
        readFileSync(p, "utf8").replace("    server:", "    insecure-skip-tls-verify: true\n    server:"),
      );
    },
  },
  {
    rule: "apiserver.kubelet-ca.missing",
    mutate: (r) =>
      writeManifests(r, true, { apiserver: without(apiserverFlags(true), "kubelet-certificate-authority") }),
  },
  {
    rule: "apiserver.kubelet-client.missing",
    mutate: (r) =>
      writeManifests(r, true, { apiserver: without(apiserverFlags(true), "kubelet-client-key") }),
  },
  {
    rule: "apiserver.client-ca.missing",
    mutate: (r) => writeManifests(r, true, { apiserver: without(apiserverFlags(true), "client-ca-file") }),
  },
  {
    rule: "apiserver.tls-files.missing",
    mutate: (r) => writeManifests(r, true, { apiserver: without(apiserverFlags(true), "tls-cert-file") }),
  },
  {
    rule: "apiserver.etcd-tls.missing",
    mutate: (r) =>
      writeManifests(r, true, {
        apiserver: with_(apiserverFlags(true), "etcd-servers", "http://127.0.0.1:2379"),
      }),
  },
  {
    rule: "apiserver.anonymous",
    mutate: (r) => writeManifests(r, true, { apiserver: without(apiserverFlags(true), "anonymous-auth") }),
  },
  {
    rule: "apiserver.token-auth-file",
    mutate: (r) =>
      writeManifests(r, true, {
        apiserver: with_(apiserverFlags(true), "token-auth-file", "/etc/kubernetes/tokens.csv"),
      }),
  },
  {
    rule: "apiserver.tls-weak",
    mutate: (r) =>
      writeManifests(r, true, { apiserver: with_(apiserverFlags(true), "tls-min-version", "VersionTLS10") }),
  },
  {
    rule: "apiserver.tls-weak",
    mutate: (r) =>
      writeManifests(r, true, {
        apiserver: with_(
          apiserverFlags(true),
          "tls-cipher-suites",
          "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        ),
      }),
  },
  {
    rule: "apiserver.requestheader.allowed-names",
    mutate: (r) =>
      writeManifests(r, true, { apiserver: without(apiserverFlags(true), "requestheader-allowed-names") }),
  },
  {
    rule: "apiserver.requestheader.ca-reuse",
    mutate: (r) =>
      writeManifests(r, true, {
        apiserver: with_(apiserverFlags(true), "requestheader-client-ca-file", `${P}/ca.crt`),
      }),
  },
  {
    rule: "etcd.tls.missing",
    mutate: (r) =>
      writeManifests(r, true, {
        etcd: with_(etcdFlags(true), "listen-client-urls", "http://127.0.0.1:2379"),
      }),
  },
  {
    rule: "etcd.client-cert-auth.off",
    mutate: (r) => writeManifests(r, true, { etcd: without(etcdFlags(true), "client-cert-auth") }),
  },
  {
    rule: "etcd.auto-tls",
    mutate: (r) => writeManifests(r, true, { etcd: with_(etcdFlags(true), "auto-tls", "true") }),
  },
  {
    rule: "etcd.peer-tls.missing",
    mutate: (r) => writeManifests(r, true, { etcd: without(etcdFlags(true), "peer-key-file") }),
  },
  {
    rule: "etcd.peer-client-cert-auth.off",
    mutate: (r) =>
      writeManifests(r, true, { etcd: with_(etcdFlags(true), "peer-client-cert-auth", "false") }),
  },
  {
    rule: "etcd.peer-auto-tls",
    mutate: (r) => writeManifests(r, true, { etcd: with_(etcdFlags(true), "peer-auto-tls", "true") }),
  },
  {
    rule: "etcd.shared-ca",
    mutate: (r) =>
      writeManifests(r, true, { etcd: with_(etcdFlags(true), "trusted-ca-file", `${P}/ca.crt`) }),
  },
  {
    rule: "etcd.crl.ca-no-crlsign",
    mutate: (r) => kubeadmStyleCa(r, `${P}/etcd/ca`, "etcd-ca"),
  },
  {
    rule: "etcd.crl.unused",
    mutate: (r) => writeManifests(r, true, { etcd: without(etcdFlags(true), "client-crl-file") }),
  },
  {
    rule: "kubelet.serving.self-signed",
    mutate: async (r) => {
      const k = await selfSignedKubelet();
      put(r, "/var/lib/kubelet/pki/kubelet.crt", k.crt, 0o644);
      put(r, "/var/lib/kubelet/pki/kubelet.key", k.key);
    },
  },
  { rule: "kubelet.server-tls-bootstrap.off", mutate: (r) => writeKubelet(r, kubeletConfig(false)) },
  {
    rule: "kubelet.client-rotation.off",
    mutate: (r) => writeKubelet(r, { ...kubeletConfig(true), rotateCertificates: false }),
  },
  {
    rule: "kubelet.anonymous",
    mutate: (r) =>
      writeKubelet(r, {
        ...kubeletConfig(true),
        authentication: { anonymous: { enabled: true }, x509: { clientCAFile: `${P}/ca.crt` } },
      }),
  },
  {
    rule: "kubelet.authz",
    mutate: (r) => writeKubelet(r, { ...kubeletConfig(true), authorization: { mode: "AlwaysAllow" } }),
  },
  {
    rule: "kubelet.client-ca",
    mutate: (r) =>
      writeKubelet(r, { ...kubeletConfig(true), authentication: { anonymous: { enabled: false } } }),
  },
  {
    rule: "kubelet.anonymous",
    // Flags win over the configuration file, as kube-bench reads them.
    mutate: (r) =>
      put(
        r,
        "/etc/systemd/system/kubelet.service.d/20-extra.conf",
        '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=--anonymous-auth=true"\n',
        0o644,
      ),
  },
  {
    // The same tree's key, as MicroK8s would keep it: group microk8s may read it.
    rule: "pki.key.group-readable",
    mutate: (r) => {
      const key = readFileSync(join(r, PKI, "apiserver.key"));
      put(r, "/var/snap/microk8s/current/certs/server.key", key, 0o660);
    },
  },
  {
    // The endpoint moved; admin.conf still names an address the API server certificate lacks.
    rule: "kubeconfig.server.not-covered",
    mutate: (r) => {
      const f = join(r, "etc/kubernetes/admin.conf");
      writeFileSync(
        f,
        readFileSync(f, "utf8").replace("https://10.0.0.10:6443", "https://lb.example.com:6443"),
      );
    },
  },
  {
    rule: "kubepki.backup.break-glass",
    mutate: (r, offline) =>
      put(
        r,
        "/var/lib/kubepki/backups/2026-11-30T05-00-00.000Z/etc/kubernetes/super-admin.conf",
        readFileSync(join(offline, "super-admin.conf")),
      ),
  },
  {
    rule: "kubepki.backup.credentials",
    mutate: (r) =>
      put(
        r,
        "/var/lib/kubepki/backups/2026-11-30T05-00-00.000Z/etc/kubernetes/pki/apiserver.key",
        readFileSync(join(r, PKI, "apiserver.key")),
      ),
  },
  // Changes since the integrity baseline kubepki watch keeps in the ledger.
  ...INTEGRITY_CHANGES.map((c) => ({
    rule: `integrity.${c.change}`,
    mutate: async (r: string) => {
      await recordBaseline(r);
      await c.make(r, tempDir());
    },
  })),
  {
    rule: "node.nothing-found",
    mutate: (r) => {
      for (const d of ["etc", "var"]) rmSync(join(r, d), { recursive: true, force: true });
      put(r, "/etc/hostname", "node1\n", 0o644);
    },
  },
  {
    rule: "node.unreadable",
    mutate: (r) => symlinkSync("../../../../../../../../../../etc/passwd", join(r, PKI, "escape.crt")),
  },
];

describe("audit rules: each fires on a weakened tree and stays silent on the hardened one", () => {
  let base: { root: string; offline: string };
  let baseline: ReturnType<typeof audit>;
  before(async () => {
    base = await hardenedNode();
    baseline = audit(base.root);
  });

  it("the hardened kubepki tree: only the expected custody notes", () => {
    assert.deepEqual(
      baseline.map((f) => `${f.severity} ${f.ruleId}`),
      ["medium pki.etcd-ca-key.present", "medium pki.front-proxy-ca-key.present", "info pki.ca-key.present"],
    );
  });

  it("every rule in the catalog has a case", () => {
    const covered = new Set(CASES.map((c) => c.rule));
    assert.deepEqual(
      RULES.map((r) => r.id).filter((id) => !covered.has(id)),
      [],
    );
  });

  for (const c of CASES) {
    it(`${c.rule}${c.severity ? ` (${c.severity})` : ""}${c.opts ? ` ${JSON.stringify(c.opts)}` : ""}`, async () => {
      const root = copyTree(base.root);
      await c.mutate(root, base.offline);
      const found = audit(root, c.opts).filter((f) => f.ruleId === c.rule);
      const before = baseline.filter(
        (f) => f.ruleId === c.rule && (!c.severity || f.severity === c.severity),
      );
      assert.ok(found.length > 0, `${c.rule} did not fire`);
      if (c.severity)
        assert.ok(
          found.some((f) => f.severity === c.severity),
          `${c.rule}: ${found.map((f) => f.severity)}`,
        );
      if (!c.opts) assert.equal(before.length, 0, `${c.rule} must be silent on the hardened tree`);
      for (const f of found) assert.doesNotMatch(JSON.stringify(f), /PRIVATE KEY|client-key-data/);
    });
  }
});

describe("reference trees", () => {
  it("with --external-ca no CA key finding remains", async () => {
    const { root } = await buildTree({ externalCA: { value: true, where: "t" } });
    assert.deepEqual(
      audit(root).filter((f) => f.ruleId.startsWith("pki.") && f.ruleId.endsWith("key.present")),
      [],
    );
  });

  it("a tree built by kubepki init with defaults has no high or critical finding", async () => {
    const { root } = await buildTree();
    const high = audit(root).filter((f) => f.severity === "high" || f.severity === "critical");
    assert.deepEqual(high, []);
  });

  it("a stock kubeadm control plane yields exactly the expected findings", async () => {
    const root = await stockKubeadmNode();
    const got = audit(root).map((f) => `${f.severity} ${f.ruleId} ${f.path}`);
    assert.deepEqual(got, [
      "high apiserver.kubelet-ca.missing /etc/kubernetes/manifests/kube-apiserver.yaml",
      "medium apiserver.anonymous /etc/kubernetes/manifests/kube-apiserver.yaml",
      "medium cert.super-admin.present /etc/kubernetes/super-admin.conf",
      "medium kubelet.serving.self-signed /var/lib/kubelet/pki/kubelet.crt",
      "medium pki.etcd-ca-key.present /etc/kubernetes/pki/etcd/ca.key",
      "medium pki.front-proxy-ca-key.present /etc/kubernetes/pki/front-proxy-ca.key",
      "low kubelet.server-tls-bootstrap.off /var/lib/kubelet/config.yaml",
      "info etcd.crl.unused /etc/kubernetes/manifests/etcd.yaml",
      "info pki.ca-key.present /etc/kubernetes/pki/ca.key",
    ]);
  });

  it("manifests are read from YAML with the kubelet's flags from its systemd drop-ins", async () => {
    const root = await stockKubeadmNode();
    put(
      root,
      "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
      `[Service]\nEnvironment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS \\\n  --rotate-certificates=false\n`,
      0o644,
    );
    const f = audit(root).find((x) => x.ruleId === "kubelet.client-rotation.off");
    assert.ok(f);
    assert.equal(f.severity, "medium");
    assert.match(f.message, /--rotate-certificates/);
    assert.ok(stringify(f).length > 0);
  });
});
