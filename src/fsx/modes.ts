/**
 * Every file mode kubepki writes, in one place (kubeadm's own: docs/kubeadm-pki.md, "File modes").
 * The filesystem layer owns them so fsx (lock, journal) and pki use the same numbers.
 */
/** Certificates, CRLs, configuration: world-readable, as kubeadm writes them. */
export const MODE_CERT = 0o644;
/** Private keys, kubeconfigs, the ledger and kubepki's own state files: 0600 from the first byte. */
export const MODE_KEY = 0o600;
/** The offline folder and kubepki's state folder. */
export const MODE_OFFLINE_DIR = 0o700;
/** Parents kubeadm's writers create. */
export const MODE_DIR = 0o755;
