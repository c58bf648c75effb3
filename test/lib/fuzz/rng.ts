// A small deterministic generator (xorshift32) for the fuzzer: one seed, one sequence.
export class Rng {
  private x: number;
  constructor(seed: number) { this.x = (Math.imul(seed + 1, 2654435761) >>> 0) || 1; }
  next(): number {
    let x = this.x;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }
  /** An integer in [0, n). */
  int(n: number): number { return n <= 0 ? 0 : this.next() % n; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  chance(p: number): boolean { return this.next() / 4294967296 < p; }
}
