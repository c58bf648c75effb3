/*
 * A test double of lkl-ts's Kernel and Sys over a host directory (node:fs passthrough,
 * host errors mapped to -errno), so lklfuse's FUSE layer can be tested with real FUSE
 * mounts before (and independently of) the kernel. Used only when bin/lklfuse is run with
 * LKLFUSE_TEST_FAKE_KERNEL=<host dir>; LKLFUSE_TEST_FAKE_STATS=<file> makes halt() write
 * what the fake saw (write sizes, calls, over-long names) there as JSON.
 *
 * What it pretends: disks are host image files; /dev/vda (whole disk only) reads the image;
 * mountDev checks the image's superblock as a kernel would (so a corrupt image fails to
 * mount) and then "mounts" the host directory at /mnt/vda. It never writes to the image.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PathArg, Sys } from '../../lib/kernel/include/sys.js';
import type { linux_dirent64, stat, statfs, timespec64 } from '../../lib/kernel/include/uapi.js';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, EBADF, EINVAL, EIO, ENODEV, ENOENT,
  ENOSYS, ENOTDIR, ENXIO, EOPNOTSUPP, EPERM, EROFS, MS_RDONLY, NAME_MAX, O_ACCMODE, O_RDONLY,
  S_IFMT, S_IFREG, UTIME_NOW, UTIME_OMIT, dt_from_mode,
} from '../../lib/kernel/include/uapi.js';

const p = {
  open: promisify(fs.open), close: promisify(fs.close),
  read: (fd: number, b: Uint8Array, off: number, len: number, pos: number | null) => new Promise<number>((res, rej) =>
    fs.read(fd, b, off, len, pos, (e, n) => e ? rej(e) : res(n))),
  write: (fd: number, b: Uint8Array, off: number, len: number, pos: number | null) => new Promise<number>((res, rej) =>
    fs.write(fd, b, off, len, pos, (e, n) => e ? rej(e) : res(n))),
};

export interface FakeStats {
  writes: Record<string, number>;
  calls: Record<string, number>;
  longNames: number;
}

/** The fake's idea of the Kernel interface lib/index.ts will export. */
export interface FakeKernel {
  sys: Sys;
  diskAdd(store: { path?: string; fd?: number; readOnly?: boolean }): Promise<number>;
  mountDev(diskId: number, part: number, fsType: string, flags: number, opts: string): Promise<string | number>;
  umountDev(diskId: number, part: number, flags: number, timeoutMs?: number): Promise<number>;
  diskRemove(diskId: number): Promise<number>;
  halt(): Promise<void>;
  stats: FakeStats;
}

function errno(err: unknown): number {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno === 'number') return -Math.abs(e.errno);
  const n = e?.code ? (os.constants.errno as Record<string, number>)[e.code] : undefined;
  return n ? -n : -EIO;
}
async function wrap(fn: () => Promise<unknown> | unknown): Promise<number> {
  try { await fn(); return 0; } catch (e) { return errno(e); }
}
const ts = (ns: bigint): timespec64 => ({ sec: Number(ns / 1000000000n), nsec: Number(ns % 1000000000n) });
function toStat(s: fs.BigIntStats): stat {
  return {
    dev: Number(s.dev), ino: Number(s.ino), mode: Number(s.mode), nlink: Number(s.nlink),
    uid: Number(s.uid), gid: Number(s.gid), rdev: Number(s.rdev), size: Number(s.size),
    blksize: Number(s.blksize), blocks: Number(s.blocks),
    atime: ts(s.atimeNs), mtime: ts(s.mtimeNs), ctime: ts(s.ctimeNs),
  };
}
const str = (a: PathArg) => typeof a === 'string' ? a : Buffer.from(a).toString('utf8');

interface File {
  host: number;
  refs: { n: number };
  hostPath: string;
  dir?: { ents: linux_dirent64[]; pos: number };
}

/** Checks the superblock as the kernel's mount would; returns 0 or -errno. */
function checkSuperblock(image: string, type: string): number {
  const b = Buffer.alloc(4096);
  const fd = fs.openSync(image, 'r');
  try { fs.readSync(fd, b, 0, 4096, 0); } finally { fs.closeSync(fd); }
  if (type.startsWith('ext')) {
    if (b.readUInt16LE(1024 + 0x38) !== 0xef53) return -EINVAL;
    if (b.readUInt32LE(1024 + 0x18) > 6) return -EINVAL; // s_log_block_size
    if (b.readUInt32LE(1024) === 0 || b.readUInt32LE(1024 + 0x28) === 0) return -EINVAL; // inodes
    if (b.readUInt32LE(1024 + 0x20) === 0) return -EINVAL; // blocks per group
    return 0;
  }
  if (type === 'vfat') {
    const bps = b.readUInt16LE(11);
    if (![512, 1024, 2048, 4096].includes(bps) || b[13] === 0 || b[16] === 0) return -EINVAL;
    return 0;
  }
  return -ENODEV;
}

export function createFakeKernel(hostRoot: string, statsFile?: string): FakeKernel {
  const files = new Map<number, File>();
  const disks = new Map<number, { path: string; readOnly: boolean }>();
  const mounts = new Map<string, { host: string; readOnly: boolean }>();
  let chroot = '';
  let nextDisk = 0;
  const stats: FakeStats = { writes: {}, calls: {}, longNames: 0 };

  const newFd = (f: File) => { let fd = 0; while (files.has(fd)) fd++; files.set(fd, f); return fd; };
  const count = (name: string, ...paths: PathArg[]) => {
    stats.calls[name] = (stats.calls[name] ?? 0) + 1;
    for (const a of paths) {
      if (str(a).split('/').some((c) => Buffer.byteLength(c) > NAME_MAX)) stats.longNames++;
    }
  };

  /** Kernel path → host path (+ whether it is on a read-only mount), or -errno. */
  function resolve(kp: PathArg, dirfd = AT_FDCWD): { host: string; ro: boolean } | number {
    let s = str(kp);
    if (!s.startsWith('/')) {
      if (dirfd === AT_FDCWD) s = '/' + s;
      else {
        const f = files.get(dirfd);
        if (!f) return -EBADF;
        return { host: path.join(f.hostPath, s), ro: false };
      }
    }
    s = path.posix.normalize(chroot + s);
    const dev = /^\/dev\/vd([a-z])(\d*)$/.exec(s);
    if (dev) {
      const d = disks.get(dev[1]!.charCodeAt(0) - 97);
      if (!d) return -ENOENT;
      if (dev[2]) return -ENXIO; // partitions: not in the fake
      return { host: d.path, ro: true };
    }
    for (const [mp, m] of mounts) {
      if (s === mp || s.startsWith(mp + '/')) return { host: m.host + s.slice(mp.length), ro: m.readOnly };
    }
    return -ENOENT;
  }
  const withPath = async (name: string, kp: PathArg, write: boolean, fn: (h: string) => Promise<unknown> | unknown) => {
    count(name, kp);
    const r = resolve(kp);
    if (typeof r === 'number') return r;
    if (write && r.ro) return -EROFS;
    return wrap(() => fn(r.host));
  };
  const file = (fd: number) => files.get(fd);
  const fdRo = (f: File) => [...mounts.values()].some((m) => m.readOnly && f.hostPath.startsWith(m.host));

  async function statPath(kp: PathArg, follow: boolean): Promise<stat | number> {
    const r = resolve(kp);
    if (typeof r === 'number') return r;
    try { return toStat(await (follow ? fs.promises.stat : fs.promises.lstat)(r.host, { bigint: true })); } catch (e) { return errno(e); }
  }
  async function fstat(fd: number): Promise<stat | number> {
    const f = file(fd);
    if (!f) return -EBADF;
    try { return toStat(await promisify(fs.fstat)(f.host, { bigint: true }) as fs.BigIntStats); } catch (e) { return errno(e); }
  }
  async function doOpen(kp: PathArg, flags: number, mode = 0o666): Promise<number> {
    count('open', kp);
    const r = resolve(kp);
    if (typeof r === 'number') return r;
    if (r.ro && (flags & O_ACCMODE) !== O_RDONLY) return -EROFS;
    try {
      const host = await p.open(r.host, flags & ~0o2000000 /* O_CLOEXEC */, mode);
      return newFd({ host, refs: { n: 1 }, hostPath: r.host });
    } catch (e) { return errno(e); }
  }
  async function readDir(f: File): Promise<linux_dirent64[]> {
    const names = ['.', '..', ...await fs.promises.readdir(f.hostPath)];
    const out: linux_dirent64[] = [];
    let off = 0;
    for (const name of names) {
      try {
        const s = await fs.promises.lstat(path.join(f.hostPath, name));
        out.push({ ino: s.ino, off: ++off, type: dt_from_mode(s.mode), name, rawName: Buffer.from(name) });
      } catch { /* raced away */ }
    }
    return out;
  }
  const unsupported = async () => -ENOSYS;

  const sys: Sys = {
    openat: (dirfd, kp, flags, mode) => dirfd === AT_FDCWD ? doOpen(kp, flags, mode) : unsupported(),
    open: (kp, flags, mode) => doOpen(kp, flags, mode),
    async close(fd) {
      const f = file(fd);
      if (!f) return -EBADF;
      files.delete(fd);
      if (--f.refs.n === 0) return wrap(() => p.close(f.host));
      return 0;
    },
    async read(fd, buf) { const f = file(fd); if (!f) return -EBADF; try { return await p.read(f.host, buf, 0, buf.length, null); } catch (e) { return errno(e); } },
    async write(fd, buf) { const f = file(fd); if (!f) return -EBADF; try { return await p.write(f.host, buf, 0, buf.length, null); } catch (e) { return errno(e); } },
    async pread64(fd, buf, pos) {
      count('pread64');
      const f = file(fd);
      if (!f) return -EBADF;
      try { return await p.read(f.host, buf, 0, buf.length, pos); } catch (e) { return errno(e); }
    },
    async pwrite64(fd, buf, pos) {
      count('pwrite64');
      stats.writes[buf.length] = (stats.writes[buf.length] ?? 0) + 1;
      const f = file(fd);
      if (!f) return -EBADF;
      if (fdRo(f)) return -EROFS;
      try { return await p.write(f.host, buf, 0, buf.length, pos); } catch (e) { return errno(e); }
    },
    readv: unsupported, writev: unsupported, lseek: unsupported,
    fstat: (fd) => { count('fstat'); return fstat(fd); },
    async newfstatat(dirfd, kp, flags) {
      count('newfstatat', kp);
      if (flags & AT_EMPTY_PATH && str(kp) === '') return fstat(dirfd);
      return statPath(kp, !(flags & AT_SYMLINK_NOFOLLOW));
    },
    stat: (kp) => statPath(kp, true),
    lstat: (kp) => statPath(kp, false),
    statx: unsupported,
    async getdents64(fd, bytes) {
      count('getdents64');
      const f = file(fd);
      if (!f) return -EBADF;
      try {
        f.dir ??= { ents: await readDir(f), pos: 0 };
      } catch (e) { return errno(e); }
      const out: linux_dirent64[] = [];
      let used = 0;
      while (f.dir.pos < f.dir.ents.length) {
        const e = f.dir.ents[f.dir.pos]!;
        const reclen = (19 + e.rawName.length + 1 + 7) & ~7;
        if (used + reclen > bytes) { if (!out.length) return -EINVAL; break; }
        used += reclen;
        out.push(e);
        f.dir.pos++;
      }
      return out;
    },
    mkdirat: async (dirfd, kp, mode) => dirfd === AT_FDCWD ? sys.mkdir(kp, mode) : -ENOSYS,
    mkdir: (kp, mode) => withPath('mkdir', kp, true, (h) => fs.promises.mkdir(h, mode)),
    async unlinkat(dirfd, kp, flags) {
      if (dirfd !== AT_FDCWD) return -ENOSYS;
      return flags & AT_REMOVEDIR ? sys.rmdir(kp) : sys.unlink(kp);
    },
    unlink: (kp) => withPath('unlink', kp, true, (h) => fs.promises.unlink(h)),
    rmdir: (kp) => withPath('rmdir', kp, true, (h) => fs.promises.rmdir(h)),
    async renameat2(od, op, nd, np, flags) {
      if (od !== AT_FDCWD || nd !== AT_FDCWD) return -ENOSYS;
      if (flags) return -EINVAL;
      return sys.rename(op, np);
    },
    async rename(a, b) {
      count('rename', a, b);
      const ra = resolve(a), rb = resolve(b);
      if (typeof ra === 'number') return ra;
      if (typeof rb === 'number') return rb;
      if (ra.ro) return -EROFS;
      return wrap(() => fs.promises.rename(ra.host, rb.host));
    },
    linkat: async (od, op, nd, np, flags) => od !== AT_FDCWD || nd !== AT_FDCWD ? -ENOSYS : flags ? -EINVAL : sys.link(op, np),
    async link(a, b) {
      count('link', a, b);
      const ra = resolve(a), rb = resolve(b);
      if (typeof ra === 'number') return ra;
      if (typeof rb === 'number') return rb;
      if (ra.ro) return -EROFS;
      return wrap(() => fs.promises.link(ra.host, rb.host));
    },
    symlinkat: async (target, dirfd, kp) => dirfd === AT_FDCWD ? sys.symlink(target, kp) : -ENOSYS,
    symlink: (target, kp) => withPath('symlink', kp, true, (h) => fs.promises.symlink(str(target), h)),
    readlinkat: (async (dirfd: number, kp: PathArg, buf?: Uint8Array) =>
      dirfd === AT_FDCWD ? (buf ? sys.readlink(kp, buf) : sys.readlink(kp)) : -ENOSYS) as Sys['readlinkat'],
    readlink: (async (kp: PathArg, buf?: Uint8Array) => {
      count('readlink', kp);
      const r = resolve(kp);
      if (typeof r === 'number') return r;
      try {
        if (!buf) return await fs.promises.readlink(r.host);
        const t = await fs.promises.readlink(r.host, { encoding: 'buffer' });
        buf.set(t.subarray(0, buf.length));
        return Math.min(t.length, buf.length);
      } catch (e) { return errno(e); }
    }) as Sys['readlink'],
    async fchmod(fd, mode) { const f = file(fd); return f ? wrap(() => promisify(fs.fchmod)(f.host, mode)) : -EBADF; },
    async fchmodat(dirfd, kp, mode) {
      if (dirfd !== AT_FDCWD) return -ENOSYS;
      return withPath('chmod', kp, true, (h) => fs.promises.chmod(h, mode));
    },
    chmod: (kp, mode) => withPath('chmod', kp, true, (h) => fs.promises.chmod(h, mode)),
    async fchown(fd, uid, gid) { const f = file(fd); return f ? wrap(() => promisify(fs.fchown)(f.host, uid, gid)) : -EBADF; },
    fchownat: async (dirfd, kp, uid, gid, flags) =>
      dirfd !== AT_FDCWD ? -ENOSYS : flags & AT_SYMLINK_NOFOLLOW ? sys.lchown(kp, uid, gid) : sys.chown(kp, uid, gid),
    chown: (kp, uid, gid) => withPath('chown', kp, true, (h) => fs.promises.chown(h, uid, gid)),
    lchown: (kp, uid, gid) => withPath('lchown', kp, true, async (h) => {
      // node rejects -1 ("leave it"): fill in the current owner.
      const s = await fs.promises.lstat(h);
      await fs.promises.lchown(h, uid < 0 ? s.uid : uid, gid < 0 ? s.gid : gid);
    }),
    truncate: (kp, len) => withPath('truncate', kp, true, (h) => fs.promises.truncate(h, len)),
    async ftruncate(fd, len) { const f = file(fd); return f ? wrap(() => promisify(fs.ftruncate)(f.host, len)) : -EBADF; },
    fallocate: unsupported,
    async utimensat(dirfd, kp, times, flags) {
      count('utimensat');
      let host: string;
      if (kp === null) {
        const f = file(dirfd);
        if (!f) return -EBADF;
        host = f.hostPath;
      } else {
        const r = resolve(kp);
        if (typeof r === 'number') return r;
        if (r.ro) return -EROFS;
        host = r.host;
      }
      return wrap(async () => {
        const cur = kp === null ? await fs.promises.stat(host) : await fs.promises.lstat(host);
        const pick = (t: timespec64 | undefined, old: number) =>
          !t || t.nsec === UTIME_NOW ? Date.now() / 1000 : t.nsec === UTIME_OMIT ? old / 1000 : t.sec + t.nsec / 1e9;
        const a = pick(times?.[0], cur.atimeMs), m = pick(times?.[1], cur.mtimeMs);
        if (flags & AT_SYMLINK_NOFOLLOW) await fs.promises.lutimes(host, a, m);
        else await fs.promises.utimes(host, a, m);
      });
    },
    async faccessat(dirfd, kp, mode) { return dirfd === AT_FDCWD ? sys.access(kp, mode) : -ENOSYS; },
    access: (kp, mode) => withPath('access', kp, false, (h) => fs.promises.access(h, mode)),
    mknodat: async (dirfd, kp, mode, dev) => dirfd === AT_FDCWD ? sys.mknod(kp, mode, dev) : -ENOSYS,
    mknod: (kp, mode, _dev) => withPath('mknod', kp, true, async (h) => {
      if ((mode & S_IFMT) !== S_IFREG && (mode & S_IFMT) !== 0) throw Object.assign(new Error('mknod'), { errno: -EPERM });
      await fs.promises.writeFile(h, '', { flag: 'wx', mode: mode & 0o7777 });
    }),
    umask: async () => 0o022,
    chdir: unsupported, fchdir: unsupported,
    getcwd: async () => '/',
    async chroot(kp) {
      const s = path.posix.normalize(chroot + str(kp));
      if (![...mounts.keys()].some((mp) => s === mp || s.startsWith(mp + '/'))) return -ENOENT;
      chroot = s === '/' ? '' : s;
      return 0;
    },
    async dup(fd) {
      const f = file(fd);
      if (!f) return -EBADF;
      f.refs.n++;
      return newFd({ ...f, dir: undefined });
    },
    dup2: unsupported, dup3: unsupported, fcntl: unsupported, ioctl: unsupported,
    async statfs(kp) {
      const r = resolve(kp);
      if (typeof r === 'number') return r;
      try {
        const s = await fs.promises.statfs(r.host);
        const out: statfs = {
          type: s.type, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
          files: s.files, ffree: s.ffree, fsid: [0, 0], namelen: NAME_MAX, frsize: s.bsize,
          flags: r.ro ? MS_RDONLY : 0,
        };
        return out;
      } catch (e) { return errno(e); }
    },
    fstatfs: unsupported,
    sync: async () => 0,
    syncfs: async () => 0,
    async fsync(fd) { const f = file(fd); return f ? wrap(() => promisify(fs.fsync)(f.host)) : -EBADF; },
    async fdatasync(fd) { const f = file(fd); return f ? wrap(() => promisify(fs.fdatasync)(f.host)) : -EBADF; },
    // node has no xattr API: the fake's filesystem has no xattr support.
    setxattr: async () => -EOPNOTSUPP, lsetxattr: async () => -EOPNOTSUPP, fsetxattr: async () => -EOPNOTSUPP,
    getxattr: async () => -EOPNOTSUPP, lgetxattr: async () => -EOPNOTSUPP, fgetxattr: async () => -EOPNOTSUPP,
    listxattr: async () => [], llistxattr: async () => [], flistxattr: async () => [],
    removexattr: async () => -EOPNOTSUPP, lremovexattr: async () => -EOPNOTSUPP, fremovexattr: async () => -EOPNOTSUPP,
    setxattrat: async () => -EOPNOTSUPP, getxattrat: async () => -EOPNOTSUPP,
    listxattrat: async () => [], removexattrat: async () => -EOPNOTSUPP,
    mount: unsupported, umount2: unsupported, nanosleep: unsupported,
    clock_gettime: async () => ({ sec: Math.floor(Date.now() / 1000), nsec: (Date.now() % 1000) * 1e6 }),
    clock_settime: unsupported,
    getpid: async () => 1, gettid: async () => 1, getuid: async () => 0, geteuid: async () => 0,
    getgid: async () => 0, getegid: async () => 0, setuid: unsupported, setgid: unsupported,
    setresuid: unsupported, setresgid: unsupported,
    getresuid: async () => [0, 0, 0], getresgid: async () => [0, 0, 0],
    setgroups: unsupported, getgroups: async () => [],
    reboot: unsupported,
  };

  return {
    sys,
    stats,
    async diskAdd(store) {
      if (!store.path) return -EINVAL;
      try {
        const fd = await p.open(store.path, store.readOnly ? 'r' : 'r+');
        await p.close(fd);
      } catch (e) { return errno(e); }
      const id = nextDisk++;
      disks.set(id, { path: store.path, readOnly: !!store.readOnly });
      return id;
    },
    async mountDev(diskId, part, fsType, flags) {
      const d = disks.get(diskId);
      if (!d) return -ENXIO;
      if (part !== 0) return -ENXIO;
      const r = checkSuperblock(d.path, fsType);
      if (r < 0) return r;
      const mp = `/mnt/vd${String.fromCharCode(97 + diskId)}`;
      if (!fs.statSync(hostRoot, { throwIfNoEntry: false })?.isDirectory()) return -ENOTDIR;
      mounts.set(mp, { host: path.resolve(hostRoot), readOnly: !!(flags & MS_RDONLY) || d.readOnly });
      return mp;
    },
    async umountDev(diskId) {
      const mp = `/mnt/vd${String.fromCharCode(97 + diskId)}`;
      if (!mounts.delete(mp)) return -EINVAL;
      chroot = '';
      return 0;
    },
    async diskRemove(diskId) { return disks.delete(diskId) ? 0 : -ENXIO; },
    async halt() {
      for (const [fd] of files) await sys.close(fd);
      if (statsFile) fs.writeFileSync(statsFile, JSON.stringify(stats));
    },
  };
}
