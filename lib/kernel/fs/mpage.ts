/*
 * Whole pages of contiguous blocks in one bio (fs/mpage.c): mpage_readahead and
 * mpage_read_folio for reads, mpage_writepages for writeback. Block mapping goes through
 * the filesystem's get_block (buffer.ts has the buffer-head side and falls back there).
 */
import { BLK_STS_OK, REQ_OP_READ, SECTOR_SIZE, type Bio, type GetBlock } from '../include/blk.js';
import type { address_space, writeback_control } from '../include/fs.js';
import {
  PAGE_SHIFT, PAGE_SIZE, PG_dirty, PG_locked, PG_writeback, get_page, put_page, type Page,
} from '../mm/page_alloc.js';
import {
  end_page_read, lock_page, trylock_page, unlock_page, wait_on_page_writeback,
} from '../mm/filemap.js';
import { clear_page_dirty_for_io } from './fs-writeback.js';
import { bio_add_page, bio_alloc, submit_bio } from '../block/bio.js';
import {
  type BlockMap, type BlockMapper, block_read_full_folio, block_write_full_page, debug, inodeOf,
  page_buffers, toMapper,
} from './buffer.js';

/* ---- mpage: whole pages of contiguous blocks in one bio ---- */

interface MpageReadState {
  bio: Bio | null;
  /** Next physical block the current bio would continue with. */
  nextPblk: number;
  run: BlockMap | null;
  runStart: number;
}

function mpage_end_io(bio: Bio): void {
  const ok = bio.bi_status === BLK_STS_OK;
  for (const v of bio.bi_io_vec) end_page_read(v.page, ok);
}

async function mpageSubmit(st: { bio: Bio | null }): Promise<void> {
  const bio = st.bio;
  st.bio = null;
  if (bio) await submit_bio(bio);
}

/** do_mpage_readpage: one page; falls back to block_read_full_folio when the page is not simple. */
async function do_mpage_readpage(st: MpageReadState, page: Page, mapper: BlockMapper): Promise<void> {
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
export async function mpage_readahead(pages: Page[], getBlock: GetBlock | BlockMapper): Promise<void> {
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
export async function mpage_read_folio(page: Page, getBlock: GetBlock | BlockMapper): Promise<void> {
  await mpage_readahead([page], getBlock);
}

/** The dirty pages of the writeback range, in index order (the tagged walk of writepages). */
export function dirty_pages_in_range(m: address_space, wbc: writeback_control): Page[] {
  const first = Math.floor(wbc.range_start / PAGE_SIZE);
  const last = wbc.range_end === Infinity ? Infinity : Math.floor(wbc.range_end / PAGE_SIZE);
  return [...m.pages.values()].filter((p) => p.index >= first && p.index <= last && p.test(PG_dirty))
    .sort((a, b) => a.index - b.index);
}

/**
 * mpage_writepages (in effect): hand every dirty page in the range to block_write_full_page,
 * in index order. The request queue merges the per-buffer bios of consecutive blocks into
 * large requests (they queue up until this thread sleeps), which is what mpage's one big
 * bio buys in Linux.
 */
export async function mpage_writepages(m: address_space, wbc: writeback_control, getBlock: GetBlock | BlockMapper): Promise<void> {
  const pages = dirty_pages_in_range(m, wbc);
  let error: unknown = null;
  for (const p of pages) {
    if (wbc.nr_to_write <= 0) break;
    get_page(p);
    try {
      if (wbc.sync_mode === 'none') { if (!trylock_page(p)) continue; } else await lock_page(p);
      if (p.mapping !== m || !p.test(PG_dirty)) { unlock_page(p); continue; }
      if (p.test(PG_writeback)) {
        if (wbc.sync_mode === 'none') { unlock_page(p); continue; }
        await wait_on_page_writeback(p);
      }
      if (!clear_page_dirty_for_io(p)) { unlock_page(p); continue; }
      try { await block_write_full_page(p, getBlock, wbc); } catch (e) { error ??= e; }
      wbc.nr_to_write--;
    } finally { put_page(p); }
  }
  if (error) throw error;
}

