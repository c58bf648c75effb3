// fallocate's COLLAPSE_RANGE and INSERT_RANGE on ext4, their refusals judged against the
// host kernel: the same calls on copies of the same image give the same errno (unaligned
// ranges, ranges reaching the end, offsets at or past it, flags combined, too large a file,
// an append-only file, a block-mapped file on ext3), then the same bytes and size. What the
// successful shifts do to extent trees of every shape is in the differential write script
// (test/ext4/write-script.ts, run by write-diff and jbd2-write-diff on every variant).

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_RDWR, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'fallocate', 'chattr'], { root: true });

const KEEP = 0x01, COLLAPSE = 0x08, INSERT = 0x20;
interface Call { p: string; mode: number; off: number; len: number; why: string }

const ERRNO: [RegExp, number][] = [
  [/Invalid argument/, -22], [/Operation not supported/, -95], [/File too large/, -27], [/Operation not permitted/, -1],
];
async function hostCall(mnt: string, c: Call): Promise<number> {
  const flags = [...(c.mode & COLLAPSE ? ['-c'] : []), ...(c.mode & INSERT ? ['-i'] : []), ...(c.mode & KEEP ? ['-n'] : [])];
  const r = await run('fallocate', [...flags, '-o', String(c.off), '-l', String(c.len), path.join(mnt, c.p)], { allowFail: true });
  if (r.code === 0) return 0;
  for (const [re, e] of ERRNO) if (re.test(r.stderr)) return e;
  return -1000;
}
async function lklCall(k: Kernel, mnt: string, c: Call): Promise<number> {
  const fd = await k.sys.open(`${mnt}/${c.p}`, O_RDWR, 0);
  if (fd < 0) return fd;
  try { return await k.sys.fallocate(fd, c.mode, c.off, c.len); } finally { await k.sys.close(fd); }
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const KiB = 1024;
/* on 'm', a file of 150 extents of 12 KiB (a tree with leaf blocks): splits, cuts across leaves */
const TREE_CALLS: Call[] = [
  { p: 'm', mode: INSERT, off: 16 * KiB * 40 + 4 * KiB, len: 8 * KiB, why: 'an insert splitting an extent of a tree' },
  { p: 'm', mode: COLLAPSE, off: 16 * KiB * 60 + 8 * KiB, len: 16 * KiB * 50, why: 'a collapse across leaves' },
  { p: 'm', mode: COLLAPSE, off: 4 * KiB, len: 16 * KiB * 3, why: 'a collapse from inside the first extent' },
  { p: 'm', mode: INSERT, off: 16 * KiB * 90, len: 64 * KiB, why: 'an insert near the end' },
];
const CASES: { name: string; type: 'ext4' | 'ext3'; bs: number; features: string[]; calls: Call[] }[] = [
  {
    name: 'ext4', type: 'ext4', bs: 4096, features: ['^has_journal'], calls: [
      { p: 'f', mode: COLLAPSE, off: 1000, len: 4 * KiB, why: 'an unaligned offset' },
      { p: 'f', mode: COLLAPSE, off: 4 * KiB, len: 5000, why: 'an unaligned length' },
      { p: 'f', mode: COLLAPSE, off: 0, len: 64 * KiB, why: 'a range reaching the end' },
      { p: 'f', mode: COLLAPSE, off: 60 * KiB, len: 8 * KiB, why: 'a range past the end' },
      { p: 'f', mode: INSERT, off: 64 * KiB, len: 4 * KiB, why: 'an insert at the end' },
      { p: 'f', mode: INSERT, off: 4 * KiB, len: 4095, why: 'an unaligned insert' },
      { p: 'f', mode: INSERT, off: 4 * KiB, len: 2 ** 44, why: 'an insert past the largest file' },
      { p: 'f', mode: COLLAPSE, off: 8 * KiB, len: 16 * KiB, why: 'a collapse' },
      { p: 'f', mode: INSERT, off: 4 * KiB, len: 12 * KiB, why: 'an insert' },
      { p: 'f', mode: INSERT, off: 0, len: 4 * KiB, why: 'an insert at the start' },
      { p: 'app', mode: COLLAPSE, off: 4 * KiB, len: 4 * KiB, why: 'a collapse of an append-only file' },
      { p: 'app', mode: INSERT, off: 4 * KiB, len: 4 * KiB, why: 'an insert into an append-only file' },
      ...TREE_CALLS,
    ],
  },
  { name: 'ext4 1k blocks, journal', type: 'ext4', bs: 1024, features: [], calls: TREE_CALLS },
  {
    name: 'ext3 (block maps)', type: 'ext3', bs: 4096, features: [], calls: [
      { p: 'f', mode: COLLAPSE, off: 8 * KiB, len: 16 * KiB, why: 'a collapse of a block-mapped file' },
      { p: 'f', mode: INSERT, off: 8 * KiB, len: 16 * KiB, why: 'an insert into a block-mapped file' },
    ],
  },
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-collapse');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const c of CASES) {
    t.test(c.name, async (t) => {
      const base = path.join(dir, `${c.name.replace(/\W+/g, '_')}.img`);
      await makeExtImage({ type: c.type, path: base, sizeMiB: 16, blockSize: c.bs, features: c.features });
      await withLoopMount(base, {}, async (m) => {
        fs.writeFileSync(path.join(m, 'f'), pattern(64 * KiB, 1));
        const fd = fs.openSync(path.join(m, 'm'), 'w');
        for (let i = 0; i < 150; i++) fs.writeSync(fd, pattern(12 * KiB, 10 + i), 0, 12 * KiB, 16 * KiB * i);
        fs.closeSync(fd);
        fs.writeFileSync(path.join(m, 'app'), pattern(32 * KiB, 2));
        if (c.type === 'ext4') await run('chattr', ['+a', path.join(m, 'app')]);
      });
      const hostImg = `${base}.host`, lklImg = `${base}.lkl`;
      fs.copyFileSync(base, hostImg);
      fs.copyFileSync(base, lklImg);
      const host = await withLoopMount(hostImg, {}, async (m) => {
        const r: number[] = [];
        for (const call of c.calls) r.push(await hostCall(m, call));
        return { r, f: sha(fs.readFileSync(path.join(m, 'f'))), size: fs.statSync(path.join(m, 'f')).size,
          m: sha(fs.readFileSync(path.join(m, 'm'))), blocks: fs.statSync(path.join(m, 'm')).blocks };
      });
      const id = await k.diskAdd({ path: lklImg });
      const mnt = await k.mountDev(id, 0, c.type, 0, '');
      if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
      const lkl: number[] = [];
      try {
        for (const call of c.calls) lkl.push(await lklCall(k, mnt, call));
      } finally { t.equal(await k.umountDev(id, 0), 0, 'unmounted'); }
      t.same(lkl.map((r, n) => `${c.calls[n]!.why}: ${r}`), host.r.map((r, n) => `${c.calls[n]!.why}: ${r}`),
        'every call gives the host kernel\'s result');
      t.ok(host.r.some((r) => r === 0) || c.type === 'ext3', 'some calls succeed on ext4');
      if (c.calls !== TREE_CALLS) t.ok(host.r.some((r) => r !== 0), 'and some are refused');
      const ck = await e2fsckClean(lklImg);
      t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
      const got = await withLoopMount(lklImg, { ro: true }, async (m) =>
        ({ f: sha(fs.readFileSync(path.join(m, 'f'))), size: fs.statSync(path.join(m, 'f')).size }));
      t.same(got, { f: host.f, size: host.size }, `the host reads the file as it left its own (${host.size} bytes)`);
      const gotM = await withLoopMount(lklImg, { ro: true }, async (m) => sha(fs.readFileSync(path.join(m, 'm'))));
      t.equal(gotM, host.m, 'and the tree-shaped file too');
      if (c.name === 'ext4') {
        /* and that is what the calls should have made of it */
        const p = pattern(64 * KiB, 1);
        const z = (n: number) => Buffer.alloc(n);
        const collapsed = Buffer.concat([p.subarray(0, 8 * KiB), p.subarray(24 * KiB)]);
        const inserted = Buffer.concat([collapsed.subarray(0, 4 * KiB), z(12 * KiB), collapsed.subarray(4 * KiB)]);
        const want = Buffer.concat([z(4 * KiB), inserted]);
        t.same({ f: host.f, size: host.size }, { f: sha(want), size: want.length }, 'which is the bytes moved as asked');
      }
    });
  }
}
