// Boot suite, part 4: process-level calls — umask, chdir, fchdir, getcwd, chroot, dup, dup3,
// fcntl, statfs, fstatfs, sync, syncfs, fsync, fdatasync.
import t from 'tap';
import {
  AT_FDCWD, EACCES, EBADF, EINVAL, ENOENT, ENOTDIR, EPERM, F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL,
  F_SETFD, F_SETFL, FD_CLOEXEC, MS_NOSUID, MS_RDONLY, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY,
  O_LARGEFILE, O_NONBLOCK, O_PATH, O_RDONLY, O_RDWR, O_WRONLY, SEEK_CUR, SEEK_SET, S_IFMT, S_IFREG,
  type stat, type statfs,
} from '../../lib/index.js';
import { asUser, boot, enc, readFile, table, writeFile, type Booted } from './helpers.js';

let k: Booted;
t.before(async () => { k = await boot(); });
t.teardown(async () => { await k.halt(); });

const st = (r: stat | number): stat => { if (typeof r === 'number') throw new Error(`stat failed: ${r}`); return r; };

t.test('umask', async (t) => {
  const s = k.sys;
  t.equal(await s.umask(0o077), 0o022, 'default umask 022');
  t.equal(await writeFile(s, '/um', 'x', 0o666), 0);
  t.equal(st(await s.stat('/um')).mode, S_IFREG | 0o600, 'applied to creation');
  t.equal(await s.umask(0o7777), 0o077, 'returns the old mask');
  t.equal(await s.umask(0o022), 0o777, 'only the permission bits are kept');
});

t.test('chdir, fchdir, getcwd', async (t) => {
  const s = k.sys;
  t.equal(await s.getcwd(), '/');
  t.equal(await s.mkdir('/cd', 0o755), 0);
  t.equal(await s.mkdir('/cd/sub', 0o700), 0);
  t.equal(await s.mkdir('/cd/ünï', 0o755), 0);
  t.equal(await writeFile(s, '/cd/f', 'x'), 0);
  t.equal(await s.symlink('sub', '/cd/ls'), 0);
  t.equal(await s.chdir('/cd'), 0);
  t.equal(await s.getcwd(), '/cd');
  t.equal(await s.chdir('ls'), 0, 'chdir through a symlink');
  t.equal(await s.getcwd(), '/cd/sub', 'getcwd reports the real path');
  t.equal(await s.chdir('..'), 0);
  t.equal(await s.chdir('ünï'), 0);
  t.equal(await s.getcwd(), '/cd/ünï', 'UTF-8 names');
  t.equal(await s.chdir('/cd'), 0);
  await table(t, [
    ['chdir ENOENT', () => s.chdir('/cd/none'), ENOENT],
    ['chdir ENOTDIR', () => s.chdir('/cd/f'), ENOTDIR],
    ['chdir empty', () => s.chdir(''), ENOENT],
    ['fchdir bad fd', () => s.fchdir(93), EBADF],
  ]);
  const ffd = await s.open('/cd/f', O_RDONLY);
  t.equal(await s.fchdir(ffd), -ENOTDIR, 'fchdir to a file');
  await s.close(ffd);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.chdir('/cd/sub'), -EACCES, 'chdir needs search permission');
  });
  const dfd = await s.open('/cd/sub', O_PATH | O_DIRECTORY);
  t.equal(await s.chdir('/'), 0);
  t.equal(await s.fchdir(dfd), 0, 'fchdir (O_PATH descriptors work)');
  t.equal(await s.getcwd(), '/cd/sub');
  t.equal(await writeFile(s, 'rel', 'relative'), 0);
  t.equal(await readFile(s, '/cd/sub/rel'), 'relative', 'relative paths use the cwd');
  await s.close(dfd);
  // A removed cwd.
  t.equal(await s.mkdir('/cd/gone', 0o755), 0);
  t.equal(await s.chdir('/cd/gone'), 0);
  t.equal(await s.rmdir('/cd/gone'), 0);
  t.equal(await s.getcwd(), -ENOENT, 'getcwd of a removed directory');
  t.equal(await writeFile(s, 'x', 'x'), -ENOENT, 'no creating in a removed directory');
  t.equal(await s.chdir('/'), 0);
});

t.test('chroot', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/jail', 0o755), 0);
  t.equal(await s.mkdir('/jail/in', 0o755), 0);
  t.equal(await writeFile(s, '/jail/in/f', 'inside'), 0);
  t.equal(await writeFile(s, '/outside', 'outside'), 0);
  t.equal(await s.symlink('/in/f', '/jail/abs'), 0);
  const oldRoot = await s.open('/', O_PATH | O_DIRECTORY);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.chroot('/jail'), -EPERM, 'chroot needs CAP_SYS_CHROOT');
  });
  await table(t, [
    ['chroot ENOENT', () => s.chroot('/none'), ENOENT],
    ['chroot ENOTDIR', () => s.chroot('/outside'), ENOTDIR],
  ]);
  t.equal(await s.chdir('/jail'), 0);
  t.equal(await s.chroot('/jail'), 0);
  t.equal(await readFile(s, '/in/f'), 'inside', '/ is the new root');
  t.equal(await readFile(s, '/../../in/f'), 'inside', '.. does not climb above it');
  t.equal(await readFile(s, '/abs'), 'inside', 'absolute symlinks resolve in the new root');
  t.equal(await s.stat('/outside'), -ENOENT, 'the old tree is out of reach');
  t.equal(await s.getcwd(), '/');
  t.equal(await s.fchdir(oldRoot), 0);
  t.equal(await s.getcwd(), '(unreachable)/', 'a cwd outside the root');
  t.equal(await s.chroot('.'), 0, 'escape back through the descriptor');
  t.equal(await s.getcwd(), '/');
  t.equal(await readFile(s, '/outside'), 'outside');
  await s.close(oldRoot);
});

t.test('dup, dup3, fcntl', async (t) => {
  const s = k.sys;
  t.equal(await writeFile(s, '/dup', '0123456789'), 0);
  const fd = await s.open('/dup', O_RDWR);
  const d = await s.dup(fd);
  t.equal(d, fd + 1, 'lowest free descriptor');
  t.equal(await s.lseek(fd, 4, SEEK_SET), 4);
  t.equal(await s.lseek(d, 0, SEEK_CUR), 4, 'duplicates share the offset');
  t.equal(await s.dup3(fd, 10, O_CLOEXEC), 10);
  t.equal(await s.fcntl(10, F_GETFD), FD_CLOEXEC);
  t.equal(await s.fcntl(fd, F_GETFD), 0, 'the original has no close-on-exec');
  t.equal(await s.dup3(d, 10, 0), 10, 'dup3 onto an open descriptor closes it first');
  t.equal(await s.fcntl(10, F_GETFD), 0);
  t.equal(await s.dup2(fd, fd), fd, 'dup2 to itself');
  t.equal(await s.fcntl(fd, F_DUPFD, 20), 20);
  t.equal(await s.fcntl(fd, F_DUPFD, 20), 21, 'F_DUPFD takes the lowest >= arg');
  t.equal(await s.fcntl(fd, F_DUPFD_CLOEXEC, 5), 5);
  t.equal(await s.fcntl(5, F_GETFD), FD_CLOEXEC);
  t.equal(await s.fcntl(5, F_SETFD, 0), 0);
  t.equal(await s.fcntl(5, F_GETFD), 0);
  t.equal(await s.fcntl(fd, F_GETFL), O_RDWR | O_LARGEFILE);
  t.equal(await s.fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK | O_WRONLY), 0);
  t.equal(await s.fcntl(fd, F_GETFL), O_RDWR | O_LARGEFILE | O_APPEND | O_NONBLOCK, 'access mode unchanged');
  t.equal(await s.fcntl(d, F_GETFL) & O_APPEND, O_APPEND, 'status flags are shared by duplicates');
  t.equal(await s.write(d, enc('X')), 1);
  t.equal(await readFile(s, '/dup'), '0123456789X', 'O_APPEND set by F_SETFL applies');
  t.equal(await s.fcntl(fd, F_SETFL, 0), 0);
  await table(t, [
    ['dup bad fd', () => s.dup(92), EBADF],
    ['dup3 same fd', () => s.dup3(fd, fd, 0), EINVAL],
    ['dup3 bad flags', () => s.dup3(fd, 30, 0x1), EINVAL],
    ['dup3 bad old fd', () => s.dup3(92, 30, 0), EBADF],
    ['dup3 negative new fd', () => s.dup3(fd, -1, 0), EBADF],
    ['dup3 new fd over the limit', () => s.dup3(fd, 1 << 20, 0), EBADF],
    ['dup2 bad fd to itself', () => s.dup2(92, 92), EBADF],
    ['fcntl bad fd', () => s.fcntl(92, F_GETFD), EBADF],
    ['fcntl bad cmd', () => s.fcntl(fd, 9999), EINVAL],
    ['F_DUPFD negative', () => s.fcntl(fd, F_DUPFD, -1), EINVAL],
    ['F_DUPFD over the limit', () => s.fcntl(fd, F_DUPFD, 1 << 20), EINVAL],
  ]);
  for (const x of [fd, d, 10, 20, 21, 5]) t.equal(await s.close(x), 0);
  t.equal(await s.close(d), -EBADF);
  t.equal(O_CREAT, 0o100);
  t.equal(AT_FDCWD, -100);
  t.equal(S_IFMT, 0o170000);
});

t.test('statfs, fstatfs', async (t) => {
  const s = k.sys;
  const r = await s.statfs('/') as statfs;
  t.equal(r.type, 0x858458f6, 'RAMFS_MAGIC');
  t.equal(r.bsize, 4096);
  t.equal(r.namelen, 255);
  t.equal(r.flags & 1, 0, 'not read-only');
  t.equal(await s.mkdir('/sf', 0o755), 0);
  t.equal(await s.mount('none', '/sf', 'ramfs', MS_RDONLY | MS_NOSUID, null), 0);
  const ro = await s.statfs('/sf') as statfs;
  t.equal(ro.flags & 1, 1, 'ST_RDONLY');
  t.equal(ro.flags & 2, 2, 'ST_NOSUID');
  const fd = await s.open('/sf', O_RDONLY);
  t.same(await s.fstatfs(fd), ro, 'fstatfs agrees');
  await s.close(fd);
  t.equal(await s.umount2('/sf', 0), 0);
  await table(t, [
    ['statfs ENOENT', () => s.statfs('/none'), ENOENT],
    ['statfs ENOTDIR', () => s.statfs('/dup/x'), ENOTDIR],
    ['fstatfs bad fd', () => s.fstatfs(91), EBADF],
  ]);
});

t.test('sync, syncfs, fsync, fdatasync', async (t) => {
  const s = k.sys;
  const fd = await s.open('/sync', O_CREAT | O_WRONLY, 0o644);
  t.equal(await s.write(fd, enc('data')), 4);
  await table(t, [
    ['sync', () => s.sync(), 0],
    ['syncfs', () => s.syncfs(fd), 0],
    ['fsync', () => s.fsync(fd), 0],
    ['fdatasync', () => s.fdatasync(fd), 0],
    ['syncfs bad fd', () => s.syncfs(90), EBADF],
    ['fsync bad fd', () => s.fsync(90), EBADF],
    ['fdatasync bad fd', () => s.fdatasync(90), EBADF],
  ]);
  const dfd = await s.open('/', O_RDONLY | O_DIRECTORY);
  t.equal(await s.fsync(dfd), 0, 'fsync of a directory');
  const p = await s.open('/sync', O_PATH);
  t.equal(await s.fsync(p), -EBADF, 'fsync of O_PATH');
  for (const x of [fd, dfd, p]) await s.close(x);
  t.equal(await readFile(s, '/sync'), 'data');
});
