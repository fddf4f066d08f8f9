import type { Command } from "commander";
import type { CrlRequest } from "../app/crl.js";
import { CAS, type CaId } from "../pki/catalog.js";
import { act, duration, oneOf, printData, withFlags, withOutput } from "./common.js";
import { out, warn } from "./output.js";

export function registerCrl(program: Command): void {
  const cmd = program
    .command("crl")
    .description(
      "Write an X.509 v2 CRL signed by a CA, listing every certificate of that CA revoked in the ledger",
    );
  withOutput(withFlags(cmd, { root: true, ledger: true, offlineDir: true }))
    .option("--ca <ca>", "ca | etcd-ca | front-proxy-ca", oneOf(CAS.map((c) => c.id) as CaId[]), "ca")
    .option("--out <file>", "where to write it (default: the CA's published CRL, DER, next to the CA)")
    .option("--der", "write DER instead of PEM (with --out)")
    .option("--validity <duration>", "nextUpdate - thisUpdate (default: 30d)", duration("--validity"))
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki crl --root / --ca etcd-ca\n  kubepki crl --root / --ca ca --out ca.crl.pem -o json",
    );
  act(cmd, async ({ output, ...req }: CrlRequest & { output: string }) => {
    const { writeCrl } = await import("../app/crl.js");
    const c = await writeCrl(req);
    if (c.warning) warn(c.warning);
    const { der: _der, pem: _pem, ...printable } = c;
    if (!(await printData(output, printable)))
      out(`wrote ${c.path}: CRL number ${c.number}, ${c.revoked} revoked, next update ${c.nextUpdate}`);
    return undefined;
  });
}
