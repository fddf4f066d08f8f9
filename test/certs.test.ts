import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkExpiration } from "../src/app/certs.js";
import { InputError } from "../src/errors.js";
import { resolveInRoot } from "../src/fsx/read.js";
import { humanDuration, kubeadmDate } from "../src/pki/duration.js";
import { parseKubeconfig } from "../src/pki/kubeconfig.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { put, selfSignedKubelet, signWith } from "./fixtures.js";
import { buildTree, CLI, initArgs, kubepki, openssl, PKI, run, snapshot, tempDir } from "./helpers.js";

const DAY = 86_400_000;
const KUBELET_PKI = "var/lib/kubelet/pki";

interface Row {
  name: string;
  caName?: string;
  residualTime: number;
  expirationDate?: string;
  missing: boolean;
  offline?: boolean;
  externallyManaged: boolean;
  warning?: string;
}

function expiration(...args: string[]) {
  const r = kubepki(["certs", "check-expiration", ...args, "-o", "json"]);
  return {
    ...r,
    json: JSON.parse(r.stdout || "{}") as { certificates: Row[]; certificateAuthorities: Row[] },
  };
}

/** One data row exactly as kubeadm's tabwriter lays it out with these column widths. */
function row(r: Row, widths: number[], withCa = true): string {
  const cells = [r.name, kubeadmDate(new Date(r.expirationDate ?? 0)), humanDuration(r.residualTime * 1000)];
  if (withCa) cells.push(r.caName ?? "");
  return cells.map((c, i) => c.padEnd((widths[i] ?? 0) + 3)).join("") + (r.externallyManaged ? "yes" : "no");
}

const byName = (rows: Row[], name: string) => {
  const found = rows.find((r) => r.name === name);
  assert.ok(found, `row ${name}`);
  return found;
};

/** A tree made by the CLI, with another node's kubelet pair in the offline folder. */
function cliTree(...extra: string[]) {
  const dir = tempDir();
  const root = join(dir, "node");
  const offline = join(dir, "offline");
  const r = kubepki(initArgs(root, offline, "--node", "worker1=10.0.0.21,worker1.example.com", ...extra));
  assert.equal(r.status, 0, r.stderr);
  return { dir, root, offline };
}

describe("check-expiration: which CA, which order", () => {
  it("the kubelet's self-signed serving certificate belongs to no CA; kubeadm's rows and CAs in kubeadm's order", async () => {
    const { root } = await buildTree();
    const k = await selfSignedKubelet();
    put(root, "/var/lib/kubelet/pki/kubelet.crt", k.crt, 0o644);
    put(root, "/var/lib/kubelet/pki/kubelet.key", k.key, 0o600);
    const { json, status, stderr } = expiration("--root", root);
    assert.equal(status, 0, stderr);
    const kubelet = byName(json.certificates, "kubelet");
    assert.equal("caName" in kubelet, false, "no caName for a self-signed certificate");
    assert.equal(kubelet.externallyManaged, false);
    assert.equal(byName(json.certificates, "apiserver").caName, "ca");
    assert.equal(byName(json.certificates, "etcd-peer").caName, "etcd-ca");
    assert.deepEqual(
      json.certificates.map((c) => c.name),
      [
        "admin.conf",
        "apiserver",
        "apiserver-etcd-client",
        "apiserver-kubelet-client",
        "controller-manager.conf",
        "etcd-healthcheck-client",
        "etcd-peer",
        "etcd-server",
        "front-proxy-client",
        "kubelet",
        "kubelet.conf",
        "scheduler.conf",
        "super-admin.conf",
      ],
    );
    assert.deepEqual(
      json.certificateAuthorities.map((c) => c.name),
      ["ca", "etcd-ca", "front-proxy-ca"],
    );

    const text = kubepki(["certs", "check-expiration", "--root", root]);
    assert.equal(text.status, 0, text.stderr);
    const lines = text.stdout.split("\n");
    // Column widths: the longest name (apiserver-kubelet-client, 24), then the headers.
    const widths = [24, 22, 13, 21];
    assert.ok(lines.includes(row(kubelet, widths)), `exact kubelet row in:\n${text.stdout}`);
    assert.ok(lines.includes(row(byName(json.certificates, "apiserver"), widths)));
    assert.ok(lines.includes(`${"super-admin.conf".padEnd(27)}(offline)`));
    const caHeader = lines.indexOf(
      "CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED",
    );
    assert.ok(caHeader > 0);
    const caWidths = [21, 22, 13];
    assert.deepEqual(
      lines.slice(caHeader + 1, caHeader + 4),
      json.certificateAuthorities.map((c) => row(c, caWidths, false)),
    );
  });

  it("a plain self-signed certificate has no CA; one signed by a foreign CA gets none and a warning", async () => {
    const { root, dir } = await buildTree();
    const crt = join(root, KUBELET_PKI, "kubelet.crt");
    const key = join(root, KUBELET_PKI, "kubelet.key");
    const r = openssl(
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
        "-keyout",
        key,
        "-out",
        crt,
        "-subj",
        "/CN=cp1@1760000000",
        "-days",
        "30",
      ]),
    );
    assert.equal(r.status, 0, r.stderr);
    let { json } = expiration("--root", root);
    assert.equal(byName(json.certificates, "kubelet").caName, undefined);

    // kubelet-client-current.pem from another cluster's CA.
    const other = join(dir, "other");
    assert.equal(kubepki(initArgs(other, join(dir, "other-off"))).status, 0);
    const foreign = await signWith(other, `/${PKI}/ca`, {
      commonName: "system:node:cp1",
      organizations: ["system:nodes"],
    });
    put(root, "/var/lib/kubelet/pki/kubelet-client-current.pem", foreign.crt + foreign.key, 0o600);
    ({ json } = expiration("--root", root));
    const client = byName(json.certificates, "kubelet-client-current");
    assert.equal(client.caName, undefined);
    assert.match(client.warning ?? "", /not signed by the ca in .*ca\.crt/);
    const text = kubepki(["certs", "check-expiration", "--root", root]);
    assert.match(text.stderr, /kubelet-client-current: not signed by the ca/);
    assert.doesNotMatch(text.stdout + text.stderr, /PRIVATE KEY/);
  });
});

describe("check-expiration: offline files", () => {
  it("super-admin.conf is offline, not missing, when it is not on the node; checked with --offline-dir", () => {
    const { root, offline } = cliTree();
    let r = expiration("--root", root);
    assert.equal(r.status, 0, r.stderr);
    const off = byName(r.json.certificates, "super-admin.conf");
    assert.equal(off.offline, true);
    assert.equal(off.missing, false);
    assert.equal(off.expirationDate, undefined);
    const text = kubepki(["certs", "check-expiration", "--root", root]);
    assert.doesNotMatch(text.stdout, /MISSING/);
    assert.match(text.stderr, /super-admin.conf: kept off the node; pass --offline-dir to check it/);
    // Other nodes' pairs are not looked for without the offline folder.
    assert.equal(
      r.json.certificates.some((c) => c.name.startsWith("kubelet/")),
      false,
    );

    r = expiration("--root", root, "--offline-dir", offline);
    assert.equal(r.status, 0, r.stderr);
    const sa = byName(r.json.certificates, "super-admin.conf");
    assert.equal(sa.caName, "ca");
    assert.ok(sa.residualTime > 364 * 86400);
    const w1 = byName(r.json.certificates, "kubelet/worker1");
    assert.equal(w1.caName, "ca");
    assert.equal(w1.offline, true);
    const t2 = kubepki(["certs", "check-expiration", "--root", root, "--offline-dir", offline]);
    const names = t2.stdout.split("\n").map((l) => l.split(" ")[0]);
    // Go's byte order: "kubelet.conf" < "kubelet/worker1" < "scheduler.conf".
    assert.deepEqual(names.slice(names.indexOf("kubelet"), names.indexOf("super-admin.conf") + 1), [
      "kubelet",
      "kubelet.conf",
      "kubelet/worker1",
      "scheduler.conf",
      "super-admin.conf",
    ]);
    assert.ok(t2.stdout.split("\n").includes(row(w1, [24, 22, 13, 21])));

    // Asked to check the offline folder and it is not there: missing (exit 1).
    rmSync(join(offline, "super-admin.conf"));
    const gone = kubepki(["certs", "check-expiration", "--root", root, "--offline-dir", offline]);
    assert.equal(gone.status, 1);
    assert.match(gone.stdout, /!MISSING! super-admin.conf/);
    const bad = kubepki([
      "certs",
      "check-expiration",
      "--root",
      root,
      "--offline-dir",
      join(offline, "typo"),
    ]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--offline-dir .*typo does not exist/);
  });
});

describe("check-expiration: exit codes", () => {
  it("an empty, missing or mistyped root: 'no PKI found under ROOT', exit 2, nothing created", () => {
    const dir = tempDir();
    const empty = join(dir, "empty");
    mkdirSync(empty);
    for (const root of [empty, join(dir, "typo"), join(dir, "empty", "etc")]) {
      const r = kubepki(["certs", "check-expiration", "--root", root]);
      assert.equal(r.status, 2, root);
      assert.match(r.stderr, new RegExp(`no PKI found under ${root}`));
      assert.equal(r.stdout, "");
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
    // renew too: an error, not a lock folder under the mistyped root.
    for (const names of [["all"], ["apiserver"]]) {
      const r = kubepki(["certs", "renew", ...names, "--root", join(dir, "typo")]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /no PKI found under .*typo/);
    }
    assert.deepEqual(snapshot(dir), {});
    assert.equal(existsSync(join(dir, "typo")), false);
  });

  it("missing, unreadable or expired: exit 1, the table still prints; all valid: exit 0", async () => {
    const { root } = await buildTree();
    assert.equal(kubepki(["certs", "check-expiration", "--root", root]).status, 0);

    rmSync(join(root, PKI, "front-proxy-client.crt"));
    let r = kubepki(["certs", "check-expiration", "--root", root]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^CERTIFICATE +EXPIRES +RESIDUAL TIME/);
    assert.match(r.stdout, /\n!MISSING! front-proxy-client\n/);
    assert.match(r.stdout, /\napiserver +\w{3} \d\d, \d{4}/);
    assert.match(r.stderr, /1 problem\(s\): front-proxy-client missing/);

    writeFileSync(join(root, PKI, "apiserver.crt"), "-----BEGIN CERTIFICATE-----\nnot base64\n");
    const now = Date.now();
    const expired = await signWith(root, `/${PKI}/etcd/ca`, {
      commonName: "kube-apiserver-etcd-client",
      notBefore: new Date(now - 400 * DAY),
      notAfter: new Date(now - DAY),
    });
    writeFileSync(join(root, PKI, "apiserver-etcd-client.crt"), expired.crt);
    r = kubepki(["certs", "check-expiration", "--root", root]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /\n!INVALID! apiserver\n/);
    assert.match(
      r.stdout,
      /\napiserver-etcd-client +\w{3} \d\d, \d{4} \d\d:\d\d UTC {3}<invalid> {7}etcd-ca/,
    );
    assert.match(
      r.stderr,
      /3 problem\(s\): apiserver unreadable, apiserver-etcd-client expired, front-proxy-client missing/,
    );
    // JSON and YAML too: the document is complete and the status says what cron needs to know.
    const j = expiration("--root", root);
    assert.equal(j.status, 1);
    assert.equal(byName(j.json.certificates, "apiserver-etcd-client").residualTime < 0, true);
    // An unreadable row: the library gives the error itself (with its cause chain); -o json its
    // message, as before; the text output prints the message after the row's name.
    const lib = (await checkExpiration({ root })).report.certificates.find((x) => x.name === "apiserver");
    assert.ok(lib?.error instanceof InputError, String(lib?.error));
    const jsonError = (byName(j.json.certificates, "apiserver") as { error?: unknown }).error;
    assert.equal(jsonError, lib.error.message);
    assert.match(lib.error.message, /apiserver\.crt: PEM block "CERTIFICATE" has no END line/);
    assert.ok(r.stderr.includes(`warning: apiserver: ${lib.error.message}\n`), r.stderr);
    assert.equal(kubepki(["certs", "check-expiration", "--root", root, "-o", "yaml"]).status, 1);

    // A missing CA counts too.
    rmSync(join(root, PKI, "front-proxy-ca.crt"));
    const ca = expiration("--root", root);
    assert.equal(ca.status, 1);
    assert.equal(byName(ca.json.certificateAuthorities, "front-proxy-ca").missing, true);
  });
});

describe("certs renew kubelet/NAME", () => {
  it("renews another node's pair in the offline folder, backups there, never on the node", () => {
    const { root, offline, dir } = cliTree();
    const w1 = join(offline, "nodes/worker1");
    const oldCrt = readFileSync(join(w1, "kubelet.crt"), "utf8");
    const oldKey = readFileSync(join(w1, "kubelet.key"), "utf8");
    const old = parseCertificatePem(oldCrt, "old");
    const nodeBefore = snapshot(root);

    const r = kubepki([
      "certs",
      "renew",
      "kubelet/worker1",
      "--root",
      root,
      "--offline-dir",
      offline,
      "-o",
      "json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const now = parseCertificatePem(readFileSync(join(w1, "kubelet.crt"), "utf8"), "new");
    assert.notEqual(now.serialHex, old.serialHex);
    assert.equal(now.commonName, "system:node:worker1");
    assert.deepEqual(now.organizations, ["system:nodes"]);
    assert.deepEqual(now.dnsNames, old.dnsNames);
    assert.deepEqual(now.ipAddresses, ["10.0.0.21"]);
    assert.notEqual(readFileSync(join(w1, "kubelet.key"), "utf8"), oldKey);
    const v = openssl([
      "verify",
      "-purpose",
      "sslserver",
      "-CAfile",
      join(root, PKI, "ca.crt"),
      join(w1, "kubelet.crt"),
    ]);
    assert.equal(v.status, 0, v.stderr);

    const backedUp = JSON.parse(r.stdout).backedUp as string[];
    assert.equal(backedUp.length, 2);
    for (const b of backedUp) assert.ok(b.startsWith(`${join(offline, "backups")}/`), b);
    assert.equal(readFileSync(backedUp.find((b) => b.endsWith("kubelet.key")) ?? "", "utf8"), oldKey);
    // The node tree: only kubepki's ledger changed; no backup of another node's key landed there.
    const changed = Object.keys(snapshot(root)).filter((p) => snapshot(root)[p] !== nodeBefore[p]);
    assert.deepEqual(
      changed.filter((p) => !p.startsWith("var/lib/kubepki/ledger.db")),
      [],
    );
    assert.equal(existsSync(join(root, "var/lib/kubepki/backups")), false);
    assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/);

    const ledger = JSON.parse(kubepki(["ledger", "list", "--root", root, "-o", "json"]).stdout) as {
      profile: string;
      status: string;
      sha256: string;
    }[];
    const w1Entries = ledger.filter((e) => e.profile === "kubelet/worker1");
    assert.deepEqual(w1Entries.map((e) => e.status).sort(), ["active", "superseded"]);
    assert.equal(w1Entries.find((e) => e.status === "active")?.sha256, now.sha256);

    const text = kubepki(["certs", "renew", "kubelet/worker1", "--root", root, "--offline-dir", offline]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stderr, new RegExp(`backed up 2 file\\(s\\) under ${join(offline, "backups")}/`));
    assert.match(
      text.stderr,
      /Copy .*nodes\/worker1\/kubelet.crt and kubelet.key to \/var\/lib\/kubelet\/pki\/ on worker1/,
    );
    assert.doesNotMatch(text.stderr, /Restart kube-apiserver/);
    assert.ok(dir);
  });

  it("super-admin.conf renewed with --offline-dir is backed up in the offline folder", () => {
    const { root, offline } = cliTree();
    const before = readFileSync(join(offline, "super-admin.conf"), "utf8");
    const noOff = kubepki(["certs", "renew", "super-admin.conf", "--root", root]);
    assert.equal(noOff.status, 2);
    assert.match(noOff.stderr, /super-admin.conf: kept off the node; pass --offline-dir where it is/);
    const r = kubepki([
      "certs",
      "renew",
      "super-admin.conf",
      "--root",
      root,
      "--offline-dir",
      offline,
      "-o",
      "json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const backedUp = JSON.parse(r.stdout).backedUp as string[];
    assert.equal(backedUp.length, 1);
    assert.ok(backedUp[0]?.startsWith(`${join(offline, "backups")}/`));
    assert.equal(readFileSync(backedUp[0] ?? "", "utf8"), before);
    assert.equal(existsSync(join(root, "var/lib/kubepki/backups")), false);
    assert.deepEqual(
      parseKubeconfig(readFileSync(join(offline, "super-admin.conf"), "utf8"), "s").clientCert?.organizations,
      ["system:masters"],
    );
  });

  it("all leaves other nodes' pairs alone; kubelet/NAME needs --offline-dir; --help lists the names", () => {
    const { root, offline } = cliTree();
    const w1 = readFileSync(join(offline, "nodes/worker1/kubelet.crt"), "utf8");
    const all = kubepki(["certs", "renew", "all", "--root", root, "--offline-dir", offline, "-o", "json"]);
    assert.equal(all.status, 0, all.stderr);
    const names = JSON.parse(all.stdout).items.map((i: { name: string }) => i.name);
    assert.ok(names.includes("super-admin.conf") && names.includes("apiserver"));
    assert.equal(names.includes("kubelet/worker1"), false);
    assert.equal(readFileSync(join(offline, "nodes/worker1/kubelet.crt"), "utf8"), w1);

    const noOff = kubepki(["certs", "renew", "kubelet/worker1", "--root", root]);
    assert.equal(noOff.status, 2);
    assert.match(
      noOff.stderr,
      /"kubelet\/worker1": other nodes' kubelet pairs are kept in the offline folder; pass --offline-dir/,
    );
    const unknown = kubepki(["certs", "renew", "kubelet/worker9", "--root", root, "--offline-dir", offline]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /nodes\/worker9\/kubelet.crt \(kubepki node add signs one\)/);

    const help = kubepki(["certs", "renew", "--help"]);
    assert.equal(help.status, 0);
    for (const n of ["apiserver-etcd-client", "super-admin.conf", "kubelet/NAME", "all"])
      assert.match(help.stdout, new RegExp(`\\b${n.replace(".", "\\.")}\\b`));
  });

  it("the kubelet's self-signed certificate is not renewed with the cluster CA", async () => {
    const { root } = await buildTree();
    const k = await selfSignedKubelet();
    put(root, "/var/lib/kubelet/pki/kubelet.crt", k.crt, 0o644);
    put(root, "/var/lib/kubelet/pki/kubelet.key", k.key, 0o600);
    const before = snapshot(join(root, KUBELET_PKI));
    const r = kubepki(["certs", "renew", "kubelet", "--root", root]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /kubelet: .*kubelet.crt is self-signed \(the kubelet's own certificate/);
    assert.deepEqual(snapshot(join(root, KUBELET_PKI)), before);
    const all = kubepki(["certs", "renew", "all", "--root", root]);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stderr, /warning: kubelet: .*self-signed/);
    assert.deepEqual(snapshot(join(root, KUBELET_PKI)), before);
  });
});

/**
 * Runs kubepki with --root / in a private mount namespace where the test tree is bind-mounted over
 * /etc and /var/lib: the machine's own /etc is never read or written.
 */
function kubepkiOnNode(root: string, args: string[]) {
  const q = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  const script = [
    `mount --bind ${q(join(root, "etc"))} /etc`,
    `mount --bind ${q(join(root, "var/lib"))} /var/lib`,
    `exec ${q(process.execPath)} ${q(CLI)} ${args.map(q).join(" ")}`,
  ].join(" && ");
  const { NODE_EXTRA_CA_CERTS: _x, ...env } = process.env;
  return run("unshare", ["-m", "--propagation", "private", "sh", "-c", script], {
    env: { ...env, NO_COLOR: "1" },
  });
}

describe("a journal killed while it was being written", () => {
  it("its temp copy is removed by the next command, check-expiration included", async () => {
    const { root } = await buildTree();
    const state = join(root, "var/lib/kubepki");
    mkdirSync(state, { recursive: true });
    const tmp = join(state, ".journal.json.kubepki-tmp-0123456789ab");
    writeFileSync(tmp, '{"version":1,"state":"writing"', { mode: 0o600 });
    const r = kubepki(["certs", "check-expiration", "--root", root]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(existsSync(tmp), false);
  });
});

describe("resolveInRoot with root /", () => {
  it("every absolute path is inside /; links stay resolved against it", () => {
    assert.equal(resolveInRoot("/", "/etc/kubernetes/pki/ca.crt"), "/etc/kubernetes/pki/ca.crt");
    assert.equal(resolveInRoot("/", "/"), "/");
    assert.equal(resolveInRoot("/srv/node", "/srv/other/ca.crt"), undefined);
  });
});

const canUnshare = process.getuid?.() === 0 && run("unshare", ["-m", "true"]).status === 0;

describe("--root / (private mount namespace)", { skip: !canUnshare && "needs root and unshare -m" }, () => {
  it("check-expiration and renew kubelet/NAME work on the node's own /, backups in the offline folder", () => {
    const { root, offline } = cliTree();
    const before = existsSync("/etc/kubernetes");
    const text = kubepkiOnNode(root, ["certs", "check-expiration", "--root", "/", "--offline-dir", offline]);
    assert.equal(text.status, 0, text.stderr);
    const inTree = kubepki(["certs", "check-expiration", "--root", root, "--offline-dir", offline]);
    assert.equal(text.stdout, inTree.stdout, "the same table as with --root <tree>");
    assert.match(text.stdout, /\nkubelet\/worker1 {12}\w{3}/);

    const r = kubepkiOnNode(root, [
      "certs",
      "renew",
      "kubelet/worker1",
      "apiserver",
      "--root",
      "/",
      "--offline-dir",
      offline,
      "-o",
      "json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const backedUp = JSON.parse(r.stdout).backedUp as string[];
    assert.deepEqual(
      backedUp
        .map((b) =>
          b.startsWith(`${offline}/backups/`)
            ? "offline"
            : b.startsWith("/var/lib/kubepki/backups/")
              ? "node"
              : b,
        )
        .sort(),
      ["node", "node", "offline", "offline"],
    );
    assert.ok(
      existsSync(join(root, "var/lib/kubepki/backups")),
      "node backups landed in the tree mounted as /var/lib",
    );
    const v = openssl([
      "verify",
      "-CAfile",
      join(root, PKI, "ca.crt"),
      join(offline, "nodes/worker1/kubelet.crt"),
    ]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(existsSync("/etc/kubernetes"), before, "the machine's /etc is untouched");

    const empty = tempDir();
    mkdirSync(join(empty, "etc"));
    mkdirSync(join(empty, "var/lib"), { recursive: true });
    const none = kubepkiOnNode(empty, ["certs", "check-expiration", "--root", "/"]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no PKI found under \//);
  });
});
