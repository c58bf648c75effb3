// An unclean stop: a child process mounts read-write, fsyncs one file and is killed. The
// image must keep the dirty bit (the next mount warns), and the fsync'd file must be intact
// for mtools. A clean mount of a dirty volume warns as Linux does and leaves the bit set.
import t from 'tap';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootWithImage, imageDirty, mkfs, mtoolsTree, scratchDir } from './driver-util.js';
import { createHash } from 'node:crypto';

function pattern(n: number, s: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = s >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}
const child = join(fileURLToPath(new URL('.', import.meta.url)), 'driver-crash-child.js');

for (const bits of [16, 32] as const) {
  t.test(`FAT${bits}: kill -9 after fsync keeps the fsync'd data and the dirty bit`, async (t) => {
    const dir = scratchDir(`crash${bits}`);
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const img = join(dir, 'fat.img');
    mkfs(img, bits);
    const p = spawn(process.execPath, [child, img, '5'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      p.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
      p.on('exit', (c) => reject(new Error(`child exited ${c}: ${out}`)));
    });
    t.equal(line, 'READY 0', 'child fsync returned 0');
    p.kill('SIGKILL');
    await new Promise((r) => p.on('exit', r));
    t.ok(imageDirty(img, bits), 'dirty bit still set after the kill');
    const tree = mtoolsTree(img);
    const f = tree.get('Synced Dir/fsynced file.bin');
    t.ok(f, 'the fsync\'d file is in the directory');
    t.equal(f?.size, 123_457, 'with its size');
    t.equal(f?.sha, createHash('sha256').update(pattern(123_457, 5)).digest('hex'), 'and its content');

    const b = await bootWithImage(img);
    t.teardown(() => b.k.halt());
    const mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '');
    t.equal(typeof mp, 'string', 'the dirty volume mounts');
    t.ok(b.log.some((l) => l.includes('Volume was not properly unmounted. Some data may be corrupt. Please run fsck.')),
      'with Linux\'s warning');
    t.equal(await b.k.umountDev(b.disk, 0), 0);
    t.ok(imageDirty(img, bits), 'a clean unmount does not clear somebody else\'s dirt');
  });
}
