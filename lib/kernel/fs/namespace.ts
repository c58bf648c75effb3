/*
 * The mount tree (fs/namespace.c): vfsmounts, mount(2), umount2(2), and the root
 * filesystem at boot.
 *
 * A vfsmount attaches a superblock's tree (from mnt_root) onto a dentry of a parent mount.
 * References: the tree holds one on each attached mount; a child holds one on its parent
 * mount and one on its mount-point dentry (whose d_mounted counts the mounts on it); every
 * path (open file, cwd, root, a walk in progress) holds one on its mount. So a mount is busy
 * when its count exceeds the tree's plus the caller's own. A detached mount (umount, or lazy
 * MNT_DETACH while still in use) is torn down when its last reference goes: its root dentry
 * is released and its superblock deactivated (unmounted when no mount uses it).
 *
 * May touch: super (mount_fs, deactivate), namei (path lookup), dcache, file_table (halt).
 */
import { pr_err, pr_info, pr_warn } from '../kernel/printk.js';
import { current } from '../arch/cpu.js';
import { define_syscall, processContext } from '../arch/syscalls.js';
import { initcall, exitcall, INIT_FS, INIT_LATE } from '../arch/setup.js';
import {
  vfsmount, CAP_SYS_ADMIN, LOOKUP_FOLLOW, MNT_NOATIME, MNT_NODEV, MNT_NODIRATIME, MNT_NOEXEC,
  MNT_NOSUID, MNT_READONLY, MNT_RELATIME, SB_RDONLY, SB_SILENT, SB_SYNCHRONOUS, SB_DIRSYNC,
  SB_LAZYTIME, SB_MANDLOCK,
  type dentry, type path, type super_block,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  EBUSY, EINVAL, ENODEV, ENOENT, ENOTDIR, EPERM, EROFS, MNT_DETACH, MNT_EXPIRE, MNT_FORCE,
  MS_BIND, MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_MOVE, MS_NOATIME, MS_NODEV, MS_NODIRATIME,
  MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SILENT, MS_STRICTATIME,
  MS_SYNCHRONOUS, S_ISDIR, UMOUNT_NOFOLLOW,
} from '../include/uapi.js';
import type { PathArg } from '../include/sys.js';
import * as NR from '../include/unistd.js';
import { capable } from '../kernel/cred.js';
import { dget, dput, dcache_init, d_unlinked } from './dcache.js';
import { inode_init } from './inode.js';
import { deactivate_super, get_fs_type, mountFs, supersInit, allSupers, syncFilesystemHook } from './super.js';
import { getname, path_get, path_put, path_lookupat, user_path_at, vfsMkdirPath } from './namei.js';
import { fs_struct } from './fs_struct.js';
import { files_struct, close_files, resetFileCount } from './file_table.js';

class NsState {
  root: vfsmount | null = null;
  /** Every attached mount, in mount order. */
  mounts = new Set<vfsmount>();
  /** Detached mounts still referenced (lazy umount). */
  detached = new Set<vfsmount>();
}
let ns = new NsState();

export function rootMount(): vfsmount {
  if (!ns.root) throw new Error('no root mount');
  return ns.root;
}
/** Every attached mount, parents before children. */
export function allMounts(): vfsmount[] { return [...ns.mounts]; }

export function mntget(m: vfsmount): vfsmount { m.mnt_count++; return m; }

/** mntput: the last reference to a detached mount tears it down. */
export async function mntput(m: vfsmount): Promise<void> {
  if (m.mnt_count <= 0) { pr_err(`BUG: mntput of dead mount ${m.mnt_devname}`); return; }
  if (--m.mnt_count > 0) return;
  ns.detached.delete(m);
  const sb = m.mnt_sb;
  await dput(m.mnt_root);
  await deactivate_super(sb);
}

/** lookup_mnt: the mount most recently attached on dentry d of mount m. */
export function lookup_mnt(m: vfsmount, d: dentry): vfsmount | null {
  let found: vfsmount | null = null;
  for (const c of m.mnt_children) if (c.mnt_mountpoint === d) found = c;
  return found;
}

/** __mnt_is_readonly */
export function mnt_is_readonly(m: vfsmount): boolean {
  return (m.mnt_flags & MNT_READONLY) !== 0 || (m.mnt_sb.s_flags & SB_RDONLY) !== 0;
}
/** mnt_want_write: EROFS on a read-only mount or superblock. */
export function mnt_want_write(m: vfsmount): void {
  if (mnt_is_readonly(m)) throw err(EROFS);
}

/** vfs_create_mount: a detached mount of sb's root (takes over an s_active reference). */
function alloc_vfsmnt(sb: super_block, root: dentry, devName: string, flags: number): vfsmount {
  const m = new vfsmount(dget(root), sb, null, null);
  m.mnt_devname = devName;
  m.mnt_flags = flags;
  return m;
}

/** attach_recursive_mnt: hang m on the mount point `where` (holding refs on both). */
function attach_mnt(m: vfsmount, where: path): void {
  m.mnt_parent = mntget(where.mnt);
  m.mnt_mountpoint = dget(where.dentry);
  where.dentry.d_mounted++;
  where.mnt.mnt_children.add(m);
  ns.mounts.add(m);
}

/** Detach m from its parent (umount_tree's per-mount step); the tree's reference stays. */
async function detach_mnt(m: vfsmount): Promise<void> {
  ns.mounts.delete(m);
  const parent = m.mnt_parent;
  if (parent === m) return;
  parent.mnt_children.delete(m);
  m.mnt_mountpoint.d_mounted--;
  const mp = m.mnt_mountpoint;
  m.mnt_parent = m;
  m.mnt_mountpoint = m.mnt_root;
  await dput(mp);
  await mntput(parent);
}

/** umount_tree: detach m and everything below it, and drop the tree's references. */
async function umount_tree(m: vfsmount): Promise<void> {
  const order: vfsmount[] = [];
  const collect = (x: vfsmount) => { for (const c of x.mnt_children) collect(c); order.push(x); };
  collect(m);
  for (const x of order) {
    await detach_mnt(x);
    ns.detached.add(x);
  }
  for (const x of order) await mntput(x);
}

const MS_MGC_MSK = 0xffff0000, MS_MGC_VAL = 0xc0ed0000;

function mntFlagsFrom(flags: number): number {
  let f = 0;
  if (flags & MS_NOSUID) f |= MNT_NOSUID;
  if (flags & MS_NODEV) f |= MNT_NODEV;
  if (flags & MS_NOEXEC) f |= MNT_NOEXEC;
  if (flags & MS_NOATIME) f |= MNT_NOATIME;
  if (flags & MS_NODIRATIME) f |= MNT_NODIRATIME;
  if (!(flags & MS_STRICTATIME)) f |= MNT_RELATIME;
  if (flags & MS_RELATIME) f |= MNT_RELATIME;
  return f;
}
function sbFlagsFrom(flags: number): number {
  return flags & (MS_RDONLY | MS_SYNCHRONOUS | MS_MANDLOCK | MS_DIRSYNC | MS_SILENT | MS_LAZYTIME);
}

/**
 * do_new_mount: create (or, for device filesystems, claim) a superblock and attach it on
 * `where`. The mount point must be a directory when the new root is one.
 */
async function do_new_mount(where: path, fstype: string, flags: number, devName: string, data: string): Promise<vfsmount> {
  const type = get_fs_type(fstype);
  if (!type) throw err(ENODEV);
  if (d_unlinked(where.dentry)) throw err(ENOENT);
  const sb = await mountFs(type, sbFlagsFrom(flags), devName, data);
  const m = alloc_vfsmnt(sb, sb.s_root!, devName, mntFlagsFrom(flags));
  if (S_ISDIR(sb.s_root!.d_inode!.i_mode) !== S_ISDIR(where.dentry.d_inode!.i_mode)) {
    await mntput(m);
    throw err(ENOTDIR);
  }
  attach_mnt(m, where);
  return m;
}

/** do_remount: change superblock flags (MS_RDONLY) or, with MS_BIND, per-mount flags. */
async function do_remount(where: path, flags: number, data: string): Promise<void> {
  const m = where.mnt;
  if (where.dentry !== m.mnt_root) throw err(EINVAL);
  if (flags & MS_BIND) {
    m.mnt_flags = mntFlagsFrom(flags) | (flags & MS_RDONLY ? MNT_READONLY : 0);
    return;
  }
  const sb = m.mnt_sb;
  await sb.s_umount.downWrite();
  try {
    const wantRo = (flags & MS_RDONLY) !== 0;
    if (wantRo && !(sb.s_flags & SB_RDONLY)) {
      // Going read-only: nobody may hold a file open for writing.
      for (const inode of sb.s_inodes.values()) if (inode.i_writecount > 0) throw err(EBUSY);
      await syncFilesystemHook(sb);
    }
    let newFlags = (sb.s_flags & ~(SB_RDONLY | SB_SYNCHRONOUS | SB_MANDLOCK | SB_DIRSYNC | SB_SILENT | SB_LAZYTIME)) | sbFlagsFrom(flags);
    if (sb.s_op.remount_fs) newFlags = await sb.s_op.remount_fs(sb, newFlags, data);
    sb.s_flags = newFlags;
    m.mnt_flags = (m.mnt_flags & MNT_READONLY) | mntFlagsFrom(flags);
  } finally { sb.s_umount.upWrite(); }
}

/** do_loopback: bind mount the tree at `from` on `where`. */
async function do_loopback(where: path, from: path, flags: number): Promise<void> {
  if (S_ISDIR(from.dentry.d_inode!.i_mode) !== S_ISDIR(where.dentry.d_inode!.i_mode)) throw err(ENOTDIR);
  const sb = from.mnt.mnt_sb;
  sb.s_active++;
  const m = alloc_vfsmnt(sb, from.dentry, from.mnt.mnt_devname, from.mnt.mnt_flags & ~0);
  attach_mnt(m, where);
  void flags;
}

/** do_move_mount: move the mount rooted at `from` onto `where`. */
async function do_move_mount(where: path, from: path): Promise<void> {
  const m = from.mnt;
  if (from.dentry !== m.mnt_root || m.mnt_parent === m) throw err(EINVAL);
  // Moving a mount below itself would detach it from the tree.
  for (let p = where.mnt; ; p = p.mnt_parent) {
    if (p === m) throw err(EINVAL);
    if (p.mnt_parent === p) break;
  }
  if (S_ISDIR(m.mnt_root.d_inode!.i_mode) !== S_ISDIR(where.dentry.d_inode!.i_mode)) throw err(ENOTDIR);
  const oldParent = m.mnt_parent, oldMp = m.mnt_mountpoint;
  oldParent.mnt_children.delete(m);
  oldMp.d_mounted--;
  ns.mounts.delete(m);
  attach_mnt(m, where);
  await dput(oldMp);
  await mntput(oldParent);
}

/**
 * do_mount: mount(2)'s guts, callable from kernel code with byte-string paths.
 * Device filesystems resolve devName through lookup_bdev and claim the device exclusively
 * (EBUSY if it is already mounted).
 */
export async function do_mount(devName: string | null, dirPath: string, fsType: string | null, flags: number, data: string | null): Promise<void> {
  if ((flags & MS_MGC_MSK) >>> 0 === MS_MGC_VAL) flags &= ~MS_MGC_MSK;
  const where = await path_lookupat(-100, dirPath, LOOKUP_FOLLOW);
  try {
    if (flags & MS_REMOUNT) return await do_remount(where, flags, data ?? '');
    if (flags & (MS_BIND | MS_MOVE)) {
      if (devName === null || devName === '') throw err(ENOENT);
      const from = await path_lookupat(-100, devName, flags & MS_BIND && !(flags & MS_REC) ? LOOKUP_FOLLOW : LOOKUP_FOLLOW);
      try {
        if (flags & MS_MOVE) await do_move_mount(where, from);
        else await do_loopback(where, from, flags);
      } finally { await path_put(from); }
      return;
    }
    if (!fsType) throw err(EINVAL);
    await do_new_mount(where, fsType, flags, devName ?? 'none', data ?? '');
  } finally { await path_put(where); }
}

/**
 * do_umount: umount2(2)'s guts on a resolved mount root. EBUSY when in use (open files,
 * cwd, submounts) unless MNT_DETACH, which detaches now and tears down at the last use.
 */
export async function do_umount(where: path, flags: number): Promise<void> {
  const m = where.mnt;
  if (where.dentry !== m.mnt_root) throw err(EINVAL);
  if (!ns.mounts.has(m)) throw err(EINVAL);
  if (m === ns.root || m.mnt_parent === m) throw err(flags & MNT_DETACH ? EINVAL : EBUSY);
  if (flags & MNT_DETACH) { await umount_tree(m); return; }
  // The tree holds one reference and our caller's path another.
  if (m.mnt_count > 2 || m.mnt_children.size > 0) throw err(EBUSY);
  await umount_tree(m);
}

/** umount by kernel byte-string path. */
export async function doUmountPath(path: string, flags: number): Promise<void> {
  const p = await path_lookupat(-100, path, flags & UMOUNT_NOFOLLOW ? 0 : LOOKUP_FOLLOW);
  try { await do_umount(p, flags); } finally { await path_put(p); }
}

define_syscall(NR.__NR_mount, 'mount', async (src: PathArg | null, target: PathArg, fstype: string | null, flags: number, data: string | null) => {
  if (!capable(CAP_SYS_ADMIN)) throw err(EPERM);
  const dir = getname(target);
  const dev = src === null || src === undefined ? null : getname(src);
  await do_mount(dev, dir, fstype ?? null, flags >>> 0, data ?? null);
  return 0;
});

define_syscall(NR.__NR_umount2, 'umount2', async (target: PathArg, flags: number) => {
  if (flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW)) throw err(EINVAL);
  if ((flags & MNT_EXPIRE) && (flags & (MNT_FORCE | MNT_DETACH))) throw err(EINVAL);
  if (!capable(CAP_SYS_ADMIN)) throw err(EPERM);
  // MNT_EXPIRE needs two calls to mark-then-expire; nothing here is ever marked.
  const p = await user_path_at(-100, target, flags & UMOUNT_NOFOLLOW ? 0 : LOOKUP_FOLLOW);
  try {
    if (flags & MNT_EXPIRE) {
      if (p.dentry !== p.mnt.mnt_root) throw err(EINVAL);
      throw err(11 /* EAGAIN: first call only marks */);
    }
    await do_umount(p, flags);
  } finally { await path_put(p); }
  return 0;
});

/* ---- boot and halt ---- */

/** Mount ramfs as "/" and give the process its fs context and file table (init_mount_tree). */
initcall(INIT_FS, 'rootfs', async () => {
  dcache_init();
  inode_init();
  supersInit();
  resetFileCount();
  ns = new NsState();
  const type = get_fs_type('ramfs');
  if (!type) throw new Error('rootfs: ramfs is not registered');
  const sb = await mountFs(type, 0, 'rootfs', 'mode=0755');
  const m = alloc_vfsmnt(sb, sb.s_root!, 'rootfs', MNT_RELATIME);
  ns.root = m;
  ns.mounts.add(m);
  const root: path = { mnt: m, dentry: m.mnt_root };
  const fs = new fs_struct(path_get(root), path_get(root));
  processContext().fs = fs;
  processContext().files = new files_struct();
  current().ctx.fs = fs;
  current().ctx.files = processContext().files;
  await vfsMkdirPath('/dev', 0o755);
  await vfsMkdirPath('/mnt', 0o755);
  pr_info('VFS: mounted root (ramfs filesystem)');
});

/**
 * Halt: close every descriptor, release cwd and root, then unmount everything, children
 * first (lazily if still busy, e.g. kernel users), so filesystems are synced and released
 * before the devices go away (this runs before device exitcalls).
 */
exitcall(INIT_LATE, 'vfs', async () => {
  const files = processContext().files as files_struct | undefined;
  if (files) await close_files(files);
  const fs = processContext().fs as fs_struct | undefined;
  if (ns.root) {
    if (fs) {
      const root: path = { mnt: ns.root, dentry: ns.root.mnt_root };
      const oldRoot = fs.root, oldPwd = fs.pwd;
      fs.root = path_get(root); fs.pwd = path_get(root);
      await path_put(oldRoot); await path_put(oldPwd);
    }
    for (const m of [...ns.root.mnt_children]) {
      try { await umount_tree(m); } catch (e) { pr_err(`VFS: umount of ${m.mnt_devname} at halt failed: ${(e as Error)?.message ?? e}`); }
    }
    if (fs) { await path_put(fs.root); await path_put(fs.pwd); }
    processContext().fs = undefined;
    const r = ns.root;
    ns.root = null;
    ns.mounts.delete(r);
    await mntput(r);
  }
  for (const m of [...ns.detached]) pr_warn(`VFS: mount ${m.mnt_devname} still busy at halt (${m.mnt_count})`);
  for (const sb of allSupers()) pr_warn(`VFS: superblock ${sb.s_id} still active at halt`);
});

export { MNT_NODEV };
