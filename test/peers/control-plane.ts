import { type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { request } from "node:https";
import type { TLSSocket } from "node:tls";
import { issuedByOneOf, subjectNames, type UserInfo, verifyServiceAccountToken } from "./authn.js";
import { flag, inRoot, kubeletTls, manifestFlags, need, readCerts, readPublicKeys } from "./node-files.js";
import { readBody, sendJson, status, TlsStandIn } from "./tls-standin.js";

/**
 * Node TLS servers standing in for kube-apiserver and a kubelet, configured from the node's files as
 * they are on disk at each (re)start: the apiserver from the flags of
 * `etc/kubernetes/manifests/kube-apiserver.yaml`, the kubelet from `var/lib/kubelet/config.yaml`.
 * They answer enough of the API for the real kubectl: /version, /api, /apis discovery,
 * SelfSubjectReview (`kubectl auth whoami`) and the node proxy (`/api/v1/nodes/NAME/proxy/...`),
 * which reaches the kubelet with the apiserver's kubelet client certificate, verifying the kubelet's
 * serving certificate with --kubelet-certificate-authority.
 */

const API = "etc/kubernetes/manifests/kube-apiserver.yaml";

/** What the apiserver stand-in read from its flags at its last start. */
export interface ApiserverConfig {
  clientCAs: X509Certificate[];
  requestheaderCAs: X509Certificate[];
  allowedNames: string[];
  userHeaders: string[];
  groupHeaders: string[];
  saKeys: KeyObject[];
  issuers: string[];
  kubeletClient: { cert: Buffer; key: Buffer; ca: Buffer | undefined };
}

function readApiserverConfig(root: string): {
  tls: { cert: Buffer; key: Buffer; ca: Buffer[] };
  cfg: ApiserverConfig;
} {
  const f = manifestFlags(root, "kube-apiserver");
  const file = (name: string) => inRoot(root, need(f, name, API));
  const list = (name: string, dflt: string) => (flag(f, name) ?? dflt).split(",").filter((s) => s !== "");
  const kubeletCa = flag(f, "kubelet-certificate-authority");
  const clientCa = file("client-ca-file");
  const rhCa = file("requestheader-client-ca-file");
  return {
    tls: {
      cert: readFileSync(file("tls-cert-file")),
      key: readFileSync(file("tls-private-key-file")),
      ca: [readFileSync(clientCa), readFileSync(rhCa)],
    },
    cfg: {
      clientCAs: readCerts(clientCa),
      requestheaderCAs: readCerts(rhCa),
      allowedNames: list("requestheader-allowed-names", ""),
      userHeaders: list("requestheader-username-headers", ""),
      groupHeaders: list("requestheader-group-headers", ""),
      saKeys: (f.get("service-account-key-file") ?? []).flatMap((p) => readPublicKeys(inRoot(root, p))),
      issuers: f.get("service-account-issuer") ?? [],
      kubeletClient: {
        cert: readFileSync(file("kubelet-client-certificate")),
        key: readFileSync(file("kubelet-client-key")),
        ca: kubeletCa ? readFileSync(inRoot(root, kubeletCa)) : undefined,
      },
    },
  };
}

/** kube-apiserver's authenticators in its order: request header (front proxy), x509 client CA, bearer token. */
export function authenticate(
  req: IncomingMessage,
  sock: TLSSocket,
  cfg: ApiserverConfig,
): UserInfo | undefined {
  const raw = sock.getPeerCertificate()?.raw;
  const leaf = raw ? new X509Certificate(raw) : undefined;
  if (leaf && issuedByOneOf(leaf, cfg.requestheaderCAs)) {
    const { cn } = subjectNames(leaf);
    const allowed = cfg.allowedNames.length === 0 || cfg.allowedNames.includes(cn);
    const user = cfg.userHeaders.map((h) => req.headers[h.toLowerCase()]).find((v) => typeof v === "string");
    if (allowed && user) {
      const groups = cfg.groupHeaders.flatMap((h) => {
        const v = req.headers[h.toLowerCase()];
        return v === undefined ? [] : Array.isArray(v) ? v : [v];
      });
      return { username: user, groups, via: "requestheader" };
    }
  }
  if (leaf && issuedByOneOf(leaf, cfg.clientCAs)) {
    const { cn, o } = subjectNames(leaf);
    return { username: cn, groups: [...o, "system:authenticated"], via: "x509" };
  }
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
  if (bearer) return verifyServiceAccountToken(bearer, cfg.saKeys, cfg.issuers).user;
  return undefined;
}

const VERSION = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-kubepki-standin",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.23.0",
  compiler: "gc",
  platform: "linux/amd64",
};

function discovery(path: string, port: number): unknown {
  if (path === "/version") return VERSION;
  if (path === "/api")
    return {
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: `127.0.0.1:${port}` }],
    };
  const group = {
    name: "authentication.k8s.io",
    versions: [{ groupVersion: "authentication.k8s.io/v1", version: "v1" }],
  };
  if (path === "/apis")
    return {
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: [{ ...group, preferredVersion: group.versions[0] }],
    };
  if (path === "/api/v1")
    return {
      kind: "APIResourceList",
      groupVersion: "v1",
      resources: [
        { name: "nodes", singularName: "node", namespaced: false, kind: "Node", verbs: ["get", "list"] },
      ],
    };
  if (path === "/apis/authentication.k8s.io/v1")
    return {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: "authentication.k8s.io/v1",
      resources: [
        {
          name: "selfsubjectreviews",
          singularName: "selfsubjectreview",
          namespaced: false,
          kind: "SelfSubjectReview",
          verbs: ["create"],
        },
      ],
    };
  return undefined;
}

export interface KubeletCall {
  node: string;
  path: string;
  verified: boolean;
  status?: number;
  error?: string;
}

export interface ApiserverOptions {
  root: string;
  /** Where each node's kubelet listens (host:port), as the apiserver would find its InternalIP. */
  kubelets?: Record<string, string>;
}

/** The kube-apiserver stand-in. `config` is what it read at its last start. */
export class Apiserver extends TlsStandIn {
  config!: ApiserverConfig;
  readonly kubeletCalls: KubeletCall[] = [];

  constructor(readonly opts: ApiserverOptions) {
    super("kube-apiserver", () => {
      const { tls, cfg } = readApiserverConfig(opts.root);
      this.config = cfg;
      return { tls, handler: (req, res, sock) => void this.handle(req, res, sock) };
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, sock: TLSSocket): Promise<void> {
    const user = authenticate(req, sock, this.config);
    const path = new URL(req.url ?? "/", "https://x").pathname;
    this.note("request", `${req.method} ${path} ${user ? `${user.via}:${user.username}` : "anonymous"}`);
    if (!user) return status(res, 401, "Unauthorized", "Unauthorized");
    if (req.method === "POST" && path === "/apis/authentication.k8s.io/v1/selfsubjectreviews") {
      await readBody(req);
      const { username, groups } = user;
      return sendJson(res, 201, {
        kind: "SelfSubjectReview",
        apiVersion: "authentication.k8s.io/v1",
        metadata: { creationTimestamp: null },
        status: { userInfo: { username, groups } },
      });
    }
    const proxy = /^\/api\/v1\/nodes\/([^/]+)\/proxy(\/.*)?$/.exec(path);
    if (req.method === "GET" && proxy) return this.proxyToKubelet(proxy[1] ?? "", proxy[2] ?? "/", res);
    const body = req.method === "GET" ? discovery(path, this.port) : undefined;
    if (body) return sendJson(res, 200, body);
    return status(res, 404, "NotFound", `the server could not find the requested resource (${path})`);
  }

  /** The node proxy: the apiserver's kubelet client, verifying the kubelet with --kubelet-certificate-authority. */
  private proxyToKubelet(node: string, path: string, res: ServerResponse) {
    const addr = this.opts.kubelets?.[node];
    if (!addr) return status(res, 404, "NotFound", `nodes "${node}" not found`);
    const { cert, key, ca } = this.config.kubeletClient;
    const [host, port] = addr.split(":");
    const call: KubeletCall = { node, path, verified: ca !== undefined };
    this.kubeletCalls.push(call);
    const r = request(
      {
        host,
        port: Number(port),
        path,
        method: "GET",
        cert,
        key,
        ca,
        rejectUnauthorized: ca !== undefined,
        agent: false,
        timeout: 5000,
      },
      (kres) => {
        call.status = kres.statusCode;
        res.writeHead(kres.statusCode ?? 502, {
          "content-type": kres.headers["content-type"] ?? "text/plain",
        });
        kres.pipe(res);
      },
    );
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", (err: NodeJS.ErrnoException) => {
      call.error = `${err.code ?? ""} ${err.message}`.trim();
      if (!res.headersSent) status(res, 500, "InternalError", `error trying to reach service: ${call.error}`);
      else res.destroy();
    });
    r.end();
  }
}

/** The kubelet stand-in: its serving pair and client CA from var/lib/kubelet/config.yaml. */
export class Kubelet extends TlsStandIn {
  /** The client CN of every authenticated request. */
  readonly callers: string[] = [];

  constructor(
    readonly root: string,
    host = "127.0.0.1",
  ) {
    super("kubelet", () => {
      const k = kubeletTls(root);
      const clientCAs = readCerts(inRoot(root, k.clientCAFile));
      const tls = {
        cert: readFileSync(inRoot(root, k.tlsCertFile)),
        key: readFileSync(inRoot(root, k.tlsPrivateKeyFile)),
        ca: readFileSync(inRoot(root, k.clientCAFile)),
      };
      return { tls, handler: (req, res, sock) => this.handle(req, res, sock, clientCAs) };
    });
    this.host = host;
  }

  private handle(req: IncomingMessage, res: ServerResponse, sock: TLSSocket, cas: X509Certificate[]) {
    const raw = sock.getPeerCertificate()?.raw;
    const leaf = raw ? new X509Certificate(raw) : undefined;
    if (!leaf || !issuedByOneOf(leaf, cas)) return status(res, 401, "Unauthorized", "Unauthorized");
    const { cn } = subjectNames(leaf);
    this.callers.push(cn);
    this.note("request", `${req.method} ${req.url} ${cn}`);
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      return void res.end("ok");
    }
    if (req.url === "/pods")
      return sendJson(res, 200, { kind: "PodList", apiVersion: "v1", metadata: {}, items: [] });
    return status(res, 404, "NotFound", "not found");
  }
}

/** Starts a kubelet stand-in and an apiserver stand-in that knows it as `node`. */
export async function startControlPlane(
  root: string,
  node = "cp1",
): Promise<{ apiserver: Apiserver; kubelet: Kubelet }> {
  const kubelet = new Kubelet(root);
  await kubelet.start();
  const apiserver = new Apiserver({ root, kubelets: { [node]: `127.0.0.1:${kubelet.port}` } });
  try {
    await apiserver.start();
  } catch (err) {
    await kubelet.stop();
    throw err;
  }
  return { apiserver, kubelet };
}
