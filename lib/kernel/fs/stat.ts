/*
 * stat, fstat, newfstatat, statx (fs/stat.c): the filesystem's getattr (or the inode's
 * fields) turned into struct stat / struct statx.
 *
 * May touch: namei, file_table, libfs (generic_fillattr).
 */
import { define_syscall } from '../arch/syscalls.js';
import { LOOKUP_FOLLOW, type kstat, type path } from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  AT_EMPTY_PATH, AT_NO_AUTOMOUNT, AT_SYMLINK_NOFOLLOW, EINVAL, STATX_BASIC_STATS, STATX_BTIME,
  type stat, type statx,
} from '../include/uapi.js';
import type { PathArg } from '../include/sys.js';
import * as NR from '../include/unistd.js';
import { LOOKUP_EMPTY, getname, path_lookupat, path_put } from './namei.js';
import { withFile } from './file_table.js';
import { generic_fillattr } from './libfs.js';

const AT_STATX_SYNC_TYPE = 0x6000, AT_STATX_FORCE_SYNC = 0x2000, AT_STATX_DONT_SYNC = 0x4000;
const STATX__RESERVED = 0x80000000;

/** vfs_getattr */
export async function vfs_getattr(path: path, requestMask = STATX_BASIC_STATS, flags = 0): Promise<kstat> {
  const inode = path.dentry.d_inode!;
  const stat = {
    result_mask: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, dev: 0, ino: 0, size: 0, blksize: 0,
    blocks: 0, atime: { sec: 0, nsec: 0 }, mtime: { sec: 0, nsec: 0 }, ctime: { sec: 0, nsec: 0 }, attributes: 0,
  } as kstat;
  if (inode.i_op.getattr) await inode.i_op.getattr(path.dentry, stat, requestMask, flags);
  else generic_fillattr(inode, stat);
  if (!stat.blksize) stat.blksize = 1 << inode.i_blkbits;
  if (!stat.result_mask) stat.result_mask = STATX_BASIC_STATS;
  if (stat.btime) stat.result_mask |= STATX_BTIME;
  return stat;
}

function toStat(k: kstat): stat {
  return {
    dev: k.dev, ino: k.ino, mode: k.mode, nlink: k.nlink, uid: k.uid, gid: k.gid, rdev: k.rdev,
    size: k.size, blksize: k.blksize, blocks: k.blocks,
    atime: { ...k.atime }, mtime: { ...k.mtime }, ctime: { ...k.ctime },
  };
}

async function statAt(dfd: number, p: PathArg, flags: number): Promise<kstat> {
  let how = flags & AT_SYMLINK_NOFOLLOW ? 0 : LOOKUP_FOLLOW;
  if (flags & AT_EMPTY_PATH) how |= LOOKUP_EMPTY;
  const path = await path_lookupat(dfd, getname(p), how);
  try { return await vfs_getattr(path); } finally { await path_put(path); }
}

define_syscall(NR.__NR_newfstatat, 'newfstatat', async (dfd: number, p: PathArg, flags: number) => {
  flags = flags ?? 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH)) throw err(EINVAL);
  return toStat(await statAt(dfd, p, flags));
});

define_syscall(NR.__NR_fstat, 'fstat', async (fd: number) =>
  withFile(fd, async (f) => toStat(await vfs_getattr(f.f_path)), true));

define_syscall(NR.__NR_statx, 'statx', async (dfd: number, p: PathArg | null, flags: number, mask: number) => {
  flags = flags ?? 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE)) throw err(EINVAL);
  if ((flags & AT_STATX_SYNC_TYPE) === AT_STATX_SYNC_TYPE) throw err(EINVAL);
  if ((mask >>> 0) & STATX__RESERVED) throw err(EINVAL);
  void AT_STATX_FORCE_SYNC; void AT_STATX_DONT_SYNC;
  const k = p === null || p === undefined
    ? await withFile(dfd, (f) => vfs_getattr(f.f_path, mask), true)
    : await statAt(dfd, p, flags);
  const sx: statx = {
    ...toStat(k), mask: k.result_mask, btime: k.btime ? { ...k.btime } : { sec: 0, nsec: 0 }, attributes: k.attributes,
  };
  return sx;
});
