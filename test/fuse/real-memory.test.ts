/*
 * The daemon's memory under a workload ten times its kernel memory (issue 14's memory test,
 * not a timing test): through a real lklfuse mount with mb=M, a file of 10 x M MiB is
 * written (dd conv=fsync), read back and compared, and a few thousand small files are
 * created, listed and stat'ed. The daemon's peak RSS (VmHWM) must stay under M + 150 MiB:
 * the page cache is bounded by mb=, and what Node and V8 add on top must not grow with the
 * amount of data that passes through. Then fsck and the independent reader.
 *
 * The bound is the reliability campaign's (issue 15); issue 14's goal, M + 64 MiB, is not met
 * yet (Node's own ~45 MiB plus V8's heap): the test prints the figure it measured.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtoolsList, withLoopMount } from '../lib/images.js';
import { box, fuseSkip, overTransports, sha256File, startForeground, waitFor, isMounted } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'e2fsck', 'mkfs.vfat', 'fsck.vfat', 'mdir', 'dd', 'losetup', 'mount']);
const SLACK_MIB = 150;

function peakKiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]);
}

/** A source file of `mib` MiB that does not compress to nothing (a block pattern with a counter). */
function makeSource(file: string, mib: number): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  try {
    for (let i = 0; i < mib; i++) { chunk.writeUInt32LE(i, 0); fs.writeSync(fd, chunk); }
  } finally { fs.closeSync(fd); }
}

async function workload(t: Test, kind: 'ext4' | 'vfat', mb: number): Promise<void> {
  const b = box(t, `mem-${kind}`);
  const img = kind === 'ext4'
    ? await makeExtImage({ type: 'ext4', sizeMiB: mb * 10 + 256, blockSize: 4096, path: b.path('disk.img') })
    : await makeVfatImage({ sizeMiB: mb * 10 + 128, fat: 32, path: b.path('disk.img') });
  const src = b.path('src.bin');
  makeSource(src, mb * 10);
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', `mb=${mb}`]);
  const pid = d.child.pid!;
  const dd = spawnSync('dd', [`if=${src}`, `of=${path.join(mnt, 'big.bin')}`, 'bs=128k', 'conv=fsync', 'status=none'], { encoding: 'utf8' });
  t.equal(dd.status, 0, `dd ${mb * 10} MiB in with conv=fsync`, { stderr: dd.stderr });
  const afterWrite = peakKiB(pid);
  t.equal(sha256File(path.join(mnt, 'big.bin')), sha256File(src), 'read back through the mount: the same bytes');
  fs.mkdirSync(path.join(mnt, 'many'));
  const N = 3000;
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(mnt, 'many', `f${i}`), `file ${i}\n`);
  t.equal(fs.readdirSync(path.join(mnt, 'many')).length, N, `${N} small files listed`);
  let sizes = 0;
  for (let i = 0; i < N; i++) sizes += fs.lstatSync(path.join(mnt, 'many', `f${i}`)).size;
  t.equal(sizes, Array.from({ length: N }, (_, i) => `file ${i}\n`.length).reduce((a, x) => a + x, 0), 'and stat\'ed with their sizes');
  const peak = peakKiB(pid);
  const bound = (mb + SLACK_MIB) * 1024;
  t.ok(peak < bound, `daemon peak RSS ${(peak / 1024).toFixed(0)} MiB (after the big write ${(afterWrite / 1024).toFixed(0)} MiB) < mb=${mb} + ${SLACK_MIB} MiB`);
  t.equal(spawnSync('fusermount', ['-u', mnt]).status, 0, 'unmounted');
  t.ok(await waitFor(async () => !(await isMounted(mnt)) && d.child.exitCode !== null, 30000), 'the daemon exited');
  fs.rmSync(src);
  if (kind === 'ext4') {
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    await withLoopMount(img, { ro: true }, async (m) => {
      const st = fs.statSync(path.join(m, 'big.bin'));
      t.equal(st.size, mb * 10 * 1024 * 1024, 'the host kernel sees the big file whole');
      t.equal(fs.readdirSync(path.join(m, 'many')).length, N, 'and every small file');
      t.equal(fs.readFileSync(path.join(m, 'many', `f${N - 1}`), 'utf8'), `file ${N - 1}\n`, 'with its content');
    });
  } else {
    const ck = await fsckVfatClean(img);
    t.ok(ck.clean, 'fsck.vfat -n clean', { output: ck.output });
    const tree = await mtoolsList(img);
    t.equal(tree.entries.find((e) => e.path === 'big.bin')?.size, mb * 10 * 1024 * 1024, 'mtools sees the big file whole');
    t.equal(tree.entries.filter((e) => e.path.startsWith('many/') && e.type === 'file').length, N, 'and every small file');
  }
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  overTransports(t, (t, transport) => {
    t.test('ext4 (journalled), mb=32: 320 MiB through, then 3,000 small files', (t) => workload(t, 'ext4', 32));
    // vfat's daemon differs from ext4's only below the transport: once is enough for CI time.
    if (transport === 'kernel') t.test('vfat (FAT32), mb=16: 160 MiB through, then 3,000 small files', (t) => workload(t, 'vfat', 16));
  });
}
