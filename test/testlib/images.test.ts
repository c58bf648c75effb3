// Tests of test/lib/images.ts: reference images, the judges, loop mounts, mtools.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import {
  dumpe2fsHeader, e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtools, mtoolsCopyIn,
  mtoolsCopyOut, mtoolsList, mtoolsReadFile, parseMdir, withLoopMount,
} from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { activeLoops, leftovers, scratchDir } from '../lib/scratch.js';

const skipExt = whyNot(['mke2fs', 'e2fsck', 'dumpe2fs', 'losetup', 'mount'], { root: true });
const skipFat = whyNot(['mkfs.vfat', 'fsck.vfat', 'mdir', 'mcopy']);
const dir = scratchDir(t, 'images');

t.test('makeExtImage: types, block size, inode size, features, label', { skip: skipExt }, async t => {
  const cases = [
    { type: 'ext2', sizeMiB: 8, inodeSize: 128, want: ['ext_attr'], not: ['has_journal', 'extent'] },
    { type: 'ext3', sizeMiB: 16, blockSize: 1024, want: ['has_journal'], not: ['extent'] },
    { type: 'ext4', sizeMiB: 32, blockSize: 4096, features: ['inline_data', '^64bit'], want: ['extent', 'inline_data', 'metadata_csum'], not: ['64bit'] },
    { type: 'ext4', sizeMiB: 32, features: ['^extent', '^64bit', '^metadata_csum'], want: ['has_journal'], not: ['extent', '64bit', 'metadata_csum'] },
  ] as const;
  for (const c of cases) {
    const img = await makeExtImage({ ...c, features: 'features' in c ? [...c.features] : undefined, dir, label: 'lkl-test' });
    const h = await dumpe2fsHeader(img);
    const feats = (h.get('Filesystem features') ?? '').split(/\s+/);
    const name = `${c.type} (${["blockSize" in c ? `-b ${c.blockSize}` : "", "inodeSize" in c ? `-I ${c.inodeSize}` : "", "features" in c ? `-O ${c.features.join(",")}` : ""].filter(Boolean).join(" ")})`;
    for (const f of c.want) t.ok(feats.includes(f), `${name} has ${f}`);
    for (const f of c.not) t.notOk(feats.includes(f), `${name} lacks ${f}`);
    t.equal(h.get('Filesystem volume name'), 'lkl-test');
    if ('blockSize' in c) t.equal(h.get('Block size'), String(c.blockSize));
    if ('inodeSize' in c) t.equal(h.get('Inode size'), String(c.inodeSize));
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, `${name} passes e2fsck -fn`, { output: ck.output });
  }
});

t.test('e2fsckClean sees a corruption', { skip: skipExt }, async t => {
  const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 4096, dir });
  await withLoopMount(img, {}, async mnt => { fs.writeFileSync(path.join(mnt, 'f'), 'data'); });
  t.ok((await e2fsckClean(img)).clean, 'clean before');
  // Free-blocks count in the superblock (offset 1024 + 0x0C): e2fsck -n reports it.
  const fd = fs.openSync(img, 'r+');
  fs.writeSync(fd, Buffer.from([0x01, 0x00, 0x00, 0x00]), 0, 4, 1024 + 0x0c);
  fs.closeSync(fd);
  const r = await e2fsckClean(img);
  t.notOk(r.clean, 'not clean after');
  t.not(r.code, 0);
});

t.test('withLoopMount: rw, ro+noload, cleanup when the callback throws', { skip: skipExt }, async t => {
  const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 4096, dir });
  let seen = '';
  await withLoopMount(img, {}, async mnt => {
    seen = mnt;
    t.ok(fs.statSync(path.join(mnt, 'lost+found')).isDirectory(), 'mounted');
    fs.writeFileSync(path.join(mnt, 'hello'), 'world');
  });
  t.notOk(fs.existsSync(seen), 'mount point removed');
  const before = fs.statSync(img).mtimeMs;
  await withLoopMount(img, { ro: true, noload: true }, async mnt => {
    t.equal(fs.readFileSync(path.join(mnt, 'hello'), 'utf8'), 'world');
    t.throws(() => fs.writeFileSync(path.join(mnt, 'x'), 'y'), { code: 'EROFS' });
  });
  t.equal(fs.statSync(img).mtimeMs, before, 'ro mount did not write the image');
  await t.rejects(withLoopMount(img, { ro: true }, async mnt => {
    seen = mnt;
    fs.readdirSync(mnt);
    throw new Error('callback failed');
  }), /callback failed/);
  t.notOk(fs.existsSync(seen), 'mount point removed after a throw');
  t.equal(activeLoops.size, 0, 'no loop device registered as active');
  t.same(leftovers().loops, [], 'no loop device left attached');
  // A mount failure (not a filesystem) detaches too.
  const junk = path.join(dir, 'junk.img');
  fs.writeFileSync(junk, Buffer.alloc(1024 * 1024));
  await t.rejects(withLoopMount(junk, { ro: true }, async () => 0));
  t.same(leftovers(), { loops: [], mounts: [], active: 0 }, 'nothing left after a failed mount');
});

t.test('makeVfatImage + fsckVfatClean for FAT12/16/32', { skip: skipFat }, async t => {
  for (const [fat, sizeMiB] of [[12, 1], [16, 32], [32, 33]] as const) {
    const img = await makeVfatImage({ fat, sizeMiB, dir, label: `FAT${fat}` });
    const r = await fsckVfatClean(img);
    t.ok(r.clean, `FAT${fat} ${sizeMiB} MiB is clean`, { output: r.output });
    t.equal((await mtoolsList(img)).label, `FAT${fat}`);
    // mkfs.fat wrote the FAT type into the boot sector.
    const boot = Buffer.alloc(512);
    const fd = fs.openSync(img, 'r');
    fs.readSync(fd, boot, 0, 512, 0);
    fs.closeSync(fd);
    const fsType = boot.subarray(fat === 32 ? 82 : 54, (fat === 32 ? 82 : 54) + 8).toString('latin1');
    t.equal(fsType.trim(), `FAT${fat}`);
  }
});

t.test('fsckVfatClean sees a corruption', { skip: skipFat }, async t => {
  const img = await makeVfatImage({ fat: 16, sizeMiB: 32, dir });
  const src = scratchDir(t, 'fat-src');
  fs.writeFileSync(path.join(src, 'a.txt'), 'x'.repeat(5000));
  await mtoolsCopyIn(img, src);
  t.ok((await fsckVfatClean(img)).clean);
  // Make the second FAT differ from the first: fsck.vfat -n reports it.
  const bpb = Buffer.alloc(512);
  const fd = fs.openSync(img, 'r+');
  fs.readSync(fd, bpb, 0, 512, 0);
  const bps = bpb.readUInt16LE(11), reserved = bpb.readUInt16LE(14), fatSectors = bpb.readUInt16LE(22);
  fs.writeSync(fd, Buffer.from([0x77, 0x77]), 0, 2, (reserved + fatSectors) * bps + 2 * 3);
  fs.closeSync(fd);
  const r = await fsckVfatClean(img);
  t.notOk(r.clean, 'not clean', { output: r.output });
});

t.test('mtools: UTF-8 names survive in and out, mtimes kept to 2 s, list parsed', { skip: skipFat }, async t => {
  const img = await makeVfatImage({ fat: 32, sizeMiB: 33, dir });
  const src = scratchDir(t, 'mt-src');
  const names = ['café-crème.txt', '日本語.txt', 'ëßΩж', 'with space', '.hidden', 'UPPER.TXT', 'MiXeD.Case', `${'é'.repeat(127)}x`];
  fs.mkdirSync(path.join(src, 'répertoire-日本'));
  for (const [i, n] of names.entries()) fs.writeFileSync(path.join(src, 'répertoire-日本', n), `content ${i}\n`);
  fs.writeFileSync(path.join(src, 'big.bin'), Buffer.alloc(123457, 7));
  fs.utimesSync(path.join(src, 'big.bin'), 1600000001, 1600000001);
  await mtoolsCopyIn(img, src);
  t.ok((await fsckVfatClean(img)).clean);

  const list = await mtoolsList(img);
  const paths = list.entries.map(e => e.path).sort();
  t.same(paths, ['big.bin', 'répertoire-日本', ...names.map(n => `répertoire-日本/${n}`)].sort(), 'mdir lists every long name');
  const big = list.entries.find(e => e.path === 'big.bin')!;
  t.equal(big.size, 123457);
  t.equal(big.type, 'file');
  t.equal(big.mtime, '2020-09-13 12:26');
  t.equal(list.entries.find(e => e.path === 'répertoire-日本')!.type, 'dir');
  t.equal(list.entries.find(e => e.path.endsWith('UPPER.TXT'))!.longName, undefined, 'an 8.3 name has no long name');

  const out = scratchDir(t, 'mt-out');
  await mtoolsCopyOut(img, out);
  for (const [i, n] of names.entries()) {
    t.equal(fs.readFileSync(path.join(out, 'répertoire-日本', n), 'utf8'), `content ${i}\n`, `round trip of ${n}`);
  }
  t.equal(fs.statSync(path.join(out, 'big.bin')).mtimeMs, 1600000000 * 1000, 'mtime truncated to 2 s, preserved');
  t.same(await mtoolsReadFile(img, 'big.bin'), Buffer.alloc(123457, 7));

  // An empty image copies out to nothing, not an error.
  const empty = await makeVfatImage({ fat: 12, sizeMiB: 1, dir });
  const out2 = scratchDir(t, 'mt-empty');
  await mtoolsCopyOut(empty, out2);
  t.same(fs.readdirSync(out2), []);
  t.same((await mtoolsList(empty)).entries, []);
});

t.test('known mtools limits: names outside the BMP, non-ASCII names that fit 8.3', { skip: skipFat }, async t => {
  const img = await makeVfatImage({ fat: 12, sizeMiB: 1, dir });
  const src = scratchDir(t, 'mt-limits');
  fs.writeFileSync(path.join(src, 'e😀x.bin'), 'hi\n');
  fs.writeFileSync(path.join(src, 'café.txt'), 'hi\n');
  await mtoolsCopyIn(img, src);
  const listed = (await mtoolsList(img)).entries.map(e => e.path).sort();
  const out = scratchDir(t, 'mt-limits-out');
  await mtoolsCopyOut(img, out);
  const copied = fs.readdirSync(out).sort();
  t.comment(`mtools wrote ['café.txt', 'e😀x.bin'], mdir lists ${JSON.stringify(listed)}, mcopy gives ${JSON.stringify(copied)}`);
  t.equal(listed.length, 2);
  if (listed.includes('e😀x.bin')) t.comment('mtools now keeps non-BMP names: FAT_PROFILE.nonBmpNames can go');
  if (copied.includes('café.txt')) t.comment('mcopy now copies 8.3 non-ASCII names out right: FAT_PROFILE.shortNonAscii can go');
});

t.test('parseMdir on a captured listing', async t => {
  const text = [
    ' Volume in drive : is MYLABEL    ',
    ' Volume Serial Number is 049A-C06E',
    'Directory for ::/',
    '',
    'ALONGD~1     <DIR>     2026-11-23   5:34  A long dir name',
    'big           123456789 2026-11-23  15:34 ',
    '        2 files         123 456 789 bytes',
    '',
    'Directory for ::/A long dir name',
    '',
    '.            <DIR>     2026-11-23   5:34 ',
    '..           <DIR>     2026-11-23   5:34 ',
    'UPPER    TXT         1 2026-11-23   5:34 ',
    'MIXED    TXT         1 2026-11-23   5:34  MiXed.Txt',
    '        4 files                   2 bytes',
  ].join('\n');
  const r = parseMdir(text);
  t.equal(r.label, 'MYLABEL');
  t.same(r.entries, [
    { path: 'A long dir name', type: 'dir', shortName: 'ALONGD~1', longName: 'A long dir name', size: 0, mtime: '2026-11-23 05:34' },
    { path: 'big', type: 'file', shortName: 'big', size: 123456789, mtime: '2026-11-23 15:34' },
    { path: 'A long dir name/UPPER.TXT', type: 'file', shortName: 'UPPER.TXT', size: 1, mtime: '2026-11-23 05:34' },
    { path: 'A long dir name/MiXed.Txt', type: 'file', shortName: 'MIXED.TXT', longName: 'MiXed.Txt', size: 1, mtime: '2026-11-23 05:34' },
  ]);
});

t.test('nothing left behind', async t => {
  t.same(leftovers(), { loops: [], mounts: [], active: 0 });
});
