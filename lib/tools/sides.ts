/*
 * The two sides a copy runs between, behind one interface: the host's filesystem (Node's
 * fs) and the mounted image (the kernel's system calls). cptofs copies host -> image,
 * cpfromfs image -> host, with the same code (as LKL's cptofs.c switches on `cptofs` in
 * every helper). Paths are byte strings (Buffers): names in images need not be UTF-8.
 * Every operation resolves to its result or to -errno; none throws for an errno.
 *
 * Node's fs lacks a few calls the host side needs; it runs the standard tools for them, only
 * where they matter (with -p, or for files with holes): getfattr/setfattr (attr) for
 * extended attributes and ACLs, touch(1) for nanosecond times, mknod(1) for fifos and device
 * nodes, and perl's sysseek (lseek(2) with SEEK_DATA/SEEK_HOLE) to find the holes of a file.
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { paxTime } from './tar.js';
import type { Sys } from '../kernel/include/sys.js';
import {
  AT_FDCWD, AT_SYMLINK_NOFOLLOW, PATH_MAX, EINVAL, EIO, ENODATA, ENOSYS, ENXIO, EOPNOTSUPP, SEEK_DATA, SEEK_HOLE, strerror, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_TRUNC,
  O_WRONLY, S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK, major as kmajor, makedev, minor as kminor,
  type stat, type timespec64,
} from '../kernel/include/uapi.js';
import { hostErrno } from './image.js';

export interface FStat {
  mode: number; uid: number; gid: number; size: number; nlink: number;
  /** "dev:ino", to find hard links. */
  id: string;
  /** Device number of a device node. */
  major: number; minor: number;
  atime: timespec64; mtime: timespec64; ctime: timespec64;
  /** 512-byte blocks allocated (fewer than the size needs: the file may have holes). */
  blocks: number;
}

/** Data extents of a file, [offset, length], in order; null = not known (read it all). */
export type DataMap = [number, number][] | null;

/**
 * A name in a directory listing that must not be used as a path component: empty, "." or
 * "..", or holding a slash or a NUL (only a damaged filesystem lists such names; used as they
 * are they would lead out of the destination).
 */
export function badName(n: Buffer): boolean {
  return n.length === 0 || n.includes(0x2f) || n.includes(0) || (n[0] === 0x2e && (n.length === 1 || (n.length === 2 && n[1] === 0x2e)));
}

export type R<T> = T | number;

export interface Side {
  /** 'host' or 'image' (for messages). */
  readonly kind: 'host' | 'image';
  /** Holes can be left by writing only the data extents and truncating at the end. */
  readonly holes: boolean;
  lstat(p: Buffer): Promise<R<FStat>>;
  stat(p: Buffer): Promise<R<FStat>>;
  /** Names in a directory (without . and ..). */
  readdir(p: Buffer): Promise<R<Buffer[]>>;
  readlink(p: Buffer): Promise<R<Buffer>>;
  openRead(p: Buffer): Promise<number>;
  /** Create or truncate a regular file for writing (does not follow a final symlink). */
  openWrite(p: Buffer, mode: number): Promise<number>;
  read(fd: number, buf: Uint8Array): Promise<number>;
  /** Read at `pos` (0 bytes: end of file). */
  pread(fd: number, buf: Uint8Array, pos: number): Promise<number>;
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
  /** Set atime and mtime (to the nanosecond), not following a final symlink. */
  utimes(p: Buffer, atime: timespec64, mtime: timespec64): Promise<number>;
  /** The data extents of the open file `fd` (at path p) of `size` bytes (SEEK_DATA/SEEK_HOLE). */
  dataMap(fd: number, p: Buffer, size: number): Promise<R<DataMap>>;
  /** Every extended attribute (ACLs as system.posix_acl_*), not following a final symlink. */
  listXattrs(p: Buffer): Promise<R<Map<string, Buffer>>>;
  /** Set one extended attribute, not following a final symlink. */
  setXattr(p: Buffer, name: string, value: Buffer): Promise<number>;
  /** A hint: listXattrs will be asked for these paths soon (the host reads them in one go). */
  prefetchXattrs?(paths: Buffer[]): Promise<void>;
}

/* ---- the image: the kernel's system calls ---- */

function fromKstat(s: stat): FStat {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, id: `${s.dev}:${s.ino}`,
    major: kmajor(s.rdev), minor: kminor(s.rdev), atime: s.atime, mtime: s.mtime, ctime: s.ctime, blocks: s.blocks,
  };
}

/** The data extents of an open file through lseek SEEK_DATA / SEEK_HOLE. */
async function seekMap(lseek: (off: number, whence: number) => Promise<number>, size: number): Promise<R<DataMap>> {
  const map: [number, number][] = [];
  let off = 0;
  while (off < size) {
    const d = await lseek(off, SEEK_DATA);
    if (d === -ENXIO) break; // only a hole from off to the end
    if (d === -EINVAL || d === -EOPNOTSUPP || d === -ENOSYS) return null;
    if (d < 0) return d;
    if (d >= size) break;
    let h = await lseek(d, SEEK_HOLE);
    if (h < 0) return h;
    if (h > size) h = size;
    if (h <= d) return null; // makes no sense: read it all
    map.push([d, h - d]);
    off = h;
  }
  return map;
}

/**
 * @param holes whether files written here may have holes (false for FAT, which has none:
 *   writing past the end would only fill zeros, so the zeros are written).
 */
export function imageSide(sys: Sys, holes = true): Side {
  const st = async (p: Promise<stat | number>) => {
    const r = await p;
    return typeof r === 'number' ? r : fromKstat(r);
  };
  return {
    kind: 'image',
    holes,
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
      // The target's bytes (it need not be UTF-8), as readlink(2) gives them.
      const buf = Buffer.alloc(PATH_MAX);
      const n = await sys.readlink(p, buf);
      return n < 0 ? n : Buffer.from(buf.subarray(0, n));
    },
    openRead: (p) => sys.open(p, O_RDONLY | O_NOFOLLOW, 0),
    openWrite: (p, mode) => sys.open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode),
    read: (fd, buf) => sys.read(fd, buf),
    pread: (fd, buf, pos) => sys.pread64(fd, buf, pos),
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
    async dataMap(fd, _p, size) {
      const r = await seekMap((off, whence) => sys.lseek(fd, off, whence), size);
      await sys.lseek(fd, 0, 0);
      return r;
    },
    async listXattrs(p) {
      const names = await sys.llistxattr(p);
      if (typeof names === 'number') return names;
      const out = new Map<string, Buffer>();
      for (const name of names) {
        const v = await sys.lgetxattr(p, name);
        if (v === -ENODATA) continue; // gone meanwhile
        if (typeof v === 'number') return v;
        out.set(name, Buffer.from(v));
      }
      return out;
    },
    setXattr: (p, name, value) => sys.lsetxattr(p, name, value, 0),
  };
}

/* ---- the host: Node's fs ---- */

const NS = 1_000_000_000n;
function ts(ns: bigint): timespec64 {
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
    atime: ts(s.atimeNs), mtime: ts(s.mtimeNs), ctime: ts(s.ctimeNs), blocks: Number(s.blocks),
  };
}

/** The errno a tool's "...: MESSAGE" line names (strerror text), or EIO. */
function errnoOfMessage(msg: string): number {
  for (let n = 1; n < 134; n++) {
    const m = strerror(n);
    if (!m.startsWith('Unknown') && msg.includes(m)) return n;
  }
  return EIO;
}

/** An argument for a host tool: a string, or bytes (a path, which need not be UTF-8). */
type Arg = string | Buffer;

const isUtf8 = (b: Buffer) => Buffer.from(b.toString('utf8'), 'utf8').equals(b);

/**
 * Node passes a child's arguments as UTF-8 strings, so a path that is not valid UTF-8 (a byte
 * 0xff) would reach the tool changed. Such a command line goes through perl (Essential on
 * Debian) instead: every argument hex-encoded, decoded there and exec'd, bytes unchanged.
 */
const EXEC_HEX = 'my @a = map { pack("H*", $_) } @ARGV; exec { $a[0] } @a; exit 127';

export function spawnArgs(cmd: string, args: readonly Arg[]): [string, string[]] {
  if (args.every((a) => typeof a === 'string' || isUtf8(a))) return [cmd, args.map((a) => a.toString())];
  return ['perl', ['-e', EXEC_HEX, ...[cmd, ...args].map((a) => Buffer.from(a).toString('hex'))]];
}

/** Runs a host tool; resolves to its stdout, or -errno (ENOSYS when the tool is missing). */
function tool(cmd: string, args: readonly Arg[]): Buffer | number {
  const [c, a] = spawnArgs(cmd, args);
  const r = spawnSync(c, a, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  if (r.error || (c !== cmd && r.status === 127 && !r.stderr.length)) return -ENOSYS;
  if (r.status !== 0) return -errnoOfMessage(r.stderr.toString());
  return r.stdout;
}

/** getfattr's escapes in names: backslash and three octal digits (one byte each). */
const unescapeName = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** A path as the key parseGetfattr gives it: one char per byte. */
export const byteKey = (p: Buffer) => p.toString('latin1');
/** An attribute name from parseGetfattr (bytes) as the string the system calls take (UTF-8). */
const attrName = (s: string) => /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'latin1').toString('utf8');

/**
 * `getfattr -h -d -m - -e hex --absolute-names` output: path -> name -> value. The text is
 * taken one char per byte (latin1: paths need not be UTF-8), so the paths are byteKey()s.
 */
export function parseGetfattr(text: string): Map<string, Map<string, Buffer>> {
  const all = new Map<string, Map<string, Buffer>>();
  let out = new Map<string, Buffer>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      out = new Map();
      all.set(unescapeName(line.slice(8)), out);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = attrName(unescapeName(eq < 0 ? line : line.slice(0, eq)));
    const v = eq < 0 ? '' : line.slice(eq + 1);
    if (v.startsWith('0x')) out.set(name, Buffer.from(v.slice(2), 'hex'));
    else if (v.startsWith('"')) out.set(name, Buffer.from(JSON.parse(Buffer.from(v, 'latin1').toString('utf8')) as string, 'utf8'));
    else out.set(name, Buffer.alloc(0));
  }
  return all;
}

const PREFETCH_BATCH = 256;

/** The holes of a host file: Node has no lseek, perl's sysseek passes SEEK_DATA/SEEK_HOLE through. */
const PERL_MAP = 'open(my $f, "<", $ARGV[0]) or exit 2; my $s = $ARGV[1]; my $o = 0; ' +
  'while ($o < $s) { my $d = sysseek($f, $o, 3); if (!defined $d) { exit($!{ENXIO} ? 0 : 3) } ' +
  'my $h = sysseek($f, $d, 4); exit 3 unless defined $h; print 0 + $d, " ", 0 + $h, "\\n"; $o = $h }';

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
const toDate = (t: timespec64) => t.sec + t.nsec / 1e9;

export function hostSide(): Side {
  /** Xattrs read ahead by prefetchXattrs: path -> name -> value (each used once). */
  const cache = new Map<string, Map<string, Buffer>>();
  return {
    kind: 'host',
    holes: true,
    lstat: async (p) => h(() => fromHostStat(fs.lstatSync(p, { bigint: true }))),
    stat: async (p) => h(() => fromHostStat(fs.statSync(p, { bigint: true }))),
    readdir: async (p) => h(() => fs.readdirSync(p, { encoding: 'buffer' })),
    readlink: async (p) => h(() => fs.readlinkSync(p, { encoding: 'buffer' })),
    openRead: async (p) => h(() => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)),
    openWrite: async (p, mode) => h(() => fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, mode)),
    read: async (fd, buf) => h(() => fs.readSync(fd, buf, 0, buf.length, null)),
    pread: async (fd, buf, pos) => h(() => fs.readSync(fd, buf, 0, buf.length, pos)),
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
      const [c, args] = spawnArgs('mknod', ['-m', (mode & 0o7777).toString(8), p, ...kind]);
      const r = spawnSync(c, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.error || (c !== 'mknod' && r.status === 127 && !r.stderr.length)) return -ENOSYS;
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
    async utimes(p, a, m) {
      // Whole seconds go through Node; nanoseconds through touch(1) (-h: the link itself).
      if (a.nsec === 0 && m.nsec === 0) return h(() => { fs.lutimesSync(p, toDate(a), toDate(m)); return 0; });
      for (const [flag, t] of [['-a', a], ['-m', m]] as const) {
        const r = tool('touch', ['-h', flag, '-d', `@${paxTime(t)}`, '--', p]);
        if (typeof r === 'number') return r;
      }
      return 0;
    },
    async dataMap(_fd, p, size) {
      const r = tool('perl', ['-e', PERL_MAP, '--', p, String(size)]);
      if (typeof r === 'number') return null; // no perl, or no SEEK_DATA here: read it all
      const map: [number, number][] = [];
      for (const line of r.toString().split('\n')) {
        const m = /^(\d+) (\d+)$/.exec(line);
        if (!m) continue;
        const d = Number(m[1]), e = Math.min(size, Number(m[2]));
        if (e > d) map.push([d, e - d]);
      }
      return map;
    },
    async prefetchXattrs(paths) {
      // One getfattr for many paths (a spawn per file is slow); paths it does not list have
      // none. If anything goes wrong (an error on one path), each is asked on its own later.
      for (let i = 0; i < paths.length; i += PREFETCH_BATCH) {
        const batch = paths.slice(i, i + PREFETCH_BATCH);
        const r = tool('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', ...batch]);
        if (typeof r === 'number') return;
        const got = parseGetfattr(r.toString('latin1'));
        for (const p of batch) cache.set(byteKey(p), got.get(byteKey(p)) ?? new Map());
      }
    },
    async listXattrs(p) {
      const key = byteKey(p);
      const hit = cache.get(key);
      if (hit) {
        cache.delete(key);
        return hit;
      }
      const r = tool('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', p]);
      if (typeof r === 'number') return r;
      return parseGetfattr(r.toString('latin1')).get(key) ?? new Map();
    },
    async setXattr(p, name, value) {
      const r = tool('setfattr', ['-h', '-n', name, '-v', value.length ? `0x${value.toString('hex')}` : '', '--', p]);
      return typeof r === 'number' ? r : 0;
    },
  };
}
