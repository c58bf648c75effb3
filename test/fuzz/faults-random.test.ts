// Random faults (issue 15 item 3): under a
// mounted ext4 image, a seeded share of the store's reads, writes and flushes fail (EIO, or
// a short transfer) while a workload creates, writes, fsyncs, renames, unlinks and makes
// directories. Then, for every seed:
//  - no kernel BUG, no exception but errno values, no hang (a per-seed watchdog);
//  - the faults stop; unmount, and the next mount (which replays the journal) succeeds;
//  - every file whose last write was fsync'd with success, and that nothing touched after,
//    reads back exactly, through the kernel and through the host kernel's loop mount;
//  - e2fsck -fn finds nothing but the error state the kernel recorded.
// LKL_TEST_FAULT_SEEDS (default 12, the CI slice) sets how many seeds run; the long campaign
// is `LKL_TEST_FAULT_SEEDS=1000 npx tap -t0 dist/test/fuzz/faults-random.test.js`.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { faultSeed, type FaultSeedResult } from '../lib/faults.js';
import { startKernel, type Kernel } from '../../lib/index.js';

const SEEDS = Number(process.env.LKL_TEST_FAULT_SEEDS ?? 12);
const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount'], { root: true });

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'faults-random');
  const messages: string[] = [];
  let k: Kernel;
  let base = '';
  t.before(async () => {
    k = await startKernel({ memMiB: 64, print: (m) => messages.push(m) });
    base = path.join(dir, 'base.img');
    await makeExtImage({ path: base, type: 'ext4', sizeMiB: 16, blockSize: 1024 });
  });
  t.teardown(async () => { await k?.halt(); });

  const totals = { faults: 0, fsyncOk: 0, fsyncFailed: 0, checked: 0, aborted: 0 };
  for (let seed = 1; seed <= SEEDS; seed++) {
    t.test(`seed ${seed}`, async (t) => {
      const img = path.join(dir, `s${seed}.img`);
      fs.copyFileSync(base, img);
      const from = messages.length;
      const r: FaultSeedResult = await faultSeed(k, img, seed, { ops: 100, watchdogMs: 30_000 });
      t.same(r.hang, undefined, 'no hang');
      t.same(r.unexpected, [], 'every failure is an errno value');
      t.same(messages.slice(from).filter((m) => /BUG/.test(m)), [], 'no kernel BUG');
      t.equal(r.remount, 0, 'the image mounts again (the journal replayed)');
      t.same(r.mismatches, [], `the ${r.durable.size} fsync'd files read back exactly`);
      totals.faults += r.faults; totals.fsyncOk += r.fsyncOk; totals.fsyncFailed += r.fsyncFailed;
      totals.checked += r.durable.size; totals.aborted += r.readOnly ? 1 : 0;
      const f = await e2fsckClean(img);
      const findings = f.output.split('\n').filter((l) => /\?|Fix|Clear|differences|error/i.test(l) &&
        !/contains a file system with errors|check forced/.test(l));
      t.same(findings, [], `e2fsck -fn finds nothing but the recorded error state (exit ${f.code})`, { output: f.output });
      await withLoopMount(img, { ro: true, noload: true }, async (m) => {
        const bad = [...r.durable].filter(([name, data]) => {
          try { return !fs.readFileSync(path.join(m, 'w', name)).equals(data); } catch { return true; }
        }).map(([name]) => name);
        t.same(bad, [], 'the host kernel reads the same fsync\'d files');
      });
      fs.rmSync(img);
    });
  }
  t.test('totals', async (t) => {
    t.comment(`${SEEDS} seeds: ${totals.faults} injected faults, fsync ${totals.fsyncOk} ok / ${totals.fsyncFailed} failed, ` +
      `${totals.checked} files checked, ${totals.aborted} seeds ended read-only`);
    t.ok(totals.faults > SEEDS, 'faults were really injected');
    t.ok(totals.fsyncOk > 0 && totals.fsyncFailed > 0, 'some fsyncs succeeded and some reported the faults');
  });
}
