/*
 * sync, syncfs, fsync, fdatasync (fs/sync.c) and statfs, fstatfs (fs/statfs.c).
 * The writing itself is fs-writeback's.
 *
 * May touch: file_table, namei, fs-writeback.
 */
import { define_syscall } from '../arch/syscalls.js';
import {
  LOOKUP_FOLLOW, MNT_NOATIME, MNT_NODEV, MNT_NODIRATIME, MNT_NOEXEC, MNT_NOSUID, MNT_READONLY,
  MNT_RELATIME, SB_MANDLOCK, SB_RDONLY, SB_SYNCHRONOUS, type path,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import { ENOSYS, type statfs } from '../include/uapi.js';
import type { PathArg } from '../include/sys.js';
import * as NR from '../include/unistd.js';
import { path_put, user_path_at } from './namei.js';
import { withFile } from './file_table.js';
import { syncAll, sync_filesystem, vfs_fsync_range } from './fs-writeback.js';

export const ST_RDONLY = 1, ST_NOSUID = 2, ST_NODEV = 4, ST_NOEXEC = 8, ST_SYNCHRONOUS = 16,
  ST_VALID = 0x20, ST_MANDLOCK = 64, ST_NOATIME = 1024, ST_NODIRATIME = 2048, ST_RELATIME = 4096;

/** calculate_f_flags: the mount's and superblock's flags as ST_*. */
function fFlags(p: path): number {
  const m = p.mnt.mnt_flags, s = p.mnt.mnt_sb.s_flags;
  let f = ST_VALID;
  if (m & MNT_READONLY || s & SB_RDONLY) f |= ST_RDONLY;
  if (m & MNT_NOSUID) f |= ST_NOSUID;
  if (m & MNT_NODEV) f |= ST_NODEV;
  if (m & MNT_NOEXEC) f |= ST_NOEXEC;
  if (m & MNT_NOATIME) f |= ST_NOATIME;
  if (m & MNT_NODIRATIME) f |= ST_NODIRATIME;
  if (m & MNT_RELATIME) f |= ST_RELATIME;
  if (s & SB_SYNCHRONOUS) f |= ST_SYNCHRONOUS;
  if (s & SB_MANDLOCK) f |= ST_MANDLOCK;
  return f;
}

/** vfs_statfs */
export async function vfs_statfs(p: path): Promise<statfs> {
  const sb = p.dentry.d_sb;
  if (!sb.s_op.statfs) throw err(ENOSYS);
  const st = await sb.s_op.statfs(p.dentry);
  const r: statfs = { ...st, fsid: [...st.fsid] as [number, number] };
  if (!r.frsize) r.frsize = r.bsize;
  r.flags = fFlags(p);
  return r;
}

define_syscall(NR.__NR_statfs, 'statfs', async (p: PathArg) => {
  const path = await user_path_at(-100, p, LOOKUP_FOLLOW);
  try { return await vfs_statfs(path); } finally { await path_put(path); }
});
define_syscall(NR.__NR_fstatfs, 'fstatfs', (fd: number) => withFile(fd, (f) => vfs_statfs(f.f_path), true));

define_syscall(NR.__NR_sync, 'sync', async () => { await syncAll(); return 0; });

define_syscall(NR.__NR_syncfs, 'syncfs', (fd: number) => withFile(fd, async (f) => {
  const sb = f.f_inode.i_sb;
  await sb.s_umount.downRead();
  try { await sync_filesystem(sb); } finally { sb.s_umount.upRead(); }
  return 0;
}));

define_syscall(NR.__NR_fsync, 'fsync', (fd: number) => withFile(fd, async (f) => {
  await vfs_fsync_range(f, 0, Number.MAX_SAFE_INTEGER, false);
  return 0;
}));
define_syscall(NR.__NR_fdatasync, 'fdatasync', (fd: number) => withFile(fd, async (f) => {
  await vfs_fsync_range(f, 0, Number.MAX_SAFE_INTEGER, true);
  return 0;
}));
