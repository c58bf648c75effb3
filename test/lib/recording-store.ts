// A block store that records what reaches it (as dm-log-writes does for Linux): every
// completed write with its data, every flush, and marks the test adds, in order. From the
// log, the image a power cut at any point would leave can be rebuilt: everything written
// before the last flush that had begun, plus any subset of the writes completed since.
import type { BlockStore } from '../../lib/drivers/block-store.js';

export type LogEntry =
  | { kind: 'write'; pos: number; data: Uint8Array }
  | { kind: 'flush' }
  | { kind: 'mark'; label: string };

export class RecordingStore implements BlockStore {
  readonly log: LogEntry[] = [];
  readonly discard?: (pos: number, len: number) => Promise<void>;
  readonly writeZeroes?: (pos: number, len: number) => Promise<void>;

  constructor(readonly inner: BlockStore) {
    const zeros = (pos: number, len: number) => { this.log.push({ kind: 'write', pos, data: new Uint8Array(len) }); };
    const { discard, writeZeroes } = inner;
    if (discard) this.discard = async (pos, len) => { await discard.call(inner, pos, len); zeros(pos, len); };
    if (writeZeroes) this.writeZeroes = async (pos, len) => { await writeZeroes.call(inner, pos, len); zeros(pos, len); };
  }

  get size(): number { return this.inner.size; }
  get readOnly(): boolean { return this.inner.readOnly; }

  read(buf: Uint8Array, pos: number): Promise<void> { return this.inner.read(buf, pos); }

  async write(buf: Uint8Array, pos: number): Promise<void> {
    await this.inner.write(buf, pos);
    // Recorded on completion: the data as they reached the store (a copy: buf is a page frame).
    this.log.push({ kind: 'write', pos, data: buf.slice() });
  }

  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    let at = pos;
    for (const b of bufs) { await this.write(b, at); at += b.length; }
  }

  async flush(): Promise<void> {
    // Covers the writes completed before it began.
    this.log.push({ kind: 'flush' });
    await this.inner.flush();
  }

  mark(label: string): void { this.log.push({ kind: 'mark', label }); }

  close(): Promise<void> { return this.inner.close(); }
}

/**
 * The image after a power cut just before log entry `at`: `base` with every write before
 * the last flush that precedes `at`, then those of the later writes (completed, not yet
 * flushed) that `keep` chooses, in log order. Writes are applied whole (a request either
 * reached the medium or did not).
 */
export function crashImage(base: Uint8Array, log: readonly LogEntry[], at: number, keep: (index: number) => boolean): Uint8Array {
  const img = base.slice();
  let lastFlush = -1;
  for (let i = 0; i < at; i++) if (log[i]!.kind === 'flush') lastFlush = i;
  for (let i = 0; i < at; i++) {
    const e = log[i]!;
    if (e.kind !== 'write') continue;
    if (i < lastFlush || keep(i)) img.set(e.data, e.pos);
  }
  return img;
}
