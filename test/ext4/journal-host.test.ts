// Journal recovery of images the HOST kernel left needing recovery: an ext4 image is
// loop-mounted, changed, synced (so its journal holds committed transactions that were
// not checkpointed, and needs_recovery is set), then copied while still mounted — what a
// crash leaves. lkl-ts mounts the copy read-only and replays in memory: it must see the
// same tree as the host saw live, and as e2fsck -fy's recovery; the copy stays unchanged.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { makeExtImage, withLoopMount, dumpe2fsHeader } from '../lib/images.js';
import { diffManifests, hostManifest, type Manifest } from '../lib/manifest.js';
import { startKernel, MS_RDONLY } from '../../lib/index.js';
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
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, dir });
    const crash = path.join(dir, 'crash.img');
    // Two rounds are synced (written home); the last is only committed to the journal by
    // jbd2 (commit=1) while its metadata still waits in the loop device's cache for
    // writeback: the copy's home locations are stale and only the journal has the truth.
    const live: Manifest = await withLoopMount(img, { options: ['commit=1'] }, async (m) => {
      for (let r = 0; r < 2; r++) { await churn(m, r); await run('sync', ['-f', m]); }
      await churn(m, 2);
      await new Promise((r) => setTimeout(r, 3000));
      await run('cp', ['--sparse=always', img, crash]);
      return hostManifest(m, { producer: 'host (live)', exclude: ['lost+found'] });
    });
    const features = (await dumpe2fsHeader(crash)).get('Filesystem features') ?? '';
    t.match(features, /needs_recovery/, 'the copy needs recovery');
    const logdump = await run('debugfs', ['-R', 'logdump', crash], { allowFail: true });
    t.match(logdump.stdout, /Found expected sequence \d+, type 1 \(descriptor block\)/, 'its journal holds transactions');
    const before = await sha256File(crash);

    const fixed = path.join(dir, 'fixed.img');
    fs.copyFileSync(crash, fixed);
    await run('e2fsck', ['-fy', fixed], { allowFail: true });
    const ref = await withLoopMount(fixed, { ro: true, noload: true },
      (m) => hostManifest(m, { producer: 'e2fsck -fy', exclude: ['lost+found'] }));

    const k = await startKernel({ memMiB: 64 });
    t.teardown(() => k.halt());
    const id = await k.diskAdd({ path: crash, readOnly: true });
    const mnt = await k.mountDev(id, 0, 'ext4', MS_RDONLY, '');
    t.type(mnt, 'string', 'lkl-ts mounts the crash image read-only');
    if (typeof mnt !== 'string') return;
    const lkl = await lklManifest(k.sys, mnt, { exclude: ['lost+found'] });
    t.equal(await k.umountDev(id, 0, 0), 0, 'unmounted');
    const timesDiffer = { ignore: ['atime', 'ctime'] as const };
    // Round 2 was never synced: with delayed allocation its files' data was not yet
    // written when jbd2 committed, so after the "crash" they are empty — on Linux too (the
    // e2fsck comparison below covers them). What was synced must be exactly as it was.
    const synced = (m: Manifest) => ({ ...m, entries: m.entries.filter((e) => !e.path.startsWith('round2')) });
    t.same(diffManifests(synced(live), synced(lkl), { ignore: [...timesDiffer.ignore] }), [],
      'lkl-ts sees the synced rounds exactly as the host saw them live');
    t.same(diffManifests(ref, lkl, { ignore: ['atime'] }), [], 'lkl-ts sees the tree e2fsck -fy recovered');
    // Without replay the home locations alone are stale: the replay is what made it right.
    const id2 = await k.diskAdd({ path: crash, readOnly: true });
    const mnt2 = await k.mountDev(id2, 0, 'ext4', MS_RDONLY, 'noload');
    let stale: string[] = ['(noload mount failed)'];
    if (typeof mnt2 === 'string') {
      try { stale = diffManifests(lkl, await lklManifest(k.sys, mnt2, { exclude: ['lost+found'] }), { ignore: ['atime'] }); }
      catch (e) { stale = [`walk failed: ${(e as Error).message}`]; }
      await k.umountDev(id2, 0, 0);
    }
    t.comment(`without replay (noload): ${stale.length} differences from the replayed tree`);
    t.ok(stale.length > 0, 'without replay the tree differs, so the replay did the work');
    t.equal(await sha256File(crash), before, 'the crash image is unchanged (replay was in memory)');
  });
}
