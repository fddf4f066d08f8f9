import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { BlockList, isIP, type Socket } from "node:net";
import { errorMessage, InputError, IoError } from "../errors.js";
import { hostPort, splitHostPort } from "../pki/net.js";

/*
 * The webhook's /healthz, /readyz and /metrics on a plain-HTTP port, for a kubelet probe or
 * Prometheus that has no client certificate. Nothing secret is served there: liveness, readiness
 * with its reason, and counters (no fingerprint, subject or key). It is loopback-only unless the
 * operator says otherwise, since anyone who can reach it learns the request rates and revoked count.
 */

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");
LOOPBACK.addSubnet("::ffff:127.0.0.0", 104, "ipv6");

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? "ipv4" : "ipv6");
}

export interface HealthListen {
  host: string;
  port: number;
}

/** --health-listen HOST:PORT: a loopback address, or any other with `allowRemote` (and a warning). */
export function parseHealthListen(
  value: string,
  allowRemote = false,
): { listen: HealthListen; warnings: string[] } {
  const hp = splitHostPort(value, "--health-listen");
  if (hp.port === undefined || hp.host === "")
    throw new InputError(`--health-listen: "${value}" needs HOST:PORT (such as 127.0.0.1:8444)`);
  const listen = { host: hp.host, port: hp.port };
  if (isLoopback(hp.host)) return { listen, warnings: [] };
  if (!allowRemote)
    throw new InputError(
      `--health-listen ${value} is not a loopback address: the health port is plain HTTP without authentication. Use 127.0.0.1:PORT (a kubelet probe on the host network reaches it), or add --health-allow-remote`,
    );
  return {
    listen,
    warnings: [
      `the health port ${value} is plain HTTP without authentication and reachable from other hosts: anyone who reaches it sees /readyz and the /metrics counters (no certificate, key or subject is served there)`,
    ],
  };
}

export interface HealthServer {
  url: string;
  close: () => Promise<void>;
}

/** A small plain-HTTP server for `handle` (GET only; short timeouts; few connections). */
export function startHealthServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  at: HealthListen,
): Promise<HealthServer> {
  const server: Server = createServer(
    { headersTimeout: 5_000, requestTimeout: 5_000, keepAliveTimeout: 5_000 },
    (req, res) => {
      try {
        handle(req, res);
      } catch {
        if (!res.headersSent) res.writeHead(500).end();
      }
    },
  );
  server.maxConnections = 256;
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new IoError(
          `cannot listen on --health-listen ${hostPort(at.host, at.port)}: ${err.code === "EADDRINUSE" ? "address in use" : errorMessage(err)}`,
          { cause: err },
        ),
      ),
    );
    server.listen(at.port, at.host, () => {
      const close = () =>
        new Promise<void>((done) => {
          server.close(() => done());
          for (const s of sockets) s.destroy();
        });
      resolve({ url: `http://${hostPort(at.host, at.port)}`, close });
    });
  });
}
