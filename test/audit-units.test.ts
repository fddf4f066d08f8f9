import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { flagsFromCmdline, flagsFromManifest, flagsInText, parseFlags } from "../src/node/flags.js";
import { parseUntrustedYaml } from "../src/node/yaml.js";
import { signatureAlgorithmName, signatureAlgorithmOid } from "../src/x509/der.js";

describe("node readers", () => {
  it("flags as kube-bench reads them", () => {
    const f = parseFlags(["kube-apiserver", "--a=b", "--bare", "--c", "d", "--e=x=y", "--a=later"]);
    assert.deepEqual(Object.fromEntries(f), { a: "later", bare: "true", c: "d", e: "x=y" });
  });

  it("flags inside systemd units and env files", () => {
    const unit = `[Service]\nEnvironment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"\nExecStart=/usr/bin/kubelet \\\n  --anonymous-auth='false' --node-ip="10.0.0.1"\n`;
    assert.deepEqual(flagsInText(unit), [
      "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
      "--kubeconfig=/etc/kubernetes/kubelet.conf",
      "--anonymous-auth=false",
      "--node-ip=10.0.0.1",
    ]);
  });

  it("/proc cmdline of a running component", () => {
    const f = flagsFromCmdline(
      Buffer.from("/usr/local/bin/etcd\0--client-cert-auth=true\0--cert-file\0/x.crt\0"),
      "/proc/1/cmdline",
    );
    assert.equal(f?.component, "etcd");
    assert.equal(f?.flags.get("cert-file"), "/x.crt");
    assert.equal(flagsFromCmdline(Buffer.from("bash\0-c\0x"), "p"), undefined);
  });

  it("static pod manifests: command + args, and ETCD_* environment", () => {
    const m = `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command: [etcd]\n    args: ["--name=a"]\n    env:\n    - name: ETCD_CLIENT_CERT_AUTH\n      value: "true"\n`;
    const { found } = flagsFromManifest(m, "etcd.yaml");
    assert.equal(found[0]?.flags.get("client-cert-auth"), "true");
    assert.equal(found[0]?.flags.get("name"), "a");
    assert.match(flagsFromManifest("\u0000\u0001", "x").error?.message ?? "", /binary/);
  });

  it("untrusted YAML: duplicate keys and alias bombs are refused", () => {
    assert.ok("error" in parseUntrustedYaml("a: 1\na: 2\n"));
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x]",
      ...Array.from(
        { length: 10 },
        (_, i) =>
          `b${i}: &b${i} [${Array(8)
            .fill(i === 0 ? "*a" : `*b${i - 1}`)
            .join(", ")}]`,
      ),
    ].join("\n");
    const r = parseUntrustedYaml(bomb);
    assert.ok("error" in r && /alias/i.test(r.error.message));
    assert.ok(r.error.cause instanceof Error, "the parser's error is kept as the cause");
  });

  it("signature algorithm from DER, bounded on garbage", () => {
    assert.equal(signatureAlgorithmOid(Buffer.from([0x30, 0x82, 0xff])), undefined);
    assert.equal(signatureAlgorithmName(Buffer.from("garbage")), "unknown");
  });
});
