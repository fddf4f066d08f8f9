import { generateKeyPairSync } from "node:crypto";
import { chmodSync, chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { SqliteLedger } from "../src/ledger/sqlite.js";
import { snapshotStates, toRecord } from "../src/node/integrity.js";
import { takeSnapshot } from "../src/node/snapshot.js";
import { put, signWith } from "./fixtures.js";
import { openssl, PKI } from "./helpers.js";

/** Records the integrity baseline of a tree as it is now (creating a ledger when it has none). */
export async function recordBaseline(root: string): Promise<void> {
  const store = new SqliteLedger(join(root, "var/lib/kubepki/ledger.db"), "create");
  try {
    const snap = takeSnapshot({ root });
    const now = new Date();
    await store.putBaseline(snapshotStates(snap).map((s) => toRecord(s, "baseline", now)));
  } finally {
    store.closeSync();
  }
}

const newKeyPem = () =>
  generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    type: "sec1",
    format: "pem",
  }) as string;

/** A self-signed CA certificate made with openssl, as someone replacing a CA would. */
function foreignCa(dir: string): string {
  const r = openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "foreign-ca.key"),
    "-subj",
    "/CN=etcd-ca",
    "-days",
    "30",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

/** One change of each kind, made as an intruder would (not through kubepki); path is the node's. */
export const INTEGRITY_CHANGES: {
  change: string;
  path: string;
  make: (root: string, scratch: string) => Promise<void> | void;
}[] = [
  {
    change: "key-replaced",
    path: `/${PKI}/front-proxy-client.key`,
    make: (r) => writeFileSync(join(r, PKI, "front-proxy-client.key"), newKeyPem()),
  },
  {
    change: "key-added",
    path: `/${PKI}/stash.key`,
    make: (r) => put(r, `/${PKI}/stash.key`, newKeyPem(), 0o600),
  },
  {
    change: "mode-widened",
    path: `/${PKI}/apiserver-etcd-client.key`,
    make: (r) => chmodSync(join(r, PKI, "apiserver-etcd-client.key"), 0o644),
  },
  {
    change: "owner-changed",
    path: `/${PKI}/front-proxy-ca.crt`,
    make: (r) => chownSync(join(r, PKI, "front-proxy-ca.crt"), 1000, 1000),
  },
  {
    change: "certificate-unknown",
    path: `/${PKI}/rogue-admin.crt`,
    make: async (r) => {
      const c = await signWith(r, `/${PKI}/ca`, { commonName: "rogue", organizations: ["system:masters"] });
      put(r, `/${PKI}/rogue-admin.crt`, c.crt, 0o644);
    },
  },
  {
    // admin.conf with a client certificate minted outside kubepki (a stolen CA key at work)
    change: "certificate-unknown",
    path: "/etc/kubernetes/admin.conf",
    make: async (r) => {
      const file = join(r, "etc/kubernetes/admin.conf");
      const doc = parse(readFileSync(file, "utf8")) as { users: { user: Record<string, string> }[] };
      const c = await signWith(r, `/${PKI}/ca`, {
        commonName: "kubernetes-admin",
        organizations: ["kubeadm:cluster-admins"],
      });
      const user = doc.users[0]?.user ?? {};
      user["client-certificate-data"] = Buffer.from(c.crt).toString("base64");
      user["client-key-data"] = Buffer.from(c.key).toString("base64");
      writeFileSync(file, stringify(doc));
    },
  },
  {
    change: "ca-certificate-changed",
    path: `/${PKI}/etcd/ca.crt`,
    make: (r, scratch) => writeFileSync(join(r, PKI, "etcd/ca.crt"), foreignCa(scratch)),
  },
];
