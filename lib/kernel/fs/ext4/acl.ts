/*
 * POSIX ACLs (fs/ext4/acl.c): stored in system.posix_acl_access / _default in ext4's
 * compact form (4-byte entries without ids for USER_OBJ, GROUP_OBJ, MASK, OTHER) and
 * handed to user space in the posix_acl_xattr form (version 2, 8-byte entries), which is
 * what getxattr(2) returns on Linux. Read side; setting comes with the write side.
 */
import type { Inode, xattr_handler } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { EOPNOTSUPP, EROFS, S_IFMT, S_IFDIR, ENODATA } from '../../include/uapi.js';
import { EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT } from './xattr.h.js';
import { ext4_acl_from_disk, posix_acl_to_xattr, type PosixAclEntry } from './acl.h.js';
import { EXT4_I, EXT4_SB, EXT4_MOUNT_POSIX_ACL } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_xattr_get } from './xattr.js';

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
    /* not built yet: cp -a falls back to chmod on EOPNOTSUPP */
    async set() { throw err(EOPNOTSUPP); },
  };
}

export const ext4_posix_acl_access_handler = aclHandler('system.posix_acl_access', ACL_TYPE_ACCESS);
export const ext4_posix_acl_default_handler = aclHandler('system.posix_acl_default', ACL_TYPE_DEFAULT);
