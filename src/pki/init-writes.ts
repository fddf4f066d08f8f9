import { MODE_CERT, MODE_KEY, MODE_OFFLINE_DIR } from "../fsx/modes.js";
import type { PendingWrite } from "../fsx/transaction.js";
import type { KeyPair } from "../x509/keygen.js";
import { privateKeyToPem, publicKeyToPem } from "../x509/keys.js";
import { type ArtifactReport, caReport, type LeafJob, leafReport, type SaState } from "./init-plan.js";
import type { Signed, SignedCa } from "./init-sign.js";
import { buildKubeconfig } from "./kubeconfig.js";

/** init's files and report rows, in the order init reports them: CAs, leaves, sa, the kubeadm config. */
export class InitWrites {
  readonly writes: PendingWrite[] = [];
  readonly reports: ArtifactReport[] = [];

  constructor(readonly offlineDir: string) {}

  /** A write whose missing parent folders are made 0700 when it goes to the offline folder. */
  private put(path: string, data: string | undefined, mode: number): void {
    const dirMode = path.startsWith(this.offlineDir) ? MODE_OFFLINE_DIR : undefined;
    this.writes.push({ path, data, mode, dirMode });
  }

  cas(cas: SignedCa[]): void {
    for (const { state, pem } of cas) {
      if (pem && state.key) {
        this.writes.push({ path: state.paths.cert, data: pem, mode: MODE_CERT });
        this.put(state.keyPath, privateKeyToPem(state.key), MODE_KEY);
      }
      // --external-ca: the node's key moves to the offline folder.
      if (state.removeNodeKey && state.key) {
        this.put(state.keyPath, privateKeyToPem(state.key), MODE_KEY);
        this.writes.push({ path: state.paths.key, data: undefined, mode: MODE_KEY });
      }
      this.reports.push(caReport(state));
    }
  }

  /** Every job's row; the signed ones with their new certificate, key or kubeconfig. */
  leaves(jobs: LeafJob[], signed: Signed, clusterName: string): void {
    const byId = new Map(signed.leaves.map((s) => [s.job.id, s]));
    for (const { job, issued, key, ca } of signed.leaves) {
      const keyPem = privateKeyToPem(key);
      if (job.pair) {
        this.put(job.pair.cert, issued.pem, MODE_CERT);
        this.put(job.pair.key, keyPem, MODE_KEY);
      } else if (job.kubeconfig && ca.cert) {
        const text = buildKubeconfig({
          clusterName,
          server: job.kubeconfig.server,
          caPem: ca.cert.pem,
          userName: job.profile.commonName,
          clientCertPem: issued.pem,
          clientKeyPem: keyPem,
        });
        this.put(job.kubeconfig.path, text, MODE_KEY);
      }
    }
    for (const job of jobs) this.reports.push(leafReport(byId.get(job.id)?.job ?? job));
  }

  /** sa.key when new, sa.pub when new or out of step with the key kept. */
  sa(sa: SaState, kp: KeyPair | undefined): void {
    if (kp) this.writes.push({ path: sa.paths.key, data: privateKeyToPem(kp.privateKey), mode: MODE_KEY });
    const pub = kp?.publicKey ?? sa.publicKey;
    if ((sa.action !== "kept" || sa.writePub) && pub)
      this.writes.push({ path: sa.paths.pub, data: publicKeyToPem(pub), mode: MODE_KEY });
    this.reports.push({
      id: "sa",
      kind: "key-pair",
      action: sa.action,
      location: "node",
      path: sa.paths.pub,
      keyPath: sa.paths.key,
    });
  }

  config(path: string, yaml: string): void {
    this.writes.push({ path, data: yaml, mode: MODE_CERT });
    this.reports.push({ id: "kubeadm-config", kind: "config", action: "written", location: "node", path });
  }
}
