import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { CAS, type CaId } from "../pki/catalog.js";
import { type Common, duration, outputOpt, pathsOf, printData, rootOpt } from "./common.js";
import { out, warn } from "./output.js";

export function registerCrl(program: Command): void {
  outputOpt(rootOpt(program.command("crl")))
    .description(
      "Write an X.509 v2 CRL signed by a CA, listing every certificate of that CA revoked in the ledger",
    )
    .option(
      "--ca <ca>",
      "ca | etcd-ca | front-proxy-ca",
      (v: string) => {
        if (!CAS.some((c) => c.id === v))
          throw new InvalidArgumentError(`must be one of ${CAS.map((c) => c.id).join(", ")}`);
        return v as CaId;
      },
      "ca",
    )
    .option("--out <file>", "where to write it (default: the CA's published CRL, DER, next to the CA)")
    .option("--der", "write DER instead of PEM (with --out)")
    .option("--validity <duration>", "nextUpdate - thisUpdate (default: 30d)", duration("--validity"))
    .addHelpText(
      "after",
      "\nExamples:\n  kubepki crl --root / --ca etcd-ca\n  kubepki crl --root / --ca ca --out ca.crl.pem -o json",
    )
    .action(
      async (f: Common & { ca: CaId; out?: string; der?: boolean; validity?: number; output: string }) => {
        const [{ withLedger }, { publishCrl }] = await Promise.all([
          import("../ledger/record.js"),
          import("../revoke/crl.js"),
        ]);
        const paths = pathsOf(f);
        const c = await withLedger(paths.ledgerFile, (store) =>
          publishCrl(paths, store, f.ca, {
            out: f.out ? resolve(f.out) : undefined,
            der: f.der,
            validityMs: f.validity,
          }),
        );
        if (c.warning) warn(c.warning);
        const { der: _der, pem: _pem, ...printable } = c;
        if (await printData(f.output, printable)) return;
        out(`wrote ${c.path}: CRL number ${c.number}, ${c.revoked} revoked, next update ${c.nextUpdate}`);
      },
    );
}
