import { join, resolve } from "node:path";
import { exists } from "../fsx/read.js";
import type { LedgerStore } from "../ledger/store.js";
import type { StoreTarget } from "../ledger/target.js";
import { plannedKeyCount } from "../pki/catalog.js";
import { loadConfigFile } from "../pki/config.js";
import type { InitOptions, InitResult, OfflineFolder } from "../pki/init.js";
import { type TreePaths, treePaths } from "../pki/paths.js";
import { type ClusterSpec, type NodeInput, parseNodeFlag, resolveSpec, type SpecInput } from "../pki/spec.js";
import { KeyPool } from "../x509/keygen.js";
import {
  ensureOwnEtcdPair,
  inTree,
  type Notice,
  rememberStore,
  storeFlags,
  storeOf,
  type TreeOptions,
} from "./tree.js";

/** The cluster's settings, as `kubepki init`'s flags name them; everything optional. */
export interface ClusterSettings {
  nodeName?: string;
  advertiseAddress?: string;
  controlPlaneEndpoint?: string;
  clusterName?: string;
  serviceCidr?: string;
  dnsDomain?: string;
  apiserverCertExtraSans?: string[];
  /** ECDSA-P256 (default), ECDSA-P384, RSA-2048, RSA-3072, RSA-4096. */
  algorithm?: string;
  /** Durations as kubeadm writes them ("8760h") or with d ("365d"). */
  certValidity?: string;
  caValidity?: string;
  /** Other nodes whose kubelet serving pair is signed too: "NAME=IP[,DNS...]" or parsed. */
  node?: (string | NodeInput)[];
  offlineDir?: string;
  /** Keep the three CA private keys in the offline folder only. */
  externalCa?: boolean;
}

/** Where the ledger lives (--store and the etcd flags). */
export type StoreSettings = Pick<
  TreeOptions,
  "store" | "etcdCacert" | "etcdCert" | "etcdKey" | "etcdPrefix" | "etcdTimeout"
>;

export interface InitRequest extends ClusterSettings, StoreSettings {
  root: string;
  /** A kubeadm configuration file (v1beta3/v1beta4); the settings above are added to it. */
  config?: string;
  state?: string;
  /** Replace inconsistent existing files (a timestamped backup is kept). */
  force?: boolean;
  keepKubeletServing?: boolean;
  /** Mint a super-admin.conf although the ledger holds an active one. */
  newBreakGlass?: boolean;
  onKey?: (done: number, total: number) => void;
}

/** What init wrote, as `kubepki init -o json` prints it. */
export type InitReport = Omit<InitResult, "issued"> & { crls: string[] };

export interface InitOutcome {
  report: InitReport;
  spec: ClusterSpec;
  /** Warnings beyond report.warnings: the ledger reconciled, CRLs not published, the config notes. */
  notices: Notice[];
}

/** How init runs beyond its flags (joinControlPlane's). */
export interface InitMode {
  /** A further control plane on the cluster's shared CAs: it never mints a break-glass credential. */
  joining?: boolean;
}

/**
 * `kubepki init`: the PKI under root, every certificate recorded in the ledger (reconciled with the
 * tree on every run), and a first CRL per CA (etcd's --client-crl-file fails closed without one).
 */
export async function initCluster(req: InitRequest, mode: InitMode = {}): Promise<InitOutcome> {
  const spec = specOf(req);
  // A fresh tree needs every key: start them now, while the certificate code loads.
  const fresh = !exists(join(resolve(req.root), spec.certificatesDir));
  const keyPool = new KeyPool(spec.algorithm, fresh ? plannedKeyCount(spec) : 0);
  keyPool.onKey = req.onKey;
  const pki = await import("../pki/init.js");
  const offline = pki.offlineFolderFor(req.root, spec);
  const paths = treePaths(req.root, spec.certificatesDir, offline.dir, req.state);
  // The flags override the KubepkiConfiguration's store settings.
  const given = Object.fromEntries(Object.entries(req).filter(([, v]) => v !== undefined));
  const chosen = { ...spec.store, ...given } as InitRequest;
  const target = await storeOf(chosen, paths);
  const outcome = await inTree(paths, () =>
    initIn(req, { spec, paths, offline, keyPool, mode, target }, pki.initPki),
  );
  // An etcd ledger given to init is this node's from now on (commands without --store use it).
  const remember = storeFlags(chosen);
  if (remember) await inTree(paths, () => rememberStore(paths, remember));
  return outcome;
}

interface Prepared {
  spec: ClusterSpec;
  paths: TreePaths;
  offline: OfflineFolder;
  keyPool: KeyPool;
  mode: InitMode;
  target: StoreTarget;
}

/** init with its writes confined: the tree, then the ledger (opened once) and the first CRLs. */
async function initIn(
  req: InitRequest,
  { spec, paths, offline, keyPool, mode, target }: Prepared,
  initPki: (opts: InitOptions) => Promise<InitResult>,
): Promise<InitOutcome> {
  const { openStore } = await import("../ledger/record.js");
  // An existing ledger says whether the cluster has its break-glass credential; a missing one is
  // created only once the tree is written (a refused run leaves nothing behind). An etcd ledger
  // exists for this node once kubepki's etcd client pair does.
  const existing = target.kind === "sqlite" ? exists(target.file) : exists(target.cert);
  let store = existing ? await openStore(target) : undefined;
  try {
    const { issued, ...result } = await initPki({
      root: req.root,
      spec,
      offline,
      force: req.force,
      keyPool,
      keepSelfSignedKubelet: req.keepKubeletServing,
      breakGlass: {
        recorded: store && (await activeBreakGlass(store)),
        mintNew: req.newBreakGlass,
        joining: mode.joining,
      },
    });
    const notices: Notice[] = [];
    const pair = await ensureOwnEtcdPair(target, paths);
    if (pair) issued.push(pair);
    store ??= await openStore(target, "create");
    const crls = await recordTree(paths, store, issued, notices, mode);
    // What init wrote is no integrity change for kubepki watch (issue 13).
    await (await import("../watch/baseline.js")).approveWrites(
      paths,
      store,
      writtenOnNode(result),
      "kubepki init",
    );
    for (const n of result.kubeadmConfig.notes) notices.push(n);
    const superAdmin = result.artifacts.find((a) => a.id === "super-admin.conf");
    if (superAdmin && superAdmin.action !== "skipped")
      notices.push(
        `super-admin.conf (group system:masters: bypasses RBAC and can never be revoked) is in ${result.offlineDir}. ` +
          "Move that folder off this host.",
      );
    return { report: { ...result, crls }, spec, notices };
  } finally {
    await store?.close();
  }
}

/** The node files this run wrote (kept and skipped ones are not). */
function writtenOnNode(result: Omit<InitResult, "issued">): string[] {
  return result.artifacts
    .filter((a) => a.location === "node" && a.action !== "kept" && a.action !== "skipped")
    .flatMap((a) => (a.keyPath ? [a.path, a.keyPath] : [a.path]));
}

/** The settings (and --config file) as the spec resolver takes them, each with the flag it came from. */
export function specOf(req: InitRequest): ClusterSpec {
  const src = (value: string | undefined, where: string) =>
    value === undefined ? undefined : { value, where };
  const fromSettings: SpecInput = {
    nodeName: src(req.nodeName, "--node-name"),
    advertiseAddress: src(req.advertiseAddress, "--advertise-address"),
    controlPlaneEndpoint: src(req.controlPlaneEndpoint, "--control-plane-endpoint"),
    clusterName: src(req.clusterName, "--cluster-name"),
    serviceSubnet: src(req.serviceCidr, "--service-cidr"),
    dnsDomain: src(req.dnsDomain, "--dns-domain"),
    apiServerCertSANs: req.apiserverCertExtraSans?.map((v) => ({
      value: v,
      where: "--apiserver-cert-extra-sans",
    })),
    algorithm: src(req.algorithm, "--algorithm"),
    certValidity: src(req.certValidity, "--cert-validity"),
    caValidity: src(req.caValidity, "--ca-validity"),
    nodes: req.node?.map((v) =>
      typeof v === "string"
        ? { value: parseNodeFlag(v), where: `--node ${v}` }
        : { value: v, where: `--node ${v.name}` },
    ),
    offlineDir: src(req.offlineDir, "--offline-dir"),
    externalCA: req.externalCa ? { value: true, where: "--external-ca" } : undefined,
  };
  return resolveSpec(req.config ? [loadConfigFile(req.config), fromSettings] : [fromSettings]);
}

/**
 * Every certificate signed goes into the ledger, reconciled on every run (a certificate on the node
 * the ledger lacks could never be revoked); a ledger (re)created next to published CRLs takes back
 * the revocations they list; each CA gets its first CRL. Returns the CRLs published.
 */
async function recordTree(
  paths: TreePaths,
  store: LedgerStore,
  issued: InitResult["issued"],
  notices: Notice[],
  mode: InitMode,
): Promise<string[]> {
  const [{ reconcile }, { repairLedger }, { publishCrls }] = await Promise.all([
    import("../ledger/reconcile.js"),
    import("../revoke/ledger-check.js"),
    import("../revoke/crl.js"),
  ]);
  const { recorded } = await reconcile(store, paths, issued);
  if (recorded > 0 && mode.joining)
    notices.push(`recorded ${recorded} certificate(s) of the cluster (its CAs) this node's ledger lacked`);
  else if (recorded > 0) notices.push(`recorded ${recorded} certificate(s) of the tree the ledger lacked`);
  const r = await repairLedger(paths, store);
  if (r.restored + r.serialOnly > 0)
    notices.push(
      `restored ${r.restored + r.serialOnly} revocation(s) from the published CRLs into the ledger`,
    );
  const crls = await publishCrls(paths, store, { missingOnly: true });
  for (const s of crls.skipped) notices.push(`no CRL for ${s.ca}: ${s.reason}`);
  return crls.published.map((c) => c.path);
}

/** The active break-glass kubeconfig the ledger holds, if any (one per cluster). */
async function activeBreakGlass(store: LedgerStore) {
  const active = await store.list({ status: "active" });
  const e = active.find((x) => x.profile === "kubeconfig:super-admin.conf" && x.breakGlass);
  return e ? { path: e.path, sha256: e.sha256, notAfter: e.notAfter } : undefined;
}
