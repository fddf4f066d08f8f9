import { generateKeyPair as genKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import type { KeyAlgorithm } from "./algorithms.js";

const generate = promisify(genKeyPair);

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/**
 * Async key generation runs on libuv's thread pool, so several keys at once use every core
 * (RSA-2048 takes ~200 ms of one core; a sync call would block the event loop for it).
 * This module loads nothing but node:crypto, so the CLI can start keys before the heavier
 * certificate code has loaded.
 */
export async function generateKeyPair(alg: KeyAlgorithm): Promise<KeyPair> {
  switch (alg) {
    case "RSA-2048":
    case "RSA-3072":
    case "RSA-4096":
      return generate("rsa", { modulusLength: Number(alg.slice(4)), publicExponent: 0x10001 });
    case "ECDSA-P256":
      return generate("ec", { namedCurve: "prime256v1" });
    case "ECDSA-P384":
      return generate("ec", { namedCurve: "secp384r1" });
  }
}

/**
 * Keys handed out in order: `prefetch` of them start generating at once (while the caller still
 * loads code and reads the tree); any further `take()` starts a new one. Keys are only prefetched
 * for a tree known to need them, so none is wasted.
 */
export class KeyPool {
  private readonly ready: Promise<KeyPair>[] = [];
  private done = 0;
  private started = 0;
  onKey?: (done: number, total: number) => void;

  constructor(
    readonly algorithm: KeyAlgorithm,
    prefetch = 0,
    private expected = prefetch,
  ) {
    for (let i = 0; i < prefetch; i++) this.ready.push(this.start());
  }

  private start(): Promise<KeyPair> {
    this.started++;
    return generateKeyPair(this.algorithm).then((kp) => {
      this.onKey?.(++this.done, Math.max(this.expected, this.started));
      return kp;
    });
  }

  /** Tells the pool how many keys the run needs in all (for progress). */
  expect(total: number): void {
    this.expected = total;
  }

  take(): Promise<KeyPair> {
    return this.ready.shift() ?? this.start();
  }
}
