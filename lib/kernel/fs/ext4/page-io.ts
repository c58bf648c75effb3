/*
 * Writing file pages (fs/ext4/page-io.c): the dirty, mapped buffers of a run of pages go
 * out in as few bios as their blocks allow — a bio grows while each next buffer's block
 * follows the last one's on the disk, and is submitted when one does not (or when it is
 * full). block_write_full_page's way, a bio per buffer merged later by the request queue,
 * costs a bio, a submission and a merge for every block of a long sequential write.
 *
 * ext4_bio_write_folio takes a locked page whose dirty bit the caller cleared for I/O and
 * whose dirty buffers all have blocks (ext4_do_writepages sends other pages the generic
 * way); it leaves the page unlocked under writeback, which ends when the bio holding its
 * last buffer completes (end_buffer_async_write). Pure kernel code.
 */
import { BH_Async_Write, BH_Delay, BH_Dirty, BH_Mapped, BH_New, BH_Uptodate, BLK_STS_OK, REQ_OP_WRITE, REQ_SYNC, SECTOR_SIZE, type bio } from '../../include/blk.js';
import type { inode, writeback_control } from '../../include/fs.js';
import type { page } from '../../mm/page_alloc.js';
import { PAGE_SIZE, end_page_writeback, set_page_writeback, unlock_page } from '../../mm/filemap.js';
import { set_page_dirty } from '../fs-writeback.js';
import { bio_add_page, bio_alloc, submit_bio } from '../../block/bio.js';
import {
  end_buffer_async_write, lock_buffer, page_buffers, trylock_buffer, unlock_buffer, zeroPastEof, type buffer_head,
} from '../buffer.js';

/** struct ext4_io_submit: the bio being built, the block that would continue it, and full bios to send. */
export interface ext4_io_submit {
  io_wbc: writeback_control;
  io_bio: bio | null;
  io_next_block: number;
  io_full: bio[];
}

export function ext4_io_submit_init(wbc: writeback_control): ext4_io_submit {
  return { io_wbc: wbc, io_bio: null, io_next_block: -1, io_full: [] };
}

/** ext4_end_bio: every buffer of the bio is written (or failed). IRQ context. */
function ext4_end_bio(bio: bio): void {
  const ok = bio.bi_status === BLK_STS_OK;
  for (const bh of bio.bi_private as buffer_head[]) end_buffer_async_write(bh, ok);
}

/** Send the bios that are full. */
async function io_submit_full(io: ext4_io_submit): Promise<void> {
  while (io.io_full.length) await submit_bio(io.io_full.shift()!);
}

/** ext4_io_submit: send the bio being built, if any (and any full one before it). */
export async function ext4_io_submit(io: ext4_io_submit): Promise<void> {
  const bio = io.io_bio;
  io.io_bio = null;
  io.io_next_block = -1;
  if (bio) io.io_full.push(bio);
  await io_submit_full(io);
}

/**
 * io_submit_add_bh: append `bh` to the bio being built; a bio that it does not continue,
 * or that is full, is set aside for submission and another started. Does not sleep.
 */
function io_submit_add_bh(io: ext4_io_submit, bh: buffer_head): void {
  if (io.io_bio && bh.b_blocknr !== io.io_next_block) { io.io_full.push(io.io_bio); io.io_bio = null; }
  for (;;) {
    if (!io.io_bio) {
      const opf = REQ_OP_WRITE | (io.io_wbc.sync_mode === 'all' ? REQ_SYNC : 0);
      io.io_bio = bio_alloc(bh.b_bdev!, opf, bh.b_blocknr * (bh.b_size / SECTOR_SIZE));
      io.io_bio.bi_private = [] as buffer_head[];
      io.io_bio.bi_end_io = ext4_end_bio;
    }
    if (bio_add_page(io.io_bio, bh.b_page, bh.b_size, bh.b_offset)) break;
    io.io_full.push(io.io_bio);
    io.io_bio = null;
  }
  (io.io_bio.bi_private as buffer_head[]).push(bh);
  io.io_next_block = bh.b_blocknr + 1;
}

/** True if every dirty buffer of the page has a block (the page can go by ext4_bio_write_folio). */
export function ext4_page_buffers_mapped(page: page, blocksize: number): boolean {
  const bhs = page_buffers(page);
  if (!bhs || bhs[0]!.b_size !== blocksize) return false;
  for (const bh of bhs) if (bh.test(BH_Dirty) && (!bh.test(BH_Mapped) || bh.test(BH_Delay))) return false;
  return true;
}

/**
 * ext4_bio_write_folio: add the dirty buffers of a locked page (dirty bit cleared for I/O,
 * every dirty buffer mapped) to the bio being built. The part past i_size is zeroed and
 * not written; a page wholly past it (a truncate raced with writeback) is dropped.
 */
export async function ext4_bio_write_folio(io: ext4_io_submit, inode: inode, page: page): Promise<void> {
  const iSize = inode.i_size;
  if (!zeroPastEof(page, iSize)) return;
  const bhs = page_buffers(page)!;
  const bsize = bhs[0]!.b_size;
  const toWrite: buffer_head[] = [];
  for (let i = 0; i < bhs.length; i++) {
    const bh = bhs[i]!;
    if (page.index * PAGE_SIZE + i * bsize >= iSize) { bh.b_state = (bh.b_state & ~BH_Dirty) | BH_Uptodate; continue; }
    if (!bh.test(BH_Dirty)) continue;
    bh.clear(BH_New);
    if (!trylock_buffer(bh)) {
      if (io.io_wbc.sync_mode === 'none') { set_page_dirty(page); continue; }
      await lock_buffer(bh);
    }
    if (bh.testClear(BH_Dirty)) { bh.set(BH_Async_Write); toWrite.push(bh); }
    else unlock_buffer(bh);
  }
  set_page_writeback(page);
  unlock_page(page);
  if (!toWrite.length) { end_page_writeback(page); return; }
  /* every buffer is marked before any goes out: the page's writeback ends with its last */
  for (const bh of toWrite) io_submit_add_bh(io, bh);
  if (io.io_full.length) await io_submit_full(io);
}
