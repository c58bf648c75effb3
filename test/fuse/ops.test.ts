/* lklfuse's operations over the fake kernel, without FUSE: errno pass-through, NAME_MAX, hidden files. */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lklfuseOps, nameTooLong } from '../../lib/fuse/ops.js';
import { EBADF, ENAMETOOLONG, ENOENT, ENOTEMPTY, O_RDONLY, O_RDWR } from '../../lib/kernel/include/uapi.js';
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
