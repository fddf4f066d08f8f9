import { InputError } from "../errors.js";

/** Durations in one place: Go-style parse and format (kubeadm's fields), and kubeadm's human residual time. */

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

/**
 * kubeadm's RESIDUAL TIME column: apimachinery's duration.HumanDuration (kubeadm v1.31+),
 * e.g. "59s", "3m20s", "5h30m", "364d", "2y179d", "9y"; "<invalid>" once expired.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return withRest(minutes, "m", seconds % 60, "s");
  if (minutes < 180) return `${minutes}m`;
  return hoursOrMore(Math.trunc(minutes / 60), minutes % 60);
}

function hoursOrMore(hours: number, minutes: number): string {
  if (hours < 8) return withRest(hours, "h", minutes, "m");
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return withRest(days, "d", hours % 24, "h");
  if (hours < 24 * 365 * 2) return `${days}d`;
  if (hours < 24 * 365 * 8) return withRest(Math.trunc(days / 365), "y", days % 365, "d");
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** "5h" or "5h30m": the remainder only when there is one. */
function withRest(n: number, unit: string, rest: number, restUnit: string): string {
  return rest === 0 ? `${n}${unit}` : `${n}${unit}${rest}${restUnit}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Go layout "Jan 02, 2006 15:04 MST" in UTC, as kubeadm prints EXPIRES. */
export function kubeadmDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())}, ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`;
}
