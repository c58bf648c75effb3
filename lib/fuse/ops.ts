/*
 * lklfuse's FUSE operations: each one is one system call of the kernel (sometimes a few),
 * as in LKL's tools/lkl/lklfuse.c, with negative errno values passed straight through.
 * Kernel file descriptors are the FUSE handles. Knows nothing of fuse-native (see
 * fuse-native.ts) or of how the kernel was started (see lklfuse.ts).
 *
 * Two things are the daemon's own business rather than the kernel's:
 *  - NAME_MAX (names.ts): any path component longer than 255 bytes is refused here with
 *    ENAMETOOLONG, before the kernel sees it.
 *  - Unlinked open files. libfuse 2's high-level API cannot serve a file after its last
 *    name is gone unless the filesystem sets flag_nullpath_ok, which fuse-native does not:
 *    with hard_remove, read() on such a file fails ENOENT inside libfuse. So lklfuse lets
 *    libfuse "hide" the file as usual, by renaming it to .fuse_hiddenXXXXXXXXXXXXXXXX, and
 *    turns that rename into a real unlink in the kernel while keeping a kernel fd of the
 *    inode: the image gets no .fuse_hidden file (rmdir of the parent works), the kernel
 *    keeps the orphan inode alive, and operations libfuse later sends for the hidden name
 *    go to that fd. libfuse's final unlink of the hidden name closes it.
 *
 * Depth. libfuse 2 hands over whole paths from the mount root, and the kernel refuses a
 * path argument of PATH_MAX bytes or more (getname), yet Linux has no depth limit: one cd's
 * down. So every operation goes through an *at() call, and a path too long for one
 * argument is walked in pieces (splitLongPath): its directory prefix opened chunk by chunk
 * with openat(O_PATH | O_DIRECTORY), each chunk shorter than PATH_MAX and cut at a '/',
 * intermediate symlinks followed as the kernel's walk follows them (a chunk's last
 * component is an intermediate one of the whole path), and the operation run on the last
 * component relative to the directory reached, with the operation's own follow/no-follow.
 * The x*attr calls use the *xattrat() calls (Linux 6.13). truncate(2) and statfs(2) have no
 * *at form: deep, truncate is a check of the O_PATH-opened target (EISDIR, EINVAL as
 * truncate(2) says) then openat(O_WRONLY) + ftruncate, and statfs is fstatfs of an O_PATH
 * descriptor of the target. What differs from one walk: the 40-symlink ELOOP budget is per
 * chunk, and a deep truncate opens the file (a write open, then close) where truncate(2)
 * does not.
 */
import type { Sys } from '../kernel/include/sys.js';
import type { stat, statfs, timespec64 } from '../kernel/include/uapi.js';
import {
  AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, EBADF, EINVAL, EISDIR, ENAMETOOLONG, ENOENT,
  O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOCTTY, O_NONBLOCK, O_PATH, O_RDONLY, O_RDWR, O_WRONLY,
  PATH_MAX, S_ISDIR, S_ISREG,
} from '../kernel/include/uapi.js';
import type { FuseDirent, FuseOperations } from './fuse-native.js';
import { nameTooLong } from './names.js';

/** How many bytes of linux_dirent64 records to ask getdents64 for at a time. */
const GETDENTS_BYTES = 32768;

const HIDDEN_RE = /\/\.fuse_hidden[0-9a-f]{16}$/;

export { nameTooLong } from './names.js';

/**
 * A kernel path too long for one path argument (PATH_MAX bytes or more, in UTF-8), cut for
 * the *at() calls: `dirs`, the directory prefix in chunks of fewer than PATH_MAX bytes each
 * cut at a '/' (the first keeps a leading '/'; empty components, which the walk skips
 * anyway, are dropped), to be opened one from the other; and `last`, the final component
 * (with any trailing '/'). Null when the path fits as it is, or has no '/' to cut at.
 */
export function splitLongPath(kp: string): { dirs: string[]; last: string } | null {
  if (kp.length < PATH_MAX / 3 || Buffer.byteLength(kp) < PATH_MAX) return null;
  let end = kp.length;
  while (end > 1 && kp.charCodeAt(end - 1) === 0x2f) end--;
  const cut = kp.lastIndexOf('/', end - 1);
  if (cut < 0) return null;
  const last = kp.slice(cut + 1);
  const dirs: string[] = [];
  let cur = kp.startsWith('/') ? '/' : '', bytes = cur.length;
  for (const c of kp.slice(0, cut).split('/')) {
    if (c === '') continue;
    const b = Buffer.byteLength(c);
    const sep = cur === '' || cur === '/' ? 0 : 1;
    if (sep && bytes + sep + b >= PATH_MAX) {
      dirs.push(cur);
      cur = c;
      bytes = b;
    } else {
      cur += (sep ? '/' : '') + c;
      bytes += sep + b;
    }
  }
  if (cur !== '') dirs.push(cur);
  return { dirs, last };
}

export interface LklfuseOps extends FuseOperations {
  /** Closes every kernel fd the daemon still holds (files, directories, hidden files). */
  closeAll(): Promise<void>;
  /** Kernel fds currently open on behalf of FUSE. */
  readonly openHandles: number;
}

/**
 * The operations over `sys`. `root` is the kernel path FUSE's "/" maps to: "" after the
 * daemon chroot()ed into the mounted filesystem (as lklfuse.c does), or the mount path;
 * `relative` says the working directory is that root, so paths can go relative.
 */
export function lklfuseOps(sys: Sys, root = '', relative = false): LklfuseOps {
  // `relative`: the daemon's working directory is the filesystem's root (after the chroot):
  // FUSE's "/a/b" is passed as "a/b", so that a path of PATH_MAX - 1 bytes below the mount
  // fits the kernel's limit as it does on Linux (libfuse adds the leading "/").
  const kpath = (p: string) => root === ''
    ? (relative ? (p === '/' ? '.' : p.startsWith('/') ? p.slice(1) : p) : p)
    : p === '/' ? root : root + p;
  const handles = new Set<number>();
  /** .fuse_hidden path → a kernel fd of the unlinked inode (a dup the daemon owns). */
  const hidden = new Map<string, number>();

  /* Wraps a path operation: NAME_MAX check first. */
  const named = <T>(p: string, fn: (kp: string) => Promise<T | number>): Promise<T | number> =>
    nameTooLong(p) ? Promise.resolve(-ENAMETOOLONG) : fn(kpath(p));

  /*
   * Runs fn(dirfd, name) for the kernel path `kp`: (AT_FDCWD, kp) when it fits one path
   * argument, else the descriptor of its directory reached chunk by chunk and its last
   * component (see splitLongPath), the descriptor closed afterwards.
   */
  async function at<T>(kp: string, fn: (dirfd: number, name: string) => Promise<T | number>): Promise<T | number> {
    const split = splitLongPath(kp);
    if (!split) return fn(AT_FDCWD, kp);
    let fd = AT_FDCWD;
    for (const chunk of split.dirs) {
      const next = await sys.openat(fd, chunk, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd !== AT_FDCWD) await sys.close(fd);
      if (next < 0) return next;
      fd = next;
    }
    try { return await fn(fd, split.last); } finally { if (fd !== AT_FDCWD) await sys.close(fd); }
  }
  /* named + at: the operation on the FUSE path p, as fn(dirfd, name). */
  const namedAt = <T>(p: string, fn: (dirfd: number, name: string) => Promise<T | number>): Promise<T | number> =>
    named(p, (kp) => at(kp, fn));
  /* An O_PATH descriptor of what the path names (final symlink followed), for fn. */
  const withTarget = <T>(dirfd: number, name: string, fn: (fd: number) => Promise<T | number>) => async () => {
    const fd = await sys.openat(dirfd, name, O_PATH | O_CLOEXEC);
    if (fd < 0) return fd;
    try { return await fn(fd); } finally { await sys.close(fd); }
  };
  /* truncate(2) of a path too deep for it: its checks, then a write open + ftruncate. */
  const truncateAt = (dirfd: number, name: string, size: number) => withTarget(dirfd, name, async (fd) => {
    if (size < 0) return -EINVAL;
    const st = await sys.fstat(fd);
    if (typeof st === 'number') return st;
    if (S_ISDIR(st.mode)) return -EISDIR;
    if (!S_ISREG(st.mode)) return -EINVAL;
    const w = await sys.openat(dirfd, name, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (w < 0) return w;
    try { return await sys.ftruncate(w, size); } finally { await sys.close(w); }
  })();

  const opened = (r: number) => { if (r >= 0) handles.add(r); return r; };
  const closed = async (fh: number) => {
    if (!handles.delete(fh)) return -EBADF;
    return sys.close(fh);
  };

  /* libfuse hides an open file by renaming it; make it an unlink, keeping a kernel fd of it. */
  async function hide(from: string, to: string): Promise<number | undefined> {
    const st = await at<stat>(kpath(from), (d, n) => sys.newfstatat(d, n, AT_SYMLINK_NOFOLLOW));
    if (typeof st === 'number') return st;
    for (const fh of handles) {
      const fst = await sys.fstat(fh);
      if (typeof fst === 'number' || fst.ino !== st.ino || fst.dev !== st.dev) continue;
      const fd = await sys.dup(fh);
      if (fd < 0) return fd;
      const r = await at(kpath(from), (d, n) => sys.unlinkat(d, n, 0));
      if (r < 0) { await sys.close(fd); return r; }
      const old = hidden.get(to);
      if (old !== undefined) await sys.close(old);
      hidden.set(to, fd);
      return 0;
    }
    return undefined; // not open after all: an ordinary rename
  }

  const ops: LklfuseOps = {
    get openHandles() { return handles.size + hidden.size; },

    async getattr(p) {
      const h = hidden.get(p);
      if (h !== undefined) return sys.fstat(h);
      return namedAt<stat>(p, (d, n) => sys.newfstatat(d, n, AT_SYMLINK_NOFOLLOW));
    },
    async fgetattr(p, fh) {
      const r = await sys.fstat(fh);
      return r === -EBADF && p ? ops.getattr(p) : r;
    },
    access: async (p, mode) => hidden.has(p) ? 0 : namedAt(p, (d, n) => sys.faccessat(d, n, mode, 0)),
    readlink: (p) => namedAt<string>(p, (d, n) => sys.readlinkat(d, n)),
    mknod: (p, mode, dev) => namedAt(p, (d, n) => sys.mknodat(d, n, mode, dev)),
    mkdir: (p, mode) => namedAt(p, (d, n) => sys.mkdirat(d, n, mode)),
    async unlink(p) {
      const h = hidden.get(p);
      if (h !== undefined) {
        hidden.delete(p);
        return sys.close(h);
      }
      return namedAt(p, (d, n) => sys.unlinkat(d, n, 0));
    },
    rmdir: (p) => namedAt(p, (d, n) => sys.unlinkat(d, n, AT_REMOVEDIR)),
    symlink: (target, linkPath) => namedAt(linkPath, (d, n) => sys.symlinkat(target, d, n)),
    async rename(from, to) {
      if (nameTooLong(from) || nameTooLong(to)) return -ENAMETOOLONG;
      if (HIDDEN_RE.test(to) && !hidden.has(from)) {
        const r = await hide(from, to);
        if (r !== undefined) return r;
      }
      if (hidden.has(from)) return -ENOENT;
      return at(kpath(from), (fd, fn) => at(kpath(to), (td, tn) => sys.renameat2(fd, fn, td, tn, 0)));
    },
    async link(existing, newPath) {
      if (nameTooLong(existing) || nameTooLong(newPath)) return -ENAMETOOLONG;
      return at(kpath(existing), (ed, en) => at(kpath(newPath), (nd, nn) => sys.linkat(ed, en, nd, nn, 0)));
    },
    async chmod(p, mode) {
      const h = hidden.get(p);
      return h !== undefined ? sys.fchmod(h, mode) : namedAt(p, (d, n) => sys.fchmodat(d, n, mode, 0));
    },
    async chown(p, uid, gid) {
      // (uid_t)-1 means "leave it": fuse-native hands it over unsigned.
      const u = uid === 0xffffffff ? -1 : uid, g = gid === 0xffffffff ? -1 : gid;
      const h = hidden.get(p);
      return h !== undefined ? sys.fchown(h, u, g) : namedAt(p, (d, n) => sys.fchownat(d, n, u, g, AT_SYMLINK_NOFOLLOW));
    },
    async truncate(p, size) {
      const h = hidden.get(p);
      return h !== undefined ? sys.ftruncate(h, size) : named(p, (kp) =>
        splitLongPath(kp) ? at(kp, (d, n) => truncateAt(d, n, size)) : sys.truncate(kp, size));
    },
    ftruncate: (_p, fh, size) => sys.ftruncate(fh, size),
    async utimens(p, atime: timespec64, mtime: timespec64) {
      const h = hidden.get(p);
      if (h !== undefined) return sys.utimensat(h, null, [atime, mtime], 0);
      return namedAt(p, (d, n) => sys.utimensat(d, n, [atime, mtime], AT_SYMLINK_NOFOLLOW));
    },
    open: (p, flags) => namedAt(p, async (d, n) => opened(await sys.openat(d, n, flags))),
    // fuse-native does not pass create()'s open flags; read-write covers every caller, and
    // a file one has just created may be opened read-write whatever its mode.
    create: (p, mode) => namedAt(p, async (d, n) => opened(await sys.openat(d, n, O_CREAT | O_RDWR, mode))),
    read: (_p, fh, buf, pos) => sys.pread64(fh, buf, pos),
    write: (_p, fh, buf, pos) => sys.pwrite64(fh, buf, pos),
    statfs: (p) => named<statfs>(p, (kp) =>
      splitLongPath(kp) ? at<statfs>(kp, (d, n) => withTarget<statfs>(d, n, (fd) => sys.fstatfs(fd))()) : sys.statfs(kp)),
    // close(2) of a dup would flush; the kernel fd stays open until release, as in lklfuse.c.
    flush: async () => 0,
    release: (_p, fh) => closed(fh),
    fsync: (_p, datasync, fh) => datasync ? sys.fdatasync(fh) : sys.fsync(fh),
    opendir: (p) => namedAt(p, async (d, n) => opened(await sys.openat(d, n, O_RDONLY | O_DIRECTORY))),
    // fuse-native does not hand readdir the opendir handle: read the directory by path.
    readdir: (p) => namedAt<FuseDirent[]>(p, async (d, n) => {
      const fd = await sys.openat(d, n, O_RDONLY | O_DIRECTORY);
      if (fd < 0) return fd;
      try {
        const out: FuseDirent[] = [];
        for (;;) {
          const ents = await sys.getdents64(fd, GETDENTS_BYTES);
          if (typeof ents === 'number') return ents;
          if (ents.length === 0) return out;
          for (const e of ents) out.push({ name: e.name, ino: e.ino, type: e.type });
        }
      } finally {
        await sys.close(fd);
      }
    }),
    releasedir: (_p, fh) => closed(fh),
    fsyncdir: (_p, datasync, fh) => datasync ? sys.fdatasync(fh) : sys.fsync(fh),
    async setxattr(p, name, value, flags) {
      const h = hidden.get(p);
      return h !== undefined ? sys.fsetxattr(h, name, value, flags) : namedAt(p, (d, n) => sys.setxattrat(d, n, AT_SYMLINK_NOFOLLOW, name, value, flags));
    },
    async getxattr(p, name) {
      const h = hidden.get(p);
      return h !== undefined ? sys.fgetxattr(h, name) : namedAt<Uint8Array>(p, (d, n) => sys.getxattrat(d, n, AT_SYMLINK_NOFOLLOW, name));
    },
    async listxattr(p) {
      const h = hidden.get(p);
      return h !== undefined ? sys.flistxattr(h) : namedAt<string[]>(p, (d, n) => sys.listxattrat(d, n, AT_SYMLINK_NOFOLLOW));
    },
    async removexattr(p, name) {
      const h = hidden.get(p);
      return h !== undefined ? sys.fremovexattr(h, name) : namedAt(p, (d, n) => sys.removexattrat(d, n, AT_SYMLINK_NOFOLLOW, name));
    },

    async closeAll() {
      for (const fd of [...handles, ...hidden.values()]) await sys.close(fd);
      handles.clear();
      hidden.clear();
    },
  };
  return ops;
}
