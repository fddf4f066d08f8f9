import { realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServeRequest } from "./serve.js";
import { type Notice, pathsOf } from "./tree.js";

export interface ServeDeployRequest extends Omit<ServeRequest, "log" | "ready"> {
  /** What to print: a hardened systemd unit, or a static pod for /etc/kubernetes/manifests. */
  kind: "systemd-unit" | "static-pod";
  /** The static pod's image: any with Node.js 22.13+ (default node:24-bookworm-slim). */
  image?: string;
  /** The Node.js binary the unit runs (default: this one). */
  nodeBinary?: string;
  /** kubepki's bin/kubepki.js (default: this package's); the pod mounts its package folder. */
  script?: string;
}

export interface ServeDeployment {
  text: string;
  notices: Notice[];
}

/** This package's bin/kubepki.js: two levels up from src/app, dist/app and dist/bundle alike. */
const OWN_BIN = new URL("../../bin/kubepki.js", import.meta.url);

export const DEFAULT_HEALTH_LISTEN = "127.0.0.1:8444";
export const DEFAULT_POD_IMAGE = "node:24-bookworm-slim";

/** `kubepki serve --print-systemd-unit | --print-static-pod`: how to run serve, as it was asked to run. */
export async function serveDeployment(req: ServeDeployRequest): Promise<ServeDeployment> {
  const [{ parseHealthListen }, deploy] = await Promise.all([
    import("../revoke/health-server.js"),
    import("../revoke/serve-deploy.js"),
  ]);
  const healthListen = req.healthListen ?? DEFAULT_HEALTH_LISTEN;
  const { listen, warnings } = parseHealthListen(healthListen, req.healthAllowRemote);
  const script = realpathSync(req.script ? resolve(req.script) : fileURLToPath(OWN_BIN));
  const anyHost = listen.host === "0.0.0.0" || listen.host === "::";
  const opts = {
    paths: pathsOf(req),
    args: serveArgs({ ...req, healthListen }),
    health: { host: anyHost ? "127.0.0.1" : listen.host, port: listen.port },
    node: req.nodeBinary ?? process.execPath,
    script,
    packageDir: dirname(dirname(script)),
    image: req.image ?? DEFAULT_POD_IMAGE,
  };
  const text = req.kind === "systemd-unit" ? deploy.systemdUnit(opts) : deploy.staticPod(opts);
  return { text, notices: warnings };
}

/** What the unit or pod does not pass on to serve: printing's own flags, and the offline folder (never on the node). */
const NOT_PASSED = new Set(["kind", "image", "nodeBinary", "script", "offlineDir", "output", "setupOnly"]);
/** Flags whose value is a path: made absolute, since the unit and pod run elsewhere. */
const PATH_FLAG = /^(root|state|certDir)$|(Cacert|Cert|Key|File|Dir)$/;

/**
 * serve's flags as given, every one of them (a flag a store adds too), in --kebab-case: the unit
 * and the pod run serve exactly as it was asked to run. Durations parsed to milliseconds go back as "NNNms".
 */
function serveArgs(req: ServeDeployRequest & { healthListen: string }): string[] {
  const first = ["root", "listen", "healthListen"];
  const entries = Object.entries({ listen: "127.0.0.1:8443", ...req }).sort(
    ([a], [b]) => rank(first, a) - rank(first, b),
  );
  return entries.flatMap(([key, value]) => flagArgs(key, value));
}

/** One flag as argv words: none when off or unset, repeated for a list. */
function flagArgs(key: string, value: unknown): string[] {
  if (NOT_PASSED.has(key) || value === undefined || value === false || typeof value === "function") return [];
  const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return (Array.isArray(value) ? value : [value]).flatMap((v: unknown) => {
    if (v === true) return [flag];
    if (typeof v === "number") return [flag, `${v}ms`];
    return [flag, PATH_FLAG.test(key) ? resolve(String(v)) : String(v)];
  });
}

const rank = (order: string[], key: string) => {
  const i = order.indexOf(key);
  return i < 0 ? order.length : i;
};
