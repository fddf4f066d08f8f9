import { join } from "node:path";
import { InputError } from "../errors.js";
import { writeFileAtomic } from "../fsx/atomic.js";
import { MODE_KEY } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import { recordIssued } from "../ledger/record.js";
import type { LedgerStore } from "../ledger/store.js";
import { kubeconfigEntry, TRUST_BUNDLES } from "../pki/catalog.js";
import { formatHours } from "../pki/duration.js";
import { buildKubeconfig, parseKubeconfig } from "../pki/kubeconfig.js";
import { kubeconfigPath, readTreeText, type TreePaths } from "../pki/paths.js";
import { leafTemplate } from "../pki/profiles.js";
import { requireCaSigner } from "../pki/signer.js";
import { DEFAULT_KEY_ALGORITHM, type KeyAlgorithm } from "../x509/algorithms.js";
import { issueCertificate } from "../x509/certificate.js";
import { credentialId, sha256Hex } from "../x509/fingerprint.js";
import { generateKeyPair } from "../x509/keygen.js";
import { privateKeyToPem } from "../x509/keys.js";
import { RESERVED_CNS } from "./names.js";

export const DEFAULT_CLIENT_TTL_MS = 8 * 3_600_000;
export const DEFAULT_CLIENT_MAX_TTL_MS = 7 * 86_400_000;
export const SYSTEM_MASTERS = "system:masters";

export interface IssueClientOptions {
  paths: TreePaths;
  store: LedgerStore;
  user: string;
  groups: string[];
  ttlMs: number;
  maxTtlMs: number;
  breakGlass: boolean;
  out: string;
  server?: string;
  algorithm?: KeyAlgorithm;
  now?: Date;
  /** Replace an existing --out file. */
  force?: boolean;
}

export interface IssuedClient {
  out: string;
  user: string;
  groups: string[];
  serial: string;
  sha256: string;
  credentialId: string;
  notAfter: string;
  breakGlass: boolean;
}

/**
 * A short-lived kubeconfig for a person or a tool: a fresh key and a client certificate from the
 * cluster CA, recorded in the ledger so it can be revoked. system:masters is refused unless
 * break-glass, because no authorizer can stop such a certificate.
 */
export async function issueClient(o: IssueClientOptions): Promise<IssuedClient> {
  refuseBadRequest(o);
  const ca = requireCaSigner(o.paths, "ca", "issued");
  // admin.conf, read once, gives the API server URL and the cluster name.
  const admin = adminView(o.paths);
  const server = o.server ?? admin?.server;
  if (!server) throw new InputError("no API server URL: pass --server (no admin.conf to take it from)");
  const now = o.now ?? new Date();
  const kp = await generateKeyPair(o.algorithm ?? DEFAULT_KEY_ALGORITHM);
  // leafTemplate backdates notBefore against clock skew; the lifetime counts from now.
  const tpl = leafTemplate(
    { commonName: o.user, organizations: o.groups, extKeyUsage: ["clientAuth"], sans: { dns: [], ips: [] } },
    now,
    o.ttlMs,
    ca.cert.notAfter,
  );
  const issued = await issueCertificate(tpl, kp.publicKey, { certificate: ca.cert, privateKey: ca.key });
  const kubeconfig = buildKubeconfig({
    clusterName: admin?.clusterName ?? "kubernetes",
    server,
    // During a CA rotation (rotate-ca) the user trusts both CAs, as every kubeconfig on the node does.
    caPem: readTreeText(o.paths, join(o.paths.pkiDir, TRUST_BUNDLES.ca)) ?? ca.pem,
    userName: o.user,
    clientCertPem: issued.pem,
    clientKeyPem: privateKeyToPem(kp.privateKey),
  });
  writeFileAtomic(o.out, kubeconfig, MODE_KEY);
  await recordIssued(
    o.store,
    [
      {
        der: issued.der,
        issuerDer: ca.cert.der,
        profile: o.breakGlass ? "client:break-glass" : "client",
        path: o.out,
        breakGlass: o.breakGlass,
      },
    ],
    [],
    now,
  );
  return {
    out: o.out,
    user: o.user,
    groups: o.groups,
    serial: issued.cert.serialHex,
    sha256: sha256Hex(issued.der),
    credentialId: credentialId(issued.der),
    notAfter: issued.cert.notAfter.toISOString(),
    breakGlass: o.groups.includes(SYSTEM_MASTERS),
  };
}

/** Every reason to refuse before a key is made: a bad user or group, an existing --out, a TTL too long. */
function refuseBadRequest(o: IssueClientOptions): void {
  if (!o.user.trim() || /[\n\r]/.test(o.user))
    throw new InputError("--user: a non-empty user name is required");
  if (o.user.startsWith("system:") || RESERVED_CNS.has(o.user))
    throw new InputError(
      `--user: "${o.user}" is a control-plane or webhook identity; a user certificate must not carry it (issue it with kubepki init, certs renew or serve)`,
    );
  if (exists(o.out) && !o.force)
    throw new InputError(`--out: ${o.out} already exists; pass --force to replace it`);
  for (const g of o.groups) if (!g.trim()) throw new InputError("--group: empty group name");
  if (o.groups.includes(SYSTEM_MASTERS) && !o.breakGlass)
    throw new InputError(
      "--group system:masters refused: members bypass every authorizer, so this certificate could never be revoked before it expires. Bind an RBAC role to an ordinary group instead, or pass --break-glass for an emergency credential.",
    );
  if (o.ttlMs > o.maxTtlMs)
    throw new InputError(`--ttl exceeds the maximum of ${formatHours(o.maxTtlMs)} (--max-ttl)`);
}

function adminView(paths: TreePaths) {
  const admin = kubeconfigEntry("admin.conf");
  const path = kubeconfigPath(paths, admin);
  const text = path ? readTreeText(paths, path) : undefined;
  return text ? parseKubeconfig(text, admin.fileName) : undefined;
}
