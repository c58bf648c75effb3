/*
 * Buffer heads (fs/buffer.c, fs/mpage.c): blocks of a block device or of a file, seen
 * through the page cache. This is what filesystems build on; read it before writing one.
 *
 * 1. Metadata: buffers over the block device's page cache
 *    A block of `size` bytes (512..PAGE_SIZE, a power of two: the fs block size set with
 *    sbSetBlocksize) lives in the page of bdev.bd_inode's mapping that covers its bytes; the
 *    page's private field holds one BufferHead per block (page.private: BufferHead[]).
 *    - getblk(bdev, block, size)  the buffer, with a reference, not necessarily read
 *    - bread / sbBread(sb, block) the buffer read in (throws EIO); brelse(bh) when done
 *    - bhUptodateOrLock + bhReadLocked, bhReadahead / sbBreadahead (no wait)
 *    - markBufferDirty(bh)        after changing bh.b_data; written by writeback or by
 *    - syncDirtyBuffer(bh)        write now and wait (throws EIO); writeDirtyBuffer (no wait)
 *    - markBufferDirtyInode(bh, inode) + syncMappingBuffers(inode.i_mapping): metadata
 *      buffers belonging to an inode (indirect blocks, directory blocks of a non-journalled
 *      fs) that fsync of that inode must write (generic_file_fsync calls it)
 *    - lockBuffer / unlockBuffer / waitOnBuffer, submitBh(opf, bh) for custom I/O
 *      (b_end_io runs in IRQ context, must not sleep)
 *    - invalidateBdev(bdev) drops clean cached blocks (after the fs is unmounted)
 *    Reference counting: every getblk/bread/sbBread is paired with one brelse. A buffer
 *    with references, dirty or locked keeps its page in memory.
 *
 * 2. File data: the generic address-space helpers over a filesystem's get_block
 *    A filesystem describes where its file blocks are with a GetBlock (include/blk.ts):
 *    getBlock(inode, iblock, maxBlocks, create) → { pblk (0 = hole), len, isNew, unwritten }.
 *    With these its address_space_operations are one-liners:
 *      readpage   → mpageReadpage(page, getBlock)       (or blockReadFullPage)
 *      readahead  → mpageReadahead(pages, getBlock)     (contiguous blocks, one bio)
 *      writepage  → blockWriteFullPage(page, getBlock, wbc)
 *      writepages → mpageWritepages(mapping, wbc, getBlock)
 *      write_begin→ blockWriteBegin(mapping, pos, len, getBlock)
 *      write_end  → genericWriteEnd(mapping, pos, len, copied, page)
 *      bmap       → genericBlockBmap(mapping, block, getBlock)
 *      invalidate_folio / release_folio → blockInvalidateFolio / tryToFreeBuffers
 *    and truncation uses blockTruncatePage(mapping, from, getBlock) to zero the tail of the
 *    last block. Holes, unwritten blocks and blocks past i_size read as zeros; newly
 *    allocated blocks (isNew) are zeroed where a write does not cover them; a partial write
 *    into an existing block reads it first.
 *
 * Context: everything here runs in kernel threads and may sleep, except the end_io
 * handlers (IRQ context). Pages handed to readpage/writepage are locked, as the page cache
 * contract in include/fs.ts says.
 */
import { pr_err } from '../kernel/printk.js';
import { WaitQueueHead, sleepOn } from '../kernel/wait.js';
import { host } from '../arch/cpu.js';
import { err } from '../include/errno.js';
import { EINVAL, EIO } from '../include/uapi.js';
import {
  BH_Async_Read, BH_Async_Write, BH_Dirty, BH_Lock, BH_Mapped, BH_New, BH_Req, BH_Unwritten,
  BH_Uptodate, BH_Write_EIO, BLK_STS_OK, REQ_OP_MASK, REQ_OP_READ, REQ_OP_WRITE, REQ_SYNC,
  SECTOR_SIZE, type Bio, type BlockDevice, type GetBlock, type MappedBlock,
} from '../include/blk.js';
import type { AddressSpace, Inode, SuperBlock, WritebackControl } from '../include/fs.js';
import { I_DIRTY_DATASYNC, I_DIRTY_SYNC } from '../include/fs.js';
import { PAGE_SHIFT, PAGE_SIZE, PG_dirty, PG_locked, PG_private, PG_uptodate, PG_writeback, getPage, putPage, type Page } from '../mm/page_alloc.js';
import {
  endPageRead, endPageWriteback, findGetPage, findOrCreatePage, invalidateMappingPages, lockPage,
  setPageWriteback, trylockPage, unlockPage, waitOnPageWriteback,
} from '../mm/filemap.js';
import { clearPageDirtyForIo, markInodeDirty, setPageDirty } from './fs-writeback.js';
import { bioAddPage, bioAlloc, submitBio } from '../block/bio.js';

/** struct buffer_head. */
export class BufferHead {
  b_state = 0;
  /** Block number on b_bdev, in units of b_size (valid when BH_Mapped). */
  b_blocknr = -1;
  b_bdev: BlockDevice | null = null;
  /** References (get_bh / brelse). */
  b_count = 0;
  /** I/O completion, IRQ context: `uptodate` false on error. */
  b_end_io: ((bh: BufferHead, uptodate: boolean) => void) | null = null;
  /** Owner's private data (jbd2's journal head, ...). */
  b_private: unknown = null;
  /** The inode mapping this metadata buffer was dirtied for (mark_buffer_dirty_inode). */
  b_assoc_map: AddressSpace | null = null;
  /** The block's bytes: a view into the page frame. */
  readonly b_data: Uint8Array;
  /** Waiters for BH_Lock, created on first use. */
  wq: WaitQueueHead | null = null;
  constructor(readonly b_page: Page, readonly b_offset: number, readonly b_size: number) {
    this.b_data = b_page.data.subarray(b_offset, b_offset + b_size);
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

const debug = () => host().debug?.('lkl:block:buffer');

/* ---- buffer state helpers ---- */

export function getBh(bh: BufferHead): BufferHead { bh.b_count++; return bh; }
export function putBh(bh: BufferHead): void {
  if (bh.b_count <= 0) { pr_err(`BUG: buffer ${bh.b_blocknr}: put with count ${bh.b_count}`); return; }
  bh.b_count--;
}
/** brelse: drop a reference (null is fine). */
export function brelse(bh: BufferHead | null | undefined): void { if (bh) putBh(bh); }
export const bforget = brelse;

export function pageBuffers(page: Page): BufferHead[] | null {
  return (page.private as BufferHead[] | null) ?? null;
}
function attachBuffers(page: Page, bhs: BufferHead[]): void {
  page.private = bhs;
  page.set(PG_private);
}
function detachBuffers(page: Page): void {
  page.private = null;
  page.clear(PG_private);
}

/** lock_buffer: sleeping bit lock. */
export async function lockBuffer(bh: BufferHead): Promise<void> {
  while (bh.test(BH_Lock)) await sleepOn(bh.wq ??= new WaitQueueHead());
  bh.set(BH_Lock);
}
export function trylockBuffer(bh: BufferHead): boolean {
  if (bh.test(BH_Lock)) return false;
  bh.set(BH_Lock);
  return true;
}
/** unlock_buffer: safe from IRQ context (I/O completion). */
export function unlockBuffer(bh: BufferHead): void {
  bh.clear(BH_Lock);
  bh.wq?.wakeUpAll();
}
export async function waitOnBuffer(bh: BufferHead): Promise<void> {
  while (bh.test(BH_Lock)) await sleepOn(bh.wq ??= new WaitQueueHead());
}

/**
 * Record a write error on the buffer and the mappings whose fsync must report it
 * (mark_buffer_write_io_error).
 */
function markBufferWriteIoError(bh: BufferHead): void {
  bh.set(BH_Write_EIO);
  const m = bh.b_page.mapping as AddressSpace | null;
  if (m) m.wb_err = EIO;
  if (bh.b_assoc_map) bh.b_assoc_map.wb_err = EIO;
}

function bufferIoError(bh: BufferHead, what: string): void {
  pr_err(`Buffer I/O error on dev ${bh.b_bdev?.bd_name ?? '?'}, logical block ${bh.b_blocknr}, ${what}`);
}

/* ---- I/O on one buffer ---- */

/**
 * submit_bh: one bio for the buffer. The caller holds the buffer lock and has set
 * b_end_io; b_end_io runs in IRQ context.
 */
export async function submitBh(opf: number, bh: BufferHead): Promise<void> {
  if (!bh.b_bdev || !bh.test(BH_Mapped)) throw new Error(`submit_bh of unmapped buffer (block ${bh.b_blocknr})`);
  if (!bh.test(BH_Lock)) throw new Error('submit_bh of unlocked buffer');
  const op = opf & REQ_OP_MASK;
  if (op === REQ_OP_WRITE && bh.test(BH_Write_EIO)) bh.clear(BH_Write_EIO);
  bh.set(BH_Req);
  const bio = bioAlloc(bh.b_bdev, opf, bh.b_blocknr * (bh.b_size / SECTOR_SIZE));
  bio.addPage(bh.b_page, bh.b_size, bh.b_offset);
  bio.bi_private = bh;
  bio.bi_end_io = (b: Bio) => {
    const h = b.bi_private as BufferHead;
    if (h.b_end_io) h.b_end_io(h, b.bi_status === BLK_STS_OK);
  };
  await submitBio(bio);
}

/** end_buffer_read_sync: for a submitter that waits. */
export function endBufferReadSync(bh: BufferHead, uptodate: boolean): void {
  if (uptodate) bh.set(BH_Uptodate); else bh.clear(BH_Uptodate);
  unlockBuffer(bh);
  putBh(bh);
}
/** end_buffer_write_sync. */
export function endBufferWriteSync(bh: BufferHead, uptodate: boolean): void {
  if (uptodate) bh.set(BH_Uptodate);
  else {
    bufferIoError(bh, 'lost sync page write');
    markBufferWriteIoError(bh);
    bh.clear(BH_Uptodate);
  }
  unlockBuffer(bh);
  putBh(bh);
}

/** Read a locked buffer and wait (__bh_read with wait). Throws EIO; the buffer ends unlocked. */
export async function bhReadLocked(bh: BufferHead, opf = 0): Promise<void> {
  getBh(bh);
  bh.b_end_io = endBufferReadSync;
  await submitBh(REQ_OP_READ | opf, bh);
  await waitOnBuffer(bh);
  if (!bh.test(BH_Uptodate)) throw err(EIO);
}

/** bh_uptodate_or_lock: true if uptodate; otherwise returns false with the buffer locked. */
export async function bhUptodateOrLock(bh: BufferHead): Promise<boolean> {
  if (bh.test(BH_Uptodate)) return true;
  await lockBuffer(bh);
  if (bh.test(BH_Uptodate)) { unlockBuffer(bh); return true; }
  return false;
}

/** bh_read: make the buffer uptodate (reading it if needed). Throws EIO. */
export async function bhRead(bh: BufferHead): Promise<void> {
  if (await bhUptodateOrLock(bh)) return;
  await bhReadLocked(bh);
}

/** bh_readahead: start reading if not uptodate and not busy; do not wait. */
export async function bhReadahead(bh: BufferHead, opf = 0): Promise<void> {
  if (bh.test(BH_Uptodate) || !trylockBuffer(bh)) return;
  if (bh.test(BH_Uptodate)) { unlockBuffer(bh); return; }
  getBh(bh);
  bh.b_end_io = endBufferReadSync;
  await submitBh(REQ_OP_READ | opf, bh);
}

/* ---- the block device's cache ---- */

/** Blocks of `size` in one page, and log2(size). */
function bitsOf(size: number): number {
  // bits32: a power-of-two test on a block size, bounded by PAGE_SIZE first
  if (size < 512 || size > PAGE_SIZE || (size & (size - 1))) throw err(EINVAL, `bad block size ${size}`);
  return Math.log2(size);
}

/** create_empty_buffers: `PAGE_SIZE / blocksize` unmapped buffers with state `b_state`. */
export function createEmptyBuffers(page: Page, blocksize: number, b_state = 0): BufferHead[] {
  const bhs: BufferHead[] = [];
  for (let off = 0; off < PAGE_SIZE; off += blocksize) {
    const bh = new BufferHead(page, off, blocksize);
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
function bdevPageBuffers(bdev: BlockDevice, page: Page, size: number): BufferHead[] {
  let bhs = pageBuffers(page);
  if (bhs && bhs[0]!.b_size !== size) {
    if (!tryToFreeBuffers(page)) {
      throw err(EIO, `${bdev.bd_name}: block size ${size} requested on a page with busy ${bhs[0]!.b_size}-byte buffers`);
    }
    bhs = null;
  }
  if (!bhs) bhs = createEmptyBuffers(page, size);
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
export async function getblk(bdev: BlockDevice, block: number, size: number): Promise<BufferHead> {
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
  const cached = findGetPage(m, index);
  if (cached) {
    const bhs = pageBuffers(cached);
    if (bhs && bhs[0]!.b_size === size) {
      const bh = bhs[block - index * blocksPerPage]!;
      getBh(bh);
      putPage(cached);
      return bh;
    }
    putPage(cached);
  }
  const page = await findOrCreatePage(m, index);
  try {
    const bhs = bdevPageBuffers(bdev, page, size);
    return getBh(bhs[block - index * blocksPerPage]!);
  } finally {
    unlockPage(page);
    putPage(page);
  }
}
export const sbGetblk = (sb: SuperBlock, block: number) => getblk(sbBdev(sb), block, sb.s_blocksize);

function bdevLogicalBlockSize(bdev: BlockDevice): number {
  return (bdev as unknown as { logicalBlockSize?: number }).logicalBlockSize ?? 512;
}

/** __bread: the buffer read in, with a reference. Throws EIO (after a kernel message). */
export async function bread(bdev: BlockDevice, block: number, size: number): Promise<BufferHead> {
  const bh = await getblk(bdev, block, size);
  if (bh.test(BH_Uptodate)) return bh;
  try {
    await bhRead(bh);
  } catch (e) {
    brelse(bh);
    pr_err(`${bdev.bd_name}: unable to read block ${block}`);
    throw e;
  }
  return bh;
}

function sbBdev(sb: SuperBlock): BlockDevice {
  if (!sb.s_bdev) throw err(EINVAL, `${sb.s_id}: no block device`);
  return sb.s_bdev;
}
/** sb_bread: block `block` of the filesystem's device in its block size. */
export function sbBread(sb: SuperBlock, block: number): Promise<BufferHead> {
  return bread(sbBdev(sb), block, sb.s_blocksize);
}
/** sb_breadahead: start reading a block that will be needed soon. */
export async function sbBreadahead(sb: SuperBlock, block: number): Promise<void> {
  let bh: BufferHead;
  try { bh = await getblk(sbBdev(sb), block, sb.s_blocksize); } catch { return; }
  try { await bhReadahead(bh); } finally { brelse(bh); }
}

/* ---- dirtying and writing buffers ---- */

/** mark_buffer_dirty: the buffer (which must be uptodate) and its page are dirty. */
export function markBufferDirty(bh: BufferHead): void {
  if (!bh.test(BH_Uptodate)) pr_err(`BUG: mark_buffer_dirty of a buffer that is not uptodate (block ${bh.b_blocknr})`);
  if (bh.test(BH_Dirty)) return;
  bh.set(BH_Dirty);
  if (bh.b_page.mapping) setPageDirty(bh.b_page);
}

/** mark_buffer_dirty_inode: dirty, and written by fsync of `inode` (syncMappingBuffers). */
export function markBufferDirtyInode(bh: BufferHead, inode: Inode): void {
  markBufferDirty(bh);
  const m = inode.i_mapping;
  if (bh.b_assoc_map !== m) {
    if (bh.b_assoc_map) removeAssoc(bh);
    bh.b_assoc_map = m;
    m.private_list.push(bh);
  }
  /* the inode must be visited by writeback/fsync for its buffers to be written */
  void markInodeDirty(inode, I_DIRTY_DATASYNC);
}

function removeAssoc(bh: BufferHead): void {
  const m = bh.b_assoc_map;
  if (!m) return;
  const i = m.private_list.indexOf(bh);
  if (i >= 0) m.private_list.splice(i, 1);
  bh.b_assoc_map = null;
}

/** mark_buffer_async_write's completion (end_buffer_async_write): page writeback ends with the last buffer. */
function endBufferAsyncWrite(bh: BufferHead, uptodate: boolean): void {
  const page = bh.b_page;
  if (uptodate) bh.set(BH_Uptodate);
  else {
    bufferIoError(bh, 'lost async page write');
    markBufferWriteIoError(bh);
    bh.clear(BH_Uptodate);
  }
  bh.clear(BH_Async_Write);
  unlockBuffer(bh);
  const bhs = pageBuffers(page);
  if (bhs && bhs.some((b) => b.test(BH_Async_Write))) return;
  const failed = bhs ? bhs.some((b) => b.test(BH_Write_EIO)) : !uptodate;
  endPageWriteback(page, failed);
}

/** end_buffer_async_read: the page is done (and unlocked) when its last buffer is. */
function endBufferAsyncRead(bh: BufferHead, uptodate: boolean): void {
  const page = bh.b_page;
  if (uptodate) bh.set(BH_Uptodate);
  else { bh.clear(BH_Uptodate); bufferIoError(bh, 'async page read'); }
  bh.clear(BH_Async_Read);
  unlockBuffer(bh);
  const bhs = pageBuffers(page);
  if (bhs && bhs.some((b) => b.test(BH_Async_Read))) return;
  endPageRead(page, !bhs || bhs.every((b) => b.test(BH_Uptodate)));
}

/**
 * write_dirty_buffer: start writing the buffer if it is dirty; do not wait. The write
 * completes through end_buffer_write_sync (so a later waitOnBuffer + uptodate check tells).
 */
export async function writeDirtyBuffer(bh: BufferHead, opf = 0): Promise<void> {
  await lockBuffer(bh);
  if (!bh.testClear(BH_Dirty)) { unlockBuffer(bh); return; }
  getBh(bh);
  bh.b_end_io = endBufferWriteSync;
  await submitBh(REQ_OP_WRITE | opf, bh);
}

/** sync_dirty_buffer: write the buffer now if dirty and wait; throws EIO on failure. */
export async function syncDirtyBuffer(bh: BufferHead, opf = REQ_SYNC): Promise<void> {
  await lockBuffer(bh);
  if (!bh.testClear(BH_Dirty)) { unlockBuffer(bh); return; }
  getBh(bh);
  bh.b_end_io = endBufferWriteSync;
  await submitBh(REQ_OP_WRITE | opf, bh);
  await waitOnBuffer(bh);
  if (!bh.test(BH_Uptodate)) throw err(EIO);
}

/**
 * sync_mapping_buffers: write and wait for the metadata buffers dirtied for this inode
 * with markBufferDirtyInode. Throws EIO if any write failed (now or earlier).
 */
export async function syncMappingBuffers(m: AddressSpace): Promise<void> {
  const list = m.private_list as BufferHead[];
  if (!list.length) return;
  const bhs = list.splice(0);
  for (const bh of bhs) bh.b_assoc_map = null;
  let failed = false;
  for (const bh of bhs) {
    getBh(bh);
    if (bh.test(BH_Dirty) || bh.test(BH_Lock)) await writeDirtyBuffer(bh, REQ_SYNC);
  }
  for (const bh of bhs) {
    await waitOnBuffer(bh);
    if (!bh.test(BH_Uptodate) || bh.test(BH_Write_EIO)) failed = true;
    putBh(bh);
  }
  if (failed) throw err(EIO);
}

/** Drop the inode's list of associated buffers without writing them (eviction). */
export function invalidateInodeBuffers(inode: Inode): void {
  for (const bh of (inode.i_mapping.private_list as BufferHead[]).splice(0)) bh.b_assoc_map = null;
}

/**
 * clean_bdev_aliases: blocks just allocated to a file may still have buffers in the block
 * device's cache from an earlier life as metadata; if one of those were written back later
 * it would overwrite the new data. Forget their dirtiness.
 */
export function cleanBdevAliases(bdev: BlockDevice, block: number, len: number, blocksize: number): void {
  const m = bdev.bd_inode.i_mapping;
  if (m.pages.size === 0) return;
  const perPage = PAGE_SIZE / blocksize;
  for (let b = block; b < block + len; ) {
    const index = Math.floor(b / perPage);
    const page = m.pages.get(index);
    const pageEnd = (index + 1) * perPage;
    const bhs = page ? pageBuffers(page) : null;
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
interface BlockMap { mapped: boolean; pblk: number; isNew: boolean; unwritten: boolean; len: number }
/** The internal form of get_block; the bdev maps every block onto itself (block 0 included). */
export type BlockMapper = (inode: Inode, iblock: number, maxBlocks: number, create: boolean) => Promise<BlockMap>;

/** A filesystem's GetBlock as a BlockMapper: pblk 0 is a hole. */
export function mapperOf(getBlock: GetBlock): BlockMapper {
  return async (inode, iblock, max, create) => {
    const r: MappedBlock = await getBlock(inode, iblock, max, create);
    const mapped = r.pblk !== 0;
    return { mapped, pblk: r.pblk, isNew: !!r.isNew, unwritten: !!r.unwritten, len: Math.max(1, r.len || 1) };
  };
}
const mappers = new WeakMap<GetBlock, BlockMapper>();
function toMapper(g: GetBlock | BlockMapper): BlockMapper {
  if ((g as { __mapper?: boolean }).__mapper) return g as BlockMapper;
  let m = mappers.get(g as GetBlock);
  if (!m) { m = mapperOf(g as GetBlock); mappers.set(g as GetBlock, m); }
  return m;
}
/** Mark a function as a BlockMapper (the bdev's identity mapping). */
export function asMapper(fn: BlockMapper): BlockMapper { (fn as { __mapper?: boolean }).__mapper = true; return fn; }

function inodeOf(page: Page): Inode {
  const m = page.mapping as AddressSpace | null;
  if (!m) throw new Error('page not in a mapping');
  return m.host;
}

/** Apply a mapping to a buffer; returns false for a hole. */
function setMapped(bh: BufferHead, inode: Inode, map: BlockMap, offsetInRun: number): void {
  bh.b_bdev = inode.i_bdev ?? inode.i_sb.s_bdev;
  bh.b_blocknr = map.pblk + offsetInRun;
  bh.set(BH_Mapped);
  if (map.isNew) bh.set(BH_New);
  if (map.unwritten) bh.set(BH_Unwritten); else bh.clear(BH_Unwritten);
}

/**
 * Map the buffers of a page that are not mapped yet, one get_block call per contiguous run
 * (`create` allocates). Only buffers for which `want(i)` holds are mapped.
 */
async function mapPageBuffers(inode: Inode, page: Page, bhs: BufferHead[], mapper: BlockMapper, create: boolean,
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
      if (run.isNew && bh.b_bdev) cleanBdevAliases(bh.b_bdev, bh.b_blocknr, 1, bh.b_size);
    }
  }
}

/**
 * block_read_full_folio: read a locked, not-uptodate page buffer by buffer. Holes,
 * unwritten blocks and blocks past i_size are zeroed. The page is unlocked when the last
 * read completes (or at once when nothing needs reading).
 */
export async function blockReadFullPage(page: Page, getBlock: GetBlock | BlockMapper): Promise<void> {
  const mapper = toMapper(getBlock);
  const inode = inodeOf(page);
  const blocksize = 1 << inode.i_blkbits;
  const bhs = pageBuffers(page) ?? createEmptyBuffers(page, blocksize);
  const first = page.index * 2 ** (PAGE_SHIFT - inode.i_blkbits);
  const lastBlock = Math.ceil(inode.i_size / blocksize);
  try {
    await mapPageBuffers(inode, page, bhs, mapper, false, (i) => !bhs[i]!.test(BH_Uptodate), lastBlock);
  } catch (e) {
    endPageRead(page, false);
    throw e;
  }
  const toRead: BufferHead[] = [];
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
    endPageRead(page, bhs.every((b) => b.test(BH_Uptodate)));
    return;
  }
  /* mark them all first: a completion must not see the page finished early */
  for (const bh of toRead) {
    await lockBuffer(bh);
    bh.set(BH_Async_Read);
  }
  for (const bh of toRead) {
    if (bh.test(BH_Uptodate)) { endBufferAsyncRead(bh, true); continue; }
    bh.b_end_io = endBufferAsyncRead;
    await submitBh(REQ_OP_READ, bh);
  }
}

/* ---- mpage: whole pages of contiguous blocks in one bio ---- */

interface MpageReadState {
  bio: Bio | null;
  /** Next physical block the current bio would continue with. */
  nextPblk: number;
  run: BlockMap | null;
  runStart: number;
}

function mpageEndRead(bio: Bio): void {
  const ok = bio.bi_status === BLK_STS_OK;
  for (const v of bio.bi_io_vec) endPageRead(v.page, ok);
}

async function mpageSubmit(st: { bio: Bio | null }): Promise<void> {
  const bio = st.bio;
  st.bio = null;
  if (bio) await submitBio(bio);
}

/** do_mpage_readpage: one page; falls back to blockReadFullPage when the page is not simple. */
async function doMpageReadpage(st: MpageReadState, page: Page, mapper: BlockMapper): Promise<void> {
  const inode = inodeOf(page);
  const bits = inode.i_blkbits;
  const blocksize = 1 << bits;
  const perPage = PAGE_SIZE >>> bits;
  const first = page.index * 2 ** (PAGE_SHIFT - bits);
  const lastBlock = Math.ceil(inode.i_size / blocksize);
  if (pageBuffers(page)) { await mpageSubmit(st); return blockReadFullPage(page, mapper); }
  let firstHole = perPage;
  let pblk0 = -1;
  let contiguous = true;
  for (let i = 0; i < perPage; i++) {
    const iblock = first + i;
    let mapped = false, pblk = 0;
    if (iblock < lastBlock) {
      if (!st.run || iblock < st.runStart || iblock >= st.runStart + st.run.len) {
        st.run = await mapper(inode, iblock, Math.max(perPage - i, 1), false);
        st.runStart = iblock;
      }
      if (st.run.mapped && !st.run.unwritten) { mapped = true; pblk = st.run.pblk + (iblock - st.runStart); }
    }
    if (!mapped) { if (firstHole === perPage) firstHole = i; continue; }
    if (firstHole !== perPage) { contiguous = false; break; }   /* data after a hole */
    if (i === 0) pblk0 = pblk;
    else if (pblk !== pblk0 + i) { contiguous = false; break; }
  }
  if (!contiguous) { await mpageSubmit(st); return blockReadFullPage(page, mapper); }
  if (firstHole === 0) {
    page.data.fill(0);
    endPageRead(page, true);
    return;
  }
  if (firstHole !== perPage) page.data.fill(0, firstHole << bits);
  const bdev = inode.i_bdev ?? inode.i_sb.s_bdev!;
  const len = firstHole << bits;
  if (st.bio && st.nextPblk !== pblk0) await mpageSubmit(st);
  if (st.bio && !bioAddPage(st.bio, page, len, 0)) await mpageSubmit(st);
  if (!st.bio) {
    st.bio = bioAlloc(bdev, REQ_OP_READ, pblk0 * (blocksize / SECTOR_SIZE));
    st.bio.bi_end_io = mpageEndRead;
    bioAddPage(st.bio, page, len, 0);
  }
  st.nextPblk = pblk0 + firstHole;
  /* a page that ends in a hole ends the bio: the next page's blocks are not adjacent */
  if (firstHole !== perPage) await mpageSubmit(st);
}

/** mpage_readahead: read locked, not-uptodate pages (ascending index), merging contiguous blocks. */
export async function mpageReadahead(pages: Page[], getBlock: GetBlock | BlockMapper): Promise<void> {
  const mapper = toMapper(getBlock);
  const st: MpageReadState = { bio: null, nextPblk: -1, run: null, runStart: 0 };
  const sorted = [...pages].sort((a, b) => a.index - b.index);
  let prev = -2;
  for (const page of sorted) {
    if (page.index !== prev + 1) await mpageSubmit(st);
    prev = page.index;
    try {
      await doMpageReadpage(st, page, mapper);
    } catch (e) {
      debug()?.(`mpage_readahead: page ${page.index}: ${(e as Error).message}`);
      if (page.test(PG_locked)) endPageRead(page, false);
    }
  }
  await mpageSubmit(st);
}

/** mpage_read_folio: one page, through the same path. */
export async function mpageReadpage(page: Page, getBlock: GetBlock | BlockMapper): Promise<void> {
  await mpageReadahead([page], getBlock);
}

/* ---- writing pages ---- */

/**
 * __block_write_full_folio: write the dirty buffers of a locked page whose dirty bit the
 * caller cleared for I/O (the writepage contract). Blocks without a mapping are allocated;
 * the part of the page past i_size is zeroed and not written. The page is unlocked with
 * PG_writeback set; writeback ends when the last buffer's write completes.
 */
export async function blockWriteFullPage(page: Page, getBlock: GetBlock | BlockMapper, wbc: WritebackControl): Promise<void> {
  const mapper = toMapper(getBlock);
  const inode = inodeOf(page);
  const bits = inode.i_blkbits;
  const blocksize = 1 << bits;
  const iSize = inode.i_size;
  const endIndex = Math.floor(iSize / PAGE_SIZE);
  const tail = iSize % PAGE_SIZE;
  if (page.index > endIndex || (page.index === endIndex && tail === 0)) {
    /* wholly past EOF (truncate raced with writeback): nothing to write */
    blockInvalidateFolio(page, 0, PAGE_SIZE);
    unlockPage(page);
    return;
  }
  if (page.index === endIndex) page.data.fill(0, tail);
  const bhs = pageBuffers(page) ?? createEmptyBuffers(page, blocksize, BH_Dirty | BH_Uptodate);
  if (bhs[0]!.b_size !== blocksize) {
    // Buffers made at another size than the inode's block size (a filesystem that did not
    // call sb_set_blocksize): the EOF arithmetic below would silently drop dirty buffers.
    // Refuse loudly instead; the page stays dirty and fsync reports EIO.
    setPageDirty(page);
    unlockPage(page);
    (page.mapping as AddressSpace).wb_err = EIO;
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
    setPageDirty(page);
    unlockPage(page);
    (page.mapping as AddressSpace).wb_err = (e as { errno?: number }).errno ?? EIO;
    throw e;
  }
  const toWrite: BufferHead[] = [];
  for (const bh of bhs) {
    if (!bh.test(BH_Mapped) || !bh.test(BH_Dirty)) continue;
    bh.clear(BH_New);
    if (wbc.sync_mode === 'none') {
      if (!trylockBuffer(bh)) { setPageDirty(page); continue; }
    } else await lockBuffer(bh);
    if (bh.testClear(BH_Dirty)) { bh.set(BH_Async_Write); toWrite.push(bh); }
    else unlockBuffer(bh);
  }
  setPageWriteback(page);
  unlockPage(page);
  if (!toWrite.length) { endPageWriteback(page); return; }
  const opf = REQ_OP_WRITE | (wbc.sync_mode === 'all' ? REQ_SYNC : 0);
  for (const bh of toWrite) {
    bh.b_end_io = endBufferAsyncWrite;
    await submitBh(opf, bh);
  }
}

/**
 * mpage_writepages (in effect): hand every dirty page in the range to blockWriteFullPage,
 * in index order. The request queue merges the per-buffer bios of consecutive blocks into
 * large requests (they queue up until this thread sleeps), which is what mpage's one big
 * bio buys in Linux.
 */
export async function mpageWritepages(m: AddressSpace, wbc: WritebackControl, getBlock: GetBlock | BlockMapper): Promise<void> {
  const first = Math.floor(wbc.range_start / PAGE_SIZE);
  const last = wbc.range_end === Infinity ? Infinity : Math.floor(wbc.range_end / PAGE_SIZE);
  const pages = [...m.pages.values()].filter((p) => p.index >= first && p.index <= last && p.test(PG_dirty))
    .sort((a, b) => a.index - b.index);
  let error: unknown = null;
  for (const p of pages) {
    if (wbc.nr_to_write <= 0) break;
    getPage(p);
    try {
      if (wbc.sync_mode === 'none') { if (!trylockPage(p)) continue; } else await lockPage(p);
      if (p.mapping !== m || !p.test(PG_dirty)) { unlockPage(p); continue; }
      if (p.test(PG_writeback)) {
        if (wbc.sync_mode === 'none') { unlockPage(p); continue; }
        await waitOnPageWriteback(p);
      }
      if (!clearPageDirtyForIo(p)) { unlockPage(p); continue; }
      try { await blockWriteFullPage(p, getBlock, wbc); } catch (e) { error ??= e; }
      wbc.nr_to_write--;
    } finally { putPage(p); }
  }
  if (error) throw error;
}

/**
 * __block_write_begin + block_write_begin: the page covering [pos, pos+len), locked, with
 * its buffers mapped (allocating with create) and the blocks the write only partly covers
 * read in — or zeroed when they are new. Throws (page released) on failure.
 */
export async function blockWriteBegin(m: AddressSpace, pos: number, len: number, getBlock: GetBlock | BlockMapper): Promise<Page> {
  const page = await findOrCreatePage(m, Math.floor(pos / PAGE_SIZE));
  try {
    await waitOnPageWriteback(page);
    await blockPrepareWrite(page, pos % PAGE_SIZE, (pos % PAGE_SIZE) + len, toMapper(getBlock));
  } catch (e) {
    unlockPage(page);
    putPage(page);
    throw e;
  }
  return page;
}

/** __block_write_begin_int on a locked page, for bytes [from, to) of it. */
export async function blockPrepareWrite(page: Page, from: number, to: number, getBlock: GetBlock | BlockMapper): Promise<void> {
  const mapper = toMapper(getBlock);
  const inode = inodeOf(page);
  const blocksize = 1 << inode.i_blkbits;
  const bhs = pageBuffers(page) ?? createEmptyBuffers(page, blocksize);
  const uptodate = page.test(PG_uptodate);
  const touched = (i: number) => i * blocksize < to && (i + 1) * blocksize > from;
  await mapPageBuffers(inode, page, bhs, mapper, true, touched);
  const toRead: BufferHead[] = [];
  for (let i = 0; i < bhs.length; i++) {
    const bh = bhs[i]!;
    const start = i * blocksize, end = start + blocksize;
    if (!touched(i)) { if (uptodate) bh.set(BH_Uptodate); continue; }
    if (!bh.test(BH_Mapped)) throw err(EIO, `get_block(create) left block ${i} of page ${page.index} unmapped`);
    if (bh.test(BH_New) || bh.test(BH_Unwritten)) {
      if (uptodate) {
        bh.clear(BH_New);
        bh.set(BH_Uptodate);
        markBufferDirty(bh);
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
    await lockBuffer(bh);
    if (bh.test(BH_Uptodate)) { unlockBuffer(bh); continue; }
    getBh(bh);
    bh.b_end_io = endBufferReadSync;
    await submitBh(REQ_OP_READ, bh);
  }
  for (const bh of toRead) {
    await waitOnBuffer(bh);
    if (!bh.test(BH_Uptodate)) throw err(EIO);
  }
}

/**
 * block_write_end + generic_write_end: the copied bytes are in the page; mark their buffers
 * uptodate and dirty, the page uptodate when all of it is, grow i_size, unlock and release
 * the page. Returns `copied`.
 */
export async function genericWriteEnd(m: AddressSpace, pos: number, len: number, copied: number, page: Page): Promise<number> {
  const inode = m.host;
  const from = pos % PAGE_SIZE;
  if (copied < len && !page.test(PG_uptodate)) copied = 0;
  blockCommitWrite(page, from, from + copied);
  let grew = false;
  if (pos + copied > inode.i_size) { inode.i_size = pos + copied; grew = true; }
  unlockPage(page);
  putPage(page);
  if (grew) await markInodeDirty(inode, I_DIRTY_SYNC | I_DIRTY_DATASYNC);
  return copied;
}

/** __block_commit_write: buffers in [from, to) uptodate and dirty; page uptodate if all are. */
export function blockCommitWrite(page: Page, from: number, to: number): void {
  const bhs = pageBuffers(page);
  if (!bhs) { page.set(PG_uptodate); setPageDirty(page); return; }
  let partial = false;
  for (const bh of bhs) {
    const start = bh.b_offset, end = start + bh.b_size;
    if (end <= from || start >= to) {
      if (!bh.test(BH_Uptodate)) partial = true;
    } else {
      bh.set(BH_Uptodate);
      markBufferDirty(bh);
    }
    bh.clear(BH_New);
  }
  if (!partial) page.set(PG_uptodate);
}

/**
 * block_truncate_page: after a truncate to `from`, zero the rest of the block that
 * contains it (the page cache beyond is dropped by the caller; this block stays).
 */
export async function blockTruncatePage(m: AddressSpace, from: number, getBlock: GetBlock | BlockMapper): Promise<void> {
  const inode = m.host;
  const blocksize = 1 << inode.i_blkbits;
  const offset = from % blocksize;
  if (!offset) return;
  const mapper = toMapper(getBlock);
  const page = await findOrCreatePage(m, Math.floor(from / PAGE_SIZE));
  try {
    const bhs = pageBuffers(page) ?? createEmptyBuffers(page, blocksize);
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
      await lockBuffer(bh);
      if (!bh.test(BH_Uptodate)) await bhReadLocked(bh);
      else unlockBuffer(bh);
    }
    page.data.fill(0, pageOff, (i + 1) * blocksize);
    markBufferDirty(bh);
  } finally {
    unlockPage(page);
    putPage(page);
  }
}

/** generic_block_bmap: the physical block of file block `block` (0 for a hole). */
export async function genericBlockBmap(m: AddressSpace, block: number, getBlock: GetBlock | BlockMapper): Promise<number> {
  const map = await toMapper(getBlock)(m.host, block, 1, false);
  return map.mapped ? map.pblk : 0;
}

/* ---- releasing buffers ---- */

function bufferBusy(bh: BufferHead): boolean {
  return bh.b_count > 0 || (bh.b_state & (BH_Dirty | BH_Lock)) !== 0;
}

/** try_to_free_buffers (release_folio): detach the page's buffers unless one is in use. */
export function tryToFreeBuffers(page: Page): boolean {
  const bhs = pageBuffers(page);
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
export function blockInvalidateFolio(page: Page, offset: number, length: number): void {
  const bhs = pageBuffers(page);
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
export function invalidateBdev(bdev: BlockDevice): number {
  return invalidateMappingPages(bdev.bd_inode.i_mapping);
}

export { bitsOf as blocksizeBits };
