/*
 * Buffer heads (fs/buffer.c; whole-page bios are in mpage.ts): blocks of a block device or
 * of a file, seen through the page cache. This is what filesystems build on; read it before writing one.
 *
 * 1. Metadata: buffers over the block device's page cache
 *    A block of `size` bytes (512..PAGE_SIZE, a power of two: the fs block size set with
 *    sb_set_blocksize) lives in the page of bdev.bd_inode's mapping that covers its bytes; the
 *    page's private field holds one buffer_head per block (page.private: buffer_head[]).
 *    - getblk(bdev, block, size)  the buffer, with a reference, not necessarily read
 *    - bread / sb_bread(sb, block) the buffer read in (throws EIO); brelse(bh) when done
 *    - bh_uptodate_or_lock + bhReadLocked, bh_readahead / sb_breadahead (no wait)
 *    - mark_buffer_dirty(bh)        after changing bh.b_data; written by writeback or by
 *    - sync_dirty_buffer(bh)        write now and wait (throws EIO); write_dirty_buffer (no wait)
 *    - mark_buffer_dirty_inode(bh, inode) + sync_mapping_buffers(inode.i_mapping): metadata
 *      buffers belonging to an inode (indirect blocks, directory blocks of a non-journalled
 *      fs) that fsync of that inode must write (generic_file_fsync calls it)
 *    - lock_buffer / unlock_buffer / wait_on_buffer, submit_bh(opf, bh) for custom I/O
 *      (b_end_io runs in IRQ context, must not sleep)
 *    - invalidate_bdev(bdev) drops clean cached blocks (after the fs is unmounted)
 *    Reference counting: every getblk/bread/sb_bread is paired with one brelse. A buffer
 *    with references, dirty or locked keeps its page in memory.
 *
 * 2. File data: the generic address-space helpers over a filesystem's get_block
 *    A filesystem describes where its file blocks are with a GetBlock (include/blk.ts):
 *    getBlock(inode, iblock, maxBlocks, create) → { pblk (0 = hole), len, isNew, unwritten }.
 *    With these its address_space_operations are one-liners:
 *      readpage   → mpage_read_folio(page, getBlock)       (or block_read_full_folio)
 *      readahead  → mpage_readahead(pages, getBlock)     (contiguous blocks, one bio)
 *      writepage  → block_write_full_page(page, getBlock, wbc)
 *      writepages → mpage_writepages(mapping, wbc, getBlock)
 *      write_begin→ block_write_begin(mapping, pos, len, getBlock)
 *      write_end  → generic_write_end(mapping, pos, len, copied, page)
 *      bmap       → generic_block_bmap(mapping, block, getBlock)
 *      invalidate_folio / release_folio → block_invalidate_folio / try_to_free_buffers
 *    and truncation uses block_truncate_page(mapping, from, getBlock) to zero the tail of the
 *    last block. Holes, unwritten blocks and blocks past i_size read as zeros; newly
 *    allocated blocks (isNew) are zeroed where a write does not cover them; a partial write
 *    into an existing block reads it first.
 *
 * Context: everything here runs in kernel threads and may sleep, except the end_io
 * handlers (IRQ context). Pages handed to readpage/writepage are locked, as the page cache
 * contract in include/fs.ts says.
 */
import { pr_err } from '../kernel/printk.js';
import { wait_queue_head, sleepOn } from '../kernel/wait.js';
import { host } from '../arch/cpu.js';
import { err } from '../include/errno.js';
import { EINVAL, EIO } from '../include/uapi.js';
import {
  BH_Async_Read, BH_Async_Write, BH_Delay, BH_Dirty, BH_Lock, BH_Mapped, BH_New, BH_Req, BH_Unwritten,
  BH_Uptodate, BH_Write_EIO, BLK_STS_OK, REQ_OP_MASK, REQ_OP_READ, REQ_OP_WRITE, REQ_SYNC,
  SECTOR_SIZE, type bio, type block_device, type GetBlock, type MappedBlock,
} from '../include/blk.js';
import type { address_space, inode, super_block, writeback_control } from '../include/fs.js';
import { I_DIRTY_DATASYNC, I_DIRTY_SYNC } from '../include/fs.js';
import {
  PAGE_SHIFT, PAGE_SIZE, PG_private, PG_uptodate, PG_writeback, put_page, type page,
} from '../mm/page_alloc.js';
import {
  end_page_read, end_page_writeback, find_get_page, find_or_create_page, invalidate_mapping_pages,
  set_page_writeback, unlock_page, wait_on_page_writeback,
} from '../mm/filemap.js';
import { mark_inode_dirty, set_page_dirty } from './fs-writeback.js';
import { bio_alloc, submit_bio } from '../block/bio.js';

/** struct buffer_head. */
export class buffer_head {
  b_state = 0;
  /** Block number on b_bdev, in units of b_size (valid when BH_Mapped). */
  b_blocknr = -1;
  b_bdev: block_device | null = null;
  /** References (get_bh / brelse). */
  b_count = 0;
  /** I/O completion, IRQ context: `uptodate` false on error. */
  b_end_io: ((bh: buffer_head, uptodate: boolean) => void) | null = null;
  /** Owner's private data (jbd2's journal head, ...). */
  b_private: unknown = null;
  /** The inode mapping this metadata buffer was dirtied for (mark_buffer_dirty_inode). */
  b_assoc_map: address_space | null = null;
  /** Waiters for BH_Lock, created on first use. */
  wq: wait_queue_head | null = null;
  private data: Uint8Array | null = null;
  constructor(readonly b_page: page, readonly b_offset: number, readonly b_size: number) {}
  /**
   * The block's bytes: a view into the page frame, made on first use. Most buffers of file
   * pages (vfat has eight per page) only carry state and a block number and never need one:
   * 32 MiB written to vfat left 65,536 buffers, and their views were 7 MB of the heap.
   */
  get b_data(): Uint8Array {
    return this.data ??= this.b_page.data.subarray(this.b_offset, this.b_offset + this.b_size);
  }
  test(bit: number): boolean { return (this.b_state & bit) !== 0; }
  set(bit: number): void { this.b_state |= bit; }
  clear(bit: number): void { this.b_state &= ~bit; }
  /** test_clear: was it set? (and clear it) */
  testClear(bit: number): boolean { const r = (this.b_state & bit) !== 0; this.b_state &= ~bit; return r; }
  get uptodate(): boolean { return this.test(BH_Uptodate); }
  get dirty(): boolean { return this.test(BH_Dirty); }
  get locked(): boolean { return this.test(BH_Lock); }
  get mapped(): boolean { return this.test(BH_Mapped); }
}

export const debug = () => host().debug?.('lkl:block:buffer');

/* ---- buffer state helpers ---- */

export function get_bh(bh: buffer_head): buffer_head { bh.b_count++; return bh; }
export function put_bh(bh: buffer_head): void {
  if (bh.b_count <= 0) { pr_err(`BUG: buffer ${bh.b_blocknr}: put with count ${bh.b_count}`); return; }
  bh.b_count--;
}
/** brelse: drop a reference (null is fine). */
export function brelse(bh: buffer_head | null | undefined): void { if (bh) put_bh(bh); }
export const bforget = brelse;

export function page_buffers(page: page): buffer_head[] | null {
  return (page.private as buffer_head[] | null) ?? null;
}
function attachBuffers(page: page, bhs: buffer_head[]): void {
  page.private = bhs;
  page.set(PG_private);
}
function detachBuffers(page: page): void {
  page.private = null;
  page.clear(PG_private);
}

/** lock_buffer: sleeping bit lock. */
export async function lock_buffer(bh: buffer_head): Promise<void> {
  while (bh.test(BH_Lock)) await sleepOn(bh.wq ??= new wait_queue_head());
  bh.set(BH_Lock);
}
export function trylock_buffer(bh: buffer_head): boolean {
  if (bh.test(BH_Lock)) return false;
  bh.set(BH_Lock);
  return true;
}
/** unlock_buffer: safe from IRQ context (I/O completion). */
export function unlock_buffer(bh: buffer_head): void {
  bh.clear(BH_Lock);
  bh.wq?.wakeUpAll();
}
export async function wait_on_buffer(bh: buffer_head): Promise<void> {
  while (bh.test(BH_Lock)) await sleepOn(bh.wq ??= new wait_queue_head());
}

/**
 * Record a write error on the buffer and the mappings whose fsync must report it
 * (mark_buffer_write_io_error).
 */
function mark_buffer_write_io_error(bh: buffer_head): void {
  bh.set(BH_Write_EIO);
  const m = bh.b_page.mapping as address_space | null;
  if (m) m.wb_err = EIO;
  if (bh.b_assoc_map) bh.b_assoc_map.wb_err = EIO;
}

function buffer_io_error(bh: buffer_head, what: string): void {
  pr_err(`Buffer I/O error on dev ${bh.b_bdev?.bd_name ?? '?'}, logical block ${bh.b_blocknr}, ${what}`);
}

/* ---- I/O on one buffer ---- */

/**
 * submit_bh: one bio for the buffer. The caller holds the buffer lock and has set
 * b_end_io; b_end_io runs in IRQ context.
 */
export async function submit_bh(opf: number, bh: buffer_head): Promise<void> {
  if (!bh.b_bdev || !bh.test(BH_Mapped)) throw new Error(`submit_bh of unmapped buffer (block ${bh.b_blocknr})`);
  if (bh.test(BH_Delay)) throw new Error('submit_bh of a delayed-allocation buffer (no block yet)');
  if (!bh.test(BH_Lock)) throw new Error('submit_bh of unlocked buffer');
  const op = opf & REQ_OP_MASK;
  if (op === REQ_OP_WRITE && bh.test(BH_Write_EIO)) bh.clear(BH_Write_EIO);
  bh.set(BH_Req);
  const bio = bio_alloc(bh.b_bdev, opf, bh.b_blocknr * (bh.b_size / SECTOR_SIZE));
  bio.addPage(bh.b_page, bh.b_size, bh.b_offset);
  bio.bi_private = bh;
  bio.bi_end_io = (b: bio) => {
    const h = b.bi_private as buffer_head;
    if (h.b_end_io) h.b_end_io(h, b.bi_status === BLK_STS_OK);
  };
  await submit_bio(bio);
}

/** end_buffer_read_sync: for a submitter that waits. */
export function end_buffer_read_sync(bh: buffer_head, uptodate: boolean): void {
  if (uptodate) bh.set(BH_Uptodate); else bh.clear(BH_Uptodate);
  unlock_buffer(bh);
  put_bh(bh);
}
/** end_buffer_write_sync. */
export function end_buffer_write_sync(bh: buffer_head, uptodate: boolean): void {
  if (uptodate) bh.set(BH_Uptodate);
  else {
    buffer_io_error(bh, 'lost sync page write');
    mark_buffer_write_io_error(bh);
    bh.clear(BH_Uptodate);
  }
  unlock_buffer(bh);
  put_bh(bh);
}

/** Read a locked buffer and wait (__bh_read with wait). Throws EIO; the buffer ends unlocked. */
export async function bhReadLocked(bh: buffer_head, opf = 0): Promise<void> {
  get_bh(bh);
  bh.b_end_io = end_buffer_read_sync;
  await submit_bh(REQ_OP_READ | opf, bh);
  await wait_on_buffer(bh);
  if (!bh.test(BH_Uptodate)) throw err(EIO);
}

/** bh_uptodate_or_lock: true if uptodate; otherwise returns false with the buffer locked. */
export async function bh_uptodate_or_lock(bh: buffer_head): Promise<boolean> {
  if (bh.test(BH_Uptodate)) return true;
  await lock_buffer(bh);
  if (bh.test(BH_Uptodate)) { unlock_buffer(bh); return true; }
  return false;
}

/** bh_read: make the buffer uptodate (reading it if needed). Throws EIO. */
export async function bh_read(bh: buffer_head): Promise<void> {
  if (await bh_uptodate_or_lock(bh)) return;
  await bhReadLocked(bh);
}

/** bh_readahead: start reading if not uptodate and not busy; do not wait. */
export async function bh_readahead(bh: buffer_head, opf = 0): Promise<void> {
  if (bh.test(BH_Uptodate) || !trylock_buffer(bh)) return;
  if (bh.test(BH_Uptodate)) { unlock_buffer(bh); return; }
  get_bh(bh);
  bh.b_end_io = end_buffer_read_sync;
  await submit_bh(REQ_OP_READ | opf, bh);
}

/* ---- the block device's cache ---- */

/** Blocks of `size` in one page, and log2(size). */
function bitsOf(size: number): number {
  // bits32: a power-of-two test on a block size, bounded by PAGE_SIZE first
  if (size < 512 || size > PAGE_SIZE || (size & (size - 1))) throw err(EINVAL, `bad block size ${size}`);
  return Math.log2(size);
}

/** create_empty_buffers: `PAGE_SIZE / blocksize` unmapped buffers with state `b_state`. */
export function create_empty_buffers(page: page, blocksize: number, b_state = 0): buffer_head[] {
  const bhs: buffer_head[] = [];
  for (let off = 0; off < PAGE_SIZE; off += blocksize) {
    const bh = new buffer_head(page, off, blocksize);
    bh.b_state = b_state;
    bhs.push(bh);
  }
  /* buffers of an uptodate page are uptodate; of a dirty page, dirty */
  if (page.test(PG_uptodate)) for (const bh of bhs) bh.set(BH_Uptodate);
  attachBuffers(page, bhs);
  return bhs;
}

/**
 * The buffers of a block-device page, of `size` bytes, mapped onto the blocks the page
 * covers (grow_dev_page's init_page_buffers). Existing buffers of another size are dropped
 * if nothing uses them.
 */
function bdevPageBuffers(bdev: block_device, page: page, size: number): buffer_head[] {
  let bhs = page_buffers(page);
  if (bhs && bhs[0]!.b_size !== size) {
    if (!try_to_free_buffers(page)) {
      throw err(EIO, `${bdev.bd_name}: block size ${size} requested on a page with busy ${bhs[0]!.b_size}-byte buffers`);
    }
    bhs = null;
  }
  if (!bhs) bhs = create_empty_buffers(page, size);
  const first = page.index * (PAGE_SIZE / size);
  const end = Math.floor(bdev.bd_nr_sectors * SECTOR_SIZE / size);
  for (let i = 0; i < bhs.length; i++) {
    const bh = bhs[i]!;
    if (bh.test(BH_Mapped)) continue;
    bh.b_bdev = bdev;
    bh.b_blocknr = first + i;
    if (first + i < end) bh.set(BH_Mapped);
  }
  return bhs;
}

/**
 * __getblk: the buffer for `block` (in `size` units) of bdev, with a reference; its data
 * is valid only if uptodate. Throws EIO for a block past the end of the device.
 */
export async function getblk(bdev: block_device, block: number, size: number): Promise<buffer_head> {
  const bits = bitsOf(size);
  if (size < bdevLogicalBlockSize(bdev)) throw err(EINVAL, `getblk: block size ${size} below the device's logical block size`);
  if (!Number.isSafeInteger(block) || block < 0 || (block + 1) * size > bdev.bd_nr_sectors * 512) {
    throw err(EIO, `${bdev.bd_name}: block ${block} (size ${size}) beyond the end of the device`);
  }
  const perPage = PAGE_SHIFT - bits;
  const blocksPerPage = 2 ** perPage;
  const index = Math.floor(block / blocksPerPage);
  const m = bdev.bd_inode.i_mapping;
  /* fast path: the page is cached with buffers of this size */
  const cached = find_get_page(m, index);
  if (cached) {
    const bhs = page_buffers(cached);
    if (bhs && bhs[0]!.b_size === size) {
      const bh = bhs[block - index * blocksPerPage]!;
      get_bh(bh);
      put_page(cached);
      return bh;
    }
    put_page(cached);
  }
  const page = await find_or_create_page(m, index);
  try {
    const bhs = bdevPageBuffers(bdev, page, size);
    return get_bh(bhs[block - index * blocksPerPage]!);
  } finally {
    unlock_page(page);
    put_page(page);
  }
}
export const sb_getblk = (sb: super_block, block: number) => getblk(sbBdev(sb), block, sb.s_blocksize);

/**
 * __find_get_block: the cached buffer of `block`, with a reference, or null — no I/O, no
 * allocation, no sleep (the lookup half of getblk).
 */
export function __find_get_block(bdev: block_device, block: number, size: number): buffer_head | null {
  const blocksPerPage = PAGE_SIZE / size;
  if (!Number.isInteger(blocksPerPage) || blocksPerPage < 1) return null;
  const index = Math.floor(block / blocksPerPage);
  const page = bdev.bd_inode.i_mapping.pages.get(index);
  const bhs = page ? page_buffers(page) : null;
  if (!bhs || bhs[0]!.b_size !== size) return null;
  return get_bh(bhs[block - index * blocksPerPage]!);
}

function bdevLogicalBlockSize(bdev: block_device): number {
  return (bdev as unknown as { logical_block_size?: number }).logical_block_size ?? 512;
}

/** __bread: the buffer read in, with a reference. Throws EIO (after a kernel message). */
export async function bread(bdev: block_device, block: number, size: number): Promise<buffer_head> {
  const bh = await getblk(bdev, block, size);
  if (bh.test(BH_Uptodate)) return bh;
  try {
    await bh_read(bh);
  } catch (e) {
    brelse(bh);
    pr_err(`${bdev.bd_name}: unable to read block ${block}`);
    throw e;
  }
  return bh;
}

function sbBdev(sb: super_block): block_device {
  if (!sb.s_bdev) throw err(EINVAL, `${sb.s_id}: no block device`);
  return sb.s_bdev;
}
/** sb_bread: block `block` of the filesystem's device in its block size. */
export function sb_bread(sb: super_block, block: number): Promise<buffer_head> {
  return bread(sbBdev(sb), block, sb.s_blocksize);
}
/** sb_breadahead: start reading a block that will be needed soon. */
export async function sb_breadahead(sb: super_block, block: number): Promise<void> {
  let bh: buffer_head;
  try { bh = await getblk(sbBdev(sb), block, sb.s_blocksize); } catch { return; }
  try { await bh_readahead(bh); } finally { brelse(bh); }
}

/* ---- dirtying and writing buffers ---- */

/** mark_buffer_dirty: the buffer (which must be uptodate) and its page are dirty. */
export function mark_buffer_dirty(bh: buffer_head): void {
  if (!bh.test(BH_Uptodate)) pr_err(`BUG: mark_buffer_dirty of a buffer that is not uptodate (block ${bh.b_blocknr})`);
  if (bh.test(BH_Dirty)) return;
  bh.set(BH_Dirty);
  if (bh.b_page.mapping) set_page_dirty(bh.b_page);
}

/** mark_buffer_dirty_inode: dirty, and written by fsync of `inode` (sync_mapping_buffers). */
export function mark_buffer_dirty_inode(bh: buffer_head, inode: inode): void {
  mark_buffer_dirty(bh);
  const m = inode.i_mapping;
  if (bh.b_assoc_map !== m) {
    if (bh.b_assoc_map) removeAssoc(bh);
    bh.b_assoc_map = m;
    m.private_list.push(bh);
  }
  /* the inode must be visited by writeback/fsync for its buffers to be written */
  void mark_inode_dirty(inode, I_DIRTY_DATASYNC);
}

function removeAssoc(bh: buffer_head): void {
  const m = bh.b_assoc_map;
  if (!m) return;
  const i = m.private_list.indexOf(bh);
  if (i >= 0) m.private_list.splice(i, 1);
  bh.b_assoc_map = null;
}

/**
 * Pages whose writeback in progress lost a buffer write. Only the buffers of this writeback
 * count: a buffer of the page that failed earlier and was not written again keeps its
 * BH_Write_EIO, but that error was reported then (Linux's end_buffer_async_write records
 * the failing buffer's error alone).
 */
const writebackFailed = new WeakSet<page>();

/** mark_buffer_async_write's completion (end_buffer_async_write): page writeback ends with the last buffer. */
export function end_buffer_async_write(bh: buffer_head, uptodate: boolean): void {
  const page = bh.b_page;
  if (uptodate) bh.set(BH_Uptodate);
  else {
    buffer_io_error(bh, 'lost async page write');
    mark_buffer_write_io_error(bh);
    bh.clear(BH_Uptodate);
    writebackFailed.add(page);
  }
  bh.clear(BH_Async_Write);
  unlock_buffer(bh);
  const bhs = page_buffers(page);
  if (bhs && bhs.some((b) => b.test(BH_Async_Write))) return;
  const failed = writebackFailed.delete(page) || !uptodate;
  end_page_writeback(page, failed);
}

/** end_buffer_async_read: the page is done (and unlocked) when its last buffer is. */
function end_buffer_async_read(bh: buffer_head, uptodate: boolean): void {
  const page = bh.b_page;
  if (uptodate) bh.set(BH_Uptodate);
  else { bh.clear(BH_Uptodate); buffer_io_error(bh, 'async page read'); }
  bh.clear(BH_Async_Read);
  unlock_buffer(bh);
  const bhs = page_buffers(page);
  if (bhs && bhs.some((b) => b.test(BH_Async_Read))) return;
  end_page_read(page, !bhs || bhs.every((b) => b.test(BH_Uptodate)));
}

/**
 * write_dirty_buffer: start writing the buffer if it is dirty; do not wait. The write
 * completes through end_buffer_write_sync (so a later wait_on_buffer + uptodate check tells).
 */
export async function write_dirty_buffer(bh: buffer_head, opf = 0): Promise<void> {
  await lock_buffer(bh);
  if (!bh.testClear(BH_Dirty)) { unlock_buffer(bh); return; }
  get_bh(bh);
  bh.b_end_io = end_buffer_write_sync;
  await submit_bh(REQ_OP_WRITE | opf, bh);
}

/** sync_dirty_buffer: write the buffer now if dirty and wait; throws EIO on failure. */
export async function sync_dirty_buffer(bh: buffer_head, opf = REQ_SYNC): Promise<void> {
  await lock_buffer(bh);
  if (!bh.testClear(BH_Dirty)) { unlock_buffer(bh); return; }
  get_bh(bh);
  bh.b_end_io = end_buffer_write_sync;
  await submit_bh(REQ_OP_WRITE | opf, bh);
  await wait_on_buffer(bh);
  if (!bh.test(BH_Uptodate)) throw err(EIO);
}

/**
 * sync_mapping_buffers: write and wait for the metadata buffers dirtied for this inode
 * with mark_buffer_dirty_inode. Throws EIO if any write failed (now or earlier).
 */
export async function sync_mapping_buffers(m: address_space): Promise<void> {
  const list = m.private_list as buffer_head[];
  if (!list.length) return;
  const bhs = list.splice(0);
  for (const bh of bhs) bh.b_assoc_map = null;
  let failed = false;
  for (const bh of bhs) {
    get_bh(bh);
    if (bh.test(BH_Dirty) || bh.test(BH_Lock)) await write_dirty_buffer(bh, REQ_SYNC);
  }
  for (const bh of bhs) {
    await wait_on_buffer(bh);
    if (!bh.test(BH_Uptodate) || bh.test(BH_Write_EIO)) failed = true;
    put_bh(bh);
  }
  if (failed) throw err(EIO);
}

/** Drop the inode's list of associated buffers without writing them (eviction). */
export function invalidate_inode_buffers(inode: inode): void {
  for (const bh of (inode.i_mapping.private_list as buffer_head[]).splice(0)) bh.b_assoc_map = null;
}

/**
 * clean_bdev_aliases: blocks just allocated to a file may still have buffers in the block
 * device's cache from an earlier life as metadata; if one of those were written back later
 * it would overwrite the new data. Forget their dirtiness.
 */
export function clean_bdev_aliases(bdev: block_device, block: number, len: number, blocksize: number): void {
  const m = bdev.bd_inode.i_mapping;
  if (m.pages.size === 0) return;
  const perPage = PAGE_SIZE / blocksize;
  for (let b = block; b < block + len; ) {
    const index = Math.floor(b / perPage);
    const page = m.pages.get(index);
    const pageEnd = (index + 1) * perPage;
    const bhs = page ? page_buffers(page) : null;
    if (bhs) {
      for (const bh of bhs) {
        if (bh.b_blocknr >= b && bh.b_blocknr < block + len && bh.b_size === blocksize) {
          bh.clear(BH_Dirty);
          removeAssoc(bh);
        }
      }
    }
    b = pageEnd;
  }
}

/* ---- page-level helpers for the bdev and for filesystems ---- */

/** How one block of a file maps (the result of a get_block call, normalised). */
export interface BlockMap {
  mapped: boolean; pblk: number; isNew: boolean; unwritten: boolean; len: number;
  /** Delayed allocation: reserved, no block yet (the buffer gets BH_Delay, as ext4's da_get_block_prep gives it). */
  delay?: boolean;
}
/** The internal form of get_block; the bdev maps every block onto itself (block 0 included). */
export type BlockMapper = (inode: inode, iblock: number, maxBlocks: number, create: boolean) => Promise<BlockMap>;

/** A filesystem's GetBlock as a BlockMapper: pblk 0 is a hole. */
export function mapperOf(getBlock: GetBlock): BlockMapper {
  return async (inode, iblock, max, create) => {
    const r: MappedBlock = await getBlock(inode, iblock, max, create);
    const mapped = r.pblk !== 0;
    return { mapped, pblk: r.pblk, isNew: !!r.isNew, unwritten: !!r.unwritten, len: Math.max(1, r.len || 1) };
  };
}
const mappers = new WeakMap<GetBlock, BlockMapper>();
export function toMapper(g: GetBlock | BlockMapper): BlockMapper {
  if ((g as { __mapper?: boolean }).__mapper) return g as BlockMapper;
  let m = mappers.get(g as GetBlock);
  if (!m) { m = mapperOf(g as GetBlock); mappers.set(g as GetBlock, m); }
  return m;
}
/** Mark a function as a BlockMapper (the bdev's identity mapping). */
export function asMapper(fn: BlockMapper): BlockMapper { (fn as { __mapper?: boolean }).__mapper = true; return fn; }

export function inodeOf(page: page): inode {
  const m = page.mapping as address_space | null;
  if (!m) throw new Error('page not in a mapping');
  return m.host;
}

/** Apply a mapping to a buffer; returns false for a hole. */
function setMapped(bh: buffer_head, inode: inode, map: BlockMap, offsetInRun: number): void {
  bh.b_bdev = inode.i_bdev ?? inode.i_sb.s_bdev;
  if (map.delay) {
    /* mapped to no block yet: submit_bh refuses it until writeback allocates one */
    bh.b_blocknr = -1;
    bh.b_state |= BH_Mapped | BH_New | BH_Delay;
    return;
  }
  bh.b_blocknr = map.pblk + offsetInRun;
  bh.set(BH_Mapped);
  if (map.isNew) bh.set(BH_New);
  if (map.unwritten) bh.set(BH_Unwritten); else bh.clear(BH_Unwritten);
}

/**
 * Map the buffers of a page that are not mapped yet, one get_block call per contiguous run
 * (`create` allocates). Only buffers for which `want(i)` holds are mapped.
 */
async function mapPageBuffers(inode: inode, page: page, bhs: buffer_head[], mapper: BlockMapper, create: boolean,
  want: (i: number) => boolean, lastBlock = Infinity): Promise<void> {
  const bits = inode.i_blkbits;
  const first = page.index * 2 ** (PAGE_SHIFT - bits);
  let run: BlockMap | null = null;
  let runStart = 0;
  for (let i = 0; i < bhs.length; i++) {
    const bh = bhs[i]!;
    if (bh.test(BH_Mapped) || !want(i)) continue;
    const iblock = first + i;
    if (iblock >= lastBlock) continue;
    if (!run || iblock >= runStart + run.len || (!run.mapped)) {
      run = await mapper(inode, iblock, bhs.length - i, create);
      runStart = iblock;
    }
    if (run.mapped) {
      setMapped(bh, inode, run, iblock - runStart);
      if (run.isNew && !run.delay && bh.b_bdev) clean_bdev_aliases(bh.b_bdev, bh.b_blocknr, 1, bh.b_size);
    }
  }
}

/**
 * block_read_full_folio: read a locked, not-uptodate page buffer by buffer. Holes,
 * unwritten blocks and blocks past i_size are zeroed. The page is unlocked when the last
 * read completes (or at once when nothing needs reading).
 */
export async function block_read_full_folio(page: page, getBlock: GetBlock | BlockMapper): Promise<void> {
  const mapper = toMapper(getBlock);
  const inode = inodeOf(page);
  const blocksize = 1 << inode.i_blkbits;
  const bhs = page_buffers(page) ?? create_empty_buffers(page, blocksize);
  const first = page.index * 2 ** (PAGE_SHIFT - inode.i_blkbits);
  const lastBlock = Math.ceil(inode.i_size / blocksize);
  try {
    await mapPageBuffers(inode, page, bhs, mapper, false, (i) => !bhs[i]!.test(BH_Uptodate), lastBlock);
  } catch (e) {
    end_page_read(page, false);
    throw e;
  }
  const toRead: buffer_head[] = [];
  for (let i = 0; i < bhs.length; i++) {
    const bh = bhs[i]!;
    if (bh.test(BH_Uptodate)) continue;
    if (!bh.test(BH_Mapped) || bh.test(BH_Unwritten) || first + i >= lastBlock) {
      /* a hole, an unwritten extent or past EOF: zeros, and nothing to read */
      bh.b_data.fill(0);
      bh.set(BH_Uptodate);
      continue;
    }
    toRead.push(bh);
  }
  if (!toRead.length) {
    end_page_read(page, bhs.every((b) => b.test(BH_Uptodate)));
    return;
  }
  /* mark them all first: a completion must not see the page finished early */
  for (const bh of toRead) {
    await lock_buffer(bh);
    bh.set(BH_Async_Read);
  }
  for (const bh of toRead) {
    if (bh.test(BH_Uptodate)) { end_buffer_async_read(bh, true); continue; }
    bh.b_end_io = end_buffer_async_read;
    await submit_bh(REQ_OP_READ, bh);
  }
}

/* ---- writing pages ---- */

/**
 * A locked page about to be written: the part past `iSize` is zeroed (it is never written
 * as data). A page wholly past it (a truncate raced with writeback) is dropped and unlocked
 * instead, and false says there is nothing to write.
 */
export function zeroPastEof(page: page, iSize: number): boolean {
  const endIndex = Math.floor(iSize / PAGE_SIZE);
  const tail = iSize % PAGE_SIZE;
  if (page.index > endIndex || (page.index === endIndex && tail === 0)) {
    block_invalidate_folio(page, 0, PAGE_SIZE);
    unlock_page(page);
    return false;
  }
  if (page.index === endIndex) page.data.fill(0, tail);
  return true;
}

/**
 * __block_write_full_folio: write the dirty buffers of a locked page whose dirty bit the
 * caller cleared for I/O (the writepage contract). Blocks without a mapping are allocated;
 * the part of the page past i_size is zeroed and not written. The page is unlocked with
 * PG_writeback set; writeback ends when the last buffer's write completes.
 */
export async function block_write_full_page(page: page, getBlock: GetBlock | BlockMapper, wbc: writeback_control): Promise<void> {
  const mapper = toMapper(getBlock);
  const inode = inodeOf(page);
  const bits = inode.i_blkbits;
  const blocksize = 1 << bits;
  const iSize = inode.i_size;
  if (!zeroPastEof(page, iSize)) return;
  const bhs = page_buffers(page) ?? create_empty_buffers(page, blocksize, BH_Dirty | BH_Uptodate);
  if (bhs[0]!.b_size !== blocksize) {
    // Buffers made at another size than the inode's block size (a filesystem that did not
    // call sb_set_blocksize): the EOF arithmetic below would silently drop dirty buffers.
    // Refuse loudly instead; the page stays dirty and fsync reports EIO.
    set_page_dirty(page);
    unlock_page(page);
    (page.mapping as address_space).wb_err = EIO;
    throw new Error(`BUG: block_write_full_page: ${bhs[0]!.b_size}-byte buffers on an inode of ${blocksize}-byte blocks`);
  }
  const first = page.index * 2 ** (PAGE_SHIFT - bits);
  const lastBlock = Math.floor((iSize - 1) / blocksize);
  for (let i = 0; i < bhs.length; i++) {
    if (first + i > lastBlock) { bhs[i]!.clear(BH_Dirty); bhs[i]!.set(BH_Uptodate); }
  }
  try {
    await mapPageBuffers(inode, page, bhs, mapper, true, (i) => bhs[i]!.test(BH_Dirty), lastBlock + 1);
  } catch (e) {
    /* could not allocate: keep the page dirty for a later attempt, report the error */
    set_page_dirty(page);
    unlock_page(page);
    (page.mapping as address_space).wb_err = (e as { errno?: number }).errno ?? EIO;
    throw e;
  }
  const toWrite: buffer_head[] = [];
  for (const bh of bhs) {
    if (!bh.test(BH_Mapped) || !bh.test(BH_Dirty)) continue;
    bh.clear(BH_New);
    if (wbc.sync_mode === 'none') {
      if (!trylock_buffer(bh)) { set_page_dirty(page); continue; }
    } else await lock_buffer(bh);
    if (bh.testClear(BH_Dirty)) { bh.set(BH_Async_Write); toWrite.push(bh); }
    else unlock_buffer(bh);
  }
  set_page_writeback(page);
  unlock_page(page);
  if (!toWrite.length) { end_page_writeback(page); return; }
  const opf = REQ_OP_WRITE | (wbc.sync_mode === 'all' ? REQ_SYNC : 0);
  for (const bh of toWrite) {
    bh.b_end_io = end_buffer_async_write;
    await submit_bh(opf, bh);
  }
}

/**
 * __block_write_begin + block_write_begin: the page covering [pos, pos+len), locked, with
 * its buffers mapped (allocating with create) and the blocks the write only partly covers
 * read in — or zeroed when they are new. Throws (page released) on failure.
 */
export async function block_write_begin(m: address_space, pos: number, len: number, getBlock: GetBlock | BlockMapper): Promise<page> {
  // Not zero-filled: every byte of a buffer is read, zeroed or overwritten before the buffer
  // is uptodate, and writeback zeroes what lies past EOF.
  const page = await find_or_create_page(m, Math.floor(pos / PAGE_SIZE), false);
  try {
    if (page.test(PG_writeback)) await wait_on_page_writeback(page);
    await block_prepare_write(page, pos % PAGE_SIZE, (pos % PAGE_SIZE) + len, toMapper(getBlock));
  } catch (e) {
    unlock_page(page);
    put_page(page);
    throw e;
  }
  return page;
}

/** __block_write_begin_int on a locked page, for bytes [from, to) of it. */
export async function block_prepare_write(page: page, from: number, to: number, getBlock: GetBlock | BlockMapper): Promise<void> {
  const mapper = toMapper(getBlock);
  const inode = inodeOf(page);
  const blocksize = 1 << inode.i_blkbits;
  const bhs = page_buffers(page) ?? create_empty_buffers(page, blocksize);
  const uptodate = page.test(PG_uptodate);
  const touched = (i: number) => i * blocksize < to && (i + 1) * blocksize > from;
  let unmapped = false;
  for (let i = 0; i < bhs.length && !unmapped; i++) unmapped = touched(i) && !bhs[i]!.test(BH_Mapped);
  if (unmapped) await mapPageBuffers(inode, page, bhs, mapper, true, touched);
  const toRead: buffer_head[] = [];
  for (let i = 0; i < bhs.length; i++) {
    const bh = bhs[i]!;
    const start = i * blocksize, end = start + blocksize;
    if (!touched(i)) { if (uptodate) bh.set(BH_Uptodate); continue; }
    if (!bh.test(BH_Mapped)) throw err(EIO, `get_block(create) left block ${i} of page ${page.index} unmapped`);
    if (bh.test(BH_New) || bh.test(BH_Unwritten)) {
      if (uptodate) {
        bh.clear(BH_New);
        bh.set(BH_Uptodate);
        mark_buffer_dirty(bh);
        continue;
      }
      /* a fresh block: what the write does not cover must read as zeros */
      if (end > to) page.data.fill(0, Math.max(to, start), end);
      if (start < from) page.data.fill(0, start, Math.min(from, end));
      continue;
    }
    if (uptodate) { bh.set(BH_Uptodate); continue; }
    if (!bh.test(BH_Uptodate) && (start < from || end > to)) toRead.push(bh);
  }
  /* read what the write only partly covers, all at once, then wait */
  for (const bh of toRead) {
    await lock_buffer(bh);
    if (bh.test(BH_Uptodate)) { unlock_buffer(bh); continue; }
    get_bh(bh);
    bh.b_end_io = end_buffer_read_sync;
    await submit_bh(REQ_OP_READ, bh);
  }
  for (const bh of toRead) {
    await wait_on_buffer(bh);
    if (!bh.test(BH_Uptodate)) throw err(EIO);
  }
}

/**
 * block_write_end + generic_write_end: the copied bytes are in the page; mark their buffers
 * uptodate and dirty, the page uptodate when all of it is, grow i_size, unlock and release
 * the page. Returns `copied`.
 */
export async function generic_write_end(m: address_space, pos: number, len: number, copied: number, page: page): Promise<number> {
  const inode = m.host;
  const from = pos % PAGE_SIZE;
  if (copied < len && !page.test(PG_uptodate)) copied = 0;
  block_commit_write(page, from, from + copied);
  let grew = false;
  if (pos + copied > inode.i_size) { inode.i_size = pos + copied; grew = true; }
  unlock_page(page);
  put_page(page);
  if (grew) await mark_inode_dirty(inode, I_DIRTY_SYNC | I_DIRTY_DATASYNC);
  return copied;
}

/** __block_commit_write: buffers in [from, to) uptodate and dirty; page uptodate if all are. */
export function block_commit_write(page: page, from: number, to: number): void {
  const bhs = page_buffers(page);
  if (!bhs) { page.set(PG_uptodate); set_page_dirty(page); return; }
  let partial = false;
  for (const bh of bhs) {
    const start = bh.b_offset, end = start + bh.b_size;
    if (end <= from || start >= to) {
      if (!bh.test(BH_Uptodate)) partial = true;
    } else {
      bh.set(BH_Uptodate);
      mark_buffer_dirty(bh);
    }
    bh.clear(BH_New);
  }
  if (!partial) page.set(PG_uptodate);
}

/**
 * block_truncate_page: after a truncate to `from`, zero the rest of the block that
 * contains it (the page cache beyond is dropped by the caller; this block stays).
 */
export async function block_truncate_page(m: address_space, from: number, getBlock: GetBlock | BlockMapper): Promise<void> {
  const inode = m.host;
  const blocksize = 1 << inode.i_blkbits;
  const offset = from % blocksize;
  if (!offset) return;
  const mapper = toMapper(getBlock);
  const page = await find_or_create_page(m, Math.floor(from / PAGE_SIZE));
  try {
    const bhs = page_buffers(page) ?? create_empty_buffers(page, blocksize);
    const pageOff = from % PAGE_SIZE;
    const i = Math.floor(pageOff / blocksize);
    const bh = bhs[i]!;
    if (!bh.test(BH_Mapped)) {
      const map = await mapper(inode, page.index * 2 ** (PAGE_SHIFT - inode.i_blkbits) + i, 1, false);
      if (!map.mapped) return;   /* a hole reads as zeros already */
      setMapped(bh, inode, map, 0);
    }
    if (page.test(PG_uptodate)) bh.set(BH_Uptodate);
    if (bh.test(BH_Unwritten)) { bh.b_data.fill(0); bh.set(BH_Uptodate); }
    if (!bh.test(BH_Uptodate)) {
      await lock_buffer(bh);
      if (!bh.test(BH_Uptodate)) await bhReadLocked(bh);
      else unlock_buffer(bh);
    }
    page.data.fill(0, pageOff, (i + 1) * blocksize);
    mark_buffer_dirty(bh);
  } finally {
    unlock_page(page);
    put_page(page);
  }
}

/** generic_block_bmap: the physical block of file block `block` (0 for a hole). */
export async function generic_block_bmap(m: address_space, block: number, getBlock: GetBlock | BlockMapper): Promise<number> {
  const map = await toMapper(getBlock)(m.host, block, 1, false);
  return map.mapped ? map.pblk : 0;
}

/* ---- releasing buffers ---- */

function bufferBusy(bh: buffer_head): boolean {
  return bh.b_count > 0 || (bh.b_state & (BH_Dirty | BH_Lock)) !== 0;
}

/** try_to_free_buffers (release_folio): detach the page's buffers unless one is in use. */
export function try_to_free_buffers(page: page): boolean {
  const bhs = page_buffers(page);
  if (!bhs) return true;
  if (page.test(PG_writeback)) return false;
  if (bhs.some(bufferBusy)) return false;
  for (const bh of bhs) removeAssoc(bh);
  detachBuffers(page);
  return true;
}

/**
 * block_invalidate_folio: bytes [offset, offset+length) of the page are going away
 * (truncate): their buffers lose their dirty state and mapping; when the whole page goes,
 * its buffers are detached.
 */
export function block_invalidate_folio(page: page, offset: number, length: number): void {
  const bhs = page_buffers(page);
  if (!bhs) return;
  const stop = offset + length;
  for (const bh of bhs) {
    if (bh.b_offset >= offset && bh.b_offset + bh.b_size <= stop) {
      bh.b_state &= BH_Lock;   /* discard_buffer: keep only a lock holder's bit */
      removeAssoc(bh);
    }
  }
  if (offset === 0 && length >= PAGE_SIZE) {
    if (bhs.some((b) => b.b_count > 0)) debug()?.(`invalidate: page ${page.index} buffers still referenced`);
    detachBuffers(page);
  }
}

/** invalidate_bdev: drop the clean cached blocks of a device (dirty ones stay). */
export function invalidate_bdev(bdev: block_device): number {
  return invalidate_mapping_pages(bdev.bd_inode.i_mapping);
}

export { bitsOf as blocksizeBits };
