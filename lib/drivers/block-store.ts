/*
 * What a virtio-blk device half reads and writes: a store doing positional I/O on whole
 * buffers (usually views into the kernel's physical memory, so I/O lands in page frames
 * without a copy). Platform-free: the Node stores are in stores.ts, the browser's (a File
 * with an in-memory overlay) in lib/web/blob-store.ts.
 */

export interface BlockStore {
  /** Bytes; the device exposes floor(size / 512) sectors. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fills all of buf from byte pos. Past the end of a file reads zeros. */
  read(buf: Uint8Array, pos: number): Promise<void>;
  /** Writes all of buf at byte pos; rejects (EROFS) on a read-only store. */
  write(buf: Uint8Array, pos: number): Promise<void>;
  /**
   * Optional scatter-gather forms: the buffers are consecutive in the store from pos. One
   * host call (preadv/pwritev) instead of one per page-sized segment.
   */
  readv?(bufs: Uint8Array[], pos: number): Promise<void>;
  writev?(bufs: Uint8Array[], pos: number): Promise<void>;
  /** Makes completed writes durable (fdatasync). */
  flush(): Promise<void>;
  /** Optional: the range's contents become unspecified (zeros here). */
  discard?(pos: number, len: number): Promise<void>;
  /** Optional: fast zeroing; without it a device writes zero buffers. */
  writeZeroes?(pos: number, len: number): Promise<void>;
  close(): Promise<void>;
}
