/*
 * Whole pages of contiguous blocks in one bio (fs/mpage.c): mpage_readahead and
 * mpage_read_folio for reads, mpage_writepages for writeback. Block mapping goes through
 * the filesystem's get_block (buffer.ts has the buffer-head side and falls back there).
 */
import {
  BH_Delay, BH_Dirty, BH_Lock, BH_Mapped, BH_New, BH_Unwritten, BH_Uptodate, BH_Write_EIO, BLK_STS_OK, REQ_OP_READ,
  REQ_OP_WRITE, REQ_SYNC, SECTOR_SIZE, type bio, type GetBlock,
} from '../include/blk.js';
import type { address_space, writeback_control } from '../include/fs.js';
import {
  PAGE_SHIFT, PAGE_SIZE, PG_dirty, PG_locked, PG_uptodate, PG_writeback, get_page, put_page, type page,
} from '../mm/page_alloc.js';
import {
  end_page_read, end_page_writeback, lock_page, set_page_writeback, trylock_page, unlock_page, wait_on_page_writeback,
} from '../mm/filemap.js';
import { clear_page_dirty_for_io } from './fs-writeback.js';
import { bio_add_page, bio_alloc, submit_bio } from '../block/bio.js';
import {
  type BlockMap, type BlockMapper, block_read_full_folio, block_write_full_page, clean_bdev_aliases, debug, inodeOf,
  page_buffers, toMapper,
} from './buffer.js';

/* ---- mpage: whole pages of contiguous blocks in one bio ---- */

interface MpageReadState {
  bio: bio | null;
  /** Next physical block the current bio would continue with. */
  nextPblk: number;
  run: BlockMap | null;
  runStart: number;
}

function mpage_end_io(bio: bio): void {
  const ok = bio.bi_status === BLK_STS_OK;
  for (const v of bio.bi_io_vec) end_page_read(v.page, ok);
}

async function mpageSubmit(st: { bio: bio | null }): Promise<void> {
  const bio = st.bio;
  st.bio = null;
  if (bio) await submit_bio(bio);
}

/** do_mpage_readpage: one page; falls back to block_read_full_folio when the page is not simple. */
async function do_mpage_readpage(st: MpageReadState, page: page, mapper: BlockMapper): Promise<void> {
  const inode = inodeOf(page);
  const bits = inode.i_blkbits;
  const blocksize = 1 << bits;
  const perPage = PAGE_SIZE >>> bits;
  const first = page.index * 2 ** (PAGE_SHIFT - bits);
  const lastBlock = Math.ceil(inode.i_size / blocksize);
  if (page_buffers(page)) { await mpageSubmit(st); return block_read_full_folio(page, mapper); }
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
  if (!contiguous) { await mpageSubmit(st); return block_read_full_folio(page, mapper); }
  if (firstHole === 0) {
    page.data.fill(0);
    end_page_read(page, true);
    return;
  }
  if (firstHole !== perPage) page.data.fill(0, firstHole << bits);
  const bdev = inode.i_bdev ?? inode.i_sb.s_bdev!;
  const len = firstHole << bits;
  if (st.bio && st.nextPblk !== pblk0) await mpageSubmit(st);
  if (st.bio && !bio_add_page(st.bio, page, len, 0)) await mpageSubmit(st);
  if (!st.bio) {
    st.bio = bio_alloc(bdev, REQ_OP_READ, pblk0 * (blocksize / SECTOR_SIZE));
    st.bio.bi_end_io = mpage_end_io;
    bio_add_page(st.bio, page, len, 0);
  }
  st.nextPblk = pblk0 + firstHole;
  /* a page that ends in a hole ends the bio: the next page's blocks are not adjacent */
  if (firstHole !== perPage) await mpageSubmit(st);
}

/** mpage_readahead: read locked, not-uptodate pages (ascending index), merging contiguous blocks. */
export async function mpage_readahead(pages: page[], getBlock: GetBlock | BlockMapper): Promise<void> {
  const mapper = toMapper(getBlock);
  const st: MpageReadState = { bio: null, nextPblk: -1, run: null, runStart: 0 };
  const sorted = [...pages].sort((a, b) => a.index - b.index);
  let prev = -2;
  for (const page of sorted) {
    if (page.index !== prev + 1) await mpageSubmit(st);
    prev = page.index;
    try {
      await do_mpage_readpage(st, page, mapper);
    } catch (e) {
      debug()?.(`mpage_readahead: page ${page.index}: ${(e as Error).message}`);
      if (page.test(PG_locked)) end_page_read(page, false);
    }
  }
  await mpageSubmit(st);
}

/** mpage_read_folio: one page, through the same path. */
export async function mpage_read_folio(page: page, getBlock: GetBlock | BlockMapper): Promise<void> {
  await mpage_readahead([page], getBlock);
}

/** The dirty pages of the writeback range, in index order (the tagged walk of writepages). */
export function dirty_pages_in_range(m: address_space, wbc: writeback_control): page[] {
  const first = Math.floor(wbc.range_start / PAGE_SIZE);
  const last = wbc.range_end === Infinity ? Infinity : Math.floor(wbc.range_end / PAGE_SIZE);
  return [...m.pages.values()].filter((p) => p.index >= first && p.index <= last && p.test(PG_dirty))
    .sort((a, b) => a.index - b.index);
}

/** mpage_data's write side: the bio being built and the block that would continue it. */
interface MpageWriteState {
  bio: bio | null;
  last_block_in_bio: number;
}

/** mpage_write_end_io: every page of the bio is written (or failed). IRQ context. */
function mpage_write_end_io(bio: bio): void {
  const failed = bio.bi_status !== BLK_STS_OK;
  for (const v of bio.bi_io_vec) {
    const bhs = page_buffers(v.page);
    if (bhs) for (const bh of bhs) { if (failed) { bh.set(BH_Write_EIO); bh.clear(BH_Uptodate); } }
    end_page_writeback(v.page, failed);
  }
}

/**
 * __mpage_writepage: a locked page whose dirty bit was cleared for I/O goes into the bio
 * being built as one whole-page segment when it is simple — wholly inside i_size, every
 * buffer dirty, uptodate and mapped, the blocks consecutive on the disk. Anything else
 * ("confused") is written by block_write_full_page, buffer by buffer. Returns false when
 * the page was not taken (the caller falls back).
 */
async function __mpage_writepage(st: MpageWriteState, page: page, wbc: writeback_control, mapper: BlockMapper): Promise<boolean> {
  const inode = inodeOf(page);
  if ((page.index + 1) * PAGE_SIZE > inode.i_size) return false;
  const bits = inode.i_blkbits;
  const blocksize = 1 << bits;
  const perPage = PAGE_SIZE / blocksize;
  const bhs = page_buffers(page);
  let first: number;
  if (bhs) {
    if (bhs[0]!.b_size !== blocksize) return false;
    first = bhs[0]!.b_blocknr;
    for (let i = 0; i < bhs.length; i++) {
      const bh = bhs[i]!;
      if ((bh.b_state & (BH_Mapped | BH_Dirty | BH_Uptodate)) !== (BH_Mapped | BH_Dirty | BH_Uptodate) ||
        bh.b_state & (BH_Delay | BH_Unwritten | BH_Lock) || bh.b_blocknr !== first + i) return false;
    }
  } else {
    /* a page without buffers (written whole, nobh): map its blocks, one run for the page */
    if (!page.test(PG_uptodate)) return false;
    // A mapping error is the buffer path's to handle ("confused", as Linux's goto confused):
    // block_write_full_page unlocks the page and reports it. Thrown from here, the page
    // stayed locked and the next truncate or unmount waited on it for ever (fuzz: fat12
    // seed 472, a cluster size that put the file's blocks past its chain).
    const map = await mapper(inode, page.index * perPage, perPage, true).catch(() => null);
    if (!map) return false;
    if (!map.mapped || map.delay || map.unwritten || map.len < perPage) return false;
    first = map.pblk;
    if (map.isNew && inode.i_sb.s_bdev) clean_bdev_aliases(inode.i_sb.s_bdev, first, perPage, blocksize);
  }
  if (st.bio && st.last_block_in_bio !== first - 1) await mpage_write_submit(st);
  for (;;) {
    if (!st.bio) {
      st.bio = bio_alloc(inode.i_bdev ?? inode.i_sb.s_bdev!, REQ_OP_WRITE | (wbc.sync_mode === 'all' ? REQ_SYNC : 0), first * (blocksize / SECTOR_SIZE));
      st.bio.bi_end_io = mpage_write_end_io;
    }
    if (bio_add_page(st.bio, page, PAGE_SIZE, 0)) break;
    await mpage_write_submit(st);
  }
  /* clean_buffers: the page's buffers are what the bio writes */
  if (bhs) for (const bh of bhs) bh.b_state &= ~(BH_Dirty | BH_New);
  set_page_writeback(page);
  unlock_page(page);
  st.last_block_in_bio = first + perPage - 1;
  return true;
}

async function mpage_write_submit(st: MpageWriteState): Promise<void> {
  const bio = st.bio;
  st.bio = null;
  st.last_block_in_bio = -1;
  if (bio) await submit_bio(bio);
}

/**
 * mpage_writepages: every dirty page in the range, in index order — simple pages of
 * consecutive blocks share bios (__mpage_writepage), the others go buffer by buffer
 * (block_write_full_page, whose per-buffer bios the request queue merges).
 */
export async function mpage_writepages(m: address_space, wbc: writeback_control, getBlock: GetBlock | BlockMapper): Promise<void> {
  const pages = dirty_pages_in_range(m, wbc);
  const mapper = toMapper(getBlock);
  const st: MpageWriteState = { bio: null, last_block_in_bio: -1 };
  let error: unknown = null;
  try {
    for (const p of pages) {
      if (wbc.nr_to_write <= 0) break;
      get_page(p);
      try {
        if (!trylock_page(p)) {
          if (wbc.sync_mode === 'none') continue;
          await mpage_write_submit(st);
          await lock_page(p);
        }
        if (p.mapping !== m || !p.test(PG_dirty)) { unlock_page(p); continue; }
        if (p.test(PG_writeback)) {
          if (wbc.sync_mode === 'none') { unlock_page(p); continue; }
          await mpage_write_submit(st);
          await wait_on_page_writeback(p);
        }
        if (!clear_page_dirty_for_io(p)) { unlock_page(p); continue; }
        try {
          if (!(await __mpage_writepage(st, p, wbc, mapper))) {
            await mpage_write_submit(st);
            await block_write_full_page(p, getBlock, wbc);
          }
        } catch (e) { error ??= e; }
        wbc.nr_to_write--;
      } finally { put_page(p); }
    }
  } finally {
    await mpage_write_submit(st);
  }
  if (error) throw error;
}
