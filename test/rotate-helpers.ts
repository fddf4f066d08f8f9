import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { keysMatch, parsePrivateKeyPem } from "../src/x509/keys.js";
import { parseCertificatesPem } from "../src/x509/parse.js";
import { decodePem } from "../src/x509/pem.js";
import { kubeletConfig, writeKubelet, writeManifests } from "./fixtures.js";
import { initTree, kubepki, PKI } from "./helpers.js";

const pki = (root: string, f: string) => join(root, PKI, f);
const read = (p: string) => readFileSync(p, "utf8");

/** A control plane as kubepki init and kubeadm leave it: PKI, ledger, manifests, kubelet configuration. */
export async function rotationNode(): Promise<{ root: string; offline: string }> {
  const t = await initTree();
  writeManifests(t.root, true);
  writeKubelet(t.root, kubeletConfig(true));
  return t;
}

export function rotateCa(t: { root: string; offline: string }, ...args: string[]) {
  return kubepki(["rotate-ca", ...args, "--root", t.root, "--offline-dir", t.offline]);
}

export function phase(t: { root: string; offline: string }, ca: string, p: string, ...extra: string[]) {
  const r = rotateCa(t, "--ca", ca, "--phase", p, "-o", "json", ...extra);
  assert.equal(r.status, 0, `${ca} ${p}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export function rotationStatus(t: { root: string; offline: string }) {
  const r = rotateCa(t, "status", "-o", "json");
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Every file a signing flag names (ca.crt and its kin) holds exactly one certificate, matching its key. */
export function assertSigningFiles(root: string): void {
  for (const base of ["ca", "front-proxy-ca", "etcd/ca"]) {
    const certs = parseCertificatesPem(read(pki(root, `${base}.crt`)), base);
    assert.equal(certs.length, 1, `${base}.crt holds ${certs.length} certificates`);
    const key = parsePrivateKeyPem(read(pki(root, `${base}.key`)), base);
    assert.ok(keysMatch(key, certs[0]?.publicKey ?? createPublicKey(key)), `${base}.key does not match`);
  }
  const pubs = decodePem(read(pki(root, "sa.pub")), "sa.pub");
  assert.equal(pubs.length, 1);
  const saKey = parsePrivateKeyPem(read(pki(root, "sa.key")), "sa.key");
  assert.ok(keysMatch(saKey, createPublicKey({ key: read(pki(root, "sa.pub")), format: "pem" })));
}
