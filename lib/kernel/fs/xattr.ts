/*
 * Extended attributes (fs/xattr.c): the 12 system calls and the four *xattrat ones of
 * Linux 6.13, name checks, namespace permissions, and dispatch to the superblock's
 * handlers by prefix.
 *
 * Names are checked first (ERANGE when empty or longer than 255 bytes, E2BIG for values
 * over 64 KiB, EINVAL for unknown flags), then the path, then xattr_permission: writing
 * needs a mutable inode; trusted.* needs CAP_SYS_ADMIN (reads without it see ENODATA);
 * user.* exists only on regular files and directories, and a sticky directory's are
 * writable only by its owner; security.* and system.* are left to the filesystem; any
 * other namespace goes through inode_permission and then finds no handler (EOPNOTSUPP).
 *
 * May touch: namei, file_table, namespace (mnt_want_write).
 */
import { define_syscall } from '../arch/syscalls.js';
import {
  CAP_SYS_ADMIN, LOOKUP_FOLLOW, MAY_READ, MAY_WRITE, S_APPEND, S_IMMUTABLE, type file,
  type dentry, type inode, type path, type xattr_handler,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, E2BIG, EFAULT, EINVAL, ENODATA, EOPNOTSUPP, EPERM, ERANGE, S_ISDIR, S_ISREG, S_ISVTX,
  XATTR_CREATE, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX,
} from '../include/uapi.js';
import { bstrToUtf8, utf8ToBstr } from '../lib/bstr.js';
import type { PathArg } from '../include/sys.js';
import * as NR from '../include/unistd.js';
import { capable } from '../kernel/cred.js';
import { LOOKUP_EMPTY, inode_owner_or_capable, inode_permission, path_put, user_path_at } from './namei.js';
import { withFile } from './file_table.js';
import { mnt_want_write } from './namespace.js';

/** The attribute name as a byte string: ERANGE when empty or too long. */
function xattrName(name: unknown): string {
  if (typeof name !== 'string') throw err(EFAULT);
  const nul = name.indexOf('\0');
  const s = utf8ToBstr(nul >= 0 ? name.slice(0, nul) : name);
  if (s.length === 0 || s.length > XATTR_NAME_MAX) throw err(ERANGE);
  return s;
}

/** xattr_resolve_name: the handler for `name` and the name within its namespace. */
export function xattrResolveName(handlers: xattr_handler[], name: string): { h: xattr_handler; suffix: string } {
  for (const h of handlers) {
    const pre = h.prefix ?? h.name ?? '';
    if (!name.startsWith(pre)) continue;
    const suffix = name.slice(pre.length);
    if (!h.prefix !== !suffix) {
      if (suffix) continue;
      throw err(EINVAL);
    }
    return { h, suffix };
  }
  throw err(EOPNOTSUPP);
}

/** xattr_permission */
export async function xattr_permission(inode: inode, name: string, mask: number): Promise<void> {
  if ((mask & MAY_WRITE) && (inode.i_flags & (S_IMMUTABLE | S_APPEND))) throw err(EPERM);
  if (name.startsWith('security.') || name.startsWith('system.')) return;
  if (name.startsWith('trusted.')) {
    if (!capable(CAP_SYS_ADMIN)) throw err(mask & MAY_WRITE ? EPERM : ENODATA);
    return;
  }
  if (name.startsWith('user.')) {
    if (!S_ISREG(inode.i_mode) && !S_ISDIR(inode.i_mode)) throw err(mask & MAY_WRITE ? EPERM : ENODATA);
    if (S_ISDIR(inode.i_mode) && (inode.i_mode & S_ISVTX) && (mask & MAY_WRITE) && !inode_owner_or_capable(inode)) throw err(EPERM);
  }
  await inode_permission(inode, mask);
}

/** vfs_setxattr (value null = vfs_removexattr) */
export async function vfs_setxattr(d: dentry, name: string, value: Uint8Array | null, flags: number): Promise<void> {
  const inode = d.d_inode!;
  await inode.i_rwsem.downWrite();
  try {
    await xattr_permission(inode, name, MAY_WRITE);
    const { h, suffix } = xattrResolveName(inode.i_sb.s_xattr, name);
    if (!h.set) throw err(EOPNOTSUPP);
    await h.set(d, inode, suffix, value, value === null ? XATTR_REPLACE : flags);
  } finally { inode.i_rwsem.upWrite(); }
}

/** vfs_getxattr */
export async function vfs_getxattr(d: dentry, name: string): Promise<Uint8Array> {
  const inode = d.d_inode!;
  await xattr_permission(inode, name, MAY_READ);
  const { h, suffix } = xattrResolveName(inode.i_sb.s_xattr, name);
  const v = await h.get(d, inode, suffix);
  if (v.length > XATTR_SIZE_MAX) throw err(E2BIG);
  return v.slice();
}

/** vfs_listxattr */
export async function vfs_listxattr(d: dentry): Promise<string[]> {
  const inode = d.d_inode!;
  const names = inode.i_op.listxattr ? await inode.i_op.listxattr(d) : [];
  let total = 0;
  for (const n of names) total += n.length + 1;
  if (total > XATTR_LIST_MAX) throw err(E2BIG);
  return names.map(bstrToUtf8);
}

function checkSet(name: unknown, value: unknown, flags: number): [string, Uint8Array] {
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) throw err(EINVAL);
  const n = xattrName(name);
  if (!(value instanceof Uint8Array)) throw err(EFAULT);
  if (value.length > XATTR_SIZE_MAX) throw err(E2BIG);
  return [n, value];
}

async function onPath<T>(p: PathArg, follow: boolean, fn: (path: path) => Promise<T>): Promise<T> {
  const path = await user_path_at(-100, p, follow ? LOOKUP_FOLLOW : 0);
  try { return await fn(path); } finally { await path_put(path); }
}

const setOn = (follow: boolean) => async (p: PathArg, name: string, value: Uint8Array, flags: number) => {
  const [n, v] = checkSet(name, value, flags ?? 0);
  return onPath(p, follow, async (path) => { mnt_want_write(path.mnt); await vfs_setxattr(path.dentry, n, v, flags ?? 0); return 0; });
};
const getOn = (follow: boolean) => async (p: PathArg, name: string) => {
  const n = xattrName(name);
  return onPath(p, follow, (path) => vfs_getxattr(path.dentry, n));
};
const listOn = (follow: boolean) => async (p: PathArg) => onPath(p, follow, (path) => vfs_listxattr(path.dentry));
const removeOn = (follow: boolean) => async (p: PathArg, name: string) => {
  const n = xattrName(name);
  return onPath(p, follow, async (path) => { mnt_want_write(path.mnt); await vfs_setxattr(path.dentry, n, null, 0); return 0; });
};

define_syscall(NR.__NR_setxattr, 'setxattr', setOn(true));
define_syscall(NR.__NR_lsetxattr, 'lsetxattr', setOn(false));
define_syscall(NR.__NR_fsetxattr, 'fsetxattr', async (fd: number, name: string, value: Uint8Array, flags: number) => {
  const [n, v] = checkSet(name, value, flags ?? 0);
  return withFile(fd, async (f) => { mnt_want_write(f.f_path.mnt); await vfs_setxattr(f.f_path.dentry, n, v, flags ?? 0); return 0; });
});
define_syscall(NR.__NR_getxattr, 'getxattr', getOn(true));
define_syscall(NR.__NR_lgetxattr, 'lgetxattr', getOn(false));
define_syscall(NR.__NR_fgetxattr, 'fgetxattr', async (fd: number, name: string) => {
  const n = xattrName(name);
  return withFile(fd, (f) => vfs_getxattr(f.f_path.dentry, n));
});
define_syscall(NR.__NR_listxattr, 'listxattr', listOn(true));
define_syscall(NR.__NR_llistxattr, 'llistxattr', listOn(false));
define_syscall(NR.__NR_flistxattr, 'flistxattr', (fd: number) => withFile(fd, (f) => vfs_listxattr(f.f_path.dentry)));
define_syscall(NR.__NR_removexattr, 'removexattr', removeOn(true));
define_syscall(NR.__NR_lremovexattr, 'lremovexattr', removeOn(false));
define_syscall(NR.__NR_fremovexattr, 'fremovexattr', async (fd: number, name: string) => {
  const n = xattrName(name);
  return withFile(fd, async (f) => { mnt_want_write(f.f_path.mnt); await vfs_setxattr(f.f_path.dentry, n, null, 0); return 0; });
});

/*
 * The *xattrat calls: at_flags first (EINVAL beyond AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH),
 * then the name and value, then getname_maybe_null: with AT_EMPTY_PATH, a null or empty
 * path names dirfd itself: an open file (fdget: EBADF for an O_PATH descriptor), or for
 * AT_FDCWD the working directory; any other path is looked up relative to dirfd (a null
 * one is EFAULT), following a final symlink unless AT_SYMLINK_NOFOLLOW.
 */
async function xattrAt<T>(dfd: number, p: PathArg | null, atFlags: number, onFile: (f: file) => Promise<T>, onPath: (path: path) => Promise<T>): Promise<T> {
  const empty = p === null || p === undefined || (typeof p === 'string' ? p === '' || p[0] === '\0' : p.length === 0 || p[0] === 0);
  let how = atFlags & AT_SYMLINK_NOFOLLOW ? 0 : LOOKUP_FOLLOW;
  if (empty && (atFlags & AT_EMPTY_PATH)) {
    if (dfd >= 0) return withFile(dfd, onFile);
    p = '';
    how |= LOOKUP_EMPTY;
  }
  const path = await user_path_at(dfd, p, how);
  try { return await onPath(path); } finally { await path_put(path); }
}
function atFlagsOk(atFlags: number): number {
  atFlags = atFlags ?? 0;
  if (atFlags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw err(EINVAL);
  return atFlags;
}

define_syscall(NR.__NR_setxattrat, 'setxattrat', async (dfd: number, p: PathArg | null, atFlags: number, name: string, value: Uint8Array, flags: number) => {
  atFlags = atFlagsOk(atFlags);
  const [n, v] = checkSet(name, value, flags ?? 0);
  const set = async (path: path) => { mnt_want_write(path.mnt); await vfs_setxattr(path.dentry, n, v, flags ?? 0); return 0; };
  return xattrAt(dfd, p, atFlags, (f) => set(f.f_path), set);
});
define_syscall(NR.__NR_getxattrat, 'getxattrat', async (dfd: number, p: PathArg | null, atFlags: number, name: string) => {
  atFlags = atFlagsOk(atFlags);
  const n = xattrName(name);
  return xattrAt(dfd, p, atFlags, (f) => vfs_getxattr(f.f_path.dentry, n), (path) => vfs_getxattr(path.dentry, n));
});
define_syscall(NR.__NR_listxattrat, 'listxattrat', async (dfd: number, p: PathArg | null, atFlags: number) => {
  atFlags = atFlagsOk(atFlags);
  return xattrAt(dfd, p, atFlags, (f) => vfs_listxattr(f.f_path.dentry), (path) => vfs_listxattr(path.dentry));
});
define_syscall(NR.__NR_removexattrat, 'removexattrat', async (dfd: number, p: PathArg | null, atFlags: number, name: string) => {
  atFlags = atFlagsOk(atFlags);
  const n = xattrName(name);
  const remove = async (path: path) => { mnt_want_write(path.mnt); await vfs_setxattr(path.dentry, n, null, 0); return 0; };
  return xattrAt(dfd, p, atFlags, (f) => remove(f.f_path), remove);
});
