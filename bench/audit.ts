/**
 * bench/audit: time to audit a tree holding 20,000 certificates (snapshot + every rule), next to
 * the time to read and parse the same files with crypto.X509Certificate in the same run.
 * Target: the audit runs at least half the raw parse rate.
 *
 *   node --import tsx bench/audit.ts [count]
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditNode } from "../src/audit/audit.js";
import { issueCertificate } from "../src/x509/certificate.js";
import { generateKeyPair } from "../src/x509/keygen.js";
import { parsePrivateKeyPem } from "../src/x509/keys.js";
import { parseCertificatePem } from "../src/x509/parse.js";
import { buildTree } from "../test/helpers.js";

const COUNT = Number(process.argv[2] ?? 20_000);
const DISTINCT = 250;
const DAY = 86_400_000;

const { root, dir } = await buildTree();
const pki = join(root, "etc/kubernetes/pki");
const ca = parseCertificatePem(readFileSync(join(pki, "ca.crt"), "utf8"), "ca.crt");
const caKey = parsePrivateKeyPem(readFileSync(join(pki, "ca.key"), "utf8"), "ca.key");

// Distinct certificates (signing 20,000 would take minutes); every file gets its own name.
const pems: string[] = [];
for (let i = 0; i < DISTINCT; i++) {
  const kp = await generateKeyPair(i % 5 === 0 ? "RSA-2048" : "ECDSA-P256");
  const issued = await issueCertificate(
    {
      commonName: `workload-${i}`,
      organizations: i % 7 === 0 ? ["team-a"] : [],
      isCA: false,
      keyUsage: ["digitalSignature", "keyEncipherment"],
      extKeyUsage: i % 2 ? ["serverAuth"] : ["clientAuth"],
      dnsNames: i % 2 ? [`svc-${i}.example.internal`] : [],
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + ((i % 400) + 5) * DAY),
    },
    kp.publicKey,
    { certificate: ca, privateKey: caKey },
  );
  pems.push(issued.pem);
}
const bulk = join(pki, "bulk");
for (let i = 0; i < COUNT; i++) {
  const sub = join(bulk, String(i % 100));
  if (i < 100) mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, `cert-${i}.crt`), pems[i % DISTINCT] ?? "", { mode: 0o644 });
}
const files: string[] = [];
for (const sub of readdirSync(bulk))
  for (const f of readdirSync(join(bulk, sub))) files.push(join(bulk, sub, f));

function rawParse(): number {
  let n = 0;
  for (const f of files) {
    const x = new X509Certificate(readFileSync(f));
    if (x.subject) n++;
  }
  return n;
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const t0 = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

rawParse(); // warm the page cache and the JIT for both sides
auditNode({ root });
const rounds = 3;
const raw: number[] = [];
const aud: number[] = [];
let findings = 0;
let certs = 0;
for (let r = 0; r < rounds; r++) {
  raw.push(time(rawParse).ms);
  const a = time(() => auditNode({ root }));
  aud.push(a.ms);
  findings = a.value.findings.length;
  certs = a.value.snapshot.certs.length;
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const rawRate = (files.length / med(raw)) * 1000;
const auditRate = (certs / med(aud)) * 1000;
console.log(
  `bench/audit: ${files.length} bulk certificate files (+ the PKI itself), medians of ${rounds} interleaved rounds`,
);
console.log(`raw read + X509Certificate parse: ${med(raw).toFixed(0)} ms  (${rawRate.toFixed(0)} certs/s)`);
console.log(
  `kubepki audit (snapshot + rules): ${med(aud).toFixed(0)} ms  (${auditRate.toFixed(0)} certs/s, ${certs} certificates, ${findings} findings)`,
);
console.log(`audit rate / raw parse rate = ${(auditRate / rawRate).toFixed(2)} (target >= 0.50)`);
rmSync(dir, { recursive: true, force: true });
