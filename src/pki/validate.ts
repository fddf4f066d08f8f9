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
