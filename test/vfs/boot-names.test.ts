// Boot suite, part 2: the namespace calls (mkdirat, unlinkat, renameat2, linkat, symlinkat,
// readlinkat, mount, umount2) and the path walk (dots, symlinks, ELOOP, limits, mounts,
// permissions, sticky directories, negative dentries).
import t from 'tap';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, EACCES, EBADF, EBUSY, EEXIST, EINVAL,
  EISDIR, ELOOP, EMLINK, ENAMETOOLONG, ENODEV, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, EROFS, EXDEV,
  MNT_DETACH, MS_BIND, MS_RDONLY, MS_REMOUNT, O_CREAT, O_DIRECTORY, O_PATH, O_RDONLY, O_RDWR,
  O_NOFOLLOW, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, S_IFDIR, S_IFMT, S_IFREG,
  S_IFLNK, type stat,
} from '../../lib/index.js';
import { register_filesystem } from '../../lib/kernel/fs/super.js';
import { ramfs_fs_type } from '../../lib/kernel/fs/ramfs/inode.js';
import { dcacheStats } from '../../lib/kernel/fs/dcache.js';
import { asUser, boot, enc, readFile, table, writeFile, type Booted } from './helpers.js';

// A ramfs with a link limit of 3, to see EMLINK (ramfs itself has no limit).
register_filesystem({
  name: 'ramfs-maxlinks3', fs_flags: 0,
  async fill_super(sb, data, silent) { await ramfs_fs_type.fill_super(sb, data, silent); sb.s_max_links = 3; },
});

let k: Booted;
t.before(async () => { k = await boot(); });
t.teardown(async () => { await k.halt(); });

const st = (r: stat | number): stat => { if (typeof r === 'number') throw new Error(`stat failed: ${r}`); return r; };

t.test('mkdirat', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/m', 0o777), 0);
  t.equal(st(await s.stat('/m')).mode, S_IFDIR | 0o755, 'mode & ~umask');
  const before = st(await s.stat('/')).nlink;
  t.equal(await s.mkdir('/m2', 0o700), 0);
  t.equal(st(await s.stat('/')).nlink, before + 1, 'parent gains a link');
  t.equal(await s.mkdir('/m/trail/', 0o755), 0, 'trailing slash is fine for mkdir');
  const dfd = await s.open('/m', O_RDONLY | O_DIRECTORY);
  t.equal(await s.mkdirat(dfd, 'rel', 0o755), 0, 'relative to dirfd');
  t.equal(st(await s.stat('/m/rel')).mode & S_IFMT, S_IFDIR);
  t.equal(await writeFile(s, '/m/file', 'x'), 0);
  await table(t, [
    ['EEXIST on a directory', () => s.mkdir('/m', 0o755), EEXIST],
    ['EEXIST on a file', () => s.mkdir('/m/file', 0o755), EEXIST],
    ['EEXIST with trailing slash on a file', () => s.mkdir('/m/file/', 0o755), EEXIST],
    ['EEXIST for /', () => s.mkdir('/', 0o755), EEXIST],
    ['EEXIST for .', () => s.mkdir('/m/.', 0o755), EEXIST],
    ['ENOENT parent', () => s.mkdir('/m/none/x', 0o755), ENOENT],
    ['ENOTDIR parent', () => s.mkdir('/m/file/x', 0o755), ENOTDIR],
    ['ENAMETOOLONG', () => s.mkdir('/m/' + 'd'.repeat(256), 0o755), ENAMETOOLONG],
    ['EBADF dirfd', () => s.mkdirat(77, 'x', 0o755), EBADF],
    ['empty path', () => s.mkdir('', 0o755), ENOENT],
  ]);
  await s.close(dfd);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.mkdir('/m/user', 0o755), -EACCES, 'no write permission on the parent');
  });
  t.equal(await s.mkdir('/m/ro', 0o755), 0);
  t.equal(await s.mount('none', '/m/ro', 'ramfs', MS_RDONLY, null), 0);
  t.equal(await s.mkdir('/m/ro/x', 0o755), -EROFS, 'EROFS on a read-only mount');
  t.equal(await s.mkdir('/m/ro/.', 0o755), -EEXIST, 'EEXIST wins over EROFS');
  t.equal(await s.umount2('/m/ro', 0), 0);
});

t.test('unlinkat and rmdir', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/u', 0o755), 0);
  t.equal(await s.mkdir('/u/d', 0o755), 0);
  t.equal(await s.mkdir('/u/full', 0o755), 0);
  t.equal(await writeFile(s, '/u/full/f', 'x'), 0);
  t.equal(await writeFile(s, '/u/f', 'x'), 0);
  t.equal(await s.symlink('d', '/u/ld'), 0);
  await table(t, [
    ['unlink a directory', () => s.unlink('/u/d'), EISDIR],
    ['unlink with trailing slash on a file', () => s.unlink('/u/f/'), ENOTDIR],
    ['unlink with trailing slash on a dir', () => s.unlink('/u/d/'), EISDIR],
    ['unlink ENOENT', () => s.unlink('/u/none'), ENOENT],
    ['unlink .', () => s.unlink('/u/.'), EISDIR],
    ['unlink /', () => s.unlink('/'), EISDIR],
    ['rmdir a file', () => s.rmdir('/u/f'), ENOTDIR],
    ['rmdir a symlink to a dir', () => s.rmdir('/u/ld'), ENOTDIR],
    ['rmdir non-empty', () => s.rmdir('/u/full'), ENOTEMPTY],
    ['rmdir .', () => s.rmdir('/u/d/.'), EINVAL],
    ['rmdir ..', () => s.rmdir('/u/d/..'), ENOTEMPTY],
    ['rmdir /', () => s.rmdir('/'), EBUSY],
    ['rmdir ENOENT', () => s.rmdir('/u/none'), ENOENT],
    ['unlinkat bad flags', () => s.unlinkat(AT_FDCWD, '/u/f', 0x1), EINVAL],
    ['unlinkat bad dirfd', () => s.unlinkat(55, 'f', 0), EBADF],
    ['unlink a symlink (not its target)', () => s.unlink('/u/ld'), 0],
    ['rmdir with trailing slash', () => s.rmdir('/u/d/'), 0],
    ['unlink a file', () => s.unlink('/u/f'), 0],
    ['unlink it again', () => s.unlink('/u/f'), ENOENT],
  ]);
  t.equal(await s.mkdir('/u/mp', 0o755), 0);
  t.equal(await s.mount('none', '/u/mp', 'ramfs', 0, null), 0);
  t.equal(await s.rmdir('/u/mp'), -EBUSY, 'rmdir of a mount point');
  t.equal(await s.umount2('/u/mp', 0), 0);
  t.equal(await s.rmdir('/u/mp'), 0);
  const dfd = await s.open('/u', O_RDONLY);
  t.equal(await s.unlinkat(dfd, 'full/f', 0), 0);
  t.equal(await s.unlinkat(dfd, 'full', AT_REMOVEDIR), 0);
  await s.close(dfd);
  // Sticky directories: only the owner of the file or of the directory may delete.
  t.equal(await s.mkdir('/tmp', 0o777), 0);
  t.equal(await s.chmod('/tmp', 0o1777), 0);
  await asUser(s, 1000, 1000, [], async () => { t.equal(await writeFile(s, '/tmp/a', 'x'), 0); });
  await asUser(s, 1001, 1001, [], async () => {
    t.equal(await s.unlink('/tmp/a'), -EPERM, 'sticky: another user cannot delete');
    t.equal(await s.rename('/tmp/a', '/tmp/b'), -EPERM, 'nor rename it away');
  });
  await asUser(s, 1000, 1000, [], async () => { t.equal(await s.unlink('/tmp/a'), 0, 'the owner can'); });
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.unlink('/m/file'), -EACCES, 'no write permission on the parent');
  });
});

t.test('renameat2', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/r', 0o755), 0);
  for (const d of ['a', 'b', 'empty', 'full', 'a/sub']) t.equal(await s.mkdir(`/r/${d}`, 0o755), 0);
  t.equal(await writeFile(s, '/r/full/x', 'x'), 0);
  t.equal(await writeFile(s, '/r/f1', 'one'), 0);
  t.equal(await writeFile(s, '/r/f2', 'two'), 0);
  t.equal(await s.link('/r/f1', '/r/f1link'), 0);
  t.equal(await s.mkdir('/r/other', 0o755), 0);
  t.equal(await s.mount('none', '/r/other', 'ramfs', 0, null), 0);
  await table(t, [
    ['ENOENT source', () => s.rename('/r/none', '/r/x'), ENOENT],
    ['ENOENT target dir', () => s.rename('/r/f1', '/r/none/x'), ENOENT],
    ['EXDEV across mounts', () => s.rename('/r/f1', '/r/other/f1'), EXDEV],
    ['EINVAL into own subtree', () => s.rename('/r/a', '/r/a/sub/x'), EINVAL],
    ['EINVAL onto own child', () => s.rename('/r/a', '/r/a/sub'), EINVAL],
    ['ENOTEMPTY onto an ancestor', () => s.rename('/r/a/sub', '/r'), ENOTEMPTY],
    ['ENOTEMPTY target ancestor of source', () => s.rename('/r/a/sub', '/r/a'), ENOTEMPTY],
    ['ENOTEMPTY target dir not empty', () => s.rename('/r/a', '/r/full'), ENOTEMPTY],
    ['EISDIR file onto dir', () => s.rename('/r/f1', '/r/empty'), EISDIR],
    ['ENOTDIR dir onto file', () => s.rename('/r/empty', '/r/f2'), ENOTDIR],
    ['ENOTDIR trailing slash on a file', () => s.rename('/r/f1/', '/r/f3'), ENOTDIR],
    ['ENOTDIR trailing slash on the target', () => s.rename('/r/f1', '/r/f3/'), ENOTDIR],
    ['EBUSY renaming .', () => s.rename('/r/a/.', '/r/z'), EBUSY],
    ['EBUSY renaming onto ..', () => s.rename('/r/f1', '/r/a/..'), EBUSY],
    ['NOREPLACE onto ..', () => s.renameat2(AT_FDCWD, '/r/f1', AT_FDCWD, '/r/a/..', RENAME_NOREPLACE), EEXIST],
    ['EINVAL bad flags', () => s.renameat2(AT_FDCWD, '/r/f1', AT_FDCWD, '/r/f3', 0x80), EINVAL],
    ['EINVAL NOREPLACE|EXCHANGE', () => s.renameat2(AT_FDCWD, '/r/f1', AT_FDCWD, '/r/f2', RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL],
    ['EINVAL WHITEOUT', () => s.renameat2(AT_FDCWD, '/r/f1', AT_FDCWD, '/r/f3', RENAME_WHITEOUT), EINVAL],
    ['EEXIST NOREPLACE', () => s.renameat2(AT_FDCWD, '/r/f1', AT_FDCWD, '/r/f2', RENAME_NOREPLACE), EEXIST],
    ['ENOENT EXCHANGE with missing target', () => s.renameat2(AT_FDCWD, '/r/f1', AT_FDCWD, '/r/f9', RENAME_EXCHANGE), ENOENT],
    ['rename onto a hard link of itself is a no-op', () => s.rename('/r/f1', '/r/f1link'), 0],
    ['rename onto itself', () => s.rename('/r/f1', '/r/f1'), 0],
  ]);
  t.equal(await readFile(s, '/r/f1'), 'one', 'source still there after the no-op');
  t.equal(await readFile(s, '/r/f1link'), 'one');
  // Success cases.
  t.equal(await s.rename('/r/f2', '/r/f3'), 0);
  t.equal(await s.stat('/r/f2'), -ENOENT, 'old name gone');
  t.equal(await readFile(s, '/r/f3'), 'two', 'new name has the data');
  t.equal(await s.rename('/r/f3', '/r/f1'), 0, 'rename over an existing file');
  t.equal(await readFile(s, '/r/f1'), 'two');
  t.equal(await readFile(s, '/r/f1link'), 'one', 'the replaced inode lives on under its other name');
  t.equal(st(await s.stat('/r/f1link')).nlink, 1);
  t.equal(await s.renameat2(AT_FDCWD, '/r/f1', AT_FDCWD, '/r/f1link', RENAME_EXCHANGE), 0, 'RENAME_EXCHANGE');
  t.equal(await readFile(s, '/r/f1'), 'one');
  t.equal(await readFile(s, '/r/f1link'), 'two');
  const rootLinks = st(await s.stat('/r')).nlink;
  const bLinks = st(await s.stat('/r/b')).nlink;
  t.equal(await s.rename('/r/a', '/r/b/a'), 0, 'move a directory to another parent');
  t.equal(st(await s.stat('/r')).nlink, rootLinks - 1, 'old parent loses the .. link');
  t.equal(st(await s.stat('/r/b')).nlink, bLinks + 1, 'new parent gains it');
  t.equal(st(await s.stat('/r/b/a/sub')).mode & S_IFMT, S_IFDIR, 'the subtree moved along');
  t.equal(await s.rename('/r/b/a', '/r/empty'), 0, 'a directory over an empty directory');
  t.equal(await s.stat('/r/b/a'), -ENOENT);
  t.equal(st(await s.stat('/r/empty/sub')).mode & S_IFMT, S_IFDIR);
  t.equal(await s.renameat2(AT_FDCWD, '/r/empty', AT_FDCWD, '/r/f1', RENAME_EXCHANGE), 0, 'exchange a dir and a file');
  t.equal(st(await s.stat('/r/f1/sub')).mode & S_IFMT, S_IFDIR);
  t.equal(st(await s.stat('/r/empty')).mode & S_IFMT, S_IFREG);
  // Open files follow their inode across renames.
  const fd = await s.open('/r/empty', O_RDWR);
  t.equal(await s.rename('/r/empty', '/r/moved'), 0);
  t.equal(await s.write(fd, enc('ONE')), 3);
  await s.close(fd);
  t.equal(await readFile(s, '/r/moved'), 'ONE');
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.rename('/r/moved', '/r/x'), -EACCES, 'no write permission on the directory');
  });
  t.equal(await s.umount2('/r/other', 0), 0);
});

t.test('linkat', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/l', 0o755), 0);
  t.equal(await writeFile(s, '/l/f', 'data'), 0);
  t.equal(await s.symlink('f', '/l/sl'), 0);
  t.equal(await s.mkdir('/l/d', 0o755), 0);
  t.equal(await s.link('/l/f', '/l/g'), 0);
  t.equal(st(await s.stat('/l/f')).nlink, 2, 'nlink counts both names');
  t.equal(st(await s.stat('/l/g')).ino, st(await s.stat('/l/f')).ino, 'same inode');
  t.equal(await s.link('/l/sl', '/l/sl2'), 0, 'link to a symlink links the symlink itself');
  t.equal(st(await s.lstat('/l/sl2')).mode & S_IFMT, S_IFLNK);
  t.equal(await s.linkat(AT_FDCWD, '/l/sl', AT_FDCWD, '/l/h', AT_SYMLINK_FOLLOW), 0, 'AT_SYMLINK_FOLLOW links the target');
  t.equal(st(await s.lstat('/l/h')).mode & S_IFMT, S_IFREG);
  t.equal(st(await s.stat('/l/f')).nlink, 3);
  t.equal(await s.mkdir('/l/mnt', 0o755), 0);
  t.equal(await s.mount('none', '/l/mnt', 'ramfs', 0, null), 0);
  await table(t, [
    ['EEXIST', () => s.link('/l/f', '/l/g'), EEXIST],
    ['ENOENT source', () => s.link('/l/none', '/l/x'), ENOENT],
    ['ENOENT target dir', () => s.link('/l/f', '/l/none/x'), ENOENT],
    ['EPERM on a directory', () => s.link('/l/d', '/l/d2'), EPERM],
    ['EXDEV across mounts', () => s.link('/l/f', '/l/mnt/f'), EXDEV],
    ['EINVAL flags', () => s.linkat(AT_FDCWD, '/l/f', AT_FDCWD, '/l/x', 0x1), EINVAL],
    ['ENOENT empty old path', () => s.linkat(AT_FDCWD, '', AT_FDCWD, '/l/x', 0), ENOENT],
  ]);
  // AT_EMPTY_PATH links an open file (CAP_DAC_READ_SEARCH).
  const fd = await s.open('/l/f', O_RDONLY);
  t.equal(await s.linkat(fd, '', AT_FDCWD, '/l/byfd', AT_EMPTY_PATH), 0, 'AT_EMPTY_PATH');
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.linkat(fd, '', AT_FDCWD, '/l/byfd2', AT_EMPTY_PATH), -ENOENT, 'AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH');
  });
  await s.close(fd);
  t.equal(await s.umount2('/l/mnt', 0), 0);
  // EMLINK on a filesystem with a link limit.
  t.equal(await s.mount('none', '/l/mnt', 'ramfs-maxlinks3', 0, null), 0);
  t.equal(await writeFile(s, '/l/mnt/f', 'x'), 0);
  t.equal(await s.link('/l/mnt/f', '/l/mnt/f2'), 0);
  t.equal(await s.link('/l/mnt/f', '/l/mnt/f3'), 0);
  t.equal(await s.link('/l/mnt/f', '/l/mnt/f4'), -EMLINK, 'EMLINK at s_max_links');
  t.equal(await s.mkdir('/l/mnt/d', 0o755), 0);
  t.equal(await s.mkdir('/l/mnt/d/e', 0o755), 0, 'a subdirectory makes 3 links');
  t.equal(await s.mkdir('/l/mnt/d/f', 0o755), -EMLINK, 'mkdir in a directory at the link limit');
  t.equal(await s.rename('/l/mnt/d/e', '/l/mnt/e2'), -EMLINK, 'moving a directory into a parent at the limit');
  t.equal(await s.rename('/l/mnt/d/e', '/l/mnt/d/e2'), 0, 'renaming within the same parent is fine');
  t.equal(await s.umount2('/l/mnt', 0), 0);
});

t.test('symlinkat and readlinkat', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/s', 0o755), 0);
  t.equal(await writeFile(s, '/s/f', 'x'), 0);
  t.equal(await s.symlink('f', '/s/rel'), 0);
  t.equal(await s.symlink('/s/f', '/s/abs'), 0);
  t.equal(await s.symlink('ünïcödé', '/s/u'), 0);
  t.equal(await s.readlink('/s/rel'), 'f');
  t.equal(await s.readlink('/s/abs'), '/s/f');
  t.equal(await s.readlink('/s/u'), 'ünïcödé', 'UTF-8 round trip');
  const dfd = await s.open('/s', O_RDONLY);
  t.equal(await s.symlinkat('target', dfd, 'at'), 0);
  t.equal(await s.readlinkat(dfd, 'at'), 'target');
  // With a buffer, as in C: the target's bytes (not UTF-8 here), truncated to the buffer.
  t.equal(await s.symlink(new Uint8Array([0x74, 0xff, 0xfe, 0x2f, 0x78]), '/s/bytes'), 0);
  const buf = new Uint8Array(16);
  t.equal(await s.readlink('/s/bytes', buf), 5, 'readlink into a buffer: the byte count');
  t.same([...buf.subarray(0, 5)], [0x74, 0xff, 0xfe, 0x2f, 0x78], 'the bytes as stored');
  const small = new Uint8Array(2);
  t.equal(await s.readlinkat(dfd, 'bytes', small), 2, 'truncated to the buffer, as readlink(2)');
  t.same([...small], [0x74, 0xff]);
  await table(t, [
    ['readlink into an empty buffer', () => s.readlink('/s/bytes', new Uint8Array(0)), EINVAL],
    ['readlink of a file', () => s.readlink('/s/f'), EINVAL],
    ['readlink of a directory', () => s.readlink('/s'), EINVAL],
    ['readlink ENOENT', () => s.readlink('/s/none'), ENOENT],
    ['readlink of a symlink with a trailing slash', () => s.readlink('/s/rel/'), ENOTDIR],
    ['symlink EEXIST', () => s.symlink('x', '/s/f'), EEXIST],
    ['symlink empty target', () => s.symlink('', '/s/empty'), ENOENT],
    ['symlink ENOENT dir', () => s.symlink('x', '/s/none/x'), ENOENT],
    ['symlinkat bad dirfd', () => s.symlinkat('x', 66, 'x'), EBADF],
    ['readlinkat empty path on a directory fd', () => s.readlinkat(dfd, ''), ENOENT],
  ]);
  await s.close(dfd);
});

t.test('path walk', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/w', 0o755), 0);
  t.equal(await s.mkdir('/w/a', 0o755), 0);
  t.equal(await s.mkdir('/w/a/b', 0o755), 0);
  t.equal(await writeFile(s, '/w/a/b/f', 'deep'), 0);
  t.equal(await s.symlink('a/b', '/w/mid'), 0);
  t.equal(await s.symlink('/w/a', '/w/absmid'), 0);
  t.equal(await s.symlink('../..', '/w/a/b/up'), 0);
  t.equal(await s.symlink('loop2', '/w/loop1'), 0);
  t.equal(await s.symlink('loop1', '/w/loop2'), 0);
  t.equal(await s.symlink('self/x', '/w/self'), 0);
  // Chains: 40 links are followed, the 41st is ELOOP.
  t.equal(await s.symlink('a/b/f', '/w/c40'), 0);
  for (let i = 39; i >= 0; i--) t.equal(await s.symlink(`c${i + 1}`, `/w/c${i}`), 0);
  const ino = st(await s.stat('/w/a/b/f')).ino;
  await table(t, [
    ['dots', () => s.stat('/w/./a/../a/b/./f'), 0],
    ['doubled slashes', () => s.stat('//w//a///b/f'), 0],
    ['.. at the root stays there', () => s.stat('/../../w/a/b/f'), 0],
    ['symlink in the middle', () => s.stat('/w/mid/f'), 0],
    ['absolute symlink in the middle', () => s.stat('/w/absmid/b/f'), 0],
    ['.. after a symlink is the link target\'s parent', () => s.stat('/w/mid/../b/f'), 0],
    ['relative symlink with ..', () => s.stat('/w/a/b/up/a/b/f'), 0],
    ['symlink loop', () => s.stat('/w/loop1'), ELOOP],
    ['symlink loop in the middle', () => s.stat('/w/loop1/x'), ELOOP],
    ['self-referencing symlink', () => s.stat('/w/self'), ELOOP],
    ['lstat of a loop is fine', () => s.lstat('/w/loop1'), 0],
    ['40 links', () => s.stat('/w/c1'), 0],
    ['41 links', () => s.stat('/w/c0'), ELOOP],
    ['ENOTDIR through a file', () => s.stat('/w/a/b/f/x'), ENOTDIR],
    ['ENOTDIR trailing slash on a file', () => s.stat('/w/a/b/f/'), ENOTDIR],
    ['trailing slash on a dir', () => s.stat('/w/a/'), 0],
    ['trailing slash follows a symlink to a dir', () => s.lstat('/w/mid/'), 0],
    ['trailing /. on a file', () => s.stat('/w/a/b/f/.'), ENOTDIR],
  ]);
  t.equal(st(await s.stat('/w/mid/f')).ino, ino);
  t.equal(st(await s.lstat('/w/mid/')).mode & S_IFMT, S_IFDIR, 'lstat with a trailing slash follows');
  // Relative walks from the cwd.
  t.equal(await s.chdir('/w/a'), 0);
  t.equal(st(await s.stat('b/f')).ino, ino, 'relative to the cwd');
  t.equal(st(await s.stat('../a/./b/f')).ino, ino);
  t.equal(await s.chdir('/'), 0);
  // Search permission on every directory on the way.
  t.equal(await s.chmod('/w/a', 0o700), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.stat('/w/a/b/f'), -EACCES, 'no x on a directory in the middle');
    t.equal(await s.stat('/w/mid/f'), -EACCES, 'also through a symlink');
    t.equal(typeof await s.lstat('/w/a'), 'object', 'the directory itself is visible');
  });
  t.equal(await s.chmod('/w/a', 0o755), 0);
  // Negative dentries: a failed lookup is remembered, and forgotten on create.
  const neg = dcacheStats().nrDentry;
  t.equal(await s.stat('/w/later'), -ENOENT);
  t.ok(dcacheStats().nrDentry > neg, 'a negative dentry was cached');
  t.equal(await s.stat('/w/later'), -ENOENT, 'still absent');
  t.equal(await writeFile(s, '/w/later', 'now'), 0);
  t.equal(st(await s.stat('/w/later')).size, 3, 'the negative dentry became positive');
  t.equal(await s.unlink('/w/later'), 0);
  t.equal(await s.stat('/w/later'), -ENOENT, 'and negative again after unlink');
});

t.test('mount and umount2', async (t) => {
  const s = k.sys;
  t.equal(await s.mkdir('/mnt/x', 0o755), 0);
  t.equal(await writeFile(s, '/mnt/x/under', 'hidden'), 0);
  t.equal(await writeFile(s, '/mnt/file', 'f'), 0);
  await table(t, [
    ['mount ramfs', () => s.mount('none', '/mnt/x', 'ramfs', 0, 'mode=0700'), 0],
    ['unknown fs type', () => s.mount('none', '/mnt', 'nosuchfs', 0, null), ENODEV],
    ['missing target', () => s.mount('none', '/mnt/none', 'ramfs', 0, null), ENOENT],
    ['target is a file', () => s.mount('none', '/mnt/file', 'ramfs', 0, null), ENOTDIR],
    ['no fs type', () => s.mount('none', '/mnt/x', null, 0, null), EINVAL],
    ['umount a non-mount-point', () => s.umount2('/mnt', 0), EINVAL],
    ['umount bad flags', () => s.umount2('/mnt/x', 0x100), EINVAL],
    ['umount ENOENT', () => s.umount2('/mnt/none', 0), ENOENT],
    ['umount /', () => s.umount2('/', 0), EBUSY],
  ]);
  t.equal(st(await s.stat('/mnt/x')).mode, S_IFDIR | 0o700, 'the mounted root (mode= option)');
  t.equal(await s.stat('/mnt/x/under'), -ENOENT, 'the covered file is hidden');
  t.not(st(await s.stat('/mnt/x')).dev, st(await s.stat('/mnt')).dev, 'another st_dev');
  t.equal(await writeFile(s, '/mnt/x/new', 'n'), 0);
  t.equal(st(await s.stat('/mnt/x/..')).ino, st(await s.stat('/mnt')).ino, '.. crosses back to the mount point');
  t.equal(await s.chdir('/mnt/x'), 0);
  t.equal(st(await s.stat('../file')).ino, st(await s.stat('/mnt/file')).ino, 'relative .. from a mount root');
  t.equal(await s.umount2('/mnt/x', 0), -EBUSY, 'busy: it is the cwd');
  t.equal(await s.chdir('/'), 0);
  const fd = await s.open('/mnt/x/new', O_RDONLY);
  t.equal(await s.umount2('/mnt/x', 0), -EBUSY, 'busy: an open file');
  await s.close(fd);
  t.equal(await s.mkdir('/mnt/x/sub', 0o755), 0);
  t.equal(await s.mount('none', '/mnt/x/sub', 'ramfs', 0, null), 0);
  t.equal(await s.umount2('/mnt/x', 0), -EBUSY, 'busy: a submount');
  t.equal(await s.umount2('/mnt/x/sub', 0), 0);
  t.equal(await s.umount2('/mnt/x', 0), 0, 'unmounted once idle');
  t.equal(await readFile(s, '/mnt/x/under'), 'hidden', 'the covered file is back');
  // Lazy unmount: detached at once, torn down when the last user goes.
  t.equal(await s.mount('none', '/mnt/x', 'ramfs', 0, null), 0);
  t.equal(await writeFile(s, '/mnt/x/lazy', 'still readable'), 0);
  const lz = await s.open('/mnt/x/lazy', O_RDONLY);
  t.equal(await s.umount2('/mnt/x', MNT_DETACH), 0, 'MNT_DETACH while busy');
  t.equal(await readFile(s, '/mnt/x/under'), 'hidden', 'detached from the tree');
  const b = new Uint8Array(14);
  t.equal(await s.read(lz, b), 14, 'the open file still works');
  t.equal(await s.close(lz), 0);
  t.equal(await s.mount('none', '/mnt/x', 'ramfs', 0, null), 0);
  t.equal(await s.umount2('/mnt/x', 1 /* MNT_FORCE */), 0, 'MNT_FORCE is accepted');
  // Stacked mounts, read-only mounts and remount.
  t.equal(await s.mount('none', '/mnt/x', 'ramfs', 0, null), 0);
  t.equal(await s.mount('none', '/mnt/x', 'ramfs', MS_RDONLY, null), 0, 'mount on top of a mount');
  t.equal(await writeFile(s, '/mnt/x/f', 'x'), -EROFS, 'the top one is read-only');
  t.equal(await s.mount('none', '/mnt/x', 'ramfs', MS_REMOUNT, null), 0, 'remount read-write');
  t.equal(await writeFile(s, '/mnt/x/f', 'x'), 0);
  const wfd = await s.open('/mnt/x/f', O_RDWR);
  t.equal(await s.mount('none', '/mnt/x', 'ramfs', MS_REMOUNT | MS_RDONLY, null), -EBUSY, 'no remount ro with a file open for writing');
  await s.close(wfd);
  t.equal(await s.umount2('/mnt/x', 0), 0);
  t.equal(await s.umount2('/mnt/x', 0), 0, 'then the one below');
  t.equal(await s.umount2('/mnt/x', 0), -EINVAL, 'nothing left');
  // Bind mounts.
  t.equal(await s.mkdir('/mnt/bind', 0o755), 0);
  t.equal(await s.mount('/mnt/x', '/mnt/bind', null, MS_BIND, null), 0, 'bind mount');
  t.equal(await readFile(s, '/mnt/bind/under'), 'hidden', 'same files');
  t.equal(await s.umount2('/mnt/bind', 0), 0);
  await asUser(s, 1000, 1000, [], async () => {
    t.equal(await s.mount('none', '/mnt/x', 'ramfs', 0, null), -EPERM, 'mount needs CAP_SYS_ADMIN');
    t.equal(await s.umount2('/mnt', 0), -EPERM, 'umount too');
  });
  const p = await s.open('/mnt/x', O_PATH | O_NOFOLLOW);
  t.ok(p >= 0);
  await s.close(p);
});
