import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildTree, PKI } from "./helpers.js";
import { type EtcdHandle, etcdctl, startEtcd } from "./peers/etcd.js";

describe("a real etcd enforces the etcd PKI init wrote", () => {
  let root: string;
  let etcd: EtcdHandle;
  before(async () => {
    ({ root } = await buildTree());
    etcd = await startEtcd(root);
  });
  after(async () => {
    await etcd?.stop();
  });

  it("serves etcdctl with apiserver-etcd-client (and the healthcheck client)", () => {
    const ca = join(root, PKI, "etcd/ca.crt");
    const c = (b: string) => [join(root, PKI, `${b}.crt`), join(root, PKI, `${b}.key`)] as const;
    const put = etcdctl(etcd.endpoint, ca, ...c("apiserver-etcd-client"), ["put", "/kubepki/test", "ok"]);
    assert.equal(put.status, 0, put.stderr);
    const get = etcdctl(etcd.endpoint, ca, ...c("etcd/healthcheck-client"), [
      "get",
      "/kubepki/test",
      "--print-value-only",
    ]);
    assert.equal(get.status, 0, get.stderr);
    assert.equal(get.stdout.trim(), "ok");
  });

  it("refuses a client certificate of the cluster CA", () => {
    const ca = join(root, PKI, "etcd/ca.crt");
    const r = etcdctl(
      etcd.endpoint,
      ca,
      join(root, PKI, "apiserver-kubelet-client.crt"),
      join(root, PKI, "apiserver-kubelet-client.key"),
      ["get", "/kubepki/test"],
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /certificate|deadline exceeded|context deadline|connection/i);
  });
});
