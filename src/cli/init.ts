import { relative } from "node:path";
import type { Command } from "commander";
import type { InitOutcome, InitRequest } from "../app/init.js";
import type { JoinOutcome } from "../app/join.js";
import { InputError } from "../errors.js";
import type { ArtifactReport } from "../pki/init.js";
import { KEY_ALGORITHMS } from "../x509/algorithms.js";
import { act, collect, commaList, warnAll, withFlags, withOutput } from "./common.js";
import { info, out, paint, progress, table } from "./output.js";

type InitFlags = Omit<InitRequest, "onKey"> & {
  output: "text" | "json";
  join?: string;
  certificateKey?: string;
};

export function registerInit(program: Command): void {
  const cmd = program
    .command("init")
    .description("Write a complete control-plane PKI under --root, laid out as kubeadm lays it out");
  withFlags(cmd, { root: true })
    .option(
      "--config <file>",
      "your kubeadm configuration (v1beta3/v1beta4, every kind); kubeadm-config.yaml is this file plus what kubepki lists",
    )
    .option("--node-name <name>", "this node's name (default: host name)")
    .option("--advertise-address <ip>", "IP the API server advertises (default: first non-loopback IPv4)")
    .option("--control-plane-endpoint <host[:port]>", "stable endpoint of the control plane")
    .option("--cluster-name <name>", "cluster name (default: kubernetes)")
    .option("--service-cidr <cidr>", "service subnet (default: 10.96.0.0/12)")
    .option("--dns-domain <domain>", "cluster DNS domain (default: cluster.local)")
    .option(
      "--apiserver-cert-extra-sans <sans>",
      "extra SANs for the API server certificate (comma list; with --config, added to its certSANs)",
      commaList,
    )
    .option("--algorithm <alg>", `key algorithm: ${KEY_ALGORITHMS.join(" | ")} (default: ECDSA-P256)`)
    .option("--cert-validity <duration>", "validity of leaf certificates (default: 8760h)")
    .option("--ca-validity <duration>", "validity of CA certificates (default: 87600h)")
    .option(
      "--node <NAME=IP[,DNS...]>",
      "sign a kubelet serving certificate for this node (repeatable; with --config, added to its nodes)",
      collect,
    );
  withFlags(cmd, {
    offlineDir: "folder kept off the node: super-admin.conf, offline CA keys, other nodes' kubelet pairs",
  })
    .option("--external-ca", "keep the three CA private keys in --offline-dir only")
    .option("--force", "replace inconsistent existing files (a timestamped backup is kept)")
    .option(
      "--keep-kubelet-serving",
      "keep the kubelet's self-signed serving certificate (kube-apiserver then cannot verify it)",
    )
    .option("--new-break-glass", "mint a super-admin.conf although the ledger holds an active one")
    .option(
      "--join <bundle>",
      "a further control plane: take the shared CAs and SA pair from this kubepki join-bundle file",
    )
    .option(
      "--certificate-key <hex>",
      "with --join: the key kubepki join-bundle printed (default: $KUBEPKI_CERTIFICATE_KEY, which ps does not show)",
    );
  withOutput(withFlags(cmd, { ledger: true }), ["text", "json"]).addHelpText(
    "after",
    `
Examples:
  kubepki init --root ./node --offline-dir ./offline --node-name cp1 --advertise-address 10.0.0.10
  kubepki init --root / --offline-dir /mnt/usb/kubepki --config kubeadm.yaml --node worker1=10.0.0.21
  kubepki init --root ./node --offline-dir ./offline --external-ca --algorithm RSA-2048
  kubepki init --root / --offline-dir /mnt/offline --config kubeadm.yaml --node-name cp2 \\
    --advertise-address 10.0.0.12 --join join.bundle --certificate-key <key join-bundle printed>`,
  );
  act(cmd, async ({ output, join, certificateKey, ...req }: InitFlags) => {
    const bar = progress("generating keys");
    const r = await runInit({ ...req, onKey: bar.tick }, join, certificateKey);
    bar.end();
    warnAll(r.report.warnings);
    const joined = "joined" in r ? { joined: (r as JoinOutcome).joined } : {};
    if (output === "json") out(JSON.stringify({ ...r.report, ...joined }, null, 2));
    else await printInit(r);
    warnAll(r.notices);
    return undefined;
  });
}

const CERTIFICATE_KEY_ENV = "KUBEPKI_CERTIFICATE_KEY";

/** init, or with --join the joining of a further control plane (the two flags go together). */
async function runInit(req: InitRequest, join?: string, flagKey?: string): Promise<InitOutcome> {
  // The key from the environment keeps it out of the process list and the shell history.
  const certificateKey = flagKey ?? (join === undefined ? undefined : process.env[CERTIFICATE_KEY_ENV]);
  if (join === undefined && certificateKey === undefined)
    return (await import("../app/init.js")).initCluster(req);
  if (join === undefined || certificateKey === undefined)
    throw new InputError(
      join === undefined
        ? "--certificate-key needs --join"
        : `--join needs --certificate-key (or ${CERTIFICATE_KEY_ENV} in the environment)`,
    );
  const { joinControlPlane } = await import("../app/join.js");
  const r = await joinControlPlane({ ...req, join, certificateKey });
  const shared =
    r.joined.written.length > 0
      ? `wrote ${r.joined.written.length} shared file(s)`
      : "the shared files were already there";
  info(
    `joined with ${r.joined.bundle} (made ${r.joined.createdAt}): ${shared}; CAs ${r.joined.cas.map((c) => `${c.ca} ${c.sha256.slice(0, 16)}…`).join(", ")}`,
  );
  return r;
}

async function printInit({ report, spec }: InitOutcome): Promise<void> {
  const { isInside } = await import("../fsx/read.js");
  const rel = (p: string) =>
    isInside(report.offlineDir, p) ? `<offline>/${relative(report.offlineDir, p)}` : relative(report.root, p);
  const rows = [["ACTION", "KIND", "NAME", "FILE", "SHA-256"]];
  for (const a of report.artifacts)
    rows.push([a.action, a.kind, a.id, rel(a.path), a.sha256 ? `${a.sha256.slice(0, 16)}…` : ""]);
  out(`${paint("kubepki init", "bold")}: PKI under ${report.root} (${spec.algorithm})`);
  out(table(rows));
  out("");
  for (const a of report.artifacts) if (a.sans && a.action !== "kept") out(sanLine(a));
  out("");
  for (const a of report.artifacts) if (a.note) out(`[${a.id}] ${a.note}`);
  out(`Offline folder (keep it off the node): ${report.offlineDir}`);
  if (report.backedUp.length > 0)
    info(
      `backed up ${report.backedUp.length} replaced file(s) under ${report.backups.map((b) => b.dir).join(", ")}`,
    );
  if (report.restart.length > 0)
    out(`Restart, in this order: ${report.restart.join(", ")} (their files were replaced).`);
  // What init added to or changed in the operator's --config file, and why.
  const file = spec.source?.file;
  if (!file) return;
  const changes = report.kubeadmConfig.changes;
  // config-edit loads the YAML library: only when there is a --config file to talk about.
  const { formatChange } = await import("../pki/config-edit.js");
  out(`[kubeadm-config] kubeadm-config.yaml is ${file} with ${changes.length} addition(s) or change(s):`);
  for (const c of changes) out(`  ${formatChange(c)}`);
}

function sanLine(a: ArtifactReport): string {
  return `[certs] ${a.id} serving cert is signed for DNS names [${a.sans?.dns.join(" ")}] and IPs [${a.sans?.ips.join(" ")}]`;
}
