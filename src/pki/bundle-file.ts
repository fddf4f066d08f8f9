import { InputError } from "../errors.js";
import { openBytes, sealBytes } from "./bundle-crypto.js";
import { caEntry, sharedFileName } from "./catalog.js";
import { materialFromFiles, type SharedMaterial, sharedFiles } from "./join-bundle.js";

/*
 * The join bundle on disk (docs/join-bundle.md): a small JSON envelope whose `data` is one
 * AES-256-GCM blob (kubeadm's EncryptBytes layout), so the whole set is authenticated at once: a
 * changed, added or removed entry fails the tag, not only a changed byte inside one entry.
 */

export const BUNDLE_API_VERSION = "kubepki.io/v1alpha1";
export const BUNDLE_KIND = "JoinBundle";
const CONTENT_KIND = "JoinBundleContent";

interface Envelope {
  apiVersion: string;
  kind: string;
  encryption: "AES-256-GCM";
  /** base64 of nonce (12 bytes) || ciphertext || tag (16 bytes). */
  data: string;
}

interface Content {
  kind: typeof CONTENT_KIND;
  createdAt: string;
  /** kubeadm's kubeadm-certs Secret names (ca.crt, etcd-ca.key, sa.pub, ...) to PEM. */
  files: Record<string, string>;
  /** Entries whose key the first node keeps in its offline folder (--external-ca). */
  offlineKeys: string[];
}

export function encodeBundle(m: SharedMaterial, key: Uint8Array, now = new Date()): string {
  const files = sharedFiles(m);
  const offlineKeys = m.cas
    .filter((c) => c.keyOffline)
    .map((c) => sharedFileName(caEntry(c.id).baseName, ".key"));
  const content: Content = { kind: CONTENT_KIND, createdAt: now.toISOString(), files, offlineKeys };
  const envelope: Envelope = {
    apiVersion: BUNDLE_API_VERSION,
    kind: BUNDLE_KIND,
    encryption: "AES-256-GCM",
    data: sealBytes(Buffer.from(JSON.stringify(content), "utf8"), key).toString("base64"),
  };
  return `${JSON.stringify(envelope, null, 2)}\n`;
}

/**
 * The material of a bundle file; refused (exit 2) when it is not a bundle, when the key does not
 * open it (wrong key, or any byte changed), or when what it holds does not check.
 */
export function decodeBundle(
  text: string,
  key: Uint8Array,
  where: string,
): { material: SharedMaterial; createdAt: string } {
  const envelope = parseEnvelope(text, where);
  const plain = openBytes(Buffer.from(envelope.data, "base64"), key);
  if (!plain)
    throw new InputError(
      `${where} cannot be opened with this --certificate-key: the key is wrong, or the bundle was changed after join-bundle wrote it. Nothing was written.`,
    );
  let content: Content;
  try {
    content = JSON.parse(plain.toString("utf8")) as Content;
    if (
      content.kind !== CONTENT_KIND ||
      typeof content.files !== "object" ||
      !Array.isArray(content.offlineKeys)
    )
      throw new Error(`not a ${CONTENT_KIND}`);
  } catch (err) {
    throw new InputError(`${where} opened, but what it holds is not a kubepki join bundle's content`, {
      cause: err,
    });
  }
  return {
    material: materialFromFiles(content.files, content.offlineKeys, where),
    createdAt: content.createdAt,
  };
}

function parseEnvelope(text: string, where: string): Envelope {
  let raw: Partial<Envelope>;
  try {
    raw = JSON.parse(text) as Partial<Envelope>;
  } catch (err) {
    throw new InputError(`${where} is not a kubepki join bundle (not JSON); nothing was written`, {
      cause: err,
    });
  }
  if (raw?.kind !== BUNDLE_KIND || raw.apiVersion !== BUNDLE_API_VERSION)
    throw new InputError(
      `${where} is not a kubepki join bundle (kind ${BUNDLE_KIND}, ${BUNDLE_API_VERSION}); nothing was written`,
    );
  if (raw.encryption !== "AES-256-GCM" || typeof raw.data !== "string")
    throw new InputError(`${where}: unknown encryption ${String(raw.encryption)}; nothing was written`);
  return raw as Envelope;
}
