// The ext4 write side at scale, judged by e2fsck and the host kernel: a directory of 50,000
// entries created through lkl-ts (it becomes a multi-level htree), 10,000 files spread over
// 100 directories, a chain of 100 nested directories, and layout: a 256 MiB file written in
// 128 KiB writes must land in a handful of extents (filefrag through the host kernel), no
// more fragmented than twice what the host kernel makes of the same writes.
//
// LKL_TEST_SCALE_DIR sets the size of the big directory (default 50,000).

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_WRONLY, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'filefrag', 'debugfs'], { root: true });
const BIG = Number(process.env.LKL_TEST_SCALE_DIR ?? 50_000);
const MiB = 1024 * 1024;

async function extentsOf(file: string): Promise<number> {
  const out = (await run('filefrag', [file])).stdout;
  const m = /: (\d+) extents? found/.exec(out);
  if (!m) throw new Error(`filefrag: ${out}`);
  return Number(m[1]);
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-scale');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 256 }); });
  t.teardown(async () => { await k?.halt(); });

  t.test(`${BIG} entries in one directory, 10,000 files in 100 directories, 100 levels deep`, async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 1024, blockSize: 4096, inodes: BIG + 20_000, features: ['^has_journal'], dir });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
    const sys = k.sys;
    const t0 = Date.now();
    try {
      t.equal(await sys.mkdir(`${mnt}/big`, 0o755), 0);
      let bad = 0;
      for (let i = 0; i < BIG; i++) {
        const fd = await sys.open(`${mnt}/big/entry-number-${i}-of-the-big-directory`, O_WRONLY | O_CREAT, 0o644);
        if (fd < 0) { bad++; continue; }
        await sys.close(fd);
      }
      t.equal(bad, 0, `${BIG} creations succeeded (${Date.now() - t0} ms)`);
      for (let d = 0; d < 100; d++) {
        if (await sys.mkdir(`${mnt}/spread-${d}`, 0o755) !== 0) bad++;
        for (let f = 0; f < 100; f++) {
          const fd = await sys.open(`${mnt}/spread-${d}/f${f}`, O_WRONLY | O_CREAT, 0o644);
          if (fd < 0) { bad++; continue; }
          if (f % 10 === 0) await sys.write(fd, new Uint8Array(5000).fill(d));
          await sys.close(fd);
        }
      }
      let p = `${mnt}/deep`;
      for (let d = 0; d < 100; d++) { if (await sys.mkdir(p, 0o755) !== 0) bad++; p += `/level-${d}`; }
      t.equal(bad, 0, 'the spread files and the deep chain were made');
      // Lookups of every name through lkl-ts after all that.
      let missing = 0;
      for (let i = 0; i < BIG; i += 7) {
        const st = await sys.lstat(`${mnt}/big/entry-number-${i}-of-the-big-directory`);
        if (typeof st === 'number') missing++;
      }
      t.equal(missing, 0, 'every seventh name looks up');
    } finally {
      t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    }
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output.slice(0, 4000) });
    const stat = (await run('debugfs', ['-R', 'stat /big', img])).stdout;
    t.match(stat, /Flags: 0x[0-9a-f]*1[0-9a-f]{3}\b/, 'the big directory is an htree (EXT4_INDEX_FL)');
    await withLoopMount(img, { ro: true }, async (m) => {
      const names = fs.readdirSync(path.join(m, 'big'));
      t.equal(names.length, BIG, 'the host kernel lists every entry');
      const want = new Set(Array.from({ length: BIG }, (_, i) => `entry-number-${i}-of-the-big-directory`));
      t.equal(names.filter((n) => !want.has(n)).length, 0, 'and only those');
      let files = 0;
      for (let d = 0; d < 100; d++) files += fs.readdirSync(path.join(m, `spread-${d}`)).length;
      t.equal(files, 10_000, '10,000 spread files');
      let q = path.join(m, 'deep');
      let depth = 0;
      while (fs.existsSync(q)) { depth++; q = path.join(q, `level-${depth - 1}`); }
      t.equal(depth, 100, '100 nested directories');
      t.equal(fs.statSync(path.join(m, 'spread-7', 'f30')).size, 5000, 'file contents sized as written');
    });
  });

  t.test('layout: 256 MiB in 128 KiB writes lands in a handful of extents, within 2x of the host kernel', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 1024, blockSize: 4096, features: ['^has_journal'], dir });
    const hostImg = `${img}.host`;
    fs.copyFileSync(img, hostImg);
    const chunk = new Uint8Array(128 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
    try {
      const fd = await k.sys.open(`${mnt}/big.bin`, O_WRONLY | O_CREAT, 0o644);
      for (let off = 0; off < 256 * MiB; off += chunk.length) {
        const n = await k.sys.write(fd, chunk);
        if (n !== chunk.length) { t.fail(`write at ${off}: ${n}`); break; }
      }
      t.equal(await k.sys.close(fd), 0);
    } finally { t.equal(await k.umountDev(id, 0), 0, 'unmounted'); }
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean');
    await withLoopMount(hostImg, {}, async (m) => {
      const fd = fs.openSync(path.join(m, 'big.bin'), 'w');
      for (let off = 0; off < 256 * MiB; off += chunk.length) fs.writeSync(fd, chunk);
      fs.closeSync(fd);
    });
    const ours = await withLoopMount(img, { ro: true }, (m) => extentsOf(path.join(m, 'big.bin')));
    const host = await withLoopMount(hostImg, { ro: true }, (m) => extentsOf(path.join(m, 'big.bin')));
    t.comment(`extents: lkl-ts ${ours}, host kernel ${host}`);
    t.ok(ours <= 16, `a handful of extents (${ours}; an extent holds at most 128 MiB, and groups' metadata splits runs)`);
    t.ok(ours <= 2 * Math.max(host, 1) + 2, `within 2x of the host kernel's ${host}`);
  });
}
