/*
 * Device special files (fs/char_dev.c, block/fops.c's open path, lookup_bdev in block/bdev.c).
 *
 * The VFS knows nothing about drivers: a block driver registers one hook that maps a
 * device number to its block_device and file operations, and opening an S_IFBLK inode goes
 * through it. Character devices have no drivers in lkl-ts (opening one is ENXIO), and
 * neither do fifos and sockets: they can be created, stat'ed and opened with O_PATH only.
 *
 * May touch: namei (path lookup for lookup_bdev).
 */
import type { block_device } from '../include/blk.js';
import type { file, file_operations, inode } from '../include/fs.js';
import { MNT_NODEV } from '../include/fs.js';
import { err } from '../include/errno.js';
import { EACCES, ENOTBLK, ENXIO, S_ISBLK } from '../include/uapi.js';
import { kern_path, path_put } from './namei.js';
import { LOOKUP_FOLLOW } from '../include/fs.js';

export interface BlkdevEntry { bdev: block_device; fops: file_operations }
type BlkdevLookup = (rdev: number) => BlkdevEntry | null;

let blkdevLookup: BlkdevLookup | null = null;
let lookupBdevOverride: ((path: string) => Promise<block_device>) | null = null;

/** The block layer registers how device numbers map to block devices and their fops. */
export function registerBlkdevFops(lookup: BlkdevLookup | null): void { blkdevLookup = lookup; }
/** Optional: replace lookup_bdev (by default: resolve the path to an S_IFBLK inode, then its rdev). */
export function registerLookupBdev(fn: ((path: string) => Promise<block_device>) | null): void { lookupBdevOverride = fn; }

/** The block_device of device number rdev, or null if no driver has it. */
export function bdevByDev(rdev: number): block_device | null { return blkdevLookup?.(rdev)?.bdev ?? null; }

/**
 * lookup_bdev: the block device a path names (a byte-string path). ENOENT if it does not
 * exist, ENOTBLK if it is not a block device node, EACCES on a nodev mount, ENXIO if no
 * driver has that device number.
 */
export async function lookup_bdev(path: string): Promise<block_device> {
  if (lookupBdevOverride) return lookupBdevOverride(path);
  const p = await kern_path(path, LOOKUP_FOLLOW);
  try {
    const inode = p.dentry.d_inode!;
    if (!S_ISBLK(inode.i_mode)) throw err(ENOTBLK);
    if (p.mnt.mnt_flags & MNT_NODEV) throw err(EACCES);
    const e = blkdevLookup?.(inode.i_rdev);
    if (!e) throw err(ENXIO);
    return e.bdev;
  } finally { await path_put(p); }
}

/** def_blk_fops' open: hand the file over to the driver's operations. */
export const blkdevOpenFops: file_operations = {
  async open(inode: inode, file: file): Promise<void> {
    if (file.f_path.mnt.mnt_flags & MNT_NODEV) throw err(EACCES);
    const e = blkdevLookup?.(inode.i_rdev);
    if (!e) throw err(ENXIO);
    inode.i_bdev = e.bdev;
    file.f_op = e.fops;
    if (e.fops.open) await e.fops.open(inode, file);
  },
};

/** def_chr_fops' open: no character drivers exist. */
export const chrdevOpenFops: file_operations = {
  async open(_inode: inode, file: file): Promise<void> {
    if (file.f_path.mnt.mnt_flags & MNT_NODEV) throw err(EACCES);
    throw err(ENXIO);
  },
};

/** Fifos and sockets: nothing to talk to in a library kernel. */
export const badSockFops: file_operations = {
  async open(): Promise<void> { throw err(ENXIO); },
};
