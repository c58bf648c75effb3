// One system-call conformance suite over every filesystem (issue 9), as ZenFS runs one suite
// over every backend: the same behaviours on ramfs, vfat (mkfs.vfat images, FAT32 and FAT16),
// ext4 (an `mke2fs -O ^has_journal` image, read-write), ext2 through the ext4 driver, and a
// journalled ext4 image (mounted with MS_RDONLY, and without it, where lkl-ts mounts it
// read-only): there every modifying call must be EROFS. Each filesystem's documented
// differences from POSIX are in the one table FILESYSTEMS below and nowhere else: the tests
// read the table, they do not test for filesystem names.
//
// After the behaviours each image is unmounted, mounted again (the tree must read back the
// same: modes, sizes, link counts, mtimes, contents, targets) and checked with e2fsck -fn /
// fsck.vfat -n. ENOSPC runs on small images of their own (FAT12, 2 MiB ext4/ext2), and a
// FAT16 root directory is filled up; both are checked the same way afterwards.
import t, { type Test } from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  AT_FDCWD, AT_REMOVEDIR, DT_DIR, DT_REG, EACCES, EBADF, EBUSY, EEXIST, EFBIG, EINVAL, EISDIR, ELOOP,
  ENAMETOOLONG, ENODATA, ENOENT, ENXIO, EOPNOTSUPP, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
  SEEK_DATA, SEEK_HOLE,
  ENOSPC, ENOTDIR, ENOTEMPTY, EPERM, EROFS, MS_RDONLY, O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL,
  O_NOFOLLOW, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, RENAME_EXCHANGE, RENAME_NOREPLACE, SEEK_CUR, SEEK_END,
  SEEK_SET, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, UTIME_OMIT, errnoName, startKernel,
  type linux_dirent64, type Kernel, type stat, type statfs, type Sys,
} from '../../lib/index.js';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { asUser, dec, enc, readBytes } from './helpers.js';

// ---------------------------------------------------------------------------------------
// The table: every filesystem and how it differs from POSIX (ext4 is the reference).

interface Profile {
  name: string;
  /** How to get it: a fresh ramfs mount, or an image made by a host tool. */
  kind: 'ramfs' | 'vfat' | 'ext4' | 'ext4-ro';
  /** The image (small: for ENOSPC), made in dir; mounted as `fsType`. */
  mkfs?: (dir: string, small: boolean) => Promise<string>;
  fsType: string;
  /** Mounted read-only: every modifying call must be EROFS. */
  readOnly: boolean;
  /** Flags for mount(2) (MS_RDONLY for the read-only profiles). */
  mountFlags: number;
  /** Largest file size (s_maxbytes): past it, writes and truncates are EFBIG. */
  maxBytes: number;
  /** What symlink(2), link(2), mknod(2) of a fifo return when unsupported (0: supported). */
  symlink: number; link: number; mknodFifo: number;
  /** Owners: 'posix' (any uid/gid for root), or 'mount' (only the mount's uid/gid, else EPERM). */
  owners: 'posix' | 'mount';
  /** Mode of a file created with 0666 under umask 022. */
  newFileMode: number;
  /** chmods in sequence on one fresh file: [mode, result (0 or -errno), permission bits afterwards]. */
  chmod: [mode: number, result: number, after: number][];
  caseInsensitive: boolean;
  /** Trailing dots are not part of a name ("x." is "x"). */
  stripsTrailingDots: boolean;
  /** Characters that may not appear in a name (EINVAL). */
  badNameChars: string;
  /** Timestamp granularity in ns (times are truncated to it). */
  mtimeRes: number; atimeRes: number;
  /** A write past EOF leaves a hole (st_blocks below the size). */
  holes: boolean;
  /** lseek SEEK_DATA/SEEK_HOLE find holes (else the whole file is data, as generic_file_llseek). */
  seekHole: boolean;
  /** st_blocks counts the data written. */
  blocks: boolean;
  /** statfs counts blocks: f_bfree shrinks after a write and comes back after unlink. */
  statfsCounts: boolean;
  statfsType: number; namelen: number;
  /** What renameat2(RENAME_EXCHANGE) returns (0: supported). */
  exchange: number;
  /** st_ino of a file stays the same across a remount. */
  stableIno: boolean;
  /** st_ctime is stored on disk (else a remount gives another value). */
  ctimeStored: boolean;
  /** Tree survives an unmount (images), checked by remounting. */
  persistent: boolean;
  /** Small image for ENOSPC, or none. */
  enospc: boolean;
  /** What setxattr of a user.* attribute returns (0: supported). */
  userXattr: number;
  /** fallocate results: mode 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE. */
  fallocate: [mode0: number, keepSize: number, punchHole: number];
  /** A fixed-size root directory (FAT12/16) of this many entries: the next create is ENOSPC. */
  rootDirEntries?: number;
}

const POSIX: Omit<Profile, 'name' | 'kind' | 'fsType'> = {
  readOnly: false, mountFlags: 0, maxBytes: Number.MAX_SAFE_INTEGER, symlink: 0, link: 0, mknodFifo: 0, owners: 'posix', newFileMode: 0o644,
  chmod: [[0o640, 0, 0o640], [0o4751, 0, 0o4751], [0o600, 0, 0o600], [0o2755, 0, 0o2755]],
  caseInsensitive: false, stripsTrailingDots: false, badNameChars: '', mtimeRes: 1, atimeRes: 1, holes: true, seekHole: true, blocks: true,
  statfsCounts: true, statfsType: 0xef53, namelen: 255, exchange: 0, stableIno: true, ctimeStored: true, persistent: true, enospc: true,
  userXattr: 0, fallocate: [0, 0, 0],
};

const VFAT: Omit<Profile, 'name' | 'fsType'> = {
  ...POSIX, kind: 'vfat',
  // No symlinks, hard links or special files: the VFS's EPERM for a missing operation.
  symlink: -EPERM, link: -EPERM, mknodFifo: -EPERM,
  // No owners: every inode has the mount's uid/gid (uid=, gid=; 0 here); chown to anything
  // else is EPERM (fat_setattr).
  owners: 'mount',
  // Modes come from fmask (umask 022 → 0755) and the read-only attribute. Bits beyond
  // rwx (setuid, sticky, ...) are EPERM; otherwise only the write bits can change, to
  // all-of-~fmask or none, and any other change is silently ignored: 0 with the mode
  // unchanged (fat_setattr, fat_sanitize_mode_change).
  newFileMode: 0o755,
  chmod: [[0o555, 0, 0o555], [0o644, 0, 0o555], [0o755, 0, 0o755], [0o4755, -EPERM, 0o755], [0o700, 0, 0o755], [0o577, 0, 0o555]],
  caseInsensitive: true,
  // vfat_striptail_len
  stripsTrailingDots: true,
  // vfat_is_used_badchars (and control characters)
  badNameChars: '*?<>|":\\\x01\x1f',
  // 32-bit sizes in directory entries
  maxBytes: 0xffffffff,
  // Directory entries keep mtime in 2 s and atime as a date.
  mtimeRes: 2e9, atimeRes: 86400e9,
  // FAT cannot have holes: a write past EOF allocates and zeroes the gap.
  holes: false, seekHole: false,
  statfsType: 0x4d44,
  // fat_statfs: FAT_LFN_LEN * NLS_MAX_CHARSET_SIZE
  namelen: 255 * 6,
  // Inode numbers are made up at each mount (iunique), as on Linux.
  stableIno: false,
  // No change time on disk: in memory ctime has the creation time's 10 ms steps; after a
  // remount it is read from the entry's times.
  ctimeStored: false,
  // Linux vfat has RENAME_EXCHANGE since 6.0; lkl-ts's vfat is the older vfat_rename
  // (RENAME_NOREPLACE only).
  exchange: -EINVAL,
  // No extended attributes; fallocate only allocates (fat_fallocate), no hole punching.
  userXattr: -EOPNOTSUPP, fallocate: [0, 0, -EOPNOTSUPP],
};

const FILESYSTEMS: Profile[] = [
  {
    ...POSIX, name: 'ramfs', kind: 'ramfs', fsType: 'ramfs',
    // simple_statfs: no block or inode counts (f_blocks = f_bfree = 0), as Linux ramfs.
    statfsCounts: false, statfsType: 0x858458f6,
    // Sparse in memory, but lseek is generic_file_llseek: all data up to the size, as Linux ramfs.
    seekHole: false,
    persistent: false, enospc: false,
  },
  {
    ...VFAT, name: 'vfat (FAT32)', fsType: 'vfat',
    mkfs: (dir, small) => (small ? makeVfatImage({ dir, fat: 12, sizeMiB: 1 }) : makeVfatImage({ dir, fat: 32, sizeMiB: 40 })),
  },
  {
    ...VFAT, name: 'vfat (FAT16)', fsType: 'vfat', enospc: false, rootDirEntries: 512,
    mkfs: (dir) => makeVfatImage({ dir, fat: 16, sizeMiB: 32 }),
  },
  {
    ...POSIX, name: 'ext4', kind: 'ext4', fsType: 'ext4',
    // 256-byte inodes (nanosecond times) for the main image; the small one takes mke2fs's
    // defaults for small filesystems (1 KiB blocks, 128-byte inodes).
    mkfs: (dir, small) => (small
      ? makeExtImage({ dir, type: 'ext4', sizeMiB: 2, features: ['^has_journal'] })
      : makeExtImage({ dir, type: 'ext4', sizeMiB: 48, inodeSize: 256, features: ['^has_journal'] })),
  },
  {
    ...POSIX, name: 'ext2 (through the ext4 driver)', kind: 'ext4', fsType: 'ext2',
    // Block-mapped files: ext4_fallocate preallocates only for extent files (EOPNOTSUPP),
    // hole punching works on both.
    fallocate: [-EOPNOTSUPP, -EOPNOTSUPP, 0],
    mkfs: (dir, small) => makeExtImage({ dir, type: 'ext2', sizeMiB: small ? 2 : 48, inodeSize: 256 }),
  },
  { ...POSIX, name: 'ext4 read-only (journalled image)', kind: 'ext4-ro', fsType: 'ext4', readOnly: true, mountFlags: MS_RDONLY, enospc: false },
  {
    // The journalled default (mke2fs -t ext4), read-write through jbd2 (data=ordered).
    ...POSIX, name: 'ext4 with a journal (jbd2)', kind: 'ext4', fsType: 'ext4',
    mkfs: (dir, small) => (small
      ? makeExtImage({ dir, type: 'ext4', sizeMiB: 3 })
      : makeExtImage({ dir, type: 'ext4', sizeMiB: 48, inodeSize: 256 })),
  },
];

// ---------------------------------------------------------------------------------------
// Checks that know the table's bug list.

const st = (r: stat | number, what = 'stat'): stat => {
  if (typeof r === 'number') throw new Error(`${what} failed: ${errnoName(r)}`);
  return r;
};
const sfs = (r: statfs | number): statfs => {
  if (typeof r === 'number') throw new Error(`statfs failed: ${errnoName(r)}`);
  return r;
};
const show = (r: unknown) => (typeof r === 'number' && r < 0 ? errnoName(r) : JSON.stringify(r));

class Ctx {
  /** section: the behaviour's name. */
  constructor(readonly t: Test, readonly fs: Profile, readonly sys: Sys, readonly dir: string, readonly section: string) {}
  /** A call's result: want 0 means success (>= 0), negative means that -errno. */
  rc(id: string, got: unknown, want: number, what: string): void {
    const ok = want === 0 ? typeof got !== 'number' || got >= 0 : got === want;
    this.t.ok(ok, `${what}: ${want === 0 ? 'succeeds' : errnoName(want)}${ok ? '' : ` (got ${show(got)})`}`);
  }
  async call(id: string, p: Promise<unknown>, want: number, what: string): Promise<void> { this.rc(id, await p, want, what); }
  eq(id: string, got: unknown, want: unknown, what: string): void { this.t.same(got, want, what); }
  ok(id: string, v: boolean, what: string): void { this.t.ok(v, what); }
  p(name: string): string { return `${this.dir}/${name}`; }
  async write(name: string, data: string | Uint8Array, flags = O_WRONLY | O_CREAT | O_TRUNC): Promise<number> {
    const fd = await this.sys.open(this.p(name), flags, 0o666);
    if (fd < 0) return fd;
    const b = typeof data === 'string' ? enc(data) : data;
    const n = await this.sys.write(fd, b);
    await this.sys.close(fd);
    return n < 0 ? n : n === b.length ? 0 : -9999;
  }
  async read(name: string): Promise<string | number> { return readAll(this.sys, this.p(name)).then((r) => (typeof r === 'number' ? r : dec(r))); }
  async stat(name: string): Promise<stat> { return st(await this.sys.lstat(this.p(name)), `lstat ${name}`); }
}

const readAll = readBytes;

/** Every entry of a directory, read `count` bytes at a time. */
async function listDir(sys: Sys, p: string, count = 4096): Promise<linux_dirent64[] | number> {
  const fd = await sys.open(p, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return fd;
  const out: linux_dirent64[] = [];
  for (;;) {
    const r = await sys.getdents64(fd, count);
    if (typeof r === 'number') { await sys.close(fd); return r; }
    if (r.length === 0) break;
    out.push(...r);
  }
  await sys.close(fd);
  return out;
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}
const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const trunc = (ts: { sec: number; nsec: number }, res: number) => {
  const ns = BigInt(ts.sec) * 1_000_000_000n + BigInt(ts.nsec);
  const r = ns - (ns % BigInt(res));
  return { sec: Number(r / 1_000_000_000n), nsec: Number(r % 1_000_000_000n) };
};

// ---------------------------------------------------------------------------------------
// The behaviours. Each runs in a fresh directory of its own on the filesystem under test.

type Behaviour = (c: Ctx) => Promise<void>;
const BEHAVIOURS: [name: string, fn: Behaviour][] = [];
const behaviour = (name: string, fn: Behaviour) => BEHAVIOURS.push([name, fn]);

behaviour('open and creat flags', async (c) => {
  const { sys: s } = c;
  const fd = await s.open(c.p('f'), O_CREAT | O_RDWR, 0o666);
  c.rc('open-creat', fd, 0, 'O_CREAT creates');
  c.eq('new-file-mode', st(await s.fstat(fd)).mode, S_IFREG | c.fs.newFileMode, 'mode of a new file (0666 & ~umask)');
  c.eq('new-file-size', st(await s.fstat(fd)).size, 0, 'empty');
  await s.write(fd, enc('hello world'));
  await s.close(fd);
  c.rc('mkdir', await s.mkdir(c.p('d'), 0o777), 0, 'mkdir');
  for (const [id, what, call, want] of [
    ['excl', 'O_CREAT|O_EXCL on an existing file', () => s.open(c.p('f'), O_CREAT | O_EXCL | O_WRONLY, 0o644), -EEXIST],
    ['excl-dir', 'O_CREAT|O_EXCL on an existing directory', () => s.open(c.p('d'), O_CREAT | O_EXCL | O_WRONLY, 0o644), -EEXIST],
    ['odirectory-file', 'O_DIRECTORY on a file', () => s.open(c.p('f'), O_RDONLY | O_DIRECTORY), -ENOTDIR],
    ['wronly-dir', 'O_WRONLY on a directory', () => s.open(c.p('d'), O_WRONLY), -EISDIR],
    ['rdwr-dir', 'O_RDWR on a directory', () => s.open(c.p('d'), O_RDWR), -EISDIR],
    ['creat-dir', 'O_CREAT on a directory', () => s.open(c.p('d'), O_CREAT | O_RDONLY, 0o644), -EISDIR],
    ['creat-slash', 'O_CREAT with a trailing slash', () => s.open(c.p('new/'), O_CREAT | O_WRONLY, 0o644), -EISDIR],
    ['enoent', 'ENOENT', () => s.open(c.p('missing'), O_RDONLY), -ENOENT],
    ['enoent-mid', 'ENOENT in the middle', () => s.open(c.p('missing/x'), O_RDONLY), -ENOENT],
    ['enotdir-mid', 'ENOTDIR in the middle', () => s.open(c.p('f/x'), O_RDONLY), -ENOTDIR],
    ['enotdir-slash', 'ENOTDIR with a trailing slash', () => s.open(c.p('f/'), O_RDONLY), -ENOTDIR],
    ['creat-excl-new', 'O_CREAT|O_EXCL on a new name', () => s.open(c.p('g'), O_CREAT | O_EXCL | O_WRONLY, 0o644), 0],
    ['dir-rdonly', 'O_RDONLY|O_DIRECTORY on a directory', () => s.open(c.p('d'), O_RDONLY | O_DIRECTORY), 0],
  ] as [string, string, () => Promise<number>, number][]) {
    const r = await call();
    c.rc(id, r, want, what);
    if (r >= 0) await s.close(r);
  }
  // O_TRUNC
  const tr = await s.open(c.p('f'), O_WRONLY | O_TRUNC);
  c.rc('otrunc', tr, 0, 'O_TRUNC open');
  c.eq('otrunc-size', st(await s.fstat(tr)).size, 0, 'O_TRUNC empties the file');
  await s.write(tr, enc('abc'));
  await s.close(tr);
  c.eq('otrunc-read', await c.read('f'), 'abc', 'new contents after O_TRUNC');
  // O_APPEND writes at the end whatever the offset.
  const ap = await s.open(c.p('f'), O_WRONLY | O_APPEND);
  await s.lseek(ap, 0, SEEK_SET);
  c.eq('oappend', await s.write(ap, enc('def')), 3, 'O_APPEND write');
  c.eq('oappend-pos', await s.lseek(ap, 0, SEEK_CUR), 6, 'offset at the end after an O_APPEND write');
  await s.close(ap);
  c.eq('oappend-read', await c.read('f'), 'abcdef', 'O_APPEND appended');
  // A read-only descriptor cannot write, a write-only one cannot read.
  const ro = await s.open(c.p('f'), O_RDONLY);
  c.rc('ro-write', await s.write(ro, enc('x')), -EBADF, 'write on O_RDONLY');
  await s.close(ro);
  const wo = await s.open(c.p('f'), O_WRONLY);
  c.rc('wo-read', await s.read(wo, new Uint8Array(4)), -EBADF, 'read on O_WRONLY');
  await s.close(wo);
});

behaviour('read, write, pread64, pwrite64, lseek, holes', async (c) => {
  const { sys: s } = c;
  const fd = await s.open(c.p('f'), O_CREAT | O_RDWR, 0o644);
  const big = pattern(300_000, 1);
  c.eq('write-big', await s.write(fd, big), big.length, 'a 300,000-byte write');
  c.eq('seek-end', await s.lseek(fd, 0, SEEK_END), big.length, 'SEEK_END is the size');
  c.eq('seek-end-neg', await s.lseek(fd, -2, SEEK_END), big.length - 2, 'SEEK_END - 2');
  const two = new Uint8Array(8);
  c.eq('read-tail', await s.read(fd, two), 2, 'short read at the end');
  c.eq('read-eof', await s.read(fd, two), 0, 'read at EOF is 0');
  c.rc('seek-neg', await s.lseek(fd, -1, SEEK_SET), -EINVAL, 'lseek before 0');
  c.eq('seek-cur', await s.lseek(fd, 100, SEEK_SET) + await s.lseek(fd, 10, SEEK_CUR), 210, 'SEEK_SET then SEEK_CUR');
  const got = new Uint8Array(big.length);
  c.eq('pread-all', await s.pread64(fd, got, 0), big.length, 'pread64 of everything');
  c.eq('pread-data', sha(got), sha(big), 'reads back what was written');
  c.eq('pread-nomove', await s.lseek(fd, 0, SEEK_CUR), 110, 'pread64 does not move the offset');
  c.eq('pwrite-mid', await s.pwrite64(fd, enc('MIDDLE'), 150_000), 6, 'pwrite64 in the middle');
  const mid = new Uint8Array(10);
  await s.pread64(fd, mid, 149_998);
  c.eq('pwrite-mid-data', [...mid], [...big.subarray(149_998, 150_000), ...enc('MIDDLE'), ...big.subarray(150_006, 150_008)], 'only those bytes changed');
  c.eq('pwrite-size', st(await s.fstat(fd)).size, big.length, 'size unchanged by an inner pwrite');
  await s.close(fd);
  // A write past EOF: the gap reads as zeros; a hole where the filesystem has them.
  const h = await s.open(c.p('holey'), O_CREAT | O_RDWR, 0o644);
  const at = 4 * 1024 * 1024;
  c.eq('hole-pwrite', await s.pwrite64(h, enc('end'), at), 3, 'pwrite64 4 MiB past EOF');
  const x = st(await s.fstat(h));
  c.eq('hole-size', x.size, at + 3, 'size covers the gap');
  const gap = new Uint8Array(65536);
  c.eq('hole-read', await s.pread64(h, gap, at / 2), gap.length, 'read inside the gap');
  c.ok('hole-zero', gap.every((b) => b === 0), 'the gap reads as zeros');
  if (c.fs.blocks) {
    if (c.fs.holes) c.ok('hole-blocks', x.blocks * 512 < at, `st_blocks (${x.blocks}) below the size: a hole`);
    else c.ok('hole-blocks', x.blocks * 512 >= at, `st_blocks (${x.blocks}) covers the gap: no holes`);
  }
  c.eq('seek-data', await s.lseek(h, 0, SEEK_DATA), c.fs.seekHole ? at : 0, 'SEEK_DATA from 0');
  c.eq('seek-hole', await s.lseek(h, 0, SEEK_HOLE), c.fs.seekHole ? 0 : at + 3, 'SEEK_HOLE from 0');
  c.eq('seek-hole-end', await s.lseek(h, at, SEEK_HOLE), at + 3, 'SEEK_HOLE in the last data: the end');
  c.rc('seek-data-eof', await s.lseek(h, at + 3, SEEK_DATA), -ENXIO, 'SEEK_DATA at EOF: ENXIO');
  await s.close(h);
  // pwrite64 on an O_APPEND descriptor appends whatever the offset (Linux's documented quirk).
  await c.write('ap', 'abc');
  const ap = await s.open(c.p('ap'), O_WRONLY | O_APPEND);
  c.eq('append-pwrite', await s.pwrite64(ap, enc('XY'), 0), 2, 'pwrite64 at 0 on O_APPEND');
  await s.close(ap);
  c.eq('append-pwrite-data', await c.read('ap'), 'abcXY', 'appended, not written at 0');
  // readv / writev
  const v = await s.open(c.p('v'), O_CREAT | O_RDWR, 0o644);
  c.eq('writev', await s.writev(v, [enc('one '), enc(''), enc('two '), enc('three')]), 13, 'writev of 4 buffers');
  const r1 = new Uint8Array(3), r2 = new Uint8Array(20);
  await s.lseek(v, 0, SEEK_SET);
  c.eq('readv', await s.readv(v, [r1, r2]), 13, 'readv into 2 buffers');
  c.eq('readv-data', dec(r1) + dec(r2.subarray(0, 10)), 'one two three', 'in order');
  await s.close(v);
});

behaviour('ftruncate and truncate', async (c) => {
  const { sys: s } = c;
  c.rc('setup', await c.write('f', 'hello world'), 0, 'write');
  const fd = await s.open(c.p('f'), O_RDWR);
  c.rc('down', await s.ftruncate(fd, 5), 0, 'ftruncate down');
  c.eq('down-size', st(await s.fstat(fd)).size, 5, 'size 5');
  c.eq('down-read', await c.read('f'), 'hello', 'the rest is gone');
  c.rc('up', await s.ftruncate(fd, 70_000), 0, 'ftruncate up');
  c.eq('up-size', st(await s.fstat(fd)).size, 70_000, 'size 70,000');
  const b = new Uint8Array(70_000);
  c.eq('up-read', await s.pread64(fd, b, 0), 70_000, 'read all');
  c.eq('up-head', dec(b.subarray(0, 5)), 'hello', 'data kept');
  c.ok('up-zero', b.subarray(5).every((x) => x === 0), 'extension reads as zeros');
  // Down into the middle of a block, then up again: the old bytes must not come back.
  await s.pwrite64(fd, new Uint8Array(8192).fill(0x55), 0);
  c.rc('down-mid', await s.ftruncate(fd, 1000), 0, 'ftruncate into a block');
  c.rc('up-again', await s.ftruncate(fd, 8192), 0, 'ftruncate up again');
  const t2 = new Uint8Array(8192);
  await s.pread64(fd, t2, 0);
  c.ok('down-up-zero', t2.subarray(0, 1000).every((x) => x === 0x55) && t2.subarray(1000).every((x) => x === 0), 'bytes past the cut read as zeros');
  c.rc('zero', await s.ftruncate(fd, 0), 0, 'ftruncate to 0');
  c.eq('zero-size', st(await s.fstat(fd)).size, 0, 'size 0');
  c.rc('neg', await s.ftruncate(fd, -1), -EINVAL, 'negative length');
  await s.close(fd);
  const ro = await s.open(c.p('f'), O_RDONLY);
  c.rc('ro', await s.ftruncate(ro, 3), -EINVAL, 'ftruncate on a read-only descriptor');
  await s.close(ro);
  c.rc('path', await s.truncate(c.p('f'), 3), 0, 'truncate by path');
  c.eq('path-size', (await c.stat('f')).size, 3, 'size 3');
  c.rc('dir', await s.truncate(c.dir, 0), -EISDIR, 'truncate of a directory');
  // 4 GiB: past FAT's 32-bit sizes; a sparse file elsewhere.
  const big = await s.open(c.p('big'), O_CREAT | O_RDWR, 0o644);
  const fits = 2 ** 32 <= c.fs.maxBytes;
  c.rc('4g-pwrite', await s.pwrite64(big, enc('x'), 2 ** 32), fits ? 0 : -EFBIG, 'pwrite64 at 4 GiB');
  c.eq('4g-size', st(await s.fstat(big)).size, fits ? 2 ** 32 + 1 : 0, 'size');
  if (fits || c.fs.holes) {
    c.rc('4g-truncate', await s.ftruncate(big, 2 ** 32 + 10), 0, 'ftruncate to 4 GiB + 10');
  } else {
    c.rc('4g-truncate', await s.ftruncate(big, 2 ** 32), -EFBIG, 'ftruncate to 4 GiB');
  }
  c.rc('4g-down', await s.ftruncate(big, 0), 0, 'and back to 0');
  await s.close(big);
});

behaviour('mkdir, rmdir, unlink', async (c) => {
  const { sys: s } = c;
  c.rc('mkdir', await s.mkdir(c.p('d'), 0o755), 0, 'mkdir');
  c.eq('mkdir-mode', (await c.stat('d')).mode, S_IFDIR | 0o755, 'a directory, mode 0755');
  await c.write('d/x', 'x');
  await c.write('f', 'f');
  c.rc('mkdir-sub', await s.mkdir(c.p('e'), 0o755), 0, 'mkdir another');
  for (const [id, what, p, want] of [
    ['mkdir-eexist', 'mkdir of an existing directory', s.mkdir(c.p('d'), 0o755), -EEXIST],
    ['mkdir-eexist-file', 'mkdir over a file', s.mkdir(c.p('f'), 0o755), -EEXIST],
    ['mkdir-enoent', 'mkdir with a missing parent', s.mkdir(c.p('none/x'), 0o755), -ENOENT],
    ['mkdir-enotdir', 'mkdir under a file', s.mkdir(c.p('f/x'), 0o755), -ENOTDIR],
    ['rmdir-enotempty', 'rmdir of a non-empty directory', s.rmdir(c.p('d')), -ENOTEMPTY],
    ['rmdir-enotdir', 'rmdir of a file', s.rmdir(c.p('f')), -ENOTDIR],
    ['rmdir-dot', 'rmdir of "."', s.rmdir(c.p('e/.')), -EINVAL],
    ['rmdir-dotdot', 'rmdir of ".."', s.rmdir(c.p('e/..')), -ENOTEMPTY],
    ['rmdir-enoent', 'rmdir of a missing name', s.rmdir(c.p('none')), -ENOENT],
    ['unlink-dir', 'unlink of a directory', s.unlink(c.p('e')), -EISDIR],
    ['unlinkat-removedir-file', 'unlinkat(AT_REMOVEDIR) of a file', s.unlinkat(AT_FDCWD, c.p('f'), AT_REMOVEDIR), -ENOTDIR],
    ['unlink-enoent', 'unlink of a missing name', s.unlink(c.p('none')), -ENOENT],
    ['unlink-slash', 'unlink of a file with a trailing slash', s.unlink(c.p('f/')), -ENOTDIR],
    ['unlink-dot', 'unlink of "."', s.unlink(c.p('e/.')), -EISDIR],
    ['mkdir-slash', 'mkdir with a trailing slash', s.mkdir(c.p('g/'), 0o755), 0],
  ] as [string, string, Promise<number>, number][]) c.rc(id, await p, want, what);
  c.rc('rmdir', await s.rmdir(c.p('e')), 0, 'rmdir of an empty directory');
  c.rc('rmdir-slash', await s.rmdir(c.p('g/')), 0, 'rmdir with a trailing slash');
  c.rc('rmdir-gone', await s.lstat(c.p('e')), -ENOENT, 'gone');
  c.rc('unlink', await s.unlink(c.p('d/x')), 0, 'unlink');
  c.rc('rmdir-emptied', await s.rmdir(c.p('d/')), 0, 'rmdir once emptied (trailing slash)');
  c.rc('unlink-f', await s.unlink(c.p('f')), 0, 'unlink');
  const left = await listDir(s, c.dir);
  c.eq('empty', typeof left === 'number' ? left : left.map((e) => e.name).sort(), ['.', '..'], 'the directory is empty again');
  c.rc('rmdir-self', await s.rmdir(c.dir), 0, 'and can be removed');
  c.rc('remake', await s.mkdir(c.dir, 0o755), 0, 'and made again');
});

behaviour('rename', async (c) => {
  const { sys: s } = c;
  for (const d of ['a', 'b', 'empty', 'full', 'a/sub']) await s.mkdir(c.p(d), 0o755);
  await c.write('full/x', 'x');
  await c.write('f1', 'one');
  await c.write('f2', 'two');
  await c.write('a/sub/deep', 'deep');
  for (const [id, what, p, want] of [
    ['enoent', 'missing source', s.rename(c.p('none'), c.p('x')), -ENOENT],
    ['enoent-target-dir', 'missing target directory', s.rename(c.p('f1'), c.p('none/x')), -ENOENT],
    ['einval-subtree', 'a directory into its own subdirectory', s.rename(c.p('a'), c.p('a/sub/x')), -EINVAL],
    ['einval-child', 'a directory onto its own child', s.rename(c.p('a'), c.p('a/sub')), -EINVAL],
    ['enotempty', 'a directory over a non-empty directory', s.rename(c.p('a'), c.p('full')), -ENOTEMPTY],
    ['eisdir', 'a file over a directory', s.rename(c.p('f1'), c.p('empty')), -EISDIR],
    ['enotdir', 'a directory over a file', s.rename(c.p('empty'), c.p('f2')), -ENOTDIR],
    ['enotdir-slash', 'a file with a trailing slash', s.rename(c.p('f1/'), c.p('f3')), -ENOTDIR],
    ['noreplace', 'RENAME_NOREPLACE over a file', s.renameat2(AT_FDCWD, c.p('f1'), AT_FDCWD, c.p('f2'), RENAME_NOREPLACE), -EEXIST],
    ['noreplace-dir', 'RENAME_NOREPLACE over a directory', s.renameat2(AT_FDCWD, c.p('a'), AT_FDCWD, c.p('empty'), RENAME_NOREPLACE), -EEXIST],
    // The VFS looks the target up before the filesystem sees the flags.
    ['exchange-enoent', 'RENAME_EXCHANGE with a missing target', s.renameat2(AT_FDCWD, c.p('f1'), AT_FDCWD, c.p('f9'), RENAME_EXCHANGE), -ENOENT],
    ['self', 'onto itself', s.rename(c.p('f1'), c.p('f1')), 0],
    ['self-dir', 'a directory onto itself', s.rename(c.p('a'), c.p('a')), 0],
    ['self-noreplace', 'RENAME_NOREPLACE onto itself', s.renameat2(AT_FDCWD, c.p('f1'), AT_FDCWD, c.p('f1'), RENAME_NOREPLACE), -EEXIST],
    ['dot', 'rename of "."', s.rename(c.p('a/.'), c.p('z')), -EBUSY],
    ['onto-dotdot', 'rename onto ".."', s.rename(c.p('f1'), c.p('a/..')), -EBUSY],
  ] as [string, string, Promise<number>, number][]) c.rc(id, await p, want, what);
  c.eq('self-kept', await c.read('f1'), 'one', 'still there after renaming onto itself');
  c.rc('new-name', await s.renameat2(AT_FDCWD, c.p('f2'), AT_FDCWD, c.p('f3'), RENAME_NOREPLACE), 0, 'RENAME_NOREPLACE to a new name');
  c.rc('old-gone', await s.lstat(c.p('f2')), -ENOENT, 'old name gone');
  c.eq('new-data', await c.read('f3'), 'two', 'new name has the data');
  const ino3 = (await c.stat('f3')).ino;
  c.rc('over-file', await s.rename(c.p('f3'), c.p('f1')), 0, 'a file over a file');
  c.eq('over-file-data', await c.read('f1'), 'two', 'the target has the source data');
  c.rc('over-file-gone', await s.lstat(c.p('f3')), -ENOENT, 'source name gone');
  if (!c.fs.caseInsensitive) c.eq('over-file-ino', (await c.stat('f1')).ino, ino3, 'the same inode under the new name');
  // Directories: moving to another parent moves '..' and the link counts.
  const rootLinks = st(await s.stat(c.dir)).nlink;
  const bLinks = (await c.stat('b')).nlink;
  c.rc('dir-move', await s.rename(c.p('a'), c.p('b/a')), 0, 'a directory to another parent');
  c.eq('dir-move-nlink-old', st(await s.stat(c.dir)).nlink, rootLinks - 1, 'old parent loses a link');
  c.eq('dir-move-nlink-new', (await c.stat('b')).nlink, bLinks + 1, 'new parent gains one');
  c.eq('dir-move-dotdot', (await c.stat('b/a/..')).ino, (await c.stat('b')).ino, "'..' is the new parent");
  c.eq('dir-move-subtree', await c.read('b/a/sub/deep'), 'deep', 'the subtree moved along');
  c.rc('dir-over-empty', await s.rename(c.p('b/a'), c.p('empty')), 0, 'a directory over an empty directory');
  c.rc('dir-over-empty-gone', await s.lstat(c.p('b/a')), -ENOENT, 'source gone');
  c.eq('dir-over-empty-data', await c.read('empty/sub/deep'), 'deep', 'contents under the new name');
  c.eq('dir-over-empty-nlink', (await c.stat('b')).nlink, bLinks, 'link count back');
  // An open file follows its inode across a rename.
  const fd = await s.open(c.p('f1'), O_RDWR);
  c.rc('open-rename', await s.rename(c.p('f1'), c.p('moved')), 0, 'rename an open file');
  await s.pwrite64(fd, enc('TWO'), 0);
  await s.close(fd);
  c.eq('open-rename-data', await c.read('moved'), 'TWO', 'writes through the old descriptor land in the moved file');
  // RENAME_EXCHANGE
  await c.write('g', 'gee');
  c.rc('exchange', await s.renameat2(AT_FDCWD, c.p('moved'), AT_FDCWD, c.p('g'), RENAME_EXCHANGE), c.fs.exchange, 'RENAME_EXCHANGE of two files');
  if (c.fs.exchange === 0) {
    c.eq('exchange-data', [await c.read('moved'), await c.read('g')], ['gee', 'TWO'], 'contents swapped');
    c.rc('exchange-dir', await s.renameat2(AT_FDCWD, c.p('empty'), AT_FDCWD, c.p('g'), RENAME_EXCHANGE), 0, 'RENAME_EXCHANGE of a directory and a file');
    c.eq('exchange-dir-types', [(await c.stat('g')).mode & S_IFMT, (await c.stat('empty')).mode & S_IFMT], [S_IFDIR, S_IFREG], 'types swapped');
    c.eq('exchange-dir-data', await c.read('g/sub/deep'), 'deep', 'the directory kept its contents');
  }
});

behaviour('link, symlink, readlink, mknod', async (c) => {
  const { sys: s } = c;
  await c.write('f', 'data');
  await s.mkdir(c.p('d'), 0o755);
  c.rc('link', await s.link(c.p('f'), c.p('g')), c.fs.link, 'link');
  if (c.fs.link === 0) {
    c.rc('link-rename-self', await s.rename(c.p('f'), c.p('g')), 0, 'rename onto a hard link of itself');
    c.eq('link-rename-self-both', [await c.read('f'), await c.read('g')], ['data', 'data'], 'is a no-op: both names stay');
    c.eq('link-nlink', [(await c.stat('f')).nlink, (await c.stat('g')).nlink], [2, 2], 'both names count');
    c.eq('link-ino', (await c.stat('g')).ino, (await c.stat('f')).ino, 'same inode');
    c.rc('link-eexist', await s.link(c.p('f'), c.p('g')), -EEXIST, 'link over an existing name');
    c.rc('link-dir', await s.link(c.p('d'), c.p('d2')), -EPERM, 'link of a directory');
    c.rc('link-unlink', await s.unlink(c.p('f')), 0, 'unlink one name');
    c.eq('link-survives', [await c.read('g'), (await c.stat('g')).nlink], ['data', 1], 'the other keeps the data');
    c.rc('link-back', await s.link(c.p('g'), c.p('f')), 0, 'link it back');
  } else {
    c.rc('link-noent', await s.lstat(c.p('g')), -ENOENT, 'no name made');
  }
  const long = 'x/'.repeat(100) + 'end'; // beyond ext4's 60-byte fast symlinks
  c.rc('symlink', await s.symlink('f', c.p('sl')), c.fs.symlink, 'symlink');
  if (c.fs.symlink === 0) {
    c.eq('symlink-readlink', await s.readlink(c.p('sl')), 'f', 'readlink');
    c.eq('symlink-lstat', (await c.stat('sl')).mode & S_IFMT, S_IFLNK, 'lstat: a symlink');
    c.eq('symlink-lstat-size', (await c.stat('sl')).size, 1, 'st_size is the target length');
    c.eq('symlink-follow', await c.read('sl'), 'data', 'open follows it');
    c.rc('symlink-long', await s.symlink(long, c.p('long')), 0, 'a 203-byte target');
    c.eq('symlink-long-readlink', await s.readlink(c.p('long')), long, 'reads back');
    c.rc('symlink-eexist', await s.symlink('x', c.p('f')), -EEXIST, 'symlink over an existing name');
    c.rc('readlink-file', await s.readlink(c.p('f')), -EINVAL, 'readlink of a file');
    c.rc('symlink-dangling', await s.symlink('nowhere', c.p('dangling')), 0, 'a dangling symlink');
    c.rc('symlink-dangling-stat', await s.stat(c.p('dangling')), -ENOENT, 'stat through it is ENOENT');
    c.rc('symlink-nofollow', await s.open(c.p('sl'), O_RDONLY | O_NOFOLLOW), -ELOOP, 'O_NOFOLLOW on a symlink');
    c.rc('symlink-excl', await s.open(c.p('dangling'), O_CREAT | O_EXCL | O_WRONLY, 0o644), -EEXIST, 'O_EXCL on a dangling symlink');
    const dfd = await s.open(c.p('dangling'), O_CREAT | O_WRONLY, 0o644);
    c.rc('symlink-creat', dfd, 0, 'O_CREAT through a dangling symlink');
    if (dfd >= 0) await s.close(dfd);
    c.eq('symlink-creat-target', (await c.stat('nowhere')).mode & S_IFMT, S_IFREG, 'creates its target');
    c.rc('symlink-dir', await s.symlink('d', c.p('dl')), 0, 'a symlink to a directory');
    await c.write('d/in', 'in');
    c.eq('symlink-dir-walk', await c.read('dl/in'), 'in', 'walks through it');
    c.rc('symlink-rmdir', await s.rmdir(c.p('dl')), -ENOTDIR, 'rmdir of a symlink to a directory');
    c.rc('symlink-unlink', await s.unlink(c.p('dl')), 0, 'unlink removes the link');
    c.eq('symlink-unlink-target', await c.read('d/in'), 'in', 'not the target');
  } else {
    c.rc('symlink-noent', await s.lstat(c.p('sl')), -ENOENT, 'no name made');
  }
  c.rc('mknod-fifo', await s.mknod(c.p('fifo'), S_IFIFO | 0o644, 0), c.fs.mknodFifo, 'mknod of a fifo');
  if (c.fs.mknodFifo === 0) c.eq('mknod-fifo-type', (await c.stat('fifo')).mode & S_IFMT, S_IFIFO, 'a fifo');
  c.rc('mknod-reg', await s.mknod(c.p('reg'), S_IFREG | 0o644, 0), 0, 'mknod of a regular file');
  c.eq('mknod-reg-type', (await c.stat('reg')).mode & S_IFMT, S_IFREG, 'a regular file');
});

behaviour('chmod, chown', async (c) => {
  const { sys: s } = c;
  // The table's chmods in sequence on one file; a refused or ignored one leaves the mode.
  await c.write('seq', 'x');
  let mode = (await c.stat('seq')).mode & 0o7777;
  for (const [m, want, after] of c.fs.chmod) {
    c.rc('chmod-seq', await s.chmod(c.p('seq'), m), want, `chmod ${m.toString(8)} in sequence`);
    if (want === 0) mode = after;
    c.eq('chmod-seq-mode', (await c.stat('seq')).mode & 0o7777, mode, `mode ${mode.toString(8)}`);
  }
  const fd = await s.open(c.p('seq'), O_RDONLY);
  c.rc('fchmod', await s.fchmod(fd, mode), 0, 'fchmod to the current mode');
  await s.close(fd);
  await c.write('o', 'x');
  if (c.fs.owners === 'posix') {
    c.rc('chown', await s.chown(c.p('o'), 1000, 2000), 0, 'chown 1000:2000');
    const x = await c.stat('o');
    c.eq('chown-ids', [x.uid, x.gid], [1000, 2000], 'owner and group changed');
    c.rc('chown-keep', await s.chown(c.p('o'), -1, 3000), 0, 'chown -1:3000');
    c.eq('chown-keep-ids', [(await c.stat('o')).uid, (await c.stat('o')).gid], [1000, 3000], '-1 keeps the uid');
    await s.mkdir(c.p('d'), 0o755);
    c.rc('chown-dir', await s.chown(c.p('d'), 5, 6), 0, 'chown of a directory');
    c.eq('chown-dir-ids', [(await c.stat('d')).uid, (await c.stat('d')).gid], [5, 6], 'changed');
    await s.chmod(c.p('o'), 0o6755);
    c.rc('chown-suid', await s.chown(c.p('o'), 0, -1), 0, 'chown of a set-id file');
    c.eq('chown-suid-mode', (await c.stat('o')).mode & 0o7777, 0o755, 'clears set-user-ID and set-group-ID');
  } else {
    const x = await c.stat('o');
    c.eq('chown-mount-ids', [x.uid, x.gid], [0, 0], "files belong to the mount's uid/gid");
    c.rc('chown-same', await s.chown(c.p('o'), 0, 0), 0, "chown to the mount's uid/gid");
    c.rc('chown-uid', await s.chown(c.p('o'), 1000, -1), -EPERM, 'chown to another uid');
    c.rc('chown-gid', await s.chown(c.p('o'), -1, 1000), -EPERM, 'chown to another gid');
    c.eq('chown-unchanged', [(await c.stat('o')).uid, (await c.stat('o')).gid], [0, 0], 'unchanged');
  }
  c.rc('chown-enoent', await s.chown(c.p('none'), 0, 0), -ENOENT, 'chown of a missing name');
});

behaviour('utimensat', async (c) => {
  const { sys: s } = c;
  await c.write('f', 'x');
  const atime = { sec: 1_600_000_123, nsec: 456_789_123 }; // September 2020
  const mtime = { sec: 1_600_000_001, nsec: 987_654_321 };
  c.rc('set', await s.utimensat(AT_FDCWD, c.p('f'), [atime, mtime], 0), 0, 'utimensat with explicit times');
  let x = await c.stat('f');
  c.eq('mtime', x.mtime, trunc(mtime, c.fs.mtimeRes), `mtime at the filesystem's granularity (${c.fs.mtimeRes} ns)`);
  c.eq('atime', x.atime, trunc(atime, c.fs.atimeRes), `atime at the filesystem's granularity (${c.fs.atimeRes} ns)`);
  const m2 = { sec: 1_500_000_000, nsec: 0 };
  c.rc('omit', await s.utimensat(AT_FDCWD, c.p('f'), [{ sec: 0, nsec: UTIME_OMIT }, m2], 0), 0, 'UTIME_OMIT for atime');
  x = await c.stat('f');
  c.eq('omit-atime', x.atime, trunc(atime, c.fs.atimeRes), 'atime kept');
  c.eq('omit-mtime', x.mtime, m2, 'mtime set');
  await s.mkdir(c.p('d'), 0o755);
  c.rc('dir', await s.utimensat(AT_FDCWD, c.p('d'), [atime, mtime], 0), 0, 'utimensat of a directory');
  c.eq('dir-mtime', (await c.stat('d')).mtime, trunc(mtime, c.fs.mtimeRes), 'directory mtime');
  // Writing moves mtime to now.
  const before = Date.now() / 1000;
  const fd = await s.open(c.p('f'), O_WRONLY);
  await s.write(fd, enc('y'));
  await s.close(fd);
  const now = (await c.stat('f')).mtime.sec;
  c.ok('write-mtime', now >= Math.floor(before) - c.fs.mtimeRes / 1e9 && now <= before + 5, `a write sets mtime to now (${now} vs ${Math.floor(before)})`);
  // Creating a name moves the directory's mtime.
  await s.utimensat(AT_FDCWD, c.p('d'), [atime, mtime], 0);
  await c.write('d/new', 'n');
  c.ok('dir-create-mtime', (await c.stat('d')).mtime.sec > mtime.sec + 1000, 'a create sets the directory mtime to now');
  await s.mkdir(c.p('e'), 0o755);
  for (const [what, op] of [
    ['an unlink', () => s.unlink(c.p('d/new'))],
    ['a rename out', async () => { await c.write('d/r', 'r'); await s.utimensat(AT_FDCWD, c.p('d'), [atime, mtime], 0); return s.rename(c.p('d/r'), c.p('e/r')); }],
  ] as [string, () => Promise<number>][]) {
    await s.utimensat(AT_FDCWD, c.p('d'), [atime, mtime], 0);
    await s.utimensat(AT_FDCWD, c.p('e'), [atime, mtime], 0);
    c.rc('dir-op', await op(), 0, what);
    c.ok('dir-op-mtime', (await c.stat('d')).mtime.sec > mtime.sec + 1000, `${what} sets the directory mtime to now`);
  }
  c.ok('dir-rename-in-mtime', (await c.stat('e')).mtime.sec > mtime.sec + 1000, 'a rename in sets the target directory mtime to now');
});

behaviour('stat fields', async (c) => {
  const { sys: s } = c;
  c.eq('dir-nlink', (await c.stat('.')).nlink, 2, 'an empty directory has 2 links');
  for (const d of ['a', 'b', 'c']) await s.mkdir(c.p(d), 0o755);
  c.eq('dir-nlink-3', (await c.stat('.')).nlink, 5, 'three subdirectories: 5 links');
  await c.write('f', pattern(10_000, 2));
  c.eq('dir-nlink-file', (await c.stat('.')).nlink, 5, 'a file adds no link to its directory');
  await s.rmdir(c.p('b'));
  c.eq('dir-nlink-rmdir', (await c.stat('.')).nlink, 4, 'rmdir takes one away');
  const f = await c.stat('f');
  c.eq('size', f.size, 10_000, 'st_size');
  c.eq('nlink', f.nlink, 1, 'a file has 1 link');
  if (c.fs.blocks) c.ok('blocks', f.blocks * 512 >= 10_000, `st_blocks (${f.blocks}) covers the data`);
  c.ok('blksize', f.blksize > 0 && (f.blksize & (f.blksize - 1)) === 0, `st_blksize ${f.blksize} is a power of 2`);
  const a = await c.stat('a');
  c.ok('ino', a.ino !== f.ino && a.ino > 0 && f.ino > 0, 'distinct inode numbers');
  c.eq('dev', a.dev, f.dev, 'the same st_dev');
  const fd = await s.open(c.p('f'), O_RDONLY);
  const ff = st(await s.fstat(fd));
  await s.close(fd);
  c.eq('fstat', [ff.ino, ff.size, ff.mode, ff.nlink], [f.ino, f.size, f.mode, f.nlink], 'fstat agrees with lstat');
  c.eq('dotdot', (await c.stat('a/..')).ino, (await c.stat('.')).ino, "'..' of a subdirectory is its parent");
});

behaviour('getdents64', async (c) => {
  const { sys: s } = c;
  const want = new Set<string>();
  for (let i = 0; i < 60; i++) { await c.write(`n${String(i).padStart(3, '0')}`, `${i}`); want.add(`n${String(i).padStart(3, '0')}`); }
  for (let i = 0; i < 60; i += 3) { await s.unlink(c.p(`n${String(i).padStart(3, '0')}`)); want.delete(`n${String(i).padStart(3, '0')}`); }
  await s.mkdir(c.p('sub'), 0o755); want.add('sub');
  for (let i = 60; i < 70; i++) { await c.write(`m${i}`, 'm'); want.add(`m${i}`); }
  const expected = ['.', '..', ...want].sort();
  for (const count of [4096, 200]) {
    const r = await listDir(s, c.dir, count);
    if (typeof r === 'number') { c.rc('list', r, 0, 'getdents64'); continue; }
    const names = r.map((e) => e.name);
    c.eq('no-dups', names.length, new Set(names).size, `no duplicates (buffer ${count})`);
    c.eq('names', [...names].sort(), expected, `every name once, '.' and '..' included (buffer ${count})`);
    const types = Object.fromEntries(r.map((e) => [e.name, e.type]));
    c.eq('types', [types.sub, types.n001, types.m65], [DT_DIR, DT_REG, DT_REG], 'd_type');
    const ino = (await c.stat('n001')).ino;
    c.eq('ino', r.find((e) => e.name === 'n001')?.ino, ino, 'd_ino is st_ino');
  }
  // d_off: seeking to an entry's offset resumes after it (seekdir/telldir).
  {
    const all = await listDir(s, c.dir);
    if (typeof all !== 'number') {
      const fd = await s.open(c.dir, O_RDONLY | O_DIRECTORY);
      let okSeek = true;
      for (const k of [0, 5, 20, all.length - 2]) {
        await s.lseek(fd, all[k]!.off, SEEK_SET);
        const r = await s.getdents64(fd, 4096);
        const want = all.slice(k + 1, k + 1 + (typeof r === 'number' ? 0 : r.length)).map((e) => e.name);
        if (typeof r === 'number' || r.length === 0 || r.map((e) => e.name).join() !== want.join()) { okSeek = false; c.t.comment(`after seeking to entry ${k}: ${typeof r === 'number' ? r : r.map((e) => e.name).slice(0, 3)}`); }
      }
      await s.close(fd);
      c.ok('seek', okSeek, 'lseek to a d_off resumes at the next entry');
    }
  }
  // Rewind: the same listing again.
  const fd = await s.open(c.dir, O_RDONLY | O_DIRECTORY);
  const first = await s.getdents64(fd, 65536);
  await s.lseek(fd, 0, SEEK_SET);
  const again = await s.getdents64(fd, 65536);
  await s.close(fd);
  c.eq('rewind', typeof again === 'number' ? again : again.map((e) => e.name), typeof first === 'number' ? first : first.map((e) => e.name), 'lseek(0) lists the same again');
  const ffd = await s.open(c.p('n001'), O_RDONLY);
  c.rc('notdir', await s.getdents64(ffd, 4096), -ENOTDIR, 'getdents64 on a file');
  await s.close(ffd);
});

behaviour('names', async (c) => {
  const { sys: s } = c;
  const n255 = 'a'.repeat(250) + '.text';
  const n256 = 'b'.repeat(251) + '.text';
  c.rc('255', await c.write(n255, 'long'), 0, 'a 255-byte name');
  c.eq('255-read', await c.read(n255), 'long', 'reads back');
  const l = await listDir(s, c.dir);
  c.ok('255-list', typeof l !== 'number' && l.some((e) => e.name === n255), 'listed under its full name');
  c.rc('256', await c.write(n256, 'x'), -ENAMETOOLONG, 'a 256-byte name: create');
  c.rc('256-stat', await s.stat(c.p(n256)), -ENAMETOOLONG, 'lookup');
  c.rc('256-mkdir', await s.mkdir(c.p(n256), 0o755), -ENAMETOOLONG, 'mkdir');
  c.rc('256-rename', await s.rename(c.p(n255), c.p(n256)), -ENAMETOOLONG, 'rename to it');
  c.rc('255-dir', await s.mkdir(c.p('d'.repeat(255)), 0o755), 0, 'a 255-byte directory name');
  const uni = 'ünïcödé-名前';
  c.rc('utf8', await c.write(uni, 'u'), 0, 'a UTF-8 name');
  const l2 = await listDir(s, c.dir);
  c.ok('utf8-list', typeof l2 !== 'number' && l2.some((e) => e.name === uni), 'listed as written');
  // Case.
  await c.write('Mixed.Case', 'mc');
  const other = await s.lstat(c.p('MIXED.CASE'));
  if (c.fs.caseInsensitive) {
    c.eq('case-lookup', st(other).ino, (await c.stat('Mixed.Case')).ino, 'another case finds the same file');
    c.rc('case-excl', await s.open(c.p('mixed.case'), O_CREAT | O_EXCL | O_WRONLY, 0o644), -EEXIST, 'O_EXCL in another case');
    c.rc('case-rename', await s.rename(c.p('Mixed.Case'), c.p('mixed.CASE')), 0, 'rename to change the case');
    const l3 = await listDir(s, c.dir);
    c.ok('case-rename-list', typeof l3 !== 'number' && l3.some((e) => e.name === 'mixed.CASE') && !l3.some((e) => e.name === 'Mixed.Case'), 'listed in the new case only');
  } else {
    c.rc('case-lookup', other, -ENOENT, 'another case is another name');
    c.rc('case-create', await c.write('MIXED.CASE', 'MC'), 0, 'and can be created');
    c.eq('case-distinct', [await c.read('Mixed.Case'), await c.read('MIXED.CASE')], ['mc', 'MC'], 'two files');
  }
  for (const ch of '*?<>|":\\\x01\x1f') {
    const want = c.fs.badNameChars.includes(ch) ? -EINVAL : 0;
    c.rc(`char-${ch}`, await c.write(`a${ch}b`, 'x'), want, `a name with ${JSON.stringify(ch)}`);
  }
  c.rc('slash-dot', await s.mkdir(c.p('.'), 0o755), -EEXIST, "mkdir '.'");
  c.rc('dots', await c.write('dotted.', 'dots'), 0, "a name ending in '.'");
  if (c.fs.stripsTrailingDots) {
    c.eq('dots-same', await c.read('dotted'), 'dots', 'is the name without the dot');
    c.rc('dots-excl', await s.open(c.p('dotted..'), O_CREAT | O_EXCL | O_WRONLY, 0o644), -EEXIST, 'and with more dots');
  } else {
    c.rc('dots-other', await s.lstat(c.p('dotted')), -ENOENT, 'the name without the dot is another name');
  }
});

behaviour('unlinked open files', async (c) => {
  const { sys: s } = c;
  const data = pattern(200_000, 3);
  await c.write('f', data);
  const before = c.fs.statfsCounts ? sfs(await s.statfs(c.dir)).bfree : 0;
  const bsize = c.fs.statfsCounts ? sfs(await s.statfs(c.dir)).bsize : 1;
  const fd = await s.open(c.p('f'), O_RDWR);
  c.rc('unlink', await s.unlink(c.p('f')), 0, 'unlink while open');
  c.rc('gone', await s.lstat(c.p('f')), -ENOENT, 'the name is gone');
  c.eq('nlink0', st(await s.fstat(fd)).nlink, 0, 'fstat: nlink 0');
  const b = new Uint8Array(data.length);
  c.eq('read', await s.pread64(fd, b, 0), data.length, 'still readable');
  c.eq('read-data', sha(b), sha(data), 'with its data');
  c.eq('write', await s.pwrite64(fd, enc('more'), data.length), 4, 'and writable');
  c.eq('size', st(await s.fstat(fd)).size, data.length + 4, 'grows');
  const l = await listDir(s, c.dir);
  c.eq('list', typeof l === 'number' ? l : l.map((e) => e.name).sort(), ['.', '..'], 'not listed');
  if (c.fs.statfsCounts) c.ok('kept', (sfs(await s.statfs(c.dir)).bfree - before) * bsize < data.length / 2, 'the blocks stay in use while it is open');
  await c.write('f', 'new file, same name');
  c.eq('reuse', await c.read('f'), 'new file, same name', 'the name can be reused');
  await s.unlink(c.p('f'));
  c.rc('close', await s.close(fd), 0, 'close');
  if (c.fs.statfsCounts) {
    const after = sfs(await s.statfs(c.dir)).bfree;
    c.ok('freed', (after - before) * bsize >= data.length, `the blocks come back at the last close (f_bfree ${before} → ${after})`);
  }
});

behaviour('statfs', async (c) => {
  const { sys: s } = c;
  const a = sfs(await s.statfs(c.dir));
  c.eq('type', a.type, c.fs.statfsType, 'f_type');
  c.eq('namelen', a.namelen, c.fs.namelen, 'f_namelen');
  c.ok('bsize', a.bsize > 0, 'f_bsize');
  c.eq('flags', a.flags & 0x21, 0x20, 'f_flags: ST_VALID, not ST_RDONLY');
  if (!c.fs.statfsCounts) { c.eq('nocounts', [a.blocks, a.bfree], [0, 0], 'no block counts'); return; }
  c.ok('counts', a.blocks > 0 && a.bfree <= a.blocks && a.bavail <= a.bfree, `f_blocks ${a.blocks} ≥ f_bfree ${a.bfree} ≥ f_bavail ${a.bavail}`);
  const n = 1024 * 1024;
  c.rc('write', await c.write('big', pattern(n, 4)), 0, 'write 1 MiB');
  const b = sfs(await s.statfs(c.dir));
  const used = (a.bfree - b.bfree) * a.bsize;
  c.ok('shrinks', used >= n && used < n + 256 * 1024, `f_bfree shrinks by the data (${used} bytes)`);
  const fd = await s.open(c.p('big'), O_RDONLY);
  const fb = await s.fstatfs(fd);
  await s.close(fd);
  c.eq('fstatfs', typeof fb === 'number' ? fb : fb.bfree, b.bfree, 'fstatfs agrees');
  c.rc('unlink', await s.unlink(c.p('big')), 0, 'unlink');
  c.eq('back', sfs(await s.statfs(c.dir)).bfree, a.bfree, 'f_bfree comes back after unlink');
  c.rc('files', await c.write('one', 'x'), 0, 'a file');
  if (a.files > 0) c.ok('ffree', sfs(await s.statfs(c.dir)).ffree < a.ffree, 'f_ffree shrinks by a create');
});

behaviour('rename over an open file', async (c) => {
  const { sys: s } = c;
  await c.write('old', 'the old contents');
  await c.write('new', 'the new contents');
  const fd = await s.open(c.p('old'), O_RDONLY);
  c.rc('rename', await s.rename(c.p('new'), c.p('old')), 0, 'rename over a file that is open');
  const b = new Uint8Array(64);
  const n = await s.pread64(fd, b, 0);
  c.eq('old-data', n >= 0 ? dec(b.subarray(0, n)) : n, 'the old contents', 'the open descriptor still reads the replaced file');
  c.eq('old-nlink', st(await s.fstat(fd)).nlink, 0, 'which has no name left');
  c.eq('new-data', await c.read('old'), 'the new contents', 'the name has the new file');
  await s.close(fd);
});

behaviour('readdir while removing (rm -r)', async (c) => {
  const { sys: s } = c;
  const N = 150;
  for (let i = 0; i < N; i++) await c.write(`entry-with-a-long-name-number-${i}`, `${i}`);
  for (let i = 0; i < 5; i++) { await s.mkdir(c.p(`sub${i}`), 0o755); await c.write(`sub${i}/x`, 'x'); }
  const fd = await s.open(c.dir, O_RDONLY | O_DIRECTORY);
  const seen: string[] = [];
  let bad = 0;
  for (;;) {
    const r = await s.getdents64(fd, 300);
    if (typeof r === 'number') { bad++; break; }
    if (r.length === 0) break;
    for (const e of r) {
      if (e.name === '.' || e.name === '..') continue;
      seen.push(e.name);
      if (e.type === DT_DIR) { await s.unlink(c.p(`${e.name}/x`)); if (await s.rmdir(c.p(e.name)) !== 0) bad++; }
      else if (await s.unlink(c.p(e.name)) !== 0) bad++;
    }
  }
  await s.close(fd);
  c.eq('errors', bad, 0, 'every entry returned could be removed');
  c.eq('once', seen.length, new Set(seen).size, 'no entry returned twice');
  c.eq('all', seen.length, N + 5, 'every entry returned once although earlier ones were removed');
  const l = await listDir(s, c.dir);
  c.eq('empty', typeof l === 'number' ? l : l.map((e) => e.name).sort(), ['.', '..'], 'the directory is empty');
  c.eq('nlink', (await c.stat('.')).nlink, 2, 'with 2 links');
});

behaviour('random pwrites against a model', async (c) => {
  const { sys: s } = c;
  // Unaligned writes across block and cluster boundaries, truncates in between.
  let x = 12345;
  const rnd = (n: number) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n; };
  let model = new Uint8Array(0);
  const fd = await s.open(c.p('f'), O_CREAT | O_RDWR, 0o644);
  let bad = '';
  for (let i = 0; i < 300 && !bad; i++) {
    if (rnd(10) === 0) {
      const len = rnd(600_000);
      if (await s.ftruncate(fd, len) !== 0) bad = `ftruncate ${len}`;
      const m = new Uint8Array(len); m.set(model.subarray(0, Math.min(len, model.length))); model = m;
      continue;
    }
    const off = rnd(500_000), len = 1 + rnd(rnd(4) ? 5000 : 70_000);
    const data = pattern(len, i + 7);
    const n = await s.pwrite64(fd, data, off);
    if (n !== len) { bad = `pwrite64 ${len} at ${off}: ${show(n)}`; break; }
    if (off + len > model.length) { const m = new Uint8Array(off + len); m.set(model); model = m; }
    model.set(data, off);
  }
  c.eq('calls', bad, '', '300 pwrite64/ftruncate calls succeed');
  c.eq('size', st(await s.fstat(fd)).size, model.length, 'the size is the model\'s');
  const got = new Uint8Array(model.length);
  await s.pread64(fd, got, 0);
  await s.close(fd);
  c.eq('data', sha(got), sha(model), 'the contents are the model\'s');
});

behaviour('fallocate', async (c) => {
  const { sys: s } = c;
  await c.write('f', 'abcdefghij');
  const fd = await s.open(c.p('f'), O_RDWR);
  const [m0, keep, punch] = c.fs.fallocate;
  c.rc('mode0', await s.fallocate(fd, 0, 0, 20_000), m0, 'fallocate mode 0');
  if (m0 === 0) c.eq('mode0-size', st(await s.fstat(fd)).size, 20_000, 'extends the size');
  const size = st(await s.fstat(fd)).size;
  c.rc('keep', await s.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 100_000), keep, 'FALLOC_FL_KEEP_SIZE');
  c.eq('keep-size', st(await s.fstat(fd)).size, size, 'keeps the size');
  // ramfs has no space to reserve (no statfs counts): KEEP_SIZE need not allocate there.
  if (keep === 0 && c.fs.statfsCounts && c.fs.blocks) c.ok('keep-blocks', st(await s.fstat(fd)).blocks * 512 >= 100_000, 'but allocates');
  c.rc('punch', await s.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3), punch, 'FALLOC_FL_PUNCH_HOLE');
  const b = new Uint8Array(10);
  await s.pread64(fd, b, 0);
  c.eq('punch-data', dec(b), punch === 0 ? 'ab\0\0\0fghij' : 'abcdefghij', punch === 0 ? 'the hole reads as zeros' : 'data untouched');
  c.eq('size-after', st(await s.fstat(fd)).size, size, 'size unchanged');
  await s.close(fd);
});

behaviour('extended attributes', async (c) => {
  const { sys: s } = c;
  await c.write('f', 'x');
  const r = await s.setxattr(c.p('f'), 'user.colour', enc('blue'), 0);
  c.rc('set', r, c.fs.userXattr, 'setxattr user.colour');
  if (c.fs.userXattr !== 0) {
    c.rc('get-none', await s.getxattr(c.p('f'), 'user.colour'), c.fs.userXattr, 'getxattr');
    return;
  }
  const g = await s.getxattr(c.p('f'), 'user.colour');
  c.eq('get', typeof g === 'number' ? g : dec(g), 'blue', 'getxattr');
  c.rc('big', await s.setxattr(c.p('f'), 'user.big', pattern(900, 8), 0), 0, 'a 900-byte value');
  const l = await s.listxattr(c.p('f'));
  c.eq('list', typeof l === 'number' ? l : [...l].filter((n) => n.startsWith('user.')).sort(), ['user.big', 'user.colour'], 'listxattr');
  c.rc('remove', await s.removexattr(c.p('f'), 'user.colour'), 0, 'removexattr');
  c.rc('gone', await s.getxattr(c.p('f'), 'user.colour'), -ENODATA, 'gone');
  await s.mkdir(c.p('d'), 0o755);
  c.rc('dir', await s.setxattr(c.p('d'), 'user.d', enc('dir'), 0), 0, 'on a directory');
});

behaviour('permissions as another user', async (c) => {
  const { sys: s } = c;
  await c.write('f', 'private');
  await s.chmod(c.p('f'), 0o644); // vfat: ignored, stays 0755
  await s.mkdir(c.p('d'), 0o755);
  const mode = (await c.stat('f')).mode;
  const mtime = (await c.stat('f')).mtime;
  await asUser(s, 1000, 1000, [], async () => {
    c.eq('read', await c.read('f'), 'private', 'others may read');
    c.rc('write', await s.open(c.p('f'), O_WRONLY), -EACCES, 'but not write');
    c.rc('create', await s.open(c.p('d/new'), O_CREAT | O_WRONLY, 0o644), -EACCES, 'nor create in a 0755 directory of root');
    c.rc('mkdir', await s.mkdir(c.p('d/new'), 0o755), -EACCES, 'nor mkdir there');
    c.rc('unlink', await s.unlink(c.p('f')), -EACCES, 'nor unlink from it');
    c.rc('rename', await s.rename(c.p('f'), c.p('d/f')), -EACCES, 'nor rename');
    c.rc('chmod', await s.chmod(c.p('f'), 0o777), -EPERM, 'chmod by a non-owner');
    c.rc('chmod-ro', await s.chmod(c.p('f'), 0o555), -EPERM, 'chmod 0555 by a non-owner');
    c.rc('utime', await s.utimensat(AT_FDCWD, c.p('f'), [{ sec: 1, nsec: 0 }, { sec: 1, nsec: 0 }], 0), -EPERM, 'explicit times by a non-owner');
  });
  c.eq('chmod-unchanged', (await c.stat('f')).mode, mode, 'the mode is unchanged');
  c.eq('utime-unchanged', (await c.stat('f')).mtime, mtime, 'the mtime is unchanged');
  if (c.fs.owners === 'posix') {
    await s.chown(c.p('d'), 1000, 1000);
    await asUser(s, 1000, 1000, [], async () => {
      c.rc('own-create', await c.write('d/mine', 'mine'), 0, 'creating in a directory of ones own');
      const x = await c.stat('d/mine');
      c.eq('own-ids', [x.uid, x.gid], [1000, 1000], 'the new file is the caller\'s');
      c.rc('own-chmod', await s.chmod(c.p('d/mine'), 0o600), 0, 'the owner may chmod');
    });
  }
});

behaviour('sync calls', async (c) => {
  const { sys: s } = c;
  await c.write('f', 'x');
  const fd = await s.open(c.p('f'), O_RDWR);
  c.rc('fsync', await s.fsync(fd), 0, 'fsync');
  c.rc('fdatasync', await s.fdatasync(fd), 0, 'fdatasync');
  c.rc('syncfs', await s.syncfs(fd), 0, 'syncfs');
  await s.close(fd);
  c.rc('sync', await s.sync(), 0, 'sync');
  const d = await s.open(c.dir, O_RDONLY | O_DIRECTORY);
  c.rc('fsync-dir', await s.fsync(d), 0, 'fsync of a directory');
  await s.close(d);
});

behaviour('concurrent calls', async (c) => {
  const { sys: s } = c;
  const N = 200;
  const r = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const fd = await s.open(c.p(`c${i}`), O_CREAT | O_WRONLY, 0o644);
    if (fd < 0) return `open ${errnoName(fd)}`;
    const n = await s.write(fd, enc(`file number ${i} `.repeat(i % 7 + 1)));
    return (await s.close(fd)) === 0 && n > 0 ? 'ok' : `write ${n}`;
  }));
  c.eq('all', r.filter((x) => x !== 'ok'), [], `${N} concurrent open/write/close`);
  const back = await Promise.all(Array.from({ length: N }, async (_, i) => (await c.read(`c${i}`)) === `file number ${i} `.repeat(i % 7 + 1)));
  c.eq('read', back.filter((x) => !x).length, 0, 'each file has its own contents');
  const l = await listDir(s, c.dir);
  c.eq('list', typeof l === 'number' ? l : l.length, N + 2, 'all listed');
  const u = await Promise.all(Array.from({ length: N }, (_, i) => (i % 2 ? s.unlink(c.p(`c${i}`)) : s.rename(c.p(`c${i}`), c.p(`r${i}`)))));
  c.eq('unlink-rename', u.filter((x) => x !== 0).map(show), [], 'concurrent unlinks and renames');
  const l2 = await listDir(s, c.dir);
  c.eq('list2', typeof l2 === 'number' ? l2 : l2.map((e) => e.name).sort(), ['.', '..', ...Array.from({ length: N / 2 }, (_, i) => `r${2 * i}`)].sort(), 'the renamed half is left');
});

/** On a read-only mount: reads work, every modifying call is EROFS. */
async function readOnlyChecks(c: Ctx): Promise<void> {
  const { sys: s } = c;
  const d = c.dir; // pre-populated: file, dir/inner, link -> file
  c.eq('ro-read', await c.read('file'), 'read-only contents\n', 'a file reads');
  const l = await listDir(s, d);
  c.eq('ro-list', typeof l === 'number' ? l : l.map((e) => e.name).sort(), ['.', '..', 'dir', 'file', 'link'], 'the directory lists');
  c.eq('ro-readlink', await s.readlink(c.p('link')), 'file', 'readlink');
  c.ok('ro-flag', (sfs(await s.statfs(d)).flags & 1) === 1, 'statfs: ST_RDONLY');
  const fd = await s.open(c.p('file'), O_RDONLY);
  for (const [id, what, p] of [
    ['ro-open-w', 'open O_WRONLY', s.open(c.p('file'), O_WRONLY)],
    ['ro-open-rw', 'open O_RDWR', s.open(c.p('file'), O_RDWR)],
    ['ro-open-trunc', 'open O_TRUNC', s.open(c.p('file'), O_RDONLY | O_TRUNC)],
    ['ro-creat', 'O_CREAT of a new name', s.open(c.p('new'), O_CREAT | O_WRONLY, 0o644)],
    ['ro-mkdir', 'mkdir', s.mkdir(c.p('newdir'), 0o755)],
    ['ro-rmdir', 'rmdir', s.rmdir(c.p('dir/inner'))],
    ['ro-unlink', 'unlink', s.unlink(c.p('file'))],
    ['ro-rename', 'rename', s.rename(c.p('file'), c.p('renamed'))],
    ['ro-link', 'link', s.link(c.p('file'), c.p('hard'))],
    ['ro-symlink', 'symlink', s.symlink('file', c.p('sym'))],
    ['ro-mknod', 'mknod', s.mknod(c.p('fifo'), S_IFIFO | 0o644, 0)],
    ['ro-chmod', 'chmod', s.chmod(c.p('file'), 0o600)],
    ['ro-fchmod', 'fchmod', s.fchmod(fd, 0o600)],
    ['ro-chown', 'chown', s.chown(c.p('file'), 1, 1)],
    ['ro-utimensat', 'utimensat', s.utimensat(AT_FDCWD, c.p('file'), null, 0)],
    ['ro-truncate', 'truncate', s.truncate(c.p('file'), 0)],
    ['ro-setxattr', 'setxattr', s.setxattr(c.p('file'), 'user.x', enc('y'), 0)],
    ['ro-removexattr', 'removexattr', s.removexattr(c.p('file'), 'user.x')],
  ] as [string, string, Promise<number>][]) c.rc(id, await p, -EROFS, what);
  await s.close(fd);
  c.eq('ro-unchanged', await c.read('file'), 'read-only contents\n', 'the file is unchanged');
}

// ---------------------------------------------------------------------------------------
// Mounting each filesystem, and the judges.

interface Mounted { mnt: string; img?: string; id?: number }

async function mountFs(k: Kernel, p: Profile, dir: string, small = false): Promise<Mounted | string> {
  if (p.kind === 'ramfs') {
    const mnt = '/conformance-ramfs';
    await k.sys.mkdir(mnt, 0o755);
    const r = await k.sys.mount('none', mnt, 'ramfs', 0, null);
    return r === 0 ? { mnt } : `mount ramfs: ${errnoName(r)}`;
  }
  let img: string;
  if (p.mkfs) img = await p.mkfs(dir, small);
  else {
    const src = fs.mkdtempSync(path.join(dir, 'ro-src-'));
    fs.mkdirSync(path.join(src, 't', 'dir', 'inner'), { recursive: true });
    fs.writeFileSync(path.join(src, 't', 'file'), 'read-only contents\n');
    fs.symlinkSync('file', path.join(src, 't', 'link'));
    img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 16, fromDir: src });
  }
  const type = p.fsType, flags = p.mountFlags;
  const id = await k.diskAdd({ path: img });
  if (id < 0) return `diskAdd: ${errnoName(id)}`;
  const mnt = await k.mountDev(id, 0, type, flags, '');
  if (typeof mnt !== 'string') return `mount ${type}: ${errnoName(mnt)}`;
  return { mnt, img, id };
}

async function unmountFs(k: Kernel, m: Mounted): Promise<number> {
  if (m.id === undefined) return k.sys.umount2(m.mnt, 0);
  const r = await k.umountDev(m.id, 0);
  if (r === 0) await k.diskRemove(m.id);
  return r;
}

async function judge(p: Profile, img: string): Promise<{ clean: boolean; output: string }> {
  return p.kind === 'vfat' ? fsckVfatClean(img) : e2fsckClean(img);
}

/** The whole tree under `dir`: what a remount must give back. */
async function snapshot(sys: Sys, dir: string, p: Profile, rel = '', out = new Map<string, unknown>()): Promise<Map<string, unknown>> {
  const l = await listDir(sys, `${dir}${rel}`);
  if (typeof l === 'number') { out.set(rel, `list ${errnoName(l)}`); return out; }
  for (const e of l) {
    if (e.name === '.' || e.name === '..' || (rel === '' && e.name === 'lost+found')) continue;
    const r = `${rel}/${e.name}`;
    const x = st(await sys.lstat(`${dir}${r}`));
    const base = { mode: x.mode, nlink: x.nlink, uid: x.uid, gid: x.gid, size: x.size, mtime: x.mtime, ctime: p.ctimeStored ? x.ctime : 0, ino: p.stableIno ? x.ino : 0 };
    if ((x.mode & S_IFMT) === S_IFDIR) { out.set(r, base); await snapshot(sys, dir, p, r, out); }
    else if ((x.mode & S_IFMT) === S_IFLNK) out.set(r, { ...base, target: await sys.readlink(`${dir}${r}`) });
    else if ((x.mode & S_IFMT) === S_IFREG) {
      const d = await readAll(sys, `${dir}${r}`);
      out.set(r, { ...base, sha: typeof d === 'number' ? d : sha(d) });
    } else out.set(r, base);
  }
  return out;
}

// ---------------------------------------------------------------------------------------

const skip = whyNot(['mke2fs', 'e2fsck', 'mkfs.vfat', 'fsck.vfat']);
if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'conformance');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const p of FILESYSTEMS) {
    t.test(p.name, async (t) => {
      const m = await mountFs(k, p, dir);
      if (typeof m === 'string') { t.fail(m); return; }
      try {
        if (p.readOnly) {
          await readOnlyChecks(new Ctx(t, p, k.sys, `${m.mnt}/t`, 'read-only'));
          return;
        }
        for (const [name, fn] of BEHAVIOURS) {
          await t.test(name, async (t) => {
            const d = `${m.mnt}/${name.replace(/\W+/g, '-')}`;
            t.equal(await k.sys.mkdir(d, 0o755), 0, `mkdir ${d}`);
            await fn(new Ctx(t, p, k.sys, d, name));
          });
        }
        if (p.persistent) {
          const before = await snapshot(k.sys, m.mnt, p);
          t.equal(await unmountFs(k, m), 0, 'unmounted');
          const id = await k.diskAdd({ path: m.img! });
          const mnt = await k.mountDev(id, 0, p.fsType, 0, '');
          if (typeof mnt !== 'string') { t.fail(`remount: ${errnoName(mnt)}`); return; }
          Object.assign(m, { mnt, id });
          const after = await snapshot(k.sys, mnt, p);
          t.same(Object.fromEntries(after), Object.fromEntries(before), `the tree reads back the same after a remount (${before.size} entries)`);
        }
      } finally {
        t.equal(await unmountFs(k, m), 0, 'unmounted');
      }
      if (m.img) {
        const j = await judge(p, m.img);
        t.ok(j.clean, `${p.kind === 'vfat' ? 'fsck.vfat -n' : 'e2fsck -fn'} is clean`, j.clean ? {} : { output: j.output.slice(0, 3000) });
      }
    });
  }

  for (const p of FILESYSTEMS.filter((p) => p.rootDirEntries)) {
    t.test(`${p.name}: a full root directory`, async (t) => {
      const m = await mountFs(k, p, dir);
      if (typeof m === 'string') { t.fail(m); return; }
      const c = new Ctx(t, p, k.sys, m.mnt, 'root directory');
      try {
        let n = 0, r = 0;
        // Upper-case 8.3 names take one directory entry each (shortname=mixed stores a
        // lower-case name with a long-name entry too: two).
        for (; n < p.rootDirEntries! + 10; n++) if ((r = await c.write(`F${n}`, '')) !== 0) break;
        c.rc('enospc', r, -ENOSPC, `creating in the root ends in ENOSPC (after ${n} files)`);
        c.eq('count', n, p.rootDirEntries!, 'after exactly as many entries as the root directory has');
        c.rc('mkdir', await k.sys.mkdir(c.p('d'), 0o755), -ENOSPC, 'mkdir too');
        const l = await listDir(k.sys, m.mnt);
        c.eq('list', typeof l === 'number' ? l : l.length - 2, n, 'every file made is listed');
        c.rc('unlink', await k.sys.unlink(c.p('F0')), 0, 'unlink one');
        c.rc('again', await c.write('G', 'g'), 0, 'and there is room again');
        c.rc('lower', await c.write('h', 'h'), -ENOSPC, 'but not for a lower-case name (two entries)');
      } finally {
        t.equal(await unmountFs(k, m), 0, 'unmounted');
      }
      const j = await judge(p, m.img!);
      t.ok(j.clean, 'fsck.vfat -n is clean', j.clean ? {} : { output: j.output.slice(0, 3000) });
    });
  }

  for (const p of FILESYSTEMS.filter((p) => p.enospc)) {
    t.test(`${p.name}: ENOSPC on a small image`, async (t) => {
      const m = await mountFs(k, p, dir, true);
      if (typeof m === 'string') { t.fail(m); return; }
      const c = new Ctx(t, p, k.sys, m.mnt, 'enospc');
      const s = k.sys;
      try {
        const before = sfs(await s.statfs(m.mnt));
        await c.write('keep', 'kept');
        const mid = sfs(await s.statfs(m.mnt)).bfree;
        const fd = await s.open(c.p('fill'), O_CREAT | O_WRONLY, 0o644);
        const chunk = pattern(32 * 1024, 5);
        let total = 0, last = 0;
        for (let i = 0; i < 1000; i++) {
          last = await s.write(fd, chunk);
          if (last <= 0) break;
          total += last;
        }
        c.rc('enospc', last, -ENOSPC, `writing until the volume is full ends in ENOSPC (after ${total} bytes)`);
        c.ok('filled', total > 0 && total <= before.blocks * before.bsize, 'some data went in first');
        c.eq('size', st(await s.fstat(fd)).size, total, 'st_size is what was written');
        c.rc('again', await s.write(fd, chunk.subarray(0, 4096)), -ENOSPC, 'another write: ENOSPC');
        c.rc('close', await s.close(fd), 0, 'close');
        c.eq('bfree0', sfs(await s.statfs(m.mnt)).bfree * before.bsize < 64 * 1024, true, 'statfs: (almost) no free blocks');
        const d = await readAll(s, c.p('fill'));
        const ok = typeof d !== 'number' && d.length === total && Array.from({ length: Math.ceil(total / chunk.length) }, (_, i) => i)
          .every((i) => Buffer.compare(Buffer.from(d.subarray(i * chunk.length, Math.min(total, (i + 1) * chunk.length))), Buffer.from(chunk.subarray(0, Math.min(chunk.length, total - i * chunk.length)))) === 0);
        c.ok('data', ok, 'what was written reads back');
        c.eq('keep', await c.read('keep'), 'kept', 'other files untouched');
        c.rc('unlink', await s.unlink(c.p('fill')), 0, 'unlink the filler');
        c.eq('bfree-back', sfs(await s.statfs(m.mnt)).bfree, mid, 'f_bfree back to where it was');
        c.rc('after', await c.write('after', pattern(100_000, 6)), 0, 'writing works again');
        c.eq('after-read', sha((await readAll(s, c.p('after'))) as Uint8Array), sha(pattern(100_000, 6)), 'and reads back');
      } finally {
        t.equal(await unmountFs(k, m), 0, 'unmounted');
      }
      const j = await judge(p, m.img!);
      t.ok(j.clean, `${p.kind === 'vfat' ? 'fsck.vfat -n' : 'e2fsck -fn'} is clean after ENOSPC`, j.clean ? {} : { output: j.output.slice(0, 3000) });
    });
  }
}
