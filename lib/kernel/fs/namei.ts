/*
 * Pathname lookup and the directory-changing operations (fs/namei.c).
 *
 * The walk (Documentation/filesystems/path-lookup.rst, "ref-walk" only): start at the
 * process root, the cwd or a dirfd; for each component check search permission on the
 * directory, find the child in the dcache or ask the filesystem (lookup_slow), step over
 * mount points onto the mounted root, and follow symlinks (in the middle always, at the end
 * with LOOKUP_FOLLOW) with at most MAXSYMLINKS links per walk. `..` never climbs above the
 * process root and crosses back from a mount root to its mount point. Every path held during
 * the walk carries references, because a walk may sleep and the caches may be pruned.
 *
 * Then the vfs_* operations (create, mkdir, mknod, symlink, link, unlink, rmdir, rename),
 * which check permissions (may_create / may_delete, sticky directories) and call the
 * filesystem with the parent directory's i_rwsem held, and their system calls.
 *
 * May touch: dcache, inode, namespace (mounts), file_table (dirfd), fs_struct, the fs ops.
 */
import { define_syscall } from '../arch/syscalls.js';
import {
  CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_MKNOD, LOOKUP_DIRECTORY, LOOKUP_FOLLOW, LOOKUP_RENAME_TARGET,
  MAY_EXEC, MAY_READ, MAY_WRITE, S_APPEND, S_DEAD, S_IMMUTABLE, SB_RDONLY,
  type dentry, type inode, type path, type vfsmount,
} from '../include/fs.js';
import { err, Errno } from '../include/errno.js';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, EBUSY, EEXIST, EFAULT, EINVAL, EISDIR,
  ELOOP, EMLINK, ENAMETOOLONG, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, EXDEV, EACCES, MAXSYMLINKS,
  NAME_MAX, PATH_MAX, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, S_IFBLK, S_IFCHR, S_IFDIR,
  S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK, S_ISBLK, S_ISCHR, S_ISDIR, S_ISLNK, S_ISVTX,
} from '../include/uapi.js';
import { bytesToBstr, utf8ToBstr, bstrToUtf8 } from '../lib/bstr.js';
import type { PathArg } from '../include/sys.js';
import * as NR from '../include/unistd.js';
import { capable, current_cred, in_group_p } from '../kernel/cred.js';
import { mutex } from '../kernel/wait.js';
import {
  d_alloc, d_add, d_delete, d_splice_alias, d_exchange, dget, d_lookup, d_lookup_done, d_move, dput, d_unhash, d_wait_lookup,
  is_subdir, shrink_dcache_parent, DCACHE_PAR_LOOKUP,
} from './dcache.js';
import { current_fs, current_umask } from './fs_struct.js';
import { IS_POSIXACL, get_inode_acl, posix_acl_permission } from './posix_acl.js';
import { ACL_TYPE_ACCESS } from '../include/posix_acl.js';
import { iput, touch_atime } from './inode.js';
import { fget_raw, fput } from './file_table.js';
import { lookup_mnt, mntget, mntput, mnt_want_write } from './namespace.js';

export const LAST_NORM = 0, LAST_ROOT = 1, LAST_DOT = 2, LAST_DOTDOT = 3;
/** Internal lookup flags beyond include/fs.ts's. */
export const LOOKUP_EMPTY = 0x4000;

/* ---- path references ---- */

export function path_get(p: path): path { mntget(p.mnt); dget(p.dentry); return { mnt: p.mnt, dentry: p.dentry }; }
export async function path_put(p: path): Promise<void> { await dput(p.dentry); await mntput(p.mnt); }
export function pathEqual(a: path, b: path): boolean { return a.mnt === b.mnt && a.dentry === b.dentry; }

/**
 * getname: a user path (UTF-8 string or raw bytes, C-string semantics: stops at NUL) as a
 * kernel byte string. ENAMETOOLONG at PATH_MAX bytes including the NUL.
 */
export function getname(p: PathArg | null | undefined): string {
  if (p === null || p === undefined) throw err(EFAULT);
  let s: string;
  if (typeof p === 'string') {
    const nul = p.indexOf('\0');
    s = utf8ToBstr(nul >= 0 ? p.slice(0, nul) : p);
  } else if (p instanceof Uint8Array) {
    const nul = p.indexOf(0);
    s = bytesToBstr(p, 0, nul >= 0 ? nul : p.length);
  } else throw err(EFAULT);
  if (s.length >= PATH_MAX) throw err(ENAMETOOLONG);
  return s;
}

/* ---- permission ---- */

/**
 * acl_permission_check: the owner's bits for the owner; else, on a filesystem with POSIX
 * ACLs and an inode whose group class grants anything, the access ACL when there is one
 * (check_acl); else the group bits for a member of the file's group and the other bits for
 * the rest. Throws EACCES.
 */
async function acl_permission_check(inode: inode, mask: number): Promise<void> {
  const cred = current_cred();
  let mode = inode.i_mode;
  const want = mask & (MAY_READ | MAY_WRITE | MAY_EXEC);
  if (cred.fsuid === inode.i_uid) {
    if (want & ~(mode >> 6) & 7) throw err(EACCES);
    return;
  }
  if (IS_POSIXACL(inode) && (mode & 0o070)) {
    const acl = await get_inode_acl(inode, ACL_TYPE_ACCESS);
    if (acl) { posix_acl_permission(inode, acl, want); return; }
  }
  if (in_group_p(inode.i_gid)) mode >>= 3;
  if (want & ~mode & 7) throw err(EACCES);
}

/**
 * generic_permission: acl_permission_check, then capabilities: CAP_DAC_OVERRIDE grants
 * read and write always and execute if any x bit is set (search on directories always);
 * CAP_DAC_READ_SEARCH grants read, and search on directories.
 */
export async function generic_permission(inode: inode, mask: number): Promise<void> {
  try {
    await acl_permission_check(inode, mask);
    return;
  } catch (e) {
    if (!(e instanceof Errno) || e.errno !== EACCES) throw e;
  }
  const want = mask & (MAY_READ | MAY_WRITE | MAY_EXEC);
  if (S_ISDIR(inode.i_mode)) {
    if (!(want & MAY_WRITE) && capable(CAP_DAC_READ_SEARCH)) return;
    if (capable(CAP_DAC_OVERRIDE)) return;
    throw err(EACCES);
  }
  if (want === MAY_READ && capable(CAP_DAC_READ_SEARCH)) return;
  if ((!(want & MAY_EXEC) || (inode.i_mode & 0o111)) && capable(CAP_DAC_OVERRIDE)) return;
  throw err(EACCES);
}

/**
 * mode_strip_umask: the VFS masks a new inode's mode with the umask, except on a filesystem
 * with POSIX ACLs, where posix_acl_create does (or the directory's default ACL replaces it).
 */
export function mode_strip_umask(dir: inode, mode: number): number {
  if (!IS_POSIXACL(dir)) mode &= ~current_umask();
  return mode;
}

/** inode_permission: read-only filesystems and immutable files first, then the mode. */
export async function inode_permission(inode: inode, mask: number): Promise<void> {
  if (mask & MAY_WRITE) {
    const m = inode.i_mode & S_IFMT;
    if ((inode.i_sb.s_flags & SB_RDONLY) && (m === S_IFREG || m === S_IFDIR || m === 0o120000)) throw err(30 /* EROFS */);
    if (inode.i_flags & S_IMMUTABLE) throw err(EPERM);
  }
  if (inode.i_op.permission) await inode.i_op.permission(inode, mask);
  else await generic_permission(inode, mask);
}

/** inode_owner_or_capable. */
export function inode_owner_or_capable(inode: inode): boolean {
  return current_cred().fsuid === inode.i_uid || capable(CAP_FOWNER);
}

/* ---- the walk ---- */

class Nameidata {
  path!: path;
  root!: path;
  last = '';
  lastType = LAST_ROOT;
  /** The last component was followed by a slash: it must be a directory. */
  trailing = false;
  totalLinks = 0;
  depth = 0;
  constructor(public flags: number) {}
  /** Replace nd.path by p (whose reference we take over), dropping the old one. */
  async setPath(p: path): Promise<void> {
    const old = this.path;
    this.path = p;
    await path_put(old);
  }
}

async function path_init(nd: Nameidata, dfd: number, name: string): Promise<void> {
  const fs = current_fs();
  if (name === '' && !(nd.flags & LOOKUP_EMPTY)) throw err(ENOENT);
  if (name.charCodeAt(0) === 0x2f) {
    nd.root = path_get(fs.root);
    nd.path = path_get(fs.root);
    return;
  }
  if (dfd === AT_FDCWD) {
    nd.root = path_get(fs.root);
    nd.path = path_get(fs.pwd);
    return;
  }
  const f = fget_raw(dfd);
  try {
    if (name !== '' && !S_ISDIR(f.f_inode.i_mode)) throw err(ENOTDIR);
    nd.path = path_get(f.f_path);
    nd.root = path_get(fs.root);
  } finally { await fput(f); }
}

/** follow_mount: while something is mounted on p, step onto the mounted root. */
async function follow_mount(p: path): Promise<path> {
  while (p.dentry.d_mounted > 0) {
    const m = lookup_mnt(p.mnt, p.dentry);
    if (!m) break;
    const next = { mnt: mntget(m), dentry: dget(m.mnt_root) };
    await path_put(p);
    p = next;
  }
  return p;
}

/** Parent lookup under the parent's lock (lookup_one_qstr_excl): dcache, else the fs. */
export async function lookup_one_len(parent: dentry, name: string, flags = 0): Promise<dentry> {
  return (await lookup_dcache(parent, name, flags)) ?? lookup_slow(parent, name, flags);
}

/**
 * lookup_dcache: the cached child, once any lookup of it in flight has finished, if the
 * filesystem still trusts it for these flags; null means "ask the filesystem".
 */
async function lookup_dcache(parent: dentry, name: string, flags: number): Promise<dentry | null> {
  let d = d_lookup(parent, name);
  while (d && (d.d_flags & DCACHE_PAR_LOOKUP)) {
    await d_wait_lookup(d);
    if (!d.d_unhashed) break;
    await dput(d);
    d = d_lookup(parent, name);
  }
  if (d && !d_revalidate(d, flags)) {
    d_unhash(d);
    await dput(d);
    d = null;
  }
  return d;
}

/** d_revalidate through the superblock's dentry operations (true = still good). */
function d_revalidate(d: dentry, flags: number): boolean {
  const rv = d.d_sb.s_d_op?.d_revalidate;
  return rv ? rv(d, flags) : true;
}

async function lookup_slow(parent: dentry, name: string, flags: number): Promise<dentry> {
  const dir = parent.d_inode!;
  if (dir.i_flags & S_DEAD) throw err(ENOENT);
  const d = d_alloc(parent, name);
  d.d_flags |= DCACHE_PAR_LOOKUP;
  try {
    if (!dir.i_op.lookup) throw err(ENOTDIR);
    const inode = await dir.i_op.lookup(dir, d, flags);
    if (inode && !d.d_inode) {
      try { d_splice_alias(inode, d); } catch (e) { await iput(inode); throw e; }
    }
  } catch (e) {
    d_unhash(d);
    d_lookup_done(d);
    await dput(d);
    throw e;
  }
  d_lookup_done(d);
  return d;
}

/** lookup_fast / lookup_slow: the child `name` of parent (referenced, maybe negative). */
async function lookupChild(parent: dentry, name: string, flags: number): Promise<dentry> {
  const d = await lookup_dcache(parent, name, flags);
  if (d) return d;
  const dir = parent.d_inode!;
  await dir.i_rwsem.downRead();
  try {
    return await lookup_one_len(parent, name, flags);
  } finally { dir.i_rwsem.upRead(); }
}

async function may_lookup(nd: Nameidata): Promise<void> {
  const inode = nd.path.dentry.d_inode!;
  await inode_permission(inode, MAY_EXEC);
}

/** follow_dotdot: up one level, not above the process root, across mount roots. */
async function follow_dotdot(nd: Nameidata): Promise<void> {
  for (;;) {
    if (pathEqual(nd.path, nd.root)) break;
    if (nd.path.dentry !== nd.path.mnt.mnt_root) {
      await nd.setPath({ mnt: mntget(nd.path.mnt), dentry: dget(nd.path.dentry.d_parent) });
      break;
    }
    const m = nd.path.mnt;
    if (m.mnt_parent === m) break;
    await nd.setPath({ mnt: mntget(m.mnt_parent), dentry: dget(m.mnt_mountpoint) });
  }
  nd.path = await follow_mount(nd.path);
}

/** Read a symlink's target (the fs's get_link, or the cached fast-symlink body). */
export async function get_link(dentry: dentry, inode: inode): Promise<string> {
  if (inode.i_link !== null) return inode.i_link;
  if (!inode.i_op.get_link) throw err(EINVAL);
  return inode.i_op.get_link(dentry, inode);
}

/**
 * Follow the symlink at `link` (referenced; consumed) found in the directory nd.path:
 * walk its target and resolve its last component, leaving the result in nd.path.
 */
async function pick_link(nd: Nameidata, link: path): Promise<void> {
  try {
    if (++nd.totalLinks > MAXSYMLINKS) throw err(ELOOP);
    await touch_atime(link);
    const target = await get_link(link.dentry, link.dentry.d_inode!);
    if (target === '') throw err(ENOENT);
    const saveTrailing = nd.trailing;
    await link_path_walk(nd, target);
    await walkLast(nd, true);
    if (nd.trailing && !S_ISDIR(nd.path.dentry.d_inode!.i_mode)) throw err(ENOTDIR);
    nd.trailing = saveTrailing;
  } finally { await path_put(link); }
}

/**
 * One component from the directory nd.path: dots, or a lookup (ENOENT if negative), mount
 * crossing and, when `follow`, symlink following. The result replaces nd.path.
 */
async function walk_component(nd: Nameidata, name: string, type: number, follow: boolean): Promise<void> {
  if (type === LAST_DOT || type === LAST_ROOT) return;
  if (type === LAST_DOTDOT) { await follow_dotdot(nd); return; }
  const d = await lookupChild(nd.path.dentry, name, nd.flags);
  if (!d.d_inode) { await dput(d); throw err(ENOENT); }
  const p = await follow_mount({ mnt: mntget(nd.path.mnt), dentry: d });
  if (follow && S_ISLNK(p.dentry.d_inode!.i_mode)) { await pick_link(nd, p); return; }
  await nd.setPath(p);
}

function componentType(c: string): number {
  return c === '.' ? LAST_DOT : c === '..' ? LAST_DOTDOT : LAST_NORM;
}

/**
 * link_path_walk: walk every component of `name` but the last, from nd.path (or the root
 * for an absolute name), checking search permission on each directory; leave the last
 * component in nd.last / nd.lastType (LAST_ROOT for "/" or an empty path).
 */
async function link_path_walk(nd: Nameidata, name: string): Promise<void> {
  if (++nd.depth > MAXSYMLINKS + 1) throw err(ELOOP);
  try {
    if (name.charCodeAt(0) === 0x2f) await nd.setPath(path_get(nd.root));
    const comps = name.split('/').filter((c) => c !== '');
    nd.trailing = comps.length > 0 && name.endsWith('/');
    nd.last = '';
    nd.lastType = LAST_ROOT;
    for (let i = 0; i < comps.length; i++) {
      const c = comps[i]!;
      if (!S_ISDIR(nd.path.dentry.d_inode!.i_mode)) throw err(ENOTDIR);
      await may_lookup(nd);
      const type = componentType(c);
      if (type === LAST_NORM && c.length > NAME_MAX) throw err(ENAMETOOLONG);
      if (i === comps.length - 1) {
        nd.last = c;
        nd.lastType = type;
        return;
      }
      await walk_component(nd, c, type, true);
    }
  } finally { nd.depth--; }
}

/** lookup_last: resolve nd.last from nd.path. */
async function walkLast(nd: Nameidata, follow: boolean): Promise<void> {
  await walk_component(nd, nd.last, nd.lastType, follow || nd.trailing);
}

async function withNameidata<T>(dfd: number, name: string, flags: number, fn: (nd: Nameidata) => Promise<T>): Promise<T> {
  const nd = new Nameidata(flags);
  await path_init(nd, dfd, name);
  try {
    return await fn(nd);
  } catch (e) {
    await path_put(nd.path);
    throw e;
  } finally { await path_put(nd.root); }
}

/**
 * filename_lookup / path_lookupat: the path `name` names, relative to dfd (referenced).
 * flags: LOOKUP_FOLLOW (follow a final symlink), LOOKUP_DIRECTORY, LOOKUP_EMPTY.
 */
export async function path_lookupat(dfd: number, name: string, flags: number): Promise<path> {
  return withNameidata(dfd, name, flags, async (nd) => {
    await link_path_walk(nd, name);
    await walkLast(nd, (flags & LOOKUP_FOLLOW) !== 0);
    if ((nd.trailing || (flags & LOOKUP_DIRECTORY)) && !S_ISDIR(nd.path.dentry.d_inode!.i_mode)) throw err(ENOTDIR);
    return nd.path;
  });
}
/** kern_path: lookup of a kernel byte-string path from the cwd. */
export function kern_path(name: string, flags: number): Promise<path> { return path_lookupat(AT_FDCWD, name, flags); }
/** user_path_at: getname + path lookup. */
export function user_path_at(dfd: number, p: PathArg | null, flags: number): Promise<path> {
  return path_lookupat(dfd, getname(p), flags);
}

export interface ParentResult { parent: path; last: string; lastType: number; trailing: boolean }

/** filename_parentat: the directory holding the last component, and that component. */
export async function path_parentat(dfd: number, name: string, flags = 0): Promise<ParentResult> {
  return withNameidata(dfd, name, flags, async (nd) => {
    await link_path_walk(nd, name);
    return { parent: nd.path, last: nd.last, lastType: nd.lastType, trailing: nd.trailing };
  });
}

/**
 * Open's last-component resolution (open_last_lookups): follows trailing symlinks by
 * re-walking their targets, and hands each candidate (parent locked or not) to `step`,
 * which returns a result or a symlink path to follow.
 */
export async function open_last_lookups<T>(
  dfd: number, name: string, flags: number,
  step: (parent: path, last: string, lastType: number, trailing: boolean) => Promise<{ done: T } | { link: path }>,
): Promise<T> {
  return withNameidata(dfd, name, flags, async (nd) => {
    await link_path_walk(nd, name);
    for (;;) {
      const r = await step(nd.path, nd.last, nd.lastType, nd.trailing);
      if ('done' in r) { await path_put(nd.path); return r.done; }
      const link = r.link;
      try {
        if (++nd.totalLinks > MAXSYMLINKS) throw err(ELOOP);
        const target = await get_link(link.dentry, link.dentry.d_inode!);
        if (target === '') throw err(ENOENT);
        await link_path_walk(nd, target);
      } finally { await path_put(link); }
    }
  });
}

/** Resolve `last` in `parent` fully (as walkLast), for callers of open_last_lookups. */
export async function lookupLastFrom(parent: path, last: string, lastType: number, trailing: boolean, follow: boolean, flags: number): Promise<path> {
  const nd = new Nameidata(flags);
  const fs = current_fs();
  nd.root = path_get(fs.root);
  nd.path = path_get(parent);
  nd.last = last; nd.lastType = lastType; nd.trailing = trailing;
  try {
    await walkLast(nd, follow);
    if (nd.trailing && !S_ISDIR(nd.path.dentry.d_inode!.i_mode)) throw err(ENOTDIR);
    return nd.path;
  } catch (e) { await path_put(nd.path); throw e; } finally { await path_put(nd.root); }
}

/* ---- creation and deletion checks ---- */

function isDeadDir(inode: inode): boolean { return (inode.i_flags & S_DEAD) !== 0; }

/** may_create: the name must be free, the directory alive and writable+searchable. */
export async function may_create(dir: inode, child: dentry): Promise<void> {
  if (child.d_inode) throw err(EEXIST);
  if (isDeadDir(dir)) throw err(ENOENT);
  await inode_permission(dir, MAY_WRITE | MAY_EXEC);
}

/** check_sticky: in a sticky directory only the file's or directory's owner may delete. */
export function check_sticky(dir: inode, inode: inode): boolean {
  if (!(dir.i_mode & S_ISVTX)) return false;
  const uid = current_cred().fsuid;
  if (inode.i_uid === uid || dir.i_uid === uid) return false;
  return !capable(CAP_FOWNER);
}

/** may_delete: may victim be removed from (or renamed out of / over in) dir? */
export async function may_delete(dir: inode, victim: dentry, isdir: boolean): Promise<void> {
  const inode = victim.d_inode;
  if (!inode) throw err(ENOENT);
  await inode_permission(dir, MAY_WRITE | MAY_EXEC);
  if (dir.i_flags & S_APPEND) throw err(EPERM);
  if (check_sticky(dir, inode) || (inode.i_flags & (S_APPEND | S_IMMUTABLE))) throw err(EPERM);
  if (isdir) {
    if (!S_ISDIR(inode.i_mode)) throw err(ENOTDIR);
    if (victim.isRoot) throw err(EBUSY);
  } else if (S_ISDIR(inode.i_mode)) throw err(EISDIR);
  if (isDeadDir(dir)) throw err(ENOENT);
}

/* ---- vfs_* ---- */

const S_IALLUGO = 0o7777;

export async function vfs_create(dir: inode, dentry: dentry, mode: number, excl: boolean): Promise<void> {
  await may_create(dir, dentry);
  if (!dir.i_op.create) throw err(EACCES);
  await dir.i_op.create(dir, dentry, (mode & S_IALLUGO) | S_IFREG, excl);
}

export async function vfs_mkdir(dir: inode, dentry: dentry, mode: number): Promise<void> {
  await may_create(dir, dentry);
  if (!dir.i_op.mkdir) throw err(EPERM);
  const max = dir.i_sb.s_max_links;
  if (max && dir.i_nlink >= max) throw err(EMLINK);
  await dir.i_op.mkdir(dir, dentry, mode & (0o777 | S_ISVTX));
}

export async function vfs_mknod(dir: inode, dentry: dentry, mode: number, dev: number): Promise<void> {
  await may_create(dir, dentry);
  if ((S_ISCHR(mode) || S_ISBLK(mode)) && !capable(CAP_MKNOD)) throw err(EPERM);
  if (!dir.i_op.mknod) throw err(EPERM);
  await dir.i_op.mknod(dir, dentry, mode, dev);
}

export async function vfs_symlink(dir: inode, dentry: dentry, target: string): Promise<void> {
  await may_create(dir, dentry);
  if (!dir.i_op.symlink) throw err(EPERM);
  await dir.i_op.symlink(dir, dentry, target);
}

export async function vfs_link(oldDentry: dentry, dir: inode, newDentry: dentry): Promise<void> {
  const inode = oldDentry.d_inode;
  if (!inode) throw err(ENOENT);
  await may_create(dir, newDentry);
  if (dir.i_sb !== inode.i_sb) throw err(EXDEV);
  if (inode.i_flags & (S_APPEND | S_IMMUTABLE)) throw err(EPERM);
  if (!dir.i_op.link) throw err(EPERM);
  if (S_ISDIR(inode.i_mode)) throw err(EPERM);
  await inode.i_rwsem.downWrite();
  try {
    if (inode.i_nlink === 0) throw err(ENOENT);
    const max = inode.i_sb.s_max_links;
    if (max && inode.i_nlink >= max) throw err(EMLINK);
    await dir.i_op.link(oldDentry, dir, newDentry);
  } finally { inode.i_rwsem.upWrite(); }
}

export async function vfs_unlink(dir: inode, dentry: dentry): Promise<void> {
  await may_delete(dir, dentry, false);
  if (!dir.i_op.unlink) throw err(EPERM);
  if (dentry.d_mounted > 0) throw err(EBUSY);
  const target = dentry.d_inode!;
  await target.i_rwsem.downWrite();
  try {
    await dir.i_op.unlink(dir, dentry);
  } finally { target.i_rwsem.upWrite(); }
  await d_delete(dentry);
}

export async function vfs_rmdir(dir: inode, dentry: dentry): Promise<void> {
  await may_delete(dir, dentry, true);
  if (!dir.i_op.rmdir) throw err(EPERM);
  const inode = dentry.d_inode!;
  await inode.i_rwsem.downWrite();
  try {
    if (dentry.d_mounted > 0) throw err(EBUSY);
    await shrink_dcache_parent(dentry);
    await dir.i_op.rmdir(dir, dentry);
    inode.i_flags |= S_DEAD;
  } finally { inode.i_rwsem.upWrite(); }
  await d_delete(dentry);
}

/**
 * vfs_rename: permission checks on both sides (moving a directory to another parent also
 * needs write access to the directory itself, for its ".."), then the filesystem, then the
 * dcache. Renaming a name onto a hard link of the same inode does nothing, successfully.
 */
export async function vfs_rename(oldDir: inode, oldDentry: dentry, newDir: inode, newDentry: dentry, flags: number): Promise<void> {
  const source = oldDentry.d_inode!;
  const target = newDentry.d_inode;
  const isDir = S_ISDIR(source.i_mode);
  const newIsDir = target ? S_ISDIR(target.i_mode) : false;
  if (source === target) return;
  await may_delete(oldDir, oldDentry, isDir);
  if (!target) await may_create(newDir, newDentry);
  else if (flags & RENAME_EXCHANGE) await may_delete(newDir, newDentry, newIsDir);
  else await may_delete(newDir, newDentry, isDir);
  if (!oldDir.i_op.rename) throw err(EPERM);
  if (newDir !== oldDir) {
    if (isDir) await inode_permission(source, MAY_WRITE);
    if ((flags & RENAME_EXCHANGE) && newIsDir) await inode_permission(target!, MAY_WRITE);
  }
  if (oldDentry.d_mounted > 0 || newDentry.d_mounted > 0) throw err(EBUSY);
  const max = newDir.i_sb.s_max_links;
  if (max && newDir !== oldDir) {
    if (isDir && !newIsDir && newDir.i_nlink >= max) throw err(EMLINK);
    if ((flags & RENAME_EXCHANGE) && !isDir && newIsDir && oldDir.i_nlink >= max) throw err(EMLINK);
  }
  if (target && newIsDir && !(flags & RENAME_EXCHANGE)) await shrink_dcache_parent(newDentry);
  await oldDir.i_op.rename(oldDir, oldDentry, newDir, newDentry, flags);
  if (target && !(flags & RENAME_EXCHANGE) && newIsDir) target.i_flags |= S_DEAD;
  if (flags & RENAME_EXCHANGE) d_exchange(oldDentry, newDentry);
  else await d_move(oldDentry, newDentry);
}

/* ---- lock_rename ---- */

const renameMutexes = new WeakMap<object, mutex>();
function renameMutex(sb: object): mutex {
  let m = renameMutexes.get(sb);
  if (!m) renameMutexes.set(sb, (m = new mutex('s_vfs_rename_mutex')));
  return m;
}

/** lock_rename: lock both parents, ancestors first, under the per-sb rename mutex. */
async function lock_rename(p1: dentry, p2: dentry): Promise<() => void> {
  const i1 = p1.d_inode!, i2 = p2.d_inode!;
  // Two dentries can name one directory (vfat: "data" and "DATA"): lock its inode once.
  if (p1 === p2 || i1 === i2) {
    await i1.i_rwsem.downWrite();
    return () => i1.i_rwsem.upWrite();
  }
  const m = renameMutex(p1.d_sb);
  await m.lock();
  const [a, b] = is_subdir(p1, p2) ? [i2, i1] : [i1, i2];
  await a.i_rwsem.downWrite();
  await b.i_rwsem.downWrite();
  return () => { b.i_rwsem.upWrite(); a.i_rwsem.upWrite(); m.unlock(); };
}

/* ---- filename_create ---- */

export interface CreateResult { parent: path; dentry: dentry; unlock: () => void }

/**
 * filename_create: lock the parent and return the negative dentry of the last component.
 * EEXIST if it exists (before EROFS, as Linux), ENOENT for a trailing slash on a non-directory
 * create, EROFS on a read-only mount.
 */
export async function filename_create(dfd: number, name: string, isDir: boolean): Promise<CreateResult> {
  const r = await path_parentat(dfd, name, 0);
  const parent = r.parent;
  try {
    if (r.lastType !== LAST_NORM) throw err(EEXIST);
    let roErr: unknown = null;
    try { mnt_want_write(parent.mnt); } catch (e) { roErr = e; }
    const dir = parent.dentry.d_inode!;
    await dir.i_rwsem.downWrite();
    let dentry: dentry | null = null;
    try {
      dentry = await lookup_one_len(parent.dentry, r.last, 0);
      if (dentry.d_inode) throw err(EEXIST);
      if (r.trailing && !isDir) throw err(ENOENT);
      if (roErr) throw roErr;
      return { parent, dentry, unlock: () => dir.i_rwsem.upWrite() };
    } catch (e) {
      dir.i_rwsem.upWrite();
      if (dentry) await dput(dentry);
      throw e;
    }
  } catch (e) {
    await path_put(parent);
    throw e;
  }
}
export async function done_path_create(c: CreateResult): Promise<void> {
  c.unlock();
  await dput(c.dentry);
  await path_put(c.parent);
}

/* ---- kernel-internal helpers (for the block layer, init) ---- */

/** Make a directory at a kernel path (mode before umask is applied as given). */
export async function vfsMkdirPath(path: string, mode: number): Promise<void> {
  const c = await filename_create(AT_FDCWD, path, true);
  try { await vfs_mkdir(c.parent.dentry.d_inode!, c.dentry, mode); } finally { await done_path_create(c); }
}
/** mknod at a kernel path: how the block layer creates /dev/vda, /dev/vda1 (devtmpfs-like). */
export async function vfsMknodPath(path: string, mode: number, rdev: number): Promise<void> {
  const c = await filename_create(AT_FDCWD, path, false);
  try { await vfs_mknod(c.parent.dentry.d_inode!, c.dentry, mode, rdev); } finally { await done_path_create(c); }
}
/** unlink at a kernel path (device removal). */
export async function vfsUnlinkPath(path: string): Promise<void> {
  await do_unlinkat(AT_FDCWD, path);
}

/* ---- system calls ---- */

async function do_mknodat(dfd: number, name: string, mode: number, dev: number): Promise<void> {
  switch (mode & S_IFMT) {
    case 0: case S_IFREG: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK: break;
    case S_IFDIR: throw err(EPERM);
    default: throw err(EINVAL);
  }
  const c = await filename_create(dfd, name, false);
  try {
    const dir = c.parent.dentry.d_inode!;
    mode = mode_strip_umask(dir, mode);
    switch (mode & S_IFMT) {
      case 0: case S_IFREG: await vfs_create(dir, c.dentry, mode, true); break;
      case S_IFCHR: case S_IFBLK: await vfs_mknod(dir, c.dentry, mode, dev >>> 0); break;
      default: await vfs_mknod(dir, c.dentry, mode, 0);
    }
  } finally { await done_path_create(c); }
}

define_syscall(NR.__NR_mknodat, 'mknodat', async (dfd: number, p: PathArg, mode: number, dev: number) => {
  await do_mknodat(dfd, getname(p), mode >>> 0, dev ?? 0);
  return 0;
});

define_syscall(NR.__NR_mkdirat, 'mkdirat', async (dfd: number, p: PathArg, mode: number) => {
  const c = await filename_create(dfd, getname(p), true);
  try {
    const dir = c.parent.dentry.d_inode!;
    await vfs_mkdir(dir, c.dentry, mode_strip_umask(dir, mode >>> 0));
  } finally { await done_path_create(c); }
  return 0;
});

define_syscall(NR.__NR_symlinkat, 'symlinkat', async (target: PathArg, dfd: number, p: PathArg) => {
  const t = getname(target);
  if (t === '') throw err(ENOENT);
  const c = await filename_create(dfd, getname(p), false);
  try { await vfs_symlink(c.parent.dentry.d_inode!, c.dentry, t); } finally { await done_path_create(c); }
  return 0;
});

define_syscall(NR.__NR_linkat, 'linkat', async (odfd: number, op: PathArg, ndfd: number, np: PathArg, flags: number) => {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) throw err(EINVAL);
  let how = flags & AT_SYMLINK_FOLLOW ? LOOKUP_FOLLOW : 0;
  const oname = getname(op);
  if (flags & AT_EMPTY_PATH) {
    // Linking an open file by descriptor needs CAP_DAC_READ_SEARCH, as in Linux.
    if (oname === '' && !capable(CAP_DAC_READ_SEARCH)) throw err(ENOENT);
    how |= LOOKUP_EMPTY;
  }
  const old = await path_lookupat(odfd, oname, how);
  try {
    const c = await filename_create(ndfd, getname(np), false).catch((e) => { throw e; });
    try {
      if (old.mnt !== c.parent.mnt) throw err(EXDEV);
      await vfs_link(old.dentry, c.parent.dentry.d_inode!, c.dentry);
    } finally { await done_path_create(c); }
  } finally { await path_put(old); }
  return 0;
});

async function do_rmdir(dfd: number, name: string): Promise<void> {
  const r = await path_parentat(dfd, name, 0);
  try {
    if (r.lastType === LAST_DOTDOT) throw err(ENOTEMPTY);
    if (r.lastType === LAST_DOT) throw err(EINVAL);
    if (r.lastType === LAST_ROOT) throw err(EBUSY);
    mnt_want_write(r.parent.mnt);
    const dir = r.parent.dentry.d_inode!;
    await dir.i_rwsem.downWrite();
    try {
      const d = await lookup_one_len(r.parent.dentry, r.last, 0);
      try {
        if (!d.d_inode) throw err(ENOENT);
        await vfs_rmdir(dir, d);
      } finally { await dput(d); }
    } finally { dir.i_rwsem.upWrite(); }
  } finally { await path_put(r.parent); }
}

async function do_unlinkat(dfd: number, name: string): Promise<void> {
  const r = await path_parentat(dfd, name, 0);
  try {
    if (r.lastType !== LAST_NORM) throw err(EISDIR);
    mnt_want_write(r.parent.mnt);
    const dir = r.parent.dentry.d_inode!;
    await dir.i_rwsem.downWrite();
    try {
      const d = await lookup_one_len(r.parent.dentry, r.last, 0);
      try {
        if (r.trailing) {
          // "file/" names a directory or nothing: ENOENT, EISDIR or ENOTDIR.
          if (!d.d_inode) throw err(ENOENT);
          throw err(S_ISDIR(d.d_inode.i_mode) ? EISDIR : ENOTDIR);
        }
        if (!d.d_inode) throw err(ENOENT);
        await vfs_unlink(dir, d);
      } finally { await dput(d); }
    } finally { dir.i_rwsem.upWrite(); }
  } finally { await path_put(r.parent); }
}

define_syscall(NR.__NR_unlinkat, 'unlinkat', async (dfd: number, p: PathArg, flags: number) => {
  if (flags & ~AT_REMOVEDIR) throw err(EINVAL);
  if (flags & AT_REMOVEDIR) await do_rmdir(dfd, getname(p));
  else await do_unlinkat(dfd, getname(p));
  return 0;
});

async function do_renameat2(odfd: number, oname: string, ndfd: number, nname: string, flags: number): Promise<void> {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) throw err(EINVAL);
  if ((flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)) && (flags & RENAME_EXCHANGE)) throw err(EINVAL);
  // No filesystem here supports whiteouts (overlayfs's need).
  if (flags & RENAME_WHITEOUT) throw err(EINVAL);
  const o = await path_parentat(odfd, oname, 0);
  try {
    const n = await path_parentat(ndfd, nname, 0);
    try {
      if (o.parent.mnt !== n.parent.mnt) throw err(EXDEV);
      if (o.lastType !== LAST_NORM) throw err(EBUSY);
      if (n.lastType !== LAST_NORM) throw err(flags & RENAME_NOREPLACE ? EEXIST : EBUSY);
      mnt_want_write(o.parent.mnt);
      const oldDirD = o.parent.dentry, newDirD = n.parent.dentry;
      const unlock = await lock_rename(oldDirD, newDirD);
      try {
        const od = await lookup_one_len(oldDirD, o.last, 0);
        try {
          if (!od.d_inode) throw err(ENOENT);
          const nd = await lookup_one_len(newDirD, n.last, LOOKUP_RENAME_TARGET);
          try {
            if ((flags & RENAME_NOREPLACE) && nd.d_inode) throw err(EEXIST);
            if ((flags & RENAME_EXCHANGE) && !nd.d_inode) throw err(ENOENT);
            const oIsDir = S_ISDIR(od.d_inode.i_mode);
            if (flags & RENAME_EXCHANGE) {
              const nIsDir = S_ISDIR(nd.d_inode!.i_mode);
              if ((!oIsDir && o.trailing) || (!nIsDir && n.trailing)) throw err(ENOTDIR);
            } else if (!oIsDir && (o.trailing || n.trailing)) throw err(ENOTDIR);
            // Source must not be an ancestor of the target, nor the target of the source.
            if (od !== nd) {
              if (is_subdir(newDirD, od)) throw err(EINVAL);
              if (nd.d_inode && is_subdir(oldDirD, nd)) throw err(flags & RENAME_EXCHANGE ? EINVAL : ENOTEMPTY);
            }
            await vfs_rename(oldDirD.d_inode!, od, newDirD.d_inode!, nd, flags);
          } finally { await dput(nd); }
        } finally { await dput(od); }
      } finally { unlock(); }
    } finally { await path_put(n.parent); }
  } finally { await path_put(o.parent); }
}

define_syscall(NR.__NR_renameat2, 'renameat2', async (odfd: number, op: PathArg, ndfd: number, np: PathArg, flags: number) => {
  await do_renameat2(odfd, getname(op), ndfd, getname(np), flags ?? 0);
  return 0;
});
define_syscall(NR.__NR_renameat, 'renameat', async (odfd: number, op: PathArg, ndfd: number, np: PathArg) => {
  await do_renameat2(odfd, getname(op), ndfd, getname(np), 0);
  return 0;
});

/*
 * readlinkat(dfd, path[, buf]): with a buffer, as in C — the target's bytes are copied into
 * it (truncated to its length, no NUL added) and the count is returned; EINVAL for an empty
 * buffer. Without one, the target is returned as a string (UTF-8 decoded).
 */
define_syscall(NR.__NR_readlinkat, 'readlinkat', async (dfd: number, p: PathArg, buf?: Uint8Array) => {
  if (buf !== undefined && (!(buf instanceof Uint8Array) || buf.length === 0)) throw err(EINVAL);
  const name = getname(p);
  const path = await path_lookupat(dfd, name, LOOKUP_EMPTY);
  try {
    const inode = path.dentry.d_inode!;
    // An empty path names the descriptor itself: not a symlink is then ENOENT.
    if (!S_ISLNK(inode.i_mode)) throw err(name === '' ? ENOENT : EINVAL);
    await touch_atime(path);
    const target = await get_link(path.dentry, inode);
    if (buf === undefined) return bstrToUtf8(target);
    const n = Math.min(target.length, buf.length);
    for (let i = 0; i < n; i++) buf[i] = target.charCodeAt(i);
    return n;
  } finally { await path_put(path); }
});

export { Errno };
export type { vfsmount as VfsMount };
