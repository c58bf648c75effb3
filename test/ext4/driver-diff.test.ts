// The ext4 driver against the host kernel: for each image kind (ext4 with 4 KiB and 1 KiB
// blocks, ext3, ext2, inline_data, 128-byte inodes, block maps without 64bit, and a
// `mke2fs -d` image), the standard tree is written by the host kernel through a loop
// mount (or by mke2fs -d), then read back by the host (loop mount ro,noload) and by
// lkl-ts (diskAdd read-only + mountDev) and the two manifests must be equal: names, types,
// modes, owners, sizes, link counts, hard links, times to the ns, device numbers, symlink
// targets, content sha256 and xattrs (ACLs included). The image must stay unchanged.
//
// LKL_TEST_BIGDIR sets the size of the big (htree) directory (default 3,000).

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, type ExtImageOptions } from '../lib/images.js';
import { buildTree, standardTree, EXT_128_PROFILE, EXT_1K_PROFILE, type StandardTreeOptions } from '../lib/tree.js';
import { diffManifests, hostManifest, MKE2FS_D_LOSSES, type DiffOptions } from '../lib/manifest.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, MS_RDONLY, EINVAL, EROFS, O_RDWR, O_CREAT, AT_FDCWD, AT_SYMLINK_NOFOLLOW, STATX_BTIME, type Kernel } from '../../lib/index.js';
import { lklManifest, sha256File } from './driver-util.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'getfattr', 'setfattr', 'setfacl', 'mknod', 'touch'], { root: true });
const N = Number(process.env.LKL_TEST_BIGDIR ?? 3000);
/** The 50,000-entry directory, in the Debian-defaults case (the others use N). */
const BIG = Number(process.env.LKL_TEST_BIGDIR_FULL ?? 50000);

interface Case {
  name: string;
  fsType: 'ext2' | 'ext3' | 'ext4';
  image: Omit<ExtImageOptions, 'dir' | 'path'>;
  tree: StandardTreeOptions;
  /** Build with mke2fs -d from a host directory instead of through a loop mount. */
  mke2fsD?: boolean;
  diff?: DiffOptions;
}

const common: StandardTreeOptions = { bigDirCount: N, hugeSparseSize: 0, largeFileSize: 3 * 1024 * 1024 + 17 };
/**
 * Every case runs on an image of more than 3 GiB (sparse), past the 2^31-byte mark where
 * 32-bit arithmetic on sectors and offsets breaks.
 */
const LARGE = 3 * 1024;
const CASES: Case[] = [
  { name: `ext4 4k (Debian defaults, a directory of ${BIG} entries)`, fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: LARGE + 160, blockSize: 4096, inodes: BIG + 2048 },
    tree: { ...common, bigDirCount: BIG, hugeSparseSize: 4 * 1024 ** 3 + 12345 } },
  { name: 'ext4 1k (htree 3 levels of index possible, extent trees deeper)', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: LARGE + 96, blockSize: 1024, inodes: N + 2048 }, tree: { ...common, ...EXT_1K_PROFILE } },
  { name: 'ext4 inline_data', fsType: 'ext4', image: { type: 'ext4', sizeMiB: LARGE + 96, blockSize: 4096, inodes: N + 2048, features: ['inline_data'] },
    tree: common },
  { name: 'ext4 128-byte inodes', fsType: 'ext4', image: { type: 'ext4', sizeMiB: LARGE + 96, blockSize: 4096, inodeSize: 128, inodes: N + 2048 },
    tree: { ...common, ...EXT_128_PROFILE } },
  { name: 'ext4 block maps, 32-bit descriptors', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: LARGE + 96, blockSize: 4096, inodes: N + 2048, features: ['^extent', '^64bit', '^flex_bg'] }, tree: common },
  { name: 'ext3', fsType: 'ext3', image: { type: 'ext3', sizeMiB: LARGE + 96, blockSize: 4096, inodes: N + 2048 }, tree: common },
  { name: 'ext2 1k', fsType: 'ext2', image: { type: 'ext2', sizeMiB: LARGE + 96, blockSize: 1024, inodes: N + 2048 },
    tree: { ...common, ...EXT_1K_PROFILE } },
  { name: 'ext4 from mke2fs -d', fsType: 'ext4', image: { type: 'ext4', sizeMiB: LARGE + 64, blockSize: 4096, inodes: N + 2048 },
    tree: { ...common, largeXattr: false, post2038: false, nsTimes: false }, mke2fsD: true },
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-diff');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 96 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const c of CASES) {
    t.test(c.name, async (t) => {
      const img = path.join(dir, `${c.name.replace(/\W+/g, '_')}.img`);
      const spec = standardTree(c.tree);
      if (c.mke2fsD) {
        const src = path.join(dir, `${path.basename(img)}.src`);
        fs.mkdirSync(src);
        await buildTree(src, spec);
        await makeExtImage({ ...c.image, path: img, fromDir: src });
      } else {
        await makeExtImage({ ...c.image, path: img });
        await withLoopMount(img, { options: ['noatime'] }, async (mnt) => { await buildTree(mnt, spec); });
      }
      const ck = await e2fsckClean(img);
      t.ok(ck.clean, 'the image is clean to start with', { output: ck.output });
      const btimes = new Map<string, bigint>();
      const blocks = new Map<string, number>();
      let hostStatfs = '';
      const host = await withLoopMount(img, { ro: true, noload: c.fsType !== 'ext2' }, async (mnt) => {
        hostStatfs = (await run('stat', ['-f', '-c', '%S %b %f %a %c %d %l', mnt])).stdout.trim();
        for (const d of ['sizes', 'times', 'names', 'symlinks', 'sparse', 'xattrs']) {
          if (!fs.existsSync(path.join(mnt, d))) continue;
          for (const n of fs.readdirSync(path.join(mnt, d))) {
            const st = fs.lstatSync(path.join(mnt, d, n), { bigint: true });
            if (st.birthtimeNs) btimes.set(`${d}/${n}`, st.birthtimeNs);
            blocks.set(`${d}/${n}`, Number(st.blocks));
          }
        }
        return hostManifest(mnt, { producer: 'host' });
      });
      const before = await sha256File(img);
      const id = await k.diskAdd({ path: img, readOnly: true });
      const mnt = await k.mountDev(id, 0, c.fsType, MS_RDONLY, '');
      t.type(mnt, 'string', `mounted as ${c.fsType}`);
      if (typeof mnt !== 'string') return;
      try {
        const t0 = Date.now();
        const lkl = await lklManifest(k.sys, mnt);
        t.comment(`lkl-ts walked ${lkl.entries.length} entries in ${Date.now() - t0} ms`);
        const d = diffManifests(host, lkl, c.diff);
        t.same(d, [], 'lkl-ts reads what the host kernel reads');
        const st = await k.sys.statfs(mnt);
        if (typeof st !== 'number') t.equal(`${st.bsize} ${st.blocks} ${st.bfree} ${st.bavail} ${st.files} ${st.ffree} ${st.namelen}`, hostStatfs, 'statfs');
        let bad = 0;
        for (const [p, b] of btimes) {
          const x = await k.sys.statx(AT_FDCWD, `${mnt}/${p}`, AT_SYMLINK_NOFOLLOW, STATX_BTIME);
          if (typeof x === 'number' || !(x.mask & STATX_BTIME) || BigInt(x.btime.sec) * 1_000_000_000n + BigInt(x.btime.nsec) !== b) bad++;
        }
        t.equal(bad, 0, `statx btime of ${btimes.size} entries as the host's`);
        const badBlocks: string[] = [];
        for (const [p, b] of blocks) {
          const x = await k.sys.lstat(`${mnt}/${p}`);
          if (typeof x === 'number' || x.blocks !== b) badBlocks.push(`${p}: ${typeof x === 'number' ? x : x.blocks} vs ${b}`);
        }
        t.same(badBlocks, [], `st_blocks of ${blocks.size} entries as the host's`);
        // Read-only driver: writes fail with EROFS.
        t.equal(await k.sys.open(`${mnt}/new-file`, O_RDWR | O_CREAT, 0o644), -EROFS, 'create is EROFS');
        t.equal(await k.sys.mkdir(`${mnt}/new-dir`, 0o755), -EROFS, 'mkdir is EROFS');
      } finally {
        t.equal(await k.umountDev(id, 0), 0, 'unmounted');
      }
      t.equal(await sha256File(img), before, 'image unchanged');
    });
  }

  t.test('64 KiB blocks (mke2fs -d; the host kernel cannot mount them): lkl-ts reads the source tree', async (t) => {
    const src = path.join(dir, 'src64k');
    fs.mkdirSync(src);
    await buildTree(src, standardTree({ ...common, bigDirCount: 1000, nsTimes: false, post2038: false }));
    const ref = await hostManifest(src, { producer: 'source' });
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 256, blockSize: 65536, inodes: 4096, dir, fromDir: src });
    const id = await k.diskAdd({ path: img, readOnly: true });
    const mnt = await k.mountDev(id, 0, 'ext4', MS_RDONLY, '');
    t.type(mnt, 'string', 'mounted');
    if (typeof mnt !== 'string') return;
    try {
      const lkl = await lklManifest(k.sys, mnt, { exclude: ['lost+found'] });
      // mke2fs -d stores its own time as atime (it reads every file).
      const opts = { ...MKE2FS_D_LOSSES, ignore: [...(MKE2FS_D_LOSSES.ignore ?? []), 'atime' as const] };
      t.same(diffManifests(ref, lkl, opts), [], 'the tree mke2fs copied');
    } finally { t.equal(await k.umountDev(id, 0), 0); }
  });

  t.test('feature checks by mount name', async (t) => {
    const ext4img = await makeExtImage({ type: 'ext4', sizeMiB: 16, dir });
    const ext2img = await makeExtImage({ type: 'ext2', sizeMiB: 16, dir });
    const msgs: string[] = [];
    void msgs;
    const id4 = await k.diskAdd({ path: ext4img, readOnly: true });
    t.equal(await k.mountDev(id4, 0, 'ext2', MS_RDONLY, ''), -EINVAL, 'an extents image does not mount as ext2');
    t.equal(await k.mountDev(id4, 0, 'ext3', MS_RDONLY, ''), -EINVAL, 'an extents image does not mount as ext3');
    const m = await k.mountDev(id4, 0, 'ext4', MS_RDONLY, 'dax');
    t.equal(m, -EINVAL, 'dax is rejected');
    const m2 = await k.mountDev(id4, 0, 'ext4', MS_RDONLY, 'bogus_option');
    t.equal(m2, -EINVAL, 'unknown options are rejected');
    const id2 = await k.diskAdd({ path: ext2img, readOnly: true });
    const m3 = await k.mountDev(id2, 0, 'ext2', MS_RDONLY, 'errors=continue,noacl,nouser_xattr');
    t.type(m3, 'string', 'ext2 image mounts as ext2');
    if (typeof m3 === 'string') t.equal(await k.umountDev(id2, 0), 0);
    const m4 = await k.mountDev(id2, 0, 'ext4', MS_RDONLY, '');
    t.type(m4, 'string', 'ext2 image mounts as ext4');
    if (typeof m4 === 'string') t.equal(await k.umountDev(id2, 0), 0);
    // An unknown incompat feature refuses the mount; an unknown ro_compat one allows ro only.
    const bad = path.join(dir, 'unknown-incompat.img');
    fs.copyFileSync(ext4img, bad);
    await run('debugfs', ['-w', '-R', 'feature FEATURE_I31', bad]);
    const id5 = await k.diskAdd({ path: bad, readOnly: true });
    t.equal(await k.mountDev(id5, 0, 'ext4', MS_RDONLY, ''), -EINVAL, 'unknown incompat feature: refused');
    const badRo = path.join(dir, 'unknown-rocompat.img');
    fs.copyFileSync(ext4img, badRo);
    await run('debugfs', ['-w', '-R', 'feature FEATURE_R31', badRo]);
    const id6 = await k.diskAdd({ path: badRo });
    t.equal(await k.mountDev(id6, 0, 'ext4', 0, ''), -EINVAL, 'unknown ro_compat feature: no rw mount');
    const m6 = await k.mountDev(id6, 0, 'ext4', MS_RDONLY, '');
    t.type(m6, 'string', 'unknown ro_compat feature: ro mount works');
    if (typeof m6 === 'string') t.equal(await k.umountDev(id6, 0), 0);
    // A rw mount of a journalled image is read-write (jbd2); a bigalloc image is forced read-only.
    const rw = path.join(dir, 'rw.img');
    fs.copyFileSync(ext4img, rw);
    const id7 = await k.diskAdd({ path: rw });
    const m7 = await k.mountDev(id7, 0, 'ext4', 0, '');
    t.type(m7, 'string', 'rw mount of a journalled image');
    if (typeof m7 === 'string') {
      t.equal(await k.sys.mkdir(`${m7}/x`, 0o755), 0, 'and it is writable');
      t.equal(await k.umountDev(id7, 0), 0);
      t.ok((await e2fsckClean(rw)).clean, 'e2fsck -fn is clean afterwards');
    }
    const big = await makeExtImage({ type: 'ext4', sizeMiB: 64, dir, features: ['bigalloc'], extra: ['-C', '16384'], path: path.join(dir, 'bigalloc.img') });
    const id8 = await k.diskAdd({ path: big });
    const m8 = await k.mountDev(id8, 0, 'ext4', 0, '');
    t.type(m8, 'string', 'rw mount of a bigalloc image accepted (forced read-only)');
    if (typeof m8 === 'string') {
      t.equal(await k.sys.mkdir(`${m8}/x`, 0o755), -EROFS, 'and it is read-only');
      t.equal(await k.umountDev(id8, 0), 0);
    }
  });
}
