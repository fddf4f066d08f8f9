import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { CLI, initTree, kubepki } from "./helpers.js";

const { root } = await initTree();

/** The command's output piped into a reader that goes away at once. */
function piped(args: string[], reader: string): { status: number; stderr: string } {
  const quoted = args.map((a) => `'${a}'`).join(" ");
  const r = spawnSync(
    "bash",
    ["-c", `"${process.execPath}" "${CLI}" ${quoted} | ${reader} >/dev/null; exit \${PIPESTATUS[0]}`],
    { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
  );
  return { status: r.status ?? -1, stderr: r.stderr };
}

describe("the CLI never surprises", () => {
  it("output ends quietly when the reader goes away (EPIPE), for every command", () => {
    for (const args of [
      ["ledger", "list", "--root", root],
      ["certs", "check-expiration", "--root", root],
      ["audit", "--root", root, "-o", "json"],
      ["ledger", "list", "--root", root, "-o", "yaml"],
      ["audit", "--help"],
    ])
      for (const reader of ["head -c 1", "true"]) {
        const r = piped(args, reader);
        assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at |Error/, `${args.join(" ")} | ${reader}: ${r.stderr}`);
        assert.ok(r.status === 0 || r.status === 1, `${args.join(" ")} | ${reader}: exit ${r.status}`);
      }
  });

  it("-o json and -o yaml on crl, ledger import, ledger list and serve --setup-only", () => {
    for (const fmt of ["json", "yaml"]) {
      const read = (args: string[]) => {
        const r = kubepki([...args, "-o", fmt]);
        assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
        return fmt === "json" ? JSON.parse(r.stdout) : parse(r.stdout);
      };
      assert.equal(read(["crl", "--root", root, "--ca", "etcd-ca"]).ca, "etcd-ca");
      assert.equal(typeof read(["ledger", "import", "--root", root]).known, "number");
      assert.ok(read(["ledger", "list", "--root", root]).length >= 10);
      const setup = read(["serve", "--root", root, "--setup-only"]);
      assert.match(setup.authorizationConfig, /authorization-config\.yaml$/);
    }
  });

  it("a usage error prints the error and one line pointing to --help, exit 2", () => {
    for (const [args, help] of [
      [["audit", "-o", "pdf"], "kubepki audit --help"],
      [["ledger", "list", "--bogus"], "kubepki ledger list --help"],
      [["certs", "renew"], "kubepki certs renew --help"],
    ] as const) {
      const r = kubepki([...args]);
      assert.equal(r.status, 2);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 2, r.stderr);
      assert.match(lines[0] ?? "", /^error: /);
      assert.equal(lines[1], `(run '${help}' for usage and examples)`);
    }
  });

  it("help texts: an example each, no empty or repeated defaults; renew lists the names it accepts", () => {
    for (const cmd of [
      ["init"],
      ["audit"],
      ["crl"],
      ["serve"],
      ["hunt"],
      ["watch"],
      ["revoke"],
      ["issue", "client"],
      ["ledger", "list"],
      ["ledger", "import"],
      ["certs", "renew"],
    ]) {
      const r = kubepki([...cmd, "--help"]);
      const text = r.stdout.replace(/\s+/g, " ");
      assert.equal(r.status, 0);
      assert.match(text, /Examples?:/, cmd.join(" "));
      assert.doesNotMatch(text, /\(default: \[\]\)/, cmd.join(" "));
      assert.doesNotMatch(text, /by default\)? \(default:|\(default:? [^)]*\) \(default:/, cmd.join(" "));
    }
    const renew = kubepki(["certs", "renew", "--help"]).stdout;
    for (const name of [
      "all",
      "apiserver-kubelet-client",
      "admin.conf",
      "etcd-healthcheck-client",
      "kubelet",
    ])
      assert.match(renew, new RegExp(`\\b${name}\\b`), name);
  });

  it("options a command does not use are not offered", () => {
    for (const cmd of [
      ["ledger", "list"],
      ["ledger", "import"],
    ]) {
      assert.doesNotMatch(kubepki([...cmd, "--help"]).stdout, /--offline-dir/);
      assert.equal(kubepki([...cmd, "--root", root, "--offline-dir", "/tmp"]).status, 2);
    }
    const serve = kubepki(["serve", "--root", root, "-o", "json"]);
    assert.equal(serve.status, 2);
    assert.match(serve.stderr, /--setup-only/);
  });

  it("ledger list shows each certificate's name and path, by profile and expiry", () => {
    const text = kubepki(["ledger", "list", "--root", root]).stdout;
    const header = text.split("\n")[0] ?? "";
    assert.match(header, /^PROFILE\s+NAME\s+STATUS\s+NOT AFTER\s+SUBJECT\s+SERIAL\s+PATH$/);
    assert.match(text, /kubeconfig:admin\.conf\s+admin\.conf\s+active\s.*\/etc\/kubernetes\/admin\.conf/);
    assert.match(text, /\nca\s+etcd\/ca\s+active\s.*\/etc\/kubernetes\/pki\/etcd\/ca\.crt/);
    const rows = JSON.parse(kubepki(["ledger", "list", "--root", root, "-o", "json"]).stdout) as {
      profile: string;
      notAfter: string;
      name: string;
    }[];
    const keys = rows.map((r) => `${r.profile}\u0000${r.notAfter}`);
    assert.deepEqual(keys, [...keys].sort());
    assert.ok(rows.every((r) => r.name));
  });
});
