import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server, type ServerOptions } from "node:https";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

/** One event of a stand-in's life, for the tests to read (never key material). */
export interface PeerEvent {
  at: number;
  kind: "start" | "stop" | "refused" | "request" | "error";
  detail: string;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, sock: TLSSocket) => void;

/**
 * An HTTPS server on a fixed loopback port whose TLS options and handler are built by `load` at each
 * (re)start, as a component reads its files only when it starts. A client certificate that does not
 * chain to the `ca` pool is refused right after the handshake (the connection is destroyed before
 * any HTTP is read); a connection without a certificate goes on to the handler.
 */
export class TlsStandIn {
  readonly events: PeerEvent[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** A loopback address (127.0.0.0/8): a second kubelet listens on 127.0.0.2, the address its certificate names. */
  host = "127.0.0.1";

  constructor(
    readonly name: string,
    private readonly load: () => { tls: ServerOptions; handler: Handler },
  ) {}

  get url(): string {
    return `https://${this.host}:${this.port}`;
  }

  note(kind: PeerEvent["kind"], detail: string): void {
    this.events.push({ at: Date.now(), kind, detail });
  }

  async start(): Promise<void> {
    const { tls, handler } = this.load();
    const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const sock = req.socket as TLSSocket;
      if (this.refuse(sock)) return;
      handler(req, res, sock);
    });
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
    server.on("secureConnection", (sock: TLSSocket) => this.refuse(sock));
    server.on("tlsClientError", (err) => this.note("error", `tls: ${err.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.host, () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    this.note("start", this.url);
  }

  /** Refuses (destroys) a connection whose client certificate does not verify; true when refused. */
  private refuse(sock: TLSSocket): boolean {
    if (sock.destroyed) return true;
    const cert = sock.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0 || sock.authorized) return false;
    this.note("refused", `client certificate ${cert.subject?.CN ?? "?"}: ${sock.authorizationError}`);
    sock.destroy();
    return true;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.note("stop", this.url);
  }

  /** Stops and starts again on the same port, re-reading every file. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  refusals(): PeerEvent[] {
    return this.events.filter((e) => e.kind === "refused");
  }
}

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

export function status(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  });
}

export async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new Error("body too large");
  }
  return body;
}
