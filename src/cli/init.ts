import { join, relative, resolve } from "node:path";
import type { Command } from "commander";
import { exists } from "../fsx/read.js";
import { plannedKeyCount } from "../pki/catalog.js";
import { loadConfigFile } from "../pki/config.js";
import { formatChange } from "../pki/config-edit.js";
import type { ArtifactReport, InitResult } from "../pki/init.js";
import { parseNodeFlag, resolveSpec, type SpecInput } from "../pki/spec.js";
import { KEY_ALGORITHMS } from "../x509/algorithms.js";
import { KeyPool } from "../x509/keygen.js";
import { collect, commaList, outputFormat } from "./common.js";
import { info, out, paint, progress, table, warn } from "./output.js";

interface InitFlags {
  root: string;
  config?: string;
  nodeName?: string;
  advertiseAddress?: string;
  controlPlaneEndpoint?: string;
  clusterName?: string;
  serviceCidr?: string;
  dnsDomain?: string;
  apiserverCertExtraSans?: string[];
  algorithm?: string;
  certValidity?: string;
  caValidity?: string;
  node?: string[];
  offlineDir?: string;
  state?: string;
  externalCa?: boolean;
  force?: boolean;
  keepKubeletServing?: boolean;
  newBreakGlass?: boolean;
  output: "text" | "json";
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("Write a complete control-plane PKI under --root, laid out as kubeadm lays it out")
    .option("--root <dir>", "treat this folder as the node's /", "/")
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
    )
    .option(
      "--offline-dir <dir>",
      "folder kept off the node: super-admin.conf, offline CA keys, other nodes' kubelet pairs",
    )
    .option("--external-ca", "keep the three CA private keys in --offline-dir only")
    .option("--force", "replace inconsistent existing files (a timestamped backup is kept)")
    .option(
      "--keep-kubelet-serving",
      "keep the kubelet's self-signed serving certificate (kube-apiserver then cannot verify it)",
    )
    .option("--new-break-glass", "mint a super-admin.conf although the ledger holds an active one")
    .option("--state <dir>", "folder of the issuance ledger (default: <root>/var/lib/kubepki)")
    .option("-o, --output <format>", "text | json", outputFormat(["text", "json"]), "text")
    .addHelpText(
      "after",
      `
Examples:
  kubepki init --root ./node --offline-dir ./offline --node-name cp1 --advertise-address 10.0.0.10
  kubepki init --root / --offline-dir /mnt/usb/kubepki --config kubeadm.yaml --node worker1=10.0.0.21
  kubepki init --root ./node --offline-dir ./offline --external-ca --algorithm RSA-2048`,
    )
    .action(async (flags: InitFlags) => {
      const fromFlags: SpecInput = {
        nodeName: src(flags.nodeName, "--node-name"),
        advertiseAddress: src(flags.advertiseAddress, "--advertise-address"),
        controlPlaneEndpoint: src(flags.controlPlaneEndpoint, "--control-plane-endpoint"),
        clusterName: src(flags.clusterName, "--cluster-name"),
        serviceSubnet: src(flags.serviceCidr, "--service-cidr"),
        dnsDomain: src(flags.dnsDomain, "--dns-domain"),
        apiServerCertSANs: flags.apiserverCertExtraSans?.map((v) => ({
          value: v,
          where: "--apiserver-cert-extra-sans",
        })),
        algorithm: src(flags.algorithm, "--algorithm"),
        certValidity: src(flags.certValidity, "--cert-validity"),
        caValidity: src(flags.caValidity, "--ca-validity"),
        nodes: flags.node?.map((v) => ({ value: parseNodeFlag(v), where: `--node ${v}` })),
        offlineDir: src(flags.offlineDir, "--offline-dir"),
        externalCA: flags.externalCa ? { value: true, where: "--external-ca" } : undefined,
      };
      const inputs = flags.config ? [loadConfigFile(flags.config), fromFlags] : [fromFlags];
      const spec = resolveSpec(inputs);
      const bar = progress(`generating ${spec.algorithm} keys`);
      // A fresh tree needs every key: start them now, while the certificate code loads.
      const fresh = !exists(join(resolve(flags.root), spec.certificatesDir));
      const keyPool = new KeyPool(spec.algorithm, fresh ? plannedKeyCount(spec) : 0);
      keyPool.onKey = bar.tick;
      const [{ initPki }, { withLedger }, { reconcile }, { publishCrls }, { treePaths }, { repairLedger }] =
        await Promise.all([
          import("../pki/init.js"),
          import("../ledger/record.js"),
          import("../ledger/reconcile.js"),
          import("../revoke/crl.js"),
          import("../pki/paths.js"),
          import("../revoke/ledger-check.js"),
        ]);
      const ledgerFile = treePaths(flags.root, spec.certificatesDir, undefined, flags.state).ledgerFile;
      const recorded = exists(ledgerFile) ? await withLedger(ledgerFile, activeBreakGlass) : undefined;
      const result = await initPki({
        root: flags.root,
        spec,
        force: flags.force,
        keyPool,
        onKey: bar.tick,
        keepSelfSignedKubelet: flags.keepKubeletServing,
        breakGlass: { recorded, mintNew: flags.newBreakGlass },
      });
      bar.end();
      // Every certificate signed goes into the ledger; each CA gets a first (empty) CRL, which etcd's
      // --client-crl-file needs to exist (it fails closed without it).
      // Reconciled on every run: a certificate on the node the ledger lacks could never be revoked.
      const paths = treePaths(flags.root, spec.certificatesDir, result.offlineDir, flags.state);
      const crls = await withLedger(
        paths.ledgerFile,
        async (store) => {
          const { recorded } = await reconcile(store, paths, result.issued);
          if (recorded > 0) warn(`recorded ${recorded} certificate(s) of the tree the ledger lacked`);
          // A ledger (re)created next to published CRLs takes back the revocations they list.
          const r = await repairLedger(paths, store);
          if (r.restored + r.serialOnly > 0)
            warn(
              `restored ${r.restored + r.serialOnly} revocation(s) from the published CRLs into the ledger`,
            );
          return publishCrls(paths, store, { missingOnly: true });
        },
        "create",
      );
      for (const s of crls.skipped) warn(`no CRL for ${s.ca}: ${s.reason}`);
      for (const w of result.warnings) warn(w);
      const { issued: _issued, ...printable } = result;
      if (flags.output === "json")
        out(JSON.stringify({ ...printable, crls: crls.published.map((c) => c.path) }, null, 2));
      else printInit(result, spec.algorithm);
      if (flags.output !== "json") printConfigChanges(result, spec.source?.file);
      for (const n of result.kubeadmConfig.notes) warn(n);
      const superAdmin = result.artifacts.find((a) => a.id === "super-admin.conf");
      if (superAdmin && superAdmin.action !== "skipped")
        warn(
          `super-admin.conf (group system:masters: bypasses RBAC and can never be revoked) is in ${result.offlineDir}. ` +
            "Move that folder off this host.",
        );
    });
}

/** What init added to or changed in the operator's --config file, and why. */
function printConfigChanges(result: InitResult, file: string | undefined): void {
  const changes = result.kubeadmConfig.changes;
  if (!file) return;
  out(`[kubeadm-config] kubeadm-config.yaml is ${file} with ${changes.length} addition(s) or change(s):`);
  for (const c of changes) out(`  ${formatChange(c)}`);
}

/** The active break-glass kubeconfig the ledger holds, if any (one per cluster). */
async function activeBreakGlass(store: import("../ledger/store.js").LedgerStore) {
  const active = await store.list({ status: "active" });
  const e = active.find((x) => x.profile === "kubeconfig:super-admin.conf" && x.breakGlass);
  return e ? { path: e.path, sha256: e.sha256, notAfter: e.notAfter } : undefined;
}

function src(value: string | undefined, where: string) {
  return value === undefined ? undefined : { value, where };
}

function printInit(result: InitResult, algorithm: string): void {
  const rel = (p: string) =>
    p.startsWith(result.offlineDir)
      ? `<offline>/${relative(result.offlineDir, p)}`
      : relative(result.root, p);
  const rows = [["ACTION", "KIND", "NAME", "FILE", "SHA-256"]];
  for (const a of result.artifacts)
    rows.push([a.action, a.kind, a.id, rel(a.path), a.sha256 ? `${a.sha256.slice(0, 16)}…` : ""]);
  out(`${paint("kubepki init", "bold")}: PKI under ${result.root} (${algorithm})`);
  out(table(rows));
  out("");
  for (const a of result.artifacts) if (a.sans && a.action !== "kept") out(sanLine(a));
  out("");
  for (const a of result.artifacts) if (a.note) out(`[${a.id}] ${a.note}`);
  out(`Offline folder (keep it off the node): ${result.offlineDir}`);
  if (result.backedUp.length > 0)
    info(
      `backed up ${result.backedUp.length} replaced file(s) under ${[...new Set(result.backedUp.map((b) => backupRoot(b)))].join(", ")}`,
    );
  if (result.restart.length > 0)
    out(`Restart, in this order: ${result.restart.join(", ")} (their files were replaced).`);
}

/** The timestamped folder a backup copy sits in (…/backups/<stamp>). */
function backupRoot(path: string): string {
  const m = /^(.*\/backups\/[^/]+)\//.exec(path);
  return m?.[1] ?? path;
}

function sanLine(a: ArtifactReport): string {
  return `[certs] ${a.id} serving cert is signed for DNS names [${a.sans?.dns.join(" ")}] and IPs [${a.sans?.ips.join(" ")}]`;
}
