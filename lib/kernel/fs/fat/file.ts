/*
 * Regular files (fs/fat/file.c and the address-space half of fs/fat/inode.c): data goes
 * through the page cache, mapped by fat_bmap. FAT has no holes, so a write past the end
 * first zero-fills the gap through the page cache (cont_write_begin): `mmu_private` is how
 * far the file is allocated and initialised. setattr truncates (freeing clusters) or
 * grows (zero-filled clusters), maps chmod onto the read-only attribute, refuses other
 * owners, and keeps each time to what the entry can hold. fsync writes the pages, the
 * entry, the FAT and directory buffers, then flushes the device cache.
 */
import type {
  address_space, address_space_operations, dentry, file, file_operations, iattr, inode, inode_operations, kstat,
  writeback_control,
} from '../../include/fs.js';
import {
  CAP_LINUX_IMMUTABLE, S_IMMUTABLE, type IoctlArg,
  ATTR_ATIME, ATTR_ATIME_SET, ATTR_CTIME, ATTR_GID, ATTR_MTIME_SET, ATTR_TIMES_SET, ATTR_MODE, ATTR_MTIME, ATTR_SIZE, ATTR_UID, I_DIRTY_DATASYNC, I_DIRTY_SYNC,
  SB_RDONLY,
} from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EFBIG, EINVAL, EIO, ENOTTY, EOPNOTSUPP, EPERM, EROFS, FALLOC_FL_KEEP_SIZE, S_IFMT, S_IFDIR, S_IFREG, type timespec64,
  FAT_IOCTL_GET_ATTRIBUTES, FAT_IOCTL_GET_VOLUME_ID, FAT_IOCTL_SET_ATTRIBUTES,
} from '../../include/uapi.js';
import { PAGE_SIZE, PG_uptodate, put_page, type page } from '../../mm/page_alloc.js';
import {
  find_or_create_page, filemap_read, generic_file_write_iter, truncate_pagecache, unlock_page,
} from '../../mm/filemap.js';
import { balance_dirty_pages, filemap_write_and_wait_range, mark_inode_dirty } from '../fs-writeback.js';
import { block_commit_write, block_invalidate_folio, block_write_full_page, try_to_free_buffers } from '../buffer.js';
import { mpage_readahead, mpage_read_folio, mpage_writepages } from '../mpage.js';
import type { GetBlock } from '../../include/blk.js';
import { fat_fs_error } from './misc.js';
import { FAT_VALID_MODE, MSDOS_I, MSDOS_ROOT_INO, MSDOS_SB, S_IRUGO, S_IRWXUGO, S_IWUGO, S_IXUGO, type msdos_inode_info } from './fat.js';
import { fat_bmap, fat_cache_inval_inode, fat_get_cluster } from './cache.js';
import {
  fat_add_clusters, fat_ent_read, fat_ent_set_locked, fat_free_clusters, fat_nr_clusters,
} from './fatent.js';
import { ATTR_DIR, ATTR_RO, ATTR_SYS, ATTR_VOLUME, FAT_ENT_EOF } from './layout.js';
import { ATTR_UNUSED, fat_make_attrs, fat_make_mode } from './inode.js';
import { get_user_u32, put_user_u32 } from '../ioctl.js';
import { mnt_want_write } from '../namespace.js';
import { capable } from '../../kernel/cred.js';
import { fat_truncate_time } from './misc.js';
import { ktime_get_real_ts64 } from '../../kernel/timer.js';
import { generic_fillattr } from '../libfs.js';
import { setattr_prepare } from '../attr.js';
import { current_cred, in_group_p } from '../../kernel/cred.js';
import { fat_mode_can_hold_ro, fat_write_inode } from './inode.js';

/* ---- block mapping for a page ---- */

/** Read the blocks of `page` that hold initialised data; zero the rest. */
async function fat_fill_page(mi: msdos_inode_info, page: page): Promise<void> {
  const sbi = MSDOS_SB(mi.i_sb);
  const bs = sbi.blocksize;
  const bpp = PAGE_SIZE / bs;
  const valid = Math.min(mi.mmu_private, mi.i_size);
  let i = 0;
  while (i < bpp) {
    const iblock = page.index * bpp + i;
    if (iblock * bs >= valid) { page.data.fill(0, i * bs); break; }
    const m = await fat_bmap(mi, iblock);
    if (!m.pblk) { page.data.fill(0, i * bs, (i + 1) * bs); i++; continue; }
    let n = Math.min(m.len, bpp - i);
    const lastValid = Math.ceil(valid / bs) - page.index * bpp; // blocks of the page holding data
    n = Math.max(1, Math.min(n, lastValid - i));
    await sbi.bops.readData(m.pblk, page.data.subarray(i * bs, (i + n) * bs));
    i += n;
  }
  // Bytes past the initialised size are zero whatever the disk holds.
  const pageStart = page.index * PAGE_SIZE;
  if (valid < pageStart + PAGE_SIZE) page.data.fill(0, Math.max(0, valid - pageStart));
}

/** Clusters so that the file's chain covers `size` bytes (allocation is all or nothing). */
async function fat_cover(mi: msdos_inode_info, size: number): Promise<void> {
  const sbi = MSDOS_SB(mi.i_sb);
  const need = Math.ceil(size / sbi.cluster_size) - fat_nr_clusters(mi);
  if (need > 0) await fat_add_clusters(mi, need);
}

/** A locked, uptodate page for writing [pos, pos+len), with the clusters under it allocated. */
async function fat_prepare_page(mi: msdos_inode_info, pos: number, len: number): Promise<page> {
  await fat_cover(mi, pos + len);
  const page = await find_or_create_page(mi.i_mapping, Math.floor(pos / PAGE_SIZE));
  if (!page.test(PG_uptodate)) {
    try {
      await fat_fill_page(mi, page);
    } catch (e) {
      unlock_page(page);
      put_page(page);
      throw e;
    }
    page.set(PG_uptodate);
  }
  return page;
}

/**
 * Commit bytes [from, to) of a prepared page (the write, and the zeros written before it
 * past the old initialised size): size, initialised size, dirty buffers (block_commit_write).
 */
async function fat_commit(mi: msdos_inode_info, page: page, from: number, to: number): Promise<void> {
  if (to > mi.mmu_private) mi.mmu_private = to;
  const pageStart = page.index * PAGE_SIZE;
  block_commit_write(page, from - pageStart, Math.max(from, to) - pageStart);
  unlock_page(page);
  put_page(page);
  if (to > mi.i_size) {
    mi.i_size = to;
    await mark_inode_dirty(mi, I_DIRTY_SYNC | I_DIRTY_DATASYNC);
  }
}

/**
 * fat_get_block for the generic page helpers: where file block `iblock` lives. Blocks are
 * allocated by write_begin (FAT files are allocated in order, without holes), so writeback
 * never allocates: an unmapped block there is a driver bug or a corrupt chain.
 */
export const fat_get_block: GetBlock = async (inode, iblock, maxBlocks, create) => {
  const m = await fat_bmap(MSDOS_I(inode), iblock);
  if (!m.pblk) {
    if (create) throw fat_fs_error(inode.i_sb, `fat_get_block: block ${iblock} of inode ${inode.i_ino} is not allocated`, EIO);
    return { pblk: 0, len: 1 };
  }
  return { pblk: m.pblk, len: Math.max(1, Math.min(m.len, maxBlocks)) };
};

/**
 * cont_expand_zero: zero-fill from the initialised size up to the page holding `pos`
 * (FAT cannot leave a hole), one page at a time through the page cache.
 */
async function fat_cont_expand_zero(mi: msdos_inode_info, pos: number): Promise<void> {
  const target = Math.floor(pos / PAGE_SIZE);
  while (mi.mmu_private < pos) {
    const cur = mi.mmu_private;
    const idx = Math.floor(cur / PAGE_SIZE);
    if (idx >= target) break;
    const end = (idx + 1) * PAGE_SIZE;
    const page = await fat_prepare_page(mi, cur, end - cur);
    page.data.fill(0, cur - idx * PAGE_SIZE);
    await fat_commit(mi, page, cur, end);
    await balance_dirty_pages(mi.i_mapping);
  }
}

/** When a write fails half way, give back clusters allocated past i_size (fat_write_failed). */
async function fat_write_failed(mi: msdos_inode_info): Promise<void> {
  if (mi.mmu_private > mi.i_size) mi.mmu_private = mi.i_size;
  await fat_truncate_blocks(mi, mi.i_size);
}

export const fat_aops: address_space_operations = {
  async readpage(_file: file | null, page: page): Promise<void> {
    await mpage_read_folio(page, fat_get_block);
  },
  async readahead(_m: address_space, pages: page[]): Promise<void> {
    await mpage_readahead(pages, fat_get_block);
  },
  async writepage(page: page, wbc: writeback_control): Promise<void> {
    await block_write_full_page(page, fat_get_block, wbc);
  },
  async writepages(m: address_space, wbc: writeback_control): Promise<void> {
    await mpage_writepages(m, wbc, fat_get_block);
  },
  invalidate_folio(page: page, offset: number, length: number): void {
    block_invalidate_folio(page, offset, length);
  },
  release_folio(page: page): boolean {
    return try_to_free_buffers(page);
  },
  async write_begin(_file: file | null, m: address_space, pos: number, len: number): Promise<page> {
    const mi = MSDOS_I(m.host);
    try {
      if (pos > mi.mmu_private) await fat_cont_expand_zero(mi, pos);
      const page = await fat_prepare_page(mi, pos, len);
      const pageStart = page.index * PAGE_SIZE;
      if (pos > mi.mmu_private && mi.mmu_private < pageStart + PAGE_SIZE) {
        page.data.fill(0, Math.max(0, mi.mmu_private - pageStart), pos - pageStart);
      }
      return page;
    } catch (e) {
      await fat_write_failed(mi).catch(() => {});
      throw e;
    }
  },
  async write_end(_file: file | null, m: address_space, pos: number, _len: number, copied: number, page: page): Promise<number> {
    const mi = MSDOS_I(m.host);
    // Bytes between the old initialised size and pos on this page were zeroed by write_begin:
    // they are written too.
    const from = pos > mi.mmu_private ? Math.max(page.index * PAGE_SIZE, mi.mmu_private) : pos;
    await fat_commit(mi, page, from, pos + copied);
    return copied;
  },
  async bmap(m: address_space, block: number): Promise<number> {
    return (await fat_bmap(MSDOS_I(m.host), block)).pblk;
  },
};

/* ---- truncation ---- */

/**
 * fat_truncate_blocks: keep the clusters that hold `offset` bytes, free the rest. The new
 * chain end is written before the tail is freed, so a crash loses clusters, not data.
 */
export async function fat_truncate_blocks(mi: msdos_inode_info, offset: number): Promise<void> {
  const sb = mi.i_sb;
  const sbi = MSDOS_SB(sb);
  const isDir = (mi.i_mode & S_IFMT) === S_IFDIR;
  const keep = Math.ceil(offset / sbi.cluster_size);
  if (mi.i_start === 0) return;
  let freeFrom: number;
  if (keep === 0) {
    freeFrom = mi.i_start;
    mi.i_start = 0;
    mi.i_logstart = 0;
    fat_cache_inval_inode(mi);
    await mark_inode_dirty(mi);
    if (mi.i_pos) await fat_write_inode(mi, false);
  } else {
    const last = await fat_get_cluster(mi, keep - 1);
    if (last.eof) { mi.i_blocks = (last.fclus + 1) * (sbi.cluster_size / 512); return; }
    const next = await fat_ent_read(sb, last.dclus);
    fat_cache_inval_inode(mi);
    if (next === FAT_ENT_EOF) { mi.i_blocks = keep * (sbi.cluster_size / 512); return; }
    await fat_ent_set_locked(sb, last.dclus, FAT_ENT_EOF);
    freeFrom = next;
  }
  mi.i_blocks = keep * (sbi.cluster_size / 512);
  await fat_free_clusters(sb, freeFrom, isDir);
}

/* ---- setattr ---- */

/** fat_sanitize_mode: the modes FAT can express, or -EPERM (the change is then ignored). */
function fat_sanitize_mode(inode: inode, mode: number): number {
  const sbi = MSDOS_SB(inode.i_sb);
  const mask = (inode.i_mode & S_IFMT) === S_IFDIR ? sbi.options.fs_dmask : sbi.options.fs_fmask;
  const perm = mode & ~(S_IFMT | mask);
  if ((perm & (S_IRUGO | S_IXUGO)) !== (inode.i_mode & (S_IRUGO | S_IXUGO))) return -EPERM;
  if (fat_mode_can_hold_ro(inode)) {
    if (perm & S_IWUGO && (perm & S_IWUGO) !== (S_IWUGO & ~mask)) return -EPERM;
  } else if ((perm & S_IWUGO) !== (S_IWUGO & ~mask)) return -EPERM;
  return (inode.i_mode & S_IFMT) | perm;
}


const TIMES_SET_FLAGS = ATTR_MTIME_SET | ATTR_ATIME_SET | ATTR_TIMES_SET;

/** fat_allow_set_time: allow_utime lets group members (S_IWGRP) or others (S_IWOTH) set times. */
function fat_allow_set_time(inode: inode): boolean {
  const o = MSDOS_SB(inode.i_sb).options;
  let allow = o.allow_utime === -1 ? ~o.fs_dmask & 0o022 : o.allow_utime;
  if (current_cred().fsuid === inode.i_uid) return false;
  if (in_group_p(inode.i_gid)) allow >>= 3; // bits32: mode bits
  return (allow & 2 /* MAY_WRITE */) !== 0;
}

/** fat_setattr: setattr_prepare (ownership and permission, as Linux's), then what FAT can hold. */
export async function fat_setattr(dentry: dentry, attr: iattr): Promise<void> {
  const inode = dentry.d_inode!;
  const mi = MSDOS_I(inode);
  const sb = inode.i_sb;
  const sbi = MSDOS_SB(sb);
  if (sb.s_flags & SB_RDONLY) throw err(EROFS);
  // A non-owner allowed by allow_utime may set times; the rest is setattr_prepare's, and
  // with -o quiet a refusal is silently ignored, as Linux's fat_setattr does.
  if (attr.ia_valid & TIMES_SET_FLAGS && fat_allow_set_time(inode)) attr.ia_valid &= ~TIMES_SET_FLAGS;
  try {
    await setattr_prepare(dentry, attr);
  } catch (e) {
    if (sbi.options.quiet) return;
    throw e;
  }
  let valid = attr.ia_valid;
  if ((valid & ATTR_UID && attr.ia_uid !== sbi.options.fs_uid) ||
      (valid & ATTR_GID && attr.ia_gid !== sbi.options.fs_gid) ||
      (valid & ATTR_MODE && (attr.ia_mode! & ~FAT_VALID_MODE))) {
    if (sbi.options.quiet) return;
    throw err(EPERM);
  }
  if (valid & ATTR_SIZE) {
    const size = attr.ia_size!;
    if ((inode.i_mode & S_IFMT) === S_IFDIR) throw err(EPERM);
    if (size > 0xffffffff) throw err(EFBIG);
    if (size > inode.i_size) {
      // fat_cont_expand: zero-fill up to the new size through write_begin/write_end.
      const page = await fat_aops.write_begin!(null, inode.i_mapping, size, 0);
      await fat_aops.write_end!(null, inode.i_mapping, size, 0, 0, page);
    } else if (size < inode.i_size) {
      inode.i_size = size;
      await truncate_pagecache(inode, size);
      if (mi.mmu_private > size) mi.mmu_private = size;
      await fat_truncate_blocks(mi, size);
    }
    if (!(valid & (ATTR_MTIME | ATTR_CTIME)) ) {
      const t = fat_truncate_time(sb, currentNow(), 'mtime');
      inode.i_mtime = t;
      inode.i_ctime = { ...t };
    }
  }
  if (valid & ATTR_MODE) {
    const m = fat_sanitize_mode(inode, attr.ia_mode!);
    if (m < 0) valid &= ~ATTR_MODE;
    else inode.i_mode = m;
  }
  if (valid & ATTR_ATIME && attr.ia_atime) inode.i_atime = fat_truncate_time(sb, attr.ia_atime, 'atime');
  if (valid & ATTR_MTIME && attr.ia_mtime) inode.i_mtime = fat_truncate_time(sb, attr.ia_mtime, 'mtime');
  if (valid & ATTR_CTIME && attr.ia_ctime) inode.i_ctime = fat_truncate_time(sb, attr.ia_ctime, 'ctime');
  await mark_inode_dirty(inode);
}

function currentNow(): timespec64 { return ktime_get_real_ts64(); }

/* ---- file operations ---- */

/** fat_file_fsync: pages, the entry, FAT and directory buffers, then the device cache. */
export async function fat_file_fsync(file: file, start: number, end: number, _datasync: boolean): Promise<void> {
  const inode = file.f_inode;
  const sbi = MSDOS_SB(inode.i_sb);
  let error: unknown = null;
  try { await filemap_write_and_wait_range(inode.i_mapping, start, end); } catch (e) { error = e; }
  if (inode.i_sb.s_flags & SB_RDONLY) { if (error) throw error; return; }
  inode.i_state &= ~(I_DIRTY_SYNC | I_DIRTY_DATASYNC);
  await fat_write_inode(inode, true);
  await sbi.bops.syncBuffers(null);
  await sbi.bops.flush();
  if (error) throw error;
}

/**
 * fat_fallocate, as Linux's: mode 0 grows the file with zeros (fat_cont_expand, FAT has no
 * holes); FALLOC_FL_KEEP_SIZE adds clusters past i_size, given back when the inode is
 * evicted (fat_free_eofblocks); hole punching and the rest are EOPNOTSUPP.
 */
async function fat_fallocate(file: file, mode: number, offset: number, len: number): Promise<void> {
  const inode = file.f_inode;
  const mi = MSDOS_I(inode);
  const sbi = MSDOS_SB(inode.i_sb);
  if (mode & ~FALLOC_FL_KEEP_SIZE) throw err(EOPNOTSUPP);
  if ((inode.i_mode & S_IFMT) !== S_IFREG) throw err(EOPNOTSUPP);
  const end = offset + len;
  if (end > 0xffffffff) throw err(EFBIG);
  if (mode & FALLOC_FL_KEEP_SIZE) {
    const need = Math.ceil(end / sbi.cluster_size) - fat_nr_clusters(mi);
    if (need > 0) await fat_add_clusters(mi, need);
    return;
  }
  if (end <= inode.i_size) return;
  const page = await fat_aops.write_begin!(file, inode.i_mapping, end, 0);
  await fat_aops.write_end!(file, inode.i_mapping, end, 0, 0, page);
  const now = fat_truncate_time(inode.i_sb, currentNow(), 'mtime');
  inode.i_mtime = now;
  inode.i_ctime = { ...now };
  await mark_inode_dirty(inode);
}

/* ---- ioctl ---- */

/** fat_save_attrs: what i_mode does not express (ATTR_RO too where i_mode cannot say it). */
function fat_save_attrs(inode: inode, attrs: number): void {
  MSDOS_I(inode).i_attrs = fat_mode_can_hold_ro(inode) ? attrs & ATTR_UNUSED : attrs & (ATTR_UNUSED | ATTR_RO);
}

/**
 * FAT_IOCTL_SET_ATTRIBUTES (fat_ioctl_set_attributes): the attribute byte, but never
 * ATTR_VOLUME or ATTR_DIR (nor the NTFS bits above 8); ATTR_RO is a chmod (owner only,
 * through fat_setattr); none on the root (EINVAL); with sys_immutable, ATTR_SYS is the
 * immutable flag and needs CAP_LINUX_IMMUTABLE.
 */
async function fat_ioctl_set_attributes(file: file, arg: IoctlArg): Promise<number> {
  const inode = file.f_inode;
  const sbi = MSDOS_SB(inode.i_sb);
  const isDir = (inode.i_mode & S_IFMT) === S_IFDIR;
  let attr = get_user_u32(arg);
  mnt_want_write(file.f_path.mnt);
  await inode.i_rwsem.downWrite();
  try {
    attr &= 0xff & ~(ATTR_VOLUME | ATTR_DIR);
    attr |= (MSDOS_I(inode).i_attrs & ATTR_VOLUME) | (isDir ? ATTR_DIR : 0);
    const oldattr = fat_make_attrs(inode);
    const ia: iattr = {
      ia_valid: ATTR_MODE | ATTR_CTIME,
      ia_ctime: fat_truncate_time(inode.i_sb, currentNow(), 'ctime'),
      ia_mode: isDir ? fat_make_mode(sbi, attr, S_IRWXUGO) : fat_make_mode(sbi, attr, S_IRUGO | S_IWUGO | (inode.i_mode & S_IXUGO)),
    };
    if (inode.i_ino === MSDOS_ROOT_INO && attr !== ATTR_DIR) throw err(EINVAL);
    if (sbi.options.sys_immutable && ((attr | oldattr) & ATTR_SYS) && !capable(CAP_LINUX_IMMUTABLE)) throw err(EPERM);
    await fat_setattr(file.f_path.dentry, ia);
    if (sbi.options.sys_immutable) {
      if (attr & ATTR_SYS) inode.i_flags |= S_IMMUTABLE; else inode.i_flags &= ~S_IMMUTABLE;
    }
    fat_save_attrs(inode, attr);
    await mark_inode_dirty(inode);
  } finally { inode.i_rwsem.upWrite(); }
  return 0;
}

/** fat_generic_ioctl: the attribute byte and the volume id; no inode flags (ENOTTY). */
export async function fat_generic_ioctl(file: file, cmd: number, arg: IoctlArg): Promise<number> {
  const inode = file.f_inode;
  switch (cmd) {
    case FAT_IOCTL_GET_ATTRIBUTES: {
      await inode.i_rwsem.downRead();
      let attr: number;
      try { attr = fat_make_attrs(inode); } finally { inode.i_rwsem.upRead(); }
      put_user_u32(arg, attr);
      return 0;
    }
    case FAT_IOCTL_SET_ATTRIBUTES: return fat_ioctl_set_attributes(file, arg);
    case FAT_IOCTL_GET_VOLUME_ID:
      put_user_u32(arg, MSDOS_SB(inode.i_sb).vol_id);
      return 0;
  }
  throw err(ENOTTY);
}

export const fat_file_operations: file_operations = {
  unlocked_ioctl: fat_generic_ioctl,
  fallocate: fat_fallocate,
  read: filemap_read,
  async write(file: file, buf: Uint8Array, pos: number): Promise<number> {
    const inode = file.f_inode;
    if (pos + buf.length > 0xffffffff) {
      if (pos >= 0xffffffff) throw err(EFBIG);
      buf = buf.subarray(0, 0xffffffff - pos);
    }
    const n = await generic_file_write_iter(file, buf, pos);
    inode.i_mtime = fat_truncate_time(inode.i_sb, inode.i_mtime, 'mtime');
    return n;
  },
  fsync: fat_file_fsync,
};

/**
 * fat_getattr: the generic attributes, the cluster as preferred I/O size, the creation
 * time, and mtime/atime as the entry holds them (2 s, a date) even before write_inode.
 */
export async function fat_getattr(dentry: dentry, stat: kstat): Promise<void> {
  const inode = dentry.d_inode!;
  const sb = inode.i_sb;
  generic_fillattr(inode, stat);
  stat.blksize = MSDOS_SB(sb).cluster_size;
  stat.mtime = fat_truncate_time(sb, inode.i_mtime, 'mtime');
  stat.atime = fat_truncate_time(sb, inode.i_atime, 'atime');
  if (inode.i_btime) stat.btime = { ...inode.i_btime };
}

export const fat_file_inode_operations: inode_operations = {
  setattr: fat_setattr,
  getattr: fat_getattr,
};
