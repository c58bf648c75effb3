// Journal recovery of images the HOST kernel left needing recovery: an ext4 image is
// loop-mounted, changed, synced (so its journal holds committed transactions that were
// not checkpointed, and needs_recovery is set), then copied while still mounted — what a
// crash leaves. lkl-ts mounts the copy read-only and replays in memory: it must see the
// same tree as the host saw live, and as e2fsck -fy's recovery; the copy stays unchanged.
// The copy is taken right after an fsync commits the last round. Had the host already
// written everything home by then (its writeback, or a sync by another process: a full test
// run here once copied 3 s later and found nothing stale), the copy proves nothing about the
// replay and is made again, up to four times.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { makeExtImage, withLoopMount, dumpe2fsHeader } from '../lib/images.js';
import { diffManifests, hostManifest, type Manifest } from '../lib/manifest.js';
import { startKernel, MS_RDONLY, type Kernel } from '../../lib/index.js';
import { lklManifest, sha256File } from './driver-util.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'getfattr', 'debugfs', 'cp'], { root: true });

/** Changes that produce several kinds of journalled metadata. */
async function churn(m: string, round: number): Promise<void> {
  const d = path.join(m, `round${round}`);
  fs.mkdirSync(d);
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(d, `f${i}`), `round ${round} file ${i}\n`.repeat(i % 7 + 1));
  for (let i = 0; i < 200; i += 3) fs.renameSync(path.join(d, `f${i}`), path.join(d, `renamed-${i}`));
  for (let i = 1; i < 200; i += 5) if (i % 3 !== 0) fs.unlinkSync(path.join(d, `f${i}`));
  fs.symlinkSync(`f2`, path.join(d, 'link'));
  fs.mkdirSync(path.join(d, 'sub', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(d, 'sub', 'deeper', 'big'), Buffer.alloc(300 * 1024, round));
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  t.test('host-kernel crash image: in-memory replay equals e2fsck -fy and keeps every synced change', async (t) => {
    const dir = scratchDir(t, 'jhost');
    const k = await startKernel({ memMiB: 64 });
    t.teardown(() => k.halt());
    // The copy is only a crash image worth the name if its home locations are stale. The
    // host's writeback decides when they stop being (a `sync` by any other process writes
    // them home too, and tests run in parallel), so an attempt whose copy reads the same
    // without the journal is made again, from a fresh image.
    const ATTEMPTS = 4;
    for (let attempt = 1; ; attempt++) {
      const r = await crashAndReplay(t, k, path.join(dir, `a${attempt}`), attempt === ATTEMPTS);
      if (r === 'stale' || attempt === ATTEMPTS) break;
      t.comment(`attempt ${attempt}: the host had written everything home before the copy; again`);
    }
  });
}

/**
 * One crash image and its checks. Returns 'stale' when the copy without its journal differs
 * from the replayed tree (the replay did the work); otherwise, unless `last`, nothing is
 * asserted about the images and the caller tries again.
 */
async function crashAndReplay(t: Test, k: Kernel, dir: string, last: boolean): Promise<'stale' | 'current'> {
  fs.mkdirSync(dir, { recursive: true });
  const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, dir });
  const crash = path.join(dir, 'crash.img');
  // Two rounds are synced (written home); the last is only committed to the journal (an
  // fsync of one of its files commits the running transaction; the other files' data is
  // still delayed) while its metadata waits in the loop device's cache for writeback: the
  // copy, taken at once, has stale home locations and only the journal has the truth.
  const live: Manifest = await withLoopMount(img, { options: ['commit=1'] }, async (m) => {
    for (let r = 0; r < 2; r++) { await churn(m, r); await run('sync', ['-f', m]); }
    await churn(m, 2);
    const fd = fs.openSync(path.join(m, 'round2', 'sub', 'deeper', 'big'), 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    await run('cp', ['--sparse=always', img, crash]);
    return hostManifest(m, { producer: 'host (live)', exclude: ['lost+found'] });
  });
  const before = await sha256File(crash);
  const lklTree = async (opts: string): Promise<Manifest | string> => {
    const id = await k.diskAdd({ path: crash, readOnly: true });
    try {
      const mnt = await k.mountDev(id, 0, 'ext4', MS_RDONLY, opts);
      if (typeof mnt !== 'string') return `mount ${opts || '(replay)'}: ${mnt}`;
      try { return await lklManifest(k.sys, mnt, { exclude: ['lost+found'] }); } finally {
        const u = await k.umountDev(id, 0, 0);
        if (u !== 0) t.fail(`umount: ${u}`);
      }
    } finally { await k.diskRemove(id); }
  };
  const lkl = await lklTree('');
  // Without replay the home locations alone are stale: the replay is what made it right.
  const noload = await lklTree('noload');
  const stale = typeof lkl === 'string' ? [lkl] : typeof noload === 'string' ? [noload]
    : diffManifests(lkl, noload, { ignore: ['atime'] });
  if (stale.length === 0 && !last) return 'current';

  const features = (await dumpe2fsHeader(crash)).get('Filesystem features') ?? '';
  t.match(features, /needs_recovery/, 'the copy needs recovery');
  const logdump = await run('debugfs', ['-R', 'logdump', crash], { allowFail: true });
  t.match(logdump.stdout, /Found expected sequence \d+, type 1 \(descriptor block\)/, 'its journal holds transactions');
  const fixed = path.join(dir, 'fixed.img');
  fs.copyFileSync(crash, fixed);
  await run('e2fsck', ['-fy', fixed], { allowFail: true });
  const ref = await withLoopMount(fixed, { ro: true, noload: true },
    (m) => hostManifest(m, { producer: 'e2fsck -fy', exclude: ['lost+found'] }));
  t.type(lkl, 'object', 'lkl-ts mounts the crash image read-only, replaying its journal in memory');
  if (typeof lkl === 'string') return 'stale';
  const timesDiffer = { ignore: ['atime', 'ctime'] as const };
  // Round 2 was never synced: with delayed allocation its files' data was not yet
  // written when jbd2 committed, so after the "crash" they are empty — on Linux too (the
  // e2fsck comparison below covers them). What was synced must be exactly as it was.
  const synced = (m: Manifest) => ({ ...m, entries: m.entries.filter((e) => !e.path.startsWith('round2')) });
  t.same(diffManifests(synced(live), synced(lkl), { ignore: [...timesDiffer.ignore] }), [],
    'lkl-ts sees the synced rounds exactly as the host saw them live');
  t.same(diffManifests(ref, lkl, { ignore: ['atime'] }), [], 'lkl-ts sees the tree e2fsck -fy recovered');
  t.comment(`without replay (noload): ${stale.length} differences from the replayed tree`);
  t.ok(stale.length > 0, 'without replay the tree differs, so the replay did the work');
  t.equal(await sha256File(crash), before, 'the crash image is unchanged (replay was in memory)');
  return 'stale';
}
