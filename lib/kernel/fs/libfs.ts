/*
 * Library routines for simple filesystems (fs/libfs.c, fs/xattr.c's simple_xattr): the
 * building blocks ramfs is made of, usable by any in-memory filesystem.
 *
 * Directories of such filesystems live entirely in the dcache: their entries are positive
 * dentries pinned by an extra reference. Reading them uses stable offsets (as tmpfs's
 * offset directories do since Linux 6.6): each entry gets an increasing offset when it is
 * added, and readdir resumes at the first entry whose offset is >= f_pos, so entries added
 * or removed between two getdents calls never make the others appear twice or vanish.
 *
 * May touch: dcache, inode, attr, filemap.
 */
import {
  ATTR_SIZE, CAP_SYS_ADMIN, I_DIRTY_SYNC, type dentry, type dir_context, type file, type file_operations,
  type iattr, type inode, type kstat, type xattr_handler,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  EINVAL, ENAMETOOLONG, ENODATA, EEXIST, ENOTEMPTY, DT_DIR, NAME_MAX, SEEK_CUR, SEEK_SET,
  STATX_BASIC_STATS, XATTR_CREATE, XATTR_REPLACE, S_ISDIR, dt_from_mode, type statfs,
} from '../include/uapi.js';
import { capable } from '../kernel/cred.js';
import { dget, dput } from './dcache.js';
import { currentTime, drop_nlink, ihold, inc_nlink } from './inode.js';
import { setattr_prepare, setattr_copy } from './attr.js';
import { mark_inode_dirty } from './fs-writeback.js';
import { truncate_pagecache } from '../mm/filemap.js';
import { PAGE_SIZE } from '../mm/page_alloc.js';

/** simple_lookup: a name not in the dcache does not exist (ENAMETOOLONG past NAME_MAX). */
export async function simple_lookup(_dir: inode, dentry: dentry): Promise<inode | null> {
  if (dentry.d_name.length > NAME_MAX) throw err(ENAMETOOLONG);
  return null;
}

/* ---- stable directory offsets ---- */

interface OffsetCtx { next: number; entries: dentry[] }
const offsetCtx = new WeakMap<inode, OffsetCtx>();
const dentryOffset = new WeakMap<dentry, number>();

/** simple_offset_init: offsets 0 and 1 are "." and "..". */
export function simple_offset_init(dir: inode): void { offsetCtx.set(dir, { next: 2, entries: [] }); }
function ctxOf(dir: inode): OffsetCtx {
  let c = offsetCtx.get(dir);
  if (!c) { c = { next: 2, entries: [] }; offsetCtx.set(dir, c); }
  return c;
}
export function simple_offset_add(dir: inode, d: dentry): void {
  const c = ctxOf(dir);
  dentryOffset.set(d, c.next++);
  c.entries.push(d);
}
export function simple_offset_remove(dir: inode, d: dentry): void {
  const c = ctxOf(dir);
  const i = c.entries.indexOf(d);
  if (i >= 0) c.entries.splice(i, 1);
  dentryOffset.delete(d);
}

/** dir_emit_dots then the entries from ctx.pos on (offset_readdir). */
export async function offset_readdir(file: file, ctx: dir_context): Promise<void> {
  const d = file.f_path.dentry;
  const dir = file.f_inode;
  if (ctx.pos === 0) {
    if (!ctx.emit('.', dir.i_ino, DT_DIR)) return;
    ctx.pos = 1;
  }
  if (ctx.pos === 1) {
    const parent = d.d_parent.d_inode ?? dir;
    if (!ctx.emit('..', parent.i_ino, DT_DIR)) return;
    ctx.pos = 2;
  }
  const c = ctxOf(dir);
  // Binary search for the first entry at or after pos; entries are sorted by offset.
  let lo = 0, hi = c.entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (dentryOffset.get(c.entries[mid]!)! < ctx.pos) lo = mid + 1; else hi = mid;
  }
  for (let i = lo; i < c.entries.length; i++) {
    const e = c.entries[i]!;
    const off = dentryOffset.get(e)!;
    const inode = e.d_inode;
    if (!inode || e.d_unhashed) continue;
    ctx.pos = off;
    if (!ctx.emit(e.d_name, inode.i_ino, dt_from_mode(inode.i_mode))) return;
    ctx.pos = off + 1;
  }
  // Past the last entry: stay past it even if entries are added later with higher offsets.
  ctx.pos = Math.max(ctx.pos, c.next);
}

/** offset_dir_llseek / dcache_dir_lseek: SEEK_SET and SEEK_CUR only. */
export async function offset_dir_llseek(file: file, offset: number, whence: number): Promise<number> {
  let pos: number;
  if (whence === SEEK_SET) pos = offset;
  else if (whence === SEEK_CUR) pos = file.f_pos + offset;
  else throw err(EINVAL);
  if (pos < 0) throw err(EINVAL);
  file.f_pos = pos;
  return pos;
}

/** simple_offset_dir_operations */
export const simple_offset_dir_operations: file_operations = {
  llseek: offset_dir_llseek,
  iterate_shared: offset_readdir,
  fsync: async () => {},
};
export const dcache_readdir = offset_readdir;

/* ---- directory operations on pinned dentries ---- */

/** simple_positive children of a directory dentry (hashed, with an inode). */
export function simple_empty(d: dentry): boolean {
  for (const c of d.d_subdirs.values()) if (c.d_inode && !c.d_unhashed) return false;
  return true;
}

function touchDir(dir: inode): void {
  const now = currentTime(dir);
  dir.i_mtime = now;
  dir.i_ctime = now;
}

/** simple_link: another name, pinned like the first. */
export async function simple_link(old: dentry, dir: inode, d: dentry): Promise<void> {
  const inode = old.d_inode!;
  inode.i_ctime = currentTime(inode);
  touchDir(dir);
  inc_nlink(inode);
  ihold(inode);
  dget(d);
  d.d_inode = inode;
  simple_offset_add(dir, d);
}

/** simple_unlink: drop a link and the pin on the dentry. */
export async function simple_unlink(dir: inode, d: dentry): Promise<void> {
  const inode = d.d_inode!;
  const now = currentTime(inode);
  inode.i_ctime = now;
  dir.i_mtime = now;
  dir.i_ctime = now;
  simple_offset_remove(dir, d);
  drop_nlink(inode);
  await dput(d);
}

/** simple_rmdir: only empty directories; they lose "." and the parent loses "..". */
export async function simple_rmdir(dir: inode, d: dentry): Promise<void> {
  if (!simple_empty(d)) throw err(ENOTEMPTY);
  const inode = d.d_inode!;
  drop_nlink(inode);
  await simple_unlink(dir, d);
  drop_nlink(dir);
}

/** simple_rename (with RENAME_EXCHANGE) over pinned dentries. */
export async function simple_rename(oldDir: inode, oldD: dentry, newDir: inode, newD: dentry, flags: number): Promise<void> {
  const RENAME_EXCHANGE = 2;
  if (flags & ~(1 | RENAME_EXCHANGE)) throw err(EINVAL);
  const a = oldD.d_inode!;
  const now = currentTime(oldDir);
  if (flags & RENAME_EXCHANGE) {
    const b = newD.d_inode!;
    const aDir = S_ISDIR(a.i_mode), bDir = S_ISDIR(b.i_mode);
    if (oldDir !== newDir && aDir !== bDir) {
      if (aDir) { drop_nlink(oldDir); inc_nlink(newDir); } else { drop_nlink(newDir); inc_nlink(oldDir); }
    }
    const oa = dentryOffset.get(oldD)!, ob = dentryOffset.get(newD)!;
    const ca = ctxOf(oldDir), cb = ctxOf(newDir);
    // Each takes the other's slot: the names swap, the offsets stay put.
    ca.entries[ca.entries.indexOf(oldD)] = newD;
    cb.entries[cb.entries.indexOf(newD)] = oldD;
    dentryOffset.set(newD, oa);
    dentryOffset.set(oldD, ob);
    for (const x of [oldDir, newDir]) { x.i_mtime = now; x.i_ctime = now; }
    a.i_ctime = now; b.i_ctime = now;
    return;
  }
  const isDir = S_ISDIR(a.i_mode);
  if (!simple_empty(newD)) throw err(ENOTEMPTY);
  if (newD.d_inode) {
    const t = newD.d_inode;
    await simple_unlink(newDir, newD);
    if (isDir) { drop_nlink(t); drop_nlink(oldDir); }
  } else if (isDir) { drop_nlink(oldDir); inc_nlink(newDir); }
  simple_offset_remove(oldDir, oldD);
  simple_offset_add(newDir, oldD);
  for (const x of [oldDir, newDir]) { x.i_mtime = now; x.i_ctime = now; }
  a.i_ctime = now;
}

/* ---- attributes ---- */

/** generic_fillattr */
export function generic_fillattr(inode: inode, stat: kstat): void {
  stat.result_mask = STATX_BASIC_STATS;
  stat.dev = inode.i_sb.s_dev;
  stat.ino = inode.i_ino;
  stat.mode = inode.i_mode;
  stat.nlink = inode.i_nlink;
  stat.uid = inode.i_uid;
  stat.gid = inode.i_gid;
  stat.rdev = inode.i_rdev;
  stat.size = inode.i_size;
  stat.atime = { ...inode.i_atime };
  stat.mtime = { ...inode.i_mtime };
  stat.ctime = { ...inode.i_ctime };
  stat.blksize = 1 << inode.i_blkbits;
  stat.blocks = inode.i_blocks;
  if (inode.i_btime) stat.btime = { ...inode.i_btime };
}

/** simple_getattr: as generic_fillattr, blocks counted from the page cache. */
export async function simple_getattr(d: dentry, stat: kstat): Promise<void> {
  const inode = d.d_inode!;
  generic_fillattr(inode, stat);
  stat.blocks = inode.i_mapping.pages.size * (PAGE_SIZE / 512);
}

/** simple_setattr: checks, size change through the page cache, then copy. */
export async function simple_setattr(d: dentry, attr: iattr): Promise<void> {
  const inode = d.d_inode!;
  await setattr_prepare(d, attr);
  if (attr.ia_valid & ATTR_SIZE && attr.ia_size !== inode.i_size) {
    inode.i_size = attr.ia_size!;
    await truncate_pagecache(inode, attr.ia_size!);
  }
  setattr_copy(inode, attr);
  await mark_inode_dirty(inode, I_DIRTY_SYNC);
}

/** simple_statfs */
export async function simple_statfs(d: dentry): Promise<statfs> {
  const sb = d.d_sb;
  return {
    type: sb.s_magic, bsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0,
    fsid: [0, 0], namelen: NAME_MAX, frsize: 4096, flags: 0,
  };
}

/* ---- in-memory extended attributes (simple_xattr) ---- */

/** Per-inode attributes by full name ("user.foo"). */
export class simple_xattrs {
  readonly map = new Map<string, Uint8Array>();
  get(name: string): Uint8Array {
    const v = this.map.get(name);
    if (!v) throw err(ENODATA);
    return v;
  }
  /** simple_xattr_set: value null removes. */
  set(name: string, value: Uint8Array | null, flags: number): void {
    const has = this.map.has(name);
    if ((flags & XATTR_CREATE) && has) throw err(EEXIST);
    if ((flags & XATTR_REPLACE) && !has) throw err(ENODATA);
    if (value === null) {
      if (!has) throw err(ENODATA);
      this.map.delete(name);
    } else this.map.set(name, value.slice());
  }
  /** simple_xattr_list: trusted.* only for CAP_SYS_ADMIN. */
  list(): string[] {
    const admin = capable(CAP_SYS_ADMIN);
    return [...this.map.keys()].filter((n) => admin || !n.startsWith('trusted.'));
  }
}

/** Handlers for user., trusted. and security. over a simple_xattrs found by `of(inode)`. */
export function simple_xattr_handlers(of: (inode: inode) => simple_xattrs): xattr_handler[] {
  const mk = (prefix: string): xattr_handler => ({
    prefix,
    list: () => prefix !== 'trusted.' || capable(CAP_SYS_ADMIN),
    async get(_d, inode, name) { return of(inode).get(prefix + name); },
    async set(_d, inode, name, value, flags) {
      of(inode).set(prefix + name, value, flags);
      inode.i_ctime = currentTime(inode);
      await mark_inode_dirty(inode, I_DIRTY_SYNC);
    },
  });
  return [mk('user.'), mk('trusted.'), mk('security.')];
}

/** noop_fsync: memory-only filesystems have nothing to write. */
export async function noop_fsync(): Promise<void> {}

export { dt_from_mode as dtFromMode };
