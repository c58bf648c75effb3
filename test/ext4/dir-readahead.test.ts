/*
 * Directory read-ahead (ext4_readdir's page_cache_sync_readahead on the block device's page
 * cache): reading many small directories whose blocks lie near each other, in the parent's
 * (hash) order, costs far fewer block requests than one per directory, and lists exactly
 * what the host kernel lists.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_DIRECTORY, O_RDONLY, type Kernel } from '../../lib/index.js';
import { allSupers } from '../../lib/kernel/fs/fs-writeback.js';
import { bdevQueue } from '../../lib/kernel/block/bdev.js';

const skip = whyNot(['mke2fs', 'losetup', 'mount'], { root: true });
const N = 1500;

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-dir-ra');
  const src = path.join(dir, 'src');
  for (let i = 0; i < N; i++) {
    fs.mkdirSync(path.join(src, 'top', `d${i}`), { recursive: true });
    fs.writeFileSync(path.join(src, 'top', `d${i}`, `f${i % 7}`), '');
  }
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64 }); });
  t.teardown(async () => { await k?.halt(); });

  async function names(p: string): Promise<string[]> {
    const fd = await k.sys.open(p, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) throw new Error(`open ${p}: ${fd}`);
    const out: string[] = [];
    for (;;) {
      const e = await k.sys.getdents64(fd, 32768);
      if (typeof e === 'number') throw new Error(`getdents64 ${p}: ${e}`);
      if (e.length === 0) break;
      for (const x of e) if (x.name !== '.' && x.name !== '..') out.push(x.name);
    }
    await k.sys.close(fd);
    return out.sort();
  }

  t.test(`reading ${N} one-block directories: block requests come in windows, the lists are the host's`, async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 1024, fromDir: src, path: path.join(dir, 'd.img') });
    const id = await k.diskAdd({ path: img, readOnly: true });
    const mnt = await k.mountDev(id, 0, 'ext4', 1 /* MS_RDONLY */, '');
    if (typeof mnt !== 'string') throw new Error(`mount: ${mnt}`);
    const sb = [...allSupers].find((s) => s.s_type?.name === 'ext4')!;
    const q = bdevQueue(sb.s_bdev!);
    const topFd = await k.sys.open(`${mnt}/top`, O_RDONLY | O_DIRECTORY, 0);
    const order = await k.sys.getdents64(topFd, 1 << 20);
    await k.sys.close(topFd);
    if (typeof order === 'number') throw new Error(`getdents64 top: ${order}`);
    // The parent's own order (hash order): not the order the blocks lie in.
    const children = order.map((e) => e.name).filter((n) => n !== '.' && n !== '..');
    t.equal(children.length, N, `the parent lists ${N} directories`);
    // Inodes and dentries first, so that what is counted below is the directory blocks.
    for (const c of children) {
      const st = await k.sys.lstat(`${mnt}/top/${c}`);
      if (typeof st === 'number') throw new Error(`lstat ${c}: ${st}`);
    }
    const before = q.stats.requests;
    const ours = new Map<string, string[]>();
    for (const c of children) ours.set(c, await names(`${mnt}/top/${c}`));
    const requests = q.stats.requests - before;
    t.ok(requests * 4 <= N, `${N} directory blocks read in ${requests} requests (one each without read-ahead)`);
    t.equal(await k.umountDev(id, 0), 0);
    await k.diskRemove(id);
    const host = new Map<string, string[]>();
    await withLoopMount(img, { ro: true }, async (m) => {
      for (const c of children) host.set(c, fs.readdirSync(path.join(m, 'top', c)).sort());
    });
    t.same(ours, host, 'every directory lists what the host kernel lists');
  });
}
