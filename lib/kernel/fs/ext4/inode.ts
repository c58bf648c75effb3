/*
 * Inodes (fs/ext4/inode.c): reading an inode from its table (ext4_iget) with every field
 * Linux decodes and every check it makes, logical-to-physical block mapping for both
 * extent and block-map files (ext4_map_blocks, the GetBlock for generic page I/O), the
 * address-space operations, getattr (with btime) and the inode operations shared by all
 * file types. Directory, symlink and regular-file specifics live in namei.ts, symlink.ts
 * and file.ts; on-disk layouts in layout.ts.
 */
import {
  ATTR_CTIME, ATTR_MODE, ATTR_MTIME, ATTR_SIZE, I_DIRTY_DATASYNC, I_DIRTY_SYNC, I_FREEING, I_NEW, SB_RDONLY,
  S_APPEND, S_CASEFOLD, S_DAX, S_DIRSYNC, S_ENCRYPTED, S_IMMUTABLE, S_NOATIME, S_SYNC, S_VERITY, type dentry, type iattr, type inode, type kstat,
  type super_block, type file, type address_space_operations, type address_space, type writeback_control,
} from '../../include/fs.js';
import type { MappedBlock } from '../../include/blk.js';
import { err } from '../../include/errno.js';
import {
  EFBIG, EINVAL, EIO, ENOSPC, EROFS, ESTALE, S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO,
  S_IFSOCK, STATX_BASIC_STATS, STATX_BTIME, makedev, major, minor,
} from '../../include/uapi.js';
import { iget_failed, iget_locked, iput, truncate_inode_pages_final, unlock_new_inode } from '../inode.js';
import { get_page, put_page, PG_dirty, PG_uptodate, PG_writeback, type page } from '../../mm/page_alloc.js';
import {
  PAGE_SIZE, end_page_read, find_get_page, find_or_create_page, lock_page, trylock_page, truncate_inode_pages,
  truncate_pagecache, unlock_page, wait_on_page_writeback,
} from '../../mm/filemap.js';
import { dirty_pages_in_range, mpage_readahead, mpage_read_folio } from '../mpage.js';
import { ext4_bio_write_folio, ext4_io_submit, ext4_io_submit_init, ext4_page_buffers_mapped } from './page-io.js';
import {
  EXTENT_STATUS_HOLE, EXTENT_STATUS_UNWRITTEN, EXTENT_STATUS_WRITTEN, ext4_es_insert_extent, ext4_es_lookup_extent,
  ext4_es_remove_extent, type extent_status,
} from './extents_status.js';
import {
  asMapper, block_commit_write, block_invalidate_folio, block_truncate_page, block_write_begin, block_write_full_page,
  __find_get_block, clean_bdev_aliases, page_buffers, sb_breadahead, sb_getblk, sync_dirty_buffer, try_to_free_buffers, type BlockMapper, type buffer_head,
} from '../buffer.js';
import { BH_Delay, BH_Dirty, BH_Mapped, BH_New, BH_Uptodate } from '../../include/blk.js';
import {
  clear_page_dirty_for_io, filemap_fdatawait, filemap_fdatawait_range_keep_errors, filemap_fdatawrite, filemap_write_and_wait_range, mark_inode_dirty, set_page_dirty,
} from '../fs-writeback.js';
import { inode_newsize_ok, setattr_copy, setattr_prepare } from '../attr.js';
import { current_time } from '../time.js';
import {
  EXT4_APPEND_FL, EXT4_BOOT_LOADER_INO, EXT4_EA_INODE_FL, EXT4_ENCRYPT_FL, EXT4_EXTENTS_FL,
  EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_INLINE_DATA,
  EXT4_FEATURE_INCOMPAT_LARGEDIR, EXT4_FEATURE_RO_COMPAT_HUGE_FILE, EXT4_FEATURE_RO_COMPAT_PROJECT,
  EXT4_IMMUTABLE_FL, EXT4_INLINE_DATA_FL, EXT4_INODE_OFF, EXT4_JOURNAL_INO, EXT4_ROOT_INO,
  EXT4_NODUMP_FL, EXT4_COMPR_FL, EXT4_VERITY_FL, EXT4_DAX_FL, ext4_fits_in_inode,
  EXT4_SYNC_FL, EXT4_NOATIME_FL, EXT4_DIRSYNC_FL, EXT4_CASEFOLD_FL,
  ext4_inode_blocks, ext4_inode_check_extra_isize, ext4_inode_decode, ext4_inode_file_acl,
  ext4_inode_get_time, ext4_inode_gid, ext4_inode_projid, ext4_inode_table, ext4_inode_uid, ext4_itable_unused_count,
  ext4_isize, le32, EXT4_GOOD_OLD_INODE_SIZE, put_le16, put_le32, ext4_inode_uid_set, ext4_inode_gid_set,
  ext4_isize_set, ext4_inode_blocks_set, ext4_inode_file_acl_set, ext4_inode_set_time, ext4_inode_encode,
} from './layout.js';
import { ext4_inode_csum_seed, ext4_inode_csum_set, ext4_inode_csum_verify } from './csum.js';
import {
  EXT4_GET_BLOCKS_CREATE, EXT4_GET_BLOCKS_DELALLOC_RESERVE, EXT4_I, EXT4_MOUNT_DELALLOC, EXT4_MOUNT_NO_AUTO_DA_ALLOC,
  EXT4_MOUNT_NO_UID32, EXT4_SB, EXT4_STATE_DA_ALLOC_CLOSE,
  type ext4_inode_info,
} from './ext4.js';
import { ext4_csum_error, ext4_error, ext4_check_shutdown, ext4_msg } from './errors.js';
import { ext4_claim_free_clusters } from './mballoc.js';
import { ext4_block_valid } from './block_validity.js';
import { ext4_sb_bread } from './super.js';
import { ext4_has_group_desc_csum } from './balloc.js';
import { EXT_MAX_BLOCKS, ext4_ext_map_blocks, ext4_ext_map_blocks_create, ext4_ext_truncate } from './extents.js';
import { ext4_ind_map_blocks, ext4_ind_map_blocks_create, ext4_ind_truncate } from './indirect.js';
import {
  brelse, EXT4_DATA_TRANS_BLOCKS, ext4_force_commit, EXT4_HT_INODE, EXT4_HT_MAP_BLOCKS, EXT4_HT_TRUNCATE, EXT4_HT_WRITE_PAGE, ext4_handle_dirty_metadata,
  ext4_journal_get_write_access, ext4_journal_start, ext4_journal_stop, ext4_jbd2_inode_add_write, ext4_sb_bread_bh, type handle_t,
  ext4_should_journal_data, ext4_update_inode_fsync_trans,
} from './ext4_jbd2.js';
import { ext4_free_inode } from './ialloc.js';
import { ext4_xattr_delete_inode } from './xattr.js';
import { ext4_orphan_del } from './orphan.js';
import { EXT4_STATE_MAY_INLINE_DATA, EXT4_STATE_NEW } from './ext4.js';
import { posix_acl_chmod } from '../posix_acl.js';
import {
  ext4_convert_inline_data, ext4_da_write_inline_data_begin, ext4_find_inline_data, ext4_inline_data_truncate, ext4_read_inline_data,
  ext4_write_inline_data_end,
} from './inline.js';
import { ext4_file_inode_operations, ext4_file_operations } from './file.js';
import { ext4_dir_inode_operations, ext4_special_inode_operations } from './namei.js';
import { ext4_dir_operations } from './dir.js';
import { kmalloc } from '../../mm/slab.js';
import {
  ext4_encrypted_symlink_inode_operations, ext4_fast_symlink_inode_operations, ext4_symlink_inode_operations,
} from './symlink.js';

/* statx attributes (include/uapi/linux/stat.h) */
export const STATX_ATTR_COMPRESSED = 0x4, STATX_ATTR_IMMUTABLE = 0x10, STATX_ATTR_APPEND = 0x20,
  STATX_ATTR_NODUMP = 0x40, STATX_ATTR_ENCRYPTED = 0x800, STATX_ATTR_VERITY = 0x100000, STATX_ATTR_DAX = 0x200000;

/* ext4_iget flags */
export const EXT4_IGET_NORMAL = 0, EXT4_IGET_SPECIAL = 1, EXT4_IGET_HANDLE = 2, EXT4_IGET_EA_INODE = 4;

/** Where inode `ino` lives: the inode-table block and the byte offset in it (__ext4_get_inode_loc). */
export function ext4_inode_loc(sb: super_block, ino: number): { block: number; offset: number; group: number } {
  const sbi = EXT4_SB(sb);
  const group = Math.floor((ino - 1) / sbi.s_inodes_per_group);
  const index = (ino - 1) % sbi.s_inodes_per_group;
  const gd = sbi.s_group_desc[group];
  const table = ext4_inode_table(gd);
  const byteOff = index * sbi.s_inode_size;
  return { block: table + Math.floor(byteOff / sbi.s_blocksize), offset: byteOff % sbi.s_blocksize, group };
}

/**
 * __ext4_get_inode_loc's read-ahead: when the inode-table block is not cached, start reading
 * the inode_readahead_blks-aligned window of the table around it (up to the last block with
 * inodes in use), so that a directory's inodes come in a few large reads instead of one
 * read per block (a cold `ls -l` or `stat *`). The blocks go in as bdev buffers; the caller
 * then reads the one it needs.
 */
async function ext4_inode_table_readahead(sb: super_block, block: number, group: number): Promise<void> {
  const sbi = EXT4_SB(sb);
  const ra = sbi.s_inode_readahead_blks;
  if (ra <= 1 || !sb.s_bdev || sb.s_blocksize !== sbi.s_blocksize || sbi.s_blocksize > PAGE_SIZE || sbi.s_overlay.has(block)) return;
  const first = __find_get_block(sb.s_bdev, block, sb.s_blocksize);
  const cached = first?.test(BH_Uptodate) ?? false;
  if (first) brelse(first);
  if (cached) return;
  const gd = sbi.s_group_desc[group]!;
  const table = ext4_inode_table(gd);
  let used = sbi.s_inodes_per_group;
  if (ext4_has_group_desc_csum(sbi)) used -= ext4_itable_unused_count(gd);
  const end = Math.min(table + Math.ceil(used / sbi.s_inodes_per_block), block - (block % ra) + ra);
  for (let b = Math.max(table, block - (block % ra)); b < end; b++) {
    if (b !== block && ext4_block_valid(sb, b)) await sb_breadahead(sb, b);
  }
}

/** The raw on-disk inode bytes (a copy of them). */
export async function ext4_read_raw_inode(sb: super_block, ino: number, func = 'ext4_get_inode_loc'): Promise<{ raw: Uint8Array; block: number; offset: number }> {
  const sbi = EXT4_SB(sb);
  const loc = ext4_inode_loc(sb, ino);
  if (!ext4_block_valid(sb, loc.block))
    throw ext4_error(sb, func, `Invalid inode table block ${loc.block} in block_group ${loc.group}`, { ino });
  await ext4_inode_table_readahead(sb, loc.block, loc.group);
  const isz = sbi.s_inode_size;
  // Kept by the in-core inode (i_raw) for as long as it is cached: from a slab, not a
  // buffer of its own; read out of the block's buffer, not out of a copy of the block.
  const raw = kmalloc(isz);
  try {
    if (sbi.s_dev.read_range && !sbi.s_overlay.has(loc.block)) await sbi.s_dev.read_range(loc.block, loc.offset, raw);
    else raw.set((await ext4_sb_bread(sb, loc.block, func, ino)).subarray(loc.offset, loc.offset + isz));
  } catch (e) {
    // __ext4_get_inode_loc: a failed read is an ext4 error (errors= applies); the call fails with EIO.
    if ((e as { errno?: number }).errno === EIO) ext4_error(sb, func, 'unable to read itable block', { ino, block: loc.block });
    throw e;
  }
  return { raw, block: loc.block, offset: loc.offset };
}

function ino_valid(sb: super_block, ino: number, flags: number): boolean {
  const sbi = EXT4_SB(sb);
  if (!Number.isInteger(ino) || ino < 1 || ino > sbi.s_es.s_inodes_count) return false;
  if (flags & EXT4_IGET_SPECIAL) return true;
  if (ino < EXT4_ROOT_INO) return false;
  if (ino < sbi.s_first_ino && ino !== EXT4_ROOT_INO) return false;
  return true;
}

/**
 * ext4_iget: the in-core inode for `ino`, read and validated on first use (iget_locked +
 * fill + unlock_new_inode; a failed read is iget_failed).
 */
export async function ext4_iget(sb: super_block, ino: number, flags = EXT4_IGET_NORMAL): Promise<ext4_inode_info> {
  ext4_check_shutdown(sb);
  if (!ino_valid(sb, ino, flags)) {
    if (flags & EXT4_IGET_HANDLE) throw err(ESTALE);
    throw ext4_error(sb, 'ext4_iget', `iget: illegal inode #${ino}`, { ino });
  }
  const inode = (await iget_locked(sb, ino)) as ext4_inode_info;
  if (!(inode.i_state & I_NEW)) return inode;
  try {
    await ext4_fill_inode(inode, flags);
  } catch (e) {
    await iget_failed(inode);
    throw e;
  }
  unlock_new_inode(inode);
  return inode;
}

/** Drop a reference from ext4_iget (iput). */
export async function ext4_iput(inode: inode | null): Promise<void> {
  if (inode) await iput(inode);
}

async function ext4_fill_inode(inode: ext4_inode_info, flags: number): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const ino = inode.i_ino;
  const { raw, block, offset } = await ext4_read_raw_inode(sb, ino, 'ext4_iget');
  const isz = sbi.s_inode_size;
  const di = ext4_inode_decode(raw, 0, isz);
  inode.i_raw = raw;
  inode.i_loc_block = block;
  inode.i_loc_offset = offset;
  const why = ext4_inode_check_extra_isize(di, isz);
  if (why) throw ext4_error(sb, 'ext4_iget', why, { ino });
  inode.i_extra_isize = isz > EXT4_GOOD_OLD_INODE_SIZE ? di.i_extra_isize : 0;
  if (sbi.s_csum?.metadata_csum) {
    inode.i_csum_seed = ext4_inode_csum_seed(sbi.s_csum, ino, di.i_generation);
    if (!ext4_inode_csum_verify(sbi.s_csum, ino, raw, 0))
      throw ext4_csum_error(sb, 'ext4_iget', 'iget: checksum invalid', { ino });
  }
  inode.i_mode = di.i_mode;
  inode.i_uid = sbi.test_opt(EXT4_MOUNT_NO_UID32) ? di.i_uid : ext4_inode_uid(di);
  inode.i_gid = sbi.test_opt(EXT4_MOUNT_NO_UID32) ? di.i_gid : ext4_inode_gid(di);
  inode.i_nlink = di.i_links_count;
  inode.i_ext4_flags = di.i_flags >>> 0;
  ext4_set_inode_flags(inode);
  inode.i_dtime = di.i_dtime;
  inode.i_generation = di.i_generation;
  inode.i_blkbits = sbi.s_blocksize_bits;
  if (inode.i_nlink === 0) {
    if ((inode.i_mode === 0 || (flags & EXT4_IGET_SPECIAL) || !(sbi.s_mount_state & 0x0004 /* ORPHAN_FS */)) &&
      ino !== EXT4_BOOT_LOADER_INO) {
      if (flags & EXT4_IGET_SPECIAL) throw ext4_error(sb, 'ext4_iget', 'iget: special inode unallocated', { ino });
      throw err(ESTALE);
    }
  }
  inode.i_data.set(di.i_block);
  inode.i_file_acl = ext4_inode_file_acl(di, sbi.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT));
  inode.i_size = ext4_isize(di, sbi.has_incompat(EXT4_FEATURE_INCOMPAT_LARGEDIR));
  inode.i_disksize = inode.i_size;
  if (inode.i_size < 0 || inode.i_size > Number.MAX_SAFE_INTEGER)
    throw ext4_error(sb, 'ext4_iget', `iget: bad i_size value: ${inode.i_size}`, { ino });
  inode.i_blocks = ext4_inode_blocks(di, sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_HUGE_FILE), sbi.s_blocksize);
  inode.i_projid = ext4_inode_projid(di, sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_PROJECT));
  const t = (w: 'atime' | 'mtime' | 'ctime' | 'crtime') => ext4_inode_get_time(di, w);
  inode.i_atime = t('atime');
  inode.i_mtime = t('mtime');
  inode.i_ctime = t('ctime');
  inode.i_btime = ext4_fits_in_inode(di.i_extra_isize, EXT4_INODE_OFF.i_crtime_extra + 4) && isz > EXT4_GOOD_OLD_INODE_SIZE
    ? t('crtime') : null;
  if (inode.i_file_acl && !ext4_block_valid(sb, inode.i_file_acl))
    throw ext4_error(sb, 'ext4_iget', `iget: bad extended attribute block ${inode.i_file_acl}`, { ino });
  if ((inode.i_ext4_flags & EXT4_INLINE_DATA_FL)) {
    if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_INLINE_DATA))
      throw ext4_error(sb, 'ext4_iget', 'iget: inline data flag set without the inline_data feature', { ino });
    if (inode.i_ext4_flags & EXT4_EXTENTS_FL)
      throw ext4_error(sb, 'ext4_iget', 'iget: inline data and extents flags both set', { ino });
    await ext4_find_inline_data(inode);
  } else if (inode.i_ext4_flags & EXT4_EXTENTS_FL) {
    if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS) && sbi.flavour !== 'ext4')
      throw ext4_error(sb, 'ext4_iget', 'iget: extents flag set on a filesystem without extents', { ino });
  }
  if (ino === EXT4_JOURNAL_INO && !(flags & EXT4_IGET_SPECIAL))
    throw ext4_error(sb, 'ext4_iget', 'iget: journal inode referenced', { ino });
  const mode = inode.i_mode & S_IFMT;
  switch (mode) {
    case S_IFREG:
      inode.i_op = ext4_file_inode_operations;
      inode.i_fop = ext4_file_operations;
      inode.i_mapping.a_ops = ext4_aops;
      break;
    case S_IFDIR:
      inode.i_op = ext4_dir_inode_operations;
      inode.i_fop = ext4_dir_operations;
      inode.i_mapping.a_ops = ext4_aops;
      break;
    case S_IFLNK:
      if (inode.i_ext4_flags & (EXT4_IMMUTABLE_FL | EXT4_APPEND_FL))
        throw ext4_error(sb, 'ext4_iget', 'iget: immutable or append flags not allowed on symlinks', { ino });
      inode.i_mapping.a_ops = ext4_aops;
      if (inode.i_ext4_flags & EXT4_ENCRYPT_FL) {
        inode.i_op = ext4_encrypted_symlink_inode_operations;
      } else if (ext4_inode_is_fast_symlink(inode)) {
        if (inode.i_size >= 60)
          throw ext4_error(sb, 'ext4_iget', `iget: fast symlink of size ${inode.i_size}`, { ino });
        let s = '';
        for (let i = 0; i < inode.i_size; i++) s += String.fromCharCode(inode.i_data[i]);
        const nul = s.indexOf('\0');
        inode.i_link = nul >= 0 ? s.slice(0, nul) : s;
        inode.i_op = ext4_fast_symlink_inode_operations;
      } else {
        inode.i_op = ext4_symlink_inode_operations;
      }
      break;
    case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK: {
      inode.i_op = ext4_special_inode_operations;
      const w0 = le32(inode.i_data, 0), w1 = le32(inode.i_data, 4);
      inode.i_rdev = w0 ? old_decode_dev(w0) : new_decode_dev(w1);
      break;
    }
    default:
      if (ino === EXT4_BOOT_LOADER_INO || (flags & EXT4_IGET_SPECIAL)) { inode.i_mapping.a_ops = ext4_aops; break; }
      throw ext4_error(sb, 'ext4_iget', `iget: bogus i_mode (${inode.i_mode.toString(8)})`, { ino });
  }
  if (inode.i_ext4_flags & EXT4_EA_INODE_FL && !(flags & EXT4_IGET_EA_INODE) && mode !== S_IFREG)
    throw ext4_error(sb, 'ext4_iget', 'iget: EA_INODE flag on a non-regular inode', { ino });
}

/**
 * ext4_set_inode_flags: the VFS's view of the on-disk flags (S_SYNC, S_APPEND, S_IMMUTABLE,
 * S_NOATIME, S_DIRSYNC, S_ENCRYPTED, S_CASEFOLD, S_VERITY); other i_flags bits stay. No
 * S_DAX: there is no DAX device here.
 */
export function ext4_set_inode_flags(inode: ext4_inode_info): void {
  const f = inode.i_ext4_flags;
  let fl = 0;
  if (f & EXT4_SYNC_FL) fl |= S_SYNC;
  if (f & EXT4_APPEND_FL) fl |= S_APPEND;
  if (f & EXT4_IMMUTABLE_FL) fl |= S_IMMUTABLE;
  if (f & EXT4_NOATIME_FL) fl |= S_NOATIME;
  if (f & EXT4_DIRSYNC_FL) fl |= S_DIRSYNC;
  if (f & EXT4_ENCRYPT_FL) fl |= S_ENCRYPTED;
  if (f & EXT4_CASEFOLD_FL) fl |= S_CASEFOLD;
  if (f & EXT4_VERITY_FL) fl |= S_VERITY;
  const mask = S_SYNC | S_APPEND | S_IMMUTABLE | S_NOATIME | S_DIRSYNC | S_DAX | S_ENCRYPTED | S_CASEFOLD | S_VERITY;
  inode.i_flags = (inode.i_flags & ~mask) | fl;
}

/** old_decode_dev: 8-bit major and minor in 16 bits. */
export function old_decode_dev(v: number): number { return makedev((v >>> 8) & 0xff, v & 0xff); }
/** new_decode_dev: 12-bit major, 20-bit minor split around it. */
export function new_decode_dev(v: number): number {
  const major = (v & 0xfff00) >>> 8;
  const minor = (v & 0xff) | ((v >>> 12) & 0xfff00);
  return makedev(major, minor);
}

/** ext4_inode_is_fast_symlink. */
export function ext4_inode_is_fast_symlink(inode: ext4_inode_info): boolean {
  if ((inode.i_mode & S_IFMT) !== S_IFLNK) return false;
  if (inode.i_ext4_flags & EXT4_EA_INODE_FL) return inode.i_size > 0 && inode.i_size < 60;
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) return false;
  const sbi = EXT4_SB(inode.i_sb);
  const eaBlocks = inode.i_file_acl ? sbi.s_blocksize * sbi.s_cluster_ratio / 512 : 0;
  return inode.i_blocks - eaBlocks === 0;
}

/**
 * ext4_map_blocks (lookup): mapping of `lblk` for up to `max` blocks through the extent
 * tree or the block map. Inline-data inodes have no blocks.
 */
export async function ext4_map_blocks(inode: ext4_inode_info, lblk: number, max: number): Promise<MappedBlock> {
  ext4_check_shutdown(inode.i_sb);
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) return { pblk: 0, len: Math.max(1, max) };
  const extents = (inode.i_ext4_flags & EXT4_EXTENTS_FL) !== 0;
  if (extents) {
    const es = ext4_es_lookup_extent(inode, lblk);
    if (es) return es_to_map(es, lblk, max);
  }
  if (!inode.i_data_sem.tryDownRead()) await inode.i_data_sem.downRead();
  try {
    if (!extents) return await ext4_ind_map_blocks(inode, lblk, max);
    // The whole extent (or hole) is looked up and cached: the next blocks come from the cache.
    const m = await ext4_ext_map_blocks(inode, lblk, EXT_MAX_BLOCKS - lblk);
    ext4_es_insert_extent(inode, lblk, m.len, m.pblk,
      !m.pblk ? EXTENT_STATUS_HOLE : m.unwritten ? EXTENT_STATUS_UNWRITTEN : EXTENT_STATUS_WRITTEN);
    return { pblk: m.pblk, len: Math.max(1, Math.min(max, m.len)), unwritten: m.unwritten };
  } finally {
    inode.i_data_sem.upRead();
  }
}

function es_to_map(es: extent_status, lblk: number, max: number): MappedBlock {
  const off = lblk - es.es_lblk;
  const len = Math.max(1, Math.min(max, es.es_len - off));
  if (es.es_status & EXTENT_STATUS_HOLE) return { pblk: 0, len };
  return { pblk: es.es_pblk + off, len, unwritten: (es.es_status & EXTENT_STATUS_UNWRITTEN) !== 0 };
}

/**
 * ext4_get_block: the GetBlock handed to the generic page I/O helpers (buffer.ts). With
 * `create` a hole is allocated (ext4_map_blocks with EXT4_GET_BLOCKS_CREATE) in its own
 * handle, and the new blocks come back marked new so that the page zeroes what the write
 * does not cover.
 */
export async function ext4_get_block(inode: inode, iblock: number, maxBlocks: number, create: boolean): Promise<MappedBlock> {
  const ei = EXT4_I(inode);
  if (!create) return ext4_map_blocks(ei, iblock, maxBlocks);
  ext4_check_shutdown(inode.i_sb);
  // One block per call, as __block_write_begin asks for one buffer at a time: the helper's
  // maxBlocks runs to the end of the page, and blocks past i_size must not be allocated.
  const handle = ext4_journal_start(inode, EXT4_HT_MAP_BLOCKS, ext4_chunk_trans_blocks(inode, 1));
  try {
    return await ext4_map_blocks_create(handle, ei, iblock, 1);
  } finally {
    await ext4_journal_stop(handle);
  }
}

/**
 * ext4_map_blocks with EXT4_GET_BLOCKS_CREATE: the mapping of `lblk`, allocating up to
 * `max` blocks of the hole it falls in. i_data_sem is held for writing around the change.
 */
export async function ext4_map_blocks_create(handle: handle_t, inode: ext4_inode_info, lblk: number, max: number, flags = EXT4_GET_BLOCKS_CREATE): Promise<MappedBlock> {
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) throw err(EROFS);
  await inode.i_data_sem.downWrite();
  ext4_es_remove_extent(inode);
  try {
    const m = inode.i_ext4_flags & EXT4_EXTENTS_FL
      ? await ext4_ext_map_blocks_create(handle, inode, lblk, max, flags)
      : await ext4_ind_map_blocks_create(handle, inode, lblk, max, flags);
    if (m.isNew) {
      // data=ordered: the data of these blocks goes to the disk before this transaction's commit.
      const bs = EXT4_SB(inode.i_sb).s_blocksize;
      ext4_jbd2_inode_add_write(handle, inode, lblk * bs, m.len * bs);
      await ext4_mark_inode_dirty(handle, inode);
    }
    return m;
  } finally {
    inode.i_data_sem.upWrite();
  }
}

/** ext4_chunk_trans_blocks (an estimate: the journal uses it, nojournal ignores it). */
export function ext4_chunk_trans_blocks(_inode: inode, nrblocks: number): number {
  return EXT4_DATA_TRANS_BLOCKS + Math.min(nrblocks, 64);
}

/**
 * Read `len` bytes of file data at `pos` into `out` (at outOff), block by block through the
 * mapping: holes and unwritten extents read as zeros, inline data from the inode. Used by
 * readpage and by code that needs data without the page cache (slow symlinks, ea_inodes).
 */
export async function ext4_read_data(inode: ext4_inode_info, pos: number, out: Uint8Array, outOff = 0, len = out.length - outOff): Promise<void> {
  const sb = inode.i_sb;
  const bs = EXT4_SB(sb).s_blocksize;
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) {
    const data = await ext4_read_inline_data(inode);
    out.fill(0, outOff, outOff + len);
    if (pos < data.length) out.set(data.subarray(pos, Math.min(data.length, pos + len)), outOff);
    return;
  }
  let done = 0;
  while (done < len) {
    const cur = pos + done;
    const lblk = Math.floor(cur / bs);
    const inBlk = cur % bs;
    const wantBlocks = Math.ceil((inBlk + len - done) / bs);
    const m = await ext4_map_blocks(inode, lblk, Math.min(wantBlocks, 0xffff));
    const n = Math.min(len - done, m.len * bs - inBlk);
    if (m.pblk === 0 || m.unwritten) {
      out.fill(0, outOff + done, outOff + done + n);
      done += n;
      continue;
    }
    let copied = 0;
    for (let i = 0; copied < n; i++) {
      const b = await ext4_sb_bread(sb, m.pblk + i, 'ext4_read_data', inode.i_ino);
      const from = i === 0 ? inBlk : 0;
      const k = Math.min(bs - from, n - copied);
      out.set(b.subarray(from, from + k), outOff + done + copied);
      copied += k;
    }
    done += n;
  }
}

/**
 * Can this inode's pages go through the generic mpage path (straight into the page, one
 * bio per contiguous run)? Not for inline data, not for blocks larger than a page, and not
 * while journal-replayed blocks live in memory (the overlay must be consulted).
 */
function ext4_use_mpage(inode: ext4_inode_info): boolean {
  const sbi = EXT4_SB(inode.i_sb);
  return !(inode.i_ext4_flags & EXT4_INLINE_DATA_FL) && sbi.s_blocksize <= PAGE_SIZE && sbi.s_overlay.size === 0 &&
    !!inode.i_sb.s_bdev && !ext4_should_journal_data(inode);
}

/**
 * read_folio: fill one page-cache page. The slow path reads block by block through the
 * metadata path (overlay first); the tail past i_size is zeroed.
 */
async function ext4_readpage(_file: file | null, page: page): Promise<void> {
  const inode = EXT4_I((page.mapping as { host: inode }).host);
  if (ext4_use_mpage(inode)) { await mpage_read_folio(page, ext4_get_block); return; }
  try {
    const pos = page.index * PAGE_SIZE;
    const data = page.data;
    const valid = Math.max(0, Math.min(PAGE_SIZE, inode.i_size - pos));
    if (valid > 0) await ext4_read_data(inode, pos, data, 0, valid);
    data.fill(0, valid);
    end_page_read(page, true);
  } catch {
    end_page_read(page, false);
  }
}

async function ext4_readahead(mapping: address_space, pages: page[]): Promise<void> {
  const inode = EXT4_I(mapping.host);
  if (ext4_use_mpage(inode)) { await mpage_readahead(pages, ext4_get_block); return; }
  for (const p of pages) await ext4_readpage(null, p);
}

/* ---- the write side: delayed allocation (ext4_da_*) and nodelalloc ---- */

/**
 * ext4_truncate_failed_write after a failed write_begin, and ext4_should_retry_alloc: blocks
 * the running transaction freed become usable once it commits, so ENOSPC is retried once
 * after a commit.
 */
async function ext4_write_begin_retry(ei: ext4_inode_info, pos: number, len: number, begin: () => Promise<page>): Promise<page> {
  for (let retry = 0; ; retry++) {
    try {
      return await begin();
    } catch (e) {
      // Blocks the failed page got past i_size (with blocks smaller than a page some of its
      // buffers may have been allocated or reserved) are given back.
      if (pos + len > ei.i_size) {
        await truncate_pagecache(ei, ei.i_size).catch(() => {});
        await ext4_truncate(ei).catch(() => {});
      }
      const sb = ei.i_sb;
      if (retry === 0 && (e as { errno?: number }).errno === ENOSPC && EXT4_SB(sb).s_busy_blocks.size) {
        await ext4_force_commit(sb);
        continue;
      }
      throw e;
    }
  }
}

/**
 * Does this inode's data go through delayed allocation? (ext4_should_dioread_nolock-like
 * test of test_opt(DELALLOC): regular files with blocks, delalloc mounted, no data=journal.)
 */
function ext4_use_delalloc(inode: ext4_inode_info): boolean {
  return EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_DELALLOC) && (inode.i_mode & S_IFMT) === S_IFREG &&
    !(inode.i_ext4_flags & EXT4_INLINE_DATA_FL);
}

/**
 * ext4_nonda_switch: with little free space left, reservations are too coarse a promise
 * (metadata at writeback, and the blocks other writers reserved): fall back to allocating
 * at write_begin, which gives ENOSPC exactly when the blocks run out.
 */
function ext4_nonda_switch(sbi: ReturnType<typeof EXT4_SB>): boolean {
  const free = sbi.s_freeclusters_counter, dirty = sbi.s_dirtyclusters_counter;
  return 2 * free < 3 * dirty || free < dirty + EXT4_FREECLUSTERS_WATERMARK;
}
/** Headroom (clusters) below which writes stop reserving (Linux scales it with its per-CPU counters). */
const EXT4_FREECLUSTERS_WATERMARK = 64;

/** ext4_da_reserve_space: one block for a delayed buffer, or ENOSPC. */
function ext4_da_reserve_space(inode: ext4_inode_info): void {
  const sbi = EXT4_SB(inode.i_sb);
  if (!ext4_claim_free_clusters(sbi, 1, 0)) throw err(ENOSPC);
  inode.i_reserved_data_blocks++;
}

/**
 * ext4_da_release_space / ext4_da_update_reserve_space: `n` reserved blocks are given back
 * (their buffers were invalidated) or were allocated at writeback.
 */
export function ext4_da_release_space(inode: ext4_inode_info, n: number): void {
  if (n <= 0) return;
  const sbi = EXT4_SB(inode.i_sb);
  if (n > inode.i_reserved_data_blocks) {
    ext4_msg(inode.i_sb, 'KERN_WARNING', `ext4_da_release_space: ino ${inode.i_ino}, to_free ${n} with only ${inode.i_reserved_data_blocks} reserved data blocks`);
    n = inode.i_reserved_data_blocks;
  }
  inode.i_reserved_data_blocks -= n;
  sbi.s_dirtyclusters_counter = Math.max(0, sbi.s_dirtyclusters_counter - n);
}

/**
 * ext4_da_get_block_prep: the BlockMapper of a delayed-allocation write_begin. A block that
 * is mapped (or unwritten: converted, as the nodelalloc path does) comes back as such; a
 * hole gets a reservation and a BH_Delay buffer, and no block until writeback.
 */
const ext4_da_get_block_prep: BlockMapper = asMapper(async (inode, iblock, _max, create) => {
  const ei = EXT4_I(inode);
  const m = await ext4_map_blocks(ei, iblock, 1);
  if (m.pblk !== 0 && !(m.unwritten && create)) {
    return { mapped: true, pblk: m.pblk, isNew: false, unwritten: !!m.unwritten, len: 1 };
  }
  if (m.pblk !== 0 || !create) {
    const r = await ext4_get_block(inode, iblock, 1, create);
    return { mapped: r.pblk !== 0, pblk: r.pblk, isNew: !!r.isNew, unwritten: !!r.unwritten, len: 1 };
  }
  ext4_da_reserve_space(ei);
  return { mapped: true, pblk: 0, isNew: true, unwritten: false, len: 1, delay: true };
});

/* ---- data=journal (ext4_journalled_write_end, write_end_fn) ---- */

/**
 * The write side of data=journal: blocks are allocated at write_begin (no delayed
 * allocation), and write_end copies each block the write touched into the block device's
 * cache and journals it there, as metadata (do_journal_get_write_access +
 * ext4_handle_dirty_metadata). That cache is where the file's latest data is until the
 * checkpoint writes it home, so these files' pages are read through it (ext4_use_mpage is
 * false for them), and a page not uptodate is filled from it before a partial write.
 */
async function ext4_journalled_write_begin(m: address_space, ei: ext4_inode_info, pos: number, len: number): Promise<page> {
  ext4_check_shutdown(ei.i_sb);
  if (ei.i_sb.s_flags & SB_RDONLY) throw err(EROFS);
  const index = Math.floor(pos / PAGE_SIZE);
  if (len < PAGE_SIZE && index * PAGE_SIZE < ei.i_size) {
    const page = await find_or_create_page(m, index);
    try {
      if (!page.test(PG_uptodate)) {
        const valid = Math.max(0, Math.min(PAGE_SIZE, ei.i_size - index * PAGE_SIZE));
        await ext4_read_data(ei, index * PAGE_SIZE, page.data, 0, valid);
        page.data.fill(0, valid);
        page.set(PG_uptodate);
      }
    } finally { unlock_page(page); put_page(page); }
  }
  return ext4_write_begin_retry(ei, pos, len, () => block_write_begin(m, pos, len, ext4_get_block));
}

/** write_end_fn over [from, to) of a page: its blocks' bytes journalled in the block device's cache. */
async function ext4_journal_page_blocks(handle: handle_t, ei: ext4_inode_info, page: page, from: number, to: number): Promise<void> {
  const bhs = page_buffers(page);
  if (!bhs) return;
  for (const bh of bhs) {
    if (bh.b_offset + bh.b_size <= from || bh.b_offset >= to || !bh.test(BH_Mapped) || !bh.b_blocknr) continue;
    const dbh = await sb_getblk(ei.i_sb, bh.b_blocknr);
    try {
      await ext4_journal_get_write_access(handle, ei.i_sb, dbh);
      dbh.b_data.set(page.data.subarray(bh.b_offset, bh.b_offset + bh.b_size));
      dbh.set(BH_Uptodate);
      await ext4_handle_dirty_metadata(handle, ei, dbh);
    } finally { brelse(dbh); }
  }
}

/** ext4_journalled_write_end: the copied bytes' blocks journalled, i_size and the on-disk size together. */
async function ext4_journalled_write_end(ei: ext4_inode_info, pos: number, len: number, copied: number, page: page): Promise<number> {
  const from = pos % PAGE_SIZE;
  if (copied < len && !page.test(PG_uptodate)) copied = 0;
  // __block_commit_write without the dirtying: the journal writes these blocks, and the
  // checkpoint writes them home; the page itself stays clean (writeback has nothing to do).
  const bhs = page_buffers(page);
  if (bhs) {
    let partial = false;
    for (const bh of bhs) {
      if (bh.b_offset + bh.b_size <= from || bh.b_offset >= from + copied) {
        if (!bh.test(BH_Uptodate)) partial = true;
      } else {
        bh.set(BH_Uptodate);
        bh.clear(BH_Dirty);
      }
      bh.clear(BH_New);
    }
    if (!partial) page.set(PG_uptodate);
    if (!bhs.some((bh) => bh.test(BH_Dirty))) clear_page_dirty_for_io(page);
  }
  const bs = EXT4_SB(ei.i_sb).s_blocksize;
  const handle = ext4_journal_start(ei, EXT4_HT_WRITE_PAGE, Math.ceil(PAGE_SIZE / bs) + 2);
  try {
    try {
      await ext4_journal_page_blocks(handle, ei, page, from, from + copied);
      if (pos + copied > ei.i_size) ei.i_size = pos + copied;
      if (ei.i_size > ei.i_disksize) ei.i_disksize = ei.i_size;
    } finally {
      unlock_page(page);
      put_page(page);
    }
    ext4_update_inode_fsync_trans(handle, ei, true);
    await ext4_mark_inode_dirty(handle, ei);
  } finally { await ext4_journal_stop(handle); }
  return copied;
}

/** ext4_da_write_begin: the page for [pos, pos+len) with its new blocks reserved, not allocated. */
async function ext4_da_write_begin(m: address_space, pos: number, len: number): Promise<page> {
  const ei = EXT4_I(m.host);
  if (ei.i_state_flags & EXT4_STATE_MAY_INLINE_DATA || ei.i_ext4_flags & EXT4_INLINE_DATA_FL) {
    if (ei.i_sb.s_flags & SB_RDONLY) throw err(EROFS);
    const page = await ext4_da_write_inline_data_begin(m, ei, pos, len);
    if (page) return page;
  }
  if (ext4_should_journal_data(ei)) return ext4_journalled_write_begin(m, ei, pos, len);
  if (!ext4_use_delalloc(ei) || ext4_nonda_switch(EXT4_SB(ei.i_sb))) {
    return ext4_write_begin_retry(ei, pos, len, () => block_write_begin(m, pos, len, ext4_get_block));
  }
  ext4_check_shutdown(ei.i_sb);
  if (ei.i_sb.s_flags & SB_RDONLY) throw err(EROFS);
  return ext4_write_begin_retry(ei, pos, len, () => block_write_begin(m, pos, len, ext4_da_get_block_prep));
}

/**
 * ext4_da_write_end: i_size grows at once; the on-disk size (i_disksize) only when the block
 * at the new end already has its block — otherwise writeback sets it once the blocks are
 * allocated, so that no committed size ever covers blocks that are not there.
 */
async function ext4_da_write_end(m: address_space, pos: number, len: number, copied: number, page: page): Promise<number> {
  const ei = EXT4_I(m.host);
  if (ext4_should_journal_data(ei) && !(ei.i_ext4_flags & EXT4_INLINE_DATA_FL)) return ext4_journalled_write_end(ei, pos, len, copied, page);
  if (ei.i_state_flags & EXT4_STATE_MAY_INLINE_DATA && ei.i_ext4_flags & EXT4_INLINE_DATA_FL)
    return ext4_write_inline_data_end(ei, pos, len, copied, page);
  const from = pos % PAGE_SIZE;
  if (copied < len && !page.test(PG_uptodate)) copied = 0;
  block_commit_write(page, from, from + copied);
  const newSize = pos + copied;
  let dirtyInode = false;
  if (newSize > ei.i_size) {
    ei.i_size = newSize;
    const bhs = page_buffers(page);
    const bs = EXT4_SB(ei.i_sb).s_blocksize;
    const last = bhs?.[Math.floor(((newSize - 1) % PAGE_SIZE) / bs)];
    if (copied && newSize > ei.i_disksize && (!last || !last.test(BH_Delay))) {
      ei.i_disksize = newSize;
      dirtyInode = true;
    }
  }
  unlock_page(page);
  put_page(page);
  if (dirtyInode) await mark_inode_dirty(ei, I_DIRTY_SYNC | I_DIRTY_DATASYNC);
  return copied;
}

/** ext4_da_invalidate_folio: reservations of the delayed buffers going away are given back. */
function ext4_da_invalidate_folio(page: page, offset: number, length: number): void {
  const bhs = page_buffers(page);
  if (bhs) {
    let n = 0;
    for (const bh of bhs) {
      if (bh.b_offset >= offset && bh.b_offset + bh.b_size <= offset + length && bh.test(BH_Delay)) {
        bh.clear(BH_Delay);
        n++;
      }
    }
    if (n) ext4_da_release_space(EXT4_I((page.mapping as address_space).host), n);
  }
  block_invalidate_folio(page, offset, length);
}

/**
 * ext4_alloc_da_blocks: start writeback of the inode's delayed data now (filemap_flush), so
 * that its blocks are allocated in the running transaction — before a rename or close
 * that a crash must not find committed without the data (auto_da_alloc).
 */
export async function ext4_alloc_da_blocks(inode: ext4_inode_info): Promise<void> {
  if (!inode.i_reserved_data_blocks) return;
  await filemap_fdatawrite(inode.i_mapping, 0, Infinity, 'none');
}

/** Longest run of delayed blocks mapped in one call (ext4's MAX_WRITEPAGES_EXTENT_LEN). */
const MAX_WRITEPAGES_EXTENT_LEN = 2048;

/**
 * Give blocks to the delayed buffers of `pages` (locked, consecutive, all in one file):
 * runs of consecutive delayed blocks are allocated with one ext4_map_blocks call each
 * (mpage_map_and_submit_extent), in one handle, and i_disksize follows the pages as far as
 * they are now backed (ext4_update_disksize_before_punch's counterpart at writeback).
 */
async function mpage_map_delayed(inode: ext4_inode_info, pages: page[]): Promise<void> {
  const bs = EXT4_SB(inode.i_sb).s_blocksize;
  const perPage = PAGE_SIZE / bs;
  const runs: { lblk: number; bhs: buffer_head[] }[] = [];
  for (const p of pages) {
    const bhs = page_buffers(p);
    if (!bhs) continue;
    for (let i = 0; i < bhs.length; i++) {
      const bh = bhs[i]!;
      if (!bh.test(BH_Delay)) continue;
      const lblk = p.index * perPage + i;
      const run = runs[runs.length - 1];
      if (run && run.lblk + run.bhs.length === lblk && run.bhs.length < MAX_WRITEPAGES_EXTENT_LEN) run.bhs.push(bh);
      else runs.push({ lblk, bhs: [bh] });
    }
  }
  if (!runs.length) return;
  const handle = ext4_journal_start(inode, EXT4_HT_WRITE_PAGE, ext4_chunk_trans_blocks(inode, MAX_WRITEPAGES_EXTENT_LEN) * runs.length);
  try {
    for (const run of runs) {
      let done = 0;
      while (done < run.bhs.length) {
        const mb = await ext4_map_blocks_create(handle, inode, run.lblk + done, run.bhs.length - done,
          EXT4_GET_BLOCKS_CREATE | EXT4_GET_BLOCKS_DELALLOC_RESERVE);
        const n = Math.max(1, Math.min(mb.len, run.bhs.length - done));
        const bdev = inode.i_sb.s_bdev;
        for (let k = 0; k < n; k++) {
          const bh = run.bhs[done + k]!;
          bh.b_blocknr = mb.pblk + k;
          bh.clear(BH_Delay);
          bh.clear(BH_New);
        }
        if (bdev) clean_bdev_aliases(bdev, mb.pblk, n, bs);
        // Blocks that were already there (an unwritten extent or a fallocate in between)
        // were not taken from the reservation, but their reservation ends here all the same.
        ext4_da_release_space(inode, n);
        done += n;
      }
    }
    const last = pages[pages.length - 1]!;
    const disksize = Math.min(inode.i_size, (last.index + 1) * PAGE_SIZE);
    if (disksize > inode.i_disksize) inode.i_disksize = disksize;
    await ext4_mark_inode_dirty(handle, inode);
  } finally {
    await ext4_journal_stop(handle);
  }
}

function page_has_delayed(p: page): boolean {
  return !!page_buffers(p)?.some((bh) => bh.test(BH_Delay));
}

/**
 * ext4_do_writepages: write the dirty pages of the range in index order, giving delayed
 * buffers their blocks first — a batch of consecutive pages at a time, so that a file
 * written in small pieces gets long extents. With `canMap` false (a commit writing ordered
 * data, or reclaim) pages that still need blocks are left dirty.
 */
async function ext4_do_writepages(m: address_space, wbc: writeback_control, canMap: boolean): Promise<void> {
  const inode = EXT4_I(m.host);
  const pages = dirty_pages_in_range(m, wbc);
  const blocksize = EXT4_SB(inode.i_sb).s_blocksize;
  const perPage = PAGE_SIZE / blocksize;
  const io = ext4_io_submit_init(wbc);
  let error: unknown = null;
  try {
    for (let i = 0; i < pages.length && wbc.nr_to_write > 0;) {
      /* lock a batch of consecutive dirty pages */
      const batch: page[] = [];
      for (; i < pages.length && batch.length * perPage < MAX_WRITEPAGES_EXTENT_LEN; i++) {
        const p = pages[i]!;
        if (batch.length && p.index !== batch[batch.length - 1]!.index + 1) break;
        get_page(p);
        if (wbc.sync_mode === 'none') {
          if (!trylock_page(p)) { put_page(p); if (batch.length) { i++; break; } continue; }
        } else await lock_page(p);
        if (p.mapping !== m || !p.test(PG_dirty) || (p.test(PG_writeback) && wbc.sync_mode === 'none')) {
          unlock_page(p); put_page(p);
          if (batch.length) { i++; break; }
          continue;
        }
        if (p.test(PG_writeback)) await wait_on_page_writeback(p);
        batch.push(p);
      }
      if (!batch.length) continue;
      if (canMap && batch.some(page_has_delayed)) {
        try {
          await mpage_map_delayed(inode, batch);
        } catch (e) {
          const errno = (e as { errno?: number }).errno ?? EIO;
          ext4_msg(inode.i_sb, 'KERN_CRIT', `Delayed block allocation failed for inode ${inode.i_ino} at logical offset ${batch[0]!.index * perPage} with max blocks ${batch.length * perPage} with error ${errno}`);
          m.wb_err = errno;
          error ??= e;
        }
      }
      for (const p of batch) {
        try {
          if (page_has_delayed(p)) { unlock_page(p); continue; }   /* stays dirty for a writeback that may map */
          if (!clear_page_dirty_for_io(p)) { unlock_page(p); continue; }
          try {
            // Pages whose dirty buffers all have blocks join the bio being built (page-io.ts);
            // others (buffers still to map) go the generic way.
            if (ext4_page_buffers_mapped(p, blocksize)) await ext4_bio_write_folio(io, inode, p);
            else await block_write_full_page(p, ext4_get_block, wbc);
          } catch (e) { error ??= e; }
          wbc.nr_to_write--;
        } finally { put_page(p); }
      }
      // Submitted before the next batch's pages are locked: a task holding one of them may
      // be waiting for the writeback of a page in this bio.
      await ext4_io_submit(io);
    }
  } finally {
    await ext4_io_submit(io);
  }
  if (error) throw error;
}

/**
 * ext4_normal_submit_inode_data_buffers: data=ordered's writeout before a commit — the
 * pages of bytes [start, end] whose blocks exist, written and waited for; delayed pages
 * stay for writeback.
 */
export async function ext4_normal_submit_inode_data_buffers(inode: inode, start = 0, end = Infinity): Promise<void> {
  const m = inode.i_mapping;
  await m.wb_lock.lock();
  try {
    await ext4_do_writepages(m, { sync_mode: 'all', nr_to_write: Number.MAX_SAFE_INTEGER, range_start: start, range_end: end }, false);
  } finally { m.wb_lock.unlock(); }
  // A write error stays on the mapping for fsync; the commit only warns (data_err=ignore).
  if (await filemap_fdatawait_range_keep_errors(m, start, end))
    ext4_msg(inode.i_sb, 'KERN_WARNING', `JBD2: Detected IO errors while flushing file data of inode ${inode.i_ino}`);
}

export const ext4_aops: address_space_operations = {
  readpage: ext4_readpage,
  readahead: ext4_readahead,
  async bmap(mapping, block) {
    // ext4_bmap: delayed blocks have no number yet; give them one first.
    if (EXT4_I(mapping.host).i_reserved_data_blocks) await filemap_write_and_wait_range(mapping, 0, Infinity);
    const m = await ext4_map_blocks(EXT4_I(mapping.host), block, 1);
    return m.unwritten ? 0 : m.pblk;
  },
  async write_begin(_file: file | null, m: address_space, pos: number, len: number): Promise<page> {
    return ext4_da_write_begin(m, pos, len);
  },
  async write_end(_file: file | null, m: address_space, pos: number, len: number, copied: number, page: page): Promise<number> {
    return ext4_da_write_end(m, pos, len, copied, page);
  },
  async writepage(page: page, wbc: writeback_control): Promise<void> {
    if (page_has_delayed(page)) {
      // ext4_writepage: no allocation from a single-page writeout (reclaim); keep it dirty.
      set_page_dirty(page);
      unlock_page(page);
      return;
    }
    await block_write_full_page(page, ext4_get_block, wbc);
  },
  async writepages(m: address_space, wbc: writeback_control): Promise<void> {
    await ext4_do_writepages(m, wbc, !wbc.for_reclaim);
  },
  invalidate_folio(page: page, offset: number, length: number): void {
    ext4_da_invalidate_folio(page, offset, length);
  },
  release_folio(page: page): boolean {
    return try_to_free_buffers(page);
  },
};

/** ext4_getattr: generic attributes plus btime and the statx attribute flags. */
export async function ext4_getattr(dentry: dentry, stat: kstat, _requestMask: number, _flags: number): Promise<void> {
  const inode = EXT4_I(dentry.d_inode!);
  stat.result_mask = STATX_BASIC_STATS;
  stat.mode = inode.i_mode;
  stat.nlink = inode.i_nlink;
  stat.uid = inode.i_uid;
  stat.gid = inode.i_gid;
  stat.rdev = inode.i_rdev;
  stat.dev = inode.i_sb.s_dev;
  stat.ino = inode.i_ino;
  stat.size = inode.i_size;
  stat.blksize = 1 << inode.i_blkbits;
  stat.blocks = inode.i_blocks;
  stat.atime = inode.i_atime;
  stat.mtime = inode.i_mtime;
  stat.ctime = inode.i_ctime;
  if (inode.i_btime) { stat.btime = inode.i_btime; stat.result_mask |= STATX_BTIME; }
  const f = inode.i_ext4_flags;
  let a = 0;
  if (f & EXT4_APPEND_FL) a |= STATX_ATTR_APPEND;
  if (f & EXT4_COMPR_FL) a |= STATX_ATTR_COMPRESSED;
  if (f & EXT4_ENCRYPT_FL) a |= STATX_ATTR_ENCRYPTED;
  if (f & EXT4_IMMUTABLE_FL) a |= STATX_ATTR_IMMUTABLE;
  if (f & EXT4_NODUMP_FL) a |= STATX_ATTR_NODUMP;
  if (f & EXT4_VERITY_FL) a |= STATX_ATTR_VERITY;
  if (f & EXT4_DAX_FL) a |= STATX_ATTR_DAX;
  stat.attributes = a;
}

/**
 * ext4_file_getattr: regular files with inline data report at least the sectors their
 * size needs (Linux: so that tar and rsync do not take them for sparse).
 */
export async function ext4_file_getattr(dentry: dentry, stat: kstat, requestMask: number, flags: number): Promise<void> {
  await ext4_getattr(dentry, stat, requestMask, flags);
  const inode = EXT4_I(dentry.d_inode!);
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) stat.blocks += Math.ceil(stat.size / 512);
  // Blocks reserved by delayed allocation are the file's already (as Linux reports them).
  stat.blocks += inode.i_reserved_data_blocks * (EXT4_SB(inode.i_sb).s_blocksize / 512);
}

/* ---- writing inodes ---- */

/** old_encode_dev / new_encode_dev (kdev_t.h). */
function old_valid_dev(dev: number): boolean { return major(dev) < 256 && minor(dev) < 256; }
function old_encode_dev(dev: number): number { return (major(dev) << 8) | minor(dev); }
function new_encode_dev(dev: number): number {
  const mj = major(dev), mn = minor(dev);
  return ((mn & 0xff) | (mj << 8) | ((mn & ~0xff) << 12)) >>> 0;
}

/** Set i_block for a device inode as ext4_do_update_inode writes it. */
export function ext4_set_dev(inode: ext4_inode_info, rdev: number): void {
  inode.i_data.fill(0);
  if (old_valid_dev(rdev)) put_le32(inode.i_data, 0, old_encode_dev(rdev));
  else put_le32(inode.i_data, 4, new_encode_dev(rdev));
}

/**
 * ext4_do_update_inode: the in-core inode into its slot of the inode table (fields over
 * the raw copy, so in-inode xattrs and fields we do not model survive), with its checksum,
 * the table block dirtied under `handle`.
 */
export async function ext4_do_update_inode(handle: handle_t, inode: ext4_inode_info): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const isz = sbi.s_inode_size;
  const ino = inode.i_ino;
  const loc = ext4_inode_loc(sb, ino);
  if (!ext4_block_valid(sb, loc.block))
    throw ext4_error(sb, 'ext4_do_update_inode', `Invalid inode table block ${loc.block} in block_group ${loc.group}`, { ino });
  const bh = await ext4_sb_bread_bh(sb, loc.block, 'ext4_do_update_inode', ino);
  try {
    await ext4_journal_get_write_access(handle, sb, bh);
    if (inode.i_raw.length !== isz) { const r = new Uint8Array(isz); r.set(inode.i_raw.subarray(0, isz)); inode.i_raw = r; }
    const raw = inode.i_raw;
    const before = raw.slice();
    const wasNew = (inode.i_state_flags & EXT4_STATE_NEW) !== 0;
    if (isz > EXT4_GOOD_OLD_INODE_SIZE) put_le16(raw, EXT4_INODE_OFF.i_extra_isize, inode.i_extra_isize);
    const di = ext4_inode_decode(raw, 0, isz);
    di.i_mode = inode.i_mode;
    if (sbi.test_opt(EXT4_MOUNT_NO_UID32)) {
      di.i_uid = inode.i_uid > 0xffff ? 65534 : inode.i_uid;
      di.i_gid = inode.i_gid > 0xffff ? 65534 : inode.i_gid;
      di.l_i_uid_high = 0; di.l_i_gid_high = 0;
    } else {
      ext4_inode_uid_set(di, inode.i_uid);
      ext4_inode_gid_set(di, inode.i_gid);
    }
    di.i_links_count = inode.i_nlink;
    di.i_flags = inode.i_ext4_flags >>> 0;
    di.i_dtime = inode.i_dtime >>> 0;
    di.i_generation = inode.i_generation >>> 0;
    ext4_isize_set(di, inode.i_disksize);   /* not i_size: delayed blocks are not on the disk yet */
    if (!ext4_inode_blocks_set(di, inode.i_blocks, sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_HUGE_FILE), sbi.s_blocksize))
      throw err(EFBIG);
    inode.i_ext4_flags = di.i_flags >>> 0;
    ext4_inode_file_acl_set(di, inode.i_file_acl);
    if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT)) di.l_i_file_acl_high = 0;
    const type = inode.i_mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) ext4_set_dev(inode, inode.i_rdev);
    di.i_block = inode.i_data.slice();
    ext4_inode_set_time(di, 'atime', inode.i_atime);
    ext4_inode_set_time(di, 'mtime', inode.i_mtime);
    ext4_inode_set_time(di, 'ctime', inode.i_ctime);
    if (inode.i_btime) ext4_inode_set_time(di, 'crtime', inode.i_btime);
    if (sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_PROJECT) && ext4_fits_in_inode(di.i_extra_isize, 0xa0)) di.i_projid = inode.i_projid;
    ext4_inode_encode(di, raw, 0, isz);
    if (sbi.s_csum?.metadata_csum) ext4_inode_csum_set(sbi.s_csum, ino, raw, 0);
    bh.b_data.set(raw, loc.offset);
    inode.i_loc_block = loc.block;
    inode.i_loc_offset = loc.offset;
    inode.i_state_flags &= ~EXT4_STATE_NEW;
    // fdatasync needs this transaction unless only times (and so the checksum) changed.
    ext4_update_inode_fsync_trans(handle, inode, wasNew || !ext4_inode_same_but_times(before, raw));
    await ext4_handle_dirty_metadata(handle, inode, bh);
  } finally { brelse(bh); }
}

/* The bytes of an on-disk inode that only say when (times) or check it (checksum). */
const TIME_ONLY_BYTES: readonly (readonly [number, number])[] = [
  [EXT4_INODE_OFF.i_atime, 4], [EXT4_INODE_OFF.i_ctime, 4], [EXT4_INODE_OFF.i_mtime, 4],
  [EXT4_INODE_OFF.l_i_checksum_lo, 2], [EXT4_INODE_OFF.i_checksum_hi, 2], [EXT4_INODE_OFF.i_ctime_extra, 4],
  [EXT4_INODE_OFF.i_mtime_extra, 4], [EXT4_INODE_OFF.i_atime_extra, 4], [EXT4_INODE_OFF.i_crtime, 4],
  [EXT4_INODE_OFF.i_crtime_extra, 4],
];
/** Two raw inodes differ in nothing but their times and checksum. */
function ext4_inode_same_but_times(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  const skip = new Uint8Array(a.length);
  for (const [off, n] of TIME_ONLY_BYTES) if (off + n <= a.length) skip.fill(1, off, off + n);
  for (let i = 0; i < a.length; i++) if (!skip[i] && a[i] !== b[i]) return false;
  return true;
}

/** ext4_mark_inode_dirty: write the in-core inode into its buffer now. */
export async function ext4_mark_inode_dirty(handle: handle_t, inode: inode): Promise<void> {
  await ext4_do_update_inode(handle, EXT4_I(inode));
}

/**
 * ext4_write_inode (nojournal): the inode into its buffer, and for a synchronous write the
 * buffer to disk.
 */
export async function ext4_write_inode(inode: inode, sync: boolean): Promise<void> {
  const sb = inode.i_sb;
  if (sb.s_flags & SB_RDONLY || EXT4_SB(sb).s_readonly_driver) return;
  if (inode.i_nlink === 0 && (inode.i_state & I_FREEING)) return;
  const handle = ext4_journal_start(inode, EXT4_HT_INODE, 1);
  try { await ext4_do_update_inode(handle, EXT4_I(inode)); } finally { await ext4_journal_stop(handle); }
  if (sync) {
    const bh = await ext4_sb_bread_bh(sb, EXT4_I(inode).i_loc_block, 'ext4_write_inode', inode.i_ino);
    try { await sync_dirty_buffer(bh); } finally { brelse(bh); }
  }
}

/* ---- truncation ---- */

/**
 * data=journal: the block that block_truncate_page zeroed past i_size is journalled too
 * (ext4_block_zero_page_range does so in Linux), so the cache the file is read through
 * has the zeros.
 */
async function ext4_journal_truncated_block(inode: ext4_inode_info): Promise<void> {
  const page = find_get_page(inode.i_mapping, Math.floor(inode.i_size / PAGE_SIZE));
  if (!page) return;
  try {
    await lock_page(page);
    const handle = ext4_journal_start(inode, EXT4_HT_TRUNCATE, 3);
    try {
      const off = inode.i_size % PAGE_SIZE;
      await ext4_journal_page_blocks(handle, inode, page, off, off + 1);
    } finally {
      unlock_page(page);
      await ext4_journal_stop(handle);
    }
  } finally { put_page(page); }
}

/**
 * ext4_truncate: free the blocks past i_size (rounded up to a block) and zero the tail of
 * the last block. The caller has set i_size and dropped the page cache past it.
 */
export async function ext4_truncate(inode: ext4_inode_info): Promise<void> {
  // auto_da_alloc: a file truncated to nothing and written again ("rewrite in place") gets
  // its new data allocated at close (ext4_release_file), not up to 30 s later.
  if (inode.i_size === 0 && !EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_NO_AUTO_DA_ALLOC)) inode.i_state_flags |= EXT4_STATE_DA_ALLOC_CLOSE;
  const sb = inode.i_sb;
  const type = inode.i_mode & S_IFMT;
  if (!(type === S_IFREG || type === S_IFDIR || type === S_IFLNK)) return;
  if (type === S_IFLNK && ext4_inode_is_fast_symlink(inode)) return;
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) return ext4_inline_data_truncate(inode);
  if (inode.i_size % EXT4_SB(sb).s_blocksize && inode.i_mapping.a_ops === ext4_aops) {
    await block_truncate_page(inode.i_mapping, inode.i_size, ext4_get_block);
    if (ext4_should_journal_data(inode)) await ext4_journal_truncated_block(inode);
  }
  const first = Math.ceil(inode.i_size / EXT4_SB(sb).s_blocksize);
  const handle = ext4_journal_start(inode, EXT4_HT_TRUNCATE, EXT4_DATA_TRANS_BLOCKS);
  try {
    await inode.i_data_sem.downWrite();
    ext4_es_remove_extent(inode);
    try {
      if (inode.i_ext4_flags & EXT4_EXTENTS_FL) await ext4_ext_truncate(handle, inode, first);
      else await ext4_ind_truncate(handle, inode, first);
    } finally { inode.i_data_sem.upWrite(); }
    // The zeroed tail of the last block reaches the disk before the new size commits
    // (ext4_block_truncate_page's ext4_jbd2_inode_add_write).
    const tail = inode.i_size % EXT4_SB(sb).s_blocksize;
    if (tail) ext4_jbd2_inode_add_write(handle, inode, inode.i_size, EXT4_SB(sb).s_blocksize - tail);
    inode.i_disksize = inode.i_size;
    await ext4_mark_inode_dirty(handle, inode);
  } finally {
    await ext4_journal_stop(handle);
  }
}

/**
 * ext4_setattr: ownership, mode and times (setattr_copy after the VFS's checks), and size:
 * a shrink drops the page cache past it and frees the blocks, a grow leaves a hole.
 */
export async function ext4_setattr(dentry: dentry, attr: iattr): Promise<void> {
  const inode = EXT4_I(dentry.d_inode!);
  const sb = inode.i_sb;
  if (sb.s_flags & SB_RDONLY || EXT4_SB(sb).s_readonly_driver) throw err(EROFS);
  await setattr_prepare(dentry, attr);
  if (attr.ia_valid & ATTR_SIZE) {
    const size = attr.ia_size!;
    if ((inode.i_mode & S_IFMT) !== S_IFREG) throw err(EINVAL);
    inode_newsize_ok(inode, size);
    if (!(inode.i_ext4_flags & EXT4_EXTENTS_FL) && size > ext4_max_bitmap_size_of(inode)) throw err(EFBIG);
    // An inline file grown past its inline area moves to a block (Linux keeps it inline up
    // to i_inline_size); a shrink keeps it inline (ext4_truncate -> ext4_inline_data_truncate).
    if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL && size > inode.i_size && size > inode.i_inline_size) await ext4_convert_inline_data(inode);
    if (size === inode.i_size) {
      // Linux's ext4_setattr sets mtime and ctime for every size change that does not
      // shrink, to the same size too (truncate(2) of a file to its size changes them).
      const now = current_time(inode);
      inode.i_mtime = now; inode.i_ctime = { ...now };
    } else {
      const old = inode.i_size;
      if (!(attr.ia_valid & (ATTR_MTIME | ATTR_CTIME))) {
        const now = current_time(inode);
        inode.i_mtime = now; inode.i_ctime = { ...now };
      }
      if (size < old) {
        await filemap_write_and_wait_range(inode.i_mapping, size, Infinity);
        inode.i_size = size;
        await truncate_pagecache(inode, size);
        await ext4_truncate(inode);
      } else {
        inode.i_size = size;
        inode.i_disksize = size;
      }
    }
  }
  setattr_copy(inode, attr);
  const handle = ext4_journal_start(inode, EXT4_HT_INODE, 3);
  try { await ext4_mark_inode_dirty(handle, inode); } finally { await ext4_journal_stop(handle); }
  /* the access ACL follows the new mode (its own transaction, as in Linux) */
  if (attr.ia_valid & ATTR_MODE) await posix_acl_chmod(dentry, inode.i_mode);
}

function ext4_max_bitmap_size_of(inode: inode): number { return inode.i_sb.s_maxbytes; }

/**
 * ext4_evict_inode: an inode with no links left gives back its blocks, its xattr block and
 * its number (i_dtime set, as e2fsck expects of a deleted inode); others just leave the cache.
 */
export async function ext4_evict_inode(inode: inode): Promise<void> {
  const ei = EXT4_I(inode);
  const sb = inode.i_sb;
  await truncate_inode_pages(inode.i_mapping, 0);
  truncate_inode_pages_final(inode);
  if (ei.i_reserved_data_blocks) {
    // ext4_destroy_inode's check: every delayed buffer was allocated or invalidated by now.
    ext4_msg(sb, 'KERN_ERR', `Inode ${inode.i_ino}: i_reserved_data_blocks (${ei.i_reserved_data_blocks}) not cleared!`);
    ext4_da_release_space(ei, ei.i_reserved_data_blocks);
  }
  if (inode.i_nlink !== 0 || sb.s_flags & SB_RDONLY || EXT4_SB(sb).s_readonly_driver || is_bad_ext4_inode(ei)) {
    // Not deleted here (read-only): an orphan stays on the on-disk chain for a later mount.
    if (inode.i_nlink === 0) await ext4_orphan_del(null, ei);
    return;
  }
  const handle = ext4_journal_start(inode, EXT4_HT_TRUNCATE, EXT4_DATA_TRANS_BLOCKS + 3);
  try {
    inode.i_size = 0;
    ei.i_disksize = 0;
    if (ei.i_ext4_flags & EXT4_INLINE_DATA_FL) {
      /* inline data lives in the inode: nothing to free */
    } else if (!((inode.i_mode & S_IFMT) === S_IFLNK && ext4_inode_is_fast_symlink(ei)) && ext4_has_blocks(ei)) {
      await ei.i_data_sem.downWrite();
      ext4_es_remove_extent(ei);
      try {
        if (ei.i_ext4_flags & EXT4_EXTENTS_FL) await ext4_ext_truncate(handle, ei, 0);
        else await ext4_ind_truncate(handle, ei, 0);
      } finally { ei.i_data_sem.upWrite(); }
    }
    await ext4_xattr_delete_inode(handle, ei);
    await ext4_orphan_del(handle, ei);
    ei.i_dtime = Math.max(0, Math.floor(Date.now() / 1000)) >>> 0;
    await ext4_mark_inode_dirty(handle, ei);
    await ext4_free_inode(handle, ei);
  } finally {
    await ext4_journal_stop(handle).catch(() => {});
  }
}

function ext4_has_blocks(inode: ext4_inode_info): boolean {
  return inode.i_blocks > 0 || (inode.i_ext4_flags & EXT4_EXTENTS_FL) !== 0;
}
function is_bad_ext4_inode(inode: ext4_inode_info): boolean { return inode.i_mode === 0; }
