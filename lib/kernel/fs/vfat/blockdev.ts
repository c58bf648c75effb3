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
import type { BlockDevice } from '../../include/blk.js';
import { BH_Uptodate, REQ_OP_READ, SECTOR_SIZE } from '../../include/blk.js';
import { bdevRwSectors, blkdevIssueFlush } from '../../block/bio.js';
import {
  bread, brelse, cleanBdevAliases, getblk, invalidateBdev, lockBuffer, markBufferDirty, markBufferDirtyInode,
  syncMappingBuffers, unlockBuffer, type BufferHead,
} from '../buffer.js';
import { filemapWriteAndWaitRange } from '../fs-writeback.js';
import type { FatBlockOps, FatBuffer } from './fat.js';

export function bdevBlockOps(bdev: BlockDevice, blocksize: number): FatBlockOps {
  const spb = blocksize / SECTOR_SIZE;
  const ops: FatBlockOps = {
    async bread(blk) { return bread(bdev, blk, blocksize); },
    async getblkZero(blk) {
      const bh = await getblk(bdev, blk, blocksize);
      await lockBuffer(bh);
      bh.b_data.fill(0);
      bh.set(BH_Uptodate);
      unlockBuffer(bh);
      return bh;
    },
    markDirty(bh, inode) {
      if (inode) markBufferDirtyInode(bh as BufferHead, inode);
      else markBufferDirty(bh as BufferHead);
    },
    brelse(bh: FatBuffer) { brelse(bh as BufferHead); },
    forget(blk) { cleanBdevAliases(bdev, blk, 1, blocksize); },
    async syncBuffers(inode) {
      if (inode) await syncMappingBuffers(inode.i_mapping);
      else await filemapWriteAndWaitRange(bdev.bd_inode.i_mapping);
    },
    async readData(blk, buf) { await bdevRwSectors(bdev, REQ_OP_READ, blk * spb, buf); },
    async flush() { await blkdevIssueFlush(bdev); },
    invalidate() { invalidateBdev(bdev); },
  };
  return ops;
}
