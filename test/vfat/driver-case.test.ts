// Names that differ only in case reach the same vfat directory through different dentries
// (the dcache matches bytes exactly). A rename whose two paths spell one directory
// differently must lock that directory once, not deadlock, and leave a clean volume.
import t from 'tap';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { O_CREAT, O_WRONLY, EOPNOTSUPP, EPERM, S_IFIFO } from '../../lib/index.js';
import { bootWithImage, fsckProblems, fsckVfat, mkfs, mtoolsTree, scratchDir } from './driver-util.js';

t.test('rename data/x -> DATA/y within one directory spelled two ways', async (t) => {
  const dir = scratchDir('case');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'fat16.img');
  mkfs(img, 16);
  const b = await bootWithImage(img);
  let halted = false;
  t.teardown(async () => { if (!halted) await b.k.halt(); });
  const mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '');
  t.type(mp, 'string', 'mounted');
  if (typeof mp !== 'string') return;
  t.equal(await b.sys.mkdir(`${mp}/data`, 0o755), 0);
  const fd = await b.sys.open(`${mp}/data/x`, O_CREAT | O_WRONLY, 0o644);
  t.ok(fd >= 0);
  t.equal(await b.sys.write(fd, new TextEncoder().encode('payload')), 7);
  t.equal(await b.sys.close(fd), 0);
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    b.sys.rename(`${mp}/data/x`, `${mp}/DATA/y`),
    new Promise<string>((res) => { timer = setTimeout(() => res('timed out: deadlock'), 10_000); }),
  ]);
  clearTimeout(timer);
  t.equal(r, 0, 'the rename completes');
  t.type(await b.sys.stat(`${mp}/data/y`), 'object', 'the file is there under its new name');
  t.ok((await b.sys.stat(`${mp}/data/x`)) === -2, 'and gone under its old one');
  t.equal(await b.k.umountDev(b.disk, 0, 0), 0, 'unmounted');
  await b.k.halt();
  halted = true;
  const f = fsckVfat(img);
  t.same(fsckProblems(f.out), [], 'fsck.vfat -n is clean');
  const tree = mtoolsTree(img);
  t.ok(tree.has('data/y') && !tree.has('data/x'), `mtools sees data/y only (${[...tree.keys()].join(', ')})`);
});

t.test('what FAT cannot hold: xattrs are EOPNOTSUPP, symlink/link/mknod are EPERM', async (t) => {
  const dir = scratchDir('noxattr');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'fat12.img');
  mkfs(img, 12);
  const b = await bootWithImage(img);
  t.teardown(() => b.k.halt());
  const mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '');
  if (typeof mp !== 'string') { t.fail(`mount: ${mp}`); return; }
  const fd = await b.sys.open(`${mp}/f`, O_CREAT | O_WRONLY, 0o644);
  t.ok(fd >= 0);
  t.equal(await b.sys.close(fd), 0);
  t.equal(await b.sys.setxattr(`${mp}/f`, 'user.x', new Uint8Array([1]), 0), -EOPNOTSUPP, 'setxattr');
  t.equal(await b.sys.getxattr(`${mp}/f`, 'user.x'), -EOPNOTSUPP, 'getxattr');
  t.same(await b.sys.listxattr(`${mp}/f`), [], 'listxattr lists nothing');
  t.equal(await b.sys.symlink('f', `${mp}/l`), -EPERM, 'symlink');
  t.equal(await b.sys.link(`${mp}/f`, `${mp}/h`), -EPERM, 'link');
  t.equal(await b.sys.mknod(`${mp}/p`, S_IFIFO | 0o644, 0), -EPERM, 'mknod');
  t.equal(await b.k.umountDev(b.disk, 0, 0), 0);
});
