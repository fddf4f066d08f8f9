import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type CertificateTemplate, issueCertificate } from "../src/x509/certificate.js";
import { generateKeyPair, type KeyPair } from "../src/x509/keygen.js";
import { toPublicCryptoKey } from "../src/x509/keys.js";
import { type CertInfo, certInfoFromDer } from "../src/x509/parse.js";
import { type VerifyOptions, verifyPath } from "../src/x509/verify.js";
import { openssl, tempDir } from "./helpers.js";

const DAY = 86_400_000;
const now = Date.now();

function tpl(cn: string, over: Partial<CertificateTemplate> = {}): CertificateTemplate {
  return {
    commonName: cn,
    isCA: false,
    keyUsage: ["digitalSignature", "keyEncipherment"],
    extKeyUsage: ["serverAuth"],
    dnsNames: [cn],
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + DAY),
    ...over,
  };
}

const caTpl = (cn: string, over: Partial<CertificateTemplate> = {}) =>
  tpl(cn, { isCA: true, keyUsage: ["digitalSignature", "keyCertSign", "cRLSign"], extKeyUsage: [], ...over });

async function make(t: CertificateTemplate, issuer?: { info: CertInfo; kp: KeyPair }) {
  const kp = await generateKeyPair("ECDSA-P256");
  const issued = await issueCertificate(
    t,
    kp.publicKey,
    issuer ? { certificate: issuer.info, privateKey: issuer.kp.privateKey } : { selfSigned: kp.privateKey },
  );
  return { info: certInfoFromDer(issued.der, t.commonName), kp };
}

/** A certificate the templates cannot express (custom extensions), signed by `issuer` or by itself. */
async function makeRaw(
  cn: string,
  extensions: (x: typeof import("../src/x509/provider.js").x509, publicKey: CryptoKey) => Promise<unknown[]>,
  issuer?: { info: CertInfo; kp: KeyPair },
) {
  const { x509 } = await import("../src/x509/provider.js");
  const { toSigningKey, toPublicCryptoKey } = await import("../src/x509/keys.js");
  const kp = await generateKeyPair("ECDSA-P256");
  const publicKey = await toPublicCryptoKey(kp.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    subject: `CN=${cn}`,
    issuer: issuer ? new x509.Name(new Uint8Array(issuer.info.subjectDer)) : `CN=${cn}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + DAY),
    publicKey,
    signingKey: await toSigningKey((issuer?.kp ?? kp).privateKey),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
    extensions: (await extensions(x509, publicKey)) as InstanceType<typeof x509.Extension>[],
  });
  return { info: certInfoFromDer(Buffer.from(cert.rawData), cn), kp };
}

/** Runs both checks on the same chain and returns their verdicts. */
async function both(
  leaf: CertInfo,
  root: CertInfo,
  intermediates: CertInfo[],
  opts: VerifyOptions & { purpose?: "serverAuth" | "clientAuth" } = {},
) {
  const dir = tempDir();
  const w = (name: string, certs: CertInfo[]) => {
    const p = join(dir, name);
    writeFileSync(p, certs.map((c) => c.pem).join(""));
    return p;
  };
  const args = ["verify", "-x509_strict", "-CAfile", w("root.pem", [root])];
  if (intermediates.length > 0) args.push("-untrusted", w("inter.pem", intermediates));
  if (opts.purpose) args.push("-purpose", opts.purpose === "serverAuth" ? "sslserver" : "sslclient");
  const ours = verifyPath(leaf, [root], intermediates, opts);
  const theirs = openssl([...args, w("leaf.pem", [leaf])]);
  return {
    ours: ours.ok,
    openssl: theirs.status === 0,
    reason: ours.ok ? "" : ours.reason,
    out: theirs.stdout + theirs.stderr,
  };
}

describe("the RFC 5280 path check agrees with openssl verify", () => {
  it("on good and bad chains", async () => {
    const root = await make(caTpl("root"));
    const rootPath0 = await make(caTpl("root-pathlen0"));
    const inter = await make(caTpl("inter"), root);
    const cases: { name: string; run: () => Promise<Awaited<ReturnType<typeof both>>>; expect: boolean }[] = [
      {
        name: "good leaf under root",
        expect: true,
        run: async () => both((await make(tpl("leaf"), root)).info, root.info, []),
      },
      {
        name: "good leaf under an intermediate",
        expect: true,
        run: async () => both((await make(tpl("leaf"), inter)).info, root.info, [inter.info]),
      },
      {
        name: "issuer is not a CA",
        expect: false,
        run: async () => {
          const notCa = await make(tpl("not-a-ca"), root);
          return both((await make(tpl("leaf"), notCa)).info, root.info, [notCa.info]);
        },
      },
      {
        name: "expired leaf",
        expect: false,
        run: async () =>
          both(
            (
              await make(
                tpl("leaf", { notBefore: new Date(now - 3 * DAY), notAfter: new Date(now - DAY) }),
                root,
              )
            ).info,
            root.info,
            [],
          ),
      },
      {
        name: "leaf not yet valid",
        expect: false,
        run: async () =>
          both(
            (
              await make(
                tpl("leaf", { notBefore: new Date(now + DAY), notAfter: new Date(now + 3 * DAY) }),
                root,
              )
            ).info,
            root.info,
            [],
          ),
      },
      {
        name: "pathLen=0 exceeded",
        expect: false,
        run: async () => {
          // A root with pathLen 0 cannot be built through the template, so patch one in.
          const { x509 } = await import("../src/x509/provider.js");
          const { toSigningKey, toPublicCryptoKey } = await import("../src/x509/keys.js");
          const kp = rootPath0.kp;
          const cert = await x509.X509CertificateGenerator.createSelfSigned({
            name: "CN=root-pathlen0",
            notBefore: new Date(now - DAY),
            notAfter: new Date(now + DAY),
            keys: {
              privateKey: await toSigningKey(kp.privateKey),
              publicKey: await toPublicCryptoKey(kp.publicKey),
            },
            signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
            extensions: [
              new x509.BasicConstraintsExtension(true, 0, true),
              new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
              await x509.SubjectKeyIdentifierExtension.create(await toPublicCryptoKey(kp.publicKey)),
            ],
          });
          const r0 = { info: certInfoFromDer(Buffer.from(cert.rawData), "root-pathlen0"), kp };
          const mid = await make(caTpl("mid"), r0);
          return both((await make(tpl("leaf"), mid)).info, r0.info, [mid.info]);
        },
      },
      {
        name: "issuer without keyCertSign",
        expect: false,
        run: async () => {
          const ca = await make(caTpl("no-certsign", { keyUsage: ["digitalSignature", "cRLSign"] }), root);
          return both((await make(tpl("leaf"), ca)).info, root.info, [ca.info]);
        },
      },
      {
        name: "client-only leaf used as a server",
        expect: false,
        run: async () =>
          both((await make(tpl("leaf", { extKeyUsage: ["clientAuth"] }), root)).info, root.info, [], {
            purpose: "serverAuth",
          }),
      },
      {
        name: "server leaf as a server",
        expect: true,
        run: async () => both((await make(tpl("leaf"), root)).info, root.info, [], { purpose: "serverAuth" }),
      },
      {
        name: "signed by another key with the same issuer name",
        expect: false,
        run: async () => {
          const impostor = await make(caTpl("root"));
          return both((await make(tpl("leaf"), impostor)).info, root.info, []);
        },
      },
      {
        name: "expired intermediate",
        expect: false,
        run: async () => {
          const old = await make(
            caTpl("old-inter", { notBefore: new Date(now - 3 * DAY), notAfter: new Date(now - DAY) }),
            root,
          );
          return both((await make(tpl("leaf"), old)).info, root.info, [old.info]);
        },
      },
      {
        name: "unknown critical extension on the leaf",
        expect: false,
        run: async () => {
          const leaf = await makeRaw(
            "leaf-critical",
            async (x) => [
              new x.BasicConstraintsExtension(false, undefined, true),
              new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature, true),
              await x.AuthorityKeyIdentifierExtension.create(await toPublicCryptoKey(root.kp.publicKey)),
              new x.SubjectAlternativeNameExtension([{ type: "dns", value: "leaf-critical" }]),
              new x.Extension("1.3.6.1.4.1.55555.1", true, new Uint8Array([0x05, 0x00])),
            ],
            root,
          );
          return both(leaf.info, root.info, []);
        },
      },
      {
        name: "pathLen=1 allows one intermediate",
        expect: true,
        run: async () => {
          const r1 = await makeRaw("root-pathlen1", async (x, pub) => [
            new x.BasicConstraintsExtension(true, 1, true),
            new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true),
            await x.SubjectKeyIdentifierExtension.create(pub),
          ]);
          const mid = await make(caTpl("mid1"), r1);
          return both((await make(tpl("leaf"), mid)).info, r1.info, [mid.info]);
        },
      },
      {
        name: "intermediate whose EKU excludes serverAuth, used for a server",
        expect: false,
        run: async () => {
          const clientCa = await make(caTpl("client-only-ca", { extKeyUsage: ["clientAuth"] }), root);
          return both((await make(tpl("leaf"), clientCa)).info, root.info, [clientCa.info], {
            purpose: "serverAuth",
          });
        },
      },
      {
        name: "intermediate missing",
        expect: false,
        run: async () => both((await make(tpl("leaf"), inter)).info, root.info, []),
      },
    ];
    for (const c of cases) {
      const r = await c.run();
      assert.equal(r.openssl, c.expect, `${c.name}: openssl said ${r.out}`);
      assert.equal(r.ours, c.expect, `${c.name}: kubepki said ${r.reason || "ok"}`);
    }
  });
});

describe("the audit's use of the same check", () => {
  it("validity 'issuers' ignores the leaf's own window but not an issuer's", async () => {
    const root = await make(caTpl("root"));
    const expiredLeaf = await make(
      tpl("leaf", { notBefore: new Date(now - 3 * DAY), notAfter: new Date(now - DAY) }),
      root,
    );
    assert.equal(verifyPath(expiredLeaf.info, [root.info]).ok, false);
    assert.equal(verifyPath(expiredLeaf.info, [root.info], [], { validity: "issuers" }).ok, true);
    const old = await make(
      caTpl("old", { notBefore: new Date(now - 3 * DAY), notAfter: new Date(now - DAY) }),
      root,
    );
    const leaf = await make(tpl("leaf"), old);
    const res = verifyPath(leaf.info, [root.info], [old.info], { validity: "issuers" });
    assert.deepEqual(res, { ok: false, reason: '"old" has expired' });
  });
});
