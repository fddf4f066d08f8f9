import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { InputError } from "../src/errors.js";
import { parseConfig } from "../src/pki/config.js";
import type { ConfigChange } from "../src/pki/config-edit.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { kubepki, PKI, REPO, tempDir } from "./helpers.js";

const CONFIG = "etc/kubernetes/kubepki/kubeadm-config.yaml";
type Json = Record<string, unknown>;

/** Every non-empty document of a YAML stream, as plain data, keyed by kind (kubeadm refuses a kind twice). */
function documents(text: string): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const doc of parseAllDocuments(text)) {
    // Through JSON: aliases become separate copies, as kubeadm (YAML -> JSON) reads them.
    const js = JSON.parse(JSON.stringify(doc.toJS())) as Json | null;
    if (js) out.set(String(js.kind), js);
  }
  return out;
}

function get(obj: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((o, k) => (o == null ? undefined : (o as Record<string, unknown>)[k]), obj);
}

/** The input with the announced changes made; each "changed" must name the value it replaced. */
function applyAnnounced(input: Map<string, Json>, changes: ConfigChange[]): Map<string, Json> {
  const docs = structuredClone(input);
  for (const c of changes) {
    if (c.path.length === 0) {
      assert.ok(!docs.has(c.kind), `${c.kind} announced as added but the input has it`);
      docs.set(c.kind, structuredClone(c.value) as Json);
      continue;
    }
    const doc = docs.get(c.kind);
    assert.ok(doc, `a change to ${c.kind}, which is in neither file`);
    assert.equal(get(doc, c.path), c.previous, `${c.kind}.${c.path.join(".")}: previous value`);
    let o = doc as Record<string | number, unknown>;
    for (let i = 0; i < c.path.length - 1; i++) {
      const k = c.path[i] as string | number;
      if (o[k] == null) o[k] = typeof c.path[i + 1] === "number" ? [] : {};
      o = o[k] as Record<string | number, unknown>;
    }
    o[c.path[c.path.length - 1] as string | number] = structuredClone(c.value);
  }
  return docs;
}

interface Run {
  dir: string;
  root: string;
  stderr: string;
  input: string;
  output: string;
  changes: ConfigChange[];
  notes: string[];
}

function initWith(configText: string, ...extra: string[]): Run {
  const dir = tempDir();
  const cfg = join(dir, "kubeadm.yaml");
  writeFileSync(cfg, configText);
  const root = join(dir, "node");
  const r = kubepki([
    "init",
    "--root",
    root,
    "--offline-dir",
    join(dir, "off"),
    "--config",
    cfg,
    "-o",
    "json",
    ...extra,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  return {
    dir,
    root,
    stderr: r.stderr,
    input: configText,
    output: readFileSync(join(root, CONFIG), "utf8"),
    changes: json.kubeadmConfig?.changes ?? [],
    notes: json.kubeadmConfig?.notes ?? [],
  };
}

/** Document by document, field by field: the output is the input plus exactly what was announced. */
function assertOnlyAnnounced(run: Run): void {
  const input = documents(run.input);
  const output = documents(run.output);
  const expected = applyAnnounced(input, run.changes);
  assert.deepEqual([...output.keys()].sort(), [...expected.keys()].sort(), "the same documents");
  for (const [kind, doc] of output) assert.deepEqual(doc, expected.get(kind), kind);
  const order = [...output.keys()].filter((k) => input.has(k));
  assert.deepEqual(order, [...input.keys()], "the operator's documents keep their order");
}

const fields = (run: Run) => run.changes.map((c) => `${c.action} ${c.text}`);

describe("kubeadm-config.yaml is the operator's --config file plus only what kubepki needs", () => {
  it("v1beta4 with every documented field: kept whole, in v1beta4, list flags added", () => {
    const text = readFileSync(join(REPO, "test/data/kubeadm-v1beta4-full.yaml"), "utf8");
    const run = initWith(
      text,
      "--apiserver-cert-extra-sans",
      "10.0.0.5,api2.prod.example",
      "--node",
      "worker-2=192.168.10.22",
    );
    assertOnlyAnnounced(run);
    assert.deepEqual(fields(run), [
      "added ClusterConfiguration.apiServer.certSANs: api2.prod.example",
      "added ClusterConfiguration.apiServer.certSANs: 10.0.0.5",
      "added ClusterConfiguration.apiServer.extraArgs kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
      "added ClusterConfiguration.etcd.local.extraArgs client-crl-file=/etc/kubernetes/pki/etcd/ca.crl",
      "added KubeletConfiguration.tlsCertFile: /var/lib/kubelet/pki/kubelet.crt",
      "added KubeletConfiguration.tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key",
    ]);
    for (const c of run.changes) assert.ok(c.reason.length > 20, `a reason for ${c.text}`);
    // v1beta4 shapes stay: name/value lists, duplicates allowed.
    const cluster = documents(run.output).get("ClusterConfiguration") as Json;
    assert.equal(cluster.apiVersion, "kubeadm.k8s.io/v1beta4");
    assert.deepEqual((get(cluster, ["apiServer", "extraArgs"]) as unknown[]).at(-1), {
      name: "kubelet-certificate-authority",
      value: "/etc/kubernetes/pki/ca.crt",
    });
    // Comments stay where the operator put them.
    assert.match(run.output, /dataDir: \/var\/lib\/etcd-data # on the fast disk/);
    assert.match(run.output, /# v1beta4 allows a flag twice/);
    // The flags added to the file's lists, they did not replace them.
    const api = parseCertificatePem(readFileSync(join(run.root, PKI, "apiserver.crt"), "utf8"), "api");
    for (const san of ["api.prod.example", "api2.prod.example"]) assert.ok(api.dnsNames.includes(san), san);
    for (const ip of ["10.1.1.1", "10.0.0.5"]) assert.ok(api.ipAddresses.includes(ip), ip);
    for (const node of ["worker-1", "worker-2"])
      assert.ok(existsSync(join(run.dir, "off/nodes", node, "kubelet.crt")), node);
    assert.doesNotMatch(run.stderr, /has no InitConfiguration/);
  });

  it("v1beta3 with every documented field: stays v1beta3 with map extraArgs", () => {
    const text = readFileSync(join(REPO, "test/data/kubeadm-v1beta3-full.yaml"), "utf8");
    const run = initWith(text);
    assertOnlyAnnounced(run);
    assert.deepEqual(fields(run), [
      "added ClusterConfiguration.apiServer.extraArgs kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
      "added ClusterConfiguration.etcd.local.extraArgs client-crl-file=/etc/kubernetes/pki/etcd/ca.crl",
      "added KubeletConfiguration.tlsCertFile: /var/lib/kubelet/pki/kubelet.crt",
      "added KubeletConfiguration.tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key",
    ]);
    const docs = documents(run.output);
    for (const kind of ["InitConfiguration", "ClusterConfiguration", "JoinConfiguration"])
      assert.equal(docs.get(kind)?.apiVersion, "kubeadm.k8s.io/v1beta3", kind);
    assert.equal(
      get(docs.get("ClusterConfiguration"), ["apiServer", "extraArgs", "kubelet-certificate-authority"]),
      "/etc/kubernetes/pki/ca.crt",
    );
    assert.doesNotMatch(run.output, /encryptionAlgorithm|certificateValidityPeriod/, "no v1beta4-only field");
  });

  it("flags that change the file's settings, and missing documents, are announced", () => {
    const text = `apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
clusterName: staging
apiServer:
  extraArgs:
    kubelet-certificate-authority: /etc/other/ca.crt
`;
    const run = initWith(
      text,
      "--cluster-name",
      "prod",
      "--node-name",
      "cp-z",
      "--advertise-address",
      "10.0.0.7",
      "--algorithm",
      "RSA-2048",
    );
    assertOnlyAnnounced(run);
    assert.deepEqual(fields(run), [
      "added InitConfiguration (kubeadm.k8s.io/v1beta3)",
      "added InitConfiguration.nodeRegistration.name: cp-z",
      "added InitConfiguration.localAPIEndpoint.advertiseAddress: 10.0.0.7",
      'changed ClusterConfiguration.clusterName: prod (was "staging")',
      'changed ClusterConfiguration.apiServer.extraArgs kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt (was "/etc/other/ca.crt")',
      "added ClusterConfiguration.etcd.local.extraArgs client-crl-file=/etc/kubernetes/pki/etcd/ca.crl",
      "added KubeletConfiguration (kubelet.config.k8s.io/v1beta1)",
      "added KubeletConfiguration.tlsCertFile: /var/lib/kubelet/pki/kubelet.crt",
      "added KubeletConfiguration.tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key",
    ]);
    assert.match(run.changes[3]?.reason ?? "", /from --cluster-name/);
    assert.match(
      run.stderr,
      /kubeadm\.yaml has no InitConfiguration: this machine's name \(cp-z\) and address \(10\.0\.0\.7\) were used/,
    );
  });

  it("text output lists the additions and their reasons", () => {
    const dir = tempDir();
    const cfg = join(dir, "kubeadm.yaml");
    writeFileSync(
      cfg,
      "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  name: cp-a\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.0.8\n",
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
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /\[kubeadm-config\] kubeadm-config\.yaml is kubeadm\.yaml with 7 addition\(s\) or change\(s\):/,
    );
    assert.match(
      r.stdout,
      / {2}added ClusterConfiguration\.encryptionAlgorithm: ECDSA-P256 — kubeadm makes new keys of this algorithm when it renews or adds certificates \(kubepki's default\)/,
    );
  });

  it("serverTLSBootstrap: true is kept, no serving pair is wired in, and the CSR approver is named", () => {
    const text = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp-a
localAPIEndpoint:
  advertiseAddress: 10.0.0.8
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
serverTLSBootstrap: true
`;
    const run = initWith(text);
    assertOnlyAnnounced(run);
    const kubelet = documents(run.output).get("KubeletConfiguration") as Json;
    assert.equal(kubelet.serverTLSBootstrap, true);
    assert.equal(kubelet.tlsCertFile, undefined);
    assert.equal(kubelet.tlsPrivateKeyFile, undefined);
    assert.ok(!run.changes.some((c) => c.kind === "KubeletConfiguration"));
    assert.equal(run.notes.length, 1);
    assert.match(run.stderr, /serverTLSBootstrap: true is kept/);
    assert.match(run.stderr, /run a CSR approver for kubelet-serving CSRs/);
    assert.ok(
      !existsSync(join(run.root, "var/lib/kubelet/pki/kubelet.crt")),
      "no pair the kubelet never uses",
    );
  });

  it("v1beta3 cannot name every choice: what kubeadm would then do is said", () => {
    const text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n";
    const run = initWith(
      text,
      "--node-name",
      "cp-a",
      "--advertise-address",
      "10.0.0.8",
      "--algorithm",
      "ECDSA-P384",
      "--cert-validity",
      "2160h",
    );
    assertOnlyAnnounced(run);
    assert.doesNotMatch(run.output, /encryptionAlgorithm|PublicKeysECDSA|ValidityPeriod/);
    assert.deepEqual(run.notes, [
      "kubeadm.k8s.io/v1beta3 cannot name ECDSA-P384: `kubeadm certs renew` would make RSA-2048 keys; renew with `kubepki certs renew` or move to v1beta4",
      "kubeadm.k8s.io/v1beta3 has no certificateValidityPeriod: `kubeadm certs renew` would make 1-year certificates; renew with `kubepki certs renew` or move to v1beta4",
    ]);
    for (const n of run.notes) assert.ok(run.stderr.includes(n), n);
  });

  it("external etcd: no etcd flag is added", () => {
    const text = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
etcd:
  external:
    endpoints: [https://10.0.0.50:2379]
    caFile: /etc/etcd/ca.crt
    certFile: /etc/etcd/client.crt
    keyFile: /etc/etcd/client.key
`;
    const run = initWith(text, "--node-name", "cp-a", "--advertise-address", "10.0.0.8");
    assertOnlyAnnounced(run);
    assert.ok(!run.changes.some((c) => c.path.includes("etcd")), fields(run).join("\n"));
  });

  it("empty sections (apiServer:, etcd:) are filled in, not refused", () => {
    const text = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
etcd:
  local:
`;
    const run = initWith(text, "--node-name", "cp-a", "--advertise-address", "10.0.0.8");
    assertOnlyAnnounced(run);
    const cluster = documents(run.output).get("ClusterConfiguration");
    assert.deepEqual(get(cluster, ["etcd", "local", "extraArgs"]), [
      { name: "client-crl-file", value: "/etc/kubernetes/pki/etcd/ca.crl" },
    ]);
  });

  it("YAML aliases are read through, and an edit under an anchor changes that place only", () => {
    const text = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  extraArgs: &common
    - name: v
      value: "2"
controllerManager:
  extraArgs: *common
etcd:
  local:
    extraArgs: *common
`;
    const run = initWith(text, "--node-name", "cp-a", "--advertise-address", "10.0.0.8");
    assertOnlyAnnounced(run);
    const cluster = documents(run.output).get("ClusterConfiguration");
    assert.deepEqual(get(cluster, ["controllerManager", "extraArgs"]), [{ name: "v", value: "2" }]);
  });

  it("a trailing --- is accepted, and the output reads back without changes", () => {
    const first = initWith(
      "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  name: cp-a\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.0.8\n---\n",
    );
    const again = initWith(first.output);
    assert.deepEqual(again.changes, []);
    assert.deepEqual(documents(again.output), documents(first.output));
  });
});

describe("kinds and apiVersions, as parseConfig reads them", () => {
  it("names the likely kind, or lists the supported ones", () => {
    const cases: [string, string][] = [
      [
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfig\n",
        "k.yaml:2 InitConfig.kind: unsupported document kubeadm.k8s.io/v1beta3 InitConfig: did you mean InitConfiguration?",
      ],
      [
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfig\n",
        "k.yaml:2 KubeletConfig.kind: unsupported document kubelet.config.k8s.io/v1beta1 KubeletConfig: did you mean KubeletConfiguration?",
      ],
      [
        "apiVersion: v1\nkind: ConfigMap\n",
        "k.yaml:2 ConfigMap.kind: unsupported document v1 ConfigMap; supported kinds: InitConfiguration, ClusterConfiguration, JoinConfiguration, ResetConfiguration, UpgradeConfiguration, KubeletConfiguration, KubeProxyConfiguration, KubepkiConfiguration",
      ],
      [
        "apiVersion: kubelet.config.k8s.io/v1beta2\nkind: KubeletConfiguration\n",
        'k.yaml:1 KubeletConfiguration.apiVersion: unsupported apiVersion "kubelet.config.k8s.io/v1beta2" for KubeletConfiguration; supported: kubelet.config.k8s.io/v1beta1',
      ],
      [
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: KubeletConfiguration\n",
        'k.yaml:1 KubeletConfiguration.apiVersion: unsupported apiVersion "kubeadm.k8s.io/v1beta4" for KubeletConfiguration; supported: kubelet.config.k8s.io/v1beta1',
      ],
      [
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: ClusterConfiguration\n",
        'k.yaml:1 ClusterConfiguration.apiVersion: unsupported apiVersion "kubelet.config.k8s.io/v1beta1" for ClusterConfiguration; supported: kubeadm.k8s.io/v1beta3, v1beta4',
      ],
      [
        'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nserverTLSBootstrap: "true"\n',
        "k.yaml:3 KubeletConfiguration.serverTLSBootstrap: must be true or false",
      ],
    ];
    for (const [text, message] of cases)
      assert.throws(
        () => parseConfig(text, "k.yaml"),
        (e: Error) => e instanceof InputError && e.message === message,
        `${text} -> ${message}`,
      );
  });
});

/** Refused with exactly this message on stderr, exit code 2, no stack trace, nothing written. */
function expectRefused(configText: string, message: string, ...extra: string[]): void {
  const dir = tempDir();
  const cfg = join(dir, "kubeadm.yaml");
  writeFileSync(cfg, configText);
  const root = join(dir, "node");
  const off = join(dir, "off");
  const r = kubepki(["init", "--root", root, "--offline-dir", off, "--config", cfg, ...extra]);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `error: ${message}\n`);
  assert.equal(r.stdout, "");
  assert.ok(!existsSync(root) && !existsSync(off), "nothing written");
}

const INIT4 = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n";
const CLUSTER3 = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n";
const CLUSTER4 = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";

describe("the operator's inputs, read as kubeadm reads them", () => {
  it("v1beta3 extraArgs is a map: a name/value list is refused", () =>
    expectRefused(
      `${CLUSTER3}apiServer:\n  extraArgs:\n    - name: v\n      value: "2"\n`,
      'kubeadm.yaml:5 ClusterConfiguration.apiServer.extraArgs: must be a map of flag: value in kubeadm.k8s.io/v1beta3 (the "- name: FLAG / value: VALUE" list is v1beta4)',
    ));
  it("v1beta4 extraArgs is a name/value list: a map is refused", () =>
    expectRefused(
      `${CLUSTER4}etcd:\n  local:\n    extraArgs:\n      quota-backend-bytes: "8589934592"\n`,
      'kubeadm.yaml:6 ClusterConfiguration.etcd.local.extraArgs: must be a list of "- name: FLAG / value: VALUE" in kubeadm.k8s.io/v1beta4 (the flag: value map is v1beta3)',
    ));
  it("v1beta4 kubeletExtraArgs as a map is refused too", () =>
    expectRefused(
      `${INIT4}nodeRegistration:\n  kubeletExtraArgs:\n    node-labels: a=b\n`,
      'kubeadm.yaml:5 InitConfiguration.nodeRegistration.kubeletExtraArgs: must be a list of "- name: FLAG / value: VALUE" in kubeadm.k8s.io/v1beta4 (the flag: value map is v1beta3)',
    ));
  it("a flag value that YAML reads as a number is refused", () =>
    expectRefused(
      `${CLUSTER3}apiServer:\n  extraArgs:\n    audit-log-maxage: 30\n`,
      'kubeadm.yaml:5 ClusterConfiguration.apiServer.extraArgs.audit-log-maxage: must be a string (quote it: "30")',
    ));
  it("a v1beta4 argument without a name is refused", () =>
    expectRefused(
      `${CLUSTER4}scheduler:\n  extraArgs:\n    - value: "2"\n`,
      "kubeadm.yaml:5 ClusterConfiguration.scheduler.extraArgs.0: an argument needs a name",
    ));
  it("an unknown field inside a list item is refused", () =>
    expectRefused(
      `${CLUSTER4}apiServer:\n  extraVolumes:\n    - name: a\n      hostpath: /a\n`,
      'kubeadm.yaml:6 ClusterConfiguration.apiServer.extraVolumes.0.hostpath: unknown field "hostpath"',
    ));
  it("a v1beta4-only field in v1beta3 is refused", () =>
    expectRefused(
      "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n  imagePullSerial: true\n",
      'kubeadm.yaml:4 InitConfiguration.nodeRegistration.imagePullSerial: unknown field "imagePullSerial"',
    ));
  it("an unsupported apiVersion names the supported ones", () =>
    expectRefused(
      "apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n",
      'kubeadm.yaml:1 ClusterConfiguration.apiVersion: unsupported apiVersion "kubeadm.k8s.io/v1beta2" for ClusterConfiguration; supported: kubeadm.k8s.io/v1beta3, v1beta4',
    ));
  it("a kind v1beta3 does not have", () =>
    expectRefused(
      `${CLUSTER3}---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ResetConfiguration\n`,
      "kubeadm.yaml:5 ResetConfiguration.kind: ResetConfiguration does not exist in kubeadm.k8s.io/v1beta3; use kubeadm.k8s.io/v1beta4",
    ));
  it("a misspelt kind gets the likely one", () =>
    expectRefused(
      "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfigration\n",
      "kubeadm.yaml:2 ClusterConfigration.kind: unsupported document kubeadm.k8s.io/v1beta4 ClusterConfigration: did you mean ClusterConfiguration?",
    ));
  it("a kind given twice", () =>
    expectRefused(
      `${CLUSTER4}---\n${CLUSTER4}`,
      "kubeadm.yaml:5 ClusterConfiguration.kind: ClusterConfiguration is given twice (first at kubeadm.yaml:1 ClusterConfiguration); kubeadm refuses that",
    ));
  it("controlPlaneEndpoint given as a URL gets the hint to drop the scheme", () =>
    expectRefused(
      `${CLUSTER4}controlPlaneEndpoint: https://api.example.com:6443\n`,
      'kubeadm.yaml:3 ClusterConfiguration.controlPlaneEndpoint: "https://api.example.com:6443" is a URL; controlPlaneEndpoint is host[:port]: drop "https://" (e.g. "api.example.com:6443")',
      "--node-name",
      "cp-a",
      "--advertise-address",
      "10.0.0.8",
    ));
  it("a SAN such as 10.0.0.300 is an error, in the file", () =>
    expectRefused(
      `${CLUSTER4}apiServer:\n  certSANs: [api.example.com, 10.0.0.300]\n`,
      'kubeadm.yaml:4 ClusterConfiguration.apiServer.certSANs.1: "10.0.0.300" is not a valid IP address (and not a DNS name: its last label is numeric)',
      "--node-name",
      "cp-a",
      "--advertise-address",
      "10.0.0.8",
    ));
  it("a SAN such as 10.0.0.300 is an error, on the command line", () =>
    expectRefused(
      `${INIT4}nodeRegistration:\n  name: cp-a\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.0.8\n`,
      '--apiserver-cert-extra-sans: "10.0.0.300" is not a valid IP address (and not a DNS name: its last label is numeric)',
      "--apiserver-cert-extra-sans",
      "ok.example.com,10.0.0.300",
    ));
});
