/*
 * Opening and closing files, and the path-based attribute calls (fs/open.c, fs/utimes.c,
 * fs/d_path.c's getcwd).
 *
 * openat: flags are checked, the path is walked; O_CREAT resolves the parent and creates
 * the last component under the parent's lock (following a dangling trailing symlink to
 * create its target, unless O_EXCL or O_NOFOLLOW); may_open checks the file type and the
 * access mode; O_TRUNC truncates; O_PATH makes a descriptor that only names the file.
 *
 * May touch: namei, file_table, fs_struct, attr, dcache, namespace, filemap, fs-writeback.
 */
import { define_syscall } from '../arch/syscalls.js';
import {
  ATTR_CTIME, ATTR_GID, ATTR_KILL_SGID, ATTR_KILL_SUID, ATTR_MODE, ATTR_MTIME, ATTR_OPEN,
  ATTR_SIZE, ATTR_UID, ATTR_ATIME, ATTR_FORCE, ATTR_ATIME_SET, ATTR_MTIME_SET, ATTR_TIMES_SET, ATTR_FILE,
  CAP_DAC_OVERRIDE, CAP_SYS_CHROOT, FMODE_LSEEK, FMODE_PATH, FMODE_PREAD, FMODE_PWRITE, FMODE_READ,
  FMODE_WRITE, LOOKUP_DIRECTORY, LOOKUP_FOLLOW, MAY_APPEND, MAY_EXEC, MAY_OPEN, MAY_READ,
  MAY_WRITE, MNT_NODEV, MNT_NOEXEC, S_APPEND, S_IMMUTABLE,
  empty_fops, type cred, type file, type iattr, type path,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, EBADF, EEXIST, EFBIG, EINVAL, EISDIR,
  ELOOP, ENOENT, ENODEV, ENOTDIR, EOPNOTSUPP, EPERM, ESPIPE, EACCES, FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
  O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOATIME, O_NOCTTY,
  O_NOFOLLOW, O_PATH, O_TMPFILE, O_TRUNC, O_RDONLY, R_OK, W_OK, X_OK, S_ISBLK, S_ISCHR, S_ISDIR,
  S_ISFIFO, S_ISLNK, S_ISREG, S_ISSOCK, UTIME_NOW, UTIME_OMIT, O_DIRECT, O_DSYNC, O_NONBLOCK,
  O_SYNC, type timespec64,
} from '../include/uapi.js';
import type { PathArg } from '../include/sys.js';
import * as NR from '../include/unistd.js';
import { capable, current_cred } from '../kernel/cred.js';
import { current } from '../arch/cpu.js';
import {
  LAST_NORM, LOOKUP_EMPTY, getname, inode_owner_or_capable, inode_permission, lookupLastFrom,
  lookup_one_len, may_create, mode_strip_umask, open_last_lookups, path_get, path_put, path_lookupat, user_path_at, vfs_create,
} from './namei.js';
import {
  alloc_file, fd_install, fd_remove, filp_close, fput, fget_raw, withFile, fget,
} from './file_table.js';
import { current_fs, set_fs_pwd, set_fs_root } from './fs_struct.js';
import { notify_change, setattr_should_drop_sgid, ATTR_TOUCH } from './attr.js';
import { d_path, d_unlinked, dput } from './dcache.js';
import { mnt_want_write } from './namespace.js';
import { bstrToUtf8 } from '../lib/bstr.js';

/* ---- open ---- */

const VALID_OPEN_FLAGS = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
  O_DSYNC | O_DIRECT | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_SYNC | O_PATH | O_TMPFILE;
const O_PATH_FLAGS = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;

/** build_open_flags: the access mask may_open checks, and the validated flags. */
function buildOpenFlags(flags: number): { flags: number; accMode: number } {
  flags &= VALID_OPEN_FLAGS; // unknown bits are ignored by open(2), as in Linux
  if ((flags & O_CREAT) && (flags & O_DIRECTORY) && (flags & O_TMPFILE) !== O_TMPFILE) throw err(EINVAL);
  if ((flags & O_TMPFILE) === O_TMPFILE) {
    if (!(flags & (O_WRONLY | O_RDWR))) throw err(EINVAL);
    throw err(EOPNOTSUPP);
  }
  if (flags & O_PATH) return { flags: flags & O_PATH_FLAGS, accMode: 0 };
  let acc = 0;
  const a = flags & O_ACCMODE;
  if (a === O_RDONLY) acc = MAY_READ;
  else if (a === O_WRONLY) acc = MAY_WRITE;
  else acc = MAY_READ | MAY_WRITE; // O_RDWR, and 3 ("ioctl only") which needs both
  if (flags & O_TRUNC) acc |= MAY_WRITE;
  if (flags & O_APPEND) acc |= MAY_APPEND;
  return { flags: flags | O_LARGEFILE, accMode: acc };
}
const O_WRONLY = 1, O_RDWR = 2;

/** may_open: the file type and the access mode. */
async function may_open(path: path, accMode: number, flags: number): Promise<void> {
  const inode = path.dentry.d_inode!;
  const mode = inode.i_mode;
  if (S_ISLNK(mode)) throw err(ELOOP);
  if (S_ISDIR(mode)) {
    if (accMode & MAY_WRITE) throw err(EISDIR);
    if (accMode & MAY_EXEC) throw err(EACCES);
  } else if (S_ISBLK(mode) || S_ISCHR(mode)) {
    if (path.mnt.mnt_flags & MNT_NODEV) throw err(EACCES);
  } else if (S_ISREG(mode)) {
    if ((accMode & MAY_EXEC) && (path.mnt.mnt_flags & MNT_NOEXEC)) throw err(EACCES);
  }
  await inode_permission(inode, MAY_OPEN | accMode);
  if (inode.i_flags & S_APPEND) {
    if ((flags & O_ACCMODE) !== O_RDONLY && !(flags & O_APPEND)) throw err(EPERM);
    if (flags & O_TRUNC) throw err(EPERM);
  }
  if ((flags & O_NOATIME) && !inode_owner_or_capable(inode)) throw err(EPERM);
}

/**
 * vfs_open / do_dentry_open: a file on `path` (whose reference the file takes over).
 * O_PATH files get no file operations and never reach the filesystem.
 */
async function do_dentry_open(path: path, flags: number): Promise<file> {
  const inode = path.dentry.d_inode!;
  if (flags & O_PATH) return alloc_file(path, flags & ~O_CLOEXEC, FMODE_PATH, empty_fops);
  let fmode = FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE;
  const a = flags & O_ACCMODE;
  if (a === O_RDONLY || a === O_RDWR) fmode |= FMODE_READ;
  if (a === O_WRONLY || a === O_RDWR) fmode |= FMODE_WRITE;
  if (S_ISFIFO(inode.i_mode) || S_ISSOCK(inode.i_mode)) fmode &= ~(FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE);
  if ((fmode & FMODE_WRITE) && (S_ISREG(inode.i_mode) || S_ISDIR(inode.i_mode))) {
    try { mnt_want_write(path.mnt); } catch (e) { await path_put(path); throw e; }
  }
  const f = alloc_file(path, flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC), fmode, inode.i_fop);
  if (fmode & FMODE_WRITE) inode.i_writecount++;
  inode.i_opencount++;
  if (f.f_op.open) {
    try { await f.f_op.open(inode, f); } catch (e) { await fput(f); throw e; }
  }
  return f;
}

/** do_truncate: the size change behind truncate, ftruncate and O_TRUNC. */
export async function do_truncate(path: path, length: number, timeAttrs: number, file: file | null): Promise<void> {
  if (length < 0) throw err(EINVAL);
  const d = path.dentry;
  const inode = d.d_inode!;
  const attr: iattr = { ia_valid: ATTR_SIZE | timeAttrs, ia_size: length };
  if (file) { attr.ia_valid |= ATTR_FILE; attr.ia_file = file; }
  // Truncation by someone without CAP_FSETID clears set-user/group-ID, as a write would.
  const kill = (inode.i_mode & 0o4000 ? ATTR_KILL_SUID : 0) | setattr_should_drop_sgid(inode);
  // ATTR_FORCE: dropping privileges is not a chmod the caller must be allowed to make.
  if (kill && !capable(4 /* CAP_FSETID */)) attr.ia_valid |= kill | ATTR_FORCE;
  await inode.i_rwsem.downWrite();
  try { await notify_change(d, attr); } finally { inode.i_rwsem.upWrite(); }
}

async function do_filp_open(dfd: number, name: string, flags: number, mode: number): Promise<file> {
  const { flags: oflags, accMode } = buildOpenFlags(flags);
  flags = oflags;
  const lookupFlags = (flags & O_NOFOLLOW ? 0 : LOOKUP_FOLLOW) | (flags & O_DIRECTORY ? LOOKUP_DIRECTORY : 0) |
    (flags & O_PATH ? 0 : 0);
  let created = false;
  let path: path;
  if (!(flags & O_CREAT)) {
    path = await path_lookupat(dfd, name, lookupFlags);
  } else {
    path = await open_last_lookups<path>(dfd, name, 0, async (parent, last, lastType, trailing) => {
      if (lastType !== LAST_NORM) {
        // "." ".." "/": existing directories; O_CREAT on them is EISDIR.
        throw err(EISDIR);
      }
      if (trailing) throw err(EISDIR);
      let roErr: unknown = null;
      try { mnt_want_write(parent.mnt); } catch (e) { roErr = e; }
      const dir = parent.dentry.d_inode!;
      await dir.i_rwsem.downWrite();
      let d;
      try {
        d = await lookup_one_len(parent.dentry, last, 0);
      } catch (e) { dir.i_rwsem.upWrite(); throw e; }
      try {
        if (!d.d_inode) {
          if (roErr) throw roErr;
          await may_create(dir, d);
          await vfs_create(dir, d, mode_strip_umask(dir, mode), (flags & O_EXCL) !== 0);
          created = true;
        } else if (flags & O_EXCL) throw err(EEXIST);
      } catch (e) { dir.i_rwsem.upWrite(); await dput(d); throw e; }
      dir.i_rwsem.upWrite();
      const p: path = path_get({ mnt: parent.mnt, dentry: d });
      await dput(d);
      const inode = p.dentry.d_inode!;
      if (!created && S_ISLNK(inode.i_mode) && !(flags & O_NOFOLLOW)) return { link: p };
      // Existing mount points: open the mounted root.
      if (!created && p.dentry.d_mounted > 0) {
        await path_put(p);
        return { done: await lookupLastFrom(parent, last, lastType, false, false, 0) };
      }
      return { done: p };
    });
  }
  try {
    const inode = path.dentry.d_inode!;
    if ((flags & O_CREAT) && !created && S_ISDIR(inode.i_mode)) throw err(EISDIR);
    if ((flags & O_DIRECTORY) && !S_ISDIR(inode.i_mode)) throw err(ENOTDIR);
    if (!(flags & O_PATH)) {
      if (!created) await may_open(path, accMode, flags);
      else if (S_ISREG(inode.i_mode) && (flags & O_NOATIME) && !inode_owner_or_capable(inode)) throw err(EPERM);
    }
  } catch (e) { await path_put(path); throw e; }
  const doTrunc = !(flags & O_PATH) && !created && (flags & O_TRUNC) && S_ISREG(path.dentry.d_inode!.i_mode);
  if (doTrunc) {
    try {
      mnt_want_write(path.mnt);
      await do_truncate(path, 0, ATTR_MTIME | ATTR_CTIME | ATTR_OPEN, null);
    } catch (e) { await path_put(path); throw e; }
  }
  return do_dentry_open(path, flags);
}

/** filp_open for kernel users (byte-string path). */
export function filp_open(name: string, flags: number, mode: number): Promise<file> {
  return do_filp_open(AT_FDCWD, name, flags, mode);
}

define_syscall(NR.__NR_openat, 'openat', async (dfd: number, p: PathArg, flags: number, mode: number) => {
  const f = await do_filp_open(dfd, getname(p), flags >>> 0, (mode ?? 0) & 0o7777);
  try {
    return fd_install(f, (flags & O_CLOEXEC) !== 0);
  } catch (e) { await fput(f); throw e; }
});

define_syscall(NR.__NR_close, 'close', async (fd: number) => {
  const f = fd_remove(fd);
  await filp_close(f);
  return 0;
});

/* ---- truncate, fallocate ---- */

define_syscall(NR.__NR_truncate, 'truncate', async (p: PathArg, length: number) => {
  if (length < 0) throw err(EINVAL);
  const path = await user_path_at(AT_FDCWD, p, LOOKUP_FOLLOW);
  try {
    const inode = path.dentry.d_inode!;
    if (S_ISDIR(inode.i_mode)) throw err(EISDIR);
    if (!S_ISREG(inode.i_mode)) throw err(EINVAL);
    mnt_want_write(path.mnt);
    await inode_permission(inode, MAY_WRITE);
    if (inode.i_flags & (S_APPEND | S_IMMUTABLE)) throw err(EPERM);
    await do_truncate(path, length, 0, null);
  } finally { await path_put(path); }
  return 0;
});

define_syscall(NR.__NR_ftruncate, 'ftruncate', async (fd: number, length: number) => {
  if (length < 0) throw err(EINVAL);
  return withFile(fd, async (f) => {
    const inode = f.f_inode;
    if (!S_ISREG(inode.i_mode) || !(f.f_mode & FMODE_WRITE)) throw err(EINVAL);
    if (inode.i_flags & S_APPEND) throw err(EPERM);
    mnt_want_write(f.f_path.mnt);
    await do_truncate(f.f_path, length, ATTR_MTIME | ATTR_CTIME, f);
    return 0;
  });
});

const FALLOC_FL_SUPPORTED_MASK = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE |
  FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE;

/** vfs_fallocate: the mode and range checks, then the filesystem. */
export async function vfs_fallocate(f: file, mode: number, offset: number, len: number): Promise<void> {
  const inode = f.f_inode;
  if (offset < 0 || len <= 0) throw err(EINVAL);
  if (mode & ~FALLOC_FL_SUPPORTED_MASK) throw err(EOPNOTSUPP);
  if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) === (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) throw err(EOPNOTSUPP);
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) throw err(EOPNOTSUPP);
  if ((mode & FALLOC_FL_COLLAPSE_RANGE) && (mode & ~FALLOC_FL_COLLAPSE_RANGE)) throw err(EINVAL);
  if ((mode & FALLOC_FL_INSERT_RANGE) && (mode & ~FALLOC_FL_INSERT_RANGE)) throw err(EINVAL);
  if (!(f.f_mode & FMODE_WRITE)) throw err(EBADF);
  if ((mode & ~FALLOC_FL_KEEP_SIZE) && (inode.i_flags & S_APPEND)) throw err(EPERM);
  if (inode.i_flags & S_IMMUTABLE) throw err(EPERM);
  if (S_ISFIFO(inode.i_mode)) throw err(ESPIPE);
  if (S_ISDIR(inode.i_mode)) throw err(EISDIR);
  if (!S_ISREG(inode.i_mode) && !S_ISBLK(inode.i_mode)) throw err(ENODEV);
  if (offset + len > inode.i_sb.s_maxbytes || offset + len < 0) throw err(EFBIG);
  if (!f.f_op.fallocate) throw err(EOPNOTSUPP);
  mnt_want_write(f.f_path.mnt);
  await inode.i_rwsem.downWrite();
  try { await f.f_op.fallocate(f, mode, offset, len); } finally { inode.i_rwsem.upWrite(); }
}

define_syscall(NR.__NR_fallocate, 'fallocate', async (fd: number, mode: number, offset: number, len: number) => {
  return withFile(fd, async (f) => { await vfs_fallocate(f, mode, offset, len); return 0; });
});

/* ---- access ---- */

/**
 * faccessat: checks with the real uid/gid, as access(2) must (a set-user-ID program asks
 * whether its invoker could). Root's capabilities count only if the real uid is 0.
 */
define_syscall(NR.__NR_faccessat, 'faccessat', async (dfd: number, p: PathArg, mode: number, flags: number) => {
  flags = flags ?? 0;
  if (mode & ~(R_OK | W_OK | X_OK)) throw err(EINVAL);
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw err(EINVAL);
  const task = current();
  const saved = task.ctx.cred as cred | undefined;
  const real = current_cred();
  if (!(flags & AT_EACCESS)) {
    // access_override_creds: root's powers count only for a real uid of 0.
    const caps = new Set<number>();
    if (real.uid === 0) for (let i = 0; i < 41; i++) caps.add(i);
    task.ctx.cred = { ...real, fsuid: real.uid, fsgid: real.gid, groups: real.groups, cap_effective: caps } satisfies cred;
  }
  try {
    let how = flags & AT_SYMLINK_NOFOLLOW ? 0 : LOOKUP_FOLLOW;
    if (flags & AT_EMPTY_PATH) how |= LOOKUP_EMPTY;
    const path = await user_path_at(dfd, p, how);
    try {
      const inode = path.dentry.d_inode!;
      if (mode & X_OK && S_ISREG(inode.i_mode) && (path.mnt.mnt_flags & MNT_NOEXEC)) throw err(EACCES);
      if (mode === 0) return 0;
      await inode_permission(inode, ((mode & R_OK) ? MAY_READ : 0) | ((mode & W_OK) ? MAY_WRITE : 0) | ((mode & X_OK) ? MAY_EXEC : 0));
      if ((mode & W_OK) && (S_ISREG(inode.i_mode) || S_ISDIR(inode.i_mode))) mnt_want_write(path.mnt);
      return 0;
    } finally { await path_put(path); }
  } finally { task.ctx.cred = saved; }
});

/* ---- cwd and root ---- */

define_syscall(NR.__NR_chdir, 'chdir', async (p: PathArg) => {
  const path = await user_path_at(AT_FDCWD, p, LOOKUP_FOLLOW | LOOKUP_DIRECTORY);
  try {
    await inode_permission(path.dentry.d_inode!, MAY_EXEC);
  } catch (e) { await path_put(path); throw e; }
  await set_fs_pwd(current_fs(), path);
  return 0;
});

define_syscall(NR.__NR_fchdir, 'fchdir', async (fd: number) => {
  const f = fget_raw(fd);
  try {
    if (!S_ISDIR(f.f_inode.i_mode)) throw err(ENOTDIR);
    await inode_permission(f.f_inode, MAY_EXEC);
    await set_fs_pwd(current_fs(), path_get(f.f_path));
  } finally { await fput(f); }
  return 0;
});

define_syscall(NR.__NR_chroot, 'chroot', async (p: PathArg) => {
  const path = await user_path_at(AT_FDCWD, p, LOOKUP_FOLLOW | LOOKUP_DIRECTORY);
  try {
    await inode_permission(path.dentry.d_inode!, MAY_EXEC);
    if (!capable(CAP_SYS_CHROOT)) throw err(EPERM);
  } catch (e) { await path_put(path); throw e; }
  await set_fs_root(current_fs(), path);
  return 0;
});

/** getcwd: the cwd as seen from the process root; "(unreachable)" outside it. */
define_syscall(NR.__NR_getcwd, 'getcwd', () => {
  const fs = current_fs();
  if (d_unlinked(fs.pwd.dentry)) throw err(ENOENT);
  const r = d_path(fs.pwd, fs.root);
  return bstrToUtf8(r.reachable ? r.name : '(unreachable)' + r.name);
});

define_syscall(NR.__NR_umask, 'umask', (mask: number) => {
  const fs = current_fs();
  const old = fs.umask;
  fs.umask = mask & 0o777;
  return old;
});

/* ---- chmod, chown ---- */

async function chmod_common(path: path, mode: number): Promise<void> {
  mnt_want_write(path.mnt);
  const inode = path.dentry.d_inode!;
  await inode.i_rwsem.downWrite();
  try {
    await notify_change(path.dentry, { ia_valid: ATTR_MODE | ATTR_CTIME, ia_mode: (mode & 0o7777) | (inode.i_mode & ~0o7777) });
  } finally { inode.i_rwsem.upWrite(); }
}

define_syscall(NR.__NR_fchmod, 'fchmod', async (fd: number, mode: number) => {
  return withFile(fd, async (f) => { await chmod_common(f.f_path, mode); return 0; });
});

define_syscall(NR.__NR_fchmodat, 'fchmodat', async (dfd: number, p: PathArg, mode: number, flags: number) => {
  flags = flags ?? 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw err(EINVAL);
  let how = flags & AT_SYMLINK_NOFOLLOW ? 0 : LOOKUP_FOLLOW;
  if (flags & AT_EMPTY_PATH) how |= LOOKUP_EMPTY;
  const path = await user_path_at(dfd, p, how);
  try {
    // Symlink modes mean nothing on Linux: fchmodat2 refuses to change them.
    if (S_ISLNK(path.dentry.d_inode!.i_mode)) throw err(EOPNOTSUPP);
    await chmod_common(path, mode);
  } finally { await path_put(path); }
  return 0;
});

async function chown_common(path: path, uid: number, gid: number): Promise<void> {
  const inode = path.dentry.d_inode!;
  const attr: iattr = { ia_valid: ATTR_CTIME };
  if (uid !== -1 && uid !== 0xffffffff) { attr.ia_valid |= ATTR_UID; attr.ia_uid = uid >>> 0; }
  if (gid !== -1 && gid !== 0xffffffff) { attr.ia_valid |= ATTR_GID; attr.ia_gid = gid >>> 0; }
  mnt_want_write(path.mnt);
  await inode.i_rwsem.downWrite();
  try {
    if (!S_ISDIR(inode.i_mode)) attr.ia_valid |= ATTR_KILL_SUID | setattr_should_drop_sgid(inode);
    await notify_change(path.dentry, attr);
  } finally { inode.i_rwsem.upWrite(); }
}

define_syscall(NR.__NR_fchown, 'fchown', async (fd: number, uid: number, gid: number) => {
  return withFile(fd, async (f) => { await chown_common(f.f_path, uid, gid); return 0; });
});

define_syscall(NR.__NR_fchownat, 'fchownat', async (dfd: number, p: PathArg, uid: number, gid: number, flags: number) => {
  flags = flags ?? 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw err(EINVAL);
  let how = flags & AT_SYMLINK_NOFOLLOW ? 0 : LOOKUP_FOLLOW;
  if (flags & AT_EMPTY_PATH) how |= LOOKUP_EMPTY;
  const path = await user_path_at(dfd, p, how);
  try { await chown_common(path, uid, gid); } finally { await path_put(path); }
  return 0;
});

/* ---- utimensat (fs/utimes.c) ---- */

const nsecValid = (n: number) => n === UTIME_NOW || n === UTIME_OMIT || (Number.isInteger(n) && n >= 0 && n <= 999999999);

async function vfs_utimes(path: path, times: [timespec64, timespec64] | null): Promise<void> {
  if (times && times[0].nsec === UTIME_NOW && times[1].nsec === UTIME_NOW) times = null;
  const attr: iattr = { ia_valid: ATTR_CTIME | ATTR_MTIME | ATTR_ATIME };
  if (times) {
    if (times[0].nsec === UTIME_OMIT) attr.ia_valid &= ~ATTR_ATIME;
    else if (times[0].nsec !== UTIME_NOW) { attr.ia_valid |= ATTR_ATIME_SET; attr.ia_atime = { ...times[0] }; }
    if (times[1].nsec === UTIME_OMIT) attr.ia_valid &= ~ATTR_MTIME;
    else if (times[1].nsec !== UTIME_NOW) { attr.ia_valid |= ATTR_MTIME_SET; attr.ia_mtime = { ...times[1] }; }
    attr.ia_valid |= ATTR_TIMES_SET;
  } else attr.ia_valid |= ATTR_TOUCH;
  mnt_want_write(path.mnt);
  const inode = path.dentry.d_inode!;
  await inode.i_rwsem.downWrite();
  try { await notify_change(path.dentry, attr); } finally { inode.i_rwsem.upWrite(); }
}

define_syscall(NR.__NR_utimensat, 'utimensat', async (dfd: number, p: PathArg | null, times: [timespec64, timespec64] | null, flags: number) => {
  flags = flags ?? 0;
  if (times) {
    if (!Array.isArray(times) || times.length !== 2) throw err(EINVAL);
    if (times[0].nsec === UTIME_OMIT && times[1].nsec === UTIME_OMIT) return 0;
    if (!nsecValid(times[0].nsec) || !nsecValid(times[1].nsec)) throw err(EINVAL);
  }
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw err(EINVAL);
  if (p === null || p === undefined) {
    // futimens: the descriptor itself.
    if (flags & AT_SYMLINK_NOFOLLOW) throw err(EINVAL);
    if (dfd === AT_FDCWD) throw err(14 /* EFAULT */);
    const f = fget_raw(dfd);
    try { await vfs_utimes(f.f_path, times); } finally { await fput(f); }
    return 0;
  }
  let how = flags & AT_SYMLINK_NOFOLLOW ? 0 : LOOKUP_FOLLOW;
  if (flags & AT_EMPTY_PATH) how |= LOOKUP_EMPTY;
  const path = await user_path_at(dfd, p, how);
  try { await vfs_utimes(path, times); } finally { await path_put(path); }
  return 0;
});

export { fget, CAP_DAC_OVERRIDE };
