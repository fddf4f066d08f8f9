import { stringify } from "yaml";
import { type Component, leafEntry } from "../pki/catalog.js";
import { caPaths, kubeletClientPath, kubeletPairIn, leafPaths, saPaths, treePaths } from "../pki/paths.js";

/**
 * The files whose reads betray an intruder (the seed's indicators of compromise), each with the
 * components that read them legitimately. Node cannot see reads, so `kubepki watch
 * --print-audit-rules` prints auditd and Falco rules for them, and `--auditd-log` reads what
 * auditd logged.
 */
export interface Indicator {
  /** The node's path. */
  path: string;
  /** The auditd key: "kubepki-" and the file's role ("kubepki-ca-key"). */
  key: string;
  readers: Component[];
}

/** Where each component's binary is: kubeadm's images (/usr/local/bin) and the kubelet's package (/usr/bin). */
export const COMPONENT_EXES: Record<Component, string> = {
  etcd: "/usr/local/bin/etcd",
  "kube-apiserver": "/usr/local/bin/kube-apiserver",
  "kube-controller-manager": "/usr/local/bin/kube-controller-manager",
  "kube-scheduler": "/usr/local/bin/kube-scheduler",
  kubelet: "/usr/bin/kubelet",
};

export function indicators(certDir?: string): Indicator[] {
  const p = treePaths("/", certDir);
  const key = (path: string) =>
    `kubepki-${path
      .replace(`${p.pkiDir}/`, "")
      .replace(`${p.kubeletPkiDir}/`, "kubelet-pki-")
      .replace(/[/.]/g, "-")}`;
  const apiserver = leafPaths(p, leafEntry("apiserver"));
  const kubelet = kubeletPairIn(p.kubeletPkiDir);
  const list: [string, Component[]][] = [
    [caPaths(p, "ca").key, ["kube-controller-manager"]],
    [caPaths(p, "etcd-ca").key, []],
    [caPaths(p, "front-proxy-ca").key, []],
    // kube-apiserver signs service-account tokens with it (--service-account-signing-key-file).
    [saPaths(p).key, ["kube-apiserver", "kube-controller-manager"]],
    [apiserver.cert, ["kube-apiserver"]],
    [apiserver.key, ["kube-apiserver"]],
    [kubeletClientPath(p), ["kubelet"]],
    [kubelet.cert, ["kubelet"]],
    [kubelet.key, ["kubelet"]],
  ];
  return list.map(([path, readers]) => ({ path, key: key(path), readers }));
}

/**
 * auditd rules (auditctl syntax, for /etc/audit/rules.d/kubepki.rules): every read of an
 * indicator file by any executable but its readers, on 64- and 32-bit syscalls.
 */
export function auditdRules(list: Indicator[]): string {
  const lines = [
    "# kubepki watch --print-audit-rules: reads of the PKI's indicator files by anything but the",
    "# component that uses them. Install as /etc/audit/rules.d/kubepki.rules, then: augenrules --load",
    "# The executables are kubeadm's (static pods: /usr/local/bin; the kubelet: /usr/bin); adjust them",
    "# to your distribution. kubepki watch's own reads are logged too and ignored by --auditd-log.",
  ];
  for (const i of list) {
    const exclude = i.readers.map((r) => `-F exe!=${COMPONENT_EXES[r]}`).join(" ");
    for (const arch of ["b64", "b32"])
      lines.push(
        `-a always,exit -F arch=${arch} -F path=${i.path} -F perm=r${exclude ? ` ${exclude}` : ""} -k ${i.key}`,
      );
  }
  return `${lines.join("\n")}\n`;
}

/** A Falco rule (rules file YAML) for the same reads. */
export function falcoRules(list: Indicator[]): string {
  const clause = (i: Indicator) =>
    i.readers.length
      ? `(fd.name = ${i.path} and not proc.exepath in (${i.readers.map((r) => COMPONENT_EXES[r]).join(", ")}))`
      : `fd.name = ${i.path}`;
  const doc = [
    {
      rule: "kubepki indicator file read",
      desc: "A Kubernetes CA key, service-account key, API server or kubelet credential was opened for reading by a process other than the component that uses it (kubepki watch --print-audit-rules).",
      condition: `open_read and (${list.map(clause).join(" or ")})`,
      output:
        "kubepki: indicator file read (file=%fd.name exe=%proc.exepath comm=%proc.name pid=%proc.pid user=%user.name container=%container.id)",
      priority: "WARNING",
      tags: ["kubepki", "filesystem", "mitre_credential_access", "T1552.004"],
    },
  ];
  return `# kubepki watch --print-audit-rules --falco: load with -r, or put it in /etc/falco/rules.d/\n${stringify(doc)}`;
}
