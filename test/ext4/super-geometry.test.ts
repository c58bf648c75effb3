/*
 * Superblock cluster geometry on filesystems without bigalloc, refused as the host kernel
 * refuses it (ext4_handle_clustersize checks the cluster fields with and without bigalloc).
 * The fuzzer found s_clusters_per_group = 0xfffffffe (checksum fixed) mounted read-write:
 * every block bitmap checksum and walk then covered 0xfffffffe bits, and one image took a
 * minute of CPU. Each image here is refused by the host (its message in the kernel log) and
 * by lkl-ts with EINVAL and the same message, and left unchanged.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeExtImage } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, type Kernel } from '../../lib/index.js';
import { EINVAL } from '../../lib/kernel/include/uapi.js';
import { sha256File } from './driver-util.js';

const skip = whyNot(['mke2fs', 'debugfs', 'losetup', 'mount', 'dmesg'], { root: true });

const CASES: { field: string; value: string; message: RegExp }[] = [
  { field: 'clusters_per_group', value: '0xfffffffe', message: /#clusters per group too big: 4294967294/ },
  { field: 'clusters_per_group', value: '16384', message: /blocks per group \(32768\) and clusters per group \(16384\) inconsistent/ },
  { field: 'log_cluster_size', value: '3', message: /fragment\/cluster size \(8192\) != block size \(4096\)/ },
];

/** The host's answer: a loop mount, read-only, and the last lines of its kernel log after it. */
function hostMount(img: string, mnt: string): { mounted: boolean; log: string } {
  const r = spawnSync('mount', ['-o', 'loop,ro', img, mnt], { encoding: 'utf8' });
  if (r.status === 0) spawnSync('umount', [mnt]);
  const log = spawnSync('dmesg', [], { encoding: 'utf8' }).stdout.trim().split('\n').slice(-5).join('\n');
  return { mounted: r.status === 0, log };
}

t.test('cluster geometry without bigalloc: refused like the host refuses it', { skip }, async (t) => {
  const dir = scratchDir(t, 'ext4-geometry');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const lines: string[] = [];
  const k: Kernel = await startKernel({ memMiB: 64, print: (m) => lines.push(m) });
  t.teardown(() => k.halt());
  for (const c of CASES) {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: path.join(dir, `${c.field}-${c.value}.img`) });
    await run('debugfs', ['-w', '-R', `ssv ${c.field} ${c.value}`, img]);
    const host = hostMount(img, mnt);
    t.notOk(host.mounted, `${c.field} = ${c.value}: the host refuses it`);
    t.match(host.log, c.message, 'with this message');
    const before = await sha256File(img);
    const id = await k.diskAdd({ path: img });
    const r = await k.mountDev(id, 0, 'ext4', 0, '');
    t.equal(r, -EINVAL, 'lkl-ts refuses it: EINVAL, as Linux');
    t.match(lines.join('\n'), c.message, 'with the same message');
    lines.length = 0;
    await k.diskRemove(id);
    t.equal(await sha256File(img), before, 'the image is unchanged');
  }
});
