// Crash safety of the jbd2 write side. A child process mounts a default ext4 image
// read-write (commit=1), writes a known tree, fsyncs a file and calls sync(), then keeps
// changing another directory (creates, appends, truncates, renames, unlinks, mkdir/rmdir,
// with a sync now and then) and is SIGKILLed at a moment chosen by the seed. Afterwards the
// image must say needs_recovery, and each way of recovering it must give a clean filesystem
// (`e2fsck -fn`) with the synced tree intact, content included:
//   - the host kernel's mount (it replays the journal),
//   - `e2fsck -fy`,
//   - lkl-ts's own mount (it replays the journal), then a clean unmount.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, type Kernel } from '../../lib/index.js';
import { checkKnownTree, rng } from './jbd2-write-tree.js';
import { crashChild } from './jbd2-write-crash-util.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'dumpe2fs', 'losetup', 'mount'], { root: true });

const SEEDS: { seed: number; blockSize: 1024 | 4096; wrap?: boolean }[] = [
  { seed: 1, blockSize: 4096 }, { seed: 2, blockSize: 1024 }, { seed: 3, blockSize: 4096 }, { seed: 4, blockSize: 1024 },
  // A minimum-size journal (1024 blocks) that wraps many times before the tree is written.
  { seed: 7, blockSize: 1024, wrap: true }, { seed: 8, blockSize: 4096, wrap: true },
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'jbd2-crash');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128, print: () => {} }); });
  t.teardown(async () => { await k?.halt(); });

  for (const { seed, blockSize, wrap } of SEEDS) {
    const what = wrap ? 'a small journal wrapped many times, then synced and killed' : 'killed while writing';
    t.test(`seed ${seed}, ${blockSize}-byte blocks: ${what}, recovered three ways`, async (t) => {
      const img = path.join(dir, `crash-${seed}.img`);
      await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize, path: img,
        extra: wrap ? ['-J', `size=${blockSize / 1024}`] : [] });
      const delay = wrap ? 50 : 100 + (rng(seed * 31)() % 1400);
      const line = await crashChild(wrap ? 'wrap' : 'crash', img, seed, delay);
      t.match(line, /^SYNCED /, `the child synced, then was killed ${delay} ms later`);
      const [commits, logBlocks, checkpoints, wraps] = line.split(' ').slice(1).map(Number);
      t.comment(`at the sync: ${commits} commits, ${logBlocks} log blocks, ${checkpoints} checkpoints, ${wraps} wraps of the log`);
      if (wrap) t.ok(wraps! >= 2, `the log wrapped (${wraps} times)`);
      const hdr = (await run('dumpe2fs', ['-h', img], { allowFail: true })).stdout;
      t.match(hdr, /needs_recovery/, 'the killed image says needs_recovery');
      const pre = await e2fsckClean(img);
      t.comment(`e2fsck -fn before recovery: exit ${pre.code}`);

      const hostImg = `${img}.host`, fsckImg = `${img}.fsck`, lklImg = `${img}.lkl`;
      for (const c of [hostImg, fsckImg, lklImg]) fs.copyFileSync(img, c);

      const hostBad = await withLoopMount(hostImg, {}, async (m) => checkKnownTree(m, seed));
      t.same(hostBad, [], 'host kernel replay: the synced tree is intact');
      const ck1 = await e2fsckClean(hostImg);
      t.ok(ck1.clean, 'host kernel replay: e2fsck -fn clean', { output: ck1.output });

      const fy = await run('e2fsck', ['-fy', fsckImg], { allowFail: true, timeoutMs: 120_000 });
      t.ok(fy.code === 0 || fy.code === 1, `e2fsck -fy recovers (exit ${fy.code})`, { output: fy.stdout });
      // Not repairs: "extent tree could be shorter. Optimize?" (an optimisation offered for
      // trees Linux leaves too) and the superblock's summary free counts, which ext4 writes
      // only with the superblock (sync_fs), not through the journal, as Linux does (e2fsck
      // fixes them silently when preening; -fn still exits 0). Anything else is a repair.
      const lines = fy.stdout.split('\n');
      const repairs = lines.filter((l, i) => /\? yes$/.test(l) && !/Optimize\? yes$/.test(l) &&
        !/^Free (blocks|inodes) count wrong \(/.test(lines[i - 1] ?? ''));
      t.same(repairs, [], 'e2fsck -fy had nothing to repair after the journal replay', { output: fy.stdout });
      const ck2 = await e2fsckClean(fsckImg);
      t.ok(ck2.clean, 'e2fsck replay: e2fsck -fn clean', { output: ck2.output });
      t.same(await withLoopMount(fsckImg, { ro: true }, async (m) => checkKnownTree(m, seed)), [],
        'e2fsck replay: the synced tree is intact');

      const id = await k.diskAdd({ path: lklImg });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      t.type(mnt, 'string', 'lkl-ts mounts the killed image read-write (replaying its journal)');
      if (typeof mnt === 'string') t.equal(await k.umountDev(id, 0), 0, 'and unmounts it');
      const ck3 = await e2fsckClean(lklImg);
      t.ok(ck3.clean, 'lkl-ts replay: e2fsck -fn clean', { output: ck3.output });
      t.same(await withLoopMount(lklImg, { ro: true }, async (m) => checkKnownTree(m, seed)), [],
        'lkl-ts replay: the synced tree is intact');
      for (const f of [img, hostImg, fsckImg, lklImg]) fs.rmSync(f, { force: true });
    });
  }
}
