/**
 * The shape of the documents a kubeadm --config file may hold, per apiVersion, as kubeadm's strict
 * decoding reads them (k8s.io/kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta3 and v1beta4 types):
 * every field name, which ones are lists of objects, and the two shapes of extraArgs.
 */

/** A field whose value is not checked further (scalars, string lists, free-form maps). */
export const ANY: true = true;
/** A list whose items are objects of the given shape. */
export class ListOf {
  constructor(readonly item: Shape) {}
}
/** extraArgs / kubeletExtraArgs: a flag -> value map in v1beta3, a "- name/value" list in v1beta4. */
export class Args {
  constructor(readonly style: "map" | "list") {}
}
export type Field = typeof ANY | Shape | ListOf | Args;
export interface Shape {
  readonly [key: string]: Field;
}

export type KubeadmVersion = "v1beta3" | "v1beta4";
export const KUBEADM_GROUP = "kubeadm.k8s.io";
export const KUBEADM_VERSIONS: KubeadmVersion[] = ["v1beta3", "v1beta4"];

const TYPE_META = { apiVersion: ANY, kind: ANY };
const IMAGE_META = { imageRepository: ANY, imageTag: ANY };
const API_ENDPOINT = { advertiseAddress: ANY, bindPort: ANY };
const PATCHES = { directory: ANY };
const BOOTSTRAP_TOKENS = new ListOf({
  token: ANY,
  description: ANY,
  ttl: ANY,
  expires: ANY,
  usages: ANY,
  groups: ANY,
});
const TAINTS = new ListOf({ key: ANY, value: ANY, effect: ANY, timeAdded: ANY });
const HOST_PATH_MOUNTS = new ListOf({
  name: ANY,
  hostPath: ANY,
  mountPath: ANY,
  readOnly: ANY,
  pathType: ANY,
});
const ENV_VARS = new ListOf({ name: ANY, value: ANY, valueFrom: ANY });
const TIMEOUTS = {
  controlPlaneComponentHealthCheck: ANY,
  kubeletHealthCheck: ANY,
  kubernetesAPICall: ANY,
  etcdAPICall: ANY,
  tlsBootstrap: ANY,
  discovery: ANY,
  upgradeManifests: ANY,
};

function nodeRegistration(v: KubeadmVersion): Shape {
  return {
    name: ANY,
    criSocket: ANY,
    taints: TAINTS,
    kubeletExtraArgs: new Args(v === "v1beta3" ? "map" : "list"),
    ignorePreflightErrors: ANY,
    imagePullPolicy: ANY,
    ...(v === "v1beta4" ? { imagePullSerial: ANY } : {}),
  };
}

function init(v: KubeadmVersion): Shape {
  return {
    ...TYPE_META,
    bootstrapTokens: BOOTSTRAP_TOKENS,
    nodeRegistration: nodeRegistration(v),
    localAPIEndpoint: API_ENDPOINT,
    certificateKey: ANY,
    skipPhases: ANY,
    patches: PATCHES,
    ...(v === "v1beta4" ? { dryRun: ANY, timeouts: TIMEOUTS } : {}),
  };
}

function cluster(v: KubeadmVersion): Shape {
  const v4 = v === "v1beta4";
  const extraArgs = new Args(v4 ? "list" : "map");
  const component = { extraArgs, extraVolumes: HOST_PATH_MOUNTS, ...(v4 ? { extraEnvs: ENV_VARS } : {}) };
  return {
    ...TYPE_META,
    etcd: {
      local: {
        ...IMAGE_META,
        dataDir: ANY,
        extraArgs,
        ...(v4 ? { extraEnvs: ENV_VARS } : {}),
        serverCertSANs: ANY,
        peerCertSANs: ANY,
      },
      external: {
        endpoints: ANY,
        caFile: ANY,
        certFile: ANY,
        keyFile: ANY,
        ...(v4 ? { httpEndpoints: ANY } : {}),
      },
    },
    networking: { serviceSubnet: ANY, podSubnet: ANY, dnsDomain: ANY },
    kubernetesVersion: ANY,
    controlPlaneEndpoint: ANY,
    apiServer: { ...component, certSANs: ANY, ...(v4 ? {} : { timeoutForControlPlane: ANY }) },
    controllerManager: component,
    scheduler: component,
    dns: v4 ? { ...IMAGE_META, disabled: ANY } : IMAGE_META,
    ...(v4 ? { proxy: { disabled: ANY } } : {}),
    certificatesDir: ANY,
    imageRepository: ANY,
    featureGates: ANY,
    clusterName: ANY,
    ...(v4
      ? { encryptionAlgorithm: ANY, certificateValidityPeriod: ANY, caCertificateValidityPeriod: ANY }
      : {}),
  };
}

function join(v: KubeadmVersion): Shape {
  const v4 = v === "v1beta4";
  return {
    ...TYPE_META,
    nodeRegistration: nodeRegistration(v),
    caCertPath: ANY,
    discovery: {
      bootstrapToken: {
        token: ANY,
        apiServerEndpoint: ANY,
        caCertHashes: ANY,
        unsafeSkipCAVerification: ANY,
      },
      file: { kubeConfigPath: ANY },
      tlsBootstrapToken: ANY,
      ...(v4 ? {} : { timeout: ANY }),
    },
    controlPlane: { localAPIEndpoint: API_ENDPOINT, certificateKey: ANY },
    skipPhases: ANY,
    patches: PATCHES,
    ...(v4 ? { dryRun: ANY, timeouts: TIMEOUTS } : {}),
  };
}

const RESET_V1BETA4: Shape = {
  ...TYPE_META,
  cleanupTmpDir: ANY,
  certificatesDir: ANY,
  criSocket: ANY,
  dryRun: ANY,
  force: ANY,
  ignorePreflightErrors: ANY,
  skipPhases: ANY,
  unmountFlags: ANY,
};
const UPGRADE_V1BETA4: Shape = {
  ...TYPE_META,
  apply: ANY,
  diff: ANY,
  node: ANY,
  plan: ANY,
  timeouts: TIMEOUTS,
};

/** kubeadm's own kinds, with the shape of each per version (absent: the kind does not exist there). */
export const KUBEADM_KINDS: Record<string, Partial<Record<KubeadmVersion, Shape>>> = {
  InitConfiguration: { v1beta3: init("v1beta3"), v1beta4: init("v1beta4") },
  ClusterConfiguration: { v1beta3: cluster("v1beta3"), v1beta4: cluster("v1beta4") },
  JoinConfiguration: { v1beta3: join("v1beta3"), v1beta4: join("v1beta4") },
  ResetConfiguration: { v1beta4: RESET_V1BETA4 },
  UpgradeConfiguration: { v1beta4: UPGRADE_V1BETA4 },
};

/** The component configurations kubeadm reads from the same file, and kubepki's own document. */
export const OTHER_KINDS: Record<string, string> = {
  KubeletConfiguration: "kubelet.config.k8s.io/v1beta1",
  KubeProxyConfiguration: "kubeproxy.config.k8s.io/v1alpha1",
  KubepkiConfiguration: "kubepki.io/v1alpha1",
};

export const ALL_KINDS = [...Object.keys(KUBEADM_KINDS), ...Object.keys(OTHER_KINDS)];

/** The known kind closest to a misspelt one, if any is close enough to be what was meant. */
export function closestKind(kind: string): string | undefined {
  const k = kind.toLowerCase();
  let best: { kind: string; d: number } | undefined;
  for (const candidate of ALL_KINDS) {
    const c = candidate.toLowerCase();
    const prefix = Math.min(k.length, c.length) >= 4 && (c.startsWith(k) || k.startsWith(c));
    const d = prefix ? 1 : editDistance(k, c);
    if (!best || d < best.d) best = { kind: candidate, d };
  }
  return best && best.d <= Math.max(2, Math.floor(kind.length / 5)) ? best.kind : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = row;
  }
  return prev[b.length] ?? 0;
}
