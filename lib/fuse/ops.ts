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
 */
import type { Sys } from '../kernel/include/sys.js';
import type { Stat, Statfs, Timespec } from '../kernel/include/uapi.js';
import {
  AT_FDCWD, AT_SYMLINK_NOFOLLOW, EBADF, ENAMETOOLONG, ENOENT, O_CREAT, O_DIRECTORY,
  O_RDONLY, O_RDWR,
} from '../kernel/include/uapi.js';
import type { FuseDirent, FuseOperations } from './fuse-native.js';
import { nameTooLong } from './names.js';

/** How many bytes of linux_dirent64 records to ask getdents64 for at a time. */
const GETDENTS_BYTES = 32768;

const HIDDEN_RE = /\/\.fuse_hidden[0-9a-f]{16}$/;

export { nameTooLong } from './names.js';

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

  const opened = (r: number) => { if (r >= 0) handles.add(r); return r; };
  const closed = async (fh: number) => {
    if (!handles.delete(fh)) return -EBADF;
    return sys.close(fh);
  };

  /* libfuse hides an open file by renaming it; make it an unlink, keeping a kernel fd of it. */
  async function hide(from: string, to: string): Promise<number | undefined> {
    const st = await sys.newfstatat(AT_FDCWD, kpath(from), AT_SYMLINK_NOFOLLOW);
    if (typeof st === 'number') return st;
    for (const fh of handles) {
      const fst = await sys.fstat(fh);
      if (typeof fst === 'number' || fst.ino !== st.ino || fst.dev !== st.dev) continue;
      const fd = await sys.dup(fh);
      if (fd < 0) return fd;
      const r = await sys.unlink(kpath(from));
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
      return named<Stat>(p, (kp) => sys.newfstatat(AT_FDCWD, kp, AT_SYMLINK_NOFOLLOW));
    },
    async fgetattr(p, fh) {
      const r = await sys.fstat(fh);
      return r === -EBADF && p ? ops.getattr(p) : r;
    },
    access: async (p, mode) => hidden.has(p) ? 0 : named(p, (kp) => sys.access(kp, mode)),
    readlink: (p) => named<string>(p, (kp) => sys.readlink(kp)),
    mknod: (p, mode, dev) => named(p, (kp) => sys.mknod(kp, mode, dev)),
    mkdir: (p, mode) => named(p, (kp) => sys.mkdir(kp, mode)),
    async unlink(p) {
      const h = hidden.get(p);
      if (h !== undefined) {
        hidden.delete(p);
        return sys.close(h);
      }
      return named(p, (kp) => sys.unlink(kp));
    },
    rmdir: (p) => named(p, (kp) => sys.rmdir(kp)),
    symlink: (target, linkPath) => named(linkPath, (kp) => sys.symlink(target, kp)),
    async rename(from, to) {
      if (nameTooLong(from) || nameTooLong(to)) return -ENAMETOOLONG;
      if (HIDDEN_RE.test(to) && !hidden.has(from)) {
        const r = await hide(from, to);
        if (r !== undefined) return r;
      }
      if (hidden.has(from)) return -ENOENT;
      return sys.renameat2(AT_FDCWD, kpath(from), AT_FDCWD, kpath(to), 0);
    },
    async link(existing, newPath) {
      if (nameTooLong(existing) || nameTooLong(newPath)) return -ENAMETOOLONG;
      return sys.link(kpath(existing), kpath(newPath));
    },
    async chmod(p, mode) {
      const h = hidden.get(p);
      return h !== undefined ? sys.fchmod(h, mode) : named(p, (kp) => sys.fchmodat(AT_FDCWD, kp, mode, 0));
    },
    async chown(p, uid, gid) {
      // (uid_t)-1 means "leave it": fuse-native hands it over unsigned.
      const u = uid === 0xffffffff ? -1 : uid, g = gid === 0xffffffff ? -1 : gid;
      const h = hidden.get(p);
      return h !== undefined ? sys.fchown(h, u, g) : named(p, (kp) => sys.lchown(kp, u, g));
    },
    async truncate(p, size) {
      const h = hidden.get(p);
      return h !== undefined ? sys.ftruncate(h, size) : named(p, (kp) => sys.truncate(kp, size));
    },
    ftruncate: (_p, fh, size) => sys.ftruncate(fh, size),
    async utimens(p, atime: Timespec, mtime: Timespec) {
      const h = hidden.get(p);
      if (h !== undefined) return sys.utimensat(h, null, [atime, mtime], 0);
      return named(p, (kp) => sys.utimensat(AT_FDCWD, kp, [atime, mtime], AT_SYMLINK_NOFOLLOW));
    },
    open: (p, flags) => named(p, async (kp) => opened(await sys.open(kp, flags))),
    // fuse-native does not pass create()'s open flags; read-write covers every caller, and
    // a file one has just created may be opened read-write whatever its mode.
    create: (p, mode) => named(p, async (kp) => opened(await sys.open(kp, O_CREAT | O_RDWR, mode))),
    read: (_p, fh, buf, pos) => sys.pread64(fh, buf, pos),
    write: (_p, fh, buf, pos) => sys.pwrite64(fh, buf, pos),
    statfs: (p) => named<Statfs>(p, (kp) => sys.statfs(kp)),
    // close(2) of a dup would flush; the kernel fd stays open until release, as in lklfuse.c.
    flush: async () => 0,
    release: (_p, fh) => closed(fh),
    fsync: (_p, datasync, fh) => datasync ? sys.fdatasync(fh) : sys.fsync(fh),
    opendir: (p) => named(p, async (kp) => opened(await sys.open(kp, O_RDONLY | O_DIRECTORY))),
    // fuse-native does not hand readdir the opendir handle: read the directory by path.
    readdir: (p) => named<FuseDirent[]>(p, async (kp) => {
      const fd = await sys.open(kp, O_RDONLY | O_DIRECTORY);
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
      return h !== undefined ? sys.fsetxattr(h, name, value, flags) : named(p, (kp) => sys.lsetxattr(kp, name, value, flags));
    },
    async getxattr(p, name) {
      const h = hidden.get(p);
      return h !== undefined ? sys.fgetxattr(h, name) : named<Uint8Array>(p, (kp) => sys.lgetxattr(kp, name));
    },
    async listxattr(p) {
      const h = hidden.get(p);
      return h !== undefined ? sys.flistxattr(h) : named<string[]>(p, (kp) => sys.llistxattr(kp));
    },
    async removexattr(p, name) {
      const h = hidden.get(p);
      return h !== undefined ? sys.fremovexattr(h, name) : named(p, (kp) => sys.lremovexattr(kp, name));
    },

    async closeAll() {
      for (const fd of [...handles, ...hidden.values()]) await sys.close(fd);
      handles.clear();
      hidden.clear();
    },
  };
  return ops;
}
