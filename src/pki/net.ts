import { isIP } from "node:net";
import { InputError } from "../errors.js";
import { canonicalIp, ipv6Groups } from "../x509/ip.js";

/**
 * The first usable address (index 1) of the first CIDR in a comma-separated service subnet list:
 * kubeadm's API server service VIP, 10.96.0.1 for 10.96.0.0/12.
 */
export function firstServiceIp(serviceSubnet: string, field = "networking.serviceSubnet"): string {
  const first = serviceSubnet.split(",")[0]?.trim() ?? "";
  const [addr = "", bitsText] = first.split("/");
  const bits = Number(bitsText);
  const family = isIP(addr);
  const max = family === 4 ? 32 : 128;
  if (family === 0 || bitsText === undefined || !/^\d+$/.test(bitsText) || bits > max)
    throw new InputError(`${field}: "${serviceSubnet}" is not a valid CIDR (e.g. 10.96.0.0/12)`);
  if (bits >= max - 1) throw new InputError(`${field}: "${first}" is too small to hold a service IP`);
  if (family === 4) {
    const n = addr.split(".").reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
    const base = n & (((1n << 32n) - 1n) ^ ((1n << BigInt(32 - bits)) - 1n));
    const ip = base + 1n;
    return [24n, 16n, 8n, 0n].map((s) => String((ip >> s) & 255n)).join(".");
  }
  const n = ipv6Groups(addr).reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
  const mask = ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - bits)) - 1n);
  const ip = (n & mask) + 1n;
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((ip >> s) & 0xffffn).toString(16));
  return canonicalIp(groups.join(":"));
}

/** "host:port" or "host" or "[v6]:port" -> parts; the port is optional. */
export function splitHostPort(value: string, field: string): { host: string; port?: number } {
  const v6 = value.match(/^\[([^\]]+)\](?::(\d+))?$/);
  let host: string;
  let portText: string | undefined;
  if (v6) {
    host = v6[1] ?? "";
    portText = v6[2];
  } else if (isIP(value) === 6) {
    host = value;
  } else {
    const i = value.lastIndexOf(":");
    host = i >= 0 ? value.slice(0, i) : value;
    portText = i >= 0 ? value.slice(i + 1) : undefined;
  }
  if (portText !== undefined) {
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
      throw new InputError(`${field}: "${value}" has an invalid port`);
    return { host, port };
  }
  return { host };
}

export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
