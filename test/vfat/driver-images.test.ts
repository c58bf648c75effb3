// The vfat driver reading images that mkfs.vfat + mcopy made: FAT12, FAT16 and FAT32 with
// long, non-ASCII and alias-differing names, multi-cluster files and directories. What
// lkl-ts reads (names, sizes, sha256, mtimes to 2 s) must equal what mtools reports.
import t from 'tap';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  bootWithImage, fsckProblems, fsckVfat, lklTree, mcopyIn, mkfs, mtoolsTree, scratchDir, treeDiff, imageDirty,
} from './driver-util.js';

function makeHostTree(dir: string): void {
  const files: Record<string, Uint8Array | string> = {
    'hello.txt': 'hello\n',
    'UPPER.TXT': 'upper case 8.3\n',
    'MixedCase.Txt': 'mixed\n',
    'a.b.c.d': 'dots\n',
    '.hidden': 'dot file\n',
    'name with spaces.text': 'spaces\n',
    'Ünïcödé файл.bin': randomBytes(5000),
    '日本語のファイル名.txt': 'japanese\n',
    '😀 emoji.txt': 'surrogates\n',
    ['L'.repeat(200) + '.long']: 'long name\n',
    'verylongname.extension': randomBytes(100_000),
    'empty': '',
    'deep/er/still deeper/leaf.dat': randomBytes(3000),
    'deep/er/x.y': 'x\n',
  };
  for (let i = 0; i < 150; i++) files[`many/file number ${i}.txt`] = `file ${i}\n`;
  let n = 0;
  for (const [rel, data] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, data);
    const when = new Date(Date.UTC(2001, 1, 3, 4, 5, 6) + (n++) * 3_601_000);
    utimesSync(p, when, when);
  }
}

for (const bits of [12, 16, 32] as const) {
  t.test(`FAT${bits} image made by mkfs.vfat + mcopy reads back exactly`, async (t) => {
    const dir = scratchDir(`img${bits}`);
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    mkdirSync(src);
    makeHostTree(src);
    const img = join(dir, 'fat.img');
    mkfs(img, bits);
    mcopyIn(img, src);
    const expected = mtoolsTree(img);
    t.ok(expected.size > 160, `mtools sees the tree (${expected.size} entries)`);
    t.same(treeDiff(expected, new Map([...expected])), []);

    const b = await bootWithImage(img);
    t.teardown(() => b.k.halt());
    const mp = await b.k.mountDev(b.disk, 0, 'vfat', 1 /* MS_RDONLY */, '');
    t.equal(typeof mp, 'string', `mounted read-only at ${mp}`);
    const got = await lklTree(b.sys, mp as string);
    t.same(treeDiff(expected, got), [], 'names, sizes, contents and mtimes equal what mtools reports');
    const st = await b.sys.statfs(mp as string);
    // f_namelen as Linux's fat_statfs: FAT_LFN_LEN (255) * NLS_MAX_CHARSET_SIZE (6) for vfat.
    t.ok(typeof st !== 'number' && st.type === 0x4d44 && st.namelen === 1530, 'statfs says MSDOS_SUPER_MAGIC, namelen 1530');
    t.equal(await b.k.umountDev(b.disk, 0), 0, 'unmounted');
    t.notOk(imageDirty(img, bits), 'a read-only mount leaves the dirty bit alone');
    const f = fsckVfat(img);
    t.equal(f.status, 0, 'fsck.vfat -n is clean');
    t.same(fsckProblems(f.out), [], 'fsck.vfat reports no problem');
  });
}
