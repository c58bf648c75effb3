// Journal recovery against e2fsprogs' test images (../shared/fixtures/e2fsprogs-tests).
//
// 1. Without a kernel: every journal fixture is mounted in memory (ext4_fill_super_dev over
//    an in-memory device): recoverable journals replay into the overlay, corrupt ones fail
//    the mount as Linux's jbd2 fails it (or recover what is valid), nothing hangs, nothing
//    is written.
// 2. Through lkl-ts (diskAdd read-only): the replayed tree equals what the host kernel
//    reads from a copy that `e2fsck -fy` recovered; the image file is unchanged.
// 3. Read-write recovery: a writable disk mounted rw gets the replay written to it and
//    needs_recovery cleared; the result reads like the e2fsck-recovered copy.

import t from 'tap';
import { E2FSPROGS_FIXTURES, fixturesSkip } from '../lib/fixtures.js';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { withLoopMount, dumpe2fsHeader } from '../lib/images.js';
import { diffManifests, hostManifest } from '../lib/manifest.js';
import { super_block, SB_RDONLY } from '../../lib/kernel/include/fs.js';
import { ext4_fill_super_dev, ext4_fs_type } from '../../lib/kernel/fs/ext4/super.js';
import { captureKernelMessages } from '../lib/printk.js';
import { EXT4_SB } from '../../lib/kernel/fs/ext4/ext4.js';
import { jbd2_journal_init } from '../../lib/kernel/fs/jbd2/journal.js';
import { jbd2_journal_scan } from '../../lib/kernel/fs/jbd2/recovery.js';
import { ext4_iget, ext4_map_blocks, EXT4_IGET_SPECIAL } from '../../lib/kernel/fs/ext4/inode.js';
import { startKernel, EOPNOTSUPP, MS_RDONLY, type Kernel } from '../../lib/index.js';
import { lklManifest, memDev, sha256File } from './driver-util.js';

const FIX = E2FSPROGS_FIXTURES;
const skipFix = fixturesSkip();
const skipHost = whyNot(['e2fsck', 'losetup', 'mount', 'getfattr', 'bzcat'], { root: true });

/** What the kernel's jbd2 does with each image (and so must we). */
const FIXTURES: { name: string; expect: 'replay' | 'clean' | { errno: number } }[] = [
  { name: 'j_recover_csum2_32bit', expect: 'replay' },
  { name: 'j_recover_csum2_64bit', expect: 'replay' },
  { name: 'j_recover_csum3_64bit', expect: 'replay' },
  { name: 'j_recover_fast_commit', expect: 'replay' },
  { name: 'f_jnl_32bit', expect: 'replay' },
  { name: 'f_jnl_64bit', expect: 'replay' },
  { name: 'j_corrupt_revoke_block', expect: 'replay' },
  { name: 'j_corrupt_revoke_csum', expect: 'replay' },
  { name: 'j_corrupt_commit_csum', expect: 'clean' },      // the only transaction fails its commit checksum
  { name: 'j_corrupt_commit_tid', expect: 'clean' },
  { name: 'j_corrupt_descr_tid', expect: 'clean' },
  { name: 'j_corrupt_descr_csum', expect: { errno: 74 } },  // EFSBADCRC: "Invalid checksum found in transaction"
  { name: 'j_corrupt_journal_block', expect: { errno: 5 } }, // a logged block fails its tag checksum
  { name: 'j_corrupt_revoke_rcount', expect: { errno: 74 } },
  { name: 'j_corrupt_sb_csum', expect: { errno: 74 } },
  { name: 'j_corrupt_sb_magic', expect: { errno: 22 } },
  { name: 'f_jnl_errno', expect: 'clean' },
  { name: 'f_badjourblks', expect: { errno: 117 } },
  { name: 'f_miss_journal', expect: { errno: 117 } },
];

/** Differences e2fsck -fy makes beyond the replay, or what lkl-ts does not do (yet). */
const KNOWN: Record<string, string> = {
  j_recover_fast_commit: 'fast-commit blocks are not replayed by lkl-ts yet (e2fsck replays them)',
};

async function unpack(name: string, dir: string): Promise<string> {
  const src = path.join(FIX, name);
  const f = fs.readdirSync(src).find((x) => x.startsWith('image'))!;
  const out = path.join(dir, `${name}.img`);
  if (f.endsWith('.gz')) fs.writeFileSync(out, zlib.gunzipSync(fs.readFileSync(path.join(src, f))));
  else if (f.endsWith('.bz2')) fs.writeFileSync(out, (await run('bzcat', [path.join(src, f)])).stdoutBuf);
  else fs.copyFileSync(path.join(src, f), out);
  return out;
}

if (skipFix) {
  t.plan(0, `skip: ${skipFix}`);
} else {
  const dir = scratchDir(t, 'jbd2');
  const images = new Map<string, string>();
  t.before(async () => {
    for (const f of FIXTURES) images.set(f.name, await unpack(f.name, dir));
  });

  t.test('in memory, without a kernel', async (t) => {
    for (const f of FIXTURES) {
      const img = new Uint8Array(fs.readFileSync(images.get(f.name)!));
      const msgs: string[] = [];
      captureKernelMessages((m) => msgs.push(m));
      const dev = memDev(img);
      const sb = new super_block(ext4_fs_type);
      sb.s_flags = SB_RDONLY;
      sb.s_id = 'vda';
      let errno = 0;
      try { await ext4_fill_super_dev(sb, dev, '', false, 'ext4'); } catch (e) { errno = (e as { errno?: number }).errno ?? -1; }
      captureKernelMessages(null);
      const info = { messages: msgs };
      if (typeof f.expect === 'object') {
        t.equal(errno, f.expect.errno, `${f.name}: mount fails with errno ${f.expect.errno}`, info);
      } else {
        t.equal(errno, 0, `${f.name}: mounts`, info);
        const n = errno ? 0 : EXT4_SB(sb).s_overlay.size;
        if (f.expect === 'replay') t.ok(n > 0, `${f.name}: ${n} blocks replayed into memory`, info);
        else t.equal(n, 0, `${f.name}: nothing to replay`, info);
        if (!errno) t.notOk(EXT4_SB(sb).has_incompat(4), `${f.name}: recovered in memory`);
      }
      t.equal(dev.writes.size, 0, `${f.name}: nothing written`);
    }
  });

  t.test('journal scan finds the transactions the replay uses', async (t) => {
    const img = new Uint8Array(fs.readFileSync(images.get('j_recover_csum3_64bit')!));
    const sb = new super_block(ext4_fs_type);
    sb.s_flags = SB_RDONLY;
    sb.s_id = 'vda';
    captureKernelMessages(() => {});
    await ext4_fill_super_dev(sb, memDev(img), 'noload', false, 'ext4');
    const sbi = EXT4_SB(sb);
    const jinode = await ext4_iget(sb, sbi.s_es.s_journal_inum, EXT4_IGET_SPECIAL);
    const j = await jbd2_journal_init({
      blockSize: sbi.s_blocksize, nrBlocks: Math.floor(jinode.i_size / sbi.s_blocksize),
      bmap: async (l) => (await ext4_map_blocks(jinode, l, 1)).pblk,
      bread: (p) => sbi.s_dev.bread(p),
    }, 'vda', () => {});
    const info = await jbd2_journal_scan(j, () => {});
    captureKernelMessages(null);
    t.equal(info.start_transaction, 2);
    t.equal(info.end_transaction, 4, 'transactions 2 and 3 committed');
    t.ok(sbi.s_overlay.size === 0, 'noload: nothing replayed');
  });

  t.test('through lkl-ts: the replayed tree equals e2fsck -fy', { skip: skipHost }, async (t) => {
    const k: Kernel = await startKernel({ memMiB: 64 });
    try {
      for (const f of FIXTURES) {
        if (typeof f.expect === 'object') continue;
        const img = images.get(f.name)!;
        const fixed = path.join(dir, `${f.name}.fsck.img`);
        fs.copyFileSync(img, fixed);
        await run('e2fsck', ['-fy', fixed], { allowFail: true });
        const host = await withLoopMount(fixed, { ro: true, noload: true }, (m) => hostManifest(m, { producer: 'e2fsck -fy' }));
        const before = await sha256File(img);
        const id = await k.diskAdd({ path: img, readOnly: true });
        const mnt = await k.mountDev(id, 0, 'ext4', MS_RDONLY, '');
        t.type(mnt, 'string', `${f.name}: mounted`);
        if (typeof mnt !== 'string') continue;
        try {
          const lkl = await lklManifest(k.sys, mnt);
          const d = diffManifests(host, lkl, { ignoreAt: [{ path: 'lost+found', fields: 'all', why: 'e2fsck may recreate it' }] });
          if (KNOWN[f.name]) t.comment(`${f.name}: ${KNOWN[f.name]} (${d.length} differences)`);
          else t.same(d, [], `${f.name}: same tree as e2fsck's recovery`);
        } finally {
          t.equal(await k.umountDev(id, 0), 0);
        }
        t.equal(await sha256File(img), before, `${f.name}: image unchanged`);
      }
    } finally { await k.halt(); }
  });

  t.test('fast commits to replay: a read-write mount is refused, nothing written', async (t) => {
    const k: Kernel = await startKernel({ memMiB: 64 });
    try {
      const img = path.join(dir, 'j_recover_fast_commit.rw.img');
      fs.copyFileSync(images.get('j_recover_fast_commit')!, img);
      const before = await sha256File(img);
      const msgs: string[] = [];
      captureKernelMessages((m) => msgs.push(m));
      const id = await k.diskAdd({ path: img });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      captureKernelMessages(null);
      t.equal(mnt, -EOPNOTSUPP, 'mount read-write: EOPNOTSUPP', { msgs });
      t.ok(msgs.some((m) => /fast commits \(transaction \d+\) that lkl-ts cannot replay: mount read-only, or replay them with e2fsck -fy/.test(m)),
        'with a message saying why and what to do', { msgs });
      t.equal(await sha256File(img), before, 'the image is unchanged (its fast commits are still there for e2fsck)');
      const ro = await k.mountDev(id, 0, 'ext4', MS_RDONLY, '');
      t.type(ro, 'string', 'a read-only mount is allowed (the replay stays in memory)');
      if (typeof ro === 'string') t.equal(await k.umountDev(id, 0), 0);
      t.equal(await sha256File(img), before, 'and leaves the image unchanged');
      // The same for a journal with no fast commit pending: j_recover_csum3_64bit mounts read-write (below).
    } finally { await k.halt(); }
  });

  t.test('read-write recovery writes the replay and clears needs_recovery', { skip: skipHost }, async (t) => {
    const k: Kernel = await startKernel({ memMiB: 64 });
    try {
      for (const name of ['j_recover_csum3_64bit', 'f_jnl_64bit']) {
        const img = path.join(dir, `${name}.rw.img`);
        fs.copyFileSync(images.get(name)!, img);
        const fixed = path.join(dir, `${name}.fsck2.img`);
        fs.copyFileSync(images.get(name)!, fixed);
        await run('e2fsck', ['-fy', fixed], { allowFail: true });
        const before = await sha256File(img);
        const id = await k.diskAdd({ path: img });
        const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
        t.type(mnt, 'string', `${name}: mounted rw (forced ro after recovery)`);
        if (typeof mnt === 'string') t.equal(await k.umountDev(id, 0), 0);
        t.not(await sha256File(img), before, `${name}: the replay was written`);
        const h = await dumpe2fsHeader(img);
        t.notMatch(h.get('Filesystem features') ?? '', /needs_recovery/, `${name}: needs_recovery cleared`);
        const a = await withLoopMount(fixed, { ro: true, noload: true }, (m) => hostManifest(m, { producer: 'e2fsck -fy' }));
        const b = await withLoopMount(img, { ro: true, noload: true }, (m) => hostManifest(m, { producer: 'lkl-ts replay' }));
        t.same(diffManifests(a, b, { ignoreAt: [{ path: 'lost+found', fields: 'all' }] }), [], `${name}: host reads the same tree`);
      }
    } finally { await k.halt(); }
  });
}
