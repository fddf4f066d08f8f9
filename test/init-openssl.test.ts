import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { LEAVES } from "../src/pki/catalog.js";
import { buildTree, openssl, PKI } from "./helpers.js";

const CA_FILES = { ca: "ca.crt", "front-proxy-ca": "front-proxy-ca.crt", "etcd-ca": "etcd/ca.crt" } as const;

describe("every certificate init writes passes openssl verify against its own CA only", () => {
  let root: string;
  let offline: string;
  before(async () => {
    ({ root, offline } = await buildTree({
      nodes: [{ value: { name: "w1", addresses: ["10.0.0.21"] }, where: "t" }],
    }));
  });

  const cases = () => [
    ...LEAVES.map((l) => ({
      id: l.id,
      file: join(root, PKI, `${l.baseName}.crt`),
      ca: l.ca,
      purposes: l.extKeyUsage.map((e) => (e === "serverAuth" ? "sslserver" : "sslclient")),
    })),
    {
      id: "kubelet",
      file: join(root, "var/lib/kubelet/pki/kubelet.crt"),
      ca: "ca" as const,
      purposes: ["sslserver"],
    },
    {
      id: "kubelet/w1",
      file: join(offline, "nodes/w1/kubelet.crt"),
      ca: "ca" as const,
      purposes: ["sslserver"],
    },
  ];

  it("verifies with the right -purpose against its CA and fails against the other two", () => {
    let checked = 0;
    for (const c of cases()) {
      for (const [caId, caFile] of Object.entries(CA_FILES)) {
        for (const purpose of c.purposes) {
          const r = openssl([
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            join(root, PKI, caFile),
            c.file,
          ]);
          if (caId === c.ca)
            assert.equal(r.status, 0, `${c.id} vs ${caId} (${purpose}): ${r.stdout}${r.stderr}`);
          else assert.notEqual(r.status, 0, `${c.id} must not verify against ${caId}`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 30);
  });

  it("a client-only certificate fails -purpose sslserver", () => {
    const r = openssl([
      "verify",
      "-purpose",
      "sslserver",
      "-CAfile",
      join(root, PKI, "ca.crt"),
      join(root, PKI, "apiserver-kubelet-client.crt"),
    ]);
    assert.notEqual(r.status, 0);
  });

  it("kubeconfig client certificates verify as sslclient against the cluster CA", async () => {
    const { parseKubeconfig } = await import("../src/pki/kubeconfig.js");
    const { readFileSync, writeFileSync } = await import("node:fs");
    for (const f of ["admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"]) {
      const view = parseKubeconfig(readFileSync(join(root, "etc/kubernetes", f), "utf8"), f);
      assert.ok(view.clientCert);
      const tmp = join(root, `${f}.pem`);
      writeFileSync(tmp, view.clientCert.pem);
      const ok = openssl(["verify", "-purpose", "sslclient", "-CAfile", join(root, PKI, "ca.crt"), tmp]);
      assert.equal(ok.status, 0, `${f}: ${ok.stdout}${ok.stderr}`);
      const bad = openssl([
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        join(root, PKI, "etcd/ca.crt"),
        tmp,
      ]);
      assert.notEqual(bad.status, 0);
    }
  });

  it("private keys read back with openssl pkey and match their certificates", () => {
    for (const c of cases()) {
      const key = c.file.replace(/\.crt$/, ".key");
      const fromKey = openssl(["pkey", "-in", key, "-pubout"]);
      const fromCert = openssl(["x509", "-in", c.file, "-noout", "-pubkey"]);
      assert.equal(fromKey.status, 0);
      assert.equal(fromKey.stdout, fromCert.stdout, c.id);
    }
  });
});
