// The FAT side of the differential machinery: the standard tree cut to what FAT holds
// (FAT_PROFILE), built on the host, copied into FAT12/16/32 images with mtools, judged by
// fsck.vfat -n, and read back with mtoolsManifest: it must equal the source's manifest
// projected to FAT (projectToFat). A changed byte must show.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fsckVfatClean, makeVfatImage, mtools, mtoolsCopyIn } from '../lib/images.js';
import { buildTree, FAT_PROFILE, standardTree, type StandardTreeOptions } from '../lib/tree.js';
import { diffManifests, hostManifest, mtoolsManifest, projectToFat, type Manifest } from '../lib/manifest.js';
import { whyNot } from '../lib/sh.js';
import { leftovers, scratchDir } from '../lib/scratch.js';

const skip = whyNot(['mkfs.vfat', 'fsck.vfat', 'mdir', 'mcopy', 'touch']);

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'diff-fat');

  const cases: { fat: 12 | 16 | 32; sizeMiB: number; tree: StandardTreeOptions }[] = [
    // mtools 4.0.32 cannot always write a 255-character name on FAT32: "No directory slots",
    // depending on where in the directory the 21-entry slot set falls (FAT16 is fine).
    { fat: 32, sizeMiB: 64, tree: { ...FAT_PROFILE, bigDirCount: 1000, longNames: false } },
    { fat: 16, sizeMiB: 32, tree: { ...FAT_PROFILE, bigDirCount: 300, largeFileSize: 1024 * 1024 + 5 } },
    { fat: 12, sizeMiB: 4, tree: { ...FAT_PROFILE, bigDirCount: 100, largeFileSize: 100_000, sparse: false, depth: 10, longNames: false } },
  ];

  let fat32: { img: string; src: Manifest } | undefined;

  for (const c of cases) {
    t.test(`FAT${c.fat}: mtools copy of the FAT tree reads back as its projection`, async t => {
      const src = path.join(dir, `src${c.fat}`);
      fs.mkdirSync(src);
      await buildTree(src, standardTree(c.tree));
      const host = await hostManifest(src, { producer: 'source' });
      const img = await makeVfatImage({ fat: c.fat, sizeMiB: c.sizeMiB, dir });
      await mtoolsCopyIn(img, src);
      const ck = await fsckVfatClean(img);
      t.ok(ck.clean, `FAT${c.fat} image written by mtools passes fsck.vfat -n`, { output: ck.output });
      const fat = await mtoolsManifest(img);
      t.ok(fat.entries.length > 100, `${fat.entries.length} entries read back`);
      t.strictSame(diffManifests(projectToFat(host), fat), [], 'equal to the projected source');
      if (c.fat === 32) fat32 = { img, src: projectToFat(host) };
    });
  }

  t.test('projection drops what FAT cannot hold, and truncates mtimes to 2 s', async t => {
    const src = fat32!.src;
    t.ok(src.entries.every(e => e.type === 'file' || e.type === 'dir'), 'only files and dirs');
    t.ok(src.entries.every(e => e.mode === undefined && e.uid === undefined && e.xattrs === undefined && e.links === undefined));
    t.ok(src.entries.every(e => e.mtimeNs === undefined || e.mtimeNs % 2_000_000_000n === 0n), '2 s resolution');
    t.equal(src.entries.find(e => e.path === '.')!.mtimeNs, undefined, 'the root has no time on FAT');
    t.equal(src.entries.find(e => e.path === 'times/odd-second')!.mtimeNs, 1_600_000_000n * 1_000_000_000n);
    const second = src.entries.find(e => e.path === 'links/second')!;
    t.equal(second.type, 'file', 'a hard link becomes a file of its own');
    t.equal(second.sha256, src.entries.find(e => e.path === 'links/orig')!.sha256);
  });

  t.test('a changed byte and a changed mtime show in the diff', async t => {
    const { img, src } = fat32!;
    const tmp = scratchDir(t, 'fat-change');
    const f = path.join(tmp, 'f4097');
    const bytes = fs.readFileSync(path.join(dir, 'src32', 'sizes', 'f4097'));
    bytes[4096] = bytes[4096]! ^ 1;
    fs.writeFileSync(f, bytes);
    fs.utimesSync(f, 1577836800, 1577836800);
    await mtools('mcopy', ['-o', '-m', '-i', img, f, '::/sizes/f4097']);
    fs.writeFileSync(path.join(tmp, 'text.txt'), 'hello, world\n');
    fs.utimesSync(path.join(tmp, 'text.txt'), 1577836802, 1577836802);
    await mtools('mcopy', ['-o', '-m', '-i', img, path.join(tmp, 'text.txt'), '::/sizes/text.txt']);
    const d = diffManifests(src, await mtoolsManifest(img));
    t.comment(d.join('\n'));
    t.equal(d.length, 2, 'two differences');
    t.match(d[0], /^sizes\/f4097: sha256 /);
    t.match(d[1], /^sizes\/text\.txt: mtime 2020-01-01T00:00:00\.000000000Z .* ≠ 2020-01-01T00:00:02\.000000000Z/);
  });

  t.test('nothing left behind', async t => {
    t.same(leftovers(), { loops: [], mounts: [], active: 0 });
  });
}
