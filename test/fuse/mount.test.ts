/*
 * lklfuse mounted for real (FUSE, fusermount) over the fake kernel: file operations through
 * the mount, NAME_MAX in the daemon, 128 KiB writes, unlinked open files, background mode
 * and the image lock.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readMountinfo } from '../../lib/fuse/mountinfo.js';
import { daemonsFor, isMounted, readStats, run, scratch, teardown, waitFor } from './helpers.js';

t.test('background mode returns once the mount is live; file operations go through', async (t) => {
  const s = scratch('ops');
  t.teardown(() => teardown(s));
  const r = await run(s, [s.image, s.mnt]);
  t.equal(r.status, 0, `lklfuse exits 0 (${r.stderr})`);
  // Right after the parent exits, with no waiting:
  const m = (await readMountinfo()).find((e) => e.mountPoint === s.mnt);
  t.ok(m, 'the mountpoint is in /proc/self/mountinfo as soon as lklfuse returns');
  t.equal(m?.fsType, 'fuse.lklfuse', 'type fuse.lklfuse');
  t.equal(m?.source, s.image, 'source is the image');

  const f = path.join(s.mnt, 'file');
  fs.writeFileSync(f, 'hello');
  t.equal(fs.readFileSync(path.join(s.back, 'file'), 'utf8'), 'hello', 'touch/write arrives in the filesystem');
  t.equal(fs.statSync(f).ino, fs.statSync(path.join(s.back, 'file')).ino, 'inode numbers are the filesystem\'s');
  fs.mkdirSync(path.join(s.mnt, 'dir'));
  t.ok(fs.statSync(path.join(s.back, 'dir')).isDirectory(), 'mkdir');
  fs.writeFileSync(path.join(s.mnt, 'dir', 'x'), '');
  t.same(fs.readdirSync(path.join(s.mnt, 'dir')), ['x'], 'readdir');
  fs.renameSync(path.join(s.mnt, 'dir', 'x'), path.join(s.mnt, 'y'));
  t.ok(fs.existsSync(path.join(s.back, 'y')), 'rename');
  fs.symlinkSync('target', path.join(s.mnt, 'sl'));
  t.equal(fs.readlinkSync(path.join(s.mnt, 'sl')), 'target', 'symlink + readlink');
  fs.chmodSync(f, 0o600);
  t.equal(fs.statSync(path.join(s.back, 'file')).mode & 0o777, 0o600, 'chmod');
  fs.truncateSync(f, 2);
  t.equal(fs.readFileSync(f, 'utf8'), 'he', 'truncate');
  fs.utimesSync(f, new Date(1_000_000_000_000), new Date(2_000_000_000_000));
  const bs = fs.statSync(path.join(s.back, 'file'));
  t.equal(Math.round(bs.atimeMs), 1_000_000_000_000, 'utimens: atime');
  t.equal(Math.round(bs.mtimeMs), 2_000_000_000_000, 'utimens: mtime (not atime twice)');
  fs.rmdirSync(path.join(s.mnt, 'dir'));
  t.notOk(fs.existsSync(path.join(s.back, 'dir')), 'rmdir');
  fs.unlinkSync(f);
  t.notOk(fs.existsSync(path.join(s.back, 'file')), 'unlink');
  t.throws(() => fs.readFileSync(path.join(s.mnt, 'nope')), { code: 'ENOENT' }, 'errno passes through');
  t.throws(() => fs.rmdirSync(path.join(s.mnt, 'y')), { code: 'ENOTDIR' }, 'ENOTDIR passes through');

  t.equal(spawnSync('fusermount', ['-u', s.mnt]).status, 0, 'fusermount -u');
  t.ok(await waitFor(() => daemonsFor(s.mnt).length === 0), 'the daemon exits after fusermount -u');
  t.notOk(await isMounted(s.mnt), 'no mount left');
});

t.test('NAME_MAX is enforced by the daemon; writes arrive in 128 KiB pieces', async (t) => {
  const s = scratch('limits');
  t.teardown(() => teardown(s));
  const r = await run(s, [s.image, s.mnt]);
  t.equal(r.status, 0, r.stderr);

  const long = 'a'.repeat(256);
  t.throws(() => fs.writeFileSync(path.join(s.mnt, long), ''), { code: 'ENAMETOOLONG' }, '256-byte name: ENAMETOOLONG');
  t.throws(() => fs.mkdirSync(path.join(s.mnt, long)), { code: 'ENAMETOOLONG' }, 'mkdir too');
  t.throws(() => fs.statSync(path.join(s.mnt, 'é'.repeat(128))), { code: 'ENAMETOOLONG' }, '256 bytes in 128 characters');
  fs.writeFileSync(path.join(s.mnt, 'a'.repeat(255)), 'ok');
  t.ok(fs.existsSync(path.join(s.back, 'a'.repeat(255))), 'a 255-byte name works');

  const data = Buffer.alloc(4 << 20, 7);
  const fd = fs.openSync(path.join(s.mnt, 'big'), 'w');
  fs.writeSync(fd, data);
  fs.closeSync(fd);
  t.same(fs.readFileSync(path.join(s.back, 'big')), data, 'data arrives intact');

  t.equal(spawnSync('fusermount', ['-u', s.mnt]).status, 0);
  t.ok(await waitFor(() => fs.existsSync(s.stats)), 'the fake kernel halted and wrote its stats');
  const st = readStats(s);
  t.equal(st.longNames, 0, 'no over-long name reached the kernel');
  t.equal(st.writes['131072'], 32, '4 MiB arrive as 32 writes of 128 KiB');
  t.same(Object.keys(st.writes).filter((k) => k !== '131072' && Number(k) > 2), [], 'no other write sizes (besides the 2-byte file)');
});

t.test('unlinked open files stay readable and leave no .fuse_hidden file', async (t) => {
  const s = scratch('unlinked');
  t.teardown(() => teardown(s));
  const r = await run(s, [s.image, s.mnt]);
  t.equal(r.status, 0, r.stderr);

  const dir = path.join(s.mnt, 'd');
  fs.mkdirSync(dir);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, 'still here');
  const fd = fs.openSync(f, 'r+');
  fs.unlinkSync(f);
  t.same(fs.readdirSync(dir), [], 'the name is gone through the mount');
  t.same(fs.readdirSync(path.join(s.back, 'd')), [], 'no .fuse_hidden* file in the filesystem');
  const buf = Buffer.alloc(10);
  t.equal(fs.readSync(fd, buf, 0, 10, 0), 10, 'read after unlink');
  t.equal(buf.toString(), 'still here');
  t.equal(fs.writeSync(fd, 'STILL', 0), 5, 'write after unlink');
  t.equal(fs.fstatSync(fd).size, 10, 'fstat after unlink');
  fs.rmdirSync(dir); // would be ENOTEMPTY with a .fuse_hidden file
  t.notOk(fs.existsSync(path.join(s.back, 'd')), 'rmdir of the parent works');
  fs.closeSync(fd);

  // rename over an open file hides the target the same way
  fs.writeFileSync(path.join(s.mnt, 'a'), 'A');
  fs.writeFileSync(path.join(s.mnt, 'b'), 'B');
  const fb = fs.openSync(path.join(s.mnt, 'b'), 'r');
  fs.renameSync(path.join(s.mnt, 'a'), path.join(s.mnt, 'b'));
  t.same(fs.readdirSync(s.back).sort(), ['b'], 'rename over an open file leaves no hidden file');
  t.equal(fs.readFileSync(path.join(s.mnt, 'b'), 'utf8'), 'A', 'new content under the name');
  const bb = Buffer.alloc(1);
  fs.readSync(fb, bb, 0, 1, 0);
  t.equal(bb.toString(), 'B', 'the open replaced file still reads its old content');
  fs.closeSync(fb);
});

t.test('the image is locked against a second instance', async (t) => {
  const s = scratch('lock');
  t.teardown(() => teardown(s));
  const mnt2 = path.join(s.dir, 'mnt2');
  fs.mkdirSync(mnt2);
  t.equal((await run(s, [s.image, s.mnt])).status, 0, 'first instance mounts');
  const second = await run(s, [s.image, mnt2]);
  t.equal(second.status, 2, 'second read-write instance exits 2');
  t.match(second.stderr, /^lklfuse: .*disk\.img: image is locked by another lklfuse/, second.stderr);
  t.equal(second.stderr.trim().split('\n').length, 1, 'one line');
  const ro = await run(s, [s.image, mnt2, '-o', 'ro']);
  t.equal(ro.status, 2, 'a read-only instance is refused while a writer holds it');
  t.notOk(await isMounted(mnt2), 'nothing mounted at the second mountpoint');

  spawnSync('fusermount', ['-u', s.mnt]);
  await waitFor(() => daemonsFor(s.mnt).length === 0);

  const lock = path.join(s.dir, 'explicit.lock');
  const img2 = path.join(s.dir, 'other.img');
  fs.copyFileSync(s.image, img2);
  t.equal((await run(s, [s.image, s.mnt, '-o', `lock=${lock}`])).status, 0, 'lock=FILE');
  const third = await run(s, [img2, mnt2, '-o', `lock=${lock}`]);
  t.equal(third.status, 2, 'another image with the same lock=FILE exits 2');
  t.match(third.stderr, /lock file .*explicit\.lock is locked/);
  spawnSync('fusermount', ['-u', s.mnt]);
  await waitFor(() => daemonsFor(s.mnt).length === 0);
  t.equal((await run(s, [img2, mnt2, '-o', `lock=${lock}`])).status, 0, 'the lock is free once the first daemon is gone');
  spawnSync('fusermount', ['-u', mnt2]);
  await waitFor(() => daemonsFor(mnt2).length === 0);
});

t.test('read-only mounts and mount(8)-style options', async (t) => {
  const s = scratch('ro');
  t.teardown(() => teardown(s));
  fs.writeFileSync(path.join(s.back, 'f'), 'x');
  const r = await run(s, [s.image, s.mnt, '-o', 'ro,dev,suid,nofail,_netdev,x-systemd.automount,noatime']);
  t.equal(r.status, 0, r.stderr);
  const m = (await readMountinfo()).find((e) => e.mountPoint === s.mnt);
  t.match(m?.options, /^ro\b/, 'the FUSE mount is read-only');
  t.throws(() => fs.writeFileSync(path.join(s.mnt, 'g'), ''), { code: 'EROFS' });
  t.equal(fs.readFileSync(path.join(s.mnt, 'f'), 'utf8'), 'x', 'reads work');
});
