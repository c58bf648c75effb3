/*
 * lklfuse's inode-based operations, for the kernel transport (fuse-kernel.ts): what a FUSE
 * node id means in the lkl-ts kernel, and each FUSE operation as one system call (sometimes
 * a few) with the caller's credentials. Negative errno values pass straight through, as in
 * ops.ts (the path-based layer over fuse-native) and LKL's lklfuse.c.
 *
 * Node ids. A node is one inode the host kernel holds a reference to (it LOOKUPs, we count,
 * it FORGETs). A directory node keeps an O_PATH descriptor of its inode in the lkl-ts
 * kernel: the dirfd of the *at() calls on its children (lookup, mkdir, unlink, rename,
 * ...), and with AT_EMPTY_PATH the way to the directory itself whatever happens to its
 * name. Other nodes are reached by a name they were seen under, their parent's descriptor
 * and their name, kept up to date on lookup and rename (all renames pass through here) and
 * dropped on unlink; a file seen under several names (hard links: the host kernel gives
 * them one node id) keeps them all, so unlinking one leaves it reachable by another; an
 * inode number that no longer matches is ESTALE. Keeping
 * descriptors for directories only bounds what the daemon pins: the host's dentry cache may
 * hold far more files than the kernel's 65536 descriptors, and each pinned inode is memory
 * the lkl-ts kernel cannot reclaim. Open files are reached through their handle (so they
 * stay usable after unlink, also once their directory is gone), xattrs through the
 * *xattrat calls like the rest (so at any depth). Node ids are never reused, so
 * (nodeid, generation 0) is unique for the mount's life.
 *
 * Handles: kernel file descriptors (the fh of open/create/opendir), closed on release.
 *
 * Directories without OPENDIR (the session answers it ENOSYS, FUSE's no_opendir: the host
 * kernel then sends neither OPENDIR nor RELEASEDIR, and READDIR, FSYNCDIR and a directory's
 * IOCTL name the node with handle 0): a walk costs three requests a directory instead of
 * five. READDIRs of a node share a descriptor the daemon opens and keeps (NODE_DIRS of them,
 * the least recently read closed first, and on FORGET), seeking it to each request's
 * offset, as a server answering NFS's stateless READDIR does; one that finds it busy opens
 * its own for the request.
 */
import type { linux_dirent64, stat, statfs, timespec64 } from '../kernel/include/uapi.js';
import type { Sys } from '../kernel/include/sys.js';
import {
  AT_EACCESS, AT_EMPTY_PATH, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, EBADF, EINVAL, EIO, ENAMETOOLONG, ENOENT, EPERM,
  ENOTDIR, ERANGE, ESTALE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOCTTY, O_NOFOLLOW, O_PATH,
  O_NONBLOCK, O_RDONLY, O_WRONLY, R_OK, RENAME_EXCHANGE, W_OK, X_OK, SEEK_SET, S_IFMT, S_IFDIR, S_ISGID, S_ISUID, UTIME_NOW, UTIME_OMIT,
} from '../kernel/include/uapi.js';
import { nameBytesTooLong } from './names.js';
import {
  ENOTTY, EXT4_IOC_GETVERSION, EXT4_IOC_SETVERSION, FAT_IOCTL_GET_ATTRIBUTES, FAT_IOCTL_GET_VOLUME_ID, FAT_IOCTL_SET_ATTRIBUTES, FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR, FS_IOC_GETFLAGS,
  FS_IOC_GETVERSION, FS_IOC_SETFLAGS, FS_IOC_SETVERSION, FSXATTR_SIZE, _IOC_DIR, _IOC_READ, _IOC_WRITE,
} from '../kernel/include/uapi.js';
import { FUSE_IOCTL_UNRESTRICTED } from './fuse-abi.js';

/** The ioctls served over FUSE and the bytes of their argument as Linux reads or writes it. */
const IOCTL_ARG_SIZE = new Map<number, number>([
  [FS_IOC_GETFLAGS, 4], [FS_IOC_SETFLAGS, 4], [FS_IOC_GETVERSION, 4], [FS_IOC_SETVERSION, 4],
  [EXT4_IOC_GETVERSION, 4], [EXT4_IOC_SETVERSION, 4], [FS_IOC_FSGETXATTR, FSXATTR_SIZE], [FS_IOC_FSSETXATTR, FSXATTR_SIZE],
  [FAT_IOCTL_GET_ATTRIBUTES, 4], [FAT_IOCTL_SET_ATTRIBUTES, 4], [FAT_IOCTL_GET_VOLUME_ID, 4],
]);
import {
  FATTR_ATIME, FATTR_ATIME_NOW, FATTR_FH, FATTR_GID, FATTR_MODE, FATTR_MTIME, FATTR_MTIME_NOW, FATTR_SIZE,
  FATTR_UID, FUSE_ROOT_ID, type Entry, type SetattrIn,
} from './fuse-abi.js';

const GETDENTS_BYTES = 32768;
const EMPTY_NAME = Buffer.alloc(0);
/** Directory descriptors kept for READDIRs without OPENDIR (see the header). */
const NODE_DIRS = 32;
const COPY_CHUNK = 1 << 20;
/** __FMODE_EXEC: the FUSE kernel module sets it in OPEN's flags when the open is for execve. */
const FMODE_EXEC_BIT = 0x20;

interface Node {
  id: number;
  /** Directories: O_PATH descriptor of the inode in the lkl-ts kernel; others: -1. */
  fd: number;
  ino: number;
  isDir: boolean;
  /** Where the node was seen: parent node and name (null parent: the root). */
  parent: Node | null;
  name: Buffer;
  /** A non-directory's other names seen (its hard links), used once `name` is gone. */
  links: { parent: Node; name: Buffer }[];
  /** LOOKUPs not yet FORGotten. */
  nlookup: number;
  /** Still reachable by its name (false once that name is unlinked or replaced). */
  live: boolean;
  /** Its open handles: how an unlinked file is still reached (fstat, fchmod, ...); null: none yet. */
  open: Set<number> | null;
}

interface DirHandle { node: Node; pos: number; pending: linux_dirent64[]; eof: boolean }

export interface DirEntryOut { ino: number; off: number; type: number; name: Uint8Array; entry?: Entry | null }

export interface LowLevelOptions {
  /** Kernel path FUSE's root maps to ("" = the kernel's "/", after a chroot). */
  root: string;
}

/** The operations the kernel transport dispatches to. `sys` is the caller's Sys (sysAs). */
export class LowLevelOps {
  private nodes = new Map<number, Node>();
  private byIno = new Map<number, Node>();
  private byName = new Map<string, Node>();
  private dirs = new Map<number, DirHandle>();
  /** Without OPENDIR: node id -> the handle its READDIRs share, least recently used first. */
  private nodeDirs = new Map<number, number>();
  /** Handles a READDIR is using now. */
  private busyDirs = new Set<number>();
  /** Open handles (kernel fds) and the node each belongs to. */
  private handles = new Map<number, Node | null>();
  /** Set by closeAll: descriptors opened from then on are closed at once. */
  private closed = false;
  private nextId = FUSE_ROOT_ID + 1;

  private constructor(private readonly sys: Sys, private readonly rootPath: Uint8Array) {}

  /** Opens the root node. `sys` is the daemon's own Sys (for releases and forgets). */
  static async create(sys: Sys, opts: LowLevelOptions): Promise<LowLevelOps | number> {
    const rootPath = Buffer.from(opts.root === '' ? '/' : opts.root);
    const fd = await sys.open(rootPath, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fd;
    const st = await sys.newfstatat(fd, '', AT_EMPTY_PATH);
    if (typeof st === 'number') { await sys.close(fd); return st; }
    const ll = new LowLevelOps(sys, rootPath);
    const root: Node = { id: FUSE_ROOT_ID, fd, ino: st.ino, isDir: true, parent: null, name: Buffer.alloc(0), links: [], nlookup: 1, live: true, open: null };
    ll.nodes.set(root.id, root);
    ll.byIno.set(root.ino, root);
    return ll;
  }

  get nodeCount(): number { return this.nodes.size; }
  get openHandles(): number { return this.handles.size; }

  private node(id: number): Node | undefined { return this.nodes.get(id); }
  private key(parent: Node, name: Uint8Array): string { return parent.id + '/' + Buffer.from(name).toString('latin1'); }

  private setName(n: Node, parent: Node, name: Uint8Array): void {
    if (n.parent) {
      const old = this.key(n.parent, n.name);
      if (this.byName.get(old) === n) this.byName.delete(old);
    }
    n.parent = parent;
    n.name = Buffer.from(name);
    this.byName.set(this.key(parent, name), n);
  }

  /** Where the node's name is: [dirfd, name] for the *at() calls. */
  private at(n: Node): [number, Buffer] | number {
    if (!n.parent) return [n.fd, Buffer.from('.')];
    if (!n.live) return -ENOENT;
    return [n.parent.fd, n.name];
  }

  /** An open handle of the node, for a node whose name is gone. */
  private anyHandle(n: Node): number | undefined {
    if (n.live || n.isDir) return undefined;
    for (const fh of n.open ?? []) return fh;
    return undefined;
  }

  private addHandle(fh: number, n: Node | null): void {
    if (this.closed) { void this.sys.close(fh); return; } // see closeAll
    this.handles.set(fh, n);
    if (n) (n.open ??= new Set()).add(fh);
  }

  /** The node itself for *at() calls: [dirfd, name, flags] (AT_EMPTY_PATH for directories). */
  private self(n: Node): [number, Uint8Array | string, number] | number {
    if (n.isDir) return [n.fd, '', AT_EMPTY_PATH];
    const w = this.at(n);
    return typeof w === 'number' ? w : [w[0], w[1], 0];
  }

  private isName(parent: Node | null, name: Buffer, p: Node, nm: Uint8Array): boolean {
    return parent === p && name.equals(nm);
  }

  /** `n` (found by inode) is also `name` in `parent`: a directory moves, a file gains a name. */
  private seenAs(n: Node, parent: Node, name: Uint8Array): void {
    if (this.isName(n.parent, n.name, parent, name) || n.links.some((l) => this.isName(l.parent, l.name, parent, name))) return;
    if (n.isDir || !n.parent) { this.setName(n, parent, name); return; }
    n.links.push({ parent, name: Buffer.from(name) });
    this.byName.set(this.key(parent, name), n);
  }

  /** One of the node's names moved (rename). */
  private moveName(n: Node, from: Node, fromName: Uint8Array, to: Node, toName: Uint8Array): void {
    const l = n.links.find((x) => this.isName(x.parent, x.name, from, fromName));
    if (!l) { this.setName(n, to, toName); return; }
    const old = this.key(from, fromName);
    if (this.byName.get(old) === n) this.byName.delete(old);
    l.parent = to;
    l.name = Buffer.from(toName);
    this.byName.set(this.key(to, toName), n);
  }

  /**
   * One of the node's names is gone (unlink, rmdir, replaced by a rename). With another name
   * left (a hard link seen before) it is reached by that one; with none it no longer has a
   * name to be reached by, nor a claim to its inode number (which may be reused). A hard
   * link never seen gets a node of its own at its next lookup.
   */
  private unlinked(n: Node | undefined, parent: Node, name: Uint8Array): void {
    if (!n) return;
    const k = this.key(parent, name);
    if (this.byName.get(k) === n) this.byName.delete(k);
    const i = n.links.findIndex((x) => this.isName(x.parent, x.name, parent, name));
    if (i >= 0) { n.links.splice(i, 1); return; }
    if (!this.isName(n.parent, n.name, parent, name)) return;
    const next = n.links.shift();
    if (next) { n.parent = next.parent; n.name = next.name; return; }
    n.live = false;
    if (this.byIno.get(n.ino) === n) this.byIno.delete(n.ino);
  }

  /* ---- names ---- */

  async lookup(sys: Sys, parentId: number, name: Uint8Array): Promise<Entry | number> {
    const parent = this.node(parentId);
    if (!parent) return -ESTALE;
    if (nameBytesTooLong(name)) return -ENAMETOOLONG;
    const st = await sys.newfstatat(parent.fd, name, AT_SYMLINK_NOFOLLOW);
    if (typeof st === 'number') return st;
    return this.enter(sys, parent, name, st);
  }

  /** Makes (or finds) the node for `st`, found as `name` in `parent`, and counts a lookup. */
  private async enter(sys: Sys, parent: Node, name: Uint8Array, st: stat): Promise<Entry | number> {
    let n = this.byIno.get(st.ino);
    if (n && n.live) {
      n.nlookup++;
      this.seenAs(n, parent, name);
      return { nodeid: n.id, generation: 0, attr: st };
    }
    let fd = -1, st2 = st;
    if ((st.mode & S_IFMT) === S_IFDIR) {
      fd = await sys.openat(parent.fd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return fd;
      const r = await this.sys.newfstatat(fd, '', AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
      if (typeof r === 'number') { await this.sys.close(fd); return r; }
      st2 = r;
    }
    if (this.closed) { // see closeAll
      if (fd >= 0) await this.sys.close(fd);
      return -EIO;
    }
    n = { id: this.nextId++, fd, ino: st2.ino, isDir: fd >= 0, parent: null, name: EMPTY_NAME, links: [], nlookup: 1, live: true, open: null };
    this.nodes.set(n.id, n);
    this.byIno.set(n.ino, n);
    this.setName(n, parent, name);
    return { nodeid: n.id, generation: 0, attr: st2 };
  }

  async forget(nodeid: number, nlookup: number): Promise<void> {
    const n = this.node(nodeid);
    if (!n || n.id === FUSE_ROOT_ID) return;
    n.nlookup -= nlookup;
    if (n.nlookup > 0) return;
    this.nodes.delete(n.id);
    if (this.byIno.get(n.ino) === n) this.byIno.delete(n.ino);
    for (const l of [...(n.parent ? [{ parent: n.parent, name: n.name }] : []), ...n.links]) {
      const k = this.key(l.parent, l.name);
      if (this.byName.get(k) === n) this.byName.delete(k);
    }
    const dh = this.nodeDirs.get(n.id);
    if (dh !== undefined) {
      this.nodeDirs.delete(n.id);
      if (!this.busyDirs.has(dh)) await this.release(dh); // else its READDIR closes it
    }
    if (n.fd >= 0) await this.sys.close(n.fd);
  }

  /* ---- attributes ---- */

  async getattr(sys: Sys, nodeid: number, fh?: number): Promise<stat | number> {
    if (fh !== undefined && this.handles.has(fh)) {
      const r = await sys.fstat(fh);
      if (r !== -EBADF) return r;
    }
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    const h = this.anyHandle(n);
    if (h !== undefined) return sys.fstat(h);
    const w = this.self(n);
    if (typeof w === 'number') return w;
    const st = await sys.newfstatat(w[0], w[1], w[2] | AT_SYMLINK_NOFOLLOW);
    return typeof st !== 'number' && st.ino !== n.ino ? -ESTALE : st;
  }

  /**
   * A write or truncate by someone other than the owner: without FUSE_HANDLE_KILLPRIV the
   * host kernel clears S_ISUID/S_ISGID itself, with a SETATTR of the mode as the writer,
   * which the owner check of chmod refuses in the lkl-ts kernel (EPERM; a libfuse daemon
   * running as root does it). A mode that only drops those bits, asked by a caller who may
   * write the file, is what a write would do: it is done with the daemon's credentials.
   */
  private async killPriv(sys: Sys, fh: number | undefined, dfd: number, name: Uint8Array | string, empty: number, mode: number): Promise<number> {
    const cur = fh !== undefined ? await sys.fstat(fh) : await sys.newfstatat(dfd, name, empty | AT_SYMLINK_NOFOLLOW);
    if (typeof cur === 'number') return -EPERM;
    const was = cur.mode & 0o7777;
    if (was === mode || (was & ~(S_ISUID | S_ISGID)) !== (mode & ~(S_ISUID | S_ISGID)) || (mode & ~was) !== 0) return -EPERM;
    if (fh === undefined && await sys.faccessat(dfd, name, W_OK, AT_EACCESS | empty) < 0) return -EPERM;
    return fh !== undefined ? this.sys.fchmod(fh, mode) : this.sys.fchmodat(dfd, name, mode, empty);
  }

  async setattr(sys: Sys, nodeid: number, a: SetattrIn): Promise<stat | number> {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    const fh = a.valid & FATTR_FH && this.handles.has(a.fh) ? a.fh : this.anyHandle(n);
    const w = this.self(n);
    if (typeof w === 'number' && fh === undefined) return w;
    const [dfd, name, empty] = typeof w === 'number' ? [-1, '', 0] : w;
    let r: number;
    if (a.valid & FATTR_MODE) {
      r = fh !== undefined ? await sys.fchmod(fh, a.mode & 0o7777) : await sys.fchmodat(dfd, name, a.mode & 0o7777, empty);
      if (r === -EPERM) r = await this.killPriv(sys, fh, dfd, name, empty, a.mode & 0o7777);
      if (r < 0) return r;
    }
    if (a.valid & (FATTR_UID | FATTR_GID)) {
      const uid = a.valid & FATTR_UID ? a.uid : -1, gid = a.valid & FATTR_GID ? a.gid : -1;
      r = fh !== undefined ? await sys.fchown(fh, uid, gid) : await sys.fchownat(dfd, name, uid, gid, empty | AT_SYMLINK_NOFOLLOW);
      if (r < 0) return r;
    }
    if (a.valid & FATTR_SIZE) {
      if (fh !== undefined) r = await sys.ftruncate(fh, a.size);
      else {
        const where = this.at(n);
        if (typeof where === 'number') return where;
        const fd = await sys.openat(where[0], where[1], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return fd;
        r = await sys.ftruncate(fd, a.size);
        await sys.close(fd);
      }
      if (r < 0) return r;
    }
    if (a.valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
      const t = (set: number, now: number, sec: number, nsec: number): timespec64 =>
        a.valid & now ? { sec: 0, nsec: UTIME_NOW } : a.valid & set ? { sec, nsec } : { sec: 0, nsec: UTIME_OMIT };
      const times: [timespec64, timespec64] = [
        t(FATTR_ATIME, FATTR_ATIME_NOW, a.atime, a.atimensec),
        t(FATTR_MTIME, FATTR_MTIME_NOW, a.mtime, a.mtimensec),
      ];
      r = fh !== undefined ? await sys.utimensat(fh, null, times, 0)
        : n.isDir ? await sys.utimensat(n.fd, null, times, 0)
        : await sys.utimensat(dfd, name, times, AT_SYMLINK_NOFOLLOW);
      if (r < 0) return r;
    }
    return this.getattr(sys, nodeid, fh);
  }

  async readlink(sys: Sys, nodeid: number): Promise<string | number> {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    const w = this.self(n);
    return typeof w === 'number' ? w : sys.readlinkat(w[0], w[1]);
  }

  /* ---- directory operations ---- */

  private async made(sys: Sys, parent: Node, name: Uint8Array, r: number): Promise<Entry | number> {
    if (r < 0) return r;
    const st = await sys.newfstatat(parent.fd, name, AT_SYMLINK_NOFOLLOW);
    if (typeof st === 'number') return st;
    return this.enter(sys, parent, name, st);
  }

  async mknod(sys: Sys, parentId: number, name: Uint8Array, mode: number, rdev: number): Promise<Entry | number> {
    const p = this.node(parentId);
    if (!p) return -ESTALE;
    if (nameBytesTooLong(name)) return -ENAMETOOLONG;
    return this.made(sys, p, name, await sys.mknodat(p.fd, name, mode, rdev));
  }

  async mkdir(sys: Sys, parentId: number, name: Uint8Array, mode: number): Promise<Entry | number> {
    const p = this.node(parentId);
    if (!p) return -ESTALE;
    if (nameBytesTooLong(name)) return -ENAMETOOLONG;
    return this.made(sys, p, name, await sys.mkdirat(p.fd, name, mode));
  }

  async symlink(sys: Sys, parentId: number, name: Uint8Array, target: Uint8Array): Promise<Entry | number> {
    const p = this.node(parentId);
    if (!p) return -ESTALE;
    if (nameBytesTooLong(name)) return -ENAMETOOLONG;
    return this.made(sys, p, name, await sys.symlinkat(target, p.fd, name));
  }

  async link(sys: Sys, oldId: number, newParentId: number, name: Uint8Array): Promise<Entry | number> {
    const o = this.node(oldId), p = this.node(newParentId);
    if (!o || !p) return -ESTALE;
    if (nameBytesTooLong(name)) return -ENAMETOOLONG;
    const where = this.at(o);
    if (typeof where === 'number') return where;
    return this.made(sys, p, name, await sys.linkat(where[0], where[1], p.fd, name, 0));
  }

  async unlink(sys: Sys, parentId: number, name: Uint8Array, dir: boolean): Promise<number> {
    const p = this.node(parentId);
    if (!p) return -ESTALE;
    if (nameBytesTooLong(name)) return -ENAMETOOLONG;
    const r = await sys.unlinkat(p.fd, name, dir ? AT_REMOVEDIR : 0);
    if (r === 0) this.unlinked(this.byName.get(this.key(p, name)), p, name);
    return r;
  }

  async rename(sys: Sys, parentId: number, name: Uint8Array, newParentId: number, newName: Uint8Array, flags: number): Promise<number> {
    const p = this.node(parentId), np = this.node(newParentId);
    if (!p || !np) return -ESTALE;
    if (nameBytesTooLong(name) || nameBytesTooLong(newName)) return -ENAMETOOLONG;
    const moved = this.byName.get(this.key(p, name));
    const replaced = this.byName.get(this.key(np, newName));
    const r = await sys.renameat2(p.fd, name, np.fd, newName, flags);
    if (r < 0) return r;
    // Two names of one inode: Linux's rename does nothing (both names stay).
    if (moved && moved === replaced) return 0;
    if (flags & RENAME_EXCHANGE) {
      if (moved) this.moveName(moved, p, name, np, newName);
      if (replaced) this.moveName(replaced, np, newName, p, name);
      return 0;
    }
    if (replaced) this.unlinked(replaced, np, newName);
    if (moved) this.moveName(moved, p, name, np, newName);
    return 0;
  }

  /* ---- files ---- */

  async open(sys: Sys, nodeid: number, flags: number): Promise<number> {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    const f = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | FMODE_EXEC_BIT)) | O_CLOEXEC;
    if (flags & FMODE_EXEC_BIT) {
      // An open for execve: the lkl-ts kernel's open checks read access only, so check
      // execute permission for the caller here, as may_open does for FMODE_EXEC.
      const w = this.self(n);
      if (typeof w === 'number') return w;
      const r = await sys.faccessat(w[0], w[1], X_OK, AT_EACCESS | w[2]);
      if (r < 0) return r;
    }
    const where = n.isDir ? [n.fd, Buffer.from('.')] as [number, Buffer] : this.at(n);
    if (typeof where === 'number') return where;
    const fd = n.isDir ? await this.openDir(sys, n, f) : await sys.openat(where[0], where[1], f | O_NOFOLLOW);
    if (fd < 0) return fd;
    // The name may now be another inode's (the node's inode lost that name): refuse it.
    const st = await sys.fstat(fd);
    if (typeof st === 'number' || st.ino !== n.ino) { await sys.close(fd); return typeof st === 'number' ? st : -ESTALE; }
    this.addHandle(fd, n);
    return fd;
  }

  async create(sys: Sys, parentId: number, name: Uint8Array, flags: number, mode: number): Promise<{ entry: Entry; fh: number } | number> {
    const p = this.node(parentId);
    if (!p) return -ESTALE;
    if (nameBytesTooLong(name)) return -ENAMETOOLONG;
    const fd = await sys.openat(p.fd, name, (flags & ~(O_NOCTTY | FMODE_EXEC_BIT)) | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0) return fd;
    const st = await sys.fstat(fd);
    if (typeof st === 'number') { await sys.close(fd); return st; }
    const e = await this.enter(sys, p, name, st);
    if (typeof e === 'number') { await sys.close(fd); return e; }
    this.addHandle(fd, this.node(e.nodeid) ?? null);
    return { entry: e, fh: fd };
  }

  read(sys: Sys, fh: number, buf: Uint8Array, offset: number): Promise<number> {
    return sys.pread64(fh, buf, offset);
  }
  write(sys: Sys, fh: number, data: Uint8Array, offset: number): Promise<number> {
    return sys.pwrite64(fh, data, offset);
  }

  async release(fh: number): Promise<number> {
    this.dirs.delete(fh);
    if (!this.handles.has(fh)) return -EBADF;
    this.handles.get(fh)?.open?.delete(fh);
    this.handles.delete(fh);
    return this.sys.close(fh);
  }

  fsync(sys: Sys, fh: number, datasync: boolean): Promise<number> {
    return datasync ? sys.fdatasync(fh) : sys.fsync(fh);
  }

  fallocate(sys: Sys, fh: number, mode: number, offset: number, length: number): Promise<number> {
    return sys.fallocate(fh, mode, offset, length);
  }

  lseek(sys: Sys, fh: number, offset: number, whence: number): Promise<number> {
    return sys.lseek(fh, offset, whence);
  }

  /** copy_file_range between two handles, done here (no data crosses FUSE): bytes copied. */
  async copyFileRange(sys: Sys, fhIn: number, offIn: number, fhOut: number, offOut: number, len: number, flags: number): Promise<number> {
    if (flags !== 0) return -EINVAL;
    if (!this.handles.has(fhIn) || !this.handles.has(fhOut)) return -EBADF;
    const buf = new Uint8Array(Math.min(COPY_CHUNK, Math.max(len, 1)));
    let done = 0;
    while (done < len) {
      const n = await sys.pread64(fhIn, buf.subarray(0, Math.min(buf.length, len - done)), offIn + done);
      if (n < 0) return done > 0 ? done : n;
      if (n === 0) break;
      let w = 0;
      while (w < n) {
        const m = await sys.pwrite64(fhOut, buf.subarray(w, n), offOut + done + w);
        if (m < 0) return done + w > 0 ? done + w : m;
        w += m;
      }
      done += n;
    }
    return done;
  }

  /* ---- directories ---- */

  /**
   * Opens a directory node as the caller. By its name in its parent first: an open of "."
   * from the node's descriptor would need search (x) permission on the directory itself,
   * which open(2) of a directory does not (a 0744 directory lists for others, as in Linux).
   * The name may be another inode's by now (then, and for the root, "." it is).
   */
  private async openDir(sys: Sys, n: Node, flags: number): Promise<number> {
    if (n.parent && n.live) {
      const fd = await sys.openat(n.parent.fd, n.name, flags | O_NOFOLLOW);
      if (fd >= 0) {
        const st = await sys.fstat(fd);
        if (typeof st !== 'number' && st.ino === n.ino) return fd;
        await sys.close(fd);
      }
    }
    return sys.openat(n.fd, '.', flags);
  }

  async opendir(sys: Sys, nodeid: number): Promise<number> {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    return this.dirHandle(n, await this.openDir(sys, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }

  /** `fd` (or an error) as a directory handle of `n`: readdir() and release() know it. */
  private dirHandle(n: Node, fd: number): number {
    if (fd < 0) return fd;
    this.addHandle(fd, null);
    this.dirs.set(fd, { node: n, pos: 0, pending: [], eof: false });
    return fd;
  }

  /** A directory handle of `n` opened by the daemon (root: "." from its descriptor needs no permission). */
  private async daemonDirHandle(n: Node): Promise<number> {
    return this.dirHandle(n, await this.sys.openat(n.fd, '.', O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }

  /**
   * Entries from directory offset `offset` on, while `room(nameLength)` says one more fits
   * the reply; each is handed to `add`. With `plus`, each entry but . and .. is looked up
   * (and counted: the kernel will FORGET it), only once it is known to fit.
   *
   * READDIRPLUS_AUTO: the host kernel asks for READDIRPLUS on every directory's first read
   * (offset 0) as a guess, and later only when a lookup in the directory since its last read
   * says the entries are being stat'ed (fuse_use_readdirplus). The guess at offset 0 is
   * answered with names only (entries without a node id: "no attributes for this one", which
   * the kernel accepts), because looking up every entry reads every inode and a names-only
   * listing (ls, find, readdir(3)) then costs ~20x; a plus request past offset 0 is the
   * kernel's "stat follows" advice and gets full entries.
   */
  async readdir(sys: Sys, fh: number, offset: number, plus: boolean, room: (nameLen: number) => boolean, add: (e: DirEntryOut) => void): Promise<number> {
    const d = this.dirs.get(fh);
    if (!d) return -EBADF;
    const attrs = plus && offset !== 0;
    if (offset !== d.pos) {
      const r = await sys.lseek(fh, offset, SEEK_SET);
      if (r < 0) return r;
      d.pos = offset;
      d.pending = [];
      d.eof = false;
    }
    for (;;) {
      if (d.pending.length === 0) {
        if (d.eof) return 0;
        const ents = await sys.getdents64(fh, GETDENTS_BYTES);
        if (typeof ents === 'number') return ents;
        if (ents.length === 0) { d.eof = true; return 0; }
        d.pending = ents;
      }
      const e = d.pending[0]!;
      if (!room(e.rawName.length)) return 0;
      const out: DirEntryOut = { ino: e.ino, off: e.off, type: e.type, name: e.rawName };
      const dot = e.rawName.length <= 2 && e.rawName.every((c) => c === 0x2e);
      if (plus) {
        out.entry = null;
        if (!dot && attrs) {
          const st = await sys.newfstatat(d.node.fd, e.rawName, AT_SYMLINK_NOFOLLOW);
          const entry = typeof st === 'number' ? null : await this.enter(sys, d.node, e.rawName, st);
          if (entry && typeof entry !== 'number') out.entry = entry;
        }
      }
      d.pending.shift();
      d.pos = e.off;
      add(out);
    }
  }

  /**
   * READDIR(PLUS) of a node without OPENDIR (handle 0; see the header): readdir() on the
   * node's shared handle. With `check` (no host permission checks and a caller other than
   * the daemon) the caller must be allowed to read the directory, as open(2) would require.
   */
  async readdirNode(sys: Sys, nodeid: number, check: boolean, offset: number, plus: boolean, room: (nameLen: number) => boolean, add: (e: DirEntryOut) => void): Promise<number> {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    if (!n.isDir) return -ENOTDIR;
    if (check) {
      const r = await sys.faccessat(n.fd, '', R_OK, AT_EMPTY_PATH | AT_EACCESS);
      if (r < 0) return r;
    }
    let fh = this.nodeDirs.get(nodeid);
    let own = false;
    if (fh !== undefined && !this.busyDirs.has(fh)) {
      this.nodeDirs.delete(nodeid);
      this.nodeDirs.set(nodeid, fh); // most recently used last
    } else {
      const fd = await this.daemonDirHandle(n);
      if (fd < 0) return fd;
      if (fh === undefined && this.node(nodeid) === n) {
        this.nodeDirs.set(nodeid, fd);
        await this.trimNodeDirs();
      } else own = true;
      fh = fd;
    }
    this.busyDirs.add(fh);
    try {
      return await this.readdir(sys, fh, offset, plus, room, add);
    } finally {
      this.busyDirs.delete(fh);
      if (own || this.nodeDirs.get(nodeid) !== fh) await this.release(fh);
    }
  }

  private async trimNodeDirs(): Promise<void> {
    for (const [id, fh] of this.nodeDirs) {
      if (this.nodeDirs.size <= NODE_DIRS) return;
      if (this.busyDirs.has(fh)) continue;
      this.nodeDirs.delete(id);
      await this.release(fh);
    }
  }

  /** FSYNCDIR without OPENDIR (handle 0): fsync of the directory node. */
  async fsyncDir(nodeid: number, datasync: boolean): Promise<number> {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    const fd = await this.daemonDirHandle(n);
    if (fd < 0) return fd;
    try {
      return await this.fsync(this.sys, fd, datasync);
    } finally {
      await this.release(fd);
    }
  }

  /* ---- ioctl ---- */

  /**
   * FUSE_IOCTL, restricted (the host kernel has copied the argument in, sized by the
   * request's _IOC_SIZE or, for the inode flags it asks through its fileattr code, by the
   * 4-byte int or struct fsxattr it passes): the requests whose argument lkl-ts knows, on
   * the handle (FUSE_IOCTL_DIR: a directory's, from OPENDIR), as the caller. The reply
   * carries the bytes Linux's handler writes (an int is 4 bytes even where the request
   * number says long: a caller's int must not be overrun). Unknown requests are ENOTTY;
   * unrestricted ioctls (CUSE's retry protocol) EPERM, as libfuse answers them.
   */
  async ioctl(sys: Sys, fh: number, cmd: number, flags: number, input: Uint8Array, outSize: number): Promise<{ result: number; out?: Uint8Array } | number> {
    if (flags & FUSE_IOCTL_UNRESTRICTED) return -EPERM;
    if (!this.handles.has(fh)) return -EBADF;
    return this.ioctlOn(sys, fh, cmd, input, outSize);
  }

  /** A directory's IOCTL without OPENDIR (handle 0): on the directory opened as the caller. */
  async ioctlDir(sys: Sys, nodeid: number, cmd: number, flags: number, input: Uint8Array, outSize: number): Promise<{ result: number; out?: Uint8Array } | number> {
    if (flags & FUSE_IOCTL_UNRESTRICTED) return -EPERM;
    if (!IOCTL_ARG_SIZE.has(cmd >>> 0)) return -ENOTTY;
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    const fd = await this.openDir(sys, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return fd;
    try {
      return await this.ioctlOn(sys, fd, cmd, input, outSize);
    } finally {
      await this.sys.close(fd);
    }
  }

  private async ioctlOn(sys: Sys, fh: number, cmd: number, input: Uint8Array, outSize: number): Promise<{ result: number; out?: Uint8Array } | number> {
    const size = IOCTL_ARG_SIZE.get(cmd >>> 0);
    if (size === undefined) return -ENOTTY;
    const dir = _IOC_DIR(cmd);
    const buf = new Uint8Array(size);
    if (dir & _IOC_WRITE) {
      if (input.length < size) return -EINVAL;
      buf.set(input.subarray(0, size));
    }
    const r = await sys.ioctl(fh, cmd, buf);
    if (r < 0) return r;
    return { result: r, out: dir & _IOC_READ ? buf.subarray(0, Math.min(size, outSize)) : undefined };
  }

  /* ---- the rest ---- */

  async statfs(sys: Sys, nodeid: number): Promise<statfs | number> {
    const root = this.node(FUSE_ROOT_ID)!; // one filesystem: every node's answer is the root's
    void nodeid;
    const r = await sys.fstatfs(root.fd);
    return r === -EBADF ? sys.statfs(this.rootPath) : r;
  }

  async access(sys: Sys, nodeid: number, mask: number): Promise<number> {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    const w = this.self(n);
    return typeof w === 'number' ? w : sys.faccessat(w[0], w[1], mask, AT_EACCESS | w[2] | AT_SYMLINK_NOFOLLOW);
  }

  /**
   * The node for the *xattrat calls, at any depth: [dirfd, name], by its name in its
   * parent's descriptor, directories too (as "." in its own, a lookup needing search
   * permission on it, a 0744 directory's ACL could not be read by others: the host asks for
   * it before listing); the root as "." in its own.
   */
  private xat(nodeid: number): [number, Uint8Array | string] | number {
    const n = this.node(nodeid);
    if (!n) return -ESTALE;
    if (!n.live && n.parent) return -ENOENT;
    return this.at(n);
  }

  private xhandle(nodeid: number): number | undefined {
    const n = this.node(nodeid);
    return n ? this.anyHandle(n) : undefined;
  }

  async setxattr(sys: Sys, nodeid: number, name: string, value: Uint8Array, flags: number): Promise<number> {
    const h = this.xhandle(nodeid);
    if (h !== undefined) return sys.fsetxattr(h, name, value, flags);
    const p = this.xat(nodeid);
    return typeof p === 'number' ? p : sys.setxattrat(p[0], p[1], AT_SYMLINK_NOFOLLOW, name, value, flags);
  }
  /** The value, its size when `size` is 0, or -errno (ERANGE if it does not fit `size`). */
  async getxattr(sys: Sys, nodeid: number, name: string, size: number): Promise<Uint8Array | number> {
    const h = this.xhandle(nodeid);
    const p = h !== undefined ? h : this.xat(nodeid);
    if (typeof p === 'number' && h === undefined) return p;
    const v = typeof p === 'number' ? await sys.fgetxattr(p, name) : await sys.getxattrat(p[0], p[1], AT_SYMLINK_NOFOLLOW, name);
    if (typeof v === 'number') return v;
    if (size === 0) return v.length;
    return v.length > size ? -ERANGE : v;
  }
  async listxattr(sys: Sys, nodeid: number, size: number): Promise<Uint8Array | number> {
    const h = this.xhandle(nodeid);
    const p = h !== undefined ? h : this.xat(nodeid);
    if (typeof p === 'number' && h === undefined) return p;
    const names = typeof p === 'number' ? await sys.flistxattr(p) : await sys.listxattrat(p[0], p[1], AT_SYMLINK_NOFOLLOW);
    if (typeof names === 'number') return names;
    const list = Buffer.from(names.map((x) => x + '\0').join(''));
    if (size === 0) return list.length;
    return list.length > size ? -ERANGE : list;
  }
  async removexattr(sys: Sys, nodeid: number, name: string): Promise<number> {
    const h = this.xhandle(nodeid);
    if (h !== undefined) return sys.fremovexattr(h, name);
    const p = this.xat(nodeid);
    return typeof p === 'number' ? p : sys.removexattrat(p[0], p[1], AT_SYMLINK_NOFOLLOW, name);
  }

  /**
   * For tests and shutdown: closes every descriptor (handles and nodes). A request still
   * running (one that outlived the transport's drain) keeps no descriptor it opens after
   * this: any would keep the kernel's mount busy, and umountDev would wait on it in vain.
   */
  async closeAll(): Promise<void> {
    this.closed = true;
    for (const fh of this.handles.keys()) await this.sys.close(fh);
    this.handles.clear();
    this.dirs.clear();
    this.nodeDirs.clear();
    for (const n of this.nodes.values()) if (n.fd >= 0) await this.sys.close(n.fd);
    this.nodes.clear();
    this.byIno.clear();
    this.byName.clear();
  }
}

