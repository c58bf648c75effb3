/*
 * POSIX ACLs (fs/ext4/acl.c): stored in system.posix_acl_access / _default in ext4's
 * compact form (4-byte entries without ids for USER_OBJ, GROUP_OBJ, MASK, OTHER) and
 * handed to user space in the posix_acl_xattr form (version 2, 8-byte entries), which is
 * what getxattr(2) returns on Linux. Setting (ext4_set_acl) converts the xattr form back,
 * validates it (posix_acl_valid), folds an ACL equivalent to the mode bits into i_mode
 * (posix_acl_update_mode) and stores the rest with ext4_xattr_set_handle.
 */
import type { Inode, xattr_handler } from '../../include/fs.js';
import { CAP_FSETID } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EACCES, EINVAL, EOPNOTSUPP, EPERM, S_IFMT, S_IFDIR, S_IFLNK, S_ISGID, ENODATA,
} from '../../include/uapi.js';
import { EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT } from './xattr.h.js';
import {
  ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_READ, ACL_UNDEFINED_ID, ACL_USER, ACL_USER_OBJ,
  ACL_WRITE, ACL_EXECUTE, POSIX_ACL_XATTR_VERSION, ext4_acl_from_disk, ext4_acl_to_disk, posix_acl_from_xattr,
  posix_acl_to_xattr, type PosixAclEntry,
} from './acl.h.js';
import { le32 } from '../../lib/struct.js';
import { EXT4_I, EXT4_SB, EXT4_MOUNT_POSIX_ACL } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_xattr_get, ext4_xattr_set_handle } from './xattr.js';
import { EXT4_DATA_TRANS_BLOCKS, EXT4_HT_XATTR, ext4_journal_start, ext4_journal_stop } from './ext4_jbd2.js';
import { ext4_mark_inode_dirty } from './inode.js';
import { current_time } from '../time.js';
import { capable, in_group_p } from '../../kernel/cred.js';
import { inode_owner_or_capable } from '../namei.js';

export const ACL_TYPE_ACCESS = 0x8000, ACL_TYPE_DEFAULT = 0x4000;

/** ext4_get_acl: the ACL of this type, null if there is none. Malformed ACLs are corruption. */
export async function ext4_get_acl(inode: Inode, type: number): Promise<PosixAclEntry[] | null> {
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
export function ext4_acl_to_xattr(acl: readonly PosixAclEntry[]): Uint8Array { return posix_acl_to_xattr(acl); }

/**
 * posix_acl_from_xattr: the ACL in a value set by user space. A header of another version
 * is EOPNOTSUPP, a bad size or tag or an undefined id EINVAL; a bare header is no ACL (null).
 */
export function ext4_posix_acl_from_xattr(v: Uint8Array): PosixAclEntry[] | null {
  if (v.length < 4) throw err(EINVAL);
  if (le32(v, 0) !== POSIX_ACL_XATTR_VERSION) throw err(EOPNOTSUPP);
  if ((v.length - 4) % 8 !== 0) throw err(EINVAL);
  if (v.length === 4) return null;
  const acl = posix_acl_from_xattr(v);
  if (typeof acl === 'string') throw err(EINVAL);
  for (const e of acl) if ((e.e_tag === ACL_USER || e.e_tag === ACL_GROUP) && e.e_id === ACL_UNDEFINED_ID) throw err(EINVAL);
  return acl;
}

/**
 * posix_acl_valid: USER_OBJ, USERs (ids increasing), GROUP_OBJ, GROUPs (ids increasing),
 * MASK (required when there are named entries), OTHER, in this order, once each; only
 * rwx permission bits.
 */
export function posix_acl_valid(acl: readonly PosixAclEntry[]): boolean {
  const S_USER_OBJ = 1, S_USER = 2, S_GROUP = 3, S_OTHER = 4, S_DONE = 0;
  let state = S_USER_OBJ;
  let needs_mask = false;
  let prev = -1;
  for (const pa of acl) {
    if (pa.e_perm & ~(ACL_READ | ACL_WRITE | ACL_EXECUTE)) return false;
    switch (pa.e_tag) {
      case ACL_USER_OBJ:
        if (state !== S_USER_OBJ) return false;
        state = S_USER; prev = -1;
        break;
      case ACL_USER:
        if (state !== S_USER || pa.e_id <= prev) return false;
        prev = pa.e_id; needs_mask = true;
        break;
      case ACL_GROUP_OBJ:
        if (state !== S_USER) return false;
        state = S_GROUP; prev = -1;
        break;
      case ACL_GROUP:
        if (state !== S_GROUP || pa.e_id <= prev) return false;
        prev = pa.e_id; needs_mask = true;
        break;
      case ACL_MASK:
        if (state !== S_GROUP) return false;
        state = S_OTHER;
        break;
      case ACL_OTHER:
        if (state === S_OTHER || (state === S_GROUP && !needs_mask)) { state = S_DONE; break; }
        return false;
      default:
        return false;
    }
  }
  return state === S_DONE;
}

/**
 * posix_acl_equiv_mode: the permission bits the ACL implies (group bits from the mask when
 * there is one) over `mode`, and whether the ACL says more than the mode can.
 */
export function posix_acl_equiv_mode(acl: readonly PosixAclEntry[], mode: number): { mode: number; not_equiv: boolean } {
  let m = 0;
  let not_equiv = false;
  for (const pa of acl) {
    switch (pa.e_tag) {
      case ACL_USER_OBJ: m |= (pa.e_perm & 0o7) << 6; break;
      case ACL_GROUP_OBJ: m |= (pa.e_perm & 0o7) << 3; break;
      case ACL_OTHER: m |= pa.e_perm & 0o7; break;
      case ACL_MASK: m = (m & ~0o70) | ((pa.e_perm & 0o7) << 3); not_equiv = true; break;
      case ACL_USER: case ACL_GROUP: not_equiv = true; break;
      default: throw err(EINVAL);
    }
  }
  return { mode: (mode & ~0o777) | m, not_equiv };
}

/**
 * ext4_set_acl (with __ext4_set_acl): an access ACL equal to the mode bits is not stored
 * but folded into i_mode (and an old one removed); otherwise i_mode follows it (group bits
 * = mask). A default ACL exists only on directories. null removes.
 */
export async function ext4_set_acl(inode: Inode, acl: PosixAclEntry[] | null, type: number): Promise<void> {
  const ei = EXT4_I(inode);
  if (type === ACL_TYPE_DEFAULT && (inode.i_mode & S_IFMT) !== S_IFDIR) {
    if (acl) throw err(EACCES);
    return;
  }
  const handle = ext4_journal_start(inode, EXT4_HT_XATTR, EXT4_DATA_TRANS_BLOCKS);
  try {
    let mode = inode.i_mode;
    let update_mode = false;
    if (type === ACL_TYPE_ACCESS && acl) {
      /* posix_acl_update_mode */
      const r = posix_acl_equiv_mode(acl, mode);
      if (!r.not_equiv) acl = null;
      mode = r.mode;
      if (!in_group_p(inode.i_gid) && !capable(CAP_FSETID)) mode &= ~S_ISGID;
      update_mode = mode !== inode.i_mode;
    }
    const index = type === ACL_TYPE_ACCESS ? EXT4_XATTR_INDEX_POSIX_ACL_ACCESS : EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT;
    await ext4_xattr_set_handle(handle, ei, index, '', acl ? ext4_acl_to_disk(acl) : null, 0);
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

function aclHandler(name: string, type: number): xattr_handler {
  return {
    name,
    list: (dentry) => EXT4_SB(dentry.d_sb).test_opt(EXT4_MOUNT_POSIX_ACL),
    async get(_dentry, inode: Inode, _suffix: string) {
      if (!EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_POSIX_ACL)) throw err(EOPNOTSUPP);
      if (type === ACL_TYPE_DEFAULT && (inode.i_mode & S_IFMT) !== S_IFDIR) throw err(ENODATA);
      const acl = await ext4_get_acl(inode, type);
      if (!acl) throw err(ENODATA);
      return ext4_acl_to_xattr(acl);
    },
    /* the VFS's set_posix_acl checks, then ext4_set_acl; XATTR_CREATE/REPLACE do not apply */
    async set(_dentry, inode: Inode, _suffix: string, value: Uint8Array | null, _flags: number) {
      if (!EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_POSIX_ACL)) throw err(EOPNOTSUPP);
      if ((inode.i_mode & S_IFMT) === S_IFLNK) throw err(EOPNOTSUPP); /* symlinks have no set_acl */
      const acl = value ? ext4_posix_acl_from_xattr(value) : null;
      if (acl && !posix_acl_valid(acl)) throw err(EINVAL);
      if (type === ACL_TYPE_DEFAULT && (inode.i_mode & S_IFMT) !== S_IFDIR) {
        if (acl) throw err(EACCES);
        return;
      }
      if (!inode_owner_or_capable(inode)) throw err(EPERM);
      await ext4_set_acl(inode, acl, type);
    },
  };
}

export const ext4_posix_acl_access_handler = aclHandler('system.posix_acl_access', ACL_TYPE_ACCESS);
export const ext4_posix_acl_default_handler = aclHandler('system.posix_acl_default', ACL_TYPE_DEFAULT);
