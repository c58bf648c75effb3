/*
 * Block devices as the rest of the kernel sees them (block/bdev.c, block/fops.c): one
 * block_device per whole disk and per partition, each with its own inode (bd_inode) in an
 * internal "bdev" filesystem whose page cache holds the device's blocks. Buffer heads
 * (fs/buffer.ts) live on those pages, so metadata read with sb_bread and bytes read through
 * /dev/vdaN are the same cached pages.
 *
 * Here: the address-space operations of a block device (over buffer heads, like Linux's
 * def_blk_aops), its file operations (read/write/fsync/llseek on /dev/vdaN), opening and
 * exclusive claiming (mount), set_blocksize, sync_blockdev, and the registry from device
 * numbers to devices that the VFS consults (fs/devices.ts).
 *
 * Read-only devices behave as on Linux: opening /dev/vda O_RDWR works, write(2) fails with
 * EPERM (blkdev_write_iter), and a read-write mount is refused with EACCES
 * (setup_bdev_super); the bio layer refuses any write bio as well.
 */
import { pr_err, pr_warn } from '../kernel/printk.js';
import { INIT_CORE, initcall } from '../arch/setup.js';
import { err, isErrno } from '../include/errno.js';
import {
  EACCES, EBUSY, EINVAL, ENOSPC, ENXIO, EOPNOTSUPP, EPERM, O_EXCL, S_IFBLK, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE,
  SEEK_SET,
} from '../include/uapi.js';
import type { block_device as BlockDeviceIface } from '../include/blk.js';
import {
  file, inode, SB_NOATIME, SB_RDONLY, super_block, type address_space_operations, type file_operations,
  type file_system_type, type writeback_control,
} from '../include/fs.js';
import type { page } from '../mm/page_alloc.js';
import { PAGE_SIZE } from '../mm/page_alloc.js';
import { filemap_read, generic_file_write_iter, invalidate_mapping_pages, truncate_inode_pages } from '../mm/filemap.js';
import { filemap_write_and_wait_range, setBlockHooks } from '../fs/fs-writeback.js';
import { registerBlkdevFops } from '../fs/devices.js';
import { asMapper, block_invalidate_folio, block_read_full_folio, block_write_begin, block_write_full_page, generic_write_end, sync_mapping_buffers, try_to_free_buffers, type BlockMapper } from '../fs/buffer.js';
import { mpage_readahead, mpage_writepages } from '../fs/mpage.js';
import { blkdev_issue_flush } from './bio.js';
import type { gendisk } from './genhd.js';
import type { request_queue } from './blk-core.js';

/* ---- the bdev pseudo filesystem ---- */

const bdevFsType: file_system_type = {
  name: 'bdev',
  fs_flags: 0,
  async fill_super(): Promise<void> { /* never mounted */ },
};
let bdevSb: super_block | null = null;
function blockdevSuperblock(): super_block {
  if (bdevSb) return bdevSb;
  const sb = new super_block(bdevFsType);
  sb.s_id = 'bdev';
  /* no atime on device inodes; nothing to write for the inode itself */
  sb.s_flags = SB_NOATIME;
  sb.s_op = {
    async statfs() {
      return { type: 0x62646576 /* BDEVFS_MAGIC */, bsize: PAGE_SIZE, blocks: 0, bfree: 0, bavail: 0, files: 0,
        ffree: 0, fsid: [0, 0], namelen: 255, frsize: PAGE_SIZE, flags: 0 };
    },
  };
  return (bdevSb = sb);
}

/* ---- struct block_device ---- */

let nextIno = 1;

export class block_device implements BlockDeviceIface {
  readonly bd_inode: inode;
  bd_block_size: number;
  bd_holder: unknown = null;
  /** Nested claims by the same holder. */
  bd_holders = 0;
  /** Opens (files and mounts). */
  bd_openers = 0;
  /** Partition marked read-only on its own (the whole disk's flag covers all). */
  bd_part_ro = false;
  constructor(
    readonly bd_disk: gendisk,
    readonly bd_dev: number,
    readonly bd_name: string,
    readonly bd_partno: number,
    readonly bd_start_sect: number,
    readonly bd_nr_sectors: number,
    whole: block_device | null,
  ) {
    this.bd_contains = whole ?? this;
    const bd_inode = new inode(blockdevSuperblock());
    bd_inode.i_ino = nextIno++;
    bd_inode.i_mode = S_IFBLK | 0o600;
    bd_inode.i_rdev = bd_dev;
    bd_inode.i_nlink = 1;
    bd_inode.i_bdev = this;
    bd_inode.i_size = bd_nr_sectors * 512;
    bd_inode.i_mapping.a_ops = def_blk_aops;
    this.bd_inode = bd_inode;
    this.bd_block_size = initBlocksize(this);
    bd_inode.i_blkbits = Math.log2(this.bd_block_size);
  }
  readonly bd_contains: block_device;
  get bd_read_only(): boolean { return this.bd_disk.readOnly || this.bd_part_ro; }
  /** Size in bytes. */
  get size(): number { return this.bd_nr_sectors * 512; }
  get logical_block_size(): number { return this.bd_disk.logical_block_size; }
  get isPartition(): boolean { return this.bd_partno !== 0; }
}

/**
 * set_init_blocksize: the largest power of two up to a page that divides the device size,
 * at least the logical block size. A whole-page size lets the cache read whole pages.
 */
function initBlocksize(bdev: block_device): number {
  let bsize = bdev.bd_disk.logical_block_size;
  const size = bdev.bd_nr_sectors * 512;
  while (bsize < PAGE_SIZE && size % (bsize * 2) === 0) bsize *= 2;
  return bsize;
}

/* ---- registry ---- */

const byDev = new Map<number, block_device>();
export function bdevRegister(bdev: block_device): void { byDev.set(bdev.bd_dev, bdev); }
export function bdevUnregister(bdev: block_device): void { if (byDev.get(bdev.bd_dev) === bdev) byDev.delete(bdev.bd_dev); }
/** The device with number `dev` (as stat's st_rdev shows it), or null. */
export function lookupBdevByDev(dev: number): block_device | null { return byDev.get(dev) ?? null; }
/** By kernel name: "vda", "vda1". */
export function bdevByName(name: string): block_device | null {
  for (const b of byDev.values()) if (b.bd_name === name) return b;
  return null;
}
export function allBdevs(): block_device[] { return [...byDev.values()]; }

export function asBdev(b: BlockDeviceIface): block_device {
  if (!(b instanceof block_device)) throw new Error(`not a block-layer device: ${b.bd_name}`);
  return b;
}
export function bdevDisk(b: BlockDeviceIface): gendisk { return asBdev(b).bd_disk; }
export function bdevQueue(b: BlockDeviceIface): request_queue { return asBdev(b).bd_disk.queue; }
export function bdevReadOnly(b: BlockDeviceIface): boolean { return b.bd_read_only; }

/* ---- address space operations (def_blk_aops) ---- */

/** blkdev_get_block: every block of the device maps onto itself; none is ever allocated. */
const blkdevGetBlock: BlockMapper = asMapper(async (inode, iblock, maxBlocks) => {
  const nr = Math.floor(inode.i_size / (1 << inode.i_blkbits));
  if (iblock >= nr) return { mapped: false, pblk: 0, isNew: false, unwritten: false, len: 1 };
  return { mapped: true, pblk: iblock, isNew: false, unwritten: false, len: Math.max(1, Math.min(maxBlocks, nr - iblock)) };
});

export const def_blk_aops: address_space_operations = {
  async readpage(_file: file | null, page: page): Promise<void> {
    await block_read_full_folio(page, blkdevGetBlock);
  },
  async readahead(_m, pages: page[]): Promise<void> {
    await mpage_readahead(pages, blkdevGetBlock);
  },
  async writepage(page: page, wbc: writeback_control): Promise<void> {
    await block_write_full_page(page, blkdevGetBlock, wbc);
  },
  async writepages(m, wbc): Promise<void> {
    await mpage_writepages(m, wbc, blkdevGetBlock);
  },
  async write_begin(_file, m, pos, len): Promise<page> {
    return block_write_begin(m, pos, len, blkdevGetBlock);
  },
  async write_end(_file, m, pos, len, copied, page): Promise<number> {
    return generic_write_end(m, pos, len, copied, page);
  },
  invalidate_folio: block_invalidate_folio,
  release_folio: try_to_free_buffers,
};

/* ---- opening and claiming ---- */

/**
 * bd_prepare_to_claim / bd_finish_claiming, merged: give `holder` exclusive use. A whole
 * disk and its partitions exclude each other's holders. EBUSY if someone else holds it.
 */
export function bd_claim(bdev: block_device, holder: unknown): void {
  const whole = bdev.bd_contains;
  if (bdev.bd_holder !== null && bdev.bd_holder !== holder) throw err(EBUSY);
  if (bdev === whole) {
    for (const p of byDev.values()) {
      if (p !== bdev && p.bd_contains === bdev && p.bd_holder !== null && p.bd_holder !== holder) throw err(EBUSY);
    }
  } else if (whole.bd_holder !== null && whole.bd_holder !== holder) throw err(EBUSY);
  bdev.bd_holder = holder;
  bdev.bd_holders++;
}
export function bd_abort_claiming(bdev: block_device, holder: unknown): void {
  if (bdev.bd_holder !== holder || bdev.bd_holders === 0) return;
  if (--bdev.bd_holders === 0) bdev.bd_holder = null;
}

/**
 * blkdev_get_by_dev: open device `dev`, claimed for `holder` when given. ENXIO if there is
 * no such device (or it is being removed), EBUSY if claimed by another holder.
 */
export async function blkdev_get_by_dev(dev: number, holder: unknown = null): Promise<block_device> {
  const bdev = lookupBdevByDev(dev);
  if (!bdev || bdev.bd_disk.dead) throw err(ENXIO);
  return blkdev_get(bdev, holder);
}
export function blkdev_get(bdev: block_device, holder: unknown = null): block_device {
  if (bdev.bd_disk.dead) throw err(ENXIO);
  if (holder !== null) bd_claim(bdev, holder);
  bdev.bd_openers++;
  return bdev;
}

/**
 * For mount (setup_bdev_super): open and claim the device for a superblock; a read-write
 * mount of a read-only device is EACCES, so that mount(8) retries read-only.
 */
export async function blkdev_get_for_super(b: BlockDeviceIface, sbFlags: number, holder: unknown): Promise<block_device> {
  const bdev = asBdev(b);
  if (!(sbFlags & SB_RDONLY) && bdev.bd_read_only) {
    pr_warn(`${bdev.bd_name}: write-protected, can't mount read-write`);
    throw err(EACCES);
  }
  return blkdev_get(bdev, holder);
}

/**
 * blkdev_put: drop an open (and the claim). The last close writes the device's dirty
 * pages and drops its clean ones, as Linux's blkdev_flush_mapping does, so that the whole
 * disk and its partitions — separate caches over the same sectors — see each other's
 * writes between opens.
 */
export async function blkdev_put(b: BlockDeviceIface, holder: unknown = null): Promise<void> {
  const bdev = asBdev(b);
  if (holder !== null) bd_abort_claiming(bdev, holder);
  if (bdev.bd_openers > 0) bdev.bd_openers--;
  if (bdev.bd_openers === 0) {
    try { await sync_blockdev(bdev); } catch (e) {
      pr_err(`${bdev.bd_name}: writeback at last close failed: ${(e as Error)?.message ?? e}`);
    }
    invalidate_mapping_pages(bdev.bd_inode.i_mapping);
  }
}

/* ---- block size and syncing ---- */

/**
 * set_blocksize: the size of the buffers the device's cache uses. Writes back and drops
 * the cache when it changes (buffers of the old size cannot stay). EINVAL for a size that
 * is not a power of two in [logical block size, PAGE_SIZE].
 */
export async function set_blocksize(b: BlockDeviceIface, size: number): Promise<void> {
  const bdev = asBdev(b);
  // bits32: a power-of-two test on a block size, bounded by PAGE_SIZE first
  if (size > PAGE_SIZE || size < 512 || (size & (size - 1)) || size < bdev.logical_block_size) throw err(EINVAL);
  if (bdev.bd_block_size === size) return;
  await sync_blockdev(bdev);
  bdev.bd_block_size = size;
  bdev.bd_inode.i_blkbits = Math.log2(size);
  await truncate_inode_pages(bdev.bd_inode.i_mapping, 0);
}

/** sb_set_blocksize: returns the size, or 0 if the device cannot use it (as Linux). */
export async function sb_set_blocksize(sb: super_block, size: number): Promise<number> {
  if (!sb.s_bdev) return 0;
  try { await set_blocksize(sb.s_bdev, size); } catch (e) { if (isErrno(e)) return 0; throw e; }
  sb.s_blocksize = size;
  sb.s_blocksize_bits = Math.log2(size);
  return size;
}
/** sb_min_blocksize: at least the device's logical block size. */
export async function sb_min_blocksize(sb: super_block, size: number): Promise<number> {
  const min = sb.s_bdev ? asBdev(sb.s_bdev).logical_block_size : 512;
  return sb_set_blocksize(sb, Math.max(size, min));
}
export function bdev_logical_block_size(b: BlockDeviceIface): number { return asBdev(b).logical_block_size; }

/** sync_blockdev: write the device's dirty cached blocks and wait (no cache flush). */
export async function sync_blockdev(b: BlockDeviceIface): Promise<void> {
  await filemap_write_and_wait_range(b.bd_inode.i_mapping, 0, Infinity);
}

/** fsync_bdev / blkdev_fsync's core: write, wait, then flush the device's cache. */
export async function blkdev_fsync(b: BlockDeviceIface): Promise<void> {
  await sync_blockdev(b);
  try { await blkdev_issue_flush(b); } catch (e) {
    if (!(isErrno(e) && e.errno === EOPNOTSUPP)) throw e;
  }
}

/** kill_bdev: drop the whole cache (after syncing, when the device goes away). */
export async function kill_bdev(b: BlockDeviceIface): Promise<void> {
  await truncate_inode_pages(b.bd_inode.i_mapping, 0);
}

/* ---- file operations on /dev/vdaN (block/fops.c) ---- */

interface BlkFileState { bdev: block_device; shadow: file; exclusive: boolean }
const fileState = new WeakMap<file, BlkFileState>();
function stateOf(file: file): BlkFileState {
  const s = fileState.get(file);
  if (!s) throw err(ENXIO);
  return s;
}

/**
 * The page-cache helpers work on file.f_inode's mapping; a device node's inode belongs to
 * the filesystem it lives on, so each open file gets a shadow file whose inode is the
 * device's bd_inode (Linux points f_mapping there instead).
 */
function shadowFile(filp: file, bdev: block_device): file {
  const f = new file(filp.f_path, bdev.bd_inode, def_blk_fops);
  f.f_flags = filp.f_flags;
  f.f_mode = filp.f_mode;
  return f;
}

export const def_blk_fops: file_operations = {
  async open(inode: inode, file: file): Promise<void> {
    const bdev = lookupBdevByDev(inode.i_rdev);
    if (!bdev || bdev.bd_disk.dead) throw err(ENXIO);
    /* O_EXCL on a block device asks for an exclusive open (EBUSY while mounted) */
    const exclusive = (file.f_flags & O_EXCL) !== 0;
    blkdev_get(bdev, exclusive ? file : null);
    fileState.set(file, { bdev, shadow: shadowFile(file, bdev), exclusive });
  },
  async release(_inode: inode, file: file): Promise<void> {
    const s = fileState.get(file);
    if (!s) return;
    fileState.delete(file);
    await blkdev_put(s.bdev, s.exclusive ? file : null);
  },
  async read(file: file, buf: Uint8Array, pos: number): Promise<number> {
    const { bdev, shadow } = stateOf(file);
    if (bdev.bd_disk.dead) throw err(ENXIO);
    if (pos >= bdev.size || buf.length === 0) return 0;
    const n = Math.min(buf.length, bdev.size - pos);
    shadow.f_flags = file.f_flags;
    return filemap_read(shadow, n === buf.length ? buf : buf.subarray(0, n), pos);
  },
  async write(file: file, buf: Uint8Array, pos: number): Promise<number> {
    const { bdev, shadow } = stateOf(file);
    if (bdev.bd_disk.dead) throw err(ENXIO);
    if (bdev.bd_read_only) throw err(EPERM);
    if (buf.length === 0) return 0;
    if (pos >= bdev.size) throw err(ENOSPC);
    const n = Math.min(buf.length, bdev.size - pos);
    shadow.f_flags = file.f_flags;
    return generic_file_write_iter(shadow, n === buf.length ? buf : buf.subarray(0, n), pos);
  },
  async llseek(file: file, offset: number, whence: number): Promise<number> {
    const size = fileState.get(file)?.bdev.size ?? file.f_inode.i_size;
    let pos: number;
    switch (whence) {
      case SEEK_SET: pos = offset; break;
      case SEEK_CUR: pos = file.f_pos + offset; break;
      case SEEK_END: pos = size + offset; break;
      case SEEK_DATA: if (offset >= size) throw err(ENXIO); pos = offset; break;
      case SEEK_HOLE: if (offset >= size) throw err(ENXIO); pos = size; break;
      default: throw err(EINVAL);
    }
    if (pos < 0 || !Number.isSafeInteger(pos)) throw err(EINVAL);
    file.f_pos = pos;
    return pos;
  },
  /** blkdev_fsync: the device's dirty pages, then a cache flush (FLUSH reaches the store). */
  async fsync(file: file, start: number, end: number): Promise<void> {
    const b = fileState.get(file)?.bdev ?? (file.f_inode.i_bdev as block_device | null);
    if (!b) throw err(ENXIO);
    await filemap_write_and_wait_range(b.bd_inode.i_mapping, start, end);
    try { await blkdev_issue_flush(b); } catch (e) {
      if (!(isErrno(e) && e.errno === EOPNOTSUPP)) throw e;
    }
  },
};

/* ---- wiring ---- */

initcall(INIT_CORE, 'bdev', () => {
  bdevSb = null;
  byDev.clear();
  blockdevSuperblock();
  setBlockHooks({
    syncMappingBuffers: sync_mapping_buffers,
    blkdevIssueFlush: async (b) => {
      try { await blkdev_issue_flush(b); } catch (e) { if (!(isErrno(e) && e.errno === EOPNOTSUPP)) throw e; }
    },
    syncBlockdev: sync_blockdev,
  });
  registerBlkdevFops((rdev) => {
    const bdev = lookupBdevByDev(rdev);
    return bdev ? { bdev, fops: def_blk_fops } : null;
  });
});

/** For messages: "vda1 (254:1)". */
export function bdevDescribe(b: BlockDeviceIface): string {
  const d = b.bd_dev;
  return `${b.bd_name} (${(d >>> 8) & 0xfff}:${(d & 0xff) | ((d >>> 12) & 0xfff00)})`;
}

