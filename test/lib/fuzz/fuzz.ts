// The structured image fuzzer shared by test/fuzz/*.test.ts (the CI slice) and
// scripts/fuzz.ts (campaigns): small Linux-made base images per kind, a seed -> a list of
// field mutations (boundary and random values, checksums fixed up or left wrong), and a run
// of one mutated image through the kernel in-process: mount (rw, else ro), walk, read every
// file, list and read xattrs, write a little, unmount. A run fails on a "BUG" kernel message
// (an exception other than Errno inside a filesystem), a call that does not come back within
// its deadline, a throw out of the API, or a failed unmount.
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, makeVfatImage, mtoolsCopyIn, withLoopMount } from '../images.js';
import { run } from '../sh.js';
import { Rng } from './rng.js';
import { extFields, getField, setField, type Field } from './ext-fields.js';
import { fatFields } from './fat-fields.js';
import { MS_RDONLY, O_CREAT, O_DIRECTORY, O_RDONLY, O_WRONLY, type Kernel } from '../../../lib/index.js';

export const KINDS = ['ext2', 'ext3', 'ext4', 'fat12', 'fat16', 'fat32'] as const;
export type FuzzKind = typeof KINDS[number];

export interface Mutation { field: string; kind: string; off: number; size: number; be?: boolean; value: number; fixed: boolean }

/** Build (or reuse, if present) the base image of a kind in `dir`; returns its path. */
export async function baseImage(kind: FuzzKind, dir: string): Promise<string> {
  const img = path.join(dir, `base-${kind}.img`);
  if (fs.existsSync(img)) return img;
  const tmp = `${img}.tmp`;
  const tree = path.join(dir, `tree-${kind}`);
  fs.rmSync(tree, { recursive: true, force: true });
  fs.mkdirSync(path.join(tree, 'many'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'a/b/c'), { recursive: true });
  for (let i = 0; i < 220; i++) fs.writeFileSync(path.join(tree, 'many', `a-rather-long-file-name-${i}.txt`), `${i}\n`.repeat(i % 7));
  fs.writeFileSync(path.join(tree, 'a/b/c/deep.bin'), Buffer.alloc(70_000, 5));
  fs.writeFileSync(path.join(tree, 'big.bin'), Buffer.alloc(300_000, 9));
  fs.writeFileSync(path.join(tree, 'small.txt'), 'hello\n');
  if (kind.startsWith('fat')) {
    const bits = Number(kind.slice(3)) as 12 | 16 | 32;
    await makeVfatImage({ path: tmp, fat: bits, sizeMiB: bits === 12 ? 2 : bits === 16 ? 32 : 33, volumeId: '1234abcd', ...(bits === 12 ? { sectorsPerCluster: 2 } : {}) });
    await mtoolsCopyIn(tmp, tree);
  } else {
    const type = kind as 'ext2' | 'ext3' | 'ext4';
    await makeExtImage({
      path: tmp, type, sizeMiB: 8, blockSize: 1024, uuid: '6b1f3e4e-0c5a-4d51-9d35-0c1e6c2f7a10',
      extended: ['hash_seed=1a7c8e3f-2b4d-4e6f-8a9b-0c1d2e3f4a5b'],
      ...(type === 'ext4' ? { inodeSize: 256, features: ['inline_data'] } : {}),
    });
    // Written by the host kernel, so the journal holds real transactions and the tree has
    // xattrs (in-inode and in a block).
    await withLoopMount(tmp, {}, async (m) => {
      fs.cpSync(tree, m, { recursive: true });
      fs.symlinkSync('a/b/c/deep.bin', path.join(m, 'link'));
      fs.symlinkSync('x'.repeat(300), path.join(m, 'slowlink'));
      await run('setfattr', ['-n', 'user.small', '-v', 'v', path.join(m, 'small.txt')]);
      await run('setfattr', ['-n', 'user.big', '-v', 'y'.repeat(600), path.join(m, 'big.bin')]);
      await run('setfattr', ['-n', 'user.other', '-v', 'z'.repeat(300), path.join(m, 'big.bin')]);
      await run('sync', []);
    });
  }
  fs.rmSync(tree, { recursive: true, force: true });
  fs.renameSync(tmp, img);
  return img;
}

export function fieldsOf(kind: FuzzKind, img: Uint8Array): Field[] {
  return kind.startsWith('fat') ? fatFields(img) : extFields(img);
}

/** The mutations a seed makes to a base image (applied to `img` in place). */
export function mutate(kind: FuzzKind, img: Uint8Array, seed: number): Mutation[] {
  const rng = new Rng(seed);
  const fields = fieldsOf(kind, img);
  if (fields.length === 0) return [];
  const byKind = new Map<string, Field[]>();
  for (const f of fields) { const l = byKind.get(f.kind) ?? []; l.push(f); byKind.set(f.kind, l); }
  const kinds = [...byKind.keys()];
  const n = 1 + (rng.chance(0.5) ? 0 : rng.int(4));
  const out: Mutation[] = [];
  for (let i = 0; i < n; i++) {
    const f = rng.pick(byKind.get(rng.pick(kinds))!);
    const cur = getField(img, f);
    const max = 2 ** (8 * f.size) - 1;
    let value: number;
    if (f.only !== undefined) value = f.only;
    else {
      const cands = [0, 1, max, max - 1, cur + 1, cur - 1, cur * 2, rng.int(max + 1), cur ^ (1 << rng.int(8 * f.size)) >>> 0];
      if (f.size === 4) cands.push(2 ** 31, 2 ** 31 - 1);
      if (f.size >= 2) cands.push(2 ** (8 * f.size - 1));
      value = ((rng.pick(cands) % (max + 1)) + max + 1) % (max + 1);
    }
    setField(img, f, value);
    const fixed = f.fix !== undefined && (f.only !== undefined || rng.chance(0.6));
    if (fixed) f.fix!();
    out.push({ field: f.name, kind: f.kind, off: f.off, size: f.size, be: f.be, value, fixed });
  }
  return out;
}

/** Apply a recorded mutation list (for regression cases written out by hand). */
export function applyMutations(kind: FuzzKind, img: Uint8Array, muts: { field: string; value: number; fixed: boolean }[]): void {
  for (const m of muts) {
    const f = fieldsOf(kind, img).find((x) => x.name === m.field);
    if (!f) throw new Error(`no field "${m.field}" in the ${kind} base image`);
    setField(img, f, m.value);
    if (m.fixed) f.fix?.();
  }
}

export class Hang extends Error {}

/** A call that must come back within `ms`. */
export async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const dead = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Hang(`${what}: no answer in ${ms} ms (hang)`)), ms); });
  try { return await Promise.race([p, dead]); } finally { clearTimeout(timer); }
}

export interface RunResult {
  mounted: 'rw' | 'ro' | 'no';
  calls: number;
  errors: number;
  /** Why it failed; empty = passed. */
  failures: string[];
}

export const BUG_RE = /BUG|TypeError|RangeError|ReferenceError|threw|Maximum call stack/;

/**
 * One mutated image through the kernel. `messages` is the array the kernel's print goes to.
 * The deadline is per call; a Hang rejects out of here (the kernel is then unusable).
 */
export async function runImage(k: Kernel, fsType: string, img: Uint8Array, messages: string[], seed: number, callMs = 10_000): Promise<RunResult> {
  const res: RunResult = { mounted: 'no', calls: 0, errors: 0, failures: [] };
  const before = messages.length;
  const sys = k.sys;
  const c = async <T>(what: string, p: Promise<T>): Promise<T> => {
    res.calls++;
    const r = await within(what, p, callMs);
    if (typeof r === 'number' && r < 0) res.errors++;
    return r;
  };
  const id = await c('diskAdd', k.diskAdd({ memory: img }));
  if (id < 0) { res.failures.push(`diskAdd: ${id}`); return res; }
  let mnt = await c('mount rw', k.mountDev(id, 0, fsType, 0, ''));
  if (typeof mnt === 'string') res.mounted = 'rw';
  else {
    mnt = await c('mount ro', k.mountDev(id, 0, fsType, MS_RDONLY, ''));
    if (typeof mnt === 'string') res.mounted = 'ro';
  }
  if (typeof mnt === 'string') {
    const rng = new Rng(seed ^ 0x5bd1e995);
    const files: string[] = [], dirs: string[] = [];
    const buf = new Uint8Array(65536);
    let budget = 3000;
    const walk = async (dir: string, depth: number): Promise<void> => {
      const fd = await c(`open ${dir}`, sys.open(dir, O_RDONLY | O_DIRECTORY, 0));
      if (fd < 0) return;
      const names: string[] = [];
      for (let i = 0; i < 64; i++) {
        const ents = await c(`getdents ${dir}`, sys.getdents64(fd, 32768));
        if (typeof ents === 'number' || ents.length === 0) break;
        for (const e of ents) if (e.name !== '.' && e.name !== '..') names.push(e.name);
      }
      await c('close', sys.close(fd));
      for (const name of names) {
        if (--budget < 0) return;
        const p = `${dir}/${name}`;
        const st = await c(`lstat ${p}`, sys.lstat(p));
        if (typeof st === 'number') continue;
        const type = st.mode & 0o170000;
        if (type === 0o040000) { dirs.push(p); if (depth < 6) await walk(p, depth + 1); continue; }
        if (type === 0o120000) { await c(`readlink ${p}`, sys.readlink(p)); continue; }
        const xs = await c(`llistxattr ${p}`, sys.llistxattr(p));
        if (typeof xs !== 'number') for (const x of xs.slice(0, 4)) await c(`lgetxattr ${p} ${x}`, sys.lgetxattr(p, x));
        if (type !== 0o100000) continue;
        files.push(p);
        const f = await c(`open ${p}`, sys.open(p, O_RDONLY, 0));
        if (f < 0) continue;
        for (let pos = 0; pos < 4 * 1024 * 1024;) {
          const n = await c(`read ${p}`, sys.pread64(f, buf, pos));
          if (n <= 0) break;
          pos += n;
        }
        await c('close', sys.close(f));
      }
    };
    await walk(mnt, 0);
    await c('statfs', sys.statfs(mnt));
    if (res.mounted === 'rw') {
      const data = new Uint8Array(9000).fill(0x41);
      for (let i = 0; i < 3; i++) {
        const p = `${mnt}/fuzz-new-${i}`;
        const fd = await c(`create ${p}`, sys.open(p, O_WRONLY | O_CREAT, 0o644));
        if (fd >= 0) { await c(`write ${p}`, sys.pwrite64(fd, data.subarray(0, rng.int(data.length)), rng.int(3000))); await c('fsync', sys.fsync(fd)); await c('close', sys.close(fd)); }
      }
      await c('mkdir', sys.mkdir(`${mnt}/fuzz-dir`, 0o755));
      if (dirs.length) await c('mkdir in', sys.mkdir(`${rng.pick(dirs)}/fuzz-sub`, 0o755));
      for (let i = 0; i < Math.min(6, files.length); i++) {
        const p = rng.pick(files);
        switch (rng.int(5)) {
          case 0: await c(`unlink ${p}`, sys.unlink(p)); break;
          case 1: await c(`rename ${p}`, sys.rename(p, `${mnt}/fuzz-moved-${i}`)); break;
          case 2: await c(`truncate ${p}`, sys.truncate(p, rng.int(100_000))); break;
          case 3: await c(`setxattr ${p}`, sys.lsetxattr(p, 'user.fuzz', data.subarray(0, rng.int(2000)), 0)); break;
          default: {
            const fd = await c(`open ${p}`, sys.open(p, O_WRONLY, 0));
            if (fd >= 0) { await c(`write ${p}`, sys.pwrite64(fd, data.subarray(0, 3000), rng.int(200_000))); await c('close', sys.close(fd)); }
          }
        }
      }
      if (dirs.length) await c('rmdir', sys.rmdir(rng.pick(dirs)));
      await c('sync', sys.sync());
    }
    const u = await c('umount', k.umountDev(id, 0));
    if (u !== 0) res.failures.push(`umount: ${u}`);
  }
  const r = await c('diskRemove', k.diskRemove(id));
  if (r !== 0) res.failures.push(`diskRemove: ${r}`);
  const bugs = messages.slice(before).filter((m) => BUG_RE.test(m));
  if (bugs.length) res.failures.push(...bugs.slice(0, 4).map((b) => `kernel: ${b.trim()}`));
  return res;
}

export const fsTypeOf = (kind: FuzzKind): string => (kind.startsWith('fat') ? 'vfat' : kind);
