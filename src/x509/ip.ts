import { isIP } from "node:net";

/** Canonical text of an IP address for comparing SANs: IPv6 in RFC 5952 form ("::1"), as Go prints it. */
export function canonicalIp(ip: string): string {
  const v = isIP(ip);
  if (v === 4)
    return ip
      .split(".")
      .map((p) => String(Number(p)))
      .join(".");
  if (v !== 6) return ip;
  const groups = ipv6Groups(ip);
  // The longest run of two or more zero groups becomes "::" (the first one on a tie).
  let best = { start: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.len).join(":")}`;
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

/** A SAN iPAddress's octets as canonical text; anything but 4 or 16 bytes is shown as hex. */
export function ipFromBytes(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join(".");
  if (b.length !== 16) return Buffer.from(b).toString("hex");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  return canonicalIp(groups.join(":"));
}
