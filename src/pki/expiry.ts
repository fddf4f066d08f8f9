import { join } from "node:path";
import { errorMessage, InputError } from "../errors.js";
import { exists } from "../fsx/read.js";
import { type CertInfo, parseCertificatePem } from "../x509/parse.js";
import { caItems, type TreeItem, treeItems } from "./inventory.js";
import { parseKubeconfig } from "./kubeconfig.js";
import { caPaths, offlineCaKeyPath, readTreeText, type TreePaths } from "./paths.js";

/** One row, in kubeadm's output.kubeadm.k8s.io/v1alpha3 Certificate shape (+ path, error). */
export interface ExpirationRow {
  name: string;
  expirationDate?: string;
  residualTime: number;
  externallyManaged: boolean;
  caName?: string;
  missing: boolean;
  path: string;
  error?: string;
}

export interface CertificateExpirationInfo {
  kind: "CertificateExpirationInfo";
  apiVersion: "output.kubeadm.k8s.io/v1alpha3";
  certificates: ExpirationRow[];
  certificateAuthorities: ExpirationRow[];
}

/** Reads the certificate an item stands for: a PEM file, or a kubeconfig's client certificate. */
export function readItemCertificate(
  paths: TreePaths,
  item: { kind: TreeItem["kind"]; path: string },
): CertInfo | undefined {
  const text = readTreeText(paths, item.path);
  if (text === undefined) return undefined;
  if (item.kind === "certificate") return parseCertificatePem(text, item.path);
  const view = parseKubeconfig(text, item.path);
  if (view.clientCert) return view.clientCert;
  if (view.clientCertificatePath) {
    const inner = join(paths.root, view.clientCertificatePath);
    return readItemCertificate(paths, { kind: "certificate", path: inner });
  }
  throw new InputError(`${item.path} has no client certificate in its current context`);
}

function caKeyAvailable(paths: TreePaths, id: Parameters<typeof caPaths>[1]): boolean {
  const offline = offlineCaKeyPath(paths, id);
  return exists(caPaths(paths, id).key) || (offline !== undefined && exists(offline));
}

export function checkExpiration(paths: TreePaths, now = new Date()): CertificateExpirationInfo {
  const row = (
    name: string,
    path: string,
    read: () => CertInfo | undefined,
    external: boolean,
    caName?: string,
  ) => {
    try {
      const cert = read();
      if (!cert) return { name, residualTime: 0, externallyManaged: false, caName, missing: true, path };
      return {
        name,
        expirationDate: cert.notAfter.toISOString().replace(/\.\d{3}Z$/, "Z"),
        residualTime: Math.trunc((cert.notAfter.getTime() - now.getTime()) / 1000),
        externallyManaged: external,
        caName,
        missing: false,
        path,
      };
    } catch (err) {
      return {
        name,
        residualTime: 0,
        externallyManaged: external,
        caName,
        missing: false,
        path,
        error: errorMessage(err),
      };
    }
  };
  return {
    kind: "CertificateExpirationInfo",
    apiVersion: "output.kubeadm.k8s.io/v1alpha3",
    certificates: treeItems(paths).map((item) =>
      row(
        item.name,
        item.path,
        () => readItemCertificate(paths, item),
        !caKeyAvailable(paths, item.caId),
        item.caId,
      ),
    ),
    certificateAuthorities: caItems(paths).map((ca) =>
      row(
        ca.id,
        ca.cert,
        () => readItemCertificate(paths, { kind: "certificate", path: ca.cert }),
        !caKeyAvailable(paths, ca.id),
      ),
    ),
  };
}
