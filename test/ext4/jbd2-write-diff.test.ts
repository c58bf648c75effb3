// The jbd2 write side against the host kernel: the script of test/ext4/write-script.ts
// (shared with write-diff.test.ts) applied by lkl-ts and by the host kernel
// to two copies of journalled images: default `mke2fs -t ext4` with 4 KiB and 1 KiB blocks,
// `-t ext3` (block maps, no checksums), and ext4 with inline_data. lkl-ts mounts them
// read-write through its journal (data=ordered; data=writeback once; data=journal, file
// data journalled too, with 4 KiB and 1 KiB blocks). Both images must pass `e2fsck -fn`, the journal must be left
// empty and needs_recovery clear, and the host kernel must read both trees alike. The
// lkl-ts image is also mounted with `commit=1` and written while commits run on the timer.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, type ExtImageOptions } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_WRONLY, O_TRUNC, EROFS, MS_RDONLY, MS_REMOUNT, type Kernel } from '../../lib/index.js';
import { MiB, pattern, runDiffCase } from './write-script.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'mknod', 'touch', 'fallocate'], { root: true });

interface Case {
  name: string; fsType: 'ext2' | 'ext4'; image: Omit<ExtImageOptions, 'dir' | 'path'>; nsec: boolean; sparseFar: number;
  /** mount options besides commit=1 */
  opts?: string;
}
const hasExtents = (c: Case) => c.fsType === 'ext4' && c.image.type !== 'ext3' && !(c.image.features ?? []).includes('^extent');

const CASES: Case[] = [
  { name: 'ext4 default 4k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 256, blockSize: 4096 }, nsec: true, sparseFar: 3 * 1024 * MiB },
  { name: 'ext4 default 1k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 128, blockSize: 1024 }, nsec: true, sparseFar: 700 * MiB },
  { name: 'ext3 4k', fsType: 'ext4', image: { type: 'ext3', sizeMiB: 128, blockSize: 4096 }, nsec: false, sparseFar: 1024 * MiB },
  { name: 'ext4 default 4k, data=writeback', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 256, blockSize: 4096 }, nsec: true,
    sparseFar: 3 * 1024 * MiB, opts: 'data=writeback' },
  { name: 'ext4 default 4k, data=journal', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 256, blockSize: 4096 }, nsec: true,
    sparseFar: 3 * 1024 * MiB, opts: 'data=journal' },
  { name: 'ext4 default 1k, data=journal', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 128, blockSize: 1024 }, nsec: true,
    sparseFar: 700 * MiB, opts: 'data=journal' },
  { name: 'ext4 default 4k, inline_data', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 128, blockSize: 4096, features: ['inline_data'] },
    nsec: true, sparseFar: 1024 * MiB },
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'jbd2-write');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const c of CASES) {
    t.test(c.name, async (t) => { await runDiffCase(t, k, dir, { ...c, extents: hasExtents(c) }, c.opts ? `commit=1,${c.opts}` : 'commit=1'); });
  }

  t.test('journal state after a clean unmount', async (t) => {
    const img = path.join(dir, 'state.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: img });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    t.type(mnt, 'string', 'mounted read-write');
    if (typeof mnt !== 'string') return;
    t.equal(await k.sys.mkdir(`${mnt}/x`, 0o755), 0, 'mkdir works');
    const d1 = (await run('dumpe2fs', ['-h', img])).stdout;
    t.match(d1, /needs_recovery/, 'needs_recovery is set while mounted read-write');
    t.equal(await k.sys.mount(null, mnt, null, MS_REMOUNT | MS_RDONLY, ''), 0, 'remount read-only');
    const d3 = (await run('dumpe2fs', ['-h', img])).stdout;
    t.notMatch(d3, /needs_recovery/, 'needs_recovery is clear once read-only');
    t.match(d3, /Journal start:\s+0\n/, 'and the journal is empty');
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean while mounted read-only');
    t.equal(await k.sys.mkdir(`${mnt}/y`, 0o755), -EROFS, 'mkdir is EROFS');
    t.equal(await k.sys.mount(null, mnt, null, MS_REMOUNT, ''), 0, 'remount read-write');
    t.equal(await k.sys.mkdir(`${mnt}/y`, 0o755), 0, 'mkdir works again');
    t.match((await run('dumpe2fs', ['-h', img])).stdout, /needs_recovery/, 'needs_recovery is set again');
    t.equal(await k.umountDev(id, 0), 0);
    const d2 = (await run('dumpe2fs', ['-h', img])).stdout;
    t.notMatch(d2, /needs_recovery/, 'needs_recovery is clear after unmount');
    t.match(d2, /Journal start:\s+0\n/, 'the journal is empty');
    t.match(d2, /Journal features:.*journal_checksum_v3/, 'checksum v3 (metadata_csum), as Linux sets it');
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean');
    const tree = await withLoopMount(img, { ro: true }, async (m) => fs.readdirSync(m).sort());
    t.same(tree, ['lost+found', 'x', 'y'], 'the host kernel reads both directories');
  });

  t.test('concurrent writers, fsyncs and syncs while the commit timer runs (commit=1)', async (t) => {
    const img = path.join(dir, 'concurrent.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 1024, path: img });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, 'commit=1');
    t.type(mnt, 'string', 'mounted read-write');
    if (typeof mnt !== 'string') return;
    const sys = k.sys;
    const errors: number[] = [];
    const chk = (r: number) => { if (r < 0) errors.push(r); return r; };
    const writer = async (w: number) => {
      chk(await sys.mkdir(`${mnt}/w${w}`, 0o755));
      for (let i = 0; i < 60; i++) {
        const fd = chk(await sys.open(`${mnt}/w${w}/f${i}`, O_WRONLY | O_CREAT | O_TRUNC, 0o644));
        chk(await sys.write(fd, pattern(1000 + ((i * 7919 + w * 31) % 40_000), w * 1000 + i)));
        if (i % 7 === 0) chk(await sys.fsync(fd));
        chk(await sys.close(fd));
        if (i % 3 === 2 && (i - 1) % 10 !== 5) chk(await sys.unlink(`${mnt}/w${w}/f${i - 1}`));
        if (i % 10 === 5) chk(await sys.rename(`${mnt}/w${w}/f${i}`, `${mnt}/w${(w + 1) % 4}/moved-${w}-${i}`));
      }
    };
    let done = false;
    const syncer = async () => { while (!done) { chk(await sys.sync()); await new Promise((r) => setTimeout(r, 20)); } };
    const s = syncer();
    await Promise.all([0, 1, 2, 3].map(writer));
    done = true;
    await s;
    t.same(errors, [], 'no call failed');
    t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
    const bad = await withLoopMount(img, { ro: true }, async (m) => {
      const out: string[] = [];
      for (let w = 0; w < 4; w++) for (let i = 0; i < 60; i++) {
        const moved = i % 10 === 5;
        const p = moved ? path.join(m, `w${(w + 1) % 4}`, `moved-${w}-${i}`) : path.join(m, `w${w}`, `f${i}`);
        const gone = !moved && (i + 1) % 3 === 2 && i + 1 < 60;
        if (gone) { if (fs.existsSync(p)) out.push(`${p}: should be gone`); continue; }
        const want = Buffer.from(pattern(1000 + ((i * 7919 + w * 31) % 40_000), w * 1000 + i));
        if (!fs.existsSync(p) || Buffer.compare(fs.readFileSync(p), want) !== 0) out.push(`${p}: missing or wrong`);
      }
      return out;
    });
    t.same(bad, [], 'the host kernel reads every file as written');
  });

  t.test('journals the write side does not handle stay read-only, with the reason', async (t) => {
    // noload: no journal to write through.
    const img = path.join(dir, 'noload.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 4096, path: img });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, 'noload');
    t.type(mnt, 'string', 'noload: mounted');
    if (typeof mnt === 'string') {
      t.equal(await k.sys.mkdir(`${mnt}/x`, 0o755), -EROFS, 'noload: read-only');
      t.equal(await k.umountDev(id, 0), 0);
    }
    // A journal feature bit lkl-ts does not know (compat 0x2; Linux would mount it).
    const img2 = path.join(dir, 'unknown.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 4096, path: img2 });
    const bmap = (await run('debugfs', ['-R', 'bmap <8> 0', img2])).stdout.trim();
    const fd = fs.openSync(img2, 'r+');
    const off = Number(bmap) * 4096 + 0x24;
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, off);
    b.writeUInt32BE(b.readUInt32BE(0) | 2, 0);
    fs.writeSync(fd, b, 0, 4, off);
    fs.closeSync(fd);
    const before = fs.readFileSync(img2);
    const id2 = await k.diskAdd({ path: img2 });
    const m2 = await k.mountDev(id2, 0, 'ext4', 0, '');
    t.type(m2, 'string', 'unknown journal feature: mounted');
    if (typeof m2 === 'string') {
      t.equal(await k.sys.mkdir(`${m2}/x`, 0o755), -EROFS, 'unknown journal feature: read-only');
      t.equal(await k.umountDev(id2, 0), 0);
    }
    t.ok(Buffer.compare(before, fs.readFileSync(img2)) === 0, 'the image is unchanged');
  });
}
