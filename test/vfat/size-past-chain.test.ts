// A FAT file whose directory entry claims more bytes than its cluster chain holds (a
// corrupt image: scripts/fuzz.ts found it as fat12 seeds 472, 1859 and 2148). A write
// inside the claimed size but past the chain reaches writeback, where the block cannot be
// mapped ("fat_get_block: block N of inode M is not allocated"). Writeback must report
// that (fsync fails, the filesystem goes read-only as errors=remount-ro says) and let the
// page go: the page stayed locked and the unmount after waited on it for ever.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeVfatImage } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_RDWR, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mkfs.vfat', 'mcopy']);

/** `p`, or a failure after `ms` (a hang). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'hang'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p, new Promise<'hang'>((res) => { timer = setTimeout(() => res('hang'), ms); })]);
  clearTimeout(timer);
  return r;
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'vfat-past-chain');
  let k: Kernel;
  const messages: string[] = [];
  t.before(async () => { k = await startKernel({ memMiB: 64, print: (m) => messages.push(m) }); });
  t.teardown(async () => { await k?.halt(); });

  for (const fat of [12, 16] as const) {
    t.test(`FAT${fat}`, async (t) => {
      const img = await makeVfatImage({ path: path.join(dir, `fat${fat}.img`), fat, sizeMiB: 16 });
      const src = path.join(dir, 'FILE.TXT');
      fs.writeFileSync(src, Buffer.alloc(4096, 0x61));
      await run('mcopy', ['-i', img, src, '::FILE.TXT']);
      // The root directory entry of FILE.TXT: its size (offset 28) becomes 1 MiB.
      const b = fs.readFileSync(img);
      const at = b.indexOf(Buffer.from('FILE    TXT'));
      t.ok(at > 0, 'the directory entry is found');
      b.writeUInt32LE(1024 * 1024, at + 28);
      fs.writeFileSync(img, b);

      const id = await k.diskAdd({ path: img });
      const mnt = await k.mountDev(id, 0, 'vfat', 0, 'errors=remount-ro');
      if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
      const fd = await k.sys.open(`${mnt}/FILE.TXT`, O_RDWR, 0);
      t.ok(fd >= 0, 'the file opens');
      const w = await k.sys.pwrite64(fd, new Uint8Array(3000).fill(0x62), 100_000);
      t.ok(typeof w === 'number', `a write past the chain answers (${w})`);
      const f = await within(k.sys.fsync(fd), 10_000);
      t.not(f, 'hang', `fsync answers (${f})`);
      t.ok(typeof f === 'number' && f < 0, 'and reports the failure');
      t.ok(messages.some((m) => /fat_get_block: block \d+ of inode \d+ is not allocated/.test(m)), 'the FAT error is logged');
      t.not(await within(k.sys.close(fd), 10_000), 'hang', 'close answers');
      const u = await within(k.umountDev(id, 0), 10_000);
      t.equal(u, 0, 'the unmount does not wait on the page for ever');
      await k.diskRemove(id);
    });
  }
}
