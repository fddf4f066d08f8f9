/** File modes kubeadm gives what it writes (docs/kubeadm-pki.md, "File modes"). */
export const MODE_CERT = 0o644;
/** Private keys and kubeconfigs: 0600 from the first byte. */
export const MODE_KEY = 0o600;
/** The offline folder and kubepki's state folder. */
export const MODE_OFFLINE_DIR = 0o700;
