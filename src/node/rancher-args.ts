import type { NodeFiles } from "./files.js";
import { type Component, type ComponentFlags, parseFlags } from "./flags.js";
import { isRecord, parseUntrustedYaml } from "./yaml.js";

/** The `*-arg` lists of k3s and RKE2 and the component each one feeds. */
const ARG_KEYS: Record<string, Component> = {
  "kube-apiserver-arg": "kube-apiserver",
  "kube-controller-manager-arg": "kube-controller-manager",
  "kube-scheduler-arg": "kube-scheduler",
  "etcd-arg": "etcd",
  "kubelet-arg": "kubelet",
};

export interface RancherConfig {
  /** The files (and unit) the settings came from, in the order applied. */
  sources: string[];
  args: Map<Component, string[]>;
  dataDir?: string;
}

/** config.yaml and its drop-ins merged: a later file replaces a key, "key+" appends to it. */
function mergedConfig(files: NodeFiles, distro: "k3s" | "rke2") {
  const base = `/etc/rancher/${distro}/config.yaml`;
  const paths = [base, ...files.walk(`${base}.d`, 0).filter((p) => /\.ya?ml$/.test(p))];
  const merged = new Map<string, unknown>();
  const sources: string[] = [];
  for (const p of paths) {
    const doc = readConfigDoc(files, distro, p);
    if (!doc) continue;
    sources.push(p);
    for (const [k, v] of Object.entries(doc)) {
      if (k.endsWith("+")) merged.set(k.slice(0, -1), [...asList(merged.get(k.slice(0, -1))), ...asList(v)]);
      else merged.set(k, v);
    }
  }
  return { merged, sources };
}

function readConfigDoc(files: NodeFiles, distro: string, p: string): Record<string, unknown> | undefined {
  const data = files.read(p, 1024 * 1024);
  if (!data) return undefined;
  files.stat(p);
  const parsed = parseUntrustedYaml(data.toString("utf8"));
  if ("error" in parsed) {
    files.warn(p, `${distro} configuration not readable: ${parsed.error.message}`);
    return undefined;
  }
  const doc = parsed.docs[0];
  return isRecord(doc) ? doc : undefined;
}

/** The service's own `--kube-apiserver-arg=...` (or `--kube-apiserver-arg ...`) come last. */
function commandLineArgs(argv: string[], args: Map<Component, string[]>): void {
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([a-z-]+-arg)(?:=(.*))?$/.exec(argv[i] ?? "");
    const component = m ? ARG_KEYS[m[1] ?? ""] : undefined;
    if (!m || !component) continue;
    const value = m[2] ?? argv[++i] ?? "";
    args.get(component)?.push(value);
  }
}

/**
 * /etc/rancher/<distro>/config.yaml, then config.yaml.d/*.yaml in name order: a later file
 * replaces a key, "key+" appends to it. Command-line `--kube-apiserver-arg=...` of the service
 * come last.
 */
export function readRancherConfig(
  files: NodeFiles,
  distro: "k3s" | "rke2",
  argv: string[] = [],
): RancherConfig {
  const { merged, sources } = mergedConfig(files, distro);
  const args = new Map<Component, string[]>();
  for (const [key, component] of Object.entries(ARG_KEYS))
    args.set(component, asList(merged.get(key)).map(String));
  commandLineArgs(argv, args);
  const dataDir = typeof merged.get("data-dir") === "string" ? String(merged.get("data-dir")) : undefined;
  return { sources, args, dataDir };
}

function asList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * The flags a k3s server gives the components it embeds (k3s pkg/daemons/control/server.go,
 * pkg/daemons/agent), then the configured `*-arg` values on top: a later flag wins, as in k3s.
 */
export function k3sComponents(
  files: NodeFiles,
  cfg: RancherConfig,
  server: boolean,
  unit?: string,
): ComponentFlags[] {
  const data = cfg.dataDir ?? "/var/lib/rancher/k3s";
  const agent = `${data}/agent`;
  const embeddedEtcd = files.isDir(`${data}/server/db/etcd`);
  const defaults: Partial<Record<Component, Record<string, string>>> = {
    kubelet: {
      "client-ca-file": `${agent}/client-ca.crt`,
      "tls-cert-file": `${agent}/serving-kubelet.crt`,
      "tls-private-key-file": `${agent}/serving-kubelet.key`,
      kubeconfig: `${agent}/kubelet.kubeconfig`,
      "anonymous-auth": "false",
      "authorization-mode": "Webhook",
      "authentication-token-webhook": "true",
    },
  };
  if (server) Object.assign(defaults, k3sServerFlags(data, embeddedEtcd));
  // Findings point at the file that configures the flags: the last config file, else the unit.
  const where = cfg.sources[cfg.sources.length - 1] ?? unit ?? `${data}/server`;
  return Object.entries(defaults).map(([component, flags]) => {
    const given = (cfg.args.get(component as Component) ?? []).map((a) => `--${a.replace(/^--/, "")}`);
    const merged = new Map([...Object.entries(flags), ...parseFlags(given)]);
    return { component: component as Component, source: where, flags: merged };
  });
}

/** What a k3s server passes kube-apiserver, kube-controller-manager and kube-scheduler (server.go). */
function k3sServerFlags(
  data: string,
  embeddedEtcd: boolean,
): Partial<Record<Component, Record<string, string>>> {
  const tls = `${data}/server/tls`;
  return {
    "kube-apiserver": {
      "tls-cert-file": `${tls}/serving-kube-apiserver.crt`,
      "tls-private-key-file": `${tls}/serving-kube-apiserver.key`,
      "client-ca-file": `${tls}/client-ca.crt`,
      "kubelet-certificate-authority": `${tls}/server-ca.crt`,
      "kubelet-client-certificate": `${tls}/client-kube-apiserver.crt`,
      "kubelet-client-key": `${tls}/client-kube-apiserver.key`,
      "requestheader-client-ca-file": `${tls}/request-header-ca.crt`,
      "requestheader-allowed-names": "system:auth-proxy",
      "proxy-client-cert-file": `${tls}/client-auth-proxy.crt`,
      "proxy-client-key-file": `${tls}/client-auth-proxy.key`,
      "service-account-key-file": `${tls}/service.key`,
      "service-account-signing-key-file": `${tls}/service.key`,
      "anonymous-auth": "false",
      "authorization-mode": "Node,RBAC",
      ...(embeddedEtcd
        ? {
            "etcd-servers": "https://127.0.0.1:2379",
            "etcd-cafile": `${tls}/etcd/server-ca.crt`,
            "etcd-certfile": `${tls}/etcd/client.crt`,
            "etcd-keyfile": `${tls}/etcd/client.key`,
          }
        : { "etcd-servers": `unix://${data}/server/kine.sock` }),
    },
    "kube-controller-manager": {
      kubeconfig: `${data}/server/cred/controller.kubeconfig`,
      "service-account-private-key-file": `${tls}/service.key`,
      "root-ca-file": `${tls}/server-ca.crt`,
      "cluster-signing-kube-apiserver-client-key-file": `${tls}/client-ca.key`,
      "cluster-signing-kubelet-client-key-file": `${tls}/client-ca.key`,
      "cluster-signing-kubelet-serving-key-file": `${tls}/server-ca.key`,
      "cluster-signing-legacy-unknown-key-file": `${tls}/client-ca.key`,
    },
    "kube-scheduler": { kubeconfig: `${data}/server/cred/scheduler.kubeconfig` },
  };
}
