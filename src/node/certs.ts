import type { CertInfo } from "../x509/parse.js";

/** One certificate at one place (a file position or a kubeconfig field). */
export function certKey(c: CertInfo): string {
  return `${c.path}#${c.field ?? c.index}#${c.sha256}`;
}

/** The certificates without repeats of the same one at the same place. */
export function uniqueCerts(certs: CertInfo[]): CertInfo[] {
  const seen = new Set<string>();
  return certs.filter((c) => {
    const k = certKey(c);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
