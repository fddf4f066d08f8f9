import { isIP } from "node:net";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { writeFileAtomic } from "../fsx/atomic.js";
import { MODE_CERT, MODE_KEY } from "../fsx/modes.js";
import { exists } from "../fsx/read.js";
import { commitFiles } from "../fsx/transaction.js";
import { recordIssued } from "../ledger/record.js";
import type { LedgerStore } from "../ledger/store.js";
import { leafProblems, loadPair } from "../pki/existing.js";
import { hostPort, splitHostPort } from "../pki/net.js";
import { caPaths, readTreeText, type TreePaths } from "../pki/paths.js";
import { leafTemplate } from "../pki/profiles.js";
import { requireCaSigner } from "../pki/signer.js";
import { DEFAULT_KEY_ALGORITHM } from "../x509/algorithms.js";
import { issueCertificate } from "../x509/certificate.js";
import { generateKeyPair } from "../x509/keygen.js";
import { privateKeyToPem } from "../x509/keys.js";
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

const VALIDITY_MS = 365 * 86_400_000;

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
  const dir = paths.configDir;
  const node = (p: string) => `/${p.slice(paths.root.length + 1)}`;
  const files = {
    serverCert: join(dir, "webhook.crt"),
    serverKey: join(dir, "webhook.key"),
    clientCert: join(dir, "apiserver-authz-client.crt"),
    clientKey: join(dir, "apiserver-authz-client.key"),
    caCert: caPaths(paths, "ca").cert,
    kubeconfig: join(dir, "webhook.kubeconfig"),
    authorizationConfig: join(dir, "authorization-config.yaml"),
  };
  const sans = {
    dns: ["localhost", ...(isIP(host) ? [] : [host])],
    ips: ["127.0.0.1", ...(isIP(host) && host !== "127.0.0.1" ? [host] : [])],
  };
  const issued: string[] = [];
  const ensurePair = async (
    cert: string,
    key: string,
    cn: string,
    eku: "serverAuth" | "clientAuth",
    want: typeof sans,
  ) => {
    const ca = requireCaSigner(paths, "ca", "issued");
    if (exists(cert) && exists(key)) {
      const pair = loadPair({ cert, key }, (f) => readTreeText(paths, f));
      const problems = await leafProblems(pair, ca.cert, want, now);
      if (
        problems.length === 0 &&
        pair.cert &&
        pair.cert.notAfter.getTime() - now.getTime() > 30 * 86_400_000
      )
        return;
    }
    const kp = await generateKeyPair(DEFAULT_KEY_ALGORITHM);
    const tpl = leafTemplate(
      { commonName: cn, organizations: [], extKeyUsage: [eku], sans: want },
      now,
      VALIDITY_MS,
      ca.cert.notAfter,
    );
    const c = await issueCertificate(tpl, kp.publicKey, { certificate: ca.cert, privateKey: ca.key });
    // One journaled group, so the certificate and its key never disagree on disk.
    commitFiles(
      [
        { path: key, data: privateKeyToPem(kp.privateKey), mode: MODE_KEY },
        { path: cert, data: c.pem, mode: MODE_CERT },
      ],
      { journalPath: paths.journal },
    );
    await recordIssued(
      store,
      [{ der: c.der, issuerDer: ca.cert.der, profile: `webhook:${eku}`, path: cert }],
      [],
      now,
    );
    issued.push(cert);
  };
  await ensurePair(files.serverCert, files.serverKey, WEBHOOK_SERVER_CN, "serverAuth", sans);
  await ensurePair(files.clientCert, files.clientKey, WEBHOOK_CLIENT_CN, "clientAuth", { dns: [], ips: [] });
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
