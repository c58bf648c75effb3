// Boot suite, part 3: attributes — chmod family, chown family, truncate/ftruncate,
// fallocate, utimensat, faccessat, mknodat, the 12 xattr calls and the 4 *xattrat ones.
import t from 'tap';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, E2BIG, EACCES, EBADF, EEXIST, EFAULT, EFBIG, EINVAL, EISDIR,
  ENODATA, ENOENT, ENOTDIR, EOPNOTSUPP, EPERM, ERANGE, EROFS, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
  F_OK, MS_RDONLY, MS_REMOUNT, O_PATH, O_RDONLY, O_RDWR, O_WRONLY, R_OK, S_IFBLK, S_IFCHR, S_IFDIR,
  S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK, UTIME_NOW, UTIME_OMIT, W_OK, X_OK, XATTR_CREATE, XATTR_REPLACE,
  makedev, type stat,
} from '../../lib/index.js';
import { asUser, boot, dec, enc, readFile, table, writeFile, type Booted } from './helpers.js';

let k: Booted;
t.before(async () => { k = await boot(); });
t.teardown(async () => { await k.halt(); });

const st = (r: stat | number): stat => { if (typeof r === 'number') throw new Error(`stat failed: ${r}`); return r; };
const mode = async (p: string) => st(await k.sys.lstat(p)).mode;

t.test('chmod, fchmod, fchmodat', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/c', 0o777), 0);
  t.equal(await s.chmod('/c', 0o777), 0);
  t.equal(await writeFile(s, '/c/f', 'x'), 0);
  t.equal(await s.symlink('f', '/c/l'), 0);
  const c0 = st(await s.stat('/c/f')).ctime;
  await new Promise((r) => setTimeout(r, 2));
  t.equal(await s.chmod('/c/f', 0o4751), 0);
  t.equal(await mode('/c/f'), S_IFREG | 0o4751, 'chmod sets the permission bits');
  const c1 = st(await s.stat('/c/f')).ctime;
  t.ok(c1.sec * 1e9 + c1.nsec > c0.sec * 1e9 + c0.nsec, 'ctime updated');
  const fd = await s.open('/c/f', O_RDONLY);
  t.equal(await s.fchmod(fd, 0o600), 0, 'fchmod on a read-only descriptor');
  t.equal(await mode('/c/f'), S_IFREG | 0o600);
  t.equal(await s.chmod('/c/l', 0o640), 0, 'chmod follows symlinks');
  t.equal(await mode('/c/f'), S_IFREG | 0o640);
  const p = await s.open('/c/f', O_PATH);
  await table(t, [
    ['fchmodat AT_SYMLINK_NOFOLLOW on a symlink', () => s.fchmodat(AT_FDCWD, '/c/l', 0o600, AT_SYMLINK_NOFOLLOW), EOPNOTSUPP],
    ['fchmodat AT_SYMLINK_NOFOLLOW on a file', () => s.fchmodat(AT_FDCWD, '/c/f', 0o644, AT_SYMLINK_NOFOLLOW), 0],
    ['fchmodat AT_EMPTY_PATH', () => s.fchmodat(p, '', 0o644, AT_EMPTY_PATH), 0],
    ['fchmodat bad flags', () => s.fchmodat(AT_FDCWD, '/c/f', 0o600, 0x1), EINVAL],
    ['chmod ENOENT', () => s.chmod('/c/none', 0o600), ENOENT],
    ['chmod ENOTDIR', () => s.chmod('/c/f/x', 0o600), ENOTDIR],
    ['fchmod bad fd', () => s.fchmod(99, 0o600), EBADF],
    ['fchmod on O_PATH', () => s.fchmod(p, 0o600), EBADF],
  ]);
  await s.close(fd); await s.close(p);
  t.equal(await mode('/c/f'), S_IFREG | 0o644);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.chmod('/c/f', 0o777), -EPERM, 'chmod by a non-owner');
    t.equal(await writeFile(s, '/c/mine', 'x'), 0);
    t.equal(await s.chmod('/c/mine', 0o2755), 0, 'the owner may chmod');
    t.equal(await mode('/c/mine'), S_IFREG | 0o2755, 'setgid kept: the owner is in the group');
  });
  t.equal(await s.chown('/c/mine', 1000, 50), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.chmod('/c/mine', 0o2755), 0);
    t.equal(await mode('/c/mine'), S_IFREG | 0o755, 'setgid cleared for a non-member of the group');
  });
  t.equal(await s.mkdir('/c/ro', 0o755), 0);
  t.equal(await s.mount('none', '/c/ro', 'ramfs', MS_RDONLY, null), 0);
  t.equal(await s.chmod('/c/ro', 0o700), -EROFS, 'EROFS');
  t.equal(await s.umount2('/c/ro', 0), 0);
});

t.test('chown, fchown, fchownat, lchown', async (t) => {
  const s = k.sys;
  t.equal(await writeFile(s, '/c/o', 'x'), 0);
  t.equal(await s.symlink('o', '/c/ol'), 0);
  t.equal(await s.chown('/c/o', 1000, 1000), 0);
  let x = st(await s.stat('/c/o'));
  t.same([x.uid, x.gid], [1000, 1000]);
  t.equal(await s.chown('/c/o', -1, 2000), 0, '-1 keeps the uid');
  x = st(await s.stat('/c/o'));
  t.same([x.uid, x.gid], [1000, 2000]);
  t.equal(await s.lchown('/c/ol', 7, 8), 0);
  const l = st(await s.lstat('/c/ol'));
  t.same([l.uid, l.gid], [7, 8], 'lchown changes the link');
  t.equal(st(await s.stat('/c/o')).uid, 1000, 'not the target');
  t.equal(await s.fchownat(AT_FDCWD, '/c/ol', 9, 9, AT_SYMLINK_NOFOLLOW), 0);
  t.equal(st(await s.lstat('/c/ol')).uid, 9);
  const fd = await s.open('/c/o', O_RDONLY);
  t.equal(await s.fchown(fd, 0, 0), 0);
  t.equal(st(await s.stat('/c/o')).uid, 0);
  // chown clears set-user-ID, and set-group-ID if group-executable.
  t.equal(await s.chmod('/c/o', 0o6755), 0);
  t.equal(await s.chown('/c/o', 1000, -1), 0);
  t.equal(await mode('/c/o'), S_IFREG | 0o755, 'suid and sgid cleared by chown');
  t.equal(await s.chmod('/c/o', 0o6745), 0);
  t.equal(await s.chown('/c/o', -1, -1), 0);
  t.equal(await mode('/c/o'), S_IFREG | 0o2745, 'sgid without group exec stays');
  t.equal(await s.mkdir('/c/sd', 0o755), 0);
  t.equal(await s.chmod('/c/sd', 0o4755), 0);
  t.equal(await s.chown('/c/sd', 5, 5), 0);
  t.equal(await mode('/c/sd'), S_IFDIR | 0o4755, 'directories keep their bits');
  await table(t, [
    ['fchownat bad flags', () => s.fchownat(AT_FDCWD, '/c/o', 0, 0, 0x2), EINVAL],
    ['fchownat AT_EMPTY_PATH', () => s.fchownat(fd, '', 0, 0, AT_EMPTY_PATH), 0],
    ['chown ENOENT', () => s.chown('/c/none', 0, 0), ENOENT],
    ['fchown bad fd', () => s.fchown(98, 0, 0), EBADF],
  ]);
  await s.close(fd);
  t.equal(await s.chown('/c/o', 1000, 0), 0);
  await asUser(s, 1000, 1000, [1000, 3000], async () => {
    t.equal(await s.chown('/c/o', 1001, -1), -EPERM, 'giving a file away');
    t.equal(await s.chown('/c/o', -1, 3000), 0, 'the owner may pick a group it belongs to');
    t.equal(await s.chown('/c/o', -1, 4000), -EPERM, 'but not another group');
    t.equal(await s.chown('/c/o', 1000, -1), 0, '"changing" to itself is allowed');
  });
  await asUser(s, 1001, 1001, [], async () => {
    t.equal(await s.chown('/c/o', -1, 1001), -EPERM, 'a non-owner cannot chgrp');
  });
});

t.test('truncate and ftruncate', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/t', 0o777), 0);
  t.equal(await writeFile(s, '/t/f', 'hello world'), 0);
  t.equal(await s.truncate('/t/f', 5), 0);
  t.equal(await readFile(s, '/t/f'), 'hello', 'shrunk');
  t.equal(await s.truncate('/t/f', 10), 0);
  t.equal(await readFile(s, '/t/f'), 'hello\0\0\0\0\0', 'grown with zeros (old data not resurrected)');
  const fd = await s.open('/t/f', O_RDWR);
  t.equal(await s.ftruncate(fd, 3), 0);
  t.equal(st(await s.fstat(fd)).size, 3);
  t.equal(await s.ftruncate(fd, 100_000), 0);
  t.equal(st(await s.fstat(fd)).size, 100_000);
  const ro = await s.open('/t/f', O_RDONLY);
  const dir = await s.open('/t', O_RDONLY);
  const p = await s.open('/t/f', O_PATH);
  await table(t, [
    ['truncate negative', () => s.truncate('/t/f', -1), EINVAL],
    ['truncate a directory', () => s.truncate('/t', 0), EISDIR],
    ['truncate ENOENT', () => s.truncate('/t/none', 0), ENOENT],
    ['truncate past s_maxbytes', () => s.truncate('/t/f', 2 ** 60), EFBIG],
    ['ftruncate negative', () => s.ftruncate(fd, -1), EINVAL],
    ['ftruncate on a read-only descriptor', () => s.ftruncate(ro, 0), EINVAL],
    ['ftruncate on a directory', () => s.ftruncate(dir, 0), EINVAL],
    ['ftruncate on O_PATH', () => s.ftruncate(p, 0), EBADF],
    ['ftruncate bad fd', () => s.ftruncate(97, 0), EBADF],
  ]);
  for (const f of [fd, ro, dir, p]) await s.close(f);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.truncate('/t/f', 0), -EACCES, 'no write permission');
  });
  t.equal(await s.chmod('/t/f', 0o6775), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.truncate('/t/f', 1), -EACCES);
  });
  t.equal(await s.chmod('/t/f', 0o6777), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.truncate('/t/f', 1), 0, 'write permission suffices');
  });
  t.equal(await mode('/t/f'), S_IFREG | 0o777, 'truncation by a user cleared suid/sgid');
});

t.test('fallocate', async (t) => {
  const s = k.sys;
  t.equal(await writeFile(s, '/t/fa', 'abcdefghij'), 0);
  const fd = await s.open('/t/fa', O_RDWR);
  t.equal(await s.fallocate(fd, 0, 0, 20000), 0);
  t.equal(st(await s.fstat(fd)).size, 20000, 'mode 0 extends the size');
  t.equal(await s.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 50000), 0);
  t.equal(st(await s.fstat(fd)).size, 20000, 'KEEP_SIZE does not');
  t.equal(await s.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3), 0);
  const b = new Uint8Array(10);
  t.equal(await s.pread64(fd, b, 0), 10);
  t.equal(dec(b), 'ab\0\0\0fghij', 'a punched hole reads as zeros');
  const ro = await s.open('/t/fa', O_RDONLY);
  await table(t, [
    ['PUNCH_HOLE without KEEP_SIZE', () => s.fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 1), EOPNOTSUPP],
    ['unknown mode bits', () => s.fallocate(fd, 0x100, 0, 1), EOPNOTSUPP],
    ['zero length', () => s.fallocate(fd, 0, 0, 0), EINVAL],
    ['negative offset', () => s.fallocate(fd, 0, -1, 10), EINVAL],
    ['read-only descriptor', () => s.fallocate(ro, 0, 0, 10), EBADF],
    ['bad fd', () => s.fallocate(96, 0, 0, 10), EBADF],
    ['past s_maxbytes', () => s.fallocate(fd, 0, 2 ** 53 - 10, 100), EFBIG],
    ['unsupported mode of this fs (zero range)', () => s.fallocate(fd, 0x10, 0, 10), EOPNOTSUPP],
  ]);
  await s.close(fd); await s.close(ro);
});

t.test('utimensat', async (t) => {
  const s = k.sys;
  t.equal(await writeFile(s, '/t/u', 'x'), 0);
  t.equal(await s.chmod('/t/u', 0o666), 0);
  t.equal(await s.symlink('u', '/t/ul'), 0);
  t.equal(await s.utimensat(AT_FDCWD, '/t/u', [{ sec: 1000, nsec: 5 }, { sec: 2000, nsec: 6 }], 0), 0);
  let x = st(await s.stat('/t/u'));
  t.same([x.atime, x.mtime], [{ sec: 1000, nsec: 5 }, { sec: 2000, nsec: 6 }], 'explicit times');
  t.equal(await s.utimensat(AT_FDCWD, '/t/u', [{ sec: 0, nsec: UTIME_OMIT }, { sec: 3000, nsec: 0 }], 0), 0);
  x = st(await s.stat('/t/u'));
  t.same([x.atime.sec, x.mtime.sec], [1000, 3000], 'UTIME_OMIT keeps atime');
  t.equal(await s.utimensat(AT_FDCWD, '/t/u', [{ sec: 0, nsec: UTIME_NOW }, { sec: 0, nsec: UTIME_OMIT }], 0), 0);
  x = st(await s.stat('/t/u'));
  t.ok(x.atime.sec > 1e9, 'UTIME_NOW sets now');
  t.equal(x.mtime.sec, 3000);
  t.equal(await s.utimensat(AT_FDCWD, '/t/u', null, 0), 0, 'null times: now');
  t.ok(st(await s.stat('/t/u')).mtime.sec > 1e9);
  t.equal(await s.utimensat(AT_FDCWD, '/t/ul', [{ sec: 5, nsec: 0 }, { sec: 6, nsec: 0 }], AT_SYMLINK_NOFOLLOW), 0);
  t.equal(st(await s.lstat('/t/ul')).mtime.sec, 6, 'AT_SYMLINK_NOFOLLOW sets the link times');
  t.ok(st(await s.stat('/t/u')).mtime.sec > 1e9, 'not the target');
  const fd = await s.open('/t/u', O_RDONLY);
  t.equal(await s.utimensat(fd, null, [{ sec: 7, nsec: 0 }, { sec: 8, nsec: 0 }], 0), 0, 'futimens (null path)');
  t.equal(st(await s.stat('/t/u')).mtime.sec, 8);
  await table(t, [
    ['both UTIME_OMIT is a no-op even on ENOENT', () => s.utimensat(AT_FDCWD, '/t/none', [{ sec: 0, nsec: UTIME_OMIT }, { sec: 0, nsec: UTIME_OMIT }], 0), 0],
    ['bad nsec', () => s.utimensat(AT_FDCWD, '/t/u', [{ sec: 0, nsec: 1e9 }, { sec: 0, nsec: 0 }], 0), EINVAL],
    ['negative nsec', () => s.utimensat(AT_FDCWD, '/t/u', [{ sec: 0, nsec: 0 }, { sec: 0, nsec: -1 }], 0), EINVAL],
    ['bad flags', () => s.utimensat(AT_FDCWD, '/t/u', null, 0x2), EINVAL],
    ['null path with AT_SYMLINK_NOFOLLOW', () => s.utimensat(fd, null, null, AT_SYMLINK_NOFOLLOW), EINVAL],
    ['ENOENT', () => s.utimensat(AT_FDCWD, '/t/none', null, 0), ENOENT],
    ['bad fd', () => s.utimensat(95, null, null, 0), EBADF],
    ['AT_EMPTY_PATH', () => s.utimensat(fd, '', null, AT_EMPTY_PATH), 0],
  ]);
  await s.close(fd);
  t.equal(await writeFile(s, '/t/u2', 'x', 0o644), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.utimensat(AT_FDCWD, '/t/u', [{ sec: 1, nsec: 0 }, { sec: 1, nsec: 0 }], 0), -EPERM, 'explicit times need ownership');
    t.equal(await s.utimensat(AT_FDCWD, '/t/u', null, 0), 0, 'now needs only write access (0666)');
    t.equal(await s.utimensat(AT_FDCWD, '/t/u', [{ sec: 0, nsec: UTIME_NOW }, { sec: 0, nsec: UTIME_NOW }], 0), 0, 'both UTIME_NOW is "now"');
    t.equal(await s.utimensat(AT_FDCWD, '/t/u2', null, 0), -EACCES, 'no write access (0644)');
    t.equal(await s.utimensat(AT_FDCWD, '/t/u', [{ sec: 0, nsec: UTIME_NOW }, { sec: 0, nsec: UTIME_OMIT }], 0), -EPERM, 'NOW with OMIT counts as explicit');
  });
});

t.test('faccessat', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/acc', 0o755), 0);
  t.equal(await writeFile(s, '/acc/r', 'x', 0o444), 0);
  t.equal(await writeFile(s, '/acc/x', 'x', 0o755), 0);
  t.equal(await writeFile(s, '/acc/none', 'x', 0o000), 0);
  await table(t, [
    ['F_OK', () => s.access('/acc/r', F_OK), 0],
    ['F_OK ENOENT', () => s.access('/acc/nope', F_OK), ENOENT],
    ['root: R_OK|W_OK on 0000', () => s.access('/acc/none', R_OK | W_OK), 0],
    ['root: X_OK without any x bit', () => s.access('/acc/none', X_OK), EACCES],
    ['root: X_OK with an x bit', () => s.access('/acc/x', X_OK), 0],
    ['root: X_OK on a directory', () => s.access('/acc', X_OK), 0],
    ['bad mode', () => s.access('/acc/r', 8), EINVAL],
    ['bad flags', () => s.faccessat(AT_FDCWD, '/acc/r', F_OK, 0x1), EINVAL],
    ['ENOTDIR', () => s.access('/acc/r/x', F_OK), ENOTDIR],
  ]);
  await asUser(s, 1000, 1000, [], async () => {
    // access(2) checks the real uid, which is still 0 here (only the effective uid changed).
    t.equal(await s.access('/acc/none', R_OK), 0, 'real uid 0: allowed');
    t.equal(await s.open('/acc/none', O_RDONLY), -EACCES, 'while open with euid 1000 is refused');
    t.equal(await s.faccessat(AT_FDCWD, '/acc/none', R_OK, 0x200 /* AT_EACCESS */), -EACCES, 'AT_EACCESS uses the effective ids');
  });
  await s.setresuid(1000, 1000, 0);
  try {
    t.equal(await s.access('/acc/r', R_OK), 0, 'real uid 1000: readable');
    t.equal(await s.access('/acc/r', W_OK), -EACCES, 'not writable');
    t.equal(await s.access('/acc/none', R_OK), -EACCES);
    t.equal(await s.access('/acc/x', X_OK), 0);
  } finally { await s.setresuid(0, 0, 0); }
  t.equal(await s.mkdir('/acc/ro', 0o777), 0);
  t.equal(await s.mount('none', '/acc/ro', 'ramfs', MS_RDONLY, null), 0);
  t.equal(await s.access('/acc/ro', W_OK), -EROFS, 'W_OK on a read-only fs');
  t.equal(await s.access('/acc/ro', R_OK), 0);
  t.equal(await s.umount2('/acc/ro', 0), 0);
});

t.test('mknodat', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/n', 0o755), 0);
  const dev = makedev(8, 1);
  await table(t, [
    ['regular (type 0)', () => s.mknod('/n/r0', 0o644, 0), 0],
    ['regular', () => s.mknod('/n/reg', S_IFREG | 0o644, 0), 0],
    ['fifo', () => s.mknod('/n/fifo', S_IFIFO | 0o644, 0), 0],
    ['socket', () => s.mknod('/n/sock', S_IFSOCK | 0o644, 0), 0],
    ['char device', () => s.mknod('/n/chr', S_IFCHR | 0o644, makedev(1, 3)), 0],
    ['block device', () => s.mknod('/n/blk', S_IFBLK | 0o644, dev), 0],
    ['directory type', () => s.mknod('/n/dir', S_IFDIR | 0o755, 0), EPERM],
    ['bad type', () => s.mknod('/n/bad', 0o150000, 0), EINVAL],
    ['EEXIST', () => s.mknod('/n/reg', S_IFREG | 0o644, 0), EEXIST],
    ['ENOENT', () => s.mknod('/n/none/x', S_IFREG | 0o644, 0), ENOENT],
    ['trailing slash', () => s.mknod('/n/new/', S_IFREG | 0o644, 0), ENOENT],
  ]);
  t.equal((await mode('/n/r0')) & S_IFMT, S_IFREG);
  t.equal((await mode('/n/fifo')) & S_IFMT, S_IFIFO);
  t.equal((await mode('/n/sock')) & S_IFMT, S_IFSOCK);
  const b = st(await s.stat('/n/blk'));
  t.equal(b.mode, S_IFBLK | 0o644);
  t.equal(b.rdev, dev, 'rdev kept');
  t.equal(await s.open('/n/chr', O_RDONLY), -6 /* ENXIO */, 'no character drivers');
  t.equal(await s.open('/n/blk', O_RDONLY) < 0, true, 'no block device with that number');
  t.equal(await s.chmod('/n', 0o777), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.mknod('/n/c', S_IFCHR | 0o644, 0), -EPERM, 'devices need CAP_MKNOD');
    t.equal(await s.mknod('/n/f', S_IFIFO | 0o644, 0), 0, 'fifos do not');
  });
});

t.test('extended attributes', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/x', 0o777), 0);
  t.equal(await s.chmod('/x', 0o777), 0);
  t.equal(await writeFile(s, '/x/f', 'x'), 0);
  t.equal(await s.chmod('/x/f', 0o666), 0);
  t.equal(await s.symlink('f', '/x/l'), 0);
  const v = enc('value');
  await table(t, [
    ['setxattr user.', () => s.setxattr('/x/f', 'user.a', v, 0), 0],
    ['setxattr via a symlink', () => s.setxattr('/x/l', 'user.b', enc('b'), 0), 0],
    ['lsetxattr user. on a symlink', () => s.lsetxattr('/x/l', 'user.c', v, 0), EPERM],
    ['lsetxattr trusted. on a symlink', () => s.lsetxattr('/x/l', 'trusted.c', v, 0), 0],
    ['setxattr trusted.', () => s.setxattr('/x/f', 'trusted.t', v, 0), 0],
    ['setxattr security.', () => s.setxattr('/x/f', 'security.s', v, 0), 0],
    ['XATTR_CREATE on existing', () => s.setxattr('/x/f', 'user.a', v, XATTR_CREATE), EEXIST],
    ['XATTR_REPLACE on missing', () => s.setxattr('/x/f', 'user.zz', v, XATTR_REPLACE), ENODATA],
    ['XATTR_REPLACE on existing', () => s.setxattr('/x/f', 'user.a', enc('v2'), XATTR_REPLACE), 0],
    ['bad flags', () => s.setxattr('/x/f', 'user.a', v, 4), EINVAL],
    ['empty name', () => s.setxattr('/x/f', '', v, 0), ERANGE],
    ['name of 256 bytes', () => s.setxattr('/x/f', 'user.' + 'n'.repeat(251), v, 0), ERANGE],
    ['name of 255 bytes', () => s.setxattr('/x/f', 'user.' + 'n'.repeat(250), v, 0), 0],
    ['value over 64 KiB', () => s.setxattr('/x/f', 'user.big', new Uint8Array(65537), 0), E2BIG],
    ['value of 64 KiB', () => s.setxattr('/x/f', 'user.big', new Uint8Array(65536), 0), 0],
    ['unknown namespace', () => s.setxattr('/x/f', 'foo.bar', v, 0), EOPNOTSUPP],
    ['no prefix at all', () => s.setxattr('/x/f', 'plain', v, 0), EOPNOTSUPP],
    ['prefix only', () => s.setxattr('/x/f', 'user.', v, 0), EINVAL],
    ['setxattr ENOENT', () => s.setxattr('/x/none', 'user.a', v, 0), ENOENT],
    ['getxattr missing', () => s.getxattr('/x/f', 'user.none'), ENODATA],
    ['getxattr empty name', () => s.getxattr('/x/f', ''), ERANGE],
    ['getxattr unknown namespace', () => s.getxattr('/x/f', 'foo.bar'), EOPNOTSUPP],
    ['removexattr missing', () => s.removexattr('/x/f', 'user.none'), ENODATA],
    ['removexattr', () => s.removexattr('/x/f', 'user.big'), 0],
    ['lremovexattr on the link', () => s.lremovexattr('/x/l', 'trusted.c'), 0],
    ['lgetxattr after removal', () => s.lgetxattr('/x/l', 'trusted.c'), ENODATA],
  ]);
  t.same(await s.getxattr('/x/f', 'user.a'), enc('v2'), 'getxattr');
  t.same(await s.getxattr('/x/l', 'user.b'), enc('b'), 'getxattr follows');
  t.same(await s.lgetxattr('/x/l', 'user.b'), -ENODATA, 'lgetxattr does not');
  const names = await s.listxattr('/x/f') as string[];
  t.same([...names].sort(), ['security.s', 'trusted.t', 'user.a', 'user.b', 'user.' + 'n'.repeat(250)].sort(), 'listxattr');
  t.same(await s.llistxattr('/x/l'), [], 'llistxattr of the link');
  const fd = await s.open('/x/f', O_RDONLY);
  t.equal(await s.fsetxattr(fd, 'user.fd', v, 0), 0, 'fsetxattr on a read-only descriptor');
  t.same(await s.fgetxattr(fd, 'user.fd'), v);
  t.ok((await s.flistxattr(fd) as string[]).includes('user.fd'));
  t.equal(await s.fremovexattr(fd, 'user.fd'), 0);
  t.equal(await s.fgetxattr(fd, 'user.fd'), -ENODATA);
  const p = await s.open('/x/f', O_PATH);
  await table(t, [
    ['fsetxattr bad fd', () => s.fsetxattr(94, 'user.a', v, 0), EBADF],
    ['fgetxattr on O_PATH', () => s.fgetxattr(p, 'user.a'), EBADF],
    ['flistxattr bad fd', () => s.flistxattr(94), EBADF],
    ['fremovexattr bad fd', () => s.fremovexattr(94, 'user.a'), EBADF],
  ]);
  await s.close(fd); await s.close(p);
  await asUser(s, 1000, 1000, [], async () => {
    await table(t, [
      ['user: trusted. is invisible', () => s.getxattr('/x/f', 'trusted.t'), ENODATA],
      ['user: cannot set trusted.', () => s.setxattr('/x/f', 'trusted.u', v, 0), EPERM],
      ['user: user. with write access (0666)', () => s.setxattr('/x/f', 'user.u', v, 0), 0],
      ['user: reads user.', () => s.getxattr('/x/f', 'user.a'), 0],
    ]);
    const ln = await s.listxattr('/x/f') as string[];
    t.notOk(ln.includes('trusted.t'), 'listxattr hides trusted. from users');
    t.ok(ln.includes('user.u'));
  });
  t.equal(await s.chmod('/x/f', 0o644), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.setxattr('/x/f', 'user.v', v, 0), -EACCES, 'user. needs write access');
    t.equal(await s.setxattr('/x/f', 'security.v', v, 0), 0, 'security. is left to the fs');
  });
  t.equal(await s.mkdir('/x/sticky', 0o777), 0);
  t.equal(await s.chmod('/x/sticky', 0o1777), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.setxattr('/x/sticky', 'user.s', v, 0), -EPERM, 'user. on another\'s sticky directory');
  });
  t.equal(await s.mknod('/x/fifo', S_IFIFO | 0o666, 0), 0);
  t.equal(await s.setxattr('/x/fifo', 'user.a', v, 0), -EPERM, 'user. only on files and directories');
  t.equal(await s.getxattr('/x/fifo', 'user.a'), -ENODATA);
  t.equal(await s.mkdir('/x/ro', 0o777), 0);
  t.equal(await s.mount('none', '/x/ro', 'ramfs', 0, null), 0);
  t.equal(await s.setxattr('/x/ro', 'user.a', v, 0), 0);
  t.equal(await s.mount('none', '/x/ro', 'ramfs', MS_REMOUNT | MS_RDONLY, null), 0);
  t.equal(await s.setxattr('/x/ro', 'user.b', v, 0), -EROFS, 'EROFS');
  t.equal(await s.removexattr('/x/ro', 'user.a'), -EROFS);
  t.same(await s.getxattr('/x/ro', 'user.a'), v, 'reads still work');
  t.equal(await s.umount2('/x/ro', 0), 0);
  t.equal(O_WRONLY, 1);
});

t.test('the *xattrat calls', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/xa', 0o755), 0);
  t.equal(await writeFile(s, '/xa/f', 'x'), 0);
  t.equal(await s.symlink('f', '/xa/l'), 0);
  const d = await s.open('/xa', O_PATH);
  const v = enc('at');
  await table(t, [
    ['setxattrat relative to an O_PATH dirfd', () => s.setxattrat(d, 'f', 0, 'user.a', v, 0), 0],
    ['setxattrat follows a final symlink', () => s.setxattrat(d, 'l', 0, 'user.b', v, 0), 0],
    ['AT_SYMLINK_NOFOLLOW: user. on the symlink itself', () => s.setxattrat(d, 'l', AT_SYMLINK_NOFOLLOW, 'user.c', v, 0), EPERM],
    ['bad at_flags', () => s.getxattrat(d, 'f', 0x2, 'user.a'), EINVAL],
    ['bad at_flags before a bad name', () => s.getxattrat(d, 'f', 0x2, ''), EINVAL],
    ['bad setxattr flags', () => s.setxattrat(d, 'f', 0, 'user.a', v, 4), EINVAL],
    ['empty name', () => s.getxattrat(d, 'f', 0, ''), ERANGE],
    ['missing', () => s.getxattrat(d, 'none', 0, 'user.a'), ENOENT],
    ['empty path without AT_EMPTY_PATH', () => s.getxattrat(d, '', 0, 'user.a'), ENOENT],
    ['AT_EMPTY_PATH on an O_PATH descriptor', () => s.getxattrat(d, '', AT_EMPTY_PATH, 'user.a'), EBADF],
    ['null path with AT_EMPTY_PATH on an O_PATH descriptor', () => s.getxattrat(d, null, AT_EMPTY_PATH, 'user.a'), EBADF],
    ['null path without AT_EMPTY_PATH', () => s.getxattrat(d, null, 0, 'user.a'), EFAULT],
    ['. of an O_PATH directory is the directory', () => s.setxattrat(d, '.', 0, 'user.dir', v, 0), 0],
    ['lgetxattr sees what setxattrat set', () => s.lgetxattr('/xa/f', 'user.a'), 0],
  ]);
  t.same(await s.getxattrat(d, 'f', AT_SYMLINK_NOFOLLOW, 'user.a'), v, 'getxattrat');
  t.same(await s.getxattrat(d, 'l', 0, 'user.b'), v, 'getxattrat follows');
  t.equal(await s.getxattrat(d, 'l', AT_SYMLINK_NOFOLLOW, 'user.b'), -ENODATA, 'and not with AT_SYMLINK_NOFOLLOW');
  t.same(await s.getxattr('/xa', 'user.dir'), v, 'the directory got it');
  t.same([...await s.listxattrat(d, 'f', 0) as string[]].sort(), ['user.a', 'user.b'], 'listxattrat');
  t.same(await s.listxattrat(d, 'l', AT_SYMLINK_NOFOLLOW), [], 'listxattrat of the symlink');
  const fd = await s.open('/xa/f', O_RDONLY);
  t.same(await s.getxattrat(fd, '', AT_EMPTY_PATH, 'user.a'), v, 'AT_EMPTY_PATH on an open file');
  t.equal(await s.removexattrat(fd, null, AT_EMPTY_PATH, 'user.b'), 0, 'removexattrat of the open file');
  t.equal(await s.removexattrat(d, 'f', 0, 'user.b'), -ENODATA, 'gone');
  t.equal(await s.chdir('/xa'), 0);
  t.same(await s.getxattrat(AT_FDCWD, '', AT_EMPTY_PATH, 'user.dir'), v, 'AT_FDCWD with AT_EMPTY_PATH: the working directory');
  t.equal(await s.removexattrat(AT_FDCWD, 'f', 0, 'user.a'), 0, 'removexattrat relative to the cwd');
  t.equal(await s.chdir('/'), 0);
  t.equal(await s.getxattrat(94, 'f', 0, 'user.a'), -EBADF, 'bad dirfd');
  await s.close(fd); await s.close(d);
});
