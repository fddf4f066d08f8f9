/**
 * A strict reader of Prometheus' text exposition format 0.0.4 (what Prometheus scrapes): every
 * line is a comment, HELP, TYPE or sample; names and label names follow the data model's rules;
 * label values use its three escapes; a family is declared once, before its samples, and a series
 * appears once. Anything else throws with the line number.
 */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type?: string;
  help?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${text}`);
  return Number(text);
}

/** Reads `{a="x",b="y"}` from position i; returns the labels and the position after the brace. */
function parseLabels(line: string, start: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (line[i] !== "}") {
    const eq = line.indexOf("=", i);
    if (eq < 0) throw new Error(`${where}: label without =`);
    const name = line.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name ${name}`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    if (line[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let value = "";
    i = eq + 2;
    for (; i < line.length && line[i] !== '"'; i++) {
      if (line[i] !== "\\") {
        value += line[i];
        continue;
      }
      const next = line[++i];
      if (next === "n") value += "\n";
      else if (next === "\\" || next === '"') value += next;
      else throw new Error(`${where}: bad escape \\${next}`);
    }
    if (line[i] !== '"') throw new Error(`${where}: unterminated label value`);
    labels[name] = value;
    i++;
    if (line[i] === ",") i++;
    else if (line[i] !== "}") throw new Error(`${where}: expected , or }`);
  }
  return [labels, i + 1];
}

function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(name);
  if (direct) return direct;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  const f = families.get(base);
  return f && (f.type === "histogram" || f.type === "summary") ? f : undefined;
}

function comment(line: string, where: string, families: Map<string, Family>): void {
  const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
  if (!m) return;
  const [, kind, name = "", rest = ""] = m;
  if (!NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
  const f = families.get(name) ?? { name, samples: [] };
  if (kind === "TYPE") {
    if (f.type) throw new Error(`${where}: TYPE of ${name} twice`);
    if (f.samples.length) throw new Error(`${where}: TYPE of ${name} after its samples`);
    if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
    f.type = rest;
  } else {
    if (f.help !== undefined) throw new Error(`${where}: HELP of ${name} twice`);
    f.help = rest;
  }
  families.set(name, f);
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const series = new Set<string>();
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  text.split("\n").forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line === "") return;
    if (line.startsWith("#")) {
      comment(line, where, families);
      return;
    }
    const nameEnd = line.search(/[{ ]/);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === "{") [labels, i] = parseLabels(line, i, where);
    if (line[i] !== " ") throw new Error(`${where}: expected a space before the value`);
    const [valueText = "", ts, extra] = line.slice(i + 1).split(" ");
    if (extra !== undefined || (ts !== undefined && !/^-?\d+$/.test(ts)))
      throw new Error(`${where}: trailing text`);
    const family = familyOf(name, families) ?? { name, samples: [] };
    families.set(family.name, family);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(key)) throw new Error(`${where}: series ${key} twice`);
    series.add(key);
    family.samples.push({ labels, value: parseValue(valueText, where) });
  });
  return families;
}
