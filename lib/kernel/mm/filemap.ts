/*
 * The page cache (mm/filemap.c, mm/readahead.c, mm/truncate.c, mm/vmscan.c in miniature).
 *
 * Each inode's address_space maps page indexes to page frames. Reads fill pages through the
 * filesystem's readpage (asynchronously: the page is unlocked at I/O completion), with
 * read-ahead of the following pages; writes go through write_begin/write_end, leaving pages
 * dirty for writeback (fs/fs-writeback.ts). Clean pages are reclaimed least-recently-used
 * when memory runs short; dirty ones are written back first (balance_dirty_pages throttles
 * writers so that dirty memory stays bounded).
 *
 * Locking: PG_locked is a sleeping bit lock (lock_page/unlock_page) held while a page is read
 * in, prepared for a write, or handed to writepage. Waiters sleep on a hashed wait queue.
 * Page references: the cache holds one; lookups return the page with another, released
 * with put_page when the caller is done.
 */
import { wait_queue_head, sleepOn } from '../kernel/wait.js';
import {
  PAGE_SHIFT, PAGE_SIZE, PG_dirty, PG_error, PG_locked, PG_readahead, PG_uptodate, PG_writeback, page,
  alloc_page, get_page, put_page, register_shrinker, memInfo,
} from './page_alloc.js';
import type { address_space, file, inode } from '../include/fs.js';
import { ATTR_KILL_SGID, ATTR_KILL_SUID, I_DIRTY_SYNC } from '../include/fs.js';
import { err } from '../include/errno.js';
import { EFBIG, EIO, ENOMEM, ENOSPC, O_DIRECT, O_DSYNC, O_NOATIME, S_ISGID, S_ISUID } from '../include/uapi.js';
import { current_time, tsCompare } from '../fs/time.js';
import * as wb from '../fs/fs-writeback.js';
import { touch_atime } from '../fs/inode.js';
import { setattr_should_drop_suidgid } from '../fs/attr.js';
import { initcall, INIT_CORE } from '../arch/setup.js';

export { PAGE_SIZE, PAGE_SHIFT };

/* ---- page wait queues and the page lock ---- */

const PAGE_WAIT_TABLE = 256;
const pageWaitTable = Array.from({ length: PAGE_WAIT_TABLE }, () => new wait_queue_head());
function pageWq(p: page): wait_queue_head { return pageWaitTable[p.pfn % PAGE_WAIT_TABLE]!; }

export async function lock_page(p: page): Promise<void> {
  while (p.test(PG_locked)) await sleepOn(pageWq(p));
  p.set(PG_locked);
}
export function trylock_page(p: page): boolean {
  if (p.test(PG_locked)) return false;
  p.set(PG_locked);
  return true;
}
/** Safe from IRQ context (I/O completion unlocks read pages). */
export function unlock_page(p: page): void {
  if (!p.test(PG_locked)) throw new Error(`unlock of unlocked page ${p.pfn}`);
  p.clear(PG_locked);
  pageWq(p).wakeUpAll();
}
export async function wait_on_page_locked(p: page): Promise<void> {
  while (p.test(PG_locked)) await sleepOn(pageWq(p));
}
export async function wait_on_page_writeback(p: page): Promise<void> {
  while (p.test(PG_writeback)) await sleepOn(pageWq(p));
}
export function set_page_writeback(p: page): void { p.set(PG_writeback); wb.accountWriteback(1); }
/** end_page_writeback: from I/O completion (IRQ context). `error` records EIO on the mapping. */
export function end_page_writeback(p: page, error = false): void {
  if (!p.test(PG_writeback)) return;
  if (error) {
    p.set(PG_error);
    const m = p.mapping as address_space | null;
    if (m) m.wb_err = EIO;
  }
  p.clear(PG_writeback);
  wb.accountWriteback(-1);
  pageWq(p).wakeUpAll();
}
/** For readpage implementations: finish a read (IRQ context is fine). */
export function end_page_read(p: page, ok: boolean): void {
  if (ok) { p.set(PG_uptodate); p.clear(PG_error); } else p.set(PG_error);
  unlock_page(p);
}

/* ---- LRU of cached pages and reclaim ---- */

/** Insertion-ordered set: first = least recently used. */
const lru = new Set<page>();
let lruClock = 0;
/**
 * mark_page_accessed, approximately: a page moves to the young end only once it has aged by
 * an eighth of the LRU since its last move. Hot metadata pages (bitmaps, descriptors, inode
 * tables: several lookups per block allocated) would otherwise be deleted from and re-added
 * to the Set on every lookup, which dominated write profiles.
 */
function lruTouch(p: page): void {
  lruClock++;
  if (lruClock - p.lru_stamp < lru.size / 8 && lru.has(p)) return;
  p.lru_stamp = lruClock;
  lru.delete(p);
  lru.add(p);
}

/** Mappings whose pages must never be reclaimed (ramfs: the cache is the only copy). */
const unevictable = new WeakSet<address_space>();
export function mapping_set_unevictable(m: address_space): void { unevictable.add(m); }
export function mapping_unevictable(m: address_space): boolean { return unevictable.has(m); }

let reclaimed = 0;
/** Free up to `want` clean, unused pages (synchronous: never sleeps). */
function shrinkPageCache(want: number): number {
  // A bounded scan first (Linux's nr_to_scan): pages that cannot go now (dirty, under
  // writeback, in use, unevictable) are rotated to the young end, so the next scan sees
  // others instead of walking past the same ones. Only if that frees nothing, a full scan.
  let freed = scanLru(want, Math.max(256, want * 16));
  if (freed === 0) freed = scanLru(want, Infinity);
  reclaimed += freed;
  return freed;
}
function scanLru(want: number, limit: number): number {
  let freed = 0, scanned = 0;
  const rotate: page[] = [];
  for (const p of lru) {
    if (freed >= want || scanned++ >= limit) break;
    const m = p.mapping as address_space | null;
    if (!m) { lru.delete(p); continue; }
    if (p.count !== 1 || p.flags & (PG_locked | PG_dirty | PG_writeback) || unevictable.has(m) ||
      (p.private && m.a_ops?.release_folio && !m.a_ops.release_folio(p))) {
      if (limit !== Infinity) rotate.push(p);
      continue;
    }
    delete_from_page_cache(p);
    freed++;
  }
  for (const p of rotate) { lru.delete(p); lru.add(p); p.lru_stamp = ++lruClock; }
  return freed;
}
register_shrinker(shrinkPageCache);
// Frames belong to one boot's physical memory: forget the previous boot's cache.
initcall(INIT_CORE, 'pagecache', () => { lru.clear(); reclaimed = 0; });
export function pageCacheStats(): { cached: number; reclaimed: number } { return { cached: lru.size, reclaimed }; }

/* ---- lookup and insertion ---- */

/** find_get_page: the cached page with a reference, or null. */
export function find_get_page(m: address_space, index: number): page | null {
  const p = m.pages.get(index);
  if (!p) return null;
  lruTouch(p);
  return get_page(p);
}

/** Allocate a frame for the page cache; ENOMEM only after reclaim and writeback could not help. */
async function allocCachePage(zero = true): Promise<page> {
  let p = alloc_page(zero);
  for (let tries = 0; !p && tries < 8; tries++) {
    // Everything clean is in use: write dirty pages back so they become reclaimable.
    await wb.writebackForReclaim();
    p = alloc_page(zero);
  }
  if (!p) throw err(ENOMEM);
  return p;
}

/** add_to_page_cache: insert a fresh locked page. Caller holds one reference besides the cache's. */
function add_to_page_cache_lru(m: address_space, p: page, index: number): void {
  p.mapping = m;
  p.index = index;
  p.set(PG_locked);
  m.pages_rw.set(index, p);
  p.lru_stamp = ++lruClock;
  lru.add(p);
}

/** Remove from the cache (page locked or otherwise unreachable); drops the cache's reference. */
export function delete_from_page_cache(p: page): void {
  const m = p.mapping as address_space | null;
  if (!m) return;
  if (m.pages.get(p.index) === p) m.pages.delete(p.index);
  if (p.test(PG_dirty)) { p.clear(PG_dirty); wb.accountDirty(m, -1); }
  m.a_ops?.invalidate_folio?.(p, 0, PAGE_SIZE);
  p.private = null;
  p.mapping = null;
  lru.delete(p);
  put_page(p);
}

/**
 * find_or_create_page / grab_cache_page: the page at `index`, locked, with a reference;
 * created (not uptodate, zero-filled) if absent. With `zero` false a new page's bytes are
 * whatever the frame held: for callers that fill or read every byte they will consider
 * valid (block_write_begin: buffers are read, zeroed or overwritten before uptodate).
 */
export async function find_or_create_page(m: address_space, index: number, zero = true): Promise<page> {
  for (;;) {
    const p = find_get_page(m, index);
    if (p) {
      if (!trylock_page(p)) await lock_page(p);
      if (p.mapping === m && m.pages.get(index) === p) return p;
      // Truncated while we slept: try again.
      unlock_page(p);
      put_page(p);
      continue;
    }
    const np = alloc_page(zero) ?? await allocCachePage(zero);
    if (m.pages.has(index)) { put_page(np); continue; } // raced while allocating
    add_to_page_cache_lru(m, np, index);
    get_page(np);
    return np;
  }
}

/* ---- reading ---- */

/*
 * Per-file read-ahead state (struct file_ra_state): the current window [start, start+size)
 * and how many of its last pages are the asynchronous part (async_size), whose first page
 * carries PG_readahead. A reader reaching that page starts the next window without waiting
 * for it, so a sequential reader finds its pages in flight or cached (mm/readahead.c:
 * page_cache_sync_ra on a miss, page_cache_async_ra at the marker).
 */
interface file_ra_state { start: number; size: number; async_size: number; prev_index: number }
const raStates = new WeakMap<object, file_ra_state>();
const RA_MIN = 8, RA_MAX = 256; // pages: 32 KiB .. 1 MiB

/** get_next_ra_size: the next window of a sequential stream. */
const get_next_ra_size = (size: number): number => Math.min(RA_MAX, Math.max(RA_MIN, size * 2));

/**
 * Start reading pages [index, index+nr) that are not cached (page_cache_ra_unbounded):
 * allocate them locked and hand them to readahead/readpage without waiting. The page at
 * `mark`, if this call allocates it, gets PG_readahead.
 */
async function do_page_cache_ra(m: address_space, file: file | null, index: number, nr: number, mark = -1): Promise<void> {
  const aops = m.a_ops;
  if (!aops) return;
  const batch: page[] = [];
  const flush = async () => {
    if (!batch.length) return;
    if (aops.readahead) await aops.readahead(m, batch.slice());
    else for (const p of batch) await aops.readpage(file, p);
    for (const p of batch) put_page(p);
    batch.length = 0;
  };
  for (let i = index; i < index + nr; i++) {
    if (m.pages.has(i)) { await flush(); continue; }
    // Read-ahead never forces writeback (skip if memory is short) and needs no zeroing.
    const p = alloc_page(false);
    if (!p) break;
    if (i === mark) p.set(PG_readahead);
    add_to_page_cache_lru(m, p, i);
    get_page(p);
    batch.push(p);
  }
  await flush();
}

/** ra_submit: read the window, marking its asynchronous part's first page. */
async function ra_submit(m: address_space, file: file, ra: file_ra_state, lastPage: number): Promise<void> {
  ra.size = Math.max(0, Math.min(ra.size, lastPage - ra.start + 1));
  ra.async_size = Math.min(ra.async_size, ra.size);
  if (ra.size === 0) return;
  await do_page_cache_ra(m, file, ra.start, ra.size, ra.async_size > 0 ? ra.start + ra.size - ra.async_size : -1);
}

/**
 * page_cache_sync_ra: a miss at `index` for a request of `req` pages. A sequential stream
 * (the page after the last one read, or the window's end) reads a growing window whose part
 * beyond the request is asynchronous; a random read reads the request and a small window.
 */
async function page_cache_sync_ra(m: address_space, file: file, ra: file_ra_state, index: number, req: number, lastPage: number): Promise<void> {
  const sequential = index === ra.prev_index + 1 || index === ra.prev_index || index === 0;
  if (sequential && ra.size > 0 && index === ra.start + ra.size) {
    ra.start = index;
    ra.size = Math.max(req, get_next_ra_size(ra.size));
    ra.async_size = ra.size - req;
  } else if (sequential) {
    ra.start = index;
    ra.size = Math.max(req, Math.min(RA_MAX, Math.max(RA_MIN, req * 2)));
    ra.async_size = ra.size - req;
  } else {
    ra.start = index;
    ra.size = Math.max(req, RA_MIN);
    ra.async_size = 0;
  }
  await ra_submit(m, file, ra, lastPage);
}

/**
 * page_cache_async_ra: the reader reached a PG_readahead page at `index`: the next window
 * starts after the current one (or at `index` when the marker belongs to an older window).
 */
async function page_cache_async_ra(m: address_space, file: file, ra: file_ra_state, index: number, lastPage: number): Promise<void> {
  if (index === ra.start + ra.size - ra.async_size) ra.start += ra.size;
  else ra.start = index + 1;
  ra.size = get_next_ra_size(ra.size);
  ra.async_size = ra.size;
  if (ra.start > lastPage) return;
  await ra_submit(m, file, ra, lastPage);
}

/** The file's read-ahead state, created on first use (file->f_ra). */
function file_ra(file: file): file_ra_state {
  let ra = raStates.get(file);
  if (!ra) { ra = { start: 0, size: 0, async_size: 0, prev_index: -2 }; raStates.set(file, ra); }
  return ra;
}

/** ra_has_index: is `index` inside the file's current read-ahead window? */
export function ra_has_index(file: file, index: number): boolean {
  const ra = raStates.get(file);
  return !!ra && index >= ra.start && index < ra.start + ra.size;
}

/**
 * page_cache_sync_readahead: pages [index, index + req) of `m` are about to be read; if
 * `index` is not cached, start the window the file's read-ahead state calls for. `m` may be
 * another mapping than the file's own: ext4_readdir reads ahead on the block device's page
 * cache with the directory file's state. The page at `index` is remembered as the last read
 * (f_ra.prev_pos), so the file's next block after it counts as sequential.
 */
export async function page_cache_sync_readahead(m: address_space, file: file, index: number, req: number): Promise<void> {
  const ra = file_ra(file);
  const lastPage = Math.ceil(m.host.i_size / PAGE_SIZE) - 1;
  if (index <= lastPage && !m.pages.has(index)) await page_cache_sync_ra(m, file, ra, index, req, lastPage);
  ra.prev_index = index;
}

/** read_cache_page: the page at index, uptodate and unlocked, with a reference; EIO on failure. */
export async function read_cache_page(m: address_space, index: number, file: file | null = null): Promise<page> {
  for (let attempt = 0; ; attempt++) {
    let p = find_get_page(m, index);
    if (!p) {
      p = await find_or_create_page(m, index);
    } else {
      if (p.test(PG_uptodate)) return p;
      await lock_page(p);
      if (p.mapping !== m) { unlock_page(p); put_page(p); continue; }
    }
    if (p.test(PG_uptodate)) { unlock_page(p); return p; }
    p.clear(PG_error);
    await m.a_ops!.readpage(file, p);
    await wait_on_page_locked(p);
    if (p.test(PG_uptodate)) return p;
    put_page(p);
    if (attempt >= 1) throw err(EIO);
  }
}

/**
 * generic_file_read_iter for buffered reads: copy from the page cache into buf, filling
 * missing pages with read-ahead. Returns bytes read (0 at or past EOF).
 */
export async function filemap_read(file: file, buf: Uint8Array, pos: number): Promise<number> {
  const inode = file.f_inode;
  const m = inode.i_mapping;
  if (buf.length === 0) return 0;
  if (pos >= inode.i_size) { await file_accessed(file); return 0; }
  const ra = file_ra(file);
  let done = 0;
  const lastByte = Math.min(pos + buf.length, inode.i_size);
  const lastIndex = Math.floor((lastByte - 1) / PAGE_SIZE);
  try {
    while (pos + done < lastByte) {
      const cur = pos + done;
      const index = Math.floor(cur / PAGE_SIZE);
      const fileLast = Math.floor((inode.i_size - 1) / PAGE_SIZE);
      let p = find_get_page(m, index);
      if (!p) {
        await page_cache_sync_ra(m, file, ra, index, lastIndex - index + 1, fileLast);
        p = await read_cache_page(m, index, file);
      } else {
        if (p.test(PG_readahead)) {
          p.clear(PG_readahead);
          await page_cache_async_ra(m, file, ra, index, fileLast);
        }
        if (!p.test(PG_uptodate)) {
          put_page(p);
          p = await read_cache_page(m, index, file);
        }
      }
      // i_size may have shrunk while we slept.
      const end = Math.min(lastByte, inode.i_size);
      if (cur >= end) { put_page(p); break; }
      const off = cur - index * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, end - cur);
      buf.set(p.data.subarray(off, off + n), done);
      put_page(p);
      done += n;
      ra.prev_index = index;
    }
  } catch (e) {
    if (done === 0) throw e;
  }
  await file_accessed(file);
  return done;
}

/* ---- writing ---- */

/** file_update_time: mtime and ctime to now, inode dirty. */
export async function file_update_time(file: file): Promise<void> {
  const inode = file.f_inode;
  const now = current_time(inode);
  if (tsCompare(inode.i_mtime, now) === 0 && tsCompare(inode.i_ctime, now) === 0) return;
  inode.i_mtime = now;
  inode.i_ctime = now;
  await wb.mark_inode_dirty(inode, I_DIRTY_SYNC);
}

/**
 * generic_perform_write through write_begin/write_end; the caller (generic file write)
 * has checked limits and holds i_rwsem. Returns bytes written; a failure after some bytes
 * returns the short count, as write(2) does.
 */
export async function generic_perform_write(file: file | null, m: address_space, buf: Uint8Array, pos: number): Promise<number> {
  const aops = m.a_ops!;
  let done = 0;
  while (done < buf.length) {
    const cur = pos + done;
    const off = cur % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, buf.length - done);
    let page: page;
    try {
      page = await aops.write_begin!(file, m, cur, n);
    } catch (e) {
      if (done) break;
      throw e;
    }
    page.data.set(buf.subarray(done, done + n), off);
    const copied = await aops.write_end!(file, m, cur, n, n, page);
    done += copied;
    if (copied < n) break;
    await wb.balance_dirty_pages(m);
  }
  return done;
}

/**
 * generic_file_write_iter (buffered): limits (EFBIG at s_maxbytes), privilege removal,
 * timestamps, the copy, and O_SYNC/O_DSYNC. The VFS has resolved O_APPEND into pos and
 * holds the inode's i_rwsem for writing.
 */
export async function generic_file_write_iter(file: file, buf: Uint8Array, pos: number): Promise<number> {
  const inode = file.f_inode;
  const sb = inode.i_sb;
  if (buf.length === 0) return 0;
  let len = buf.length;
  if (pos >= sb.s_maxbytes) throw err(EFBIG);
  if (pos + len > sb.s_maxbytes) len = sb.s_maxbytes - pos;
  // file_remove_privs: a write by someone without CAP_FSETID clears setuid/setgid.
  const kill = setattr_should_drop_suidgid(inode);
  if (kill) {
    inode.i_mode &= ~((kill & ATTR_KILL_SUID ? S_ISUID : 0) | (kill & ATTR_KILL_SGID ? S_ISGID : 0));
    await wb.mark_inode_dirty(inode, I_DIRTY_SYNC);
  }
  await file_update_time(file);
  const n = await generic_perform_write(file, inode.i_mapping, len === buf.length ? buf : buf.subarray(0, len), pos);
  if (n > 0 && ((file.f_flags & O_DSYNC) || (sb.s_flags & 16 /* SB_SYNCHRONOUS */) || (file.f_flags & O_DIRECT))) {
    await wb.vfs_fsync_range(file, pos, pos + n - 1, (file.f_flags & 0o4010000) !== 0o4010000 /* O_SYNC */);
  }
  return n;
}

/* ---- simple (memory-only) address space, as libfs's for ramfs ---- */

export const simple_aops = {
  async readpage(_file: file | null, page: page): Promise<void> {
    page.data.fill(0);
    end_page_read(page, true);
  },
  async write_begin(_file: file | null, m: address_space, pos: number, len: number): Promise<page> {
    const page = await find_or_create_page(m, Math.floor(pos / PAGE_SIZE));
    if (!page.test(PG_uptodate)) {
      // A fresh page is zero-filled by the allocator: that is the right content for ramfs.
      page.set(PG_uptodate);
    }
    void len;
    return page;
  },
  async write_end(_file: file | null, m: address_space, pos: number, _len: number, copied: number, page: page): Promise<number> {
    const inode = m.host;
    if (pos + copied > inode.i_size) inode.i_size = pos + copied;
    page.set(PG_dirty); // never written anywhere: the cache is the storage (not accounted)
    unlock_page(page);
    put_page(page);
    return copied;
  },
};

/* ---- truncation ---- */

/** The pages of indexes [first, last] leave the cache, once their writeback is over. */
async function drop_pages(m: address_space, first: number, last: number): Promise<void> {
  for (const i of [...m.pages.keys()].filter((x) => x >= first && x <= last).sort((a, b) => a - b)) {
    const p = m.pages.get(i);
    if (!p) continue;
    get_page(p);
    await lock_page(p);
    await wait_on_page_writeback(p);
    if (p.mapping === m) delete_from_page_cache(p);
    unlock_page(p);
    put_page(p);
  }
}

/**
 * truncate_inode_pages_range from `lstart` to the end: drop whole pages past it (waiting
 * for their writeback), and zero the tail of the page that contains it.
 */
export async function truncate_inode_pages(m: address_space, lstart: number): Promise<void> {
  await drop_pages(m, Math.ceil(lstart / PAGE_SIZE), Infinity);
  const partial = lstart % PAGE_SIZE;
  if (partial) await zero_page_range(m, Math.floor(lstart / PAGE_SIZE), partial, PAGE_SIZE);
}

/**
 * Bytes [from, to) of cached page `idx` (if cached) become zeros, and its buffers wholly
 * inside lose their mapping (truncate_inode_partial_folio: their blocks are being freed).
 */
async function zero_page_range(m: address_space, idx: number, from: number, to: number): Promise<void> {
  const p = find_get_page(m, idx);
  if (!p) return;
  await lock_page(p);
  await wait_on_page_writeback(p);
  if (p.test(PG_uptodate)) p.data.fill(0, from, to);
  m.a_ops?.invalidate_folio?.(p, from, to - from);
  unlock_page(p);
  put_page(p);
}

/**
 * truncate_inode_pages_range: drop the pages wholly inside bytes [lstart, lend] (lend
 * inclusive, waiting for their writeback) and zero the parts of the two edge pages that
 * fall inside (a hole punched in the middle of a file).
 */
export async function truncate_inode_pages_range(m: address_space, lstart: number, lend: number): Promise<void> {
  await drop_pages(m, Math.ceil(lstart / PAGE_SIZE), Math.floor((lend + 1) / PAGE_SIZE) - 1);
  for (const idx of new Set([Math.floor(lstart / PAGE_SIZE), Math.floor(lend / PAGE_SIZE)])) {
    const ps = idx * PAGE_SIZE;
    const from = Math.max(lstart, ps) - ps, to = Math.min(lend + 1, ps + PAGE_SIZE) - ps;
    if (from === 0 && to === PAGE_SIZE) continue; /* dropped above */
    await zero_page_range(m, idx, from, to);
  }
}

/** truncate_pagecache(inode, newsize): after i_size was set to newsize. */
export async function truncate_pagecache(inode: inode, newsize: number): Promise<void> {
  await truncate_inode_pages(inode.i_mapping, newsize);
}

/** Drop every clean page of a mapping (invalidate_mapping_pages); dirty ones stay. */
export function invalidate_mapping_pages(m: address_space): number {
  let n = 0;
  for (const p of [...m.pages.values()]) {
    if (p.count !== 1 || p.flags & (PG_locked | PG_dirty | PG_writeback)) continue;
    if (p.private && m.a_ops?.release_folio && !m.a_ops.release_folio(p)) continue;
    delete_from_page_cache(p);
    n++;
  }
  return n;
}

/* ---- atime ---- */

/** file_accessed (include/linux/fs.h): touch_atime of the file's path, unless O_NOATIME. */
export async function file_accessed(file: file): Promise<void> {
  if (file.f_flags & O_NOATIME) return;
  await touch_atime(file.f_path);
}

export function memoryPressure(): boolean {
  const mi = memInfo();
  return mi.freePages < mi.totalPages / 16;
}
export { ENOSPC };
