// Hostile images on the write side: a small Linux-written image (ext4 without a journal,
// with and without metadata_csum, and ext2) has random bytes of its metadata overwritten,
// then is mounted read-write and put through a round of ordinary calls (walk and read
// everything, create, write, mkdir, rename, unlink, truncate, rmdir), then unmounted. Errors
// are expected; what must never happen is a hang (every call has a deadline), a JavaScript
// exception inside the kernel (a "BUG:" message), or a failed unmount.
//
// LKL_TEST_WRITE_FUZZ_SEEDS (default 12 per kind) sizes the run.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, type ExtImageOptions } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_RDONLY, O_WRONLY, O_DIRECTORY, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'losetup', 'mount'], { root: true });
const SEEDS = Number(process.env.LKL_TEST_WRITE_FUZZ_SEEDS ?? 12);

class Rng {
  private x: number;
  constructor(seed: number) { this.x = (seed * 2654435761) >>> 0 || 1; }
  next(): number { let x = this.x; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.x = x >>> 0; return this.x; }
  int(n: number): number { return this.next() % n; }
}

/** A call that must come back within `ms` (a hang is a failure, not a wait). */
async function within<T>(what: string, p: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const dead = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms (hang)`)), ms); });
  try { return await Promise.race([p, dead]); } finally { clearTimeout(timer); }
}

async function exercise(k: Kernel, mnt: string, rng: Rng): Promise<number> {
  const sys = k.sys;
  let calls = 0;
  const c = async <T>(what: string, p: Promise<T>) => { calls++; return within(what, p); };
  const walk = async (dir: string, depth: number): Promise<string[]> => {
    const out: string[] = [];
    const fd = await c(`open ${dir}`, sys.open(dir, O_RDONLY | O_DIRECTORY, 0));
    if (fd < 0) return out;
    for (let i = 0; i < 50; i++) {
      const ents = await c(`getdents ${dir}`, sys.getdents64(fd, 16384));
      if (typeof ents === 'number' || ents.length === 0) break;
      for (const e of ents) if (e.name !== '.' && e.name !== '..') out.push(`${dir}/${e.name}`);
    }
    await c('close', sys.close(fd));
    const all = [...out];
    if (depth < 4) for (const p of out) {
      const st = await c(`lstat ${p}`, sys.lstat(p));
      if (typeof st !== 'number' && (st.mode & 0o170000) === 0o040000) all.push(...await walk(p, depth + 1));
      else if (typeof st !== 'number' && (st.mode & 0o170000) === 0o100000) {
        const f = await c(`open ${p}`, sys.open(p, O_RDONLY, 0));
        if (f >= 0) { await c(`read ${p}`, sys.pread64(f, new Uint8Array(65536), 0)); await c('close', sys.close(f)); }
      }
    }
    return all;
  };
  const paths = await walk(mnt, 0);
  const buf = new Uint8Array(20_000).fill(7);
  for (let i = 0; i < 12; i++) {
    const p = `${mnt}/fuzz-new-${i}`;
    const fd = await c(`create ${p}`, sys.open(p, O_WRONLY | O_CREAT, 0o644));
    if (fd >= 0) { await c(`write ${p}`, sys.pwrite64(fd, buf.subarray(0, rng.int(buf.length)), rng.int(5000))); await c('close', sys.close(fd)); }
    await c('mkdir', sys.mkdir(`${mnt}/fuzz-dir-${i}`, 0o755));
  }
  for (let i = 0; i < Math.min(20, paths.length); i++) {
    const p = paths[rng.int(paths.length)]!;
    switch (rng.int(5)) {
      case 0: await c(`unlink ${p}`, sys.unlink(p)); break;
      case 1: await c(`rename ${p}`, sys.rename(p, `${mnt}/fuzz-moved-${i}`)); break;
      case 2: await c(`truncate ${p}`, sys.truncate(p, rng.int(10_000))); break;
      case 3: await c(`rmdir ${p}`, sys.rmdir(p)); break;
      default: {
        const fd = await c(`open ${p}`, sys.open(p, O_WRONLY, 0));
        if (fd >= 0) { await c(`write ${p}`, sys.pwrite64(fd, buf.subarray(0, 3000), rng.int(100_000))); await c('close', sys.close(fd)); }
      }
    }
  }
  await c('sync', sys.sync());
  return calls;
}

interface Kind { name: string; fsType: 'ext2' | 'ext4'; image: Omit<ExtImageOptions, 'dir' | 'path'> }
const KINDS: Kind[] = [
  { name: 'ext4 ^has_journal', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 8, blockSize: 1024, features: ['^has_journal'] } },
  { name: 'ext4 ^has_journal ^metadata_csum', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 8, blockSize: 1024, features: ['^has_journal', '^metadata_csum'] } },
  { name: 'ext2', fsType: 'ext2', image: { type: 'ext2', sizeMiB: 8, blockSize: 1024 } },
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-wfuzz');
  const messages: string[] = [];
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64, print: (m) => messages.push(m) }); });
  t.teardown(async () => { await k?.halt(); });
  for (const kind of KINDS) {
    t.test(`${kind.name}: ${SEEDS} images with corrupted metadata, mounted read-write and used`, async (t) => {
      const base = path.join(dir, `${kind.name.replace(/\W+/g, '_')}.img`);
      await makeExtImage({ ...kind.image, path: base });
      await withLoopMount(base, {}, async (m) => {
        fs.mkdirSync(path.join(m, 'd/e'), { recursive: true });
        for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(m, 'd', `name-${i}`), `x${i}`.repeat(i % 50));
        fs.writeFileSync(path.join(m, 'big'), Buffer.alloc(300_000, 3));
        fs.symlinkSync('d/name-1', path.join(m, 'link'));
      });
      const orig = fs.readFileSync(base);
      let mounted = 0, calls = 0;
      for (let seed = 1; seed <= SEEDS; seed++) {
        const rng = new Rng(seed * 7919 + kind.name.length);
        const img = fs.readFileSync(base);
        // The metadata of a small image sits in its first ~600 KiB: superblock, descriptors,
        // bitmaps, inode tables, directory and extent blocks.
        const n = 4 + rng.int(60);
        for (let i = 0; i < n; i++) img[1024 + rng.int(600 * 1024)] = rng.int(256);
        const p = path.join(dir, `fuzz-${seed}.img`);
        fs.writeFileSync(p, img);
        const before = messages.length;
        const id = await within('diskAdd', k.diskAdd({ path: p }));
        const mnt = await within('mount', k.mountDev(id, 0, kind.fsType, 0, ''));
        if (typeof mnt === 'string') {
          mounted++;
          calls += await exercise(k, mnt, rng);
          const u = await within('umount', k.umountDev(id, 0));
          if (u !== 0) t.fail(`seed ${seed}: unmount failed (${u})`);
        } else {
          await within('diskRemove', k.diskRemove(id));
        }
        const bugs = messages.slice(before).filter((m) => /BUG|TypeError|RangeError|threw/.test(m));
        if (bugs.length) t.fail(`seed ${seed}: the kernel hit a bug`, { bugs: bugs.slice(0, 5) });
        fs.rmSync(p, { force: true });
      }
      t.pass(`${SEEDS} corrupted images: ${mounted} mounted read-write, ${calls} calls, no hang, no kernel bug`);
      t.same(fs.readFileSync(base).equals(orig), true, 'the pristine copy was not touched');
    });
  }
}
