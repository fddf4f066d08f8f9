import { createPublicKey, type KeyObject } from "node:crypto";
import { errorMessage, InputError } from "../errors.js";
import { webCryptoParams } from "./algorithms.js";
import { subjectName } from "./certificate.js";
import { dedupeDnsNames, dedupeIps } from "./ip.js";
import type { KeyPair } from "./keygen.js";
import { toPublicCryptoKey, toSigningKey } from "./keys.js";
import { decodePem, encodePem } from "./pem.js";
import { x509 } from "./provider.js";

export interface CsrRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
}

export interface CsrInfo {
  der: Buffer;
  pem: string;
  commonName: string;
  organizations: string[];
  dnsNames: string[];
  ipAddresses: string[];
  publicKey: KeyObject;
  signatureValid: boolean;
}

/**
 * A PKCS#10 request as `kubeadm certs generate-csr` makes it: subject CN/O and the SANs in an
 * extensionRequest, no key usages (the signer adds them).
 */
export async function buildCsr(req: CsrRequest, keys: KeyPair): Promise<{ der: Buffer; pem: string }> {
  const names = [
    ...dedupeDnsNames(req.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...dedupeIps(req.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subjectName(req.commonName, req.organizations),
    keys: {
      privateKey: await toSigningKey(keys.privateKey),
      publicKey: await toPublicCryptoKey(keys.publicKey),
    },
    signingAlgorithm: webCryptoParams(keys.privateKey).signParams,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  const der = Buffer.from(csr.rawData);
  return { der, pem: encodePem("CERTIFICATE REQUEST", der) };
}

export async function parseCsrPem(text: string, source: string): Promise<CsrInfo> {
  const block = decodePem(text, source).find(
    (b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST",
  );
  if (!block) throw new InputError(`${source}: no CERTIFICATE REQUEST PEM block found`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(block.der));
  } catch (err) {
    throw new InputError(`${source}: not a valid PKCS#10 request (${errorMessage(err)})`, { cause: err });
  }
  // getExtension on a request takes only an OID string (docs/stack.md, "Traps in @peculiar/x509").
  const san = csr.getExtension("2.5.29.17") as x509.SubjectAlternativeNameExtension | null;
  const items = san?.names.items ?? [];
  return {
    der: block.der,
    pem: encodePem("CERTIFICATE REQUEST", block.der),
    commonName: csr.subjectName.getField("CN")[0] ?? "",
    organizations: csr.subjectName.getField("O"),
    dnsNames: items.filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: items.filter((n) => n.type === "ip").map((n) => n.value),
    publicKey: createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: "der", type: "spki" }),
    signatureValid: await csr.verify(),
  };
}
