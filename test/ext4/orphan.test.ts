// Orphans: files unlinked while open stay on the superblock's orphan chain (linked through
// i_dtime) until they are deleted, so a crash while they are open leaves nothing unattached.
// A child writes three such files, closes the middle one of the chain (taking it out of
// the middle), syncs and is killed with two open. Then, on copies of
// the image:
//   - the host kernel's mount replays the journal and cleans the chain up (it reads our
//     chain), and e2fsck -fn is clean;
//   - lkl-ts's own read-write mount replays and deletes the orphans ("2 orphan inodes
//     deleted"), e2fsck -fn is clean, the inodes and blocks are free again and the kept
//     file reads back;
//   - a read-only mount leaves the chain for later and says so.
// A fourth case checks the chain under normal operation: unlink while open, close, and
// unmount leave no orphan behind (dumpe2fs shows no "First orphan inode").
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, dumpe2fsHeader } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { crashChild } from './jbd2-write-crash-util.js';
import { pattern } from './jbd2-write-tree.js';
import { startKernel, O_CREAT, O_RDWR, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'dumpe2fs', 'losetup', 'mount'], { root: true });

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-orphan');
  const img = path.join(dir, 'crash.img');
  const seed = 61;
  const copy = (name: string) => { const p = path.join(dir, name); fs.copyFileSync(img, p); return p; };
  let freeBefore = 0;

  t.before(async () => {
    await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: img });
    freeBefore = Number((await dumpe2fsHeader(img)).get('Free inodes'));
    const line = await crashChild('orphan', img, seed, 200);
    if (!line.startsWith('SYNCED')) throw new Error(`child: ${line}`);
  });

  t.test('the host kernel replays the journal and deletes our orphans', async (t) => {
    const a = copy('host.img');
    await withLoopMount(a, {}, async (m) => {
      t.same(fs.readdirSync(m).sort(), ['kept', 'lost+found'], 'only the kept directory is visible');
    });
    const h = await dumpe2fsHeader(a);
    t.notOk(h.has('First orphan inode'), 'no orphan chain left');
    t.equal(Number(h.get('Free inodes')), freeBefore - 2, 'the three orphans\' inodes are free (kept/ and kept/file remain)');
    const ck = await e2fsckClean(a);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
  });

  t.test('lkl-ts replays the journal and deletes the orphans itself', async (t) => {
    const b = copy('lkl.img');
    const messages: string[] = [];
    const k: Kernel = await startKernel({ memMiB: 64, print: (m) => messages.push(m) });
    try {
      const id = await k.diskAdd({ path: b });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      t.type(mnt, 'string', 'mounted read-write');
      t.ok(messages.some((m) => /2 orphan inodes deleted/.test(m)), 'the kernel says it deleted 2 orphan inodes', { messages });
      const fd = await k.sys.open(`${mnt}/kept/file`, O_RDWR | O_CREAT, 0o644);
      const buf = new Uint8Array(50_000);
      t.equal(await k.sys.read(fd, buf), 50_000, 'the kept file reads');
      t.ok(Buffer.compare(Buffer.from(buf), Buffer.from(pattern(50_000, seed + 9))) === 0, 'with its content');
      await k.sys.close(fd);
      t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    } finally { await k.halt(); }
    const h = await dumpe2fsHeader(b);
    t.notOk(h.has('First orphan inode'), 'no orphan chain left');
    t.equal(Number(h.get('Free inodes')), freeBefore - 2, 'the orphans\' inodes are free');
    const ck = await e2fsckClean(b);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
  });

  t.test('a read-only mount leaves the orphans for later and says so', async (t) => {
    const c = copy('ro.img');
    const messages: string[] = [];
    const k = await startKernel({ memMiB: 64, print: (m) => messages.push(m) });
    try {
      const id = await k.diskAdd({ path: c, readOnly: true });
      const mnt = await k.mountDev(id, 0, 'ext4', 1 /* MS_RDONLY */, '');
      t.type(mnt, 'string', 'mounted read-only');
      t.ok(messages.some((m) => /skipping orphan cleanup \(2 orphan inode/.test(m)), 'the kernel says it skips 2 orphans', { messages });
      t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    } finally { await k.halt(); }
  });

  t.test('unlink while open, close, unmount: the chain is empty again', async (t) => {
    const d = path.join(dir, 'normal.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 1024, path: d });
    const free0 = Number((await dumpe2fsHeader(d)).get('Free inodes'));
    const k = await startKernel({ memMiB: 64 });
    try {
      const id = await k.diskAdd({ path: d });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      if (typeof mnt !== 'string') throw new Error(`mount ${mnt}`);
      const fds: number[] = [];
      for (let i = 0; i < 4; i++) {
        const fd = await k.sys.open(`${mnt}/f${i}`, O_RDWR | O_CREAT, 0o644);
        await k.sys.write(fd, pattern(20_000, i));
        fds.push(fd);
      }
      // Unlink in an order that takes entries out of the middle of the chain.
      for (const i of [1, 3, 0, 2]) t.equal(await k.sys.unlink(`${mnt}/f${i}`), 0, `unlink f${i}`);
      t.equal(await k.sys.sync(), 0, 'sync with four orphans');
      // The chain is f2 f0 f3 f1 (newest first): close from the middle, the tail, the head.
      for (const i of [3, 1, 2, 0]) t.equal(await k.sys.close(fds[i]!), 0, `close f${i}`);
      t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    } finally { await k.halt(); }
    const h = await dumpe2fsHeader(d);
    t.notOk(h.has('First orphan inode'), 'no orphan chain left');
    t.equal(Number(h.get('Free inodes')), free0, 'every inode is free again');
    const ck = await e2fsckClean(d);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    await withLoopMount(d, { ro: true }, async (m) => {
      t.same(fs.readdirSync(m).sort(), ['lost+found'], 'the host sees an empty root');
    });
  });
}
