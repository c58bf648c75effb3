// A model-based exerciser of the ext4 write side: seeded random sequences of system calls
// (create, pwrite at random offsets, append, truncate up and down, unlink, mkdir, rmdir,
// rename of files and directories — also over existing files —, link, symlink) applied by
// lkl-ts and to an in-memory model of the tree. Two sequences run at once on disjoint
// subtrees, so the kernel interleaves their allocations. Every errno is checked against
// what the model says the call must return. At the end: every file read back through lkl-ts
// equals the model; unmount; `e2fsck -fn` clean; the host kernel (loop mount) reads exactly
// the model's tree (types, sizes, contents, link counts, symlink targets).
//
// LKL_TEST_EXERCISER_SEEDS (default 3 per kind) and LKL_TEST_EXERCISER_OPS (default 400 per
// sequence) size the run; scripts/ext4-exerciser.sh runs long campaigns.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { makeExtImage, withLoopMount, e2fsckClean, type ExtImageOptions } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_WRONLY, O_RDONLY, O_APPEND, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount'], { root: true });
const SEEDS = Number(process.env.LKL_TEST_EXERCISER_SEEDS ?? 3);
const OPS = Number(process.env.LKL_TEST_EXERCISER_OPS ?? 400);
const FIRST_SEED = Number(process.env.LKL_TEST_EXERCISER_FIRST_SEED ?? 1);

/** xorshift32: the only randomness, so a seed reproduces a run. */
class Rng {
  private x: number;
  constructor(seed: number) { this.x = (seed * 2654435761) >>> 0 || 1; }
  next(): number { let x = this.x; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.x = x >>> 0; return this.x; }
  int(n: number): number { return this.next() % n; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  chance(p: number): boolean { return this.next() / 2 ** 32 < p; }
}

type Node =
  | { type: 'file'; data: Uint8Array; id: number }
  | { type: 'dir' }
  | { type: 'symlink'; target: string };

/** The model: path -> node; hard links share the node object. */
class Model {
  nodes = new Map<string, Node>();
  constructor(root: string) { this.nodes.set(root, { type: 'dir' }); }
  children(dir: string): string[] { return [...this.nodes.keys()].filter((p) => path.dirname(p) === dir && p !== dir); }
  linksOf(n: Node): number {
    if (n.type !== 'file') return 1;
    let c = 0;
    for (const v of this.nodes.values()) if (v === n) c++;
    return c;
  }
}

const ENOENT = -2, EEXIST = -17, ENOTEMPTY = -39, EISDIR = -21, ENOTDIR = -20, EINVAL = -22;

function bytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = rng.next() || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}

let nextId = 1;

/** One random sequence of `ops` calls under `base` (a directory of its own). */
async function sequence(k: Kernel, mnt: string, base: string, model: Model, rng: Rng, ops: number, bs: number, log: string[]): Promise<void> {
  const sys = k.sys;
  const abs = (p: string) => `${mnt}/${p}`;
  const expect = (what: string, got: number, want: number) => {
    if (got !== want && !(want === 0 && got >= 0)) throw new Error(`${what}: got ${got}, the model says ${want}\n${log.slice(-15).join('\n')}`);
  };
  const paths = () => [...model.nodes.keys()].filter((p) => p === base || p.startsWith(base + '/'));
  const dirs = () => paths().filter((p) => model.nodes.get(p)!.type === 'dir');
  const files = () => paths().filter((p) => model.nodes.get(p)!.type === 'file');
  const freshName = (d: string) => `${d}/${rng.pick(['f', 'file-with-a-much-longer-name-to-fill-blocks-', 'x'])}${rng.int(60)}`;
  for (let i = 0; i < ops; i++) {
    const r = rng.int(100);
    if (r < 25) {
      // create or overwrite-extend with pwrite at a random offset
      const p = rng.chance(0.5) && files().length ? rng.pick(files()) : freshName(rng.pick(dirs()));
      const existing = model.nodes.get(p);
      const far = rng.chance(0.1);
      const off = far ? rng.int(64) * bs * 37 + rng.int(bs) : rng.int(3 * bs);
      const len = rng.chance(0.2) ? rng.int(200 * 1024) : rng.int(3 * bs);
      if (existing && existing.type === 'symlink') continue; // open would follow it: not this op's business
      log.push(`write ${p} @${off} +${len}`);
      const fd = await sys.open(abs(p), O_WRONLY | O_CREAT, 0o644);
      if (existing && existing.type === 'dir') { expect(`open ${p}`, fd, EISDIR); continue; }
      expect(`open ${p}`, fd, 0);
      const data = bytes(rng, len);
      let done = 0;
      while (done < len) {
        const n = await sys.pwrite64(fd, data.subarray(done), off + done);
        expect(`pwrite ${p}`, n, 0);
        done += n;
      }
      await sys.close(fd);
      const node = existing && existing.type === 'file' ? existing : { type: 'file' as const, data: new Uint8Array(0), id: nextId++ };
      if (len > 0 || !existing) {
        const size = Math.max(node.data.length, len > 0 ? off + len : 0);
        const nd = new Uint8Array(size);
        nd.set(node.data);
        if (len > 0) nd.set(data, off);
        node.data = nd;
      }
      model.nodes.set(p, node);
    } else if (r < 32 && files().length) {
      const p = rng.pick(files());
      const node = model.nodes.get(p) as Extract<Node, { type: 'file' }>;
      const len = rng.int(2 * bs);
      log.push(`append ${p} +${len}`);
      const fd = await sys.open(abs(p), O_WRONLY | O_APPEND, 0);
      expect(`open ${p}`, fd, 0);
      const data = bytes(rng, len);
      const n = await sys.write(fd, data);
      expect(`append ${p}`, n, len === 0 ? 0 : 0);
      await sys.close(fd);
      const nd = new Uint8Array(node.data.length + len);
      nd.set(node.data); nd.set(data, node.data.length);
      node.data = nd;
    } else if (r < 42 && files().length) {
      const p = rng.pick(files());
      const node = model.nodes.get(p) as Extract<Node, { type: 'file' }>;
      const size = rng.chance(0.3) ? 0 : rng.chance(0.5) ? rng.int(node.data.length + 1) : node.data.length + rng.int(5 * bs);
      log.push(`truncate ${p} ${size}`);
      expect(`truncate ${p}`, await sys.truncate(abs(p), size), 0);
      const nd = new Uint8Array(size);
      nd.set(node.data.subarray(0, Math.min(size, node.data.length)));
      node.data = nd;
    } else if (r < 55 && paths().length > 1) {
      const p = rng.pick(paths().filter((x) => x !== base));
      const n = model.nodes.get(p)!;
      if (n.type === 'dir') {
        log.push(`rmdir ${p}`);
        const empty = model.children(p).length === 0;
        expect(`rmdir ${p}`, await sys.rmdir(abs(p)), empty ? 0 : ENOTEMPTY);
        if (empty) model.nodes.delete(p);
      } else {
        log.push(`unlink ${p}`);
        expect(`unlink ${p}`, await sys.unlink(abs(p)), 0);
        model.nodes.delete(p);
      }
    } else if (r < 65) {
      const p = freshName(rng.pick(dirs()));
      log.push(`mkdir ${p}`);
      const exists = model.nodes.has(p);
      expect(`mkdir ${p}`, await sys.mkdir(abs(p), 0o755), exists ? EEXIST : 0);
      if (!exists) model.nodes.set(p, { type: 'dir' });
    } else if (r < 82 && paths().length > 1) {
      const from = rng.pick(paths().filter((x) => x !== base));
      const n = model.nodes.get(from)!;
      const toDir = rng.pick(dirs());
      const to = rng.chance(0.3) && files().length ? rng.pick(files()) : freshName(toDir);
      log.push(`rename ${from} -> ${to}`);
      const target = model.nodes.get(to);
      let want = 0;
      if (n.type === 'dir' && (to === from || to.startsWith(from + '/'))) want = to === from ? 0 : EINVAL;
      else if (from.startsWith(to + '/')) want = ENOTEMPTY; // the target is an ancestor of the source (lock_rename's trap)
      else if (target && target.type === 'dir' && n.type !== 'dir') want = EISDIR;
      else if (target && target.type !== 'dir' && n.type === 'dir') want = ENOTDIR;
      else if (target && target.type === 'dir' && model.children(to).length) want = ENOTEMPTY;
      expect(`rename ${from} ${to}`, await sys.rename(abs(from), abs(to)), want);
      if (want === 0 && from !== to && !(target && target === n)) {
        const moved = [...model.nodes.entries()].filter(([q]) => q === from || q.startsWith(from + '/'));
        if (target) for (const q of [...model.nodes.keys()]) if (q === to || q.startsWith(to + '/')) model.nodes.delete(q);
        for (const [q] of moved) model.nodes.delete(q);
        for (const [q, v] of moved) model.nodes.set(to + q.slice(from.length), v);
      } else if (want === 0 && target === n && from !== to) {
        // rename between two links of one inode: POSIX says nothing happens.
      }
    } else if (r < 90 && files().length) {
      const from = rng.pick(files());
      const to = freshName(rng.pick(dirs()));
      log.push(`link ${from} -> ${to}`);
      const exists = model.nodes.has(to);
      expect(`link ${to}`, await sys.link(abs(from), abs(to)), exists ? EEXIST : 0);
      if (!exists) model.nodes.set(to, model.nodes.get(from)!);
    } else {
      const to = freshName(rng.pick(dirs()));
      const target = rng.chance(0.5) ? 'short-target' : 'long/'.repeat(rng.int(40) + 12);
      log.push(`symlink ${to}`);
      const exists = model.nodes.has(to);
      expect(`symlink ${to}`, await sys.symlink(target, abs(to)), exists ? EEXIST : 0);
      if (!exists) model.nodes.set(to, { type: 'symlink', target });
    }
  }
}

async function readAll(k: Kernel, p: string, size: number): Promise<Uint8Array> {
  const fd = await k.sys.open(p, O_RDONLY, 0);
  if (fd < 0) throw new Error(`open ${p}: ${fd}`);
  const out = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = await k.sys.pread64(fd, out.subarray(off), off);
    if (n <= 0) throw new Error(`pread ${p} at ${off}: ${n}`);
    off += n;
  }
  await k.sys.close(fd);
  return out;
}

const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

interface Kind { name: string; fsType: 'ext2' | 'ext4'; image: Omit<ExtImageOptions, 'dir' | 'path'>; bs: number; opts?: string }
const KINDS: Kind[] = [
  { name: 'ext4 ^has_journal 1k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 96, blockSize: 1024, features: ['^has_journal'] }, bs: 1024 },
  { name: 'ext4 ^has_journal 4k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 256, blockSize: 4096, features: ['^has_journal'] }, bs: 4096 },
  { name: 'ext2 1k', fsType: 'ext2', image: { type: 'ext2', sizeMiB: 96, blockSize: 1024 }, bs: 1024 },
  { name: 'ext4 with a journal (jbd2) 4k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 256, blockSize: 4096 }, bs: 4096 },
  { name: 'ext4 data=journal 1k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 96, blockSize: 1024 }, bs: 1024, opts: 'data=journal' },
  { name: 'ext4 ^has_journal inline_data', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: 128, blockSize: 4096, features: ['^has_journal', 'inline_data'] }, bs: 4096 },
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-exercise');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128 }); });
  t.teardown(async () => { await k?.halt(); });
  for (const kind of KINDS) {
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
      t.test(`${kind.name}, seed ${seed}: ${2 * OPS} calls in two interleaved sequences`, async (t) => {
        const img = path.join(dir, `${kind.name.replace(/\W+/g, '_')}-${seed}.img`);
        await makeExtImage({ ...kind.image, path: img });
        const id = await k.diskAdd({ path: img });
        const mnt = await k.mountDev(id, 0, kind.fsType, 0, kind.opts ?? '');
        if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
        const model = new Model('.');
        const log: string[] = [];
        try {
          for (const b of ['a', 'b']) { t.equal(await k.sys.mkdir(`${mnt}/${b}`, 0o755), 0); model.nodes.set(b, { type: 'dir' }); }
          const rs = await Promise.allSettled([
            sequence(k, mnt, 'a', model, new Rng(seed * 2), OPS, kind.bs, log),
            sequence(k, mnt, 'b', model, new Rng(seed * 2 + 1), OPS, kind.bs, log),
          ]);
          for (const r of rs) if (r.status === 'rejected') throw r.reason;
          t.pass('every call returned what the model says');
          let bad = 0;
          for (const [p, n] of model.nodes) {
            if (n.type !== 'file') continue;
            const got = await readAll(k, `${mnt}/${p}`, n.data.length);
            if (sha(got) !== sha(n.data)) { bad++; t.comment(`content differs: ${p}`); }
          }
          t.equal(bad, 0, 'every file reads back through lkl-ts as the model has it');
        } finally {
          t.equal(await k.umountDev(id, 0), 0, 'unmounted');
        }
        const ck = await e2fsckClean(img);
        t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output.slice(0, 4000), log: log.slice(-30) });
        await withLoopMount(img, { ro: true }, async (m) => {
          const seen = new Map<string, string>();
          const walk = (rel: string) => {
            for (const name of fs.readdirSync(path.join(m, rel))) {
              const r = rel === '.' ? name : `${rel}/${name}`;
              if (r === 'lost+found') continue;
              const st = fs.lstatSync(path.join(m, r));
              if (st.isDirectory()) { seen.set(r, 'dir'); walk(r); }
              else if (st.isSymbolicLink()) seen.set(r, `symlink ${fs.readlinkSync(path.join(m, r))}`);
              else seen.set(r, `file ${st.size} ${st.nlink} ${sha(fs.readFileSync(path.join(m, r)))}`);
            }
          };
          walk('.');
          const want = new Map<string, string>();
          for (const [p, n] of model.nodes) {
            if (p === '.') continue;
            want.set(p, n.type === 'dir' ? 'dir' : n.type === 'symlink' ? `symlink ${n.target}` :
              `file ${n.data.length} ${model.linksOf(n)} ${sha(n.data)}`);
          }
          const diffs: string[] = [];
          for (const [p, v] of want) if (seen.get(p) !== v) diffs.push(`${p}: model ${v}, host ${seen.get(p) ?? '(absent)'}`);
          for (const p of seen.keys()) if (!want.has(p)) diffs.push(`${p}: host has it, the model does not`);
          t.same(diffs.slice(0, 20), [], `the host kernel reads the model's tree (${want.size} entries)`);
        });
      });
    }
  }
}
