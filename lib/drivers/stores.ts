/*
 * Backing stores for host block devices (tools/lkl/lib's disk backends): what a
 * virtio-blk device reads and writes. A store does positional I/O on whole buffers; the
 * buffers are usually views into the kernel's physical memory, so I/O lands in page
 * frames without a copy. Host side: may use node:*.
 */
import { open as fsOpen, type FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import type { BlockStore } from './block-store.js';

export type { BlockStore } from './block-store.js';

/** An Error carrying errno and code the way Node's own fs errors do. */
export function storeError(code: string, errno: number, message: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: ${message}`);
  e.code = code;
  e.errno = -errno;
  return e;
}
const EIO = 5, EROFS = 30, EBADF = 9;

/** The positional primitives FileStore needs; a FileHandle or a raw fd provides them. */
interface FileIo {
  read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number>;
  write(buf: Uint8Array, off: number, len: number, pos: number): Promise<number>;
  readv(bufs: Uint8Array[], pos: number): Promise<number>;
  writev(bufs: Uint8Array[], pos: number): Promise<number>;
  datasync(): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

function handleIo(fh: FileHandle): FileIo {
  return {
    read: async (buf, off, len, pos) => (await fh.read(buf, off, len, pos)).bytesRead,
    write: async (buf, off, len, pos) => (await fh.write(buf, off, len, pos)).bytesWritten,
    readv: async (bufs, pos) => (await fh.readv(bufs, pos)).bytesRead,
    writev: async (bufs, pos) => (await fh.writev(bufs, pos)).bytesWritten,
    datasync: () => fh.datasync(),
    size: async () => (await fh.stat()).size,
    close: () => fh.close(),
  };
}

const readP = promisify(fs.read), writeP = promisify(fs.write);
const readvP = promisify(fs.readv), writevP = promisify(fs.writev);
const fdatasyncP = promisify(fs.fdatasync), fstatP = promisify(fs.fstat);

/* fs/promises cannot wrap a descriptor it did not open, so a raw fd goes through fs.* */
function fdIo(fd: number): FileIo {
  return {
    read: async (buf, off, len, pos) => (await readP(fd, buf, off, len, pos)).bytesRead,
    write: async (buf, off, len, pos) => (await writeP(fd, buf, off, len, pos)).bytesWritten,
    readv: async (bufs, pos) => (await readvP(fd, bufs, pos)).bytesRead,
    writev: async (bufs, pos) => (await writevP(fd, bufs, pos)).bytesWritten,
    datasync: () => fdatasyncP(fd),
    size: async () => (await fstatP(fd)).size,
    close: async () => { /* the caller's descriptor: theirs to close */ },
  };
}

export interface FileStoreOptions {
  readOnly?: boolean;
  /** Overrides the size fstat reports (block devices report 0). */
  size?: number;
}

/* Linux's IOV_MAX: more buffers than this go in several calls. */
const IOV_MAX = 1024;

/**
 * Drive preadv/pwritev until every buffer is done: calls may transfer less than asked
 * (then the rest goes again, from where it stopped). A call that transfers nothing hands
 * the untouched buffers to `onStall` (EOF for reads: zero them; for writes: an error).
 */
async function vectored(bufs: Uint8Array[], pos: number, io: (b: Uint8Array[], p: number) => Promise<number>,
  onStall: (rest: Uint8Array[], at: number) => void): Promise<void> {
  let rest = bufs.filter((b) => b.length > 0);
  while (rest.length) {
    const batch = rest.slice(0, IOV_MAX);
    let n = await io(batch, pos);
    if (n <= 0) { onStall(rest, pos); return; }
    pos += n;
    let i = 0;
    while (i < rest.length && n >= rest[i]!.length) { n -= rest[i]!.length; i++; }
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}

/**
 * A raw image file. Opened by path (O_RDWR, or O_RDONLY when readOnly) or adopted as an
 * fd, which close() leaves open. Discard is not offered: Node has no fallocate.
 */
export class FileStore implements BlockStore {
  private closed = false;

  private constructor(private readonly io: FileIo, readonly size: number,
    readonly readOnly: boolean, readonly path: string | null) {}

  static async open(file: string | number, opts: FileStoreOptions = {}): Promise<FileStore> {
    const readOnly = !!opts.readOnly;
    let io: FileIo;
    if (typeof file === 'number') io = fdIo(file);
    else io = handleIo(await fsOpen(file, readOnly ? 'r' : 'r+'));
    let size: number;
    try {
      size = opts.size ?? await io.size();
    } catch (e) {
      await io.close();
      throw e;
    }
    return new FileStore(io, size, readOnly, typeof file === 'string' ? file : null);
  }

  async read(buf: Uint8Array, pos: number): Promise<void> {
    this.checkOpen();
    let done = 0;
    while (done < buf.length) {
      const n = await this.io.read(buf, done, buf.length - done, pos + done);
      if (n === 0) {
        buf.fill(0, done);   /* short file: the rest reads as a hole */
        return;
      }
      done += n;
    }
  }

  async write(buf: Uint8Array, pos: number): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw storeError('EROFS', EROFS, `write to read-only store ${this.path ?? ''}`);
    let done = 0;
    while (done < buf.length) {
      const n = await this.io.write(buf, done, buf.length - done, pos + done);
      if (n <= 0) throw storeError('EIO', EIO, `write made no progress at ${pos + done}`);
      done += n;
    }
  }

  async readv(bufs: Uint8Array[], pos: number): Promise<void> {
    this.checkOpen();
    await vectored(bufs, pos, (b, p) => this.io.readv(b, p), (rest) => { for (const b of rest) b.fill(0); });
  }

  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw storeError('EROFS', EROFS, `write to read-only store ${this.path ?? ''}`);
    await vectored(bufs, pos, (b, p) => this.io.writev(b, p), (rest, at) => {
      if (rest.length) throw storeError('EIO', EIO, `write made no progress at ${at}`);
    });
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.readOnly) await this.io.datasync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.io.close();
  }

  private checkOpen(): void {
    if (this.closed) throw storeError('EBADF', EBADF, 'store is closed');
  }
}

/** An in-memory disk, for tests and scratch devices. */
export class MemoryStore implements BlockStore {
  readonly data: Uint8Array;
  readonly readOnly: boolean;

  constructor(sizeOrData: number | Uint8Array, opts: { readOnly?: boolean } = {}) {
    this.data = typeof sizeOrData === 'number' ? new Uint8Array(sizeOrData) : sizeOrData;
    this.readOnly = !!opts.readOnly;
  }

  get size(): number { return this.data.length; }

  async read(buf: Uint8Array, pos: number): Promise<void> {
    const end = Math.min(pos + buf.length, this.data.length);
    const n = Math.max(0, end - pos);
    if (n > 0) buf.set(this.data.subarray(pos, end));
    buf.fill(0, n);
  }

  async write(buf: Uint8Array, pos: number): Promise<void> {
    if (this.readOnly) throw storeError('EROFS', EROFS, 'write to read-only memory store');
    if (pos + buf.length > this.data.length) throw storeError('EIO', EIO, 'write past the end of a memory store');
    this.data.set(buf, pos);
  }

  async flush(): Promise<void> {}

  async discard(pos: number, len: number): Promise<void> {
    return this.writeZeroes(pos, len);
  }

  async writeZeroes(pos: number, len: number): Promise<void> {
    if (this.readOnly) throw storeError('EROFS', EROFS, 'write to read-only memory store');
    if (pos + len > this.data.length) throw storeError('EIO', EIO, 'zeroing past the end of a memory store');
    this.data.fill(0, pos, pos + len);
  }

  async close(): Promise<void> {}
}

export type StoreOp = 'read' | 'write' | 'flush' | 'discard' | 'writeZeroes';

export interface StoreFault {
  op: StoreOp;
  /** Byte range [pos, pos+len) an operation must overlap to fail; absent = any. */
  pos?: number;
  len?: number;
  /** Fail only this many times (default: always). */
  times?: number;
  /** Only the nth operation of this kind (1 = the first) counted from when the fault was added. */
  nth?: number;
  /** Fail a matching operation with this probability (0..1), drawn from `seed`. */
  probability?: number;
  seed?: number;
  /** Only operations whose data this accepts (writes: what would be written). */
  match?: (buf: Uint8Array, pos: number) => boolean;
  /**
   * A short transfer: only the first `short` bytes are read or written, then the operation
   * fails (a torn write / partial read), instead of failing with nothing transferred.
   */
  short?: number;
  /** What to reject with (default: an EIO error). */
  error?: Error;
  /** How many operations this fault failed (filled in by the store). */
  hits?: number;
}

export interface FaultyStoreOptions {
  faults?: StoreFault[];
  /** Milliseconds to hold an operation before passing it on (0 = none); for reordering. */
  delay?: (op: StoreOp, pos: number, len: number) => number;
}

/**
 * Wraps a store for tests: injects errors on chosen operations and ranges, delays chosen
 * operations so they complete out of order, and counts what reached it.
 */
export class FaultyStore implements BlockStore {
  readonly faults: StoreFault[];
  readonly counts: Record<StoreOp, number> = { read: 0, write: 0, flush: 0, discard: 0, writeZeroes: 0 };
  readonly discard?: (pos: number, len: number) => Promise<void>;
  readonly writeZeroes?: (pos: number, len: number) => Promise<void>;
  private readonly delay?: FaultyStoreOptions['delay'];
  /** Per fault: matching operations seen (for nth) and the state of its random draws. */
  private readonly seen = new Map<StoreFault, number>();
  private readonly draws = new Map<StoreFault, number>();

  constructor(readonly inner: BlockStore, opts: FaultyStoreOptions = {}) {
    this.faults = opts.faults ?? [];
    for (const f of this.faults) this.seen.set(f, 0);
    this.delay = opts.delay;
    const { discard, writeZeroes } = inner;
    if (discard) this.discard = (pos, len) => this.pass('discard', pos, len, () => discard.call(inner, pos, len));
    if (writeZeroes) this.writeZeroes = (pos, len) => this.pass('writeZeroes', pos, len, () => writeZeroes.call(inner, pos, len));
  }

  get size(): number { return this.inner.size; }
  get readOnly(): boolean { return this.inner.readOnly; }
  get flushes(): number { return this.counts.flush; }

  addFault(f: StoreFault): void { this.faults.push(f); this.seen.set(f, 0); }
  clearFaults(): void { this.faults.length = 0; }

  read(buf: Uint8Array, pos: number): Promise<void> {
    return this.pass('read', pos, buf.length, () => this.inner.read(buf, pos), buf,
      (n) => this.inner.read(buf.subarray(0, n), pos));
  }
  write(buf: Uint8Array, pos: number): Promise<void> {
    return this.pass('write', pos, buf.length, () => this.inner.write(buf, pos), buf,
      (n) => this.inner.write(buf.subarray(0, n), pos));
  }
  flush(): Promise<void> {
    return this.pass('flush', 0, 0, () => this.inner.flush());
  }
  close(): Promise<void> { return this.inner.close(); }

  /** Does fault f fail this operation? Counts it for nth and draws for probability. */
  private hits(f: StoreFault, op: StoreOp, pos: number, len: number, buf?: Uint8Array): boolean {
    if (f.op !== op || (f.times !== undefined && f.times <= 0)) return false;
    if (f.pos !== undefined && !(pos < f.pos + (f.len ?? 1) && f.pos < pos + Math.max(len, 1))) return false;
    if (f.match && !(buf && f.match(buf, pos))) return false;
    const n = (this.seen.get(f) ?? 0) + 1;
    this.seen.set(f, n);
    if (f.nth !== undefined && n !== f.nth) return false;
    if (f.probability !== undefined) {
      // xorshift32 per fault, so a seed replays the same failures.
      let x = this.draws.get(f) ?? ((Math.imul((f.seed ?? 1) + 1, 2654435761) >>> 0) || 1);
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      this.draws.set(f, x);
      if (x / 4294967296 >= f.probability) return false;
    }
    return true;
  }

  private async pass(op: StoreOp, pos: number, len: number, run: () => Promise<void>, buf?: Uint8Array,
    partial?: (n: number) => Promise<void>): Promise<void> {
    this.counts[op]++;
    const ms = this.delay?.(op, pos, len) ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    const f = this.faults.find((f) => this.hits(f, op, pos, len, buf));
    if (f) {
      if (f.times !== undefined) f.times--;
      f.hits = (f.hits ?? 0) + 1;
      if (f.short !== undefined && partial && f.short > 0) await partial(Math.min(f.short, len));
      throw f.error ?? storeError('EIO', EIO, `injected ${op} fault at ${pos}+${len}${f.short ? ` after ${Math.min(f.short, len)} bytes` : ''}`);
    }
    return run();
  }
}
