/*
 * The two sides a copy runs between, behind one interface: the host's filesystem (Node's
 * fs) and the mounted image (the kernel's system calls). cptofs copies host -> image,
 * cpfromfs image -> host, with the same code (as LKL's cptofs.c switches on `cptofs` in
 * every helper). Paths are byte strings (Buffers): names in images need not be UTF-8.
 * Every operation resolves to its result or to -errno; none throws for an errno.
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { Sys } from '../kernel/include/sys.js';
import {
  AT_FDCWD, AT_SYMLINK_NOFOLLOW, EINVAL, ENOSYS, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_TRUNC,
  O_WRONLY, S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK, major as kmajor, makedev, minor as kminor,
  type Stat, type Timespec,
} from '../kernel/include/uapi.js';
import { hostErrno } from './image.js';

export interface FStat {
  mode: number; uid: number; gid: number; size: number; nlink: number;
  /** "dev:ino", to find hard links. */
  id: string;
  /** Device number of a device node. */
  major: number; minor: number;
  atime: Timespec; mtime: Timespec;
}

export type R<T> = T | number;

export interface Side {
  /** 'host' or 'image' (for messages). */
  readonly kind: 'host' | 'image';
  /** Holes can be left by skipping zero chunks and truncating at the end. */
  readonly sparseWrites: boolean;
  lstat(p: Buffer): Promise<R<FStat>>;
  stat(p: Buffer): Promise<R<FStat>>;
  /** Names in a directory (without . and ..). */
  readdir(p: Buffer): Promise<R<Buffer[]>>;
  readlink(p: Buffer): Promise<R<Buffer>>;
  openRead(p: Buffer): Promise<number>;
  /** Create or truncate a regular file for writing (does not follow a final symlink). */
  openWrite(p: Buffer, mode: number): Promise<number>;
  read(fd: number, buf: Uint8Array): Promise<number>;
  /** Write all of buf at pos; resolves to the byte count or -errno. */
  pwrite(fd: number, buf: Uint8Array, pos: number): Promise<number>;
  ftruncate(fd: number, size: number): Promise<number>;
  fsyncClose(fd: number): Promise<number>;
  close(fd: number): Promise<number>;
  mkdir(p: Buffer, mode: number): Promise<number>;
  symlink(target: Buffer, p: Buffer): Promise<number>;
  link(existing: Buffer, p: Buffer): Promise<number>;
  /** A fifo, socket or device node (mode carries the type). */
  mknod(p: Buffer, mode: number, major: number, minor: number): Promise<number>;
  unlink(p: Buffer): Promise<number>;
  lchown(p: Buffer, uid: number, gid: number): Promise<number>;
  chmod(p: Buffer, mode: number): Promise<number>;
  /** Set atime and mtime, not following a final symlink. */
  utimes(p: Buffer, atime: Timespec, mtime: Timespec): Promise<number>;
}

/* ---- the image: the kernel's system calls ---- */

function fromKstat(s: Stat): FStat {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, id: `${s.dev}:${s.ino}`,
    major: kmajor(s.rdev), minor: kminor(s.rdev), atime: s.atime, mtime: s.mtime,
  };
}

export function imageSide(sys: Sys): Side {
  const st = async (p: Promise<Stat | number>) => {
    const r = await p;
    return typeof r === 'number' ? r : fromKstat(r);
  };
  return {
    kind: 'image',
    sparseWrites: false,
    lstat: (p) => st(sys.lstat(p)),
    stat: (p) => st(sys.stat(p)),
    async readdir(p) {
      const fd = await sys.open(p, O_RDONLY | O_DIRECTORY, 0);
      if (fd < 0) return fd;
      const out: Buffer[] = [];
      try {
        for (;;) {
          const r = await sys.getdents64(fd, 65536);
          if (typeof r === 'number') return r;
          if (r.length === 0) break;
          for (const d of r) {
            if (d.name === '.' || d.name === '..') continue;
            out.push(Buffer.from(d.rawName));
          }
        }
      } finally {
        await sys.close(fd);
      }
      return out;
    },
    async readlink(p) {
      const r = await sys.readlink(p);
      return typeof r === 'number' ? r : Buffer.from(r, 'utf8');
    },
    openRead: (p) => sys.open(p, O_RDONLY | O_NOFOLLOW, 0),
    openWrite: (p, mode) => sys.open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode),
    read: (fd, buf) => sys.read(fd, buf),
    async pwrite(fd, buf, pos) {
      let done = 0;
      while (done < buf.length) {
        const n = await sys.pwrite64(fd, buf.subarray(done), pos + done);
        if (n < 0) return n;
        if (n === 0) return -EINVAL;
        done += n;
      }
      return done;
    },
    ftruncate: (fd, size) => sys.ftruncate(fd, size),
    async fsyncClose(fd) {
      return sys.close(fd);
    },
    close: (fd) => sys.close(fd),
    mkdir: (p, mode) => sys.mkdir(p, mode),
    symlink: (t, p) => sys.symlink(t, p),
    link: (a, b) => sys.link(a, b),
    mknod: (p, mode, maj, min) => sys.mknod(p, mode, makedev(maj, min)),
    unlink: (p) => sys.unlink(p),
    lchown: (p, u, g) => sys.lchown(p, u, g),
    chmod: (p, mode) => sys.chmod(p, mode),
    utimes: (p, a, m) => sys.utimensat(AT_FDCWD, p, [a, m], AT_SYMLINK_NOFOLLOW),
  };
}

/* ---- the host: Node's fs ---- */

const NS = 1_000_000_000n;
function ts(ns: bigint): Timespec {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) { nsec += NS; sec -= 1n; }
  return { sec: Number(sec), nsec: Number(nsec) };
}

function fromHostStat(s: fs.BigIntStats): FStat {
  const rdev = s.rdev;
  return {
    mode: Number(s.mode), uid: Number(s.uid), gid: Number(s.gid), size: Number(s.size), nlink: Number(s.nlink),
    id: `${s.dev}:${s.ino}`,
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
    atime: ts(s.atimeNs), mtime: ts(s.mtimeNs),
  };
}

/** Runs a host call, mapping a thrown errno to -errno. */
function h<T>(fn: () => T): R<T> {
  try {
    return fn();
  } catch (e) {
    const n = hostErrno(e);
    if (n) return -n;
    throw e;
  }
}

/** Host timestamps go through a double (Node has no nanosecond utimensat): ~0.2 us precision. */
const toDate = (t: Timespec) => t.sec + t.nsec / 1e9;

export function hostSide(): Side {
  return {
    kind: 'host',
    sparseWrites: true,
    lstat: async (p) => h(() => fromHostStat(fs.lstatSync(p, { bigint: true }))),
    stat: async (p) => h(() => fromHostStat(fs.statSync(p, { bigint: true }))),
    readdir: async (p) => h(() => fs.readdirSync(p, { encoding: 'buffer' })),
    readlink: async (p) => h(() => fs.readlinkSync(p, { encoding: 'buffer' })),
    openRead: async (p) => h(() => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)),
    openWrite: async (p, mode) => h(() => fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, mode)),
    read: async (fd, buf) => h(() => fs.readSync(fd, buf, 0, buf.length, null)),
    pwrite: async (fd, buf, pos) => h(() => {
      let done = 0;
      while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, pos + done);
      return done;
    }),
    ftruncate: async (fd, size) => h(() => { fs.ftruncateSync(fd, size); return 0; }),
    fsyncClose: async (fd) => h(() => { fs.closeSync(fd); return 0; }),
    close: async (fd) => h(() => { fs.closeSync(fd); return 0; }),
    mkdir: async (p, mode) => h(() => { fs.mkdirSync(p, { mode }); return 0; }),
    symlink: async (t, p) => h(() => { fs.symlinkSync(t, p); return 0; }),
    link: async (a, b) => h(() => { fs.linkSync(a, b); return 0; }),
    async mknod(p, mode, maj, min) {
      // Node has no mknod(2): mknod(1) from coreutils makes fifos and device nodes.
      const type = mode & S_IFMT;
      if (type === S_IFSOCK) return -EINVAL; // only bind(2) makes sockets
      const kind = type === S_IFIFO ? ['p'] : type === S_IFCHR ? ['c', String(maj), String(min)] : type === S_IFBLK ? ['b', String(maj), String(min)] : null;
      if (!kind) return -EINVAL;
      const r = spawnSync('mknod', ['-m', (mode & 0o7777).toString(8), p.toString('utf8'), ...kind], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.error) return -ENOSYS;
      if (r.status !== 0) {
        const msg = r.stderr.toString();
        if (/Operation not permitted/.test(msg)) return -1;
        if (/File exists/.test(msg)) return -17;
        if (/No such file/.test(msg)) return -2;
        if (/Permission denied/.test(msg)) return -13;
        return -EINVAL;
      }
      return 0;
    },
    unlink: async (p) => h(() => { fs.unlinkSync(p); return 0; }),
    lchown: async (p, u, g) => h(() => { fs.lchownSync(p, u, g); return 0; }),
    chmod: async (p, mode) => h(() => { fs.chmodSync(p, mode); return 0; }),
    utimes: async (p, a, m) => h(() => { fs.lutimesSync(p, toDate(a), toDate(m)); return 0; }),
  };
}
