import { snapshotChanges } from "../../node/integrity.js";
import { finding, type Rule } from "../context.js";

const WHAT: Record<string, string> = {
  "key-replaced": "holds another private key than the baseline recorded",
  "key-added": "is a private key file the baseline did not have",
  "mode-widened": "has a wider mode than the baseline recorded",
  "owner-changed": "has another owner than the baseline recorded",
  "certificate-unknown": "holds a certificate the ledger does not know",
  "ca-certificate-changed": "holds another CA certificate than the baseline recorded",
};

const octal = (m: number | undefined) => (m === undefined ? "" : `0${m.toString(8)}`);

/**
 * Changes to key and certificate files since the baseline `kubepki watch` keeps in the ledger,
 * judged as the watch judges them (node/integrity.ts): one finding per change. A change kubepki
 * made, or the kubelet's own rotation, is none; `kubepki watch --accept PATH` ends one.
 */
export const integrityRule: Rule = ({ snap }) =>
  snapshotChanges(snap).map((c) =>
    finding(`integrity.${c.change}`, `${c.path} ${WHAT[c.change] ?? c.change} (kubepki watch).`, c.path, {
      file: c.path,
      ...(c.before?.certSha256 ? { certSha256Before: c.before.certSha256 } : {}),
      ...(c.after.certSha256 ? { certSha256: c.after.certSha256 } : {}),
      ...(c.before?.keySpki ? { keySpkiSha256Before: c.before.keySpki } : {}),
      ...(c.after.keySpki ? { keySpkiSha256: c.after.keySpki } : {}),
      ...(c.before
        ? { modeBefore: octal(c.before.mode), ownerBefore: `${c.before.uid}:${c.before.gid}` }
        : {}),
      mode: octal(c.after.mode),
      owner: `${c.after.uid}:${c.after.gid}`,
    }),
  );
