import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { CLI } from "./helpers.js";
import { everyKubeconfig, kubeconfigCa } from "./peers/checks.js";
import { readCerts } from "./peers/node-files.js";
import {
  checkCluster,
  checkEtcd,
  checkFrontProxy,
  checkOldRefused,
  checkSa,
  fileWith,
  makeRig,
  type Rig,
  restartAsPrinted,
  runPhase,
  stopRig,
} from "./peers/phase-checks.js";
import { abortRotation, PHASES, type Phase } from "./peers/rotate.js";

/**
 * Issue 12's acceptance with real peers: `kubepki rotate-ca` (the built CLI) takes each CA of a node
 * through trust, sign and drop; after each phase the peers restart in the printed order and are
 * configured from the node's files as the phase left them (test/peers/). Run alone, after
 * `npm run build`: `node --import tsx --test test/rotate-peers.test.ts` (it starts etcd members).
 */

/** Until the engine is merged, the built CLI has no rotate-ca: the suites say so and skip. */
const engine = spawnSync(process.execPath, [CLI, "rotate-ca", "--help"], { encoding: "utf8" });
const skip =
  engine.status === 0 && engine.stdout.includes("rotate-ca")
    ? false
    : "the built CLI has no `rotate-ca` (npm run build with the engine merged)";

/** The etcd client never failed: resets retried on another member are allowed, a TLS failure is not. */
async function assertZeroFailedOps(
  rig: Rig,
  t: { diagnostic(m: string): void },
  restarts: number,
): Promise<void> {
  const s = await rig.load?.stop();
  assert.ok(s);
  t.diagnostic(
    `etcd load: ${s.ops} operations (put + linearizable read), ${s.retries} retries on another member, ${s.failedOps} failed`,
  );
  assert.ok(s.ops > 50, `only ${s.ops} operations`);
  assert.deepEqual(
    { failed: s.failedOps, tls: s.tls, other: s.other, mismatches: s.mismatches },
    { failed: 0, tls: [], other: [], mismatches: 0 },
  );
  assert.deepEqual(
    rig.etcd?.members.map((m) => m.starts),
    [restarts, restarts, restarts],
    "each member restarted after each phase",
  );
}

const accepted = (phase: Phase) => (phase === "drop" ? "refused" : "accepted");

describe("rotate-ca etcd-ca: a three-member etcd cluster under continuous load, rolling restart after each phase", {
  skip,
}, () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ etcd: true });
  });
  after(() => stopRig(rig));

  for (const phase of PHASES)
    it(`${phase}: members restart one at a time; the old-CA client is ${accepted(phase)}; pairs and openssl agree`, async (t) => {
      const r = await runPhase(rig, "etcd-ca", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      await checkEtcd(rig, phase);
    });

  it("zero failed operations over the whole rotation", (t) => assertZeroFailedOps(rig, t, 4));
});

describe("rotate-ca ca: kubectl with every kubeconfig and the apiserver's kubelet client at every phase", {
  skip,
}, () => {
  let rig: Rig;
  let trustUserAtSign: string | undefined;
  before(async () => {
    rig = await makeRig({ controlPlane: true });
  });
  after(() => stopRig(rig));

  for (const phase of PHASES)
    it(`${phase}: kubectl with each kubeconfig, the kubelet verified, one-certificate signing files, openssl`, async (t) => {
      const r = await runPhase(rig, "ca", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      await checkCluster(rig, phase);
      if (phase === "sign")
        trustUserAtSign = (
          await everyKubeconfig(rig.node.root, rig.apiserver?.url ?? "", [rig.users.trust ?? ""])
        ).at(-1)?.user;
    });

  it("a user kubeconfig issued between trust and sign still works after sign (its CA data holds the new CA)", {
    todo: "engine gap: `issue client` embeds ca.crt alone (the old CA during trust), not the trust bundle",
  }, () => {
    assert.equal(readCerts(fileWith(kubeconfigCa(rig.users.trust ?? ""))).length, 2, "the bundle as CA data");
    assert.equal(trustUserAtSign, "user-trust");
  });

  it("after drop, old-CA client certificates (system:masters minted with the old key, super-admin.conf, a user) are refused at the handshake", () =>
    checkOldRefused(rig));
});

describe("rotate-ca front-proxy-ca: the request-header client CA at every phase", { skip }, () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ controlPlane: true });
  });
  after(() => stopRig(rig));

  for (const phase of PHASES)
    it(`${phase}: the front proxy's user is accepted; the old front-proxy client is ${accepted(phase)}`, async (t) => {
      const r = await runPhase(rig, "front-proxy-ca", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      await checkFrontProxy(rig, phase);
      const seen = await everyKubeconfig(rig.node.root, rig.apiserver?.url ?? "");
      for (const s of seen) assert.equal(s.user, s.expected, `${s.file}: ${s.error}`);
    });
});

describe("rotate-ca sa: service-account tokens at every phase", { skip }, () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ controlPlane: true });
  });
  after(() => stopRig(rig));

  for (const phase of PHASES)
    it(`${phase}: a token of the signing key is accepted; one of the old key is ${accepted(phase)}`, async (t) => {
      const r = await runPhase(rig, "sa", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      await checkSa(rig, phase);
    });
});

describe("rotate-ca --ca all: the whole node with every peer at once", { skip }, () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ controlPlane: true, etcd: true });
  });
  after(() => stopRig(rig));

  for (const phase of PHASES)
    it(`${phase}: etcd, kubectl, the kubelet, the front proxy and tokens all as the phase says`, async (t) => {
      const r = await runPhase(rig, "all", phase);
      t.diagnostic(`printed restart order: ${r.restart.join(", ")}`);
      await checkCluster(rig, phase);
      await checkFrontProxy(rig, phase);
      await checkSa(rig, phase);
      await checkEtcd(rig, phase);
    });

  it("after drop, every old-CA client certificate is refused", () => checkOldRefused(rig));
  it("zero failed etcd operations over the whole rotation", (t) => assertZeroFailedOps(rig, t, 4));
});

/**
 * Abort after sign, restarted in the printed order (etcd first), fails today: the members come back
 * trusting the old etcd CA alone while kube-apiserver (and the members not yet restarted) still
 * present certificates of the new one, so etcd refuses them ("tls: failed to verify client
 * certificate"). Doing it without a failed operation takes two steps: the old leaves back while the
 * bundles stay (restart), then the bundles shrink (restart).
 */
const ABORT_AFTER_SIGN =
  "engine gap: abort after sign shrinks the trust bundles in the same step that restores the old leaves; etcd refuses the new-CA client and peers during the rolling restart";

for (const at of ["trust", "sign"] as const)
  describe(`rotate-ca abort after ${at}: the peers restart into the old PKI without a failed operation`, {
    skip,
  }, () => {
    let rig: Rig;
    before(async () => {
      rig = await makeRig({ controlPlane: true, etcd: true });
    });
    after(() => stopRig(rig));

    const todo = at === "sign" ? ABORT_AFTER_SIGN : undefined;
    it(`trust${at === "sign" ? ", sign" : ""}, then abort: every check passes as before the rotation`, {
      todo,
    }, async (t) => {
      for (const phase of PHASES.slice(0, PHASES.indexOf(at) + 1)) await runPhase(rig, "all", phase);
      const r = await abortRotation(rig.node.root, rig.node.offline);
      t.diagnostic(`abort's printed restart order: ${r.restart.join(", ")}`);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      await restartAsPrinted(rig, r.restart);
      await checkCluster(rig, "none");
      await checkFrontProxy(rig, "none");
      await checkSa(rig, "none");
      await checkEtcd(rig, "none");
    });

    it("zero failed etcd operations", { todo }, (t) => assertZeroFailedOps(rig, t, at === "trust" ? 3 : 4));
  });
