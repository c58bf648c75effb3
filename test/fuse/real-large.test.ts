/*
 * Images of 2 GiB and more, through a real lklfuse mount (issue: no image of 2 GiB or more
 * mounted, because `bd_nr_sectors << SECTOR_SHIFT` turned negative at 2^31 bytes).
 *
 * Each case puts its data where 32-bit arithmetic breaks, and checks that it is there
 * before trusting a pass:
 *  - ext4 of 3 GiB, 5 GiB and 3 TiB (sparse files, lazy init): before the host kernel
 *    writes the tree, every free block is fallocated and a 32 MiB hole punched past
 *    2.25 GiB, so the big file lands there (filefrag says where); a sparse file has data
 *    past 3 GiB *within* the file. lklfuse -o ro reads it all and the host's own reading
 *    (loop mount) must be equal.
 *  - FAT32 of 3 GiB: FSInfo's next-free hint points past 2 GiB, so what lklfuse writes lands
 *    there (mshowfat says where); fsck.vfat -n is clean and mtools reads the same tree.
 *  - A GPT image of 3 TiB whose partition 2 (ext4, read) and 3 (FAT32, written) start past
 *    2 TiB, mounted with -o part=N and judged by the host kernel / mtools at the offsets.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest, type HostManifestOptions, type Manifest } from '../lib/manifest.js';
import { run } from '../lib/sh.js';
import { box, daemonsFor, fuseSkip, isMounted, lklfuse, waitFor } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'e2fsck', 'filefrag', 'fallocate', 'losetup', 'mkfs.vfat', 'fsck.vfat', 'mcopy', 'mshowfat', 'sgdisk']);

const GiB = 1024 ** 3;
const TWO_GIB = 2 * GiB;
/** Where the sparse file's data sits within the file: past 3 GiB. */
const SPARSE_AT = 3 * GiB + 4096 * 7 + 123;

/** Deterministic content (no randomness to reproduce). */
function content(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let h = crypto.createHash('sha256').update(seed).digest();
  for (let o = 0; o < n; o += h.length) {
    h.copy(out, o);
    h = crypto.createHash('sha256').update(h).digest();
  }
  return out;
}

/** The tree's big file. */
function writeBig(root: string, tag: string): void {
  fs.writeFileSync(path.join(root, 'big'), content(`${tag}/big`, 5 * 1024 * 1024 + 5));
}

/** The tree written into each image: directories, small and multi-extent files, a symlink. */
function writeTree(root: string, tag: string): void {
  for (let d = 0; d < 6; d++) {
    const dir = path.join(root, `dir${d}`);
    fs.mkdirSync(dir);
    for (let f = 0; f < 5; f++) fs.writeFileSync(path.join(dir, `file${f}`), content(`${tag}/${d}/${f}`, 1000 + 70_001 * f));
  }
  writeBig(root, tag);
  fs.symlinkSync('dir0/file1', path.join(root, 'link'));
}

/** Lowest physical byte offset of any extent of `file` on its device. */
async function lowestPhysical(file: string): Promise<number> {
  const offs = (await extentsOf(file)).map(([, phys]) => phys);
  if (offs.length === 0) throw new Error(`filefrag found no extent of ${file}`);
  return Math.min(...offs);
}

async function unmount(t: Test, mnt: string): Promise<void> {
  t.equal(spawnSync('fusermount', ['-u', mnt]).status, 0, 'fusermount -u');
  t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 60_000), 'the daemon exits');
  t.notOk(await isMounted(mnt), 'no mount left');
}

/** The same file read at SPARSE_AT through both views. */
function readAt(file: string, pos: number, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = fs.readSync(fd, b, 0, n, pos);
    return b.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

const MANIFEST: HostManifestOptions = { exclude: ['lost+found', 'sparse'], xattrs: false };
/** fuse-native carries times in milliseconds; atime is changed by reading. */
const FUSE_DIFF = { ignore: ['atime' as const], timePrecisionNs: 1_000_000n };

/** Extents of `file` as [logical, physical, length] in bytes (filefrag -s -v -b1: synced first, so no delayed extent shows as block 0). */
async function extentsOf(file: string): Promise<[number, number, number][]> {
  const r = await run('filefrag', ['-s', '-v', '-b1', file]);
  return [...r.stdout.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*\d+:\s+(\d+)\.\.\s*\d+:\s+(\d+):/gm)]
    .map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

/**
 * Makes the only free space of the filesystem mounted at `m` a hole of `len` bytes past
 * `past` bytes into the device: fill every free block with fallocated files, then punch
 * the hole into a filler extent that lies there. What is written next must go there.
 */
async function leaveFreeOnlyPast(m: string, past: number, len: number): Promise<void> {
  for (let i = 0; ; i++) {
    const [free, bsize] = (await run('stat', ['-f', '-c', '%f %S', m])).stdout.trim().split(' ').map(Number) as [number, number];
    if (free * bsize < 1024 * 1024 || i > 8) break;
    await run('fallocate', ['-l', String((free - 1024) * bsize), path.join(m, `filler${i}`)], { allowFail: true });
    if (i > 0) await run('fallocate', ['-l', String(Math.max(bsize, Math.floor(free / 2) * bsize)), path.join(m, `filler${i}b`)], { allowFail: true });
  }
  for (const f of fs.readdirSync(m).filter((n) => n.startsWith('filler'))) {
    for (const [logical, phys, n] of await extentsOf(path.join(m, f))) {
      const skip = Math.max(0, Math.ceil((past - phys) / 65536) * 65536);
      if (n - skip < len) continue;
      await run('fallocate', ['--punch-hole', '-o', String(logical + skip), '-l', String(len), path.join(m, f)]);
      return;
    }
  }
  throw new Error(`no filler extent of ${len} bytes past ${past}`);
}

/** Host-written ext4 filesystem at `dev` (an image, or a loop device over a partition), checked. */
async function hostWritesExt4(t: Test, img: string, loop: { offset?: number; sizeLimit?: number }): Promise<Manifest> {
  // noinit_itable: no lazy zeroing of inode tables (it would write GiBs into the sparse image).
  return withLoopMount(img, { ...loop, type: 'ext4', options: ['noinit_itable'] }, async (m) => {
    await leaveFreeOnlyPast(m, 2.25 * GiB, 32 * 1024 * 1024);
    writeTree(m, path.basename(img));
    const sp = fs.openSync(path.join(m, 'sparse'), 'w');
    fs.writeSync(sp, content('sparse', 8192), 0, 8192, SPARSE_AT);
    fs.closeSync(sp);
    // The small files may land in the few free blocks ext4 keeps in reserve (s_resv_clusters)
    // wherever they are. The reserve is a count, not a place, so the big file's first blocks
    // can land there too (CI saw it once, at 0.13 GiB): then that copy stays as one more
    // filler and the file is written again, into the hole.
    for (let i = 0; i < 3 && (await lowestPhysical(path.join(m, 'big'))) < TWO_GIB; i++) {
      fs.renameSync(path.join(m, 'big'), path.join(m, `filler-big${i}`));
      writeBig(m, path.basename(img));
    }
    for (const f of fs.readdirSync(m)) if (f.startsWith('filler')) fs.rmSync(path.join(m, f));
    const low = await lowestPhysical(path.join(m, 'big'));
    t.ok(low >= TWO_GIB, `the big file's data lies past 2 GiB on the device (lowest extent at ${(low / GiB).toFixed(2)} GiB)`);
    return hostManifest(m, { ...MANIFEST, producer: 'host' });
  });
}

async function lklfuseReadsExt4(t: Test, img: string, mnt: string, expected: Manifest, extra: string[] = []): Promise<void> {
  const r = await lklfuse([img, mnt, '-o', ['ro', ...extra].join(',')]);
  t.equal(r.status, 0, 'lklfuse mounts it', { stderr: r.stderr });
  if (r.status !== 0) return;
  try {
    const got = await hostManifest(mnt, { ...MANIFEST, producer: 'lklfuse' });
    t.strictSame(diffManifests(expected, got, FUSE_DIFF), [], 'lklfuse reads exactly what the host kernel wrote');
    const sp = path.join(mnt, 'sparse');
    t.equal(fs.statSync(sp).size, SPARSE_AT + 8192, 'the sparse file has its size past 3 GiB');
    t.ok(readAt(sp, SPARSE_AT, 8192).equals(content('sparse', 8192)), 'its data past 3 GiB reads back');
    t.ok(readAt(sp, 2.5 * GiB, 4096).equals(Buffer.alloc(4096)), 'its hole at 2.5 GiB reads as zeros');
    const df = spawnSync('df', ['-B1', '--output=size', mnt], { encoding: 'utf8' });
    const size = Number(df.stdout.trim().split('\n')[1]);
    t.ok(size > TWO_GIB, `statfs reports the whole filesystem (${(size / GiB).toFixed(1)} GiB)`);
  } finally {
    await unmount(t, mnt);
  }
}

for (const [label, sizeMiB] of [['3 GiB', 3 * 1024], ['5 GiB', 5 * 1024], ['3 TiB', 3 * 1024 * 1024]] as const) {
  t.test(`ext4 image of ${label}: mounted and read through lklfuse, equal to the host kernel`, { skip }, async (t) => {
    const b = box(t, `large-ext4-${sizeMiB}`);
    const img = await makeExtImage({ type: 'ext4', sizeMiB, blockSize: 4096, path: b.path('disk.img') });
    const expected = await hostWritesExt4(t, img, {});
    const before = await e2fsckClean(img);
    t.ok(before.clean, 'e2fsck -fn: clean', { output: before.output });
    await lklfuseReadsExt4(t, img, b.mnt(), expected);
    const after = await e2fsckClean(img);
    t.ok(after.clean, 'e2fsck -fn: still clean after the read-only mount', { output: after.output });
  });
}

/** Sets FSInfo's next-free hint (FSI_Nxt_Free, at byte 492 of the FSInfo sector). */
function setNextFree(img: string, fsinfoByte: number, cluster: number): void {
  const fd = fs.openSync(img, 'r+');
  try {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(cluster);
    fs.writeSync(fd, b, 0, 4, fsinfoByte + 492);
  } finally {
    fs.closeSync(fd);
  }
}

/** Clusters of `file` in a FAT image (mshowfat prints `<a-b> <c-d> ...`). */
async function clustersOf(imgSpec: string, file: string): Promise<number[]> {
  const r = await run('mshowfat', ['-i', imgSpec, `::${file}`], { env: { MTOOLS_SKIP_CHECK: '1' } });
  const out: number[] = [];
  for (const m of r.stdout.matchAll(/<(\d+)(?:-(\d+))?>/g)) out.push(Number(m[1]), Number(m[2] ?? m[1]));
  if (out.length === 0) throw new Error(`mshowfat printed no clusters for ${file}: ${r.stdout}`);
  return out;
}

/** Writes the tree through lklfuse onto a FAT32 filesystem, returns what was written (host view). */
async function lklfuseWritesFat(t: Test, b: ReturnType<typeof box>, img: string, extra: string[]): Promise<Manifest> {
  const mnt = b.mnt();
  const r = await lklfuse([img, mnt, ...(extra.length ? ['-o', extra.join(',')] : [])]);
  t.equal(r.status, 0, 'lklfuse mounts it read-write', { stderr: r.stderr });
  const src = b.path('src');
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(src);
  for (let d = 0; d < 4; d++) {
    fs.mkdirSync(path.join(src, `dir${d}`));
    for (let f = 0; f < 4; f++) fs.writeFileSync(path.join(src, `dir${d}`, `file${f}.bin`), content(`fat/${d}/${f}`, 3000 + 90_001 * f));
  }
  fs.writeFileSync(path.join(src, 'big.bin'), content('fat/big', 7 * 1024 * 1024 + 3));
  if (r.status === 0) {
    try {
      t.equal(spawnSync('cp', ['-r', `${src}/.`, mnt]).status, 0, 'cp -r into the mount');
    } finally {
      await unmount(t, mnt);
    }
  }
  return hostManifest(src, { xattrs: false, exclude: [] });
}

/** mtools' view of a FAT filesystem: copy everything out, hash it. */
async function mtoolsView(b: ReturnType<typeof box>, imgSpec: string): Promise<Manifest> {
  const out = b.path('mtools-out');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  await run('mcopy', ['-s', '-n', '-i', imgSpec, '::/*', out], { env: { MTOOLS_SKIP_CHECK: '1' } });
  return hostManifest(out, { xattrs: false });
}

const CONTENT_ONLY = { ignore: ['atime' as const, 'mtime' as const, 'ctime' as const, 'mode' as const, 'uid' as const, 'gid' as const, 'dirSize' as const, 'nlink' as const] };

t.test('FAT32 image of 3 GiB: written through lklfuse past 2 GiB, fsck clean, mtools reads it', { skip }, async (t) => {
  const b = box(t, 'large-fat32');
  const img = await makeVfatImage({ fat: 32, sizeMiB: 3 * 1024, path: b.path('disk.img') });
  // mkfs.vfat puts FSInfo in sector 1 (512-byte sectors); clusters are 4 KiB at this size.
  setNextFree(img, 512, 600_000);
  const written = await lklfuseWritesFat(t, b, img, []);
  const ck = await fsckVfatClean(img);
  t.ok(ck.clean, 'fsck.vfat -n: clean', { output: ck.output });
  const clusters = await clustersOf(img, '/big.bin');
  t.ok(Math.min(...clusters) >= 600_000, `the data lies past 2 GiB (clusters from ${Math.min(...clusters)})`);
  const seen = await mtoolsView(b, img);
  t.strictSame(diffManifests({ ...written, producer: 'written' }, { ...seen, producer: 'mtools' }, CONTENT_ONLY), [], 'mtools reads exactly what was written');
});

t.test('GPT image of 3 TiB, partitions past 2 TiB: ext4 read and FAT32 written with -o part=N', { skip }, async (t) => {
  const b = box(t, 'large-gpt');
  const img = b.path('disk.img');
  const fd = fs.openSync(img, 'w');
  fs.ftruncateSync(fd, 3 * 1024 ** 4);
  fs.closeSync(fd);
  const P2 = 4_999_999_488, P2_LEN = 409_600, P3 = 5_099_999_232, P3_LEN = 2 * 1024 * 1024; // sectors, 1 MiB aligned
  // (not -q: with it, this sgdisk writes no partitions)
  await run('sgdisk', ['-n', '1:2048:+64M', '-n', `2:${P2}:${P2 + P2_LEN - 1}`, '-t', '2:8300',
    '-n', `3:${P3}:${P3 + P3_LEN - 1}`, '-t', '3:0700', img]);
  const table = (await run('sgdisk', ['-p', img])).stdout;
  t.match(table, new RegExp(`\\n\\s+2\\s+${P2}\\s+${P2 + P2_LEN - 1}\\s`), 'partition 2 is where it should be');
  t.match(table, new RegExp(`\\n\\s+3\\s+${P3}\\s+${P3 + P3_LEN - 1}\\s`), 'partition 3 is where it should be');
  const p2 = { offset: P2 * 512, sizeLimit: P2_LEN * 512 };
  // mke2fs on the partition through a loop device at its offset.
  const loop = (await run('losetup', ['--find', '--show', '--offset', String(p2.offset), '--sizelimit', String(p2.sizeLimit), img])).stdout.trim();
  try {
    await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', loop]);
  } finally {
    await run('losetup', ['-d', loop]);
  }
  const expected = await withLoopMount(img, { ...p2, type: 'ext4' }, async (m) => {
    writeTree(m, 'gpt');
    return hostManifest(m, { ...MANIFEST, producer: 'host' });
  });
  const mnt = b.mnt();
  const r = await lklfuse([img, mnt, '-o', 'ro,part=2']);
  t.equal(r.status, 0, 'lklfuse -o part=2 mounts the ext4 partition at 2.3 TiB', { stderr: r.stderr });
  if (r.status === 0) {
    try {
      t.strictSame(diffManifests(expected, await hostManifest(mnt, { ...MANIFEST, producer: 'lklfuse' }), FUSE_DIFF), [],
        'lklfuse reads exactly what the host kernel wrote');
    } finally {
      await unmount(t, mnt);
    }
  }

  // mtools' own @@offset refuses offsets this large, so mkfs, fsck and mtools see the
  // partition through a loop device at its offset.
  const withP3 = async <T>(fn: (dev: string) => Promise<T>): Promise<T> => {
    const dev = (await run('losetup', ['--find', '--show', '--offset', String(P3 * 512), '--sizelimit', String(P3_LEN * 512), img])).stdout.trim();
    try { return await fn(dev); } finally { await run('losetup', ['-d', dev]); }
  };
  await withP3((dev) => run('mkfs.vfat', ['-F', '32', dev]));
  const written = await lklfuseWritesFat(t, b, img, ['part=3']);
  await withP3(async (dev) => {
    const ck = await fsckVfatClean(dev);
    t.ok(ck.clean, 'fsck.vfat -n on the partition: clean', { output: ck.output });
    t.strictSame(diffManifests({ ...written, producer: 'written' }, { ...await mtoolsView(b, dev), producer: 'mtools' }, CONTENT_ONLY), [],
      'mtools reads exactly what lklfuse wrote into partition 3');
  });
});
