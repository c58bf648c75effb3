/*
 * POSIX ACLs (fs/ext4/acl.c): stored in system.posix_acl_access / _default in ext4's
 * compact form (4-byte entries without ids for USER_OBJ, GROUP_OBJ, MASK, OTHER) and
 * handed to user space in the posix_acl_xattr form (version 2, 8-byte entries), which is
 * what getxattr(2) returns on Linux. ext4_get_acl reads one (the VFS caches it on the inode,
 * fs/posix_acl.ts), ext4_set_acl stores one (an access ACL equivalent to the mode bits is
 * folded into i_mode instead: posix_acl_update_mode), ext4_init_acl gives a new inode what
 * its directory's default ACL says (posix_acl_create), and ext4_setattr's chmod updates the
 * access ACL through posix_acl_chmod.
 */
import type { dentry, inode, xattr_handler } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { EACCES, EOPNOTSUPP, S_IFMT, S_IFDIR, ENODATA, XATTR_CREATE } from '../../include/uapi.js';
import { ACL_TYPE_ACCESS, ACL_TYPE_DEFAULT, posix_acl_to_xattr, type posix_acl } from '../../include/posix_acl.js';
import { EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT } from './xattr.h.js';
import { ext4_acl_from_disk, ext4_acl_to_disk, type posix_acl_entry } from './acl.h.js';
import { EXT4_I, EXT4_SB, EXT4_MOUNT_POSIX_ACL } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_xattr_get, ext4_xattr_set_handle } from './xattr.js';
import { EXT4_DATA_TRANS_BLOCKS, EXT4_HT_XATTR, ext4_journal_start, ext4_journal_stop, type handle_t } from './ext4_jbd2.js';
import { ext4_mark_inode_dirty } from './inode.js';
import { current_time } from '../time.js';
import {
  forget_cached_acl, get_inode_acl, posix_acl_create, posix_acl_equiv_mode, posix_acl_from_xattr, posix_acl_update_mode,
  posix_acl_valid, set_cached_acl, set_posix_acl,
} from '../posix_acl.js';

export { ACL_TYPE_ACCESS, ACL_TYPE_DEFAULT, posix_acl_valid, posix_acl_equiv_mode };

/** ext4_get_acl (i_op.get_inode_acl): the ACL of this type, null if there is none. Malformed ACLs are corruption. */
export async function ext4_get_acl(inode: inode, type: number): Promise<posix_acl_entry[] | null> {
  const index = type === ACL_TYPE_ACCESS ? EXT4_XATTR_INDEX_POSIX_ACL_ACCESS : EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT;
  let v: Uint8Array;
  try {
    v = await ext4_xattr_get(EXT4_I(inode), index, '');
  } catch (e) {
    if ((e as { errno?: number }).errno === ENODATA) return null;
    throw e;
  }
  const acl = ext4_acl_from_disk(v);
  if (typeof acl === 'string')
    throw ext4_error(inode.i_sb, 'ext4_acl_from_disk', `bad ACL: ${acl}`, { ino: inode.i_ino });
  return acl;
}

/** The value getxattr returns for an ACL: the posix_acl_xattr encoding. */
export function ext4_acl_to_xattr(acl: readonly posix_acl_entry[]): Uint8Array { return posix_acl_to_xattr(acl); }

/** posix_acl_from_xattr with its checks (EOPNOTSUPP for another version, EINVAL for bad entries). */
export function ext4_posix_acl_from_xattr(v: Uint8Array): posix_acl_entry[] | null { return posix_acl_from_xattr(v); }

/**
 * __ext4_set_acl: store (null: remove) the ACL of this type under `handle`, and cache it.
 * A default ACL exists only on directories.
 */
async function __ext4_set_acl(handle: handle_t, inode: inode, type: number, acl: posix_acl | null, xattr_flags: number): Promise<void> {
  if (type === ACL_TYPE_DEFAULT && (inode.i_mode & S_IFMT) !== S_IFDIR) {
    if (acl) throw err(EACCES);
    return;
  }
  const index = type === ACL_TYPE_ACCESS ? EXT4_XATTR_INDEX_POSIX_ACL_ACCESS : EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT;
  try {
    await ext4_xattr_set_handle(handle, EXT4_I(inode), index, '', acl ? ext4_acl_to_disk(acl) : null, xattr_flags);
  } catch (e) {
    forget_cached_acl(inode, type);
    throw e;
  }
  set_cached_acl(inode, type, acl);
}

/**
 * ext4_set_acl: an access ACL equal to the mode bits is not stored but folded into i_mode
 * (and an old one removed); otherwise i_mode follows it (group bits = mask), and S_ISGID
 * goes for a caller outside the file's group without CAP_FSETID. null removes.
 */
export async function ext4_set_acl(inode: inode, acl: posix_acl_entry[] | null, type: number): Promise<void> {
  const handle = ext4_journal_start(inode, EXT4_HT_XATTR, EXT4_DATA_TRANS_BLOCKS);
  try {
    let mode = inode.i_mode;
    let update_mode = false;
    if (type === ACL_TYPE_ACCESS && acl) {
      const r = posix_acl_update_mode(inode, acl);
      acl = r.acl;
      mode = r.mode;
      update_mode = mode !== inode.i_mode;
    }
    await __ext4_set_acl(handle, inode, type, acl, 0);
    if (update_mode) {
      inode.i_mode = mode;
      inode.i_ctime = current_time(inode);
      await ext4_mark_inode_dirty(handle, inode);
    }
  } catch (e) {
    await ext4_journal_stop(handle).catch(() => {});
    throw e;
  }
  await ext4_journal_stop(handle);
}

/** i_op.set_acl */
export function ext4_set_acl_op(dentry: dentry, acl: posix_acl | null, type: number): Promise<void> {
  return ext4_set_acl(dentry.d_inode!, acl, type);
}

/**
 * ext4_init_acl: a new inode in `dir` (from __ext4_new_inode, before it is linked): its
 * mode as posix_acl_create makes it (the umask, or the directory's default ACL), a copy of
 * that default ACL on a new directory and the derived access ACL, stored with XATTR_CREATE.
 */
export async function ext4_init_acl(handle: handle_t, inode: inode, dir: inode): Promise<void> {
  const r = await posix_acl_create(dir, inode.i_mode);
  inode.i_mode = r.mode;
  if (r.default_acl) await __ext4_set_acl(handle, inode, ACL_TYPE_DEFAULT, r.default_acl, XATTR_CREATE);
  else set_cached_acl(inode, ACL_TYPE_DEFAULT, null);
  if (r.acl) await __ext4_set_acl(handle, inode, ACL_TYPE_ACCESS, r.acl, XATTR_CREATE);
  else set_cached_acl(inode, ACL_TYPE_ACCESS, null);
}

function aclHandler(name: string, type: number): xattr_handler {
  return {
    name,
    list: (dentry) => EXT4_SB(dentry.d_sb).test_opt(EXT4_MOUNT_POSIX_ACL),
    async get(_dentry, inode: inode, _suffix: string) {
      if (!EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_POSIX_ACL)) throw err(EOPNOTSUPP);
      if (type === ACL_TYPE_DEFAULT && (inode.i_mode & S_IFMT) !== S_IFDIR) throw err(ENODATA);
      if (!inode.i_op.get_inode_acl) throw err(EOPNOTSUPP); /* symlinks */
      const acl = await get_inode_acl(inode, type);
      if (!acl) throw err(ENODATA);
      return ext4_acl_to_xattr(acl);
    },
    /* the VFS's vfs_set_acl: the value decoded, then set_posix_acl's checks; XATTR_CREATE/REPLACE do not apply */
    async set(dentry, _inode: inode, _suffix: string, value: Uint8Array | null, _flags: number) {
      const acl = value ? ext4_posix_acl_from_xattr(value) : null;
      await set_posix_acl(dentry!, type, acl); /* vfs_setxattr always passes the dentry */
    },
  };
}

export const ext4_posix_acl_access_handler = aclHandler('system.posix_acl_access', ACL_TYPE_ACCESS);
export const ext4_posix_acl_default_handler = aclHandler('system.posix_acl_default', ACL_TYPE_DEFAULT);
