import { isIP } from "node:net";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { writeFileAtomic } from "../fsx/atomic.js";
import { MODE_CERT, MODE_KEY } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import { recordIssued } from "../ledger/record.js";
import type { LedgerStore } from "../ledger/store.js";
import { TRUST_BUNDLES } from "../pki/catalog.js";
import { leafProblems, loadPair } from "../pki/existing.js";
import { hostPort, splitHostPort } from "../pki/net.js";
import { issueOwnPair } from "../pki/own-pair.js";
import { caPaths, type PairPaths, readTreeText, type TreePaths } from "../pki/paths.js";
import { type CaSigner, requireCaSigner } from "../pki/signer.js";
import type { SanSet } from "../pki/spec.js";
import { authorizationConfigYaml, webhookKubeconfigYaml } from "./authz-config.js";
import { WEBHOOK_CLIENT_CN, WEBHOOK_SERVER_CN } from "./names.js";

export { WEBHOOK_CLIENT_CN, WEBHOOK_SERVER_CN };

export interface WebhookFiles {
  listen: { host: string; port: number };
  /** Host paths. */
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  caCert: string;
  kubeconfig: string;
  authorizationConfig: string;
  /** What was (re)issued this time. */
  issued: string[];
}

/**
 * The files kube-apiserver needs to call `kubepki serve`, under etc/kubernetes/kubepki/: the
 * webhook's serving pair and kube-apiserver's client pair (both from the cluster CA, recorded in the
 * ledger), the webhook kubeconfig and the AuthorizationConfiguration. Existing pairs that still
 * verify and cover the listen address are kept.
 */
export async function setupWebhook(
  paths: TreePaths,
  store: LedgerStore,
  listen: string,
  now = new Date(),
): Promise<WebhookFiles> {
  const hp = splitHostPort(listen, "--listen");
  if (hp.port === undefined) throw new InputError(`--listen: "${listen}" needs a port (HOST:PORT)`);
  const host = hp.host || "127.0.0.1";
  const node = (p: string) => `/${p.slice(paths.root.length + 1)}`;
  const files = webhookFiles(paths);
  const sans = {
    dns: ["localhost", ...(isIP(host) ? [] : [host])],
    ips: ["127.0.0.1", ...(isIP(host) && host !== "127.0.0.1" ? [host] : [])],
  };
  const ctx = { paths, store, now };
  const issued = [
    await ensurePair(
      ctx,
      { cert: files.serverCert, key: files.serverKey },
      WEBHOOK_SERVER_CN,
      "serverAuth",
      sans,
    ),
    await ensurePair(ctx, { cert: files.clientCert, key: files.clientKey }, WEBHOOK_CLIENT_CN, "clientAuth", {
      dns: [],
      ips: [],
    }),
  ].filter((c): c is string => c !== undefined);
  const server = `https://${hostPort(host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host, hp.port)}/authorize`;
  writeFileAtomic(
    files.kubeconfig,
    webhookKubeconfigYaml({
      server,
      caFile: node(files.caCert),
      certFile: node(files.clientCert),
      keyFile: node(files.clientKey),
    }),
    MODE_KEY,
  );
  writeFileAtomic(files.authorizationConfig, authorizationConfigYaml(node(files.kubeconfig)), MODE_CERT);
  return { listen: { host, port: hp.port }, ...files, issued };
}

function webhookFiles(paths: TreePaths) {
  const dir = paths.configDir;
  return {
    serverCert: join(dir, "webhook.crt"),
    serverKey: join(dir, "webhook.key"),
    clientCert: join(dir, "apiserver-authz-client.crt"),
    clientKey: join(dir, "apiserver-authz-client.key"),
    caCert: webhookTrustFile(paths),
    kubeconfig: join(dir, "webhook.kubeconfig"),
    authorizationConfig: join(dir, "authorization-config.yaml"),
  };
}

/**
 * The file whose CAs kube-apiserver and the webhook trust each other by: the cluster CA's trust
 * bundle once `rotate-ca trust` made it (old and new CA during a rotation), else ca.crt.
 */
export function webhookTrustFile(paths: TreePaths): string {
  const bundle = join(paths.pkiDir, TRUST_BUNDLES.ca);
  return exists(bundle) ? bundle : caPaths(paths, "ca").cert;
}

interface SetupContext {
  paths: TreePaths;
  store: LedgerStore;
  now: Date;
}

/** A pair is kept while it verifies, covers `want` and has more than 30 days left. */
async function pairStillGood(
  ctx: SetupContext,
  pair: PairPaths,
  ca: CaSigner,
  want: SanSet,
): Promise<boolean> {
  if (!exists(pair.cert) || !exists(pair.key)) return false;
  const loaded = loadPair(pair, (f) => readTreeText(ctx.paths, f));
  const problems = await leafProblems(loaded, ca.cert, want, ctx.now);
  return (
    problems.length === 0 &&
    !!loaded.cert &&
    loaded.cert.notAfter.getTime() - ctx.now.getTime() > 30 * 86_400_000
  );
}

/** Keeps a good pair, else issues a new one from the cluster CA and records it; the new certificate's path. */
async function ensurePair(
  ctx: SetupContext,
  pair: PairPaths,
  cn: string,
  eku: "serverAuth" | "clientAuth",
  want: SanSet,
): Promise<string | undefined> {
  const ca = requireCaSigner(ctx.paths, "ca", "issued");
  if (await pairStillGood(ctx, pair, ca, want)) return undefined;
  const { der, issuerDer } = await issueOwnPair(
    ctx.paths,
    ca,
    pair,
    { commonName: cn, extKeyUsage: eku, sans: want },
    ctx.now,
  );
  await recordIssued(
    ctx.store,
    [{ der, issuerDer, profile: `webhook:${eku}`, path: pair.cert }],
    [],
    ctx.now,
  );
  return pair.cert;
}
