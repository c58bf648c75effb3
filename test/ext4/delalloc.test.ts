// Delayed allocation (ext4's default, as in Linux): a write reserves blocks and writeback
// allocates them, a run of pages at a time. Judged through the kernel API and afterwards by
// e2fsck and the host kernel:
//   - a file written in 128 KiB pieces gets one extent per free run (debugfs), and reads back;
//   - before any writeback, stat counts the reserved blocks, statfs has them taken from the
//     free count, SEEK_DATA/SEEK_HOLE see the data, and fiemap-free readers (the host) see
//     everything after unmount;
//   - truncate, punch and unlink of never-written-back data give every reservation back
//     (statfs returns to its starting point; no "reserved data blocks" warning);
//   - nodelalloc still allocates at write time (the file has its blocks before any sync);
//   - with a journal, an fsync'd delayed file is on the image after a crash (see
//     jbd2-write-log for unsynced files).
import t, { type Test } from 'tap';
import path from 'node:path';
import fs from 'node:fs';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { jbd2_debug } from '../../lib/kernel/fs/jbd2/journal.js';
import { EXTENT_STATUS_WRITTEN, ext4_es_lookup_extent } from '../../lib/kernel/fs/ext4/extents_status.js';
import type { ext4_inode_info } from '../../lib/kernel/fs/ext4/ext4.js';
import { truncate_inode_pages } from '../../lib/kernel/mm/filemap.js';
import { allSupers } from '../../lib/kernel/fs/fs-writeback.js';
import {
  startKernel, O_CREAT, O_RDWR, O_WRONLY, SEEK_DATA, SEEK_HOLE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
  type Kernel, type Sys,
} from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'debugfs', 'losetup', 'mount'], { root: true });
const KiB = 1024, MiB = 1024 * KiB;

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < len; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

async function writeAll(sys: Sys, fd: number, data: Uint8Array, piece = 128 * KiB): Promise<void> {
  for (let off = 0; off < data.length; off += piece) {
    const n = await sys.write(fd, data.subarray(off, Math.min(data.length, off + piece)));
    if (n !== Math.min(piece, data.length - off)) throw new Error(`write: ${n}`);
  }
}

/** Leaf extents of a file, from debugfs's stat (index blocks, "(ETB...)", not counted). */
async function extentCount(img: string, file: string): Promise<number> {
  const out = (await run('debugfs', ['-R', `stat ${file}`, img])).stdout;
  const list = out.split('EXTENTS:')[1];
  if (list === undefined) throw new Error(`debugfs stat: no extents in ${out}`);
  return list.trim().split(/,\s*/).filter((e) => /^\(\d/.test(e)).length;
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-delalloc');
  const messages: string[] = [];
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128, print: (m) => messages.push(m) }); });
  t.teardown(async () => { await k?.halt(); });

  async function mount(img: string, opts = ''): Promise<{ id: number; mnt: string }> {
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, opts);
    if (typeof mnt !== 'string') throw new Error(`mount: ${mnt}`);
    return { id, mnt };
  }
  async function unmount(t: Test, id: number): Promise<void> {
    t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    await k.diskRemove(id);
  }
  const freeBlocks = async (mnt: string): Promise<number> => {
    const st = await k.sys.statfs(mnt);
    if (typeof st === 'number') throw new Error(`statfs ${st}`);
    return st.bfree;
  };

  t.test('a file written in 128 KiB pieces: reserved while dirty, one long extent after writeback', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 256, blockSize: 4096, path: path.join(dir, 'seq.img') });
    const { id, mnt } = await mount(img);
    const sys = k.sys;
    const free0 = await freeBlocks(mnt);
    const data = pattern(24 * MiB + 5000, 1);
    const fd = await sys.open(`${mnt}/big`, O_CREAT | O_RDWR, 0o644);
    await writeAll(sys, fd, data);
    const blocks = Math.ceil(data.length / 4096);
    const st = await sys.fstat(fd);
    if (typeof st === 'number') throw new Error(`fstat ${st}`);
    t.ok(st.blocks >= blocks * 8, `stat counts the file's blocks before writeback (${st.blocks} sectors)`);
    t.ok(free0 - (await freeBlocks(mnt)) >= blocks, 'statfs has the reserved blocks taken');
    t.equal(await sys.lseek(fd, 0, SEEK_DATA), 0, 'SEEK_DATA finds the unwritten-back data');
    t.equal(await sys.lseek(fd, 0, SEEK_HOLE), data.length, 'SEEK_HOLE: no hole before EOF');
    t.equal(await sys.fsync(fd), 0, 'fsync');
    const st2 = await sys.fstat(fd);
    if (typeof st2 === 'number') throw new Error(`fstat ${st2}`);
    t.equal(st2.blocks, st.blocks, 'stat says the same after the blocks were allocated');
    t.equal(await sys.close(fd), 0);
    await unmount(t, id);
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    const n = await extentCount(img, '/big');
    t.ok(n >= 1 && n <= 2, `the file is in ${n} extent(s) (a 24 MiB run fits in one block group)`);
    await withLoopMount(img, { ro: true }, async (m) => {
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'big')), Buffer.from(data)) === 0, 'the host kernel reads every byte');
    });
  });

  t.test('truncate, punch and unlink of data never written back give every reservation back', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 1024, path: path.join(dir, 'release.img') });
    const { id, mnt } = await mount(img);
    const sys = k.sys;
    messages.length = 0;
    const free0 = await freeBlocks(mnt);
    const a = pattern(3 * MiB, 2), b = pattern(2 * MiB + 777, 3), c = pattern(MiB, 4);
    for (const [name, d] of [['a', a], ['b', b], ['c', c]] as const) {
      const fd = await sys.open(`${mnt}/${name}`, O_CREAT | O_WRONLY, 0o644);
      await writeAll(sys, fd, d, 48 * KiB + 3);
      await sys.close(fd);
    }
    t.ok(free0 - (await freeBlocks(mnt)) >= (a.length + b.length + c.length) / 1024, 'reserved');
    t.equal(await sys.truncate(`${mnt}/a`, 100_000), 0, 'truncate a to 100,000 bytes');
    const fd = await sys.open(`${mnt}/b`, O_RDWR, 0);
    t.equal(await sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * KiB, MiB), 0, 'punch 1 MiB out of b');
    t.equal(await sys.close(fd), 0);
    t.equal(await sys.unlink(`${mnt}/c`), 0, 'unlink c');
    t.equal(await sys.sync(), 0, 'sync');
    const used = Math.ceil(100_000 / 1024) + Math.ceil((b.length - MiB) / 1024);
    const free1 = await freeBlocks(mnt);
    t.ok(free0 - free1 >= used && free0 - free1 <= used + 16,
      `statfs: ${free0 - free1} blocks in use for ${used} blocks of data (plus block-map metadata)`);
    await unmount(t, id);
    t.same(messages.filter((m) => /reserved|Delayed block allocation/.test(m)), [], 'no reservation warnings');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    await withLoopMount(img, { ro: true }, async (m) => {
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'a')), Buffer.from(a.subarray(0, 100_000))) === 0, 'a as truncated');
      const want = Buffer.from(b);
      want.fill(0, 64 * KiB, 64 * KiB + MiB);
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'b')), want) === 0, 'b with its hole');
      t.notOk(fs.existsSync(path.join(m, 'c')), 'c is gone');
    });
  });

  t.test('fallocate over delayed data, and nodelalloc', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: path.join(dir, 'falloc.img') });
    let { id, mnt } = await mount(img);
    const sys = k.sys;
    const d = pattern(300 * KiB, 5);
    let fd = await sys.open(`${mnt}/f`, O_CREAT | O_RDWR, 0o644);
    await writeAll(sys, fd, d, 10_000);
    t.equal(await sys.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, MiB), 0, 'fallocate 1 MiB, KEEP_SIZE, over the delayed pages');
    t.equal(await sys.close(fd), 0);
    await unmount(t, id);
    ({ id, mnt } = await mount(img, 'nodelalloc'));
    const free0 = await freeBlocks(mnt);
    fd = await sys.open(`${mnt}/g`, O_CREAT | O_RDWR, 0o644);
    await writeAll(sys, fd, d);
    t.equal(free0 - (await freeBlocks(mnt)), 75, 'nodelalloc: the 75 blocks are allocated by the writes');
    t.equal(await sys.close(fd), 0);
    await unmount(t, id);
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    await withLoopMount(img, { ro: true }, async (m) => {
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'f')), Buffer.from(d)) === 0, 'f reads back');
      t.ok(fs.statSync(path.join(m, 'f')).blocks >= 2048, 'f keeps its 1 MiB of preallocation');
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'g')), Buffer.from(d)) === 0, 'g reads back');
    });
  });

  t.test('data=ordered: a commit writes the data of the inodes its transaction gave blocks to, and only that', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: path.join(dir, 'ordered.img') });
    const { id, mnt } = await mount(img, 'nodelalloc');
    const sys = k.sys;
    const old = pattern(64 * KiB, 7);
    let fd = await sys.open(`${mnt}/old`, O_CREAT | O_RDWR, 0o644);
    await writeAll(sys, fd, old);
    t.equal(await sys.fsync(fd), 0, 'old is written and committed');
    const j = jbd2_debug.last!;
    const listed = () => [...(j.j_running_transaction?.t_inode_list.values() ?? [])]
      .map((ji) => [(ji.i_vfs_inode as { i_ino: number }).i_ino, ji.i_dirty_start, ji.i_dirty_end]);
    t.same(listed(), [], 'after the commit no inode waits for one');
    const stOld = await sys.fstat(fd);
    if (typeof stOld === 'number') throw new Error(String(stOld));
    // An overwrite of blocks that exist orders nothing.
    t.equal(await sys.pwrite64(fd, pattern(8 * KiB, 9), 4 * KiB), 8 * KiB);
    t.same(listed(), [], 'an overwrite in place adds nothing to the transaction');
    // New blocks of a new file: their range is ordered.
    const fresh = pattern(40 * KiB, 11);
    const fd2 = await sys.open(`${mnt}/new`, O_CREAT | O_RDWR, 0o644);
    await writeAll(sys, fd2, fresh);
    const stNew = await sys.fstat(fd2);
    if (typeof stNew === 'number') throw new Error(String(stNew));
    t.same(listed(), [[stNew.ino, 0, 40 * KiB - 1]], 'the new file\'s 40 KiB are on the transaction\'s inode list');
    // A truncate into a block orders the zeroed tail of that block.
    t.equal(await sys.ftruncate(fd, 10_000), 0);
    t.same(listed().find((e) => e[0] === stOld.ino), [stOld.ino, 10_000, 12 * KiB - 1], 'a truncate to 10,000 bytes orders the rest of its block');
    t.equal(await sys.close(fd), 0);
    t.equal(await sys.close(fd2), 0);
    t.equal(await sys.sync(), 0);
    t.same(listed(), [], 'sync committed them');
    await unmount(t, id);
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    await withLoopMount(img, { ro: true }, async (m) => {
      const want = Buffer.from(old);
      want.set(pattern(8 * KiB, 9), 4 * KiB);
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'old')), want.subarray(0, 10_000)) === 0, 'old: overwritten, then truncated');
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'new')), Buffer.from(fresh)) === 0, 'new reads back');
    });
  });

  t.test('the extent status cache: lookups after punch, zero range, truncate and rewrite see the tree as it is', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: path.join(dir, 'es.img') });
    const { id, mnt } = await mount(img);
    const sys = k.sys;
    const d = pattern(MiB, 21);
    const fd = await sys.open(`${mnt}/f`, O_CREAT | O_RDWR, 0o644);
    await writeAll(sys, fd, d);
    t.equal(await sys.fsync(fd), 0, 'written back: one extent');
    const st = await sys.fstat(fd);
    if (typeof st === 'number') throw new Error(String(st));
    const inode = [...allSupers]
      .flatMap((sb) => [...sb.s_inodes.values()]).find((i) => i.i_ino === st.ino && i.i_size === MiB) as ext4_inode_info;
    t.ok(inode, 'the in-core inode');
    const readAt = async (off: number, len: number) => {
      const b = new Uint8Array(len);
      t.equal(await sys.pread64(fd, b, off), len);
      return b;
    };
    // Written back, then the (clean) pages dropped: the next read maps its blocks again.
    const drop = async () => { t.equal(await sys.fsync(fd), 0); await truncate_inode_pages(inode.i_mapping, 0); };
    await drop();
    t.same(await readAt(40 * KiB, 4 * KiB), d.subarray(40 * KiB, 44 * KiB), 'a cold read');
    const es = ext4_es_lookup_extent(inode, 10);
    t.ok(es && es.es_lblk === 10 && es.es_len === 246 && es.es_status === EXTENT_STATUS_WRITTEN, 'the extent from the block read to its end is cached', { es });
    t.equal(await sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 40 * KiB, 64 * KiB), 0, 'punch 64 KiB');
    t.equal(ext4_es_lookup_extent(inode, 10), null, 'the punch removed the cached extent');
    await drop();
    t.same(await readAt(36 * KiB, 72 * KiB), Uint8Array.from([...d.subarray(36 * KiB, 40 * KiB), ...new Uint8Array(64 * KiB), ...d.subarray(104 * KiB, 108 * KiB)]),
      'the punched range reads as zeros around data');
    t.equal(await sys.lseek(fd, 40 * KiB, SEEK_DATA), 104 * KiB, 'SEEK_DATA skips the hole');
    t.equal(await sys.fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 200 * KiB, 8 * KiB), 0, 'zero range');
    await drop();
    t.same(await readAt(196 * KiB, 16 * KiB), Uint8Array.from([...d.subarray(196 * KiB, 200 * KiB), ...new Uint8Array(8 * KiB), ...d.subarray(208 * KiB, 212 * KiB)]),
      'the zeroed range reads as zeros (unwritten), its neighbours as data');
    // Rewrite into the hole: the lookup that said "hole" must not survive the allocation.
    t.equal(await sys.pwrite64(fd, d.subarray(40 * KiB, 104 * KiB), 40 * KiB), 64 * KiB);
    t.equal(await sys.ftruncate(fd, 300 * KiB), 0, 'truncate to 300 KiB');
    t.equal(await sys.ftruncate(fd, 600 * KiB), 0, 'and grow to 600 KiB (a hole past 300)');
    await drop();
    const want = Uint8Array.from(d.subarray(0, 600 * KiB));
    want.fill(0, 200 * KiB, 208 * KiB);
    want.fill(0, 300 * KiB);
    t.same(await readAt(0, 600 * KiB), want, 'the whole file as it should be');
    t.equal(await sys.close(fd), 0);
    await unmount(t, id);
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    await withLoopMount(img, { ro: true }, async (m) => {
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'f')), Buffer.from(want)) === 0, 'the host kernel reads the same bytes');
    });
  });
}
