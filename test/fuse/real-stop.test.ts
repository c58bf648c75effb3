/*
 * Every way of stopping lklfuse, after writing files on a vfat image with the real kernel:
 * SIGTERM, SIGINT, SIGHUP to the daemon, an external `fusermount -u` and `umount`. Each
 * leaves exit status 0, no process, no mount, nothing holding the image, and a clean image:
 * fsck.vfat -n clean, the dirty bit clear, the written files present with the right content
 * as mtools reads them.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fsckVfatClean, makeVfatImage, mtoolsList, mtoolsReadFile } from '../lib/images.js';
import { prngBytes } from '../lib/tree.js';
import { box, daemonsFor, fatDirtyBit, fuseSkip, holdersOf, isMounted, startForeground, waitFor, within, overTransports } from './real-helpers.js';

const skip = fuseSkip(['mkfs.vfat', 'fsck.vfat', 'mdir', 'mcopy', 'umount']);

const WAYS: { name: string; stop: (pid: number, mnt: string) => void }[] = [
  { name: 'SIGTERM', stop: (pid) => process.kill(pid, 'SIGTERM') },
  { name: 'SIGINT', stop: (pid) => process.kill(pid, 'SIGINT') },
  { name: 'SIGHUP', stop: (pid) => process.kill(pid, 'SIGHUP') },
  { name: 'fusermount -u', stop: (_pid, mnt) => { const r = spawnSync('fusermount', ['-u', mnt]); if (r.status !== 0) throw new Error(`fusermount -u: ${r.stderr}`); } },
  { name: 'umount', stop: (_pid, mnt) => { const r = spawnSync('umount', [mnt]); if (r.status !== 0) throw new Error(`umount: ${r.stderr}`); } },
];

overTransports(t, (t) => {
  for (const w of WAYS) {
    t.test(`${w.name} after writing: exit 0, nothing left, a clean image`, { skip }, async (t) => {
      const b = box(t, `stop-${w.name.replace(/\W+/g, '')}`);
      const img = await makeVfatImage({ fat: 32, sizeMiB: 40, path: b.path('disk.img') });
      const mnt = b.mnt();
      const d = await startForeground(img, mnt);

      // Written and not synced: the stop must write everything back.
      const files: Record<string, Buffer> = {
        'hello.txt': Buffer.from(`stopped by ${w.name}\n`),
        'dir/big.bin': prngBytes(7, 1_500_000),
        'dir/sub/small': prngBytes(8, 1000),
        'Long File Name With Spaces.data': prngBytes(9, 70_000),
      };
      fs.mkdirSync(path.join(mnt, 'dir', 'sub'), { recursive: true });
      for (const [p, data] of Object.entries(files)) fs.writeFileSync(path.join(mnt, p), data);
      fs.writeFileSync(path.join(mnt, 'removed'), 'x');
      fs.unlinkSync(path.join(mnt, 'removed'));

      w.stop(d.child.pid!, mnt);
      const ex = await within(d.exited, 60_000);
      t.ok(ex.ok, 'the daemon exits', { stderr: d.stderr() });
      t.equal(ex.ok ? ex.value : 'running', 0, 'with status 0', { stderr: d.stderr() });
      t.equal(d.stderr(), '', 'and says nothing');
      t.notOk(await isMounted(mnt), 'no mount left');
      t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 5000), 'no lklfuse process left');
      t.ok(await waitFor(() => holdersOf(img).length === 0, 5000), 'nothing holds the image (lock helper gone)');

      const ck = await fsckVfatClean(img);
      t.ok(ck.clean, 'fsck.vfat -n clean', { output: ck.output });
      t.notOk(fatDirtyBit(img), 'the dirty bit is clear');
      const list = (await mtoolsList(img)).entries.map((e) => `${e.type} ${e.path}`).sort();
      t.strictSame(list, ['dir dir', 'dir dir/sub', 'file Long File Name With Spaces.data', 'file dir/big.bin', 'file dir/sub/small', 'file hello.txt'],
        'mtools lists the written files, and only those');
      for (const [p, data] of Object.entries(files)) {
        t.ok((await mtoolsReadFile(img, p)).equals(data), `${p}: content as written`);
      }
    });
  }
});
