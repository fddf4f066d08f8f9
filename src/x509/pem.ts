import { InputError } from "../errors.js";

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g;

/**
 * Decodes every PEM block in `text`. A block without its END line, or with characters that are not
 * base64, is an error that names `source`, so a truncated file never passes as an empty one.
 */
export function decodePem(text: string, source: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  BEGIN.lastIndex = 0;
  for (let m = BEGIN.exec(text); m; m = BEGIN.exec(text)) {
    const label = m[1] ?? "";
    const endMarker = `-----END ${label}-----`;
    const start = m.index + m[0].length;
    const end = text.indexOf(endMarker, start);
    if (end < 0) throw new InputError(`${source}: PEM block "${label}" has no END line (truncated file?)`);
    const body = text.slice(start, end).replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0)
      throw new InputError(`${source}: PEM block "${label}" is not valid base64`);
    const der = Buffer.from(body, "base64");
    if (der.length === 0) throw new InputError(`${source}: PEM block "${label}" is empty`);
    blocks.push({ label, der });
    BEGIN.lastIndex = end + endMarker.length;
  }
  return blocks;
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
