import { isIP } from "node:net";
import { InputError } from "../errors.js";

/** RFC 1123 subdomain, as Kubernetes validates node names and DNS SANs (k8s.io/apimachinery validation). */
const DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);

export function isDns1123Subdomain(value: string): boolean {
  return value.length > 0 && value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

/** DNS SANs may also be wildcards ("*.example.com"), as kubeadm's appendSANsToAltNames allows. */
export function isDnsSan(value: string): boolean {
  return isDns1123Subdomain(value.startsWith("*.") ? value.slice(2) : value);
}

export function requireIp(value: string, field: string): string {
  if (isIP(value) === 0) throw new InputError(`${field}: "${value}" is not a valid IP address`);
  return value;
}

export function requireDnsName(value: string, field: string): string {
  if (!isDns1123Subdomain(value))
    throw new InputError(
      `${field}: "${value}" is not a valid DNS name (RFC 1123: lowercase letters, digits, "-", ".")`,
    );
  return value;
}

/**
 * A SAN is an IP if it parses as one, else a DNS name; anything else is refused (kubeadm only warns).
 * A dotted name whose last label is all digits ("10.0.0.300") is a mistyped IP, not a host name
 * (RFC 1123 2.1, RFC 3696 2: a top-level label is never all-numeric).
 */
export function classifySan(value: string, field: string): { ip?: string; dns?: string } {
  if (isIP(value) !== 0) return { ip: value };
  if (/(^|\.)\d+$/.test(value))
    throw new InputError(
      `${field}: "${value}" is not a valid IP address (and not a DNS name: its last label is numeric)`,
    );
  if (isDnsSan(value)) return { dns: value };
  throw new InputError(`${field}: "${value}" is neither a valid IP address nor an RFC 1123 DNS name`);
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Go's time.Duration syntax ("8760h", "1h30m"), which kubeadm's validity fields use, plus "d" for
 * days as a convenience on the command line.
 */
export function parseDuration(value: string, field: string): number {
  const text = value.trim();
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? Number.NaN);
    consumed = re.lastIndex;
  }
  if (text.length === 0 || consumed !== text.length || !Number.isFinite(total) || total <= 0)
    throw new InputError(`${field}: "${value}" is not a positive duration (e.g. 8760h, 90d, 1h30m)`);
  return Math.round(total);
}

export function formatHours(ms: number): string {
  return `${Math.round(ms / 3_600_000)}h`;
}
