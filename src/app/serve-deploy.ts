import { realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { ServeRequest } from "./serve.js";
import { type Notice, pathsOf } from "./tree.js";

export interface ServeDeployRequest extends Omit<ServeRequest, "log" | "ready"> {
  /** What to print: a hardened systemd unit, or a static pod for /etc/kubernetes/manifests. */
  kind: "systemd-unit" | "static-pod";
  /** The static pod's image: any with Node.js 22.13+ (default node:24-bookworm-slim). */
  image?: string;
  /** The Node.js binary the unit runs (default: this one). */
  nodeBinary?: string;
  /** kubepki's bin/kubepki.js (default: the one running); the pod mounts its package folder. */
  script?: string;
}

export interface ServeDeployment {
  text: string;
  notices: Notice[];
}

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
  const script = realpathSync(resolve(req.script ?? process.argv[1] ?? "bin/kubepki.js"));
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

/** serve's flags as given, with the root as an absolute path (the unit and pod run elsewhere). */
function serveArgs(req: ServeDeployRequest & { healthListen: string }): string[] {
  const args = ["--root", resolve(req.root), "--listen", req.listen ?? "127.0.0.1:8443"];
  args.push("--health-listen", req.healthListen);
  if (req.healthAllowRemote) args.push("--health-allow-remote");
  if (req.state) args.push("--state", resolve(req.state));
  for (const cn of req.allowedCn ?? []) args.push("--allowed-cn", cn);
  if (req.denyRevokedUsers) args.push("--deny-revoked-users");
  return args;
}
