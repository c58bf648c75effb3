// The ext4 write side against the host kernel. For each filesystem kind the driver writes
// (no journal: ext2 4 KiB and 1 KiB, ext4 -O ^has_journal with 4 KiB and 1 KiB blocks, with
// 128-byte inodes, with block maps and 32-bit descriptors, with metadata_csum off, with
// inline_data: small files and directories stay inline as the host keeps them), the host
// kernel first writes a starting tree through a loop mount (so lkl-ts modifies a
// Linux-written image), the image is copied, and the same script of changes is applied to
// one copy by lkl-ts (system calls, in-process) and to the other by the host kernel (loop
// mount). Then both must pass `e2fsck -fn`, and the host kernel must read the two trees as
// equal: names, types, modes, owners, sizes, link counts, hard links, symlink targets,
// device numbers, contents, and atime/mtime where the script set them. Also: the used-inode
// count (statfs f_files - f_ffree) is the host's, and the image is still mountable.
//
// The script covers: mkdir (nested), create/write of sizes around block and page edges,
// a multi-MiB file in 128 KiB writes (extent growth and, on 1 KiB blocks, a tree of depth
// >= 1), sparse writes far out (holes; on block maps the double and triple indirect
// blocks), overwrite inside a file, append, truncate down (inside a block, to zero, inside a
// hole) and up, fast and slow symlinks, hard links, unlink (also of a linked file), rmdir,
// rename (same dir, across dirs, over an existing file, a directory across parents),
// mknod (fifo, char and block devices), chmod, chown, utimensat, and on extent files
// fallocate (preallocation with and without KEEP_SIZE, PUNCH_HOLE inside and across blocks,
// ZERO_RANGE, writes into unwritten extents).

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, type ExtImageOptions } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_WRONLY, EROFS, type Kernel } from '../../lib/index.js';
import { MiB, lklApply, pattern, runDiffCase } from './write-script.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'mknod', 'touch', 'fallocate'], { root: true });

interface Case {
  name: string; fsType: 'ext2' | 'ext4'; image: Omit<ExtImageOptions, 'dir' | 'path'>; nsec: boolean; sparseFar: number;
  /** Where the two kernels may lay things out differently, and why. */
  layout?: { path: RegExp; fields: ['dirSize']; why: string };
}
const hasExtents = (c: Case) => c.fsType === 'ext4' && !(c.image.features ?? []).includes('^extent');

const CASES: Case[] = [
  { name: 'ext4 ^has_journal 4k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 256, blockSize: 4096, features: ['^has_journal'] },
    nsec: true, sparseFar: 3 * 1024 * MiB },
  { name: 'ext4 ^has_journal 1k (extent tree depth >= 1)', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: 128, blockSize: 1024, features: ['^has_journal'] }, nsec: true, sparseFar: 700 * MiB },
  { name: 'ext4 ^has_journal 128-byte inodes', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: 128, blockSize: 4096, inodeSize: 128, features: ['^has_journal'] }, nsec: false, sparseFar: 1024 * MiB },
  { name: 'ext4 ^has_journal block maps, 32-bit descriptors', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: 128, blockSize: 4096, features: ['^has_journal', '^extent', '^64bit', '^flex_bg'] },
    nsec: true, sparseFar: 5 * 1024 * MiB },
  { name: 'ext4 ^has_journal ^metadata_csum (uninit_bg)', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: 128, blockSize: 4096, features: ['^has_journal', '^metadata_csum', 'uninit_bg'] },
    nsec: true, sparseFar: 1024 * MiB },
  { name: 'ext4 ^has_journal inline_data', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: 128, blockSize: 4096, features: ['^has_journal', 'inline_data'] }, nsec: true, sparseFar: 1024 * MiB },
  { name: 'ext2 4k', fsType: 'ext2', image: { type: 'ext2', sizeMiB: 128, blockSize: 4096 }, nsec: true, sparseFar: 5 * 1024 * MiB },
  { name: 'ext2 1k (triple indirect blocks)', fsType: 'ext2', image: { type: 'ext2', sizeMiB: 64, blockSize: 1024 },
    nsec: true, sparseFar: 10 * 1024 * MiB },
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-write');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const c of CASES) {
    t.test(c.name, async (t) => { await runDiffCase(t, k, dir, { ...c, extents: hasExtents(c) }); });
  }

  t.test('full disk: ENOSPC, statfs is what the host kernel reads, nothing lost, space comes back', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 24, blockSize: 1024, features: ['^has_journal'], dir });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    t.type(mnt, 'string', 'mounted');
    if (typeof mnt !== 'string') return;
    const sys = k.sys;
    const st0 = await sys.statfs(mnt);
    if (typeof st0 === 'number') throw new Error('statfs');
    await lklApply(k, mnt, [{ op: 'write', p: 'keep', size: 100_000, seed: 1 }, { op: 'write', p: 'two-blocks', size: 2048, seed: 3 }]);
    const fd = await sys.open(`${mnt}/fill`, O_WRONLY | O_CREAT, 0o644);
    const chunk = pattern(64 * 1024, 2);
    let total = 0, last = 0;
    for (;;) {
      last = await sys.write(fd, chunk);
      if (last <= 0) break;
      total += last;
    }
    t.equal(last, -28 /* ENOSPC */, 'the write that finds no space fails with ENOSPC');
    // The failed 64 KiB write gave back what its last page had taken: take the rest 1 KiB at a time.
    for (;;) { const n = await sys.write(fd, chunk.subarray(0, 1024)); if (n <= 0) { last = n; break; } total += n; }
    t.equal(last, -28, 'and so does the last 1 KiB write');
    t.ok(total > 20 * 1024 * 1024, `about the whole disk was written (${total} bytes)`);
    t.equal(await sys.close(fd), 0);
    t.equal(await sys.mkdir(`${mnt}/d`, 0o755), -28, 'mkdir needs a block: ENOSPC');
    t.equal(await sys.open(`${mnt}/${'n'.repeat(256)}`, O_WRONLY | O_CREAT, 0o644), -36, 'a 256-byte name: ENAMETOOLONG');
    // Two blocks free, a page of four wanted: the page's first blocks are allocated, then
    // ENOSPC; what was allocated past i_size must be given back (e2fsck checks below).
    t.equal(await sys.unlink(`${mnt}/two-blocks`), 0);
    const fd2 = await sys.open(`${mnt}/partial`, O_WRONLY | O_CREAT, 0o644);
    t.equal(await sys.write(fd2, pattern(4096, 4)), -28, 'a 4 KiB write with two 1 KiB blocks free: ENOSPC');
    t.equal(await sys.close(fd2), 0);
    const pst = await sys.stat(`${mnt}/partial`);
    t.equal(typeof pst === 'number' ? pst : `${pst.size} ${pst.blocks}`, '0 0', 'the failed write left no size and no blocks');
    const st1 = await sys.statfs(mnt);
    t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean on the full disk', { output: ck.output });
    const host = await withLoopMount(img, { ro: true }, async (m) => {
      const s = (await run('stat', ['-f', '-c', '%b %f %a %c %d', m])).stdout.trim();
      const size = fs.statSync(path.join(m, 'fill')).size;
      const keep = fs.readFileSync(path.join(m, 'keep'));
      return { s, size, keepOk: Buffer.compare(keep, Buffer.from(pattern(100_000, 1))) === 0 };
    });
    t.equal(typeof st1 === 'number' ? st1 : `${st1.blocks} ${st1.bfree} ${st1.bavail} ${st1.files} ${st1.ffree}`, host.s,
      'statfs on the full disk as the host kernel reads it');
    t.equal(host.size, total, 'the host reads every byte the writes reported');
    t.ok(host.keepOk, 'the file written before is intact');
    const id2 = await k.diskAdd({ path: img });
    const mnt2 = await k.mountDev(id2, 0, 'ext4', 0, '') as string;
    t.equal(await sys.unlink(`${mnt2}/fill`), 0, 'unlink the filler');
    const st2 = await sys.statfs(mnt2);
    t.equal(await k.umountDev(id2, 0), 0);
    t.equal(typeof st2 === 'number' ? st2 : st2.bfree, st0.bfree - Math.ceil(100_000 / 1024), 'the space comes back (less the kept file\'s blocks)');
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean after the unlink');
  });

  t.test('features the write side does not cover mount read-only (bigalloc, quota), the image untouched', async (t) => {
    for (const [what, features, extra] of [['bigalloc', ['^has_journal', 'bigalloc'], ['-C', '16384']],
      ['quota', ['^has_journal', 'quota'], []]] as const) {
      const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, dir, features: [...features], extra: [...extra],
        path: path.join(dir, `${what}.img`) });
      const before = fs.readFileSync(img);
      const id = await k.diskAdd({ path: img });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      t.type(mnt, 'string', `${what}: mounted`);
      if (typeof mnt !== 'string') continue;
      t.equal(await k.sys.mkdir(`${mnt}/x`, 0o755), -EROFS, `${what}: mkdir is EROFS`);
      t.equal(await k.umountDev(id, 0), 0);
      t.ok(fs.readFileSync(img).equals(before), `${what}: the image is byte for byte as it was`);
    }
  });
}
