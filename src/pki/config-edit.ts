import { type Document, isAlias, isCollection, isMap, isNode, isScalar, isSeq, type Node, visit } from "yaml";

/** One thing kubepki added to or changed in the operator's kubeadm configuration, and why. */
export interface ConfigChange {
  /** The document's kind (kubeadm refuses a kind given twice, so it names the document). */
  kind: string;
  /** Where in that document; [] when kubepki added the whole document. */
  path: (string | number)[];
  action: "added" | "changed";
  value: unknown;
  previous?: unknown;
  /** "ClusterConfiguration.apiServer.extraArgs kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt" */
  text: string;
  reason: string;
}

type Path = (string | number)[];

/** The node at a path, following aliases (`*x`) as a YAML reader does; doc.getIn stops at them. */
export function nodeAt(doc: Document, path: Path): unknown {
  let node: unknown = doc.contents;
  for (const key of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node) || (isSeq(node) && typeof key === "number")) node = node.get(key, true);
    else return undefined;
  }
  return isAlias(node) ? node.resolve(doc) : node;
}

/**
 * Replaces every alias with a copy of what it points at (and drops the anchors), so that an edit
 * under an anchored node changes that place only, not every place that refers to it.
 */
export function expandAliases(doc: Document): void {
  let aliased = false;
  visit(doc, {
    Alias() {
      aliased = true;
      return visit.BREAK;
    },
  });
  if (!aliased) return;
  // Two passes: an alias is resolved by its anchor's name, so the anchors go only after.
  visit(doc, { Alias: (_, alias) => (alias.resolve(doc)?.clone() as Node | undefined) ?? undefined });
  visit(doc, {
    Node(_, node) {
      if (!isAlias(node)) node.anchor = undefined;
    },
  });
}

/**
 * Edits one parsed document in place, so that its comments, order and style stay, and records each
 * edit. Only the fields kubepki needs are touched.
 */
export class DocEditor {
  constructor(
    readonly doc: Document,
    readonly kind: string,
    readonly changes: ConfigChange[],
  ) {
    expandAliases(doc);
  }

  /** The plain value at a path (undefined when absent or null). */
  value(path: Path): unknown {
    const node = this.doc.getIn(path, true);
    const v = isNode(node) ? node.toJSON() : node;
    return v === null ? undefined : v;
  }

  /**
   * Makes a single value equal `want`: kept when it already is (`same`), or when it is absent and
   * kubeadm's default (`implicit`) already is.
   */
  scalar(path: Path, want: string | number | boolean, reason: string, opts: Same = {}): void {
    const same = opts.same ?? ((v: unknown) => v === want);
    const current = this.value(path);
    if (current === undefined ? opts.implicit !== undefined && same(opts.implicit) : same(current)) return;
    this.set(path, want);
    this.record(path, want, current, `${this.name(path)}: ${String(want)}`, reason);
  }

  /** A flag in extraArgs: a flag -> value map (v1beta3) or a "- name/value" list (v1beta4). */
  arg(path: Path, style: "map" | "list", flag: string, want: string, reason: string): void {
    const text = `${this.name(path)} ${flag}=${want}`;
    if (style === "map") {
      const current = this.value([...path, flag]);
      if (current === want) return;
      this.set([...path, flag], want);
      this.record([...path, flag], want, current, text, reason);
      return;
    }
    const node = this.doc.getIn(path, true);
    const items = isSeq(node) ? node.items : [];
    const matches = items.flatMap((item, i) => (isMap(item) && item.get("name") === flag ? [i] : []));
    for (const i of matches) {
      const current = this.value([...path, i, "value"]);
      if (current === want) continue;
      this.set([...path, i, "value"], want);
      this.record([...path, i, "value"], want, current, text, reason);
    }
    if (matches.length === 0) this.append(path, { name: flag, value: want }, text, reason);
  }

  /** Adds the values a list lacks (compared by `key`), keeping the ones it has. */
  appendMissing(path: Path, wanted: string[], reason: string, key: (v: string) => string = (v) => v): void {
    const current = this.value(path);
    const have = new Set((Array.isArray(current) ? current : []).map((v) => key(String(v))));
    for (const v of wanted) {
      if (have.has(key(v))) continue;
      have.add(key(v));
      this.append(path, v, `${this.name(path)}: ${v}`, reason);
    }
  }

  private append(path: Path, value: unknown, text: string, reason: string): void {
    const node = this.doc.getIn(path, true);
    let index = 0;
    if (isSeq(node)) {
      index = node.items.length;
      node.add(this.doc.createNode(value));
    } else this.set(path, [value]);
    this.record([...path, index], value, undefined, text, reason);
  }

  /** setIn, also through a key that holds nothing ("apiServer:" with no value). */
  private set(path: Path, value: unknown): void {
    for (let i = 1; i < path.length; i++) {
      const parent = this.doc.getIn(path.slice(0, i), true);
      if (parent === undefined || (isScalar(parent) && parent.value === null))
        this.doc.setIn(path.slice(0, i), this.doc.createNode(typeof path[i] === "number" ? [] : {}));
      else if (!isCollection(parent))
        throw new Error(`internal: ${path.slice(0, i).join(".")} is not a collection`);
    }
    this.doc.setIn(path, this.doc.createNode(value));
  }

  private name(path: Path): string {
    return [this.kind, ...path.filter((p) => typeof p === "string")].join(".");
  }

  private record(path: Path, value: unknown, previous: unknown, text: string, reason: string): void {
    this.changes.push({
      kind: this.kind,
      path,
      action: previous === undefined ? "added" : "changed",
      value,
      ...(previous === undefined ? {} : { previous }),
      text: previous === undefined ? text : `${text} (was ${JSON.stringify(previous)})`,
      reason,
    });
  }
}

interface Same {
  /** Whether a present value already means `want` (e.g. "8760h0m0s" for 8760h). */
  same?: (current: unknown) => boolean;
  /** kubeadm's default when the field is absent. */
  implicit?: unknown;
}

/** "added ClusterConfiguration.apiServer.certSANs: 10.0.0.5 — reason" */
export function formatChange(c: ConfigChange): string {
  return `${c.action} ${c.text} — ${c.reason}`;
}
