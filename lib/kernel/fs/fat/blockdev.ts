/*
 * FatBlockOps on a real block device: metadata (boot sector, FSInfo, FAT, directory
 * blocks) through buffer heads in the block device's page cache (fs/buffer.ts). File data
 * goes through the generic page helpers of fs/buffer.ts (file.ts); readData only fills a
 * page that a write will partly cover. Directory buffers are dirtied with mark_buffer_dirty_inode, so an
 * fsync of a directory writes its blocks; FAT blocks belong to no inode and are written by
 * syncBuffers(null) (fsync of a file, sync_fs, unmount) or the bdev's writeback.
 *
 * Every bread/getblk is paired with a brelse by the callers in this driver.
 * May touch: fs/buffer.ts, block/bio.ts, fs-writeback.ts.
 */
import type { block_device } from '../../include/blk.js';
import { BH_Uptodate, REQ_OP_READ, SECTOR_SIZE } from '../../include/blk.js';
import { bdev_rw_sectors, blkdev_issue_flush } from '../../block/bio.js';
import {
  __find_get_block, bread, brelse, clean_bdev_aliases, getblk, invalidate_bdev, lock_buffer, mark_buffer_dirty, mark_buffer_dirty_inode,
  sync_mapping_buffers, unlock_buffer, type buffer_head,
} from '../buffer.js';
import { filemap_write_and_wait_range } from '../fs-writeback.js';
import type { FatBlockOps, FatBuffer } from './fat.js';

export function bdevBlockOps(bdev: block_device, blocksize: number): FatBlockOps {
  const spb = blocksize / SECTOR_SIZE;
  const ops: FatBlockOps = {
    async bread(blk) { return bread(bdev, blk, blocksize); },
    findGetBlock(blk) {
      const bh = __find_get_block(bdev, blk, blocksize);
      if (bh && !bh.test(BH_Uptodate)) { brelse(bh); return null; }
      return bh;
    },
    async getblkZero(blk) {
      const bh = await getblk(bdev, blk, blocksize);
      await lock_buffer(bh);
      bh.b_data.fill(0);
      bh.set(BH_Uptodate);
      unlock_buffer(bh);
      return bh;
    },
    markDirty(bh, inode) {
      if (inode) mark_buffer_dirty_inode(bh as buffer_head, inode);
      else mark_buffer_dirty(bh as buffer_head);
    },
    brelse(bh: FatBuffer) { brelse(bh as buffer_head); },
    forget(blk) { clean_bdev_aliases(bdev, blk, 1, blocksize); },
    async syncBuffers(inode) {
      if (inode) await sync_mapping_buffers(inode.i_mapping);
      else await filemap_write_and_wait_range(bdev.bd_inode.i_mapping);
    },
    async readData(blk, buf) { await bdev_rw_sectors(bdev, REQ_OP_READ, blk * spb, buf); },
    async flush() { await blkdev_issue_flush(bdev); },
    invalidate() { invalidate_bdev(bdev); },
  };
  return ops;
}
