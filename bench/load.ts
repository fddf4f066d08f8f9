/**
 * The webhook load both benches drive: `concurrency` keep-alive mTLS connections posting the same
 * SubjectAccessReview for `seconds` (after one warm-up request each), as kube-apiserver would.
 */
import { Agent, request } from "node:https";

export interface TlsClient {
  ca: string;
  cert: string;
  key: string;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
}

export async function load(
  port: number,
  tls: TlsClient,
  body: string,
  { seconds, concurrency }: { seconds: number; concurrency: number },
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ...tls, servername: "localhost" });
  const latencies: number[] = [];
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/authorize",
          method: "POST",
          agent,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            resolve();
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  // Warm up the connections, then measure.
  await Promise.all(Array.from({ length: concurrency }, one));
  latencies.length = 0;
  const t0 = Date.now();
  const deadline = t0 + seconds * 1000;
  const worker = async () => {
    while (Date.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (Date.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { rps: latencies.length / secs, p50: q(0.5), p99: q(0.99) };
}
