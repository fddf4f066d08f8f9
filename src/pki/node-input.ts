import { isIP } from "node:net";
import { InputError } from "../errors.js";
import { type NodeInput, type NodeSpec, parseNodeFlag } from "./spec.js";
import { classifySan, requireDnsName } from "./validate.js";

/**
 * "NAME=IP[,IP|DNS...]" as one node: the name is also a DNS SAN, and at least one IP is required
 * (the API server reaches kubelets by address). The rules of init's --node (spec.ts resolveNodes).
 */
export function nodeFromFlag(value: string, where: string): NodeSpec {
  return nodeFromInput(parseNodeFlag(value, where), where);
}

/** One node from its name and addresses (spec.ts resolveNodes could share this). */
export function nodeFromInput(input: NodeInput, where: string): NodeSpec {
  requireDnsName(input.name, where);
  const node: NodeSpec = { name: input.name, ips: [], dnsNames: [input.name] };
  for (const a of input.addresses) {
    // "10.0.0.300" is a valid RFC 1123 name, but meant as an address: refuse it.
    if (/^[\d.]+$/.test(a) && isIP(a) === 0)
      throw new InputError(`${where}: "${a}" is not a valid IP address`);
    const c = classifySan(a, where);
    if (c.ip && !node.ips.includes(c.ip)) node.ips.push(c.ip);
    if (c.dns && !node.dnsNames.includes(c.dns)) node.dnsNames.push(c.dns);
  }
  if (node.ips.length === 0)
    throw new InputError(`${where}: node "${input.name}" needs at least one IP address (NAME=IP[,DNS...])`);
  return node;
}
