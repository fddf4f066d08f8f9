import { join } from "node:path";
import { type Document, isMap, parseAllDocuments } from "yaml";
import { exists } from "../fsx/read.js";
import { KUBEADM_EXTRA_ARGS, ROTATION_IDS, type RotationId, TRUST_BUNDLES, TRUST_FLAGS } from "./catalog.js";
import { DocEditor } from "./config-edit.js";
import type { TreePaths } from "./paths.js";

const REASON = "rotate-ca: trust moves to a bundle that kubeadm upgrade must keep";

/**
 * The kubeadm configuration with every trust flag kubeadm sets for this CA as an extraArg naming
 * its bundle (`to`), and for the cluster CA the KubeletConfiguration's clientCAFile: `kubeadm
 * upgrade` writes the manifests again from it. undefined when nothing changes (or it does not parse).
 */
export function wireKubeadmTrust(text: string, id: RotationId, to: string): string | undefined {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) return undefined;
  const changes: never[] = [];
  for (const doc of docs) {
    const kind = kindOf(doc);
    if (kind === "ClusterConfiguration") editCluster(new DocEditor(doc, kind, changes), doc, id, to);
    if (kind === "KubeletConfiguration" && id === "ca")
      new DocEditor(doc, kind, changes).scalar(["authentication", "x509", "clientCAFile"], to, REASON);
  }
  if (changes.length === 0) return undefined;
  return docs
    .map((d, i) => {
      const t = d.toString({ flowCollectionPadding: false, lineWidth: 0 });
      return i === 0 || t.startsWith("---") ? t : `---\n${t}`;
    })
    .join("");
}

/** init writes the kubeadm configuration again: a rotation's bundles stay wired in it. */
export function keepTrustWiring(paths: TreePaths, yaml: string): string {
  let text = yaml;
  for (const id of ROTATION_IDS) {
    const bundle = join(paths.pkiDir, TRUST_BUNDLES[id]);
    if (!exists(bundle)) continue;
    text = wireKubeadmTrust(text, id, `/${bundle.slice(paths.root.length + 1)}`) ?? text;
  }
  return text;
}

function kindOf(doc: Document): string | undefined {
  return isMap(doc.contents) ? String(doc.get("kind") ?? "") : undefined;
}

function editCluster(e: DocEditor, doc: Document, id: RotationId, to: string): void {
  const style = String(doc.get("apiVersion") ?? "").endsWith("v1beta3") ? "map" : "list";
  const external = e.value(["etcd", "external"]) !== undefined;
  for (const f of TRUST_FLAGS.filter((t) => t.id === id && t.kubeadm)) {
    const where = KUBEADM_EXTRA_ARGS[f.component];
    if (!where || (external && (f.component === "etcd" || f.flag === "etcd-cafile"))) continue;
    e.arg(where, style, f.flag, to, REASON);
  }
}
