/*
 * Inode-table read-ahead (__ext4_get_inode_loc, inode_readahead_blks=): a cold stat of every
 * file of a large directory reads the inode table in windows of inode_readahead_blks blocks
 * instead of one request per block, and gives the same answers as the host kernel. The
 * option takes 0 or a power of two, as Linux's does.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, EINVAL, type Kernel } from '../../lib/index.js';
import { allSupers } from '../../lib/kernel/fs/fs-writeback.js';
import { bdevQueue } from '../../lib/kernel/block/bdev.js';

const skip = whyNot(['mke2fs', 'losetup', 'mount'], { root: true });
const N = 2000;

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-inode-ra');
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(src, 'd', `f${i}`), 'x'.repeat(i % 97));
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64 }); });
  t.teardown(async () => { await k?.halt(); });

  /** Mount, stat every file cold, count the block requests; the sizes seen. */
  async function coldStats(img: string, opts: string): Promise<{ requests: number; sizes: Map<string, number> }> {
    const id = await k.diskAdd({ path: img, readOnly: true });
    const mnt = await k.mountDev(id, 0, 'ext4', 1 /* MS_RDONLY */, opts);
    if (typeof mnt !== 'string') throw new Error(`mount: ${mnt}`);
    const sb = [...allSupers].find((s) => s.s_type?.name === 'ext4')!;
    const q = bdevQueue(sb.s_bdev!);
    const before = q.stats.requests;
    const sizes = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const st = await k.sys.lstat(`${mnt}/d/f${i}`);
      if (typeof st === 'number') throw new Error(`lstat f${i}: ${st}`);
      sizes.set(`f${i}`, st.size);
    }
    const requests = q.stats.requests - before;
    t.equal(await k.umountDev(id, 0), 0);
    await k.diskRemove(id);
    return { requests, sizes };
  }

  t.test('a cold stat of 2,000 files: the inode table comes in windows, the answers are the host\'s', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, fromDir: src, path: path.join(dir, 'd.img') });
    const none = await coldStats(img, 'inode_readahead_blks=0');
    const ra = await coldStats(img, '');
    const tableBlocks = Math.ceil(N * 256 / 4096);
    t.ok(none.requests >= tableBlocks, `without read-ahead: ${none.requests} requests (>= ${tableBlocks} inode-table blocks)`);
    t.ok(ra.requests * 4 <= none.requests, `with the default (32 blocks): ${ra.requests} requests`);
    t.same(ra.sizes, none.sizes, 'the same answers either way');
    const host = new Map<string, number>();
    await withLoopMount(img, { ro: true }, async (m) => {
      for (let i = 0; i < N; i++) host.set(`f${i}`, fs.lstatSync(path.join(m, 'd', `f${i}`)).size);
    });
    t.same(ra.sizes, host, 'and the host kernel\'s');
  });

  t.test('inode_readahead_blks takes 0 or a power of two', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 4096, path: path.join(dir, 'o.img') });
    const id = await k.diskAdd({ path: img, readOnly: true });
    t.equal(await k.mountDev(id, 0, 'ext4', 1, 'inode_readahead_blks=3'), -EINVAL, '3 is refused with EINVAL');
    const mnt = await k.mountDev(id, 0, 'ext4', 1, 'inode_readahead_blks=64');
    t.type(mnt, 'string', '64 mounts');
    t.equal(await k.umountDev(id, 0), 0);
    await k.diskRemove(id);
  });
}
