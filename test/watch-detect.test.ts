import assert from "node:assert/strict";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  mkdirSync,
  readdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { AuditdReader } from "../src/watch/auditd.js";
import { indicators } from "../src/watch/indicators.js";
import { initTree, kubepki, run, tempDir } from "./helpers.js";
import { type RunningCli, readLines, startWatchCli, within } from "./watch-helpers.js";

const hex = (s: string) => Buffer.from(s).toString("hex").toUpperCase();

/**
 * audit.log as auditd writes it (raw format): one openat is SYSCALL, CWD, PATH (one per name:
 * PARENT then NORMAL when a file is created), PROCTITLE and EOE records sharing
 * msg=audit(SECONDS.MILLIS:SERIAL).
 */
function syscall(serial: number, o: { exe: string; comm: string; pid: number; key: string; extra?: string }) {
  const h = `msg=audit(1764489600.${String(serial % 1000).padStart(3, "0")}:${serial}):`;
  return `type=SYSCALL ${h} arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffc4b6e2f3a a2=0 a3=0 items=1 ppid=4123 pid=${o.pid} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=4 comm=${o.comm} exe=${o.exe} subj=unconfined key=${o.key}${o.extra ?? ""}`;
}
const header = (serial: number) =>
  `msg=audit(1764489600.${String(serial % 1000).padStart(3, "0")}:${serial}):`;
const cwd = (serial: number, dir: string) => `type=CWD ${header(serial)} cwd="${dir}"`;
const path = (serial: number, item: number, name: string, nametype = "NORMAL") =>
  `type=PATH ${header(serial)} item=${item} name=${name} inode=393524 dev=08:01 mode=0100600 ouid=0 ogid=0 rdev=00:00 nametype=${nametype} cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`;
const proctitle = (serial: number, argv: string[]) =>
  `type=PROCTITLE ${header(serial)} proctitle=${Buffer.from(argv.join("\0")).toString("hex").toUpperCase()}`;
const eoe = (serial: number) => `type=EOE ${header(serial)} `;

const LOG = [
  // cat of ca.key by an operator, the name relative to the working folder
  syscall(7301, { exe: '"/usr/bin/cat"', comm: '"cat"', pid: 4188, key: '"kubepki-ca-key"' }),
  cwd(7301, "/etc/kubernetes"),
  path(7301, 0, '"pki/ca.key"'),
  proctitle(7301, ["cat", "pki/ca.key"]),
  eoe(7301),
  // a record of another rule: not kubepki's
  syscall(7302, { exe: '"/usr/bin/vim"', comm: '"vim"', pid: 4190, key: '"etc-passwd"' }),
  path(7302, 0, '"/etc/passwd"'),
  eoe(7302),
  // hex-encoded values (a comm with a space, a key auditd chose to encode), no EOE, interleaved with the next
  syscall(7303, {
    exe: '"/usr/bin/python3.12"',
    comm: hex("py thon"),
    pid: 4200,
    key: hex("kubepki-sa-key"),
  }),
  syscall(7304, {
    exe: '"/usr/bin/cp"',
    comm: '"cp"',
    pid: 4210,
    key: '"kubepki-etcd-ca-key"',
    // the ENRICHED log format: translated fields after a 0x1d byte
    extra: '\x1dARCH=x86_64 SYSCALL=openat AUID="alice" UID="root" GID="root"',
  }),
  path(7303, 0, '"/etc/kubernetes/pki/sa.key"'),
  path(7304, 0, '"/etc/kubernetes/pki/etcd/"', "PARENT"),
  path(7304, 1, '"/etc/kubernetes/pki/etcd/ca.key"'),
  eoe(7304),
  // kube-apiserver reading its own key is excluded by the rules; the watch's own reads by its pid
  syscall(7305, { exe: '"/usr/bin/node"', comm: '"node"', pid: 999_999, key: '"kubepki-apiserver-key"' }),
  path(7305, 0, '"/etc/kubernetes/pki/apiserver.key"'),
  eoe(7305),
];

describe("auditd records become events", () => {
  it("reads auditd's raw multi-record format: one event per kubepki syscall, with who did it", () => {
    const reader = new AuditdReader("kubepki-", "999999");
    const events = [...reader.push(`${LOG.join("\n")}\n`, 0), ...reader.flush(true, 0)];
    assert.deepEqual(
      events.map((e) => [e.path, (e.by as { exe: string }).exe, (e.by as { key: string }).key]).sort(),
      [
        ["/etc/kubernetes/pki/ca.key", "/usr/bin/cat", "kubepki-ca-key"],
        ["/etc/kubernetes/pki/etcd/ca.key", "/usr/bin/cp", "kubepki-etcd-ca-key"],
        ["/etc/kubernetes/pki/sa.key", "/usr/bin/python3.12", "kubepki-sa-key"],
      ],
    );
    const cat = events.find((e) => e.path.endsWith("/ca.key") && !e.path.includes("etcd"));
    assert.equal(cat?.change, "indicator-read");
    assert.equal(cat?.time, "2025-11-30T08:00:00.301Z");
    assert.deepEqual(cat?.by, {
      key: "kubepki-ca-key",
      exe: "/usr/bin/cat",
      comm: "cat",
      pid: "4188",
      ppid: "4123",
      uid: "0",
      auid: "1000",
      syscall: "257",
      success: "yes",
      auditSerial: "7301",
    });
    assert.equal(events.find((e) => e.path.endsWith("sa.key"))?.by?.comm, "py thon");
  });

  it("keeps a syscall split across two reads together", () => {
    const reader = new AuditdReader("kubepki-", "1");
    const text = `${LOG.slice(0, 5).join("\n")}\n`;
    const cut = text.indexOf("type=PATH") + 20;
    assert.deepEqual(reader.push(text.slice(0, cut), 0), []);
    const events = reader.push(text.slice(cut), 0);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.path, "/etc/kubernetes/pki/ca.key");
  });

  it("kubepki watch --once --auditd-log: the same events, exit code 1", async () => {
    const { root } = await initTree();
    const log = join(root, "var/log/audit.log");
    mkdirSync(join(root, "var/log"), { recursive: true });
    writeFileSync(log, `${LOG.join("\n")}\n`);
    const events = join(root, "var/log/events.jsonl");
    const r = kubepki(["watch", "--root", root, "--once", "--auditd-log", log, "--events", events]);
    assert.equal(r.status, 1, r.stderr);
    // pid 999999 is not this process: its read is reported too (four kubepki records in all)
    assert.deepEqual(
      readLines(events)
        .map((e) => `${e.change} ${e.path}`)
        .sort(),
      [
        "indicator-read /etc/kubernetes/pki/apiserver.key",
        "indicator-read /etc/kubernetes/pki/ca.key",
        "indicator-read /etc/kubernetes/pki/etcd/ca.key",
        "indicator-read /etc/kubernetes/pki/sa.key",
      ],
    );
    assert.match(r.stdout, /kubepki_integrity_violations_total\{change="indicator-read"\} 4/);
  });
});

describe("a running watch follows the auditd log", () => {
  let root: string;
  let w: RunningCli;
  let log: string;
  before(async () => {
    ({ root } = await initTree());
    log = join(root, "var/log/audit.log");
    mkdirSync(join(root, "var/log"), { recursive: true });
    writeFileSync(log, `${LOG.slice(0, 5).join("\n")}\n`); // already there: not reported again
    w = await startWatchCli(root, ["--auditd-log", log]);
  });
  after(async () => {
    await w?.stop();
  });

  it("reports what is appended (and nothing of what was there), within 3 s", async () => {
    appendFileSync(log, `${LOG.slice(8, 14).join("\n")}\n`);
    const { value } = await within(3000, async () => {
      const e = w.eventLines();
      return e.length >= 2 ? e : undefined;
    });
    assert.deepEqual(value.map((e) => e.path).sort(), [
      "/etc/kubernetes/pki/etcd/ca.key",
      "/etc/kubernetes/pki/sa.key",
    ]);
  });
});

describe("printed rules, unit and manifest", () => {
  it("--print-audit-rules: an auditd rule per indicator file and arch, excluding its readers; a Falco rule", () => {
    const r = kubepki(["watch", "--print-audit-rules"]);
    assert.equal(r.status, 0, r.stderr);
    const rules = r.stdout.split("\n").filter((l) => l.startsWith("-a "));
    const list = indicators();
    assert.equal(rules.length, list.length * 2);
    for (const i of list) {
      const mine = rules.filter((l) => l.includes(` -F path=${i.path} `));
      assert.equal(mine.length, 2, i.path);
      for (const l of mine) {
        assert.match(
          l,
          /^-a always,exit -F arch=b(64|32) -F path=\S+ -F perm=r( -F exe!=\S+)* -k kubepki-[a-z0-9-]+$/,
        );
        assert.ok(l.endsWith(` -k ${i.key}`));
      }
    }
    assert.match(
      r.stdout,
      /path=\/etc\/kubernetes\/pki\/ca\.key -F perm=r -F exe!=\/usr\/local\/bin\/kube-controller-manager -k kubepki-ca-key/,
    );
    assert.match(r.stdout, /path=\/etc\/kubernetes\/pki\/etcd\/ca\.key -F perm=r -k kubepki-etcd-ca-key/);
    assert.match(
      r.stdout,
      /path=\/var\/lib\/kubelet\/pki\/kubelet-client-current\.pem -F perm=r -F exe!=\/usr\/bin\/kubelet -k kubepki-kubelet-pki-kubelet-client-current-pem/,
    );
    assert.doesNotMatch(r.stdout, /^[^#-]/m, "only comments and rules: auditctl reads every line");
    const f = kubepki(["watch", "--print-audit-rules", "--falco"]);
    assert.equal(f.status, 0, f.stderr);
    const falco = parse(f.stdout) as {
      rule: string;
      condition: string;
      priority: string;
    }[];
    assert.equal(falco.length, 1);
    assert.equal(falco[0]?.priority, "WARNING");
    for (const i of list) assert.ok(falco[0]?.condition.includes(`fd.name = ${i.path}`), i.path);
    assert.match(falco[0]?.condition ?? "", /^open_read and \(/);
  });

  it("--falco, --image and --namespace without their --print-* flag are a usage error, not a watch on /", () => {
    const root = tempDir(); // --once: before the check, these started a scan of the root
    for (const [flags, needs] of [
      [["--falco"], "--falco goes with --print-audit-rules"],
      [["--image", "node:24"], "--image goes with --print-daemonset"],
      [["--print-systemd-unit", "--namespace", "ops"], "--namespace goes with --print-daemonset"],
    ] as const) {
      const r = kubepki(["watch", "--root", root, "--once", ...flags]);
      assert.equal(r.status, 2, `${flags.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(needs));
      assert.equal(r.stdout, "");
    }
  });

  it("--once: stdout holds only the metrics (a textfile collector reads it), the events go to stderr", async () => {
    const { root } = await initTree();
    assert.equal(kubepki(["watch", "--root", root, "--once"]).status, 0); // the baseline
    chmodSync(join(root, "etc/kubernetes/pki/apiserver.key"), 0o644);
    const r = kubepki(["watch", "--root", root, "--once"]);
    assert.equal(r.status, 1, r.stderr);
    const body = r.stdout.split("\n").filter((l) => l !== "");
    assert.ok(
      body.length > 0 && body.every((l) => /^(# (HELP|TYPE) )?[a-z_]+/.test(l)),
      r.stdout.slice(0, 400),
    );
    const events = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    assert.equal(events.length, 1, r.stderr);
    assert.equal(events[0].change, "mode-widened");
  });

  it("--print-systemd-unit: systemd-analyze verify accepts it", async () => {
    const { root } = await initTree();
    const r = kubepki(["watch", "--root", root, "--print-systemd-unit"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^ExecStart=\S+\/node \S+\/bin\/kubepki\.js watch --root \/ --listen 127\.0\.0\.1:9793/m,
    );
    assert.match(r.stdout, /^ProtectHome=read-only$/m);
    assert.match(r.stdout, /^ProtectSystem=strict$/m);
    assert.match(r.stdout, /^ReadOnlyPaths=.*\/etc\/kubernetes/m);
    assert.match(r.stdout, /^CapabilityBoundingSet=$/m);
    const unit = join(root, "..", "kubepki-watch.service");
    writeFileSync(unit, r.stdout);
    const v = run("systemd-analyze", ["verify", unit]);
    assert.equal(v.status, 0, v.stderr);
  });

  it("--print-daemonset: read-only host paths, no host namespaces, root without capabilities for 0600 root keys", async () => {
    const { root } = await initTree();
    const r = kubepki([
      "watch",
      "--root",
      root,
      "--print-daemonset",
      "--image",
      "registry.example/kubepki:1",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const ds = parse(r.stdout) as DaemonSetDoc;
    const pod = ds.spec.template.spec;
    assert.equal(ds.kind, "DaemonSet");
    assert.equal(pod.hostPID, false);
    assert.equal(pod.hostNetwork, false);
    const c = pod.containers[0];
    assert.ok(c);
    assert.equal(c.image, "registry.example/kubepki:1");
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    const mounts = c.volumeMounts as { mountPath: string; readOnly: boolean }[];
    assert.deepEqual(
      mounts.map((m) => `${m.mountPath} ${m.readOnly}`),
      ["/host/etc/kubernetes true", "/host/var/lib/kubelet/pki true", "/host/var/lib/kubepki false"],
    );
    assert.equal(pod.securityContext.runAsUser, 0);
    assertKubectlDecodes(r.stdout);
  });

  it("--print-daemonset runs as non-root when every file is readable by one group", async () => {
    const { root } = await initTree();
    for (const dir of ["etc/kubernetes/pki", "etc/kubernetes/pki/etcd", "var/lib/kubelet/pki"])
      for (const name of readdirSync(join(root, dir))) {
        const p = join(root, dir, name);
        if (!statSync(p).isFile()) continue;
        chownSync(p, 0, 4242);
        if ((statSync(p).mode & 0o777) === 0o600) chmodSync(p, 0o640);
      }
    // The ledger (where the watch keeps its baseline) must be the group's too.
    const ledger = join(root, "var/lib/kubepki/ledger.db");
    const asRoot = kubepki(["watch", "--root", root, "--print-daemonset"]);
    assert.match(asRoot.stdout, /runAsUser: 0/);
    chownSync(ledger, 0, 4242);
    chmodSync(ledger, 0o660);
    const r = kubepki(["watch", "--root", root, "--print-daemonset"]);
    assert.equal(r.status, 0, r.stderr);
    const pod = (parse(r.stdout) as DaemonSetDoc).spec.template.spec;
    assert.deepEqual(pod.securityContext.runAsUser, 65534);
    assert.deepEqual(pod.securityContext.runAsGroup, 4242);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assertKubectlDecodes(r.stdout);
  });
});

/** The fields of the printed DaemonSet the tests look at. */
interface DaemonSetDoc {
  kind: string;
  spec: {
    template: {
      spec: {
        hostPID: boolean;
        hostNetwork: boolean;
        securityContext: { runAsUser: number; runAsGroup: number; runAsNonRoot: boolean };
        containers: {
          image: string;
          securityContext: { capabilities: { drop: string[] }; allowPrivilegeEscalation: boolean };
          volumeMounts: { mountPath: string; readOnly: boolean }[];
        }[];
      };
    };
  };
}

const DROPPED = new Set(["creationTimestamp", "env", "status"]);

/** Drops what Kubernetes' encoding omits or adds (false, null, {}, status) so a round trip compares equal. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k, x]) => x !== false && x !== null && !DROPPED.has(k))
        .map(([k, x]) => [k, normalize(x)] as const)
        .filter(([, x]) => !(x && typeof x === "object" && !Array.isArray(x) && Object.keys(x).length === 0)),
    );
  return v;
}

/**
 * kubectl decodes the manifest into its typed objects offline (`set env --local`): a wrong type
 * fails, and an unknown field is dropped, so the round trip must give the same object back.
 */
function assertKubectlDecodes(yaml: string): void {
  const r = run("kubectl", ["set", "env", "--local", "-f", "-", "KUBEPKI_CHECK=1", "-o", "json"], {
    input: yaml,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(normalize(JSON.parse(r.stdout)), normalize(parse(yaml)));
}
