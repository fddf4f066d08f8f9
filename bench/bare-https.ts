// The baseline for bench/webhook: a bare Node HTTPS server with the same mTLS settings and
// certificates as kubepki serve, answering every request with a constant body.
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [certFile, keyFile, caFile, port] = process.argv.slice(2);
const body = JSON.stringify({
  apiVersion: "authorization.k8s.io/v1",
  kind: "SubjectAccessReview",
  status: { allowed: false },
});
const server = createServer(
  {
    cert: readFileSync(certFile ?? ""),
    key: readFileSync(keyFile ?? ""),
    ca: readFileSync(caFile ?? ""),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
  },
  (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  },
);
server.keepAliveTimeout = 65_000;
server.listen(Number(port), "127.0.0.1", () => process.stderr.write("listening on\n"));
