import { isIP } from "node:net";

/** Canonical text of an IP address (IPv6 fully expanded, lowercase) for comparing SANs. */
export function canonicalIp(ip: string): string {
  const v = isIP(ip);
  if (v === 4)
    return ip
      .split(".")
      .map((p) => String(Number(p)))
      .join(".");
  if (v !== 6) return ip;
  return ipv6Groups(ip)
    .map((g) => g.toString(16))
    .join(":");
}

/** The eight 16-bit groups of an IPv6 address (accepts "::" and an embedded IPv4 tail). */
export function ipv6Groups(ip: string): number[] {
  let text = ip.toLowerCase();
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = v4[1].split(".").map(Number);
    text = `${text.slice(0, -v4[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const missing = tail === undefined ? 0 : 8 - h.length - t.length;
  return [...h, ...Array<string>(missing).fill("0"), ...t].map((g) => Number.parseInt(g, 16));
}

/** Go's RemoveDuplicateAltNames for IPs: first occurrence wins, order kept. */
export function dedupeIps(ips: string[]): string[] {
  const seen = new Set<string>();
  return ips.filter((ip) => {
    const c = canonicalIp(ip);
    if (seen.has(c)) return false;
    seen.add(c);
    return true;
  });
}

/** Go's RemoveDuplicateAltNames for DNS names: a sorted set. */
export function dedupeDnsNames(names: string[]): string[] {
  return [...new Set(names)].sort();
}
