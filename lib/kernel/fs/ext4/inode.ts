/*
 * Inodes (fs/ext4/inode.c): reading an inode from its table (ext4_iget) with every field
 * Linux decodes and every check it makes, logical-to-physical block mapping for both
 * extent and block-map files (ext4_map_blocks, the GetBlock for generic page I/O), the
 * address-space operations, getattr (with btime) and the inode operations shared by all
 * file types. Directory, symlink and regular-file specifics live in namei.ts, symlink.ts
 * and file.ts; on-disk layouts in layout.ts.
 */
import {
  I_NEW, type Dentry, type Iattr, type Inode, type Kstat, type super_block, type File,
  type address_space_operations, type address_space,
} from '../../include/fs.js';
import type { MappedBlock } from '../../include/blk.js';
import { err } from '../../include/errno.js';
import {
  EROFS, ESTALE, S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO,
  S_IFSOCK, STATX_BASIC_STATS, STATX_BTIME, makedev,
} from '../../include/uapi.js';
import { iget_failed, iget_locked, iput, unlock_new_inode } from '../inode.js';
import type { Page } from '../../mm/page_alloc.js';
import { PAGE_SIZE, end_page_read } from '../../mm/filemap.js';
import { mpage_readahead, mpage_read_folio } from '../mpage.js';
import {
  EXT4_APPEND_FL, EXT4_BOOT_LOADER_INO, EXT4_EA_INODE_FL, EXT4_ENCRYPT_FL, EXT4_EXTENTS_FL,
  EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_INLINE_DATA,
  EXT4_FEATURE_INCOMPAT_LARGEDIR, EXT4_FEATURE_RO_COMPAT_HUGE_FILE, EXT4_FEATURE_RO_COMPAT_PROJECT,
  EXT4_IMMUTABLE_FL, EXT4_INLINE_DATA_FL, EXT4_INODE_OFF, EXT4_JOURNAL_INO, EXT4_ROOT_INO,
  EXT4_NODUMP_FL, EXT4_COMPR_FL, EXT4_VERITY_FL, EXT4_DAX_FL, ext4_fits_in_inode,
  ext4_inode_blocks, ext4_inode_check_extra_isize, ext4_inode_decode, ext4_inode_file_acl,
  ext4_inode_get_time, ext4_inode_gid, ext4_inode_projid, ext4_inode_table, ext4_inode_uid,
  ext4_isize, le32, EXT4_GOOD_OLD_INODE_SIZE,
} from './layout.js';
import { ext4_inode_csum_seed, ext4_inode_csum_verify } from './csum.js';
import { EXT4_I, EXT4_SB, type Ext4Inode, EXT4_MOUNT_NO_UID32 } from './ext4.js';
import { ext4_csum_error, ext4_error, ext4_check_shutdown } from './errors.js';
import { ext4_block_valid, ext4_sb_bread } from './block_validity.js';
import { ext4_ext_map_blocks } from './extents.js';
import { ext4_ind_map_blocks } from './indirect.js';
import { ext4_find_inline_data, ext4_read_inline_data } from './inline.js';
import { ext4_file_inode_operations, ext4_file_operations } from './file.js';
import { ext4_dir_inode_operations, ext4_special_inode_operations } from './namei.js';
import { ext4_dir_operations } from './dir.js';
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

/** The raw on-disk inode bytes (a copy). */
export async function ext4_read_raw_inode(sb: super_block, ino: number, func = 'ext4_get_inode_loc'): Promise<{ raw: Uint8Array; block: number; offset: number }> {
  const sbi = EXT4_SB(sb);
  const loc = ext4_inode_loc(sb, ino);
  if (!ext4_block_valid(sb, loc.block))
    throw ext4_error(sb, func, `Invalid inode table block ${loc.block} in block_group ${loc.group}`, { ino });
  const buf = await ext4_sb_bread(sb, loc.block, func, ino);
  return { raw: buf.slice(loc.offset, loc.offset + sbi.s_inode_size), block: loc.block, offset: loc.offset };
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
export async function ext4_iget(sb: super_block, ino: number, flags = EXT4_IGET_NORMAL): Promise<Ext4Inode> {
  ext4_check_shutdown(sb);
  if (!ino_valid(sb, ino, flags)) {
    if (flags & EXT4_IGET_HANDLE) throw err(ESTALE);
    throw ext4_error(sb, 'ext4_iget', `iget: illegal inode #${ino}`, { ino });
  }
  const inode = (await iget_locked(sb, ino)) as Ext4Inode;
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
export async function ext4_iput(inode: Inode | null): Promise<void> {
  if (inode) await iput(inode);
}

async function ext4_fill_inode(inode: Ext4Inode, flags: number): Promise<void> {
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

/** old_decode_dev: 8-bit major and minor in 16 bits. */
export function old_decode_dev(v: number): number { return makedev((v >>> 8) & 0xff, v & 0xff); }
/** new_decode_dev: 12-bit major, 20-bit minor split around it. */
export function new_decode_dev(v: number): number {
  const major = (v & 0xfff00) >>> 8;
  const minor = (v & 0xff) | ((v >>> 12) & 0xfff00);
  return makedev(major, minor);
}

/** ext4_inode_is_fast_symlink. */
export function ext4_inode_is_fast_symlink(inode: Ext4Inode): boolean {
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
export async function ext4_map_blocks(inode: Ext4Inode, lblk: number, max: number): Promise<MappedBlock> {
  ext4_check_shutdown(inode.i_sb);
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) return { pblk: 0, len: Math.max(1, max) };
  if (inode.i_ext4_flags & EXT4_EXTENTS_FL) return ext4_ext_map_blocks(inode, lblk, max);
  return ext4_ind_map_blocks(inode, lblk, max);
}

/** ext4_get_block: the GetBlock handed to the generic page I/O helpers (buffer.ts). */
export async function ext4_get_block(inode: Inode, iblock: number, maxBlocks: number, create: boolean): Promise<MappedBlock> {
  if (create) throw err(EROFS);
  return ext4_map_blocks(EXT4_I(inode), iblock, maxBlocks);
}

/**
 * Read `len` bytes of file data at `pos` into `out` (at outOff), block by block through the
 * mapping: holes and unwritten extents read as zeros, inline data from the inode. Used by
 * readpage and by code that needs data without the page cache (slow symlinks, ea_inodes).
 */
export async function ext4_read_data(inode: Ext4Inode, pos: number, out: Uint8Array, outOff = 0, len = out.length - outOff): Promise<void> {
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
function ext4_use_mpage(inode: Ext4Inode): boolean {
  const sbi = EXT4_SB(inode.i_sb);
  return !(inode.i_ext4_flags & EXT4_INLINE_DATA_FL) && sbi.s_blocksize <= PAGE_SIZE && sbi.s_overlay.size === 0 &&
    !!inode.i_sb.s_bdev;
}

/**
 * read_folio: fill one page-cache page. The slow path reads block by block through the
 * metadata path (overlay first); the tail past i_size is zeroed.
 */
async function ext4_readpage(_file: File | null, page: Page): Promise<void> {
  const inode = EXT4_I((page.mapping as { host: Inode }).host);
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

async function ext4_readahead(mapping: address_space, pages: Page[]): Promise<void> {
  const inode = EXT4_I(mapping.host);
  if (ext4_use_mpage(inode)) { await mpage_readahead(pages, ext4_get_block); return; }
  for (const p of pages) await ext4_readpage(null, p);
}

export const ext4_aops: address_space_operations = {
  readpage: ext4_readpage,
  readahead: ext4_readahead,
  async bmap(mapping, block) {
    const m = await ext4_map_blocks(EXT4_I(mapping.host), block, 1);
    return m.unwritten ? 0 : m.pblk;
  },
};

/** ext4_getattr: generic attributes plus btime and the statx attribute flags. */
export async function ext4_getattr(dentry: Dentry, stat: Kstat, _requestMask: number, _flags: number): Promise<void> {
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
export async function ext4_file_getattr(dentry: Dentry, stat: Kstat, requestMask: number, flags: number): Promise<void> {
  await ext4_getattr(dentry, stat, requestMask, flags);
  const inode = EXT4_I(dentry.d_inode!);
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) stat.blocks += Math.ceil(stat.size / 512);
}

/** ext4_setattr: no write support yet. */
export async function ext4_setattr(_dentry: Dentry, _attr: Iattr): Promise<void> {
  throw err(EROFS);
}

