/*
 * Regular files (fs/ext4/file.c): reads through the page cache (filemap_read over
 * ext4_aops), llseek with SEEK_DATA / SEEK_HOLE answered from the block mapping (unwritten
 * extents count as holes, as iomap's seek does when no page is cached), buffered writes
 * through the page cache (ext4_aops: delayed allocation, blocks given at writeback), and fsync.
 * fallocate is extents.ts's (ext4_fallocate).
 */
import type { file, file_operations, inode, inode_operations } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { EINVAL, ENXIO, EOPNOTSUPP, EPERM, EROFS, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE, SEEK_SET } from '../../include/uapi.js';
import { SB_RDONLY } from '../../include/fs.js';
import { filemap_read, generic_file_write_iter } from '../../mm/filemap.js';
import { filemap_write_and_wait_range, write_inode_now } from '../fs-writeback.js';
import { sync_blockdev } from '../../block/bdev.js';
import { EXT4_IMMUTABLE_FL, EXT4_INLINE_DATA_FL } from './layout.js';
import { EXT4_I, EXT4_SB, EXT4_STATE_DA_ALLOC_CLOSE, type ext4_inode_info } from './ext4.js';
import { ext4_alloc_da_blocks, ext4_file_getattr, ext4_map_blocks, ext4_setattr } from './inode.js';
import { ext4_listxattr } from './xattr.js';
import { ext4_get_acl, ext4_set_acl_op } from './acl.js';
import { ext4_fallocate } from './extents.js';
import { ext4_journal_writable } from './ext4_jbd2.js';
import { jbd2_complete_transaction } from '../jbd2/commit.js';
import { ext4_fileattr_get, ext4_fileattr_set, ext4_ioctl } from './ioctl.js';

/** ext4_seek_data / ext4_seek_hole over the mapping. */
export async function ext4_seek_data_hole(inode: ext4_inode_info, pos: number, wantData: boolean): Promise<number> {
  const size = inode.i_size;
  if (pos < 0 || pos >= size) throw err(ENXIO);
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) return wantData ? pos : size;
  // Delayed-allocation data is data: give it its blocks, then answer from the mapping.
  if (inode.i_reserved_data_blocks) await filemap_write_and_wait_range(inode.i_mapping, pos, Infinity);
  const bs = EXT4_SB(inode.i_sb).s_blocksize;
  const last = Math.ceil(size / bs);
  let lblk = Math.floor(pos / bs);
  while (lblk < last) {
    const m = await ext4_map_blocks(inode, lblk, Math.min(last - lblk, 0x7fffffff));
    const isData = m.pblk !== 0 && !m.unwritten;
    if (isData === wantData) return Math.min(size, Math.max(pos, lblk * bs));
    lblk += Math.max(1, m.len);
  }
  if (wantData) throw err(ENXIO);
  return size;
}

/** ext4_llseek. */
export async function ext4_llseek(file: file, offset: number, whence: number): Promise<number> {
  const inode = EXT4_I(file.f_inode);
  let pos: number;
  switch (whence) {
    case SEEK_SET: pos = offset; break;
    case SEEK_CUR: pos = file.f_pos + offset; break;
    case SEEK_END: pos = inode.i_size + offset; break;
    case SEEK_DATA: pos = await ext4_seek_data_hole(inode, offset, true); break;
    case SEEK_HOLE: pos = await ext4_seek_data_hole(inode, offset, false); break;
    default: throw err(EINVAL);
  }
  if (pos < 0 || pos > inode.i_sb.s_maxbytes) throw err(EINVAL);
  file.f_pos = pos;
  return pos;
}

/** ext4_file_write_iter: buffered writes through write_begin/write_end (inline data: inline.ts). */
async function ext4_file_write_iter(file: file, buf: Uint8Array, pos: number): Promise<number> {
  const inode = EXT4_I(file.f_inode);
  const sbi = EXT4_SB(inode.i_sb);
  if (inode.i_sb.s_flags & SB_RDONLY || sbi.s_readonly_driver) throw err(EROFS);
  if (inode.i_ext4_flags & (EXT4_IMMUTABLE_FL)) throw err(EPERM);
  // Block-mapped files end where their triple-indirect block ends (ext4_max_bitmap_size).
  return generic_file_write_iter(file, buf, pos);
}

/**
 * ext4_sync_file: the range's pages and the inode; then with a journal, the commit the
 * inode needs (ext4_fsync_journal), without one the metadata buffers of the device and a
 * cache flush, as Linux's ext4_fsync_nojournal does with sync_mapping_buffers.
 */
async function ext4_sync_file(file: file, start: number, end: number, datasync: boolean): Promise<void> {
  const inode = file.f_inode;
  const sb = inode.i_sb;
  await filemap_write_and_wait_range(inode.i_mapping, start, end);
  if (sb.s_flags & SB_RDONLY || EXT4_SB(sb).s_readonly_driver) return;
  await write_inode_now(inode, true, datasync);
  const j = ext4_journal_writable(sb);
  if (j) {
    // ext4_fsync_journal: the inode and what it depends on are durable once the transaction
    // that last changed it (for fdatasync: its data's size or blocks) is committed. A commit
    // run now flushes the device around its commit block; if that transaction was committed
    // already (an overwrite in place, times only), one flush makes the data just written durable.
    const ei = EXT4_I(inode);
    if (await jbd2_complete_transaction(j, datasync ? ei.i_datasync_tid : ei.i_sync_tid)) return;
    await EXT4_SB(sb).s_dev.flush?.();
    return;
  }
  if (sb.s_bdev) await sync_blockdev(sb.s_bdev);
  await EXT4_SB(sb).s_dev.flush?.();
}

/** ext4_release_file: a file truncated to nothing and rewritten gets its blocks at close. */
async function ext4_release_file(inode: inode, _file: file): Promise<void> {
  const ei = EXT4_I(inode);
  if (ei.i_state_flags & EXT4_STATE_DA_ALLOC_CLOSE) {
    ei.i_state_flags &= ~EXT4_STATE_DA_ALLOC_CLOSE;
    if (!(inode.i_sb.s_flags & SB_RDONLY)) await ext4_alloc_da_blocks(ei);
  }
}

export const ext4_file_operations: file_operations = {
  llseek: ext4_llseek,
  release: ext4_release_file,
  read: filemap_read,
  write: ext4_file_write_iter,
  fallocate: ext4_fallocate,
  fsync: ext4_sync_file,
  unlocked_ioctl: ext4_ioctl,
};

export const ext4_file_inode_operations: inode_operations = {
  getattr: ext4_file_getattr,
  setattr: ext4_setattr,
  listxattr: ext4_listxattr,
  get_inode_acl: ext4_get_acl,
  set_acl: ext4_set_acl_op,
  fileattr_get: ext4_fileattr_get,
  fileattr_set: ext4_fileattr_set,
};
