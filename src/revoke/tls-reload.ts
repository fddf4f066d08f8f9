import { readFileSync, statSync } from "node:fs";
import { createSecureContext } from "node:tls";

export interface TlsFiles {
  cert: string;
  key: string;
  /** The CA file whose client certificates may call (kube-apiserver's). */
  ca: string;
}

/** Something with Node's tls.Server#setSecureContext. */
interface Reloadable {
  setSecureContext(options: { cert: string; key: string; ca: string }): void;
}

/**
 * Keeps a TLS server on the files it was started from: every `intervalMs` the paths are resolved
 * again (`files()`: the trust bundle appears at `rotate-ca trust` and goes at `abort`) and their
 * stat compared; on a change the three are read and, once the key matches the certificate, become
 * the server's context for new handshakes. A half-replaced pair (a new certificate, the old key) is
 * skipped and tried at the next tick. Why: during a CA rotation kube-apiserver restarts with a
 * client certificate of the new CA, and a server still trusting what it read at start refuses it.
 */
export function reloadTlsFiles(
  server: Reloadable,
  files: () => TlsFiles,
  o: { intervalMs?: number; log?: (message: string) => void },
): () => void {
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  let last = signature(files());
  const tick = () => {
    const f = files();
    const now = signature(f);
    if (now === last) return;
    try {
      const material = {
        cert: readFileSync(f.cert, "utf8"),
        key: readFileSync(f.key, "utf8"),
        ca: readFileSync(f.ca, "utf8"),
      };
      createSecureContext(material); // throws on a key that does not match its certificate
      server.setSecureContext(material);
      last = now;
      log(`kubepki serve: TLS files changed: serving ${f.cert}, trusting clients of ${f.ca}`);
    } catch {
      // Mid-replacement or unreadable: the running context stays, the next tick tries again.
    }
  };
  const timer = setInterval(tick, o.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}

function signature(f: TlsFiles): string {
  return [f.cert, f.key, f.ca]
    .map((p) => {
      try {
        const s = statSync(p);
        return `${p}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return `${p}:missing`;
      }
    })
    .join("|");
}
