/*
 * Bios (block/bio.c and the submit_bio entry of blk-core.c): building a bio within the
 * queue's limits, submitting it against a whole disk or a partition, and waiting for it.
 *
 * A filesystem gives bi_sector relative to bi_bdev (its partition); submit_bio checks the
 * bio against that partition and remaps it onto the whole disk (bio_check_eod +
 * blk_partition_remap) before the request queue sees it. A bio that fails those checks, or
 * writes to a read-only device, ends with BLK_STS_IOERR without reaching the driver.
 *
 * Completion: bi_end_io runs in IRQ context (from the device's interrupt) and must not
 * sleep; submit_bio_wait is the sleeping form for callers that want the result now, and
 * throws the errno (EIO for an I/O error).
 */
import { pr_err, pr_warn } from '../kernel/printk.js';
import { completion } from '../kernel/wait.js';
import { err } from '../include/errno.js';
import { ENOMEM } from '../include/uapi.js';
import {
  BLK_STS_IOERR, BLK_STS_OK, bio, REQ_OP_FLUSH, REQ_OP_WRITE, REQ_PREFLUSH, REQ_SYNC, SECTOR_SIZE,
  type block_device,
} from '../include/blk.js';
import { alloc_page, put_page, PAGE_SIZE, type page } from '../mm/page_alloc.js';
import { BIO_MAX_VECS, bio_endio, blk_mq_submit_bio, blk_status_to_errno, op_is_write } from './blk-core.js';
import { bdevQueue, bdevDisk } from './bdev.js';

export { bio, bio_endio as bioEndio, blk_status_to_errno as blkStatusToErrno };

/** bio_alloc: an empty bio for `bdev` with operation and flags `opf`. */
export function bio_alloc(bdev: block_device, opf: number, sector = 0): bio {
  const b = new bio(bdev);
  b.bi_opf = opf;
  b.bi_sector = sector;
  return b;
}

/**
 * bio_add_page: append a segment if the bio stays within one request's limits (segments
 * and sectors of its queue). False means "full": submit it and start another. Segments
 * that continue the previous one in the same page are folded into it.
 */
export function bio_add_page(bio: bio, page: page, len: number, offset: number): boolean {
  const q = bdevQueue(bio.bi_bdev);
  const last = bio.bi_io_vec[bio.bi_io_vec.length - 1];
  if (Math.floor((bio.bi_size + len) / SECTOR_SIZE) > q.max_sectors) return false;
  if (last && last.page === page && last.offset + last.len === offset) {
    last.len += len;
    bio.bi_size += len;
    return true;
  }
  if (bio.bi_io_vec.length >= Math.min(q.max_segments, BIO_MAX_VECS)) return false;
  bio.addPage(page, len, offset);
  return true;
}

const remapped = new WeakSet<bio>();
const roWarned = new WeakSet<block_device>();

/**
 * submit_bio: check and remap, then hand the bio to its disk's request queue. May sleep
 * while the queue is full; returns when the bio is queued, not when it is done.
 */
export async function submit_bio(bio: bio): Promise<void> {
  const bdev = bio.bi_bdev;
  const disk = bdevDisk(bdev);
  const op = bio.op;
  if (remapped.has(bio)) throw new Error('submit_bio: bio submitted twice');
  remapped.add(bio);
  if (disk.dead) { bio_endio(bio, BLK_STS_IOERR); return; }
  const emptyFlush = op === REQ_OP_FLUSH || (op === REQ_OP_WRITE && bio.bi_size === 0 && (bio.bi_opf & REQ_PREFLUSH) !== 0);
  if (op_is_write(op) && !emptyFlush && bdev.bd_read_only) {
    /* Linux only warns here; lkl-ts refuses, so that a read-only image is never written
     * even by a filesystem bug (the host half would refuse too). */
    if (!roWarned.has(bdev)) {
      roWarned.add(bdev);
      pr_warn(`blk: trying to write to read-only block device ${bdev.bd_name}`);
    }
    bio_endio(bio, BLK_STS_IOERR);
    return;
  }
  if (!emptyFlush) {
    const nr = Math.floor(bio.bi_size / SECTOR_SIZE);
    if (bio.bi_size % disk.logical_block_size !== 0 || bio.bi_sector % (disk.logical_block_size / SECTOR_SIZE) !== 0) {
      pr_err(`blk: ${bdev.bd_name}: misaligned I/O: sector ${bio.bi_sector} + ${bio.bi_size} bytes`);
      bio_endio(bio, BLK_STS_IOERR);
      return;
    }
    /* bio_check_eod */
    if (!Number.isSafeInteger(bio.bi_sector) || bio.bi_sector < 0 || bio.bi_sector + nr > bdev.bd_nr_sectors) {
      pr_err(`blk: attempt to access beyond end of device ${bdev.bd_name}: sector ${bio.bi_sector} + ${nr} > ${bdev.bd_nr_sectors}`);
      bio_endio(bio, BLK_STS_IOERR);
      return;
    }
    /* blk_partition_remap */
    bio.bi_sector += bdev.bd_start_sect;
  }
  await blk_mq_submit_bio(disk.queue, bio);
}

/** submit_bio_wait: submit and sleep until done; throws the errno of a failure. */
export async function submit_bio_wait(bio: bio): Promise<void> {
  const done = new completion();
  const prev = bio.bi_end_io;
  bio.bi_end_io = (b) => { done.complete(); if (prev) prev(b); };
  await submit_bio(bio);
  await done.wait();
  if (bio.bi_status !== BLK_STS_OK) throw err(blk_status_to_errno(bio.bi_status));
}

/** blkdev_issue_flush: make completed writes durable (a FLUSH when the disk has a cache). */
export async function blkdev_issue_flush(bdev: block_device): Promise<void> {
  const bio = bio_alloc(bdev, REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC);
  await submit_bio_wait(bio);
}

/**
 * Read or write `count` 512-byte sectors at `sector` of `bdev` into/out of `buf`, through
 * freshly allocated pages (not the page cache): for callers below the page cache, such as
 * partition scanning. Throws EIO on failure.
 */
export async function bdev_rw_sectors(bdev: block_device, op: number, sector: number, buf: Uint8Array): Promise<void> {
  const pages: page[] = [];
  try {
    let bio = bio_alloc(bdev, op, sector);
    const bios = [bio];
    for (let off = 0; off < buf.length; off += PAGE_SIZE) {
      const p = alloc_page();
      if (!p) throw err(ENOMEM);
      pages.push(p);
      const n = Math.min(PAGE_SIZE, buf.length - off);
      if (op === REQ_OP_WRITE) p.data.set(buf.subarray(off, off + n));
      if (!bio_add_page(bio, p, n, 0)) {
        bio = bio_alloc(bdev, op, sector + Math.floor(off / SECTOR_SIZE));
        bios.push(bio);
        bio_add_page(bio, p, n, 0);
      }
    }
    for (const b of bios) await submit_bio_wait(b);
    if (op !== REQ_OP_WRITE) {
      for (let i = 0; i < pages.length; i++) {
        const off = i * PAGE_SIZE;
        buf.set(pages[i]!.data.subarray(0, Math.min(PAGE_SIZE, buf.length - off)), off);
      }
    }
  } finally {
    for (const p of pages) put_page(p);
  }
}
