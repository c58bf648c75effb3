/*
 * Physical memory and the page-frame allocator (mm/page_alloc.c, much reduced).
 *
 * Physical memory is one SharedArrayBuffer handed over by the host at boot; a physical
 * address is a byte offset into it, so devices (whose host halves see the same buffer) can
 * read and write page frames directly. Frames are PAGE_SIZE bytes. Exhaustion is reported
 * as null / -ENOMEM after asking the registered shrinkers to free memory — never a crash.
 */
import { host } from '../arch/cpu.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** Page flags (a few of include/linux/page-flags.h). */
export const PG_locked = 1 << 0, PG_uptodate = 1 << 1, PG_dirty = 1 << 2, PG_writeback = 1 << 3,
  PG_error = 1 << 4, PG_lru = 1 << 5, PG_private = 1 << 6, PG_referenced = 1 << 7, PG_reserved = 1 << 8,
  /* The read-ahead marker: reaching this page starts reading the next window (mm/readahead.c). */
  PG_readahead = 1 << 9;

/** struct page: one per allocated frame. */
export class page {
  flags = 0;
  /** Reference count; the frame is freed when it drops to 0. */
  count = 1;
  /** Owner in the page cache (an address_space) and index in it, if any. */
  mapping: unknown = null;
  index = 0;
  /** Filesystem-private data (buffer heads for block-backed pages). */
  private: unknown = null;
  /** The page cache's LRU clock when this page last moved to the LRU's young end. */
  lru_stamp = 0;
  private view: Uint8Array | null = null;
  constructor(public readonly pfn: number) {}
  /** Physical address of the frame's first byte. */
  get phys(): number { return this.pfn * PAGE_SIZE; }
  /** The frame's bytes (a view into physical memory). */
  get data(): Uint8Array {
    return this.view ??= new Uint8Array(mem.sab, this.pfn * PAGE_SIZE, PAGE_SIZE);
  }
  test(f: number): boolean { return (this.flags & f) !== 0; }
  set(f: number): void { this.flags |= f; }
  clear(f: number): void { this.flags &= ~f; }
}

/** A shrinker frees memory on demand; returns how many pages it freed. */
export type Shrinker = (wantPages: number) => number;

class MemState {
  sab!: SharedArrayBuffer | ArrayBuffer;
  bytes!: Uint8Array;
  totalPages = 0;
  freeList: number[] = [];
  allocated = 0;
  failures = 0;
}
let mem = new MemState();
/** Shrinkers register at module load, so they outlive a reboot of the memory state. */
const shrinkers: Shrinker[] = [];

export function mem_init(memMiB: number): void {
  mem = new MemState();
  const bytes = memMiB * 1024 * 1024;
  mem.sab = host().memAlloc(bytes);
  mem.bytes = new Uint8Array(mem.sab);
  mem.totalPages = Math.floor(bytes / PAGE_SIZE);
  // Frame 0 is reserved so that physical address 0 never names a real buffer.
  for (let pfn = mem.totalPages - 1; pfn >= 1; pfn--) mem.freeList.push(pfn);
}

/** All of physical memory as bytes (for devices and for copying). */
export function physMem(): Uint8Array { return mem.bytes; }
export function physSab(): SharedArrayBuffer | ArrayBuffer { return mem.sab; }

export function register_shrinker(s: Shrinker): void { if (!shrinkers.includes(s)) shrinkers.push(s); }
export function unregister_shrinker(s: Shrinker): void {
  const i = shrinkers.indexOf(s);
  if (i >= 0) shrinkers.splice(i, 1);
}

/**
 * alloc_page: a frame (zero-filled unless `zero` is false: read-ahead pages are about to be
 * overwritten by I/O, and readpage implementations zero what I/O does not fill), or null
 * when memory is exhausted even after shrinking.
 */
export function alloc_page(zero = true): page | null {
  let pfn = mem.freeList.pop();
  if (pfn === undefined) {
    for (const s of shrinkers) { if (s(32) > 0 && mem.freeList.length) break; }
    pfn = mem.freeList.pop();
    if (pfn === undefined) { mem.failures++; return null; }
  }
  mem.allocated++;
  const p = new page(pfn);
  if (zero) p.data.fill(0);
  return p;
}

/** Drop a reference; the frame returns to the free list at zero. */
export function put_page(p: page): void {
  if (--p.count > 0) return;
  if (p.count < 0) throw new Error(`page ${p.pfn} freed twice`);
  mem.allocated--;
  mem.freeList.push(p.pfn);
}
export function get_page(p: page): page { p.count++; return p; }

export interface MemInfo { totalPages: number; freePages: number; allocatedPages: number; failures: number }
export function memInfo(): MemInfo {
  return { totalPages: mem.totalPages, freePages: mem.freeList.length, allocatedPages: mem.allocated, failures: mem.failures };
}
