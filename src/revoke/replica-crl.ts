import { errorMessage } from "../errors.js";
import { writeFileAtomic } from "../fsx/atomic.js";
import { MODE_CERT } from "../fsx/modes.js";
import { readFileLimited, readTextLimited } from "../fsx/read.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { caPaths, crlPath, type TreePaths } from "../pki/paths.js";
import { readCrl } from "../x509/crl.js";
import { type CertInfo, parseCertificatePem } from "../x509/parse.js";

/**
 * Writes the latest CRL of each CA, as the shared ledger holds it, to this node's CRL file (what
 * etcd's --client-crl-file reads): only a CRL this node's CA signed, only when its number is above
 * the file's, atomically. One write at a time, in the order the changes came.
 */
export class CrlFiles {
  private cas = new Map<string, { id: CaId; cert: CertInfo }>();
  private chain: Promise<void> = Promise.resolve();
  written = 0;

  constructor(
    private readonly paths: TreePaths,
    private readonly log: (message: string) => void,
  ) {
    this.loadCas();
  }

  /** The node's CA certificates by fingerprint (read again when an unknown issuer shows up: a rotation). */
  private loadCas(): void {
    this.cas.clear();
    for (const ca of CAS) {
      const path = caPaths(this.paths, ca.id).cert;
      const pem = readTextLimited(path);
      if (!pem) continue;
      try {
        const cert = parseCertificatePem(pem, path);
        this.cas.set(cert.sha256, { id: ca.id, cert });
      } catch (err) {
        this.log(`kubepki serve: cannot read ${path} (${errorMessage(err)}); its CRL is not written here`);
      }
    }
  }

  write(issuerSha256: string, der: Buffer): Promise<void> {
    this.chain = this.chain.then(() =>
      this.writeOne(issuerSha256, der).catch((err) =>
        this.log(`kubepki serve: writing a CRL from etcd failed: ${errorMessage(err)}`),
      ),
    );
    return this.chain;
  }

  private async writeOne(issuerSha256: string, der: Buffer): Promise<void> {
    if (!this.cas.has(issuerSha256)) this.loadCas();
    const ca = this.cas.get(issuerSha256);
    if (!ca) return; // a CA this node does not have
    const crl = await readCrl(der, ca.cert).catch(() => undefined);
    if (!crl) {
      this.log(
        `kubepki serve: the CRL etcd holds for ${ca.id} is not signed by this node's ${ca.id}; not written`,
      );
      return;
    }
    const path = crlPath(this.paths, ca.id);
    const current = readFileLimited(path);
    const onDisk = current ? await readCrl(current, ca.cert).catch(() => undefined) : undefined;
    if (onDisk && onDisk.number >= crl.number) return;
    writeFileAtomic(path, der, MODE_CERT);
    this.written++;
  }
}
