import { stringify } from "yaml";
import type { NodeSnapshot } from "../node/snapshot.js";
import { VERSION } from "../version.js";

/** What the printed unit and manifest run. */
export interface DeployOptions {
  listen: string;
  /** The node's PKI folders (read-only mounts). */
  readDirs: string[];
  /** kubepki's state folder: the ledger holds the baseline (the one writable mount). */
  stateDir: string;
  /** Where the CAs' CRLs are re-signed (writable for the systemd service only). */
  crlDir: string;
  image: string;
  namespace: string;
  /** Run as this uid:gid (non-root) when every file the watch reads allows it, else root with no capabilities. */
  runAs: { uid: number; gid: number };
}

export const DEFAULT_IMAGE = `kubepki:${VERSION}`;
export const METRICS_PORT = 9793;

/**
 * Non-root when the files allow it: if every key and certificate the watch reads is readable by
 * one group (k0s' 0640 component keys, MicroK8s' 0660), that group; kubeadm's 0600 root keys
 * need root (with every capability dropped: root reads its own files without CAP_DAC_OVERRIDE).
 */
export function runAsFor(snap: NodeSnapshot, ledgerFile: string): { uid: number; gid: number } {
  const facts = [...snap.pem.keys()].map((p) => snap.files.stat(p)).filter((f) => f !== undefined);
  const gids = new Set(facts.filter((f) => (f.mode & 0o004) === 0).map((f) => f.gid));
  const groupReadable = facts.every((f) => (f.mode & 0o004) !== 0 || (f.mode & 0o040) !== 0);
  const [gid] = [...gids];
  // The watch writes the baseline into the ledger: kubepki makes it 0600, so then root it is.
  const ledger = snap.files.stat(ledgerFile);
  const ledgerOk = !ledger || (ledger.gid === gid && (ledger.mode & 0o060) === 0o060);
  if (facts.length > 0 && groupReadable && ledgerOk && gids.size === 1 && gid !== undefined && gid !== 0)
    return { uid: 65534, gid };
  return { uid: 0, gid: 0 };
}

/**
 * A systemd service running `node bin/kubepki.js watch`: read-only system, the state folder and
 * the PKI folder (CRL refresh) writable; /home and /root read-only, not hidden (users' kubeconfigs
 * are watched, and the program may live there).
 */
export function systemdUnit(o: DeployOptions, command: [node: string, script: string]): string {
  const user = o.runAs.uid === 0 ? "root" : String(o.runAs.uid);
  const exec = command
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/(["\\$`])/g, "\\$1")}"`))
    .join(" ");
  return `# kubepki watch as a systemd service: /etc/systemd/system/kubepki-watch.service
# systemctl daemon-reload && systemctl enable --now kubepki-watch
[Unit]
Description=kubepki watch: certificate expiry metrics, fresh CRLs, key-file integrity
After=network-online.target

[Service]
ExecStart=${exec} watch --root / --listen ${o.listen} --events /var/log/kubepki/events.jsonl
Restart=always
RestartSec=5
User=${user}
Group=${o.runAs.uid === 0 ? "root" : String(o.runAs.gid)}
LogsDirectory=kubepki
LogsDirectoryMode=0700
# root only for the keys' owner: no capability (CAP_DAC_OVERRIDE included) is kept.
CapabilityBoundingSet=
AmbientCapabilities=
NoNewPrivileges=true
ProtectSystem=strict
ReadOnlyPaths=${o.readDirs.join(" ")}
ReadWritePaths=${o.stateDir} ${o.crlDir}
ProtectHome=read-only
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
MemoryMax=200M

[Install]
WantedBy=multi-user.target
`;
}

const volumeName = (dir: string) => `host${dir.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`;

/**
 * A DaemonSet: the PKI folders mounted read-only under /host, kubepki's state folder writable (the
 * ledger keeps the baseline), no host PID or network namespace, every capability dropped, a
 * read-only root filesystem. CRLs are not refreshed from a pod (--crl-refresh 0: a warning and
 * the metric); the systemd unit does that on a control plane.
 */
export function daemonSet(o: DeployOptions): string {
  const mounts = [
    ...o.readDirs.map((d) => ({ dir: d, readOnly: true })),
    { dir: o.stateDir, readOnly: false },
  ];
  const nonRoot = o.runAs.uid !== 0;
  const doc = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name: "kubepki-watch",
      namespace: o.namespace,
      labels: { "app.kubernetes.io/name": "kubepki-watch" },
    },
    spec: {
      selector: { matchLabels: { "app.kubernetes.io/name": "kubepki-watch" } },
      template: {
        metadata: {
          labels: { "app.kubernetes.io/name": "kubepki-watch" },
          annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(METRICS_PORT) },
        },
        spec: {
          hostPID: false,
          hostNetwork: false,
          hostIPC: false,
          automountServiceAccountToken: false,
          tolerations: [{ operator: "Exists" }],
          securityContext: {
            runAsUser: o.runAs.uid,
            runAsGroup: o.runAs.gid,
            runAsNonRoot: nonRoot,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: "watch",
              image: o.image,
              args: ["watch", "--root", "/host", "--listen", `0.0.0.0:${METRICS_PORT}`, "--crl-refresh", "0"],
              ports: [{ name: "metrics", containerPort: METRICS_PORT }],
              readinessProbe: { httpGet: { path: "/healthz", port: "metrics" } },
              resources: { requests: { cpu: "10m", memory: "40Mi" }, limits: { memory: "150Mi" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                privileged: false,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: mounts.map((m) => ({
                name: volumeName(m.dir),
                mountPath: `/host${m.dir}`,
                readOnly: m.readOnly,
              })),
            },
          ],
          volumes: mounts.map((m) => ({
            name: volumeName(m.dir),
            hostPath: { path: m.dir, type: m.readOnly ? "Directory" : "DirectoryOrCreate" },
          })),
        },
      },
    },
  };
  return `# kubepki watch as a DaemonSet: kubectl apply -f kubepki-watch.yaml\n${stringify(doc)}`;
}
