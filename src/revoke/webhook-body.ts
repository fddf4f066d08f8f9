import type { IncomingMessage } from "node:http";

/** Collects the body up to `limit` bytes; `undefined` when it is larger (reading stops there). */
export function readBody(
  req: IncomingMessage,
  limit: number,
  done: (body: Buffer | undefined) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on("data", (c: Buffer) => {
    if (over) return;
    size += c.length;
    if (size > limit) {
      over = true;
      req.pause();
      return done(undefined);
    }
    chunks.push(c);
  });
  req.on("end", () => {
    if (!over) done(Buffer.concat(chunks));
  });
  req.on("error", () => {
    over = true;
  });
}
