/*
 * lklfuse's operations without FUSE: over the fake kernel, errno pass-through, NAME_MAX,
 * hidden files; over the real kernel, paths deeper than PATH_MAX walked in pieces.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lklfuseOps, nameTooLong, splitLongPath } from '../../lib/fuse/ops.js';
import {
  EBADF, EINVAL, EISDIR, ENAMETOOLONG, ENODATA, ENOENT, ENOTDIR, ENOTEMPTY, O_RDONLY, O_RDWR, PATH_MAX, S_IFLNK, S_IFMT,
} from '../../lib/kernel/include/uapi.js';
import { startKernel } from '../../lib/index.js';
import { createFakeKernel } from './fake-kernel.js';

t.test('nameTooLong', async (t) => {
  const rows: [string, boolean][] = [
    ['/', false], ['/' + 'a'.repeat(255), false], ['/' + 'a'.repeat(256), true],
    ['/d/' + 'a'.repeat(256) + '/x', true], ['/' + 'é'.repeat(127), false], ['/' + 'é'.repeat(128), true],
    ['/' + '😀'.repeat(63), false], ['/' + '😀'.repeat(64), true],
  ];
  for (const [p, want] of rows) t.equal(nameTooLong(p), want, `${p.length} chars`);
});

t.test('operations', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lklfuse-ops-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'img');
  const b = Buffer.alloc(4096);
  b.writeUInt16LE(0xef53, 1024 + 0x38); b.writeUInt32LE(16, 1024); b.writeUInt32LE(16, 1024 + 0x28); b.writeUInt32LE(8192, 1024 + 0x20);
  fs.writeFileSync(img, b);
  fs.mkdirSync(path.join(dir, 'back'));
  const k = createFakeKernel(path.join(dir, 'back'));
  const id = await k.diskAdd({ path: img });
  const mp = await k.mountDev(id, 0, 'ext4', 0, '');
  t.equal(mp, '/mnt/vda');
  t.equal(await k.sys.chroot(mp as string), 0);
  const ops = lklfuseOps(k.sys);

  t.equal(await ops.getattr('/nope'), -ENOENT, 'negative errno passes through');
  t.equal(await ops.getattr('/' + 'x'.repeat(300)), -ENAMETOOLONG, 'NAME_MAX');
  t.equal(await ops.mkdir('/d', 0o755), 0);
  const fh = await ops.create('/d/f', 0o644);
  t.ok(fh >= 0, 'create returns a kernel fd');
  t.equal(await ops.write('/d/f', fh, Buffer.from('abc'), 0), 3);
  const buf = Buffer.alloc(3);
  t.equal(await ops.read('/d/f', fh, buf, 0), 3);
  t.equal(buf.toString(), 'abc');
  t.equal(await ops.rmdir('/d'), -ENOTEMPTY);
  const list = await ops.readdir('/d');
  t.same(typeof list === 'number' ? list : list.map((e) => e.name).sort(), ['.', '..', 'f']);

  // libfuse hiding an open file
  t.equal(await ops.rename('/d/f', '/d/.fuse_hidden0000000100000002'), 0, 'hide');
  t.same(fs.readdirSync(path.join(dir, 'back', 'd')), [], 'hidden = unlinked in the kernel');
  const st = await ops.getattr('/d/.fuse_hidden0000000100000002');
  t.equal(typeof st === 'number' ? st : st.size, 3, 'getattr of the hidden name is fstat');
  t.equal(await ops.read('/d/.fuse_hidden0000000100000002', fh, buf, 0), 3, 'read by handle still works');
  t.equal(await ops.rmdir('/d'), 0, 'parent removable');
  t.equal(await ops.release('/d/.fuse_hidden0000000100000002', fh), 0);
  t.equal(await ops.unlink('/d/.fuse_hidden0000000100000002'), 0, 'libfuse\'s final unlink closes the kept fd');
  t.equal(ops.openHandles, 0, 'no fd left');
  t.equal(await ops.release('/x', fh), -EBADF, 'double release');

  // a rename to a hidden-looking name of a file nobody has open is an ordinary rename
  const fh2 = await ops.create('/g', 0o644);
  await ops.release('/g', fh2);
  t.equal(await ops.rename('/g', '/.fuse_hidden0000000a0000000b'), 0);
  t.ok(fs.existsSync(path.join(dir, 'back', '.fuse_hidden0000000a0000000b')), 'ordinary rename');

  t.equal(await ops.chown('/.fuse_hidden0000000a0000000b', 0xffffffff, 0xffffffff), 0, 'chown -1 -1 leaves the owner');
  const o = await ops.open('/.fuse_hidden0000000a0000000b', O_RDWR);
  const d = await ops.opendir('/', O_RDONLY);
  t.equal(ops.openHandles, 2);
  await ops.closeAll();
  t.equal(ops.openHandles, 0, 'closeAll');
  t.ok(o >= 0 && d >= 0);
  t.equal(await k.umountDev(id, 0, 0), 0);
  await k.halt();
});

t.test('splitLongPath', async (t) => {
  t.equal(splitLongPath('a/b'), null, 'a short path is left alone');
  t.equal(splitLongPath('x/'.repeat(2047) + 'y'), null, '4,095 bytes fit one argument');
  const rel = Array.from({ length: 25 }, (_, i) => String.fromCharCode(65 + i).repeat(200)).join('/') + '/leaf';
  const s = splitLongPath(rel);
  t.ok(s, 'a 5 KiB path is split');
  if (!s) return;
  t.equal(s.last, 'leaf', 'the last component apart');
  t.ok(s.dirs.length >= 2 && s.dirs.every((d) => Buffer.byteLength(d) < PATH_MAX), 'every chunk under PATH_MAX bytes');
  t.ok(s.dirs.every((d) => !d.startsWith('/') && !d.endsWith('/')), 'cut at a /');
  t.equal(s.dirs.join('/') + '/' + s.last, rel, 'the chunks are the path');
  t.equal(Buffer.byteLength(s.dirs[0]!), 20 * 201 - 1, 'chunks are filled greedily (20 names; a 21st would make 4,220 bytes)');
  const abs = splitLongPath('/' + rel);
  t.ok(abs && abs.dirs[0]!.startsWith('/') && abs.dirs.join('/') === '/' + rel.slice(0, -5), 'an absolute path keeps its /');
  // é is 2 bytes: 17 components of 127 make 4,334 bytes, though only 2,175 characters.
  const wide = Array.from({ length: 17 }, () => 'é'.repeat(127)).join('/');
  t.equal(splitLongPath(wide.slice(0, 2 * 128 * 8)), null, 'fewer bytes fit');
  const w = splitLongPath(wide);
  t.ok(w && w.dirs.every((d) => Buffer.byteLength(d) < PATH_MAX) && w.last === 'é'.repeat(127), 'counted in UTF-8 bytes');
  t.equal(splitLongPath('a//' + rel)?.dirs.join('/'), 'a/' + rel.slice(0, -5), 'empty components dropped');
  t.equal(splitLongPath(rel + '/')?.last, 'leaf/', 'a trailing / stays with the last component');
});

t.test('operations deeper than PATH_MAX, on the real kernel', async (t) => {
  const k = await startKernel({ memMiB: 32 });
  t.teardown(() => k.halt());
  const sys = k.sys;
  t.equal(await sys.mkdir('/top', 0o755), 0);
  t.equal(await sys.chroot('/top'), 0);
  t.equal(await sys.chdir('/'), 0);
  const ops = lklfuseOps(sys, '', true);
  const freeFd = async () => { const fd = await sys.open('/', O_RDONLY); await sys.close(fd); return fd; };
  const fd0 = await freeFd();
  let dir = '';
  for (let i = 0; i < 25; i++) {
    dir += '/' + String.fromCharCode(65 + i).repeat(200);
    t.equal(await ops.mkdir(dir, 0o755), 0, `mkdir level ${i + 1}`);
  }
  t.ok(Buffer.byteLength(dir) > 5000, 'the tree is 5 KiB deep');
  t.equal(await sys.stat(dir.slice(1)), -ENAMETOOLONG, 'too long for one path argument of the kernel');
  const f = dir + '/file';
  const fh = await ops.create(f, 0o644);
  t.ok(fh >= 0, 'create');
  t.equal(await ops.write(f, fh, Buffer.from('deep data'), 0), 9, 'write');
  t.equal(await ops.release(f, fh), 0);
  const st = await ops.getattr(f);
  t.equal(typeof st === 'number' ? st : st.size, 9, 'getattr');
  t.equal(await ops.chmod(f, 0o600), 0, 'chmod');
  const st2 = await ops.getattr(f);
  t.equal(typeof st2 === 'number' ? st2 : st2.mode & 0o7777, 0o600, 'the mode changed');
  t.equal(await ops.access(f, 4), 0, 'access');
  t.equal(await ops.truncate(f, 4), 0, 'truncate');
  t.equal(await ops.truncate(dir, 0), -EISDIR, 'truncate of a directory is EISDIR, as truncate(2)');
  t.equal(await ops.utimens(f, { sec: 1000, nsec: 0 }, { sec: 2000, nsec: 0 }), 0, 'utimens');
  const st3 = await ops.getattr(f);
  t.same(typeof st3 === 'number' ? st3 : [st3.size, st3.mtime.sec], [4, 2000], 'truncated, mtime set');
  t.equal(await ops.rename(f, dir + '/moved'), 0, 'rename within the deep directory');
  t.equal(await ops.rename(dir + '/moved', '/moved'), 0, 'rename from deep to the root (each side walked)');
  t.equal(await ops.rename('/moved', f), 0, 'and back');
  t.equal(await ops.link(f, dir + '/hard'), 0, 'link');
  const st4 = await ops.getattr(dir + '/hard');
  t.equal(typeof st4 === 'number' ? st4 : st4.nlink, 2, 'two names');
  t.equal(await ops.setxattr(f, 'user.k', Buffer.from('v'), 0), 0, 'setxattr');
  const xv = await ops.getxattr(f, 'user.k');
  t.equal(typeof xv === 'number' ? xv : Buffer.from(xv).toString(), 'v', 'getxattr');
  t.same(await ops.listxattr(f), ['user.k'], 'listxattr');
  t.equal(await ops.removexattr(f, 'user.k'), 0, 'removexattr');
  t.equal(await ops.getxattr(f, 'user.k'), -ENODATA, 'removed');
  t.equal(await ops.symlink('file', dir + '/link'), 0, 'symlink');
  t.equal(await ops.readlink(dir + '/link'), 'file', 'readlink');
  const lst = await ops.getattr(dir + '/link');
  t.equal(typeof lst === 'number' ? lst : lst.mode & S_IFMT, S_IFLNK, 'getattr does not follow the last symlink');
  // An intermediate symlink is followed, as the kernel's walk follows it.
  const parent = dir.slice(0, dir.lastIndexOf('/'));
  t.equal(await ops.symlink(dir.slice(dir.lastIndexOf('/') + 1), parent + '/alias'), 0);
  const viaAlias = await ops.getattr(parent + '/alias/file');
  t.equal(typeof viaAlias === 'number' ? viaAlias : viaAlias.size, 4, 'through an intermediate symlink');
  const list = await ops.readdir(dir);
  t.same(typeof list === 'number' ? list : list.map((e) => e.name).sort(), ['.', '..', 'file', 'hard', 'link'], 'readdir');
  const dh = await ops.opendir(dir, O_RDONLY);
  t.ok(dh >= 0, 'opendir');
  t.equal(await ops.releasedir(dir, dh), 0);
  const o = await ops.open(f, O_RDONLY);
  const buf = Buffer.alloc(4);
  t.equal(await ops.read(f, o, buf, 0), 4);
  t.equal(buf.toString(), 'deep', 'open + read');
  t.equal(await ops.release(f, o), 0);
  const sf = await ops.statfs(f);
  t.type(sf, 'object', 'statfs');
  t.equal(await ops.mknod(dir + '/fifo', 0o010644, 0), 0, 'mknod');
  t.equal(await ops.truncate(dir + '/fifo', 0), -EINVAL, 'truncate of a fifo is EINVAL, without opening it');
  t.equal(await ops.getattr(dir.replace('/B', '/b') + '/file'), -ENOENT, 'a missing intermediate directory: ENOENT');
  t.equal(await ops.getattr(f + '/' + 'x'.repeat(10)), -ENOTDIR, 'a file as a directory: ENOTDIR');
  for (const n of ['file', 'hard', 'link', 'fifo']) t.equal(await ops.unlink(dir + '/' + n), 0, `unlink ${n}`);
  t.equal(await ops.unlink(parent + '/alias'), 0);
  for (let d = dir; d !== ''; d = d.slice(0, d.lastIndexOf('/'))) {
    if (await ops.rmdir(d) !== 0) { t.fail(`rmdir ${d.length}`); break; }
  }
  const rest = await ops.readdir('/');
  t.same(typeof rest === 'number' ? rest : rest.map((e) => e.name).sort(), ['.', '..'], 'all gone');
  t.equal(ops.openHandles, 0, 'no handle left');
  t.equal(await freeFd(), fd0, 'no kernel fd left open by the walks');
});
