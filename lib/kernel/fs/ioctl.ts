/*
 * ioctl(2) (fs/ioctl.c and fs/file_attr.c): the requests the VFS answers itself for every
 * file (FIOCLEX, FIONCLEX, FIONBIO, FIOASYNC, FIOQSIZE, FIGETBSZ, FIONREAD on regular
 * files), the inode flags of chattr/lsattr through the filesystem's fileattr operations
 * (FS_IOC_GETFLAGS/SETFLAGS, FS_IOC_FSGETXATTR/FSSETXATTR), and everything else handed to
 * the file's unlocked_ioctl; ENOTTY when nobody knows the request.
 *
 * The third argument: C passes a pointer (or a number); here a buffer the call reads from
 * or fills in place, at its start, little-endian (get_user/put_user of an int read or
 * write its first 4 bytes; a buffer too short is EFAULT), or a number.
 *
 * FS_IOC_SETFLAGS's checks are Linux's: the caller owns the file (or has CAP_FOWNER:
 * EPERM), changing IMMUTABLE or APPEND needs CAP_LINUX_IMMUTABLE (EPERM), a read-only
 * mount is EROFS (mnt_want_write_file); the filesystem checks the rest.
 *
 * May touch: file_table, namei (inode_owner_or_capable), namespace (mnt_want_write).
 */
import { define_syscall } from '../arch/syscalls.js';
import {
  CAP_LINUX_IMMUTABLE, FMODE_PATH, type dentry, type file, type inode, type IoctlArg, type fileattr,
} from '../include/fs.js';
import { ENOIOCTLCMD, err, isErrno } from '../include/errno.js';
import {
  EBADF, EFAULT, EINVAL, ENOTTY, EPERM, FIGETBSZ, FIOASYNC, FIOCLEX, FIONBIO, FIONCLEX, FIONREAD, FIOQSIZE,
  FS_APPEND_FL, FS_DAX_FL, FS_IMMUTABLE_FL, FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR, FS_IOC_GETFLAGS,
  FS_IOC_SETFLAGS, FS_NOATIME_FL, FS_NODUMP_FL, FS_PROJINHERIT_FL, FS_SYNC_FL, FS_VERITY_FL, FS_XFLAG_APPEND,
  FS_XFLAG_COWEXTSIZE, FS_XFLAG_DAX, FS_XFLAG_EXTSIZE, FS_XFLAG_EXTSZINHERIT, FS_XFLAG_IMMUTABLE,
  FS_XFLAG_NOATIME, FS_XFLAG_NODUMP, FS_XFLAG_PROJINHERIT, FS_XFLAG_SYNC, FS_XFLAG_VERITY, FSXATTR_SIZE,
  O_NONBLOCK, S_ISDIR, S_ISLNK, S_ISREG,
} from '../include/uapi.js';
import * as NR from '../include/unistd.js';
import { capable } from '../kernel/cred.js';
import { current_files, fget_raw, fput } from './file_table.js';
import { inode_owner_or_capable } from './namei.js';
import { mnt_want_write } from './namespace.js';

/* The flags FS_IOC_SETFLAGS and FS_IOC_FSSETXATTR both carry (include/linux/fileattr.h). */
export const FS_COMMON_FL = FS_SYNC_FL | FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL | FS_NOATIME_FL |
  FS_DAX_FL | FS_PROJINHERIT_FL;
export const FS_XFLAG_COMMON = FS_XFLAG_SYNC | FS_XFLAG_IMMUTABLE | FS_XFLAG_APPEND | FS_XFLAG_NODUMP |
  FS_XFLAG_NOATIME | FS_XFLAG_DAX | FS_XFLAG_PROJINHERIT;

/* ---- user memory: the argument buffer ---- */

function userBuf(arg: IoctlArg, size: number): Uint8Array {
  if (!(arg instanceof Uint8Array) || arg.length < size) throw err(EFAULT);
  return arg;
}
/** get_user of an int (u32 here: flags and generations are read as unsigned). */
export function get_user_u32(arg: IoctlArg): number {
  const b = userBuf(arg, 4);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
}
/** put_user of an int. */
export function put_user_u32(arg: IoctlArg, v: number): void {
  const b = userBuf(arg, 4);
  v = v >>> 0;
  b[0] = v & 0xff; b[1] = (v >>> 8) & 0xff; b[2] = (v >>> 16) & 0xff; b[3] = v >>> 24;
}
/** put_user of a loff_t (a byte count: no 32-bit bitwise arithmetic on it). */
function put_user_u64(arg: IoctlArg, v: number): void {
  const b = userBuf(arg, 8);
  new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, BigInt(v), true);
}

/* ---- struct fileattr ---- */

function emptyFileattr(): fileattr {
  return { flags: 0, fsx_xflags: 0, fsx_extsize: 0, fsx_nextents: 0, fsx_projid: 0, fsx_cowextsize: 0, flags_valid: false, fsx_valid: false };
}

/** fileattr_fill_xflags: `fa` from FS_XFLAG_* flags (and the FS_*_FL they mean). */
export function fileattr_fill_xflags(fa: fileattr, xflags: number): void {
  Object.assign(fa, emptyFileattr());
  fa.fsx_valid = true;
  fa.fsx_xflags = xflags >>> 0;
  let f = 0;
  if (xflags & FS_XFLAG_IMMUTABLE) f |= FS_IMMUTABLE_FL;
  if (xflags & FS_XFLAG_APPEND) f |= FS_APPEND_FL;
  if (xflags & FS_XFLAG_SYNC) f |= FS_SYNC_FL;
  if (xflags & FS_XFLAG_NOATIME) f |= FS_NOATIME_FL;
  if (xflags & FS_XFLAG_NODUMP) f |= FS_NODUMP_FL;
  if (xflags & FS_XFLAG_DAX) f |= FS_DAX_FL;
  if (xflags & FS_XFLAG_PROJINHERIT) f |= FS_PROJINHERIT_FL;
  if (xflags & FS_XFLAG_VERITY) f |= FS_VERITY_FL;
  fa.flags = f >>> 0;
}

/** fileattr_fill_flags: `fa` from FS_*_FL flags (and the FS_XFLAG_* they mean). */
export function fileattr_fill_flags(fa: fileattr, flags: number): void {
  Object.assign(fa, emptyFileattr());
  fa.flags_valid = true;
  fa.flags = flags >>> 0;
  let x = 0;
  if (flags & FS_SYNC_FL) x |= FS_XFLAG_SYNC;
  if (flags & FS_IMMUTABLE_FL) x |= FS_XFLAG_IMMUTABLE;
  if (flags & FS_APPEND_FL) x |= FS_XFLAG_APPEND;
  if (flags & FS_NODUMP_FL) x |= FS_XFLAG_NODUMP;
  if (flags & FS_NOATIME_FL) x |= FS_XFLAG_NOATIME;
  if (flags & FS_DAX_FL) x |= FS_XFLAG_DAX;
  if (flags & FS_PROJINHERIT_FL) x |= FS_XFLAG_PROJINHERIT;
  if (flags & FS_VERITY_FL) x |= FS_XFLAG_VERITY;
  fa.fsx_xflags = x >>> 0;
}

/** vfs_fileattr_get: ENOIOCTLCMD when the filesystem has no inode flags. */
export async function vfs_fileattr_get(dentry: dentry, fa: fileattr): Promise<void> {
  const inode = dentry.d_inode!;
  if (!inode.i_op.fileattr_get) throw err(ENOIOCTLCMD);
  await inode.i_op.fileattr_get(dentry, fa);
}

/** fileattr_set_prepare: the checks every filesystem gets. */
function fileattr_set_prepare(inode: inode, old: fileattr, fa: fileattr): void {
  // The IMMUTABLE and APPEND_ONLY flags can only be changed with the capability.
  if (((fa.flags ^ old.flags) & (FS_APPEND_FL | FS_IMMUTABLE_FL)) && !capable(CAP_LINUX_IMMUTABLE)) throw err(EPERM);
  if (fa.fsx_projid === 0xffffffff) throw err(EINVAL); // projid_valid
  const regOrDir = S_ISREG(inode.i_mode) || S_ISDIR(inode.i_mode);
  if ((fa.fsx_xflags & FS_XFLAG_EXTSIZE) && !regOrDir) throw err(EINVAL);
  if ((fa.fsx_xflags & FS_XFLAG_EXTSZINHERIT) && !S_ISDIR(inode.i_mode)) throw err(EINVAL);
  if ((fa.fsx_xflags & FS_XFLAG_COWEXTSIZE) && !regOrDir) throw err(EINVAL);
  if (((fa.fsx_xflags & FS_XFLAG_DAX) || (fa.flags & FS_DAX_FL)) && !regOrDir) throw err(EINVAL);
  // Verity is turned on by FS_IOC_ENABLE_VERITY only, and never off.
  if ((fa.fsx_xflags ^ old.fsx_xflags) & FS_XFLAG_VERITY) throw err(EINVAL);
  if (fa.fsx_extsize === 0) fa.fsx_xflags = (fa.fsx_xflags & ~(FS_XFLAG_EXTSIZE | FS_XFLAG_EXTSZINHERIT)) >>> 0;
  if (fa.fsx_cowextsize === 0) fa.fsx_xflags = (fa.fsx_xflags & ~FS_XFLAG_COWEXTSIZE) >>> 0;
  // Special files may only have a project id.
  if (!regOrDir) {
    if (fa.fsx_xflags & ~FS_XFLAG_PROJINHERIT) throw err(EINVAL);
    if (!S_ISLNK(inode.i_mode) && fa.fsx_nextents) throw err(EINVAL);
    if (fa.fsx_extsize || fa.fsx_cowextsize) throw err(EINVAL);
  }
}

/**
 * vfs_fileattr_set: owner (or CAP_FOWNER) only; under the inode's lock, the flags the
 * caller did not give are taken from the current ones, then the common checks, then the
 * filesystem's fileattr_set.
 */
export async function vfs_fileattr_set(dentry: dentry, fa: fileattr): Promise<void> {
  const inode = dentry.d_inode!;
  if (!inode.i_op.fileattr_set) throw err(ENOIOCTLCMD);
  if (!inode_owner_or_capable(inode)) throw err(EPERM);
  await inode.i_rwsem.downWrite();
  try {
    const old = emptyFileattr();
    await vfs_fileattr_get(dentry, old);
    if (fa.flags_valid) {
      fa.fsx_xflags = (fa.fsx_xflags | (old.fsx_xflags & ~FS_XFLAG_COMMON)) >>> 0;
      fa.fsx_extsize = old.fsx_extsize;
      fa.fsx_nextents = old.fsx_nextents;
      fa.fsx_projid = old.fsx_projid;
      fa.fsx_cowextsize = old.fsx_cowextsize;
    } else {
      fa.flags = (fa.flags | (old.flags & ~FS_COMMON_FL)) >>> 0;
    }
    fileattr_set_prepare(inode, old, fa);
    await inode.i_op.fileattr_set(dentry, fa);
  } finally { inode.i_rwsem.upWrite(); }
}

/** mnt_want_write_file */
function mnt_want_write_file(f: file): void { mnt_want_write(f.f_path.mnt); }

async function ioctl_getflags(f: file, arg: IoctlArg): Promise<number> {
  const fa = emptyFileattr();
  fa.flags_valid = true; // a hint only
  await vfs_fileattr_get(f.f_path.dentry, fa);
  put_user_u32(arg, fa.flags);
  return 0;
}

async function ioctl_setflags(f: file, arg: IoctlArg): Promise<number> {
  const flags = get_user_u32(arg);
  mnt_want_write_file(f);
  const fa = emptyFileattr();
  fileattr_fill_flags(fa, flags);
  await vfs_fileattr_set(f.f_path.dentry, fa);
  return 0;
}

async function ioctl_fsgetxattr(f: file, arg: IoctlArg): Promise<number> {
  const fa = emptyFileattr();
  fa.fsx_valid = true; // a hint only
  await vfs_fileattr_get(f.f_path.dentry, fa);
  // copy_fsxattr_to_user: five __u32, the padding zeroed.
  const b = userBuf(arg, FSXATTR_SIZE);
  b.fill(0, 0, FSXATTR_SIZE);
  const v = [fa.fsx_xflags, fa.fsx_extsize, fa.fsx_nextents, fa.fsx_projid, fa.fsx_cowextsize];
  v.forEach((x, i) => put_user_u32(b.subarray(i * 4), x));
  return 0;
}

async function ioctl_fssetxattr(f: file, arg: IoctlArg): Promise<number> {
  const b = userBuf(arg, FSXATTR_SIZE);
  const fa = emptyFileattr();
  // copy_fsxattr_from_user
  fileattr_fill_xflags(fa, get_user_u32(b));
  fa.fsx_extsize = get_user_u32(b.subarray(4));
  fa.fsx_nextents = get_user_u32(b.subarray(8));
  fa.fsx_projid = get_user_u32(b.subarray(12));
  fa.fsx_cowextsize = get_user_u32(b.subarray(16));
  mnt_want_write_file(f);
  await vfs_fileattr_set(f.f_path.dentry, fa);
  return 0;
}

/** vfs_ioctl: the file's own requests; ENOTTY when it has none or does not know this one. */
export async function vfs_ioctl(f: file, cmd: number, arg: IoctlArg): Promise<number> {
  if (!f.f_op.unlocked_ioctl) throw err(ENOTTY);
  try { return await f.f_op.unlocked_ioctl(f, cmd, arg); } catch (e) {
    if (isErrno(e) && e.errno === ENOIOCTLCMD) throw err(ENOTTY);
    throw e;
  }
}

/** do_vfs_ioctl: the requests every file answers the same way; ENOIOCTLCMD for the others. */
async function do_vfs_ioctl(f: file, fd: number, cmd: number, arg: IoctlArg): Promise<number> {
  const inode = f.f_inode;
  switch (cmd) {
    case FIOCLEX: current_files().cloexec.add(fd); return 0;
    case FIONCLEX: current_files().cloexec.delete(fd); return 0;
    case FIONBIO:
      if (get_user_u32(arg)) f.f_flags |= O_NONBLOCK; else f.f_flags &= ~O_NONBLOCK;
      return 0;
    case FIOASYNC:
      // No file here has fasync: turning FASYNC on is ENOTTY, off (as it is) succeeds.
      if (get_user_u32(arg)) throw err(ENOTTY);
      return 0;
    case FIOQSIZE:
      if (S_ISDIR(inode.i_mode) || S_ISREG(inode.i_mode) || S_ISLNK(inode.i_mode)) {
        put_user_u64(arg, inode.i_blocks * 512);
        return 0;
      }
      throw err(ENOTTY);
    case FIGETBSZ:
      if (!inode.i_sb.s_blocksize) throw err(EINVAL);
      put_user_u32(arg, inode.i_sb.s_blocksize);
      return 0;
    case FIONREAD:
      if (!S_ISREG(inode.i_mode)) return vfs_ioctl(f, cmd, arg);
      put_user_u32(arg, inode.i_size - f.f_pos);
      return 0;
    case FS_IOC_GETFLAGS: return ioctl_getflags(f, arg);
    case FS_IOC_SETFLAGS: return ioctl_setflags(f, arg);
    case FS_IOC_FSGETXATTR: return ioctl_fsgetxattr(f, arg);
    case FS_IOC_FSSETXATTR: return ioctl_fssetxattr(f, arg);
  }
  throw err(ENOIOCTLCMD);
}

/** ksys_ioctl: EBADF for a closed or O_PATH descriptor. */
export async function ksys_ioctl(fd: number, cmd: number, arg: IoctlArg): Promise<number> {
  const f = fget_raw(fd);
  try {
    if (f.f_mode & FMODE_PATH) throw err(EBADF);
    cmd = cmd >>> 0;
    try { return await do_vfs_ioctl(f, fd, cmd, arg); } catch (e) {
      if (isErrno(e) && e.errno === ENOIOCTLCMD) return await vfs_ioctl(f, cmd, arg);
      throw e;
    }
  } finally { await fput(f); }
}

define_syscall(NR.__NR_ioctl, 'ioctl', (fd: number, cmd: number, arg: IoctlArg = 0) => ksys_ioctl(fd, cmd, arg));
