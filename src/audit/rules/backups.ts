import { finding, type Rule } from "../context.js";
import type { Finding } from "../finding.js";

/**
 * Credentials kubepki's own backups keep on the node: a replaced certificate stays valid until it
 * expires, so its backed-up key still works; a backed-up system:masters kubeconfig is break-glass.
 */
export const backupRule: Rule = ({ snap }) => {
  const out: Finding[] = [];
  const byFolder = new Map<string, string[]>();
  for (const b of snap.backups) {
    if (b.masters) {
      out.push(
        finding(
          "kubepki.backup.break-glass",
          `${b.path} is a backed-up kubeconfig of group system:masters on the node.`,
          b.path,
          { file: b.path },
        ),
      );
      continue;
    }
    const folder = /^(\/var\/lib\/kubepki\/backups\/[^/]+)/.exec(b.path)?.[1] ?? b.path;
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), b.path]);
  }
  for (const [folder, paths] of byFolder)
    out.push(
      finding(
        "kubepki.backup.credentials",
        `${folder} keeps ${paths.length} private key(s) or client kubeconfig(s) of replaced certificates.`,
        folder,
        { file: folder, files: paths.join(", ") },
      ),
    );
  return out;
};
