/*
 * A block store over a File or Blob, for the browser's virtio-blk device half: reads are
 * slices of the Blob; writes go to an in-memory overlay of 512-byte sectors, so the file
 * the user chose is never changed. snapshot() is the image as modified, a new Blob made of
 * slices of the original and the overlay's sectors (nothing is copied that was not written).
 */
import type { BlockStore } from '../drivers/block-store.js';

const SECTOR = 512;
/** Overlay chunk: 128 sectors, each with its own valid flag. */
const CHUNK = 64 * 1024;
const CHUNK_SECTORS = CHUNK / SECTOR;

interface Chunk { data: Uint8Array; valid: Uint8Array; count: number }

/** An Error with the errno a Node store would carry (the device only logs it). */
function storeError(code: string, message: string): Error {
  return new Error(`${code}: ${message}`);
}

export interface BlobStoreOptions {
  readOnly?: boolean;
  /** Told how many bytes each read fetched from the Blob (progress of long reads). */
  onRead?: (bytes: number) => void;
}

export class BlobStore implements BlockStore {
  readonly size: number;
  readonly readOnly: boolean;
  private readonly chunks = new Map<number, Chunk>();
  private readonly onRead?: (bytes: number) => void;
  private closed = false;
  /** Bytes written since the store was made (whether or not they changed anything). */
  bytesWritten = 0;

  constructor(readonly blob: Blob, opts: BlobStoreOptions = {}) {
    this.size = blob.size;
    this.readOnly = !!opts.readOnly;
    this.onRead = opts.onRead;
  }

  /** Whether anything was written. */
  get modified(): boolean { return this.chunks.size > 0; }

  async read(buf: Uint8Array, pos: number): Promise<void> {
    this.checkOpen();
    const end = Math.min(pos + buf.length, this.size);
    const n = Math.max(0, end - pos);
    if (n > 0 && !this.covered(pos, n)) {
      const bytes = new Uint8Array(await this.blob.slice(pos, end).arrayBuffer());
      this.onRead?.(bytes.length);
      buf.set(bytes.subarray(0, n));
    }
    buf.fill(0, n);   /* past the end reads as a hole */
    /* after the await: writes that completed meanwhile are seen */
    this.applyOverlay(buf, pos);
  }

  async readv(bufs: Uint8Array[], pos: number): Promise<void> {
    let total = 0;
    for (const b of bufs) total += b.length;
    const all = new Uint8Array(total);
    await this.read(all, pos);
    let at = 0;
    for (const b of bufs) { b.set(all.subarray(at, at + b.length)); at += b.length; }
  }

  async write(buf: Uint8Array, pos: number): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw storeError('EROFS', 'write to a read-only image');
    if (pos % SECTOR || buf.length % SECTOR) throw storeError('EINVAL', `write of ${buf.length} bytes at ${pos}: not whole sectors`);
    if (pos + buf.length > this.size) throw storeError('EIO', `write past the end of the image (${pos}+${buf.length})`);
    /* synchronous from here: no other request sees half of it */
    for (let off = 0; off < buf.length; off += SECTOR) this.putSector((pos + off) / SECTOR, buf.subarray(off, off + SECTOR));
    this.bytesWritten += buf.length;
  }

  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    for (const b of bufs) { await this.write(b, pos); pos += b.length; }
  }

  async flush(): Promise<void> { this.checkOpen(); }

  async close(): Promise<void> { this.closed = true; }

  /** The image as it is now: the original with every written sector replaced. */
  snapshot(type = 'application/octet-stream'): Blob {
    const parts: Array<Blob | Uint8Array<ArrayBuffer>> = [];
    let from = 0;   /* start of the run of original bytes not yet emitted */
    for (const ci of [...this.chunks.keys()].sort((a, b) => a - b)) {
      const c = this.chunks.get(ci)!;
      for (let s = 0; s < CHUNK_SECTORS; s++) {
        if (!c.valid[s]) continue;
        const at = ci * CHUNK + s * SECTOR;
        if (at > from) parts.push(this.blob.slice(from, at));
        const len = Math.min(SECTOR, this.size - at);
        parts.push(c.data.slice(s * SECTOR, s * SECTOR + len));
        from = at + len;
      }
    }
    if (from < this.size) parts.push(this.blob.slice(from, this.size));
    return new Blob(parts, { type });
  }

  private putSector(sector: number, data: Uint8Array): void {
    const ci = Math.floor(sector / CHUNK_SECTORS);
    let c = this.chunks.get(ci);
    if (!c) {
      c = { data: new Uint8Array(CHUNK), valid: new Uint8Array(CHUNK_SECTORS), count: 0 };
      this.chunks.set(ci, c);
    }
    const s = sector - ci * CHUNK_SECTORS;
    c.data.set(data, s * SECTOR);
    if (!c.valid[s]) { c.valid[s] = 1; c.count++; }
  }

  /** Whether every sector of [pos, pos+len) is in the overlay (no need to read the Blob). */
  private covered(pos: number, len: number): boolean {
    if (!this.chunks.size) return false;
    for (let sector = Math.floor(pos / SECTOR); sector * SECTOR < pos + len; sector++) {
      const c = this.chunks.get(Math.floor(sector / CHUNK_SECTORS));
      if (!c || !c.valid[sector % CHUNK_SECTORS]) return false;
    }
    return true;
  }

  /** Copies the overlay's sectors that overlap [pos, pos+buf.length) into buf. */
  private applyOverlay(buf: Uint8Array, pos: number): void {
    if (!this.chunks.size) return;
    const end = Math.min(pos + buf.length, this.size);
    for (let ci = Math.floor(pos / CHUNK); ci * CHUNK < end; ci++) {
      const c = this.chunks.get(ci);
      if (!c) continue;
      for (let s = 0; s < CHUNK_SECTORS; s++) {
        if (!c.valid[s]) continue;
        const at = ci * CHUNK + s * SECTOR;
        const a = Math.max(at, pos), b = Math.min(at + SECTOR, end);
        if (a < b) buf.set(c.data.subarray(a - ci * CHUNK, b - ci * CHUNK), a - pos);
      }
    }
  }

  private checkOpen(): void {
    if (this.closed) throw storeError('EBADF', 'store is closed');
  }
}
