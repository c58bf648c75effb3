// Boot suite, part 1 (in the spirit of LKL's tests/boot.c): open, close, read, write,
// pread64, pwrite64, readv, writev, lseek, stat/fstat/newfstatat/statx, getdents64,
// and orphan handling, each with its success case and its errno cases.
import t from 'tap';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, EACCES, EBADF, EEXIST, EINVAL, EISDIR, ELOOP,
  ENAMETOOLONG, ENOENT, ENOTDIR, ENXIO, EPERM, EROFS, ESPIPE, F_GETFD, F_GETFL, FD_CLOEXEC, MS_RDONLY,
  O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOATIME, O_NOFOLLOW, O_PATH, O_RDONLY, O_RDWR,
  O_TRUNC, O_WRONLY, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE, SEEK_SET, STATX_BASIC_STATS, STATX_BTIME,
  S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, DT_DIR, DT_LNK, DT_REG, opendir,
  type linux_dirent64, type stat, type statx,
} from '../../lib/index.js';
import { icacheStats } from '../../lib/kernel/fs/inode.js';
import { nrFiles } from '../../lib/kernel/fs/file_table.js';
import { asUser, boot, dec, enc, readFile, table, writeFile, type Booted } from './helpers.js';

let k: Booted;
t.before(async () => { k = await boot(); });
t.teardown(async () => { await k.halt(); });

const st = (r: stat | number): stat => { if (typeof r === 'number') throw new Error(`stat failed: ${r}`); return r; };

t.test('open and close', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/o', 0o755), 0);
  const fd = await s.open('/o/f', O_CREAT | O_RDWR, 0o666);
  t.ok(fd >= 0, 'O_CREAT creates');
  t.equal(st(await s.fstat(fd)).mode, S_IFREG | 0o644, 'mode & ~umask (022)');
  t.equal(await s.close(fd), 0);
  t.equal(await s.close(fd), -EBADF, 'double close is EBADF');
  const a = await s.open('/o/f', O_RDONLY);
  const b = await s.open('/o/f', O_RDONLY);
  t.equal(b, a + 1, 'lowest free descriptors in order');
  await s.close(a);
  const c = await s.open('/o/f', O_RDONLY);
  t.equal(c, a, 'a freed descriptor is reused first');
  await s.close(b); await s.close(c);
  // dirfd-relative opens
  const dfd = await s.open('/o', O_RDONLY | O_DIRECTORY);
  const rel = await s.openat(dfd, 'f', O_RDONLY);
  t.ok(rel >= 0, 'openat relative to a directory fd');
  t.equal(await s.openat(rel, 'x', O_RDONLY), -ENOTDIR, 'dirfd that is not a directory');
  t.equal(await s.openat(999, 'x', O_RDONLY), -EBADF, 'bad dirfd');
  const abs = await s.openat(999, '/o/f', O_RDONLY);
  t.ok(abs >= 0, 'dirfd ignored for absolute paths');
  await s.close(abs);
  await s.close(rel); await s.close(dfd);
  t.equal(await writeFile(s, '/o/data', 'hello'), 0);
  t.equal(await s.symlink('data', '/o/link'), 0);
  t.equal(await s.symlink('nowhere', '/o/dangling'), 0);
  t.equal(await s.mknod('/o/fifo', S_IFIFO | 0o644, 0), 0);
  t.equal(await s.mknod('/o/sock', S_IFSOCK | 0o644, 0), 0);
  await table(t, [
    ['ENOENT', () => s.open('/o/missing', O_RDONLY), ENOENT],
    ['ENOENT in the middle', () => s.open('/o/missing/x', O_RDONLY), ENOENT],
    ['ENOTDIR in the middle', () => s.open('/o/data/x', O_RDONLY), ENOTDIR],
    ['ENOTDIR with trailing slash', () => s.open('/o/data/', O_RDONLY), ENOTDIR],
    ['O_EXCL on existing', () => s.open('/o/data', O_CREAT | O_EXCL | O_WRONLY, 0o644), EEXIST],
    ['O_EXCL on a symlink (not followed)', () => s.open('/o/dangling', O_CREAT | O_EXCL | O_WRONLY, 0o644), EEXIST],
    ['O_DIRECTORY on a file', () => s.open('/o/data', O_RDONLY | O_DIRECTORY), ENOTDIR],
    ['O_CREAT|O_DIRECTORY', () => s.open('/o/new', O_CREAT | O_DIRECTORY | O_RDONLY, 0o644), EINVAL],
    ['O_WRONLY on a directory', () => s.open('/o', O_WRONLY), EISDIR],
    ['O_RDONLY|O_TRUNC on a directory', () => s.open('/o', O_RDONLY | O_TRUNC), EISDIR],
    ['O_CREAT on a directory', () => s.open('/o', O_CREAT | O_RDONLY, 0o644), EISDIR],
    ['O_CREAT with a trailing slash', () => s.open('/o/newfile/', O_CREAT | O_WRONLY, 0o644), EISDIR],
    ['O_NOFOLLOW on a symlink', () => s.open('/o/link', O_RDONLY | O_NOFOLLOW), ELOOP],
    ['O_NOFOLLOW|O_DIRECTORY on a symlink', () => s.open('/o/link', O_RDONLY | O_NOFOLLOW | O_DIRECTORY), ENOTDIR],
    ['fifo cannot be opened for I/O', () => s.open('/o/fifo', O_RDONLY), ENXIO],
    ['socket cannot be opened', () => s.open('/o/sock', O_RDONLY), ENXIO],
    ['empty path', () => s.open('', O_RDONLY), ENOENT],
    ['component over NAME_MAX', () => s.open('/o/' + 'x'.repeat(256), O_RDONLY), ENAMETOOLONG],
    ['component of NAME_MAX is fine', () => s.open('/o/' + 'x'.repeat(255), O_RDONLY), ENOENT],
    ['path of PATH_MAX bytes', () => s.open('/' + 'a/'.repeat(2047) + 'b', O_RDONLY), ENAMETOOLONG],
    ['path of PATH_MAX-1 bytes', () => s.open('/' + 'a/'.repeat(2047), O_RDONLY), ENOENT],
  ]);
  // O_CREAT through a dangling symlink creates its target.
  const d = await s.open('/o/dangling', O_CREAT | O_WRONLY, 0o600);
  t.ok(d >= 0, 'O_CREAT follows a dangling symlink');
  await s.close(d);
  t.equal(st(await s.stat('/o/nowhere')).mode & S_IFMT, S_IFREG, 'the target was created');
  // O_PATH
  const p = await s.open('/o/link', O_PATH | O_NOFOLLOW);
  t.ok(p >= 0, 'O_PATH|O_NOFOLLOW opens the symlink itself');
  t.equal(st(await s.fstat(p)).mode & S_IFMT, S_IFLNK, 'fstat on O_PATH works');
  t.equal(await s.read(p, new Uint8Array(4)), -EBADF, 'read on O_PATH is EBADF');
  t.equal(await s.fcntl(p, F_GETFL), O_PATH | O_NOFOLLOW, 'F_GETFL shows O_PATH (and O_NOFOLLOW, as Linux)');
  t.equal(await s.readlinkat(p, ''), 'data', 'readlinkat on an O_PATH symlink with empty path');
  await s.close(p);
  const pf = await s.open('/o/fifo', O_PATH);
  t.ok(pf >= 0, 'a fifo opens with O_PATH');
  await s.close(pf);
  // O_CLOEXEC
  const ce = await s.open('/o/data', O_RDONLY | O_CLOEXEC);
  t.equal(await s.fcntl(ce, F_GETFD), FD_CLOEXEC);
  t.equal((await s.fcntl(ce, F_GETFL)) & O_CLOEXEC, 0, 'O_CLOEXEC is not a file status flag');
  await s.close(ce);
  // O_TRUNC
  const tr = await s.open('/o/data', O_WRONLY | O_TRUNC);
  t.equal(st(await s.fstat(tr)).size, 0, 'O_TRUNC empties the file');
  await s.close(tr);
});

t.test('open permissions and read-only mounts', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/perm', 0o755), 0);
  t.equal(await writeFile(s, '/perm/secret', 'x', 0o600), 0);
  t.equal(await writeFile(s, '/perm/public', 'x', 0o644), 0);
  t.equal(await s.mkdir('/perm/closed', 0o700), 0);
  t.equal(await writeFile(s, '/perm/closed/f', 'x', 0o644), 0);
  await asUser(s, 1000, 1000, [], async () => {
    await table(t, [
      ['read of 0600 root file', () => s.open('/perm/secret', O_RDONLY), EACCES],
      ['read of 0644 root file', () => s.open('/perm/public', O_RDONLY).then(async (fd) => { if (fd >= 0) await s.close(fd); return fd; }), 0],
      ['write of 0644 root file', () => s.open('/perm/public', O_WRONLY), EACCES],
      ['search in 0700 dir', () => s.open('/perm/closed/f', O_RDONLY), EACCES],
      ['create in root-owned 0755 dir', () => s.open('/perm/new', O_CREAT | O_WRONLY, 0o644), EACCES],
      ['O_NOATIME on a file not owned', () => s.open('/perm/public', O_RDONLY | O_NOATIME), EPERM],
    ]);
  });
  const fd = await s.open('/perm/secret', O_RDONLY);
  t.ok(fd >= 0, 'root reads a 0600 file (CAP_DAC_OVERRIDE)');
  await s.close(fd);
  t.equal(await s.mkdir('/perm/ro', 0o755), 0);
  t.equal(await s.mount('none', '/perm/ro', 'ramfs', 0, null), 0);
  t.equal(await writeFile(s, '/perm/ro/f', 'x'), 0);
  t.equal(await s.mount('none', '/perm/ro', 'ramfs', 32 /* MS_REMOUNT */ | MS_RDONLY, null), 0, 'remount read-only');
  await table(t, [
    ['O_WRONLY on a read-only fs', () => s.open('/perm/ro/f', O_WRONLY), EROFS],
    ['O_CREAT of a new file on a read-only fs', () => s.open('/perm/ro/g', O_CREAT | O_WRONLY, 0o644), EROFS],
    ['O_CREAT|O_EXCL of an existing file on a read-only fs', () => s.open('/perm/ro/f', O_CREAT | O_EXCL | O_WRONLY, 0o644), EEXIST],
    ['O_RDONLY on a read-only fs', () => s.open('/perm/ro/f', O_RDONLY).then(async (fd) => { if (fd >= 0) await s.close(fd); return fd; }), 0],
    ['O_RDONLY|O_CREAT of an existing file on a read-only fs', () => s.open('/perm/ro/f', O_RDONLY | O_CREAT, 0o644).then(async (fd) => { if (fd >= 0) await s.close(fd); return fd; }), 0],
  ]);
  t.equal(await s.umount2('/perm/ro', 0), 0);
});

t.test('read, write, pread64, pwrite64, readv, writev', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/rw', 0o755), 0);
  const fd = await s.open('/rw/f', O_CREAT | O_RDWR, 0o644);
  t.equal(await s.write(fd, enc('hello ')), 6);
  t.equal(await s.writev(fd, [enc('wor'), enc(''), enc('ld')]), 5, 'writev gathers');
  t.equal(await s.lseek(fd, 0, SEEK_CUR), 11, 'position advanced');
  const b = new Uint8Array(5);
  t.equal(await s.pread64(fd, b, 6), 5);
  t.equal(dec(b), 'world', 'pread64 at an offset');
  t.equal(await s.lseek(fd, 0, SEEK_CUR), 11, 'pread64 leaves the position');
  t.equal(await s.pwrite64(fd, enc('W'), 6), 1);
  t.equal(await s.lseek(fd, 0, SEEK_SET), 0);
  const v1 = new Uint8Array(3), v2 = new Uint8Array(20);
  t.equal(await s.readv(fd, [v1, v2]), 11, 'readv scatters');
  t.equal(dec(v1) + dec(v2.subarray(0, 8)), 'hello World');
  t.equal(await s.read(fd, new Uint8Array(10)), 0, 'read at EOF is 0');
  t.equal(await s.write(fd, new Uint8Array(0)), 0, 'zero-length write');
  // Sparse files: a write past EOF leaves zeros behind.
  t.equal(await s.pwrite64(fd, enc('end'), 10000), 3);
  t.equal(st(await s.fstat(fd)).size, 10003);
  const hole = new Uint8Array(100);
  t.equal(await s.pread64(fd, hole, 5000), 100);
  t.ok(hole.every((x) => x === 0), 'the hole reads as zeros');
  // Large write across many pages.
  const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  t.equal(await s.pwrite64(fd, big, 4095), big.length);
  const back = new Uint8Array(big.length);
  t.equal(await s.pread64(fd, back, 4095), big.length);
  t.ok(Buffer.from(back).equals(Buffer.from(big)), 'large unaligned write reads back');
  await s.close(fd);
  // O_APPEND: every write goes to the end, pwrite included (as Linux).
  const ap = await s.open('/rw/a', O_CREAT | O_WRONLY | O_APPEND, 0o644);
  t.equal(await s.write(ap, enc('one')), 3);
  t.equal(await s.lseek(ap, 0, SEEK_SET), 0);
  t.equal(await s.write(ap, enc('two')), 3);
  t.equal(await s.pwrite64(ap, enc('three'), 0), 5);
  await s.close(ap);
  t.equal(await readFile(s, '/rw/a'), 'onetwothree', 'O_APPEND appends');
  const ro = await s.open('/rw/a', O_RDONLY);
  const wo = await s.open('/rw/a', O_WRONLY);
  const dir = await s.open('/rw', O_RDONLY | O_DIRECTORY);
  await table(t, [
    ['write on O_RDONLY', () => s.write(ro, enc('x')), EBADF],
    ['read on O_WRONLY', () => s.read(wo, new Uint8Array(1)), EBADF],
    ['read on a closed fd', () => s.read(500, new Uint8Array(1)), EBADF],
    ['write on a closed fd', () => s.write(500, enc('x')), EBADF],
    ['read on a directory', () => s.read(dir, new Uint8Array(1)), EISDIR],
    ['pread64 on a directory', () => s.pread64(dir, new Uint8Array(1), 0), EISDIR],
    ['pread64 negative offset', () => s.pread64(ro, new Uint8Array(1), -1), EINVAL],
    ['pwrite64 negative offset', () => s.pwrite64(wo, enc('x'), -1), EINVAL],
    ['readv on O_WRONLY', () => s.readv(wo, [new Uint8Array(1)]), EBADF],
    ['writev on O_RDONLY', () => s.writev(ro, [enc('x')]), EBADF],
    ['readv with too many vectors', () => s.readv(ro, Array.from({ length: 1025 }, () => new Uint8Array(1))), EINVAL],
  ]);
  for (const f of [ro, wo, dir]) await s.close(f);
});

t.test('lseek', async (t) => {
  const s = k.sys;
  t.equal(await writeFile(s, '/rw/seek', '0123456789'), 0);
  const fd = await s.open('/rw/seek', O_RDONLY);
  t.equal(await s.lseek(fd, 3, SEEK_SET), 3);
  t.equal(await s.lseek(fd, 2, SEEK_CUR), 5);
  t.equal(await s.lseek(fd, -1, SEEK_END), 9);
  t.equal(await s.lseek(fd, 100, SEEK_SET), 100, 'past EOF is allowed');
  t.equal(await s.lseek(fd, 4, SEEK_DATA), 4, 'SEEK_DATA inside the file');
  t.equal(await s.lseek(fd, 4, SEEK_HOLE), 10, 'SEEK_HOLE: the hole at EOF');
  const dir = await s.open('/rw', O_RDONLY);
  await table(t, [
    ['bad whence', () => s.lseek(fd, 0, 5), EINVAL],
    ['negative result', () => s.lseek(fd, -1, SEEK_SET), EINVAL],
    ['negative via SEEK_CUR', () => s.lseek(fd, -1000, SEEK_CUR), EINVAL],
    ['SEEK_DATA at EOF', () => s.lseek(fd, 10, SEEK_DATA), ENXIO],
    ['SEEK_HOLE past EOF', () => s.lseek(fd, 11, SEEK_HOLE), ENXIO],
    ['bad fd', () => s.lseek(777, 0, SEEK_SET), EBADF],
    ['SEEK_END on a directory', () => s.lseek(dir, 0, SEEK_END), EINVAL],
    ['SEEK_SET on a directory', () => s.lseek(dir, 0, SEEK_SET), 0],
  ]);
  const p = await s.open('/rw/seek', O_PATH);
  t.equal(await s.lseek(p, 0, SEEK_SET), -EBADF, 'lseek on O_PATH');
  for (const f of [fd, dir, p]) await s.close(f);
  t.equal(await s.mknod('/rw/fifo', S_IFIFO | 0o600, 0), 0);
  t.equal(ESPIPE, 29);
});

t.test('stat, lstat, fstat, newfstatat, statx', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/st', 0o750), 0);
  t.equal(await writeFile(s, '/st/f', 'abc', 0o640), 0);
  t.equal(await s.symlink('f', '/st/l'), 0);
  const f = st(await s.stat('/st/f'));
  t.equal(f.mode, S_IFREG | 0o640);
  t.equal(f.size, 3);
  t.equal(f.nlink, 1);
  t.equal(f.blksize, 4096);
  t.equal(f.uid, 0);
  const l = st(await s.lstat('/st/l'));
  t.equal(l.mode, S_IFLNK | 0o777, 'lstat sees the link');
  t.equal(l.size, 1, 'symlink size is the target length');
  t.equal(st(await s.stat('/st/l')).ino, f.ino, 'stat follows');
  const d = st(await s.stat('/st'));
  t.equal(d.mode, S_IFDIR | 0o750);
  t.equal(d.nlink, 2);
  t.equal(st(await s.stat('/')).nlink >= 4, true, 'root counts its subdirectories');
  const dfd = await s.open('/st', O_RDONLY);
  t.equal(st(await s.newfstatat(dfd, 'f', 0)).ino, f.ino, 'newfstatat relative to dirfd');
  t.equal(st(await s.newfstatat(dfd, '', AT_EMPTY_PATH)).ino, d.ino, 'AT_EMPTY_PATH stats the dirfd');
  t.equal(st(await s.newfstatat(AT_FDCWD, '/st/l', AT_SYMLINK_NOFOLLOW)).mode & S_IFMT, S_IFLNK);
  t.equal(st(await s.fstat(dfd)).ino, d.ino);
  const sx = await s.statx(AT_FDCWD, '/st/f', 0, STATX_BASIC_STATS | STATX_BTIME) as statx;
  t.equal(typeof sx, 'object');
  t.equal(sx.mask & STATX_BASIC_STATS, STATX_BASIC_STATS, 'statx basic mask');
  t.equal(sx.size, 3);
  t.equal(sx.ino, f.ino);
  await table(t, [
    ['stat ENOENT', () => s.stat('/st/none'), ENOENT],
    ['stat ENOTDIR', () => s.stat('/st/f/x'), ENOTDIR],
    ['stat of empty path', () => s.stat(''), ENOENT],
    ['newfstatat bad flags', () => s.newfstatat(AT_FDCWD, '/st/f', 0x4), EINVAL],
    ['newfstatat bad dirfd', () => s.newfstatat(99, 'f', 0), EBADF],
    ['newfstatat empty path without AT_EMPTY_PATH', () => s.newfstatat(dfd, '', 0), ENOENT],
    ['fstat bad fd', () => s.fstat(99), EBADF],
    ['statx bad flags', () => s.statx(AT_FDCWD, '/st/f', 0x1, STATX_BASIC_STATS), EINVAL],
    ['statx reserved mask bit', () => s.statx(AT_FDCWD, '/st/f', 0, 0x80000000), EINVAL],
    ['statx ENOENT', () => s.statx(AT_FDCWD, '/st/none', 0, STATX_BASIC_STATS), ENOENT],
  ]);
  await s.close(dfd);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.stat('/st/f'), -EACCES, 'no search permission on /st (0750) for others');
  });
});

async function listDir(path: string): Promise<linux_dirent64[]> {
  const d = await opendir(k.sys, path);
  if (typeof d === 'number') throw new Error(`opendir ${path}: ${d}`);
  const out: linux_dirent64[] = [];
  for (;;) {
    const e = await d.readdir();
    if (e === null) break;
    if (typeof e === 'number') throw new Error(`readdir: ${e}`);
    out.push(e);
  }
  await d.close();
  return out;
}

t.test('getdents64', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/gd', 0o755), 0);
  const names = Array.from({ length: 50 }, (_, i) => `file-${i}`);
  for (const n of names) t.equal(await writeFile(s, `/gd/${n}`, n), 0);
  t.equal(await s.mkdir('/gd/sub', 0o755), 0);
  t.equal(await s.symlink('file-0', '/gd/ln'), 0);
  const all = await listDir('/gd');
  t.same(all.map((e) => e.name).sort(), ['.', '..', ...names, 'sub', 'ln'].sort(), 'every entry, with dot and dotdot');
  t.equal(all.find((e) => e.name === 'sub')!.type, DT_DIR);
  t.equal(all.find((e) => e.name === 'ln')!.type, DT_LNK);
  t.equal(all.find((e) => e.name === 'file-3')!.type, DT_REG);
  t.equal(all.find((e) => e.name === '.')!.ino, st(await s.stat('/gd')).ino, '. is the directory');
  t.equal(all.find((e) => e.name === '..')!.ino, st(await s.stat('/')).ino, '.. is the parent');
  t.equal(all.find((e) => e.name === 'file-7')!.ino, st(await s.stat('/gd/file-7')).ino, 'inode numbers match stat');
  // The count limit counts linux_dirent64 records: ALIGN(19 + namelen + 1, 8) bytes each.
  const fd = await s.open('/gd', O_RDONLY | O_DIRECTORY);
  const first = await s.getdents64(fd, 24 + 24) as linux_dirent64[];
  t.same(first.map((e) => e.name), ['.', '..'], 'two 24-byte records fit in 48 bytes');
  const next = await s.getdents64(fd, 32) as linux_dirent64[];
  t.equal(next.length, 1, 'one 32-byte record ("file-0") fits in 32 bytes');
  t.equal(await s.getdents64(fd, 31), -EINVAL, 'a buffer too small for the next record is EINVAL');
  // d_off is a cookie to resume after the entry.
  const cookie = next[0]!.off;
  const rest = await s.getdents64(fd, 65536) as linux_dirent64[];
  t.equal(await s.lseek(fd, cookie, SEEK_SET), cookie);
  const again = await s.getdents64(fd, 65536) as linux_dirent64[];
  t.same(again.map((e) => e.name), rest.map((e) => e.name), 'seeking to a d_off resumes there');
  t.same(await s.getdents64(fd, 65536), [], 'end of directory');
  // Removing entries between calls neither repeats nor loses the remaining ones.
  t.equal(await s.lseek(fd, 0, SEEK_SET), 0);
  const part = await s.getdents64(fd, 200) as linux_dirent64[];
  for (const e of part) if (e.name.startsWith('file-')) t.equal(await s.unlink(`/gd/${e.name}`), 0);
  const seen = new Set(part.map((e) => e.name));
  for (const e of await s.getdents64(fd, 65536) as linux_dirent64[]) {
    t.notOk(seen.has(e.name), `${e.name} not repeated`);
    seen.add(e.name);
  }
  t.same([...seen].sort(), all.map((e) => e.name).sort(), 'every entry seen exactly once');
  await s.close(fd);
  const f = await s.open('/gd/file-49', O_RDONLY);
  const p = await s.open('/gd', O_PATH);
  await table(t, [
    ['getdents64 on a file', () => s.getdents64(f, 4096), ENOTDIR],
    ['getdents64 on a bad fd', () => s.getdents64(333, 4096), EBADF],
    ['getdents64 on O_PATH', () => s.getdents64(p, 4096), EBADF],
  ]);
  await s.close(f); await s.close(p);
  // A directory removed while open reads as ENOENT.
  t.equal(await s.mkdir('/gd/gone', 0o755), 0);
  const g = await s.open('/gd/gone', O_RDONLY | O_DIRECTORY);
  t.equal(await s.rmdir('/gd/gone'), 0);
  t.equal(await s.getdents64(g, 4096), -ENOENT, 'getdents64 on a removed directory');
  t.equal(await s.close(g), 0);
});

t.test('unlinked open files (orphans)', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/orph', 0o755), 0);
  const before = icacheStats();
  const fd = await s.open('/orph/f', O_CREAT | O_RDWR, 0o644);
  t.equal(await s.write(fd, enc('still here')), 10);
  t.equal(await s.unlink('/orph/f'), 0);
  t.equal(await s.stat('/orph/f'), -ENOENT, 'the name is gone');
  t.equal(icacheStats().orphans, before.orphans + 1, 'tracked as an orphan');
  t.equal(st(await s.fstat(fd)).nlink, 0, 'nlink 0 while open');
  const b = new Uint8Array(10);
  t.equal(await s.pread64(fd, b, 0), 10);
  t.equal(dec(b), 'still here', 'data readable until the last close');
  t.equal(await s.write(fd, enc('!')), 1, 'and writable');
  const d2 = await s.dup(fd);
  t.equal(await s.close(fd), 0);
  t.equal(icacheStats().orphans, before.orphans + 1, 'a dup keeps it alive');
  const evicted = icacheStats().evicted;
  t.equal(await s.close(d2), 0);
  t.equal(icacheStats().orphans, before.orphans, 'orphan released at last close');
  t.ok(icacheStats().evicted > evicted, 'and evicted');
  t.equal(await s.mkdir('/orph/f', 0o755), 0, 'the name can be reused');
});

t.test('descriptors past 65,536 (lklfuse holds one per looked-up directory)', async (t) => {
  const s = k.sys;
  const fds: number[] = [];
  let last = 0;
  for (let i = 0; i < 70_000; i++) {
    last = await s.open('/', O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (last < 0) break;
    fds.push(last);
  }
  t.equal(fds.length, 70_000, `70,000 descriptors open at once (the last: ${last})`);
  t.ok(fds[fds.length - 1]! >= 65_536, 'numbered past 65,536');
  for (const fd of fds) await s.close(fd);
  const one = await s.open('/', O_PATH | O_DIRECTORY | O_CLOEXEC);
  t.equal(await s.fcntl(one, 0 /* F_DUPFD */, 1024 * 1024), -EINVAL, 'F_DUPFD at NR_OPEN (1024 * 1024) is EINVAL, as on Linux');
  await s.close(one);
});

t.test('no leaked files', async (t) => {
  t.equal(nrFiles(), 0, 'every File was released');
});
