/* Shared helpers of the block-layer tests. */
/** A small deterministic PRNG (xorshift32), so that failures can be replayed by seed. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

export function fillRandom(buf: Uint8Array, rand: () => number): Uint8Array {
  for (let i = 0; i < buf.length; i += 4) {
    const v = (rand() * 0x100000000) >>> 0;
    buf[i] = v; buf[i + 1] = v >>> 8; buf[i + 2] = v >>> 16; buf[i + 3] = v >>> 24;
  }
  return buf;
}

/** First differing offset of two byte arrays, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/**
 * Host-side range locks for a model-checked workload: an operation waits until no
 * conflicting operation (any overlapping write, or for a write any overlapping op) is in
 * flight, so the model's contents are exact at every completion.
 */
export class RangeLocks {
  private active: { start: number; end: number; write: boolean }[] = [];
  private waiters: (() => void)[] = [];
  async acquire(start: number, len: number, write: boolean): Promise<() => void> {
    const me = { start, end: start + len, write };
    while (this.active.some((a) => a.start < me.end && me.start < a.end && (a.write || write))) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.active.push(me);
    return () => {
      this.active.splice(this.active.indexOf(me), 1);
      for (const w of this.waiters.splice(0)) w();
    };
  }
}
