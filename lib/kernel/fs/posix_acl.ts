/*
 * POSIX ACLs in the VFS (fs/posix_acl.c): the ACL cache on the inode (i_acl, i_default_acl,
 * loaded through i_op.get_inode_acl), the permission check generic_permission makes with an
 * access ACL (posix_acl_permission), what a new inode inherits from its directory's default
 * ACL (posix_acl_create), what chmod does to an access ACL (posix_acl_chmod) and what setting
 * one does to the mode (posix_acl_update_mode), with validation (posix_acl_valid) and the
 * check of a user's xattr value (posix_acl_from_xattr's). Filesystems opt in with
 * SB_POSIXACL and the get_inode_acl / set_acl inode operations (ext4: fs/ext4/acl.ts).
 *
 * May touch: namei (owner checks), the cred, the inode's i_op.
 */
import type { dentry, inode } from '../include/fs.js';
import { CAP_FSETID, SB_POSIXACL } from '../include/fs.js';
import { err } from '../include/errno.js';
import { EACCES, EINVAL, EIO, EOPNOTSUPP, EPERM, S_IFDIR, S_IFLNK, S_IFMT, S_ISGID } from '../include/uapi.js';
import {
  ACL_EXECUTE, ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_NOT_CACHED, ACL_OTHER, ACL_READ, ACL_TYPE_ACCESS, ACL_TYPE_DEFAULT,
  ACL_UNDEFINED_ID, ACL_USER, ACL_USER_OBJ, ACL_WRITE, POSIX_ACL_XATTR_VERSION, is_uncached_acl,
  posix_acl_clone, posix_acl_from_xattr as decode_acl_xattr, type posix_acl, type posix_acl_entry,
} from '../include/posix_acl.js';
import { le32 } from '../lib/struct.js';
import { capable, current_cred, in_group_p } from '../kernel/cred.js';
import { current_umask } from './fs_struct.js';
import { inode_owner_or_capable } from './namei.js';

const S_IRWXU = 0o700, S_IRWXG = 0o070, S_IRWXO = 0o007, S_IRWXUGO = 0o777;

/** IS_POSIXACL: the inode's filesystem keeps POSIX ACLs (and so applies the umask itself). */
export function IS_POSIXACL(inode: inode): boolean { return (inode.i_sb.s_flags & SB_POSIXACL) !== 0; }

/* ---- the cache ---- */

export function set_cached_acl(inode: inode, type: number, acl: posix_acl | null): void {
  if (type === ACL_TYPE_ACCESS) inode.i_acl = acl; else inode.i_default_acl = acl;
}
export function forget_cached_acl(inode: inode, type: number): void {
  if (type === ACL_TYPE_ACCESS) inode.i_acl = ACL_NOT_CACHED; else inode.i_default_acl = ACL_NOT_CACHED;
}

/**
 * get_inode_acl: the inode's ACL of this type (null: none), from the cache or the
 * filesystem. The result is shared: copy it (posix_acl_clone) before changing it.
 */
export async function get_inode_acl(inode: inode, type: number): Promise<posix_acl | null> {
  const cached = type === ACL_TYPE_ACCESS ? inode.i_acl : inode.i_default_acl;
  if (!is_uncached_acl(cached)) return cached;
  if (!inode.i_op.get_inode_acl) { set_cached_acl(inode, type, null); return null; }
  const sentinel = Symbol('acl load');
  if (type === ACL_TYPE_ACCESS) inode.i_acl = sentinel; else inode.i_default_acl = sentinel;
  let acl: posix_acl | null;
  try {
    acl = await inode.i_op.get_inode_acl(inode, type);
  } catch (e) {
    if ((type === ACL_TYPE_ACCESS ? inode.i_acl : inode.i_default_acl) === sentinel) forget_cached_acl(inode, type);
    throw e;
  }
  /* a set_acl or forget while the filesystem read it: that one is newer */
  if ((type === ACL_TYPE_ACCESS ? inode.i_acl : inode.i_default_acl) === sentinel) set_cached_acl(inode, type, acl);
  return acl;
}

/* ---- checks and arithmetic ---- */

/**
 * posix_acl_valid: USER_OBJ, USERs (ids increasing), GROUP_OBJ, GROUPs (ids increasing),
 * MASK (required when there are named entries), OTHER, in this order, once each; only
 * rwx permission bits.
 */
export function posix_acl_valid(acl: readonly posix_acl_entry[]): boolean {
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
export function posix_acl_equiv_mode(acl: readonly posix_acl_entry[], mode: number): { mode: number; not_equiv: boolean } {
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
 * posix_acl_permission: the first entry that matches the caller decides: the owner's entry,
 * a named user's (limited by the mask), else any of the owning group and named groups that
 * grants all of `want` (limited by the mask); a caller in one of those groups but granted by
 * none is refused; anyone else gets the other entry. Throws EACCES.
 */
export function posix_acl_permission(inode: inode, acl: readonly posix_acl_entry[], want: number): void {
  const cred = current_cred();
  want &= ACL_READ | ACL_WRITE | ACL_EXECUTE;
  let found = false;
  const masked = (i: number): void => {
    for (let j = i + 1; j < acl.length; j++) {
      if (acl[j]!.e_tag === ACL_MASK) {
        if ((acl[i]!.e_perm & acl[j]!.e_perm & want) === want) return;
        throw err(EACCES);
      }
    }
    if ((acl[i]!.e_perm & want) !== want) throw err(EACCES);
  };
  for (let i = 0; i < acl.length; i++) {
    const pa = acl[i]!;
    switch (pa.e_tag) {
      case ACL_USER_OBJ:
        if (inode.i_uid === cred.fsuid) { if ((pa.e_perm & want) !== want) throw err(EACCES); return; }
        break;
      case ACL_USER:
        if (pa.e_id === cred.fsuid) return masked(i);
        break;
      case ACL_GROUP_OBJ:
        if (in_group_p(inode.i_gid)) { found = true; if ((pa.e_perm & want) === want) return masked(i); }
        break;
      case ACL_GROUP:
        if (in_group_p(pa.e_id)) { found = true; if ((pa.e_perm & want) === want) return masked(i); }
        break;
      case ACL_MASK:
        break;
      case ACL_OTHER:
        if (found) throw err(EACCES);
        if ((pa.e_perm & want) !== want) throw err(EACCES);
        return;
      default:
        throw err(EIO);
    }
  }
  throw err(EIO);
}

/**
 * posix_acl_create_masq: a default ACL becomes a new inode's access ACL: the owner, other
 * and mask (or, without a mask, owning-group) entries are limited by the requested mode,
 * and the mode by them. Returns whether the result says more than the mode (a copy must
 * then be stored).
 */
function posix_acl_create_masq(acl: posix_acl, mode_p: { mode: number }): boolean {
  let mode = mode_p.mode;
  let group_obj: posix_acl_entry | null = null, mask_obj: posix_acl_entry | null = null;
  let not_equiv = false;
  for (const pa of acl) {
    switch (pa.e_tag) {
      case ACL_USER_OBJ:
        pa.e_perm &= (mode >> 6) | ~S_IRWXO;
        mode &= (pa.e_perm << 6) | ~S_IRWXU;
        break;
      case ACL_USER: case ACL_GROUP: not_equiv = true; break;
      case ACL_GROUP_OBJ: group_obj = pa; break;
      case ACL_OTHER:
        pa.e_perm &= mode | ~S_IRWXO;
        mode &= pa.e_perm | ~S_IRWXO;
        break;
      case ACL_MASK: mask_obj = pa; not_equiv = true; break;
      default: throw err(EIO);
    }
  }
  const g = mask_obj ?? group_obj;
  if (!g) throw err(EIO);
  g.e_perm &= (mode >> 3) | ~S_IRWXO;
  mode &= (g.e_perm << 3) | ~S_IRWXG;
  mode_p.mode = (mode_p.mode & ~S_IRWXUGO) | (mode & S_IRWXUGO);
  return not_equiv;
}

/**
 * posix_acl_create: what a new inode of `mode` in `dir` gets. Without a default ACL on the
 * directory the umask applies (the VFS left it to us: mode_strip_umask); with one, the
 * umask is ignored, the mode is limited by the default ACL, the inode gets an access ACL
 * when the result is not plain mode bits, and a directory inherits the default ACL too.
 */
export async function posix_acl_create(dir: inode, mode: number): Promise<{ mode: number; default_acl: posix_acl | null; acl: posix_acl | null }> {
  if ((mode & S_IFMT) === S_IFLNK || !IS_POSIXACL(dir)) return { mode, default_acl: null, acl: null };
  let p: posix_acl | null;
  try {
    p = await get_inode_acl(dir, ACL_TYPE_DEFAULT);
  } catch (e) {
    if ((e as { errno?: number }).errno !== EOPNOTSUPP) throw e;
    p = null;
  }
  if (!p) return { mode: mode & ~current_umask(), default_acl: null, acl: null };
  const clone = posix_acl_clone(p);
  const m = { mode };
  const acl = posix_acl_create_masq(clone, m) ? clone : null;
  return { mode: m.mode, default_acl: (mode & S_IFMT) === S_IFDIR ? p : null, acl };
}

/**
 * __posix_acl_chmod: an access ACL after chmod to `mode`: the owner and other entries take
 * the mode's bits, and so does the mask (or, without a mask, the owning group's entry);
 * named entries stay. Returns a new ACL.
 */
export function __posix_acl_chmod(acl: readonly posix_acl_entry[], mode: number): posix_acl {
  const out = posix_acl_clone(acl);
  let group_obj: posix_acl_entry | null = null, mask_obj: posix_acl_entry | null = null;
  for (const pa of out) {
    switch (pa.e_tag) {
      case ACL_USER_OBJ: pa.e_perm = (mode & S_IRWXU) >> 6; break;
      case ACL_USER: case ACL_GROUP: break;
      case ACL_GROUP_OBJ: group_obj = pa; break;
      case ACL_MASK: mask_obj = pa; break;
      case ACL_OTHER: pa.e_perm = mode & S_IRWXO; break;
      default: throw err(EIO);
    }
  }
  const g = mask_obj ?? group_obj;
  if (!g) throw err(EIO);
  g.e_perm = (mode & S_IRWXG) >> 3;
  return out;
}

/**
 * posix_acl_chmod: after a mode change (ATTR_MODE in setattr), the access ACL follows the
 * new mode. Nothing to do without ACL support or without an access ACL.
 */
export async function posix_acl_chmod(dentry: dentry, mode: number): Promise<void> {
  const inode = dentry.d_inode!;
  if (!IS_POSIXACL(inode)) return;
  if (!inode.i_op.set_acl) throw err(EOPNOTSUPP);
  let acl: posix_acl | null;
  try {
    acl = await get_inode_acl(inode, ACL_TYPE_ACCESS);
  } catch (e) {
    if ((e as { errno?: number }).errno === EOPNOTSUPP) return;
    throw e;
  }
  if (!acl) return;
  await inode.i_op.set_acl(dentry, __posix_acl_chmod(acl, mode), ACL_TYPE_ACCESS);
}

/**
 * posix_acl_update_mode: the mode an inode gets when this access ACL is set (permission
 * bits from the ACL, group bits from its mask; S_ISGID cleared unless the caller is in the
 * file's group or has CAP_FSETID), and the ACL still to store: null when the mode says it all.
 */
export function posix_acl_update_mode(inode: inode, acl: posix_acl): { mode: number; acl: posix_acl | null } {
  const r = posix_acl_equiv_mode(acl, inode.i_mode);
  let mode = r.mode;
  if (!in_group_p(inode.i_gid) && !capable(CAP_FSETID)) mode &= ~S_ISGID;
  return { mode, acl: r.not_equiv ? acl : null };
}

/**
 * The ACL in an xattr value set by user space (posix_acl_from_xattr's checks): a header
 * of another version is EOPNOTSUPP, a bad size or tag or an undefined id EINVAL; a bare
 * header is no ACL (null).
 */
export function posix_acl_from_xattr(v: Uint8Array): posix_acl | null {
  if (v.length < 4) throw err(EINVAL);
  if (le32(v, 0) !== POSIX_ACL_XATTR_VERSION) throw err(EOPNOTSUPP);
  if ((v.length - 4) % 8 !== 0) throw err(EINVAL);
  if (v.length === 4) return null;
  const acl = decode_acl_xattr(v);
  if (typeof acl === 'string') throw err(EINVAL);
  for (const e of acl) if ((e.e_tag === ACL_USER || e.e_tag === ACL_GROUP) && e.e_id === ACL_UNDEFINED_ID) throw err(EINVAL);
  return acl;
}

/**
 * set_posix_acl: the checks the VFS makes before i_op.set_acl: ACL support, a default ACL
 * only on a directory (removing one elsewhere is a no-op), the owner (or CAP_FOWNER), a
 * valid ACL.
 */
export async function set_posix_acl(dentry: dentry, type: number, acl: posix_acl | null): Promise<void> {
  const inode = dentry.d_inode!;
  if (!IS_POSIXACL(inode) || !inode.i_op.set_acl) throw err(EOPNOTSUPP);
  if (type !== ACL_TYPE_ACCESS && (inode.i_mode & S_IFMT) !== S_IFDIR) {
    if (acl) throw err(EACCES);
    return;
  }
  if (!inode_owner_or_capable(inode)) throw err(EPERM);
  if (acl && !posix_acl_valid(acl)) throw err(EINVAL);
  await inode.i_op.set_acl(dentry, acl, type);
}
