/*
 * ext4's ioctls (fs/ext4/ioctl.c, and migrate.c's ext4_ind_migrate): the inode flags of
 * chattr/lsattr (ext4_fileattr_get / ext4_fileattr_set behind FS_IOC_GETFLAGS/SETFLAGS and
 * FS_IOC_FSGETXATTR/FSSETXATTR), and the inode generation of `lsattr -v` / `chattr -v`
 * (EXT4_IOC_GETVERSION/SETVERSION and their FS_IOC_* aliases). Other requests are ENOTTY.
 *
 * Flag changes are Linux's: only EXT4_FL_USER_VISIBLE flags may be passed (EOPNOTSUPP),
 * only EXT4_FL_USER_MODIFIABLE ones change, and only those ext4_mask_flags allows for the
 * file type (EOPNOTSUPP); an immutable inode only loses its immutability; JOURNAL_DATA
 * needs CAP_SYS_RESOURCE; DAX excludes inline data, encryption, verity and journalled
 * data. They are made in one journal handle with the ctime, and the VFS flags follow
 * (ext4_set_inode_flags). Deviations (machinery lkl-ts does not have):
 *  - JOURNAL_DATA on a journalled filesystem (Linux switches the inode to data journalling):
 *    EOPNOTSUPP, after the other flags were changed (Linux's order). Without a journal
 *    Linux ignores the flag, and so do we.
 *  - EXTENTS set on a block-mapped file with blocks (Linux converts its map to an extent
 *    tree, ext4_ext_migrate): EOPNOTSUPP. Without blocks it is converted. Clearing EXTENTS
 *    is ext4_ind_migrate's, as in Linux (one extent within the first 12 blocks at most,
 *    else EOPNOTSUPP).
 *  - CASEFOLD: filesystems with the casefold feature do not mount here, so it is always
 *    EOPNOTSUPP, as Linux answers without the feature.
 */
import { S_DAX, S_IMMUTABLE, S_SYNC, type dentry, type file, type IoctlArg, type fileattr } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EINVAL, ENOTTY, EOPNOTSUPP, EPERM, EROFS, EXT4_IOC_GETVERSION, EXT4_IOC_SETVERSION, FS_IOC_GETVERSION,
  FS_IOC_SETVERSION, FS_PROJINHERIT_FL, S_ISLNK, S_ISREG,
} from '../../include/uapi.js';
import { CAP_SYS_RESOURCE } from '../../include/fs.js';
import { capable } from '../../kernel/cred.js';
import { current_time } from '../time.js';
import { filemap_write_and_wait_range } from '../fs-writeback.js';
import { fileattr_fill_flags, get_user_u32, put_user_u32 } from '../ioctl.js';
import { inode_owner_or_capable } from '../namei.js';
import { mnt_want_write } from '../namespace.js';
import {
  EXT4_CASEFOLD_FL, EXT4_DAX_FL, EXT4_ENCRYPT_FL, EXT4_EXTENTS_FL, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_RO_COMPAT_BIGALLOC, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM,
  EXT4_FEATURE_RO_COMPAT_PROJECT, EXT4_FL_USER_MODIFIABLE, EXT4_FL_USER_VISIBLE, EXT4_GOOD_OLD_INODE_SIZE,
  EXT4_IMMUTABLE_FL, EXT4_INLINE_DATA_FL, EXT4_JOURNAL_DATA_FL, EXT4_VERITY_FL, ext4_blocks_count,
  ext4_fits_in_inode, put_le32,
} from './layout.js';
import { EXT4_I, EXT4_MOUNT_DELALLOC, EXT4_SB, type ext4_inode_info } from './ext4.js';
import { ext4_mask_flags } from './ialloc.js';
import { ext4_alloc_da_blocks, ext4_mark_inode_dirty, ext4_set_inode_flags } from './inode.js';
import { EXT4_HT_INODE, EXT4_HT_MIGRATE, ext4_journal_start, ext4_journal_stop, ext4_journal_writable } from './ext4_jbd2.js';
import {
  EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN, ext4_ext_header_decode, ext4_ext_header_encode, ext4_ext_space_root,
  ext4_extent_decode,
} from './ext4_extents.h.js';
import { ext4_es_remove_extent } from './extents_status.js';

/** Flags that exclude DAX (EXT4_DAX_MUT_EXCL). */
const EXT4_DAX_MUT_EXCL = EXT4_VERITY_FL | EXT4_ENCRYPT_FL | EXT4_JOURNAL_DATA_FL | EXT4_INLINE_DATA_FL;
/** EXT4_NDIR_BLOCKS: the direct blocks of a block map. */
const EXT4_NDIR_BLOCKS = 12;
/** EXT4_MAX_BLOCK_FILE_PHYS: the highest block a block map can address. */
const EXT4_MAX_BLOCK_FILE_PHYS = 0xffffffff;

/** ext4_fileattr_get. */
export async function ext4_fileattr_get(dentry: dentry, fa: fileattr): Promise<void> {
  const inode = EXT4_I(dentry.d_inode!);
  let flags = (inode.i_ext4_flags & EXT4_FL_USER_VISIBLE) >>> 0;
  if (S_ISREG(inode.i_mode)) flags = (flags & ~FS_PROJINHERIT_FL) >>> 0;
  fileattr_fill_flags(fa, flags);
  if (EXT4_SB(inode.i_sb).has_ro_compat(EXT4_FEATURE_RO_COMPAT_PROJECT)) fa.fsx_projid = inode.i_projid;
}

/** ext4_ioctl_check_immutable: an immutable inode may only lose its immutability. */
function ext4_ioctl_check_immutable(inode: ext4_inode_info, projid: number, flags: number): void {
  const old = inode.i_ext4_flags;
  if (!(old & EXT4_IMMUTABLE_FL) || !(flags & EXT4_IMMUTABLE_FL)) return;
  if (((old & ~EXT4_IMMUTABLE_FL) >>> 0) !== ((flags & ~EXT4_IMMUTABLE_FL) >>> 0)) throw err(EPERM);
  if (EXT4_SB(inode.i_sb).has_ro_compat(EXT4_FEATURE_RO_COMPAT_PROJECT) && inode.i_projid !== projid) throw err(EPERM);
}

/** dax_compatible */
function dax_compatible(inode: ext4_inode_info, oldflags: number, flags: number): boolean {
  if ((inode.i_mode & 0o170000) === 0o040000) {
    flags &= ~EXT4_INLINE_DATA_FL;
    oldflags &= ~EXT4_INLINE_DATA_FL;
  }
  if ((flags & EXT4_DAX_FL) && (oldflags & EXT4_DAX_MUT_EXCL)) return false;
  if ((flags & EXT4_DAX_MUT_EXCL) && (oldflags & EXT4_DAX_FL)) return false;
  return true;
}

/** ext4_ioctl_setflags: `flags` already masked to EXT4_FL_USER_MODIFIABLE. */
async function ext4_ioctl_setflags(inode: ext4_inode_info, flags: number): Promise<void> {
  const oldflags = inode.i_ext4_flags;
  if (((flags ^ oldflags) & EXT4_JOURNAL_DATA_FL) && !capable(CAP_SYS_RESOURCE)) throw err(EPERM);
  if (!dax_compatible(inode, oldflags, flags)) throw err(EOPNOTSUPP);
  const migrate = ((flags ^ oldflags) & EXT4_EXTENTS_FL) !== 0;
  // Casefolding needs the casefold feature, which does not mount here.
  if ((flags ^ oldflags) & EXT4_CASEFOLD_FL) throw err(EOPNOTSUPP);
  // Becoming immutable: its dirty pages go out first, so no later write reaches it.
  if (S_ISREG(inode.i_mode) && !(inode.i_flags & S_IMMUTABLE) && (flags & EXT4_IMMUTABLE_FL))
    await filemap_write_and_wait_range(inode.i_mapping, 0, Infinity);
  const handle = ext4_journal_start(inode, EXT4_HT_INODE, 1);
  try {
    if (inode.i_flags & S_SYNC) handle.h_sync = true;
    // JOURNAL_DATA and EXTENTS are changed by their own machinery below.
    const change = EXT4_FL_USER_MODIFIABLE & ~(EXT4_JOURNAL_DATA_FL | EXT4_EXTENTS_FL);
    inode.i_ext4_flags = ((inode.i_ext4_flags & ~change) | (flags & change)) >>> 0;
    ext4_set_inode_flags(inode);
    inode.i_ctime = current_time(inode);
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
  if ((flags ^ oldflags) & EXT4_JOURNAL_DATA_FL) {
    if (inode.i_flags & S_DAX) throw err(16 /* EBUSY */);
    await ext4_change_inode_journal_flag(inode, (flags & EXT4_JOURNAL_DATA_FL) !== 0);
  }
  if (migrate) {
    if (flags & EXT4_EXTENTS_FL) await ext4_ext_migrate(inode);
    else await ext4_ind_migrate(inode);
  }
}

/**
 * ext4_change_inode_journal_flag: without a journal the flag means nothing and is left
 * alone, as in Linux; with one, lkl-ts cannot journal a file's data (EOPNOTSUPP).
 */
async function ext4_change_inode_journal_flag(inode: ext4_inode_info, _val: boolean): Promise<void> {
  const j = ext4_journal_writable(inode.i_sb);
  if (!j) return;
  if (j.j_aborted) throw err(EROFS);
  throw err(EOPNOTSUPP);
}

/**
 * ext4_ext_migrate: a block-mapped inode to an extent tree. Without blocks that is a new
 * empty root; converting a map with blocks is not done here (EOPNOTSUPP).
 */
async function ext4_ext_migrate(inode: ext4_inode_info): Promise<void> {
  const sbi = EXT4_SB(inode.i_sb);
  if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS) || (inode.i_ext4_flags & EXT4_EXTENTS_FL) ||
    (inode.i_ext4_flags & EXT4_INLINE_DATA_FL)) throw err(EINVAL);
  if (S_ISLNK(inode.i_mode) && inode.i_blocks === 0) return; // fast symlinks stay as they are
  if (sbi.test_opt(EXT4_MOUNT_DELALLOC)) await ext4_alloc_da_blocks(inode);
  if (inode.i_blocks !== 0 || inode.i_data.some((b) => b !== 0)) throw err(EOPNOTSUPP);
  const handle = ext4_journal_start(inode, EXT4_HT_MIGRATE, 1);
  try {
    await inode.i_data_sem.downWrite();
    try {
      ext4_es_remove_extent(inode);
      inode.i_data.fill(0);
      ext4_ext_header_encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: ext4_ext_space_root(), eh_depth: 0, eh_generation: 0 }, inode.i_data, 0);
      inode.i_ext4_flags = (inode.i_ext4_flags | EXT4_EXTENTS_FL) >>> 0;
    } finally { inode.i_data_sem.upWrite(); }
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}

/**
 * ext4_ind_migrate (fs/ext4/migrate.c): an extent inode back to a block map, possible only
 * for a tree of one leaf extent (or none) within the 12 direct blocks.
 */
async function ext4_ind_migrate(inode: ext4_inode_info): Promise<void> {
  const sbi = EXT4_SB(inode.i_sb);
  if (sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_BIGALLOC)) throw err(EOPNOTSUPP);
  if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS) || !(inode.i_ext4_flags & EXT4_EXTENTS_FL)) throw err(EINVAL);
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) throw err(EINVAL);
  // Delayed blocks are given first, or the tree would not show them.
  if (sbi.test_opt(EXT4_MOUNT_DELALLOC)) await ext4_alloc_da_blocks(inode);
  const handle = ext4_journal_start(inode, EXT4_HT_MIGRATE, 1);
  try {
    await inode.i_data_sem.downWrite();
    try {
      const eh = ext4_ext_header_decode(inode.i_data, 0);
      if (eh.eh_magic !== EXT4_EXT_MAGIC) throw err(117 /* EFSCORRUPTED */);
      if (ext4_blocks_count(sbi.s_es) > EXT4_MAX_BLOCK_FILE_PHYS || eh.eh_depth !== 0 || eh.eh_entries > 1) throw err(EOPNOTSUPP);
      let blk = 0, start = 0, end = -1;
      if (eh.eh_entries === 1) {
        const ex = ext4_extent_decode(inode.i_data, 0, 0);
        // The raw ee_len: an unwritten extent's is above 32768, which no 12 blocks hold.
        const len = ex.unwritten ? ex.len + EXT_INIT_MAX_LEN : ex.len;
        blk = ex.start;
        start = ex.ee_block;
        end = start + len - 1;
        if (end >= EXT4_NDIR_BLOCKS) throw err(EOPNOTSUPP);
      }
      ext4_es_remove_extent(inode);
      inode.i_ext4_flags = (inode.i_ext4_flags & ~EXT4_EXTENTS_FL) >>> 0;
      inode.i_data.fill(0);
      for (let i = start; i <= end; i++) put_le32(inode.i_data, i * 4, blk++);
    } finally { inode.i_data_sem.upWrite(); }
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}

/** ext4_ioctl_setproject: the project id (no quota files here, so nothing to transfer). */
async function ext4_ioctl_setproject(inode: ext4_inode_info, projid: number): Promise<void> {
  const sbi = EXT4_SB(inode.i_sb);
  if (!sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_PROJECT)) {
    if (projid !== 0) throw err(EOPNOTSUPP);
    return;
  }
  if (sbi.s_inode_size <= EXT4_GOOD_OLD_INODE_SIZE) throw err(EOPNOTSUPP);
  if (projid === inode.i_projid) return;
  // Linux grows i_extra_isize to make room for i_projid; lkl-ts does not.
  if (!ext4_fits_in_inode(inode.i_extra_isize, 0xa0)) throw err(EOPNOTSUPP);
  const handle = ext4_journal_start(inode, EXT4_HT_INODE, 3);
  try {
    inode.i_projid = projid >>> 0;
    inode.i_ctime = current_time(inode);
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}

/** ext4_fileattr_set: under i_rwsem, after vfs_fileattr_set's checks. */
export async function ext4_fileattr_set(dentry: dentry, fa: fileattr): Promise<void> {
  const inode = EXT4_I(dentry.d_inode!);
  let flags = fa.flags >>> 0;
  if (flags & ~EXT4_FL_USER_VISIBLE) throw err(EOPNOTSUPP);
  // chattr gets the flags, changes some and sets them all: visible flags that cannot be
  // set are dropped silently, as Linux always did.
  flags = (flags & EXT4_FL_USER_MODIFIABLE) >>> 0;
  if (ext4_mask_flags(inode.i_mode, flags) !== flags) throw err(EOPNOTSUPP);
  ext4_ioctl_check_immutable(inode, fa.fsx_projid, flags);
  await ext4_ioctl_setflags(inode, flags);
  await ext4_ioctl_setproject(inode, fa.fsx_projid);
}

/** ext4_ioctl: the requests the VFS left to ext4. */
export async function ext4_ioctl(file: file, cmd: number, arg: IoctlArg): Promise<number> {
  const inode = EXT4_I(file.f_inode);
  switch (cmd) {
    case EXT4_IOC_GETVERSION:
    case FS_IOC_GETVERSION:
      put_user_u32(arg, inode.i_generation);
      return 0;
    case EXT4_IOC_SETVERSION:
    case FS_IOC_SETVERSION: {
      if (!inode_owner_or_capable(inode)) throw err(EPERM);
      // The generation seeds the inode's checksum: Linux refuses to change it then.
      if (EXT4_SB(inode.i_sb).has_ro_compat(EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) throw err(ENOTTY);
      mnt_want_write(file.f_path.mnt);
      const generation = get_user_u32(arg);
      await inode.i_rwsem.downWrite();
      try {
        const handle = ext4_journal_start(inode, EXT4_HT_INODE, 1);
        try {
          inode.i_ctime = current_time(inode);
          inode.i_generation = generation;
          await ext4_mark_inode_dirty(handle, inode);
        } finally { await ext4_journal_stop(handle); }
      } finally { inode.i_rwsem.upWrite(); }
      return 0;
    }
  }
  throw err(ENOTTY);
}
