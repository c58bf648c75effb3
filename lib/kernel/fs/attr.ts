/*
 * Changing inode attributes (fs/attr.c): notify_change and the permission rules every
 * filesystem's setattr applies through setattr_prepare.
 *
 * Who may do what: chmod and explicit timestamps need the owner (or CAP_FOWNER); chown
 * needs CAP_CHOWN except for the owner giving the file to one of their groups; "touch"
 * (times set to now) needs ownership or write access. chown of a non-directory clears
 * set-user-ID (and set-group-ID when group-executable); chmod by a non-member of the file's
 * group clears set-group-ID.
 *
 * May touch: namei (permission), inode (time), libfs (simple_setattr as the default).
 */
import {
  ATTR_ATIME, ATTR_ATIME_SET, ATTR_CTIME, ATTR_FORCE, ATTR_GID, ATTR_KILL_SGID, ATTR_KILL_SUID,
  ATTR_MODE, ATTR_MTIME, ATTR_MTIME_SET, ATTR_SIZE, ATTR_TIMES_SET, ATTR_UID, CAP_CHOWN, CAP_FSETID,
  MAY_WRITE, S_APPEND, S_IMMUTABLE, type dentry, type iattr, type inode,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import { EFBIG, EINVAL, EPERM, S_ISGID, S_ISREG, S_ISUID, S_IXGRP } from '../include/uapi.js';
import { capable, current_cred, in_group_p } from '../kernel/cred.js';
import { current_time, timestamp_truncate } from './time.js';
import { inode_owner_or_capable, inode_permission } from './namei.js';
import { simple_setattr } from './libfs.js';

/** utimes(2) with times == NULL: write access suffices. */
export const ATTR_TOUCH = 1 << 17;

function in_group_or_capable(gid: number): boolean {
  return in_group_p(gid) || capable(CAP_FSETID);
}

/** chown_ok: the owner may "change" to itself; otherwise CAP_CHOWN. */
function chown_ok(inode: inode, uid: number): boolean {
  const cred = current_cred();
  if (cred.fsuid === inode.i_uid && uid === inode.i_uid) return true;
  return capable(CAP_CHOWN);
}
/** chgrp_ok: the owner may pick one of their groups; otherwise CAP_CHOWN. */
function chgrp_ok(inode: inode, gid: number): boolean {
  const cred = current_cred();
  if (cred.fsuid === inode.i_uid && (gid === inode.i_gid || in_group_p(gid))) return true;
  return capable(CAP_CHOWN);
}

/** inode_newsize_ok: EFBIG beyond the filesystem's maximum file size. */
export function inode_newsize_ok(inode: inode, size: number): void {
  if (size < 0) throw err(EINVAL);
  if (size > inode.i_sb.s_maxbytes) throw err(EFBIG);
}

/** setattr_prepare: may the caller make this change? (Filesystems call it from setattr.) */
export async function setattr_prepare(d: dentry, attr: iattr): Promise<void> {
  const inode = d.d_inode!;
  const v = attr.ia_valid;
  if (v & ATTR_SIZE) inode_newsize_ok(inode, attr.ia_size!);
  if (v & ATTR_FORCE) return;
  if ((v & ATTR_UID) && !chown_ok(inode, attr.ia_uid!)) throw err(EPERM);
  if ((v & ATTR_GID) && !chgrp_ok(inode, attr.ia_gid!)) throw err(EPERM);
  if (v & ATTR_MODE) {
    if (!inode_owner_or_capable(inode)) throw err(EPERM);
    const gid = v & ATTR_GID ? attr.ia_gid! : inode.i_gid;
    if (!in_group_or_capable(gid)) attr.ia_mode = attr.ia_mode! & ~S_ISGID;
  }
  if ((v & (ATTR_MTIME_SET | ATTR_ATIME_SET | ATTR_TIMES_SET)) && !inode_owner_or_capable(inode)) throw err(EPERM);
}

/** setattr_copy: apply the (checked) change to the in-core inode. */
export function setattr_copy(inode: inode, attr: iattr): void {
  const v = attr.ia_valid;
  if (v & ATTR_UID) inode.i_uid = attr.ia_uid!;
  if (v & ATTR_GID) inode.i_gid = attr.ia_gid!;
  if (v & ATTR_ATIME) inode.i_atime = { ...attr.ia_atime! };
  if (v & ATTR_MTIME) inode.i_mtime = { ...attr.ia_mtime! };
  if (v & ATTR_CTIME) inode.i_ctime = { ...attr.ia_ctime! };
  if (v & ATTR_MODE) {
    let mode = attr.ia_mode!;
    if (!in_group_or_capable(inode.i_gid)) mode &= ~S_ISGID;
    inode.i_mode = mode;
  }
}

/** setattr_should_drop_sgid */
export function setattr_should_drop_sgid(inode: inode): number {
  const mode = inode.i_mode;
  if (!(mode & S_ISGID)) return 0;
  if (mode & S_IXGRP) return ATTR_KILL_SGID;
  if (!in_group_or_capable(inode.i_gid)) return ATTR_KILL_SGID;
  return 0;
}

/**
 * setattr_should_drop_suidgid: what a write by the caller clears on a regular file (what
 * file_remove_privs applies): S_ISUID always, S_ISGID as setattr_should_drop_sgid says (with
 * group-execute, or for a caller outside the file's group), nothing with CAP_FSETID.
 */
export function setattr_should_drop_suidgid(inode: inode): number {
  const mode = inode.i_mode;
  let kill = 0;
  if (mode & S_ISUID) kill = ATTR_KILL_SUID;
  kill |= setattr_should_drop_sgid(inode);
  if (kill && !capable(CAP_FSETID) && S_ISREG(mode)) return kill;
  return 0;
}

/**
 * notify_change: validate and apply an attribute change through the filesystem's setattr
 * (simple_setattr by default). The caller holds the inode's i_rwsem and has done
 * mnt_want_write.
 */
export async function notify_change(d: dentry, attr: iattr): Promise<void> {
  const inode = d.d_inode!;
  let v = attr.ia_valid;
  if ((v & (ATTR_MODE | ATTR_UID | ATTR_GID | ATTR_TIMES_SET)) && (inode.i_flags & (S_IMMUTABLE | S_APPEND))) throw err(EPERM);
  if (v & ATTR_TOUCH) {
    if (inode.i_flags & S_IMMUTABLE) throw err(EPERM);
    if (!inode_owner_or_capable(inode)) await inode_permission(inode, MAY_WRITE);
  }
  const now = current_time(inode);
  attr.ia_ctime = now;
  attr.ia_atime = v & ATTR_ATIME_SET ? timestamp_truncate(attr.ia_atime!, inode.i_sb) : now;
  attr.ia_mtime = v & ATTR_MTIME_SET ? timestamp_truncate(attr.ia_mtime!, inode.i_sb) : now;
  if (v & ATTR_KILL_SUID && inode.i_mode & S_ISUID) {
    v = attr.ia_valid |= ATTR_MODE;
    attr.ia_mode = inode.i_mode & ~S_ISUID;
  }
  if (v & ATTR_KILL_SGID && inode.i_mode & S_ISGID) {
    if (!(v & ATTR_MODE)) { v = attr.ia_valid |= ATTR_MODE; attr.ia_mode = inode.i_mode; }
    attr.ia_mode = attr.ia_mode! & ~S_ISGID;
  }
  attr.ia_valid &= ~(ATTR_KILL_SUID | ATTR_KILL_SGID | ATTR_TOUCH);
  if (!attr.ia_valid) return;
  if (inode.i_op.setattr) await inode.i_op.setattr(d, attr);
  else await simple_setattr(d, attr);
}

export { ATTR_ATIME, ATTR_MTIME, ATTR_CTIME };
