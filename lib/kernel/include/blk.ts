/*
 * Block layer objects (include/linux/blk_types.h, blkdev.h, buffer_head.h): the contract
 * between filesystems, the block layer (lib/kernel/block) and block drivers
 * (lib/kernel/drivers/block/virtio_blk.ts).
 * Sectors are 512 bytes as in Linux, whatever the device's logical block size.
 */
import type { page } from '../mm/page_alloc.js';
import type { inode } from './fs.js';

export const SECTOR_SHIFT = 9, SECTOR_SIZE = 512;

/* req_op and req_flag_bits */
export const REQ_OP_READ = 0, REQ_OP_WRITE = 1, REQ_OP_FLUSH = 2, REQ_OP_DISCARD = 3,
  REQ_OP_WRITE_ZEROES = 9;
export const REQ_SYNC = 1 << 8, REQ_META = 1 << 9, REQ_PRIO = 1 << 10, REQ_FUA = 1 << 17,
  REQ_PREFLUSH = 1 << 18, REQ_RAHEAD = 1 << 19;
export const REQ_OP_MASK = 0xff;

/* blk_status_t */
export const BLK_STS_OK = 0, BLK_STS_NOTSUPP = 1, BLK_STS_IOERR = 10, BLK_STS_RESOURCE = 9,
  BLK_STS_NOSPC = 3, BLK_STS_MEDIUM = 7;

export interface bio_vec { page: page; offset: number; len: number }

export class bio {
  bi_opf = REQ_OP_READ;
  /** Start sector relative to the whole disk after partition remapping (the fs gives it relative to bi_bdev). */
  bi_sector = 0;
  readonly bi_io_vec: bio_vec[] = [];
  bi_size = 0;
  bi_status = BLK_STS_OK;
  /** Completion callback: runs in IRQ context, must not sleep. */
  bi_end_io: ((bio: bio) => void) | null = null;
  bi_private: unknown = null;
  constructor(public bi_bdev: block_device) {}
  get op(): number { return this.bi_opf & REQ_OP_MASK; }
  addPage(page: page, len: number, offset: number): void {
    this.bi_io_vec.push({ page, offset, len });
    this.bi_size += len;
  }
}

/** What a block driver offers the block layer (struct blk_mq_ops + queue limits, reduced). */
export interface BlockDriver {
  readonly name: string;
  /** Capacity in 512-byte sectors. */
  capacity(): number;
  logical_block_size: number;
  readOnly: boolean;
  /** Max bios in flight (queue depth) and max segments per request. */
  queue_depth: number;
  max_segments: number;
  max_sectors: number;
  /** Whether FLUSH is meaningful (write cache) and whether DISCARD / WRITE_ZEROES work. */
  flush: boolean;
  discard: boolean;
  writeZeroes: boolean;
  /**
   * Start a request made of one or more contiguous bios (merged by the block layer).
   * Must not sleep; completion calls `done(status)` later, in IRQ context.
   * Returns false if the device is busy (no ring space): retried after a completion.
   */
  queue_rq(rq: request, done: (status: number) => void): boolean;
}

/**
 * struct request (include/linux/blk-mq.h): bios merged into one contiguous device operation.
 * The driver reads op, flags, sector, nr_sectors and bios; the rest is the block layer's.
 */
export class request {
  op: number;
  flags: number;
  sector: number;
  nr_sectors: number;
  bios: bio[] = [];
  nr_phys_segments = 0;
  /** Counts against the queue depth (requests of the flush machinery do not). */
  readonly tagged: boolean;
  /** May bios still be merged into it? (only before dispatch, never flushes or FUA data) */
  mergeable: boolean;
  /** Completion: ends the bios, or steps a flush sequence (set by whoever makes the request). Runs in IRQ context. */
  end!: (status: number) => void;
  constructor(op: number, flags: number, sector: number, nrSectors: number, tagged: boolean) {
    this.op = op; this.flags = flags; this.sector = sector; this.nr_sectors = nrSectors;
    this.tagged = tagged;
    this.mergeable = tagged && (op === REQ_OP_READ || op === REQ_OP_WRITE);
  }
}

/** struct gendisk + struct block_device (a whole disk or one partition). */
export interface block_device {
  readonly bd_dev: number;
  /** "vda", "vda1" */
  readonly bd_name: string;
  readonly bd_partno: number;
  /** First sector on the whole disk, and size in sectors. */
  readonly bd_start_sect: number;
  readonly bd_nr_sectors: number;
  /** The block device inode whose page cache holds buffer-head pages. */
  readonly bd_inode: inode;
  /** Soft block size for buffer heads (set_blocksize). */
  bd_block_size: number;
  readonly bd_read_only: boolean;
  /** The whole-disk device (itself for a disk). */
  readonly bd_contains: block_device;
  /** Exclusive claim by a mounted filesystem. */
  bd_holder: unknown;
}

/* buffer head state bits */
export const BH_Uptodate = 1 << 0, BH_Dirty = 1 << 1, BH_Lock = 1 << 2, BH_Req = 1 << 3,
  BH_Mapped = 1 << 5, BH_New = 1 << 6, BH_Async_Read = 1 << 7, BH_Async_Write = 1 << 8,
  BH_Delay = 1 << 9, BH_Boundary = 1 << 10, BH_Write_EIO = 1 << 11, BH_Unwritten = 1 << 12,
  BH_JBD = 1 << 16;

/** Result of a filesystem's get_block: where logical block `iblock` of an inode lives. */
export interface MappedBlock {
  /** Physical block number, or 0 for a hole (only when create is false). */
  pblk: number;
  /** How many consecutive blocks from iblock map contiguously (>= 1 when mapped). */
  len: number;
  /** Newly allocated (must be zeroed if not fully written). */
  isNew?: boolean;
  /** Allocated but unwritten (reads as zeros). */
  unwritten?: boolean;
}
/** get_block_t: map (and with create, allocate) up to maxBlocks blocks from iblock. */
export type GetBlock = (inode: inode, iblock: number, maxBlocks: number, create: boolean) => Promise<MappedBlock>;
