// A model-based random exerciser of the vfat driver: thousands of create / write /
// truncate / rename / unlink / mkdir / rmdir / fsync / read operations on a small FAT16 and
// FAT12 volume, each result (or errno) compared with an in-memory model of a
// case-insensitive filesystem; half-way and at the end the volume is unmounted, checked
// with fsck.vfat -n and copied out with mtools, and that tree must equal the model.
//
// VFAT_SEED=<n> replays a run; VFAT_OPS=<n> changes its length. Debugging aids:
// VFAT_TRACE=1 prints every operation; VFAT_CHECK_EVERY=<n> unmounts and checks every n
// operations; VFAT_SYNC_CHECK_EVERY=<n> (from VFAT_SYNC_CHECK_FROM=<op>) syncs and runs
// fsck.vfat on the mounted image, caches kept warm; VFAT_KEEP=<path> keeps a bad image.
import t from 'tap';
import type { Test } from 'tap';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  O_CREAT, O_EXCL, O_RDONLY, O_WRONLY, O_RDWR, O_DIRECTORY, EEXIST, EINVAL, EISDIR, ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY,
} from '../../lib/index.js';
import { bootWithImage, fsckProblems, fsckVfat, lklTree, mkfs, mtoolsTree, scratchDir, treeDiff, type Booted, type Tree } from './driver-util.js';

const SEED = Number(process.env.VFAT_SEED ?? 20261123);
const OPS = Number(process.env.VFAT_OPS ?? 6000);
/** VFAT_CHECK_EVERY=<n>: also unmount and check every n operations (to find a bad one). */
const CHECK_EVERY = Number(process.env.VFAT_CHECK_EVERY ?? 0);
/** VFAT_SYNC_CHECK_EVERY=<n>: sync and fsck the image while mounted every n operations. */
const SYNC_CHECK_EVERY = Number(process.env.VFAT_SYNC_CHECK_EVERY ?? 0);

class Rng {
  constructor(private s: number) {}
  next(): number { this.s = (this.s * 1664525 + 1013904223) >>> 0; return this.s; }
  int(n: number): number { return Math.floor((this.next() / 2 ** 32) * n); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  chance(p: number): boolean { return this.next() / 2 ** 32 < p; }
}

interface MFile { kind: 'f'; data: Uint8Array }
interface MDir { kind: 'd'; children: Map<string, { name: string; node: MNode }> }
type MNode = MFile | MDir;

const asciiUpper = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
const fold = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());
const newDir = (): MDir => ({ kind: 'd', children: new Map() });

// Distinct under case folding: a directory must never be reached under two spellings,
// because our dcache is case-sensitive and would hold two dentries for one directory
// (lock_rename would then lock its inode twice). Files are reached under other cases.
const BASES = ['a', 'B', 'readme.txt', 'Long File Name Number One.txt', 'x.y.z', 'été.doc', 'Ünïcode',
  'data', 'file with  spaces', 'k'.repeat(40) + '.dat', 'Mixed.Case', 'ab~1', 'notes', 'Sub Dir', 'q'];

class Model {
  root = newDir();
  /** Resolve a path's parent and last name: errno or the parent dir. */
  walk(parts: string[]): { dir: MDir } | { err: number } {
    let d: MDir = this.root;
    for (const p of parts.slice(0, -1)) {
      const c = d.children.get(fold(p));
      if (!c) return { err: ENOENT };
      if (c.node.kind !== 'd') return { err: ENOTDIR };
      d = c.node;
    }
    return { dir: d };
  }
  get(parts: string[]): { name: string; node: MNode } | null {
    const w = this.walk(parts);
    if ('err' in w) return null;
    return w.dir.children.get(fold(parts[parts.length - 1]!)) ?? null;
  }
  dirs(d: MDir = this.root, prefix: string[] = [], out: string[][] = []): string[][] {
    out.push(prefix);
    for (const c of d.children.values()) if (c.node.kind === 'd') this.dirs(c.node, [...prefix, c.name], out);
    return out;
  }
  all(d: MDir = this.root, prefix: string[] = [], out: string[][] = []): string[][] {
    for (const c of d.children.values()) {
      out.push([...prefix, c.name]);
      if (c.node.kind === 'd') this.all(c.node, [...prefix, c.name], out);
    }
    return out;
  }
  tree(d: MDir = this.root, prefix = '', out: Map<string, { type: 'f' | 'd'; size: number; sha: string }> = new Map()) {
    for (const c of d.children.values()) {
      const rel = prefix + c.name;
      if (c.node.kind === 'd') { out.set(rel, { type: 'd', size: 0, sha: '' }); this.tree(c.node, rel + '/', out); }
      else out.set(rel, { type: 'f', size: c.node.data.length, sha: createHash('sha256').update(c.node.data).digest('hex') });
    }
    return out;
  }
  totalBytes(): number {
    let n = 0;
    for (const p of this.all()) { const e = this.get(p); if (e?.node.kind === 'f') n += e.node.data.length; }
    return n;
  }
}

function isAncestor(a: string[], b: string[]): boolean {
  if (a.length > b.length) return false;
  return a.every((x, i) => fold(x) === fold(b[i]!));
}

function compareTree(m: Model, got: Tree): string[] {
  const want = m.tree();
  const diffs: string[] = [];
  for (const [k, v] of want) {
    const g = got.get(k);
    if (!g) { diffs.push(`missing ${k}`); continue; }
    if (g.type !== v.type || g.size !== v.size || g.sha !== v.sha) diffs.push(`differs ${k}: ${JSON.stringify(v)} vs ${JSON.stringify({ type: g.type, size: g.size })}`);
  }
  for (const k of got.keys()) if (!want.has(k)) diffs.push(`extra ${k}`);
  return diffs;
}

async function run(t: Test, bits: 12 | 16, kib: number, seed: number, ops: number): Promise<void> {
  const rng = new Rng(seed);
  const dir = scratchDir(`ex${bits}`);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'fat.img');
  mkfs(img, bits, kib);
  let b: Booted = await bootWithImage(img);
  t.teardown(() => b.k.halt());
  let mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '') as string;
  const m = new Model();
  const budget = kib * 1024 * 0.4;
  const mismatches: string[] = [];
  const counts: Record<string, number> = {};
  const p = (parts: string[]) => [mp, ...parts].join('/');

  const randomPath = (existing: boolean): string[] => {
    if (existing && rng.chance(0.85)) {
      const all = m.all();
      if (all.length) {
        const e = rng.pick(all);
        // Same entry under another case now and then.
        // ASCII letters only: an upper-cased non-ASCII name can equal an 8.3 alias, which
        // vfat rightly finds (lookup by short name) but the model does not know.
        if (rng.chance(0.2) && m.get(e)?.node.kind === 'f') {
          const last = e.at(-1)!;
          return [...e.slice(0, -1), rng.chance(0.5) ? asciiUpper(last) : asciiLower(last)];
        }
        return e;
      }
    }
    const parent = rng.chance(0.9) ? rng.pick(m.dirs()) : ['missing dir'];
    // A directory is always spelled as it was named (see BASES).
    const name = rng.pick(BASES);
    const hit = m.get([...parent, name]);
    return [...parent, hit?.node.kind === 'd' ? hit.name : name];
  };
  const expectEq = (op: string, got: number, want: number) => {
    if (process.env.VFAT_TRACE) console.error('  ', op, got, want);
    counts[op] = (counts[op] ?? 0) + 1;
    if (got !== want && mismatches.length < 20) mismatches.push(`${op}: got ${got}, model says ${want}`);
  };

  const checkpoint = async (label: string) => {
    t.equal(await b.k.umountDev(b.disk, 0), 0, `${label}: unmount`);
    await b.k.halt();
    const f = fsckVfat(img);
    if (f.status !== 0 && process.env.VFAT_KEEP) copyFileSync(img, process.env.VFAT_KEEP);
    t.equal(f.status, 0, `${label}: fsck.vfat -n exit 0`);
    t.same(fsckProblems(f.out), [], `${label}: fsck.vfat reports nothing`);
    t.same(compareTree(m, mtoolsTree(img)), [], `${label}: mtools sees the model's tree`);
    b = await bootWithImage(img);
    mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '') as string;
  };

  for (let i = 0; i < ops; i++) {
    if (i === Math.floor(ops / 2)) await checkpoint('half-way');
    else if (CHECK_EVERY && i % CHECK_EVERY === 0 && i) await checkpoint(`op ${i}`);
    if (SYNC_CHECK_EVERY && i % SYNC_CHECK_EVERY === 0 && i >= Number(process.env.VFAT_SYNC_CHECK_FROM ?? 1)) {
      // Debugging aid: sync and look at the image while mounted (caches stay warm).
      await b.sys.sync();
      const f = fsckVfat(img);
      const probs = fsckProblems(f.out).filter((l) => !/[Dd]irty bit|not properly unmounted|Automatically removing|Leaving filesystem unchanged|fsck|^\s*$/.test(l));
      if (probs.length) {
        if (process.env.VFAT_KEEP) copyFileSync(img, process.env.VFAT_KEEP);
        t.fail(`after op ${i}: ${probs.slice(0, 6).join(' | ')}`);
        break;
      }
    }
    const kind = rng.pick(['create', 'create', 'write', 'write', 'write', 'truncate', 'rename', 'rename', 'unlink',
      'mkdir', 'rmdir', 'fsync', 'read', 'readdir', 'unlink-open'] as const);
    if (process.env.VFAT_TRACE) console.error(i, kind);
    switch (kind) {
      case 'create': {
        const parts = randomPath(false);
        const w = m.walk(parts);
        const want = 'err' in w ? -w.err : w.dir.children.has(fold(parts.at(-1)!)) ? -EEXIST : 0;
        const fd = await b.sys.open(p(parts), O_CREAT | O_EXCL | O_WRONLY, 0o644);
        expectEq(`create ${parts.join('/')}`, fd >= 0 ? 0 : fd, want);
        if (fd >= 0) { await b.sys.close(fd); if (!('err' in w)) w.dir.children.set(fold(parts.at(-1)!), { name: parts.at(-1)!, node: { kind: 'f', data: new Uint8Array(0) } }); }
        break;
      }
      case 'write': {
        const parts = randomPath(true);
        const e = m.get(parts);
        if (!e || e.node.kind !== 'f') break;
        const f = e.node;
        const off = rng.chance(0.3) ? f.data.length : rng.int(f.data.length + 20_000);
        const len = rng.chance(0.5) ? 1 + rng.int(600) : 1 + rng.int(30_000);
        if (m.totalBytes() + Math.max(0, off + len - f.data.length) > budget) break;
        const buf = new Uint8Array(len);
        for (let j = 0; j < len; j++) buf[j] = (i * 31 + j * 7) & 0xff;
        const fd = await b.sys.open(p(parts), O_WRONLY, 0);
        const n = fd < 0 ? fd : await b.sys.pwrite64(fd, buf, off);
        if (fd >= 0) await b.sys.close(fd);
        expectEq(`write ${parts.join('/')} @${off}+${len}`, n, len);
        if (n === len) {
          const nd = new Uint8Array(Math.max(f.data.length, off + len));
          nd.set(f.data);
          nd.set(buf, off);
          f.data = nd;
        }
        break;
      }
      case 'truncate': {
        const parts = randomPath(true);
        const e = m.get(parts);
        const size = rng.int(40_000);
        if (e?.node.kind === 'f' && m.totalBytes() + Math.max(0, size - e.node.data.length) > budget) break;
        const r = await b.sys.truncate(p(parts), size);
        const w = m.walk(parts);
        const want = 'err' in w ? -w.err : !e ? -ENOENT : e.node.kind === 'd' ? -EISDIR : 0;
        expectEq(`truncate ${parts.join('/')} ${size}`, r, want);
        if (r === 0 && e?.node.kind === 'f') {
          const nd = new Uint8Array(size);
          nd.set(e.node.data.subarray(0, size));
          e.node.data = nd;
        }
        break;
      }
      case 'rename': {
        const src = randomPath(true);
        let dst = randomPath(false);
        if (rng.chance(0.1)) {
          const last = src.at(-1)!;
          const flipped = last.replace(/[a-zA-Z]/g, (c) => (rng.chance(0.5) ? c.toUpperCase() : c.toLowerCase()));
          dst = [...src.slice(0, -1), flipped];
        }
        const se = m.get(src);
        const sw = m.walk(src);
        const dw = m.walk(dst);
        const de = m.get(dst);
        // The same entry under another case (same directory): a case-only rename.
        const caseOnly = !!(se && de && se.node === de.node && !('err' in sw) && !('err' in dw) && sw.dir === dw.dir);
        let want = 0;
        if ('err' in sw) want = -sw.err;
        else if (!se) want = -ENOENT;
        else if ('err' in dw) want = -dw.err;
        else if (se.node.kind === 'd' && isAncestor(src, dst) && src.length < dst.length) want = -EINVAL;
        else if (de && de.node.kind === 'd' && isAncestor(dst, src) && dst.length < src.length) want = -ENOTEMPTY;
        else if (de && de.node !== se.node) {
          if (se.node.kind === 'd' && de.node.kind !== 'd') want = -ENOTDIR;
          else if (se.node.kind !== 'd' && de.node.kind === 'd') want = -EISDIR;
          else if (de.node.kind === 'd' && de.node.children.size) want = -ENOTEMPTY;
        }
        if (process.env.VFAT_TRACE) console.error('  rename?', src.join('/'), '->', dst.join('/'), want);
        const r = await b.sys.rename(p(src), p(dst));
        if (process.env.VFAT_TRACE && r !== want) {
          for (const path of [src, dst]) for (let k = 1; k <= path.length; k++) {
            const st = await b.sys.stat(p(path.slice(0, k)));
            console.error('    stat', path.slice(0, k).join('/'), typeof st === 'number' ? st : st.ino);
          }
        }
        expectEq(`rename ${src.join('/')} -> ${dst.join('/')}`, r, want);
        if (r === 0 && caseOnly && !('err' in dw)) {
          dw.dir.children.set(fold(dst.at(-1)!), { name: dst.at(-1)!, node: se!.node });
        } else if (r === 0 && want === 0 && se && !('err' in sw) && !('err' in dw) && se.node !== de?.node) {
          sw.dir.children.delete(fold(src.at(-1)!));
          dw.dir.children.set(fold(dst.at(-1)!), { name: dst.at(-1)!, node: se.node });
        }
        break;
      }
      case 'unlink': {
        const parts = randomPath(true);
        const e = m.get(parts);
        const w = m.walk(parts);
        const want = 'err' in w ? -w.err : !e ? -ENOENT : e.node.kind === 'd' ? -EISDIR : 0;
        const r = await b.sys.unlink(p(parts));
        expectEq(`unlink ${parts.join('/')}`, r, want);
        if (r === 0 && !('err' in w)) w.dir.children.delete(fold(parts.at(-1)!));
        break;
      }
      case 'mkdir': {
        if (m.dirs().length > 25) break;
        const parts = randomPath(false);
        const w = m.walk(parts);
        const want = 'err' in w ? -w.err : w.dir.children.has(fold(parts.at(-1)!)) ? -EEXIST : 0;
        const r = await b.sys.mkdir(p(parts), 0o755);
        expectEq(`mkdir ${parts.join('/')}`, r, want);
        if (r === 0 && !('err' in w)) w.dir.children.set(fold(parts.at(-1)!), { name: parts.at(-1)!, node: newDir() });
        break;
      }
      case 'rmdir': {
        const parts = randomPath(true);
        const e = m.get(parts);
        const w = m.walk(parts);
        const want = 'err' in w ? -w.err : !e ? -ENOENT : e.node.kind !== 'd' ? -ENOTDIR : e.node.children.size ? -ENOTEMPTY : 0;
        const r = await b.sys.rmdir(p(parts));
        expectEq(`rmdir ${parts.join('/')}`, r, want);
        if (r === 0 && !('err' in w)) w.dir.children.delete(fold(parts.at(-1)!));
        break;
      }
      case 'fsync': {
        const parts = randomPath(true);
        const e = m.get(parts);
        if (!e) break;
        const fd = await b.sys.open(p(parts), O_RDONLY, 0);
        const r = fd < 0 ? fd : await b.sys.fsync(fd);
        if (fd >= 0) await b.sys.close(fd);
        expectEq(`fsync ${parts.join('/')}`, r, 0);
        break;
      }
      case 'readdir': {
        const d = rng.pick(m.dirs());
        const node = d.length ? m.get(d)!.node as MDir : m.root;
        const want = [...node.children.values()].map((c) => c.name).sort();
        const fd = await b.sys.open(p(d), O_RDONLY | O_DIRECTORY, 0);
        const got: string[] = [];
        for (;;) {
          const r = fd < 0 ? fd : await b.sys.getdents64(fd, 700);
          if (typeof r === 'number') { got.push(`error ${r}`); break; }
          if (!r.length) break;
          for (const e of r) if (e.name !== '.' && e.name !== '..') got.push(e.name);
        }
        if (fd >= 0) await b.sys.close(fd);
        got.sort();
        expectEq(`readdir ${d.join('/')}`, JSON.stringify(got) === JSON.stringify(want) ? 0 : -1, 0);
        if (JSON.stringify(got) !== JSON.stringify(want) && mismatches.length < 20) mismatches.push(`readdir ${d.join('/')}: ${got} vs ${want}`);
        break;
      }
      case 'unlink-open': {
        const parts = randomPath(true);
        const e = m.get(parts);
        if (!e || e.node.kind !== 'f') break;
        const w = m.walk(parts) as { dir: MDir };
        const fd = await b.sys.open(p(parts), O_RDWR, 0);
        const r = fd < 0 ? fd : await b.sys.unlink(p(parts));
        expectEq(`unlink-open ${parts.join('/')}`, r, 0);
        if (fd < 0) break;
        w.dir.children.delete(fold(parts.at(-1)!));
        const extra = new Uint8Array(777).fill(i & 0xff);
        const n = await b.sys.pwrite64(fd, extra, e.node.data.length + 100);
        expectEq('write to an unlinked open file', n, 777);
        const back = new Uint8Array(e.node.data.length + 877);
        const got = await b.sys.pread64(fd, back, 0);
        expectEq('read back an unlinked open file', got, back.length);
        const ok = back.subarray(0, e.node.data.length).every((x, j) => x === (e.node as MFile).data[j]) &&
          back.subarray(e.node.data.length, e.node.data.length + 100).every((x) => x === 0) &&
          back.subarray(e.node.data.length + 100).every((x) => x === (i & 0xff));
        if (!ok && mismatches.length < 20) mismatches.push(`unlink-open ${parts.join('/')}: content differs`);
        expectEq('close', await b.sys.close(fd), 0);
        break;
      }
      case 'read': {
        const parts = randomPath(true);
        const e = m.get(parts);
        if (!e || e.node.kind !== 'f') break;
        const fd = await b.sys.open(p(parts), O_RDONLY, 0);
        const buf = new Uint8Array(e.node.data.length + 10);
        const n = fd < 0 ? fd : await b.sys.pread64(fd, buf, 0);
        if (fd >= 0) await b.sys.close(fd);
        expectEq(`read ${parts.join('/')}`, n, e.node.data.length);
        if (n === e.node.data.length && !buf.subarray(0, n).every((x, j) => x === (e.node as MFile).data[j])) {
          mismatches.push(`read ${parts.join('/')}: content differs`);
        }
        break;
      }
    }
    if (mismatches.length >= 20) break;
  }
  t.same(mismatches, [], `every result equals the model's (${JSON.stringify(counts).length > 0 ? Object.values(counts).reduce((a, c) => a + c, 0) : 0} checked ops)`);
  await checkpoint('end');
  t.equal(await b.k.umountDev(b.disk, 0), 0);
}

t.test(`FAT16 exerciser (seed ${SEED}, ${OPS} ops)`, async (t) => {
  t.comment(`VFAT_SEED=${SEED}`);
  await run(t, 16, 8192, SEED, OPS);
});

t.test(`FAT12 exerciser (seed ${SEED + 1}, ${Math.floor(OPS / 2)} ops)`, async (t) => {
  t.comment(`VFAT_SEED=${SEED + 1}`);
  await run(t, 12, 4096, SEED + 1, Math.floor(OPS / 2));
});

/**
 * Parallel writers that run the volume into ENOSPC (issue: after such runs fsck.vfat said
 * "Free cluster summary wrong"): four writers at once create, write, extend, truncate and
 * unlink files on a small FAT32 volume, each until and past ENOSPC. Then the kernel's own
 * free count must equal a count of the FAT, fsck.vfat -n must be clean (it checks FSInfo's
 * free count on FAT32) and mtools must see exactly the files the kernel shows.
 */
async function fillers(t: Test, seed: number, rounds: number): Promise<void> {
  const dir = scratchDir('fill32');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'fat32.img');
  mkfs(img, 32); // 40 MiB, 512-byte clusters: 80,000 of them (mtools needs >= 65,525 for FAT32)
  const b = await bootWithImage(img);
  t.teardown(() => b.k.halt());
  const mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '') as string;
  let enospc = 0, writes = 0, unlinks = 0, truncates = 0;
  const writer = async (w: number) => {
    const rng = new Rng(seed * 31 + w);
    const mine: string[] = [];
    for (let r = 0; r < rounds; r++) {
      const op = rng.int(10);
      if (op < 6 || mine.length === 0) {
        const name = `${mp}/w${w}-${r}.bin`;
        const fd = await b.sys.open(name, O_CREAT | O_WRONLY, 0o644);
        if (fd < 0) { if (fd === -ENOSPC) enospc++; continue; }
        mine.push(name);
        const len = 1 + rng.int(1536 * 1024);
        const n = await b.sys.write(fd, new Uint8Array(len).fill(w + 1));
        writes++;
        if (n === -ENOSPC || (n >= 0 && n < len)) enospc++;
        await b.sys.close(fd);
      } else if (op < 8) {
        const name = mine.splice(rng.int(mine.length), 1)[0]!;
        if (await b.sys.unlink(name) === 0) unlinks++;
      } else {
        const name = rng.pick(mine);
        if (await b.sys.truncate(name, rng.int(1024 * 1024)) === 0) truncates++;
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(writer));
  t.ok(enospc > 0, `the writers ran into ENOSPC (${enospc} times; ${writes} writes, ${truncates} truncates, ${unlinks} unlinks)`);
  const st = await b.sys.statfs(mp);
  if (typeof st === 'number') throw new Error(`statfs: ${st}`);
  const kernelTree = await lklTree(b.sys, mp);
  t.equal(await b.k.umountDev(b.disk, 0), 0, 'unmount');
  await b.k.halt();
  const f = fsckVfat(img);
  t.equal(f.status, 0, 'fsck.vfat -n exit 0');
  t.same(fsckProblems(f.out), [], 'fsck.vfat -n finds nothing (free cluster summary included)');
  const counted = /(\d+)\/(\d+) clusters/.exec(f.out);
  t.ok(counted, 'fsck.vfat reports its cluster count');
  if (counted) t.equal(st.bfree, Number(counted[2]) - Number(counted[1]), `statfs's free count (${st.bfree}) is the FAT's`);
  if (process.env.VFAT_KEEP) copyFileSync(img, process.env.VFAT_KEEP);
  t.same(treeDiff(kernelTree, mtoolsTree(img)), [], 'mtools sees the files the kernel showed');
}

t.test('FAT32: an allocation that finds fewer free clusters than it needs leaves the count right', async (t) => {
  // The exact case behind the parallel writers' wrong count: on a fresh mount (FSInfo's
  // count not yet trusted), a write needs 8 clusters and only 3 are left.
  const dir = scratchDir('short32');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'fat32.img');
  mkfs(img, 32);
  let b = await bootWithImage(img);
  let mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '') as string;
  const st0 = await b.sys.statfs(mp);
  if (typeof st0 === 'number') throw new Error(`statfs: ${st0}`);
  const free = st0.bfree;
  t.equal(await b.k.umountDev(b.disk, 0), 0, 'unmount');
  await b.k.halt();
  b = await bootWithImage(img);
  t.teardown(() => b.k.halt());
  mp = await b.k.mountDev(b.disk, 0, 'vfat', 0, '') as string;
  const fd = await b.sys.open(`${mp}/fill`, O_CREAT | O_WRONLY, 0o644);
  t.ok(fd >= 0, 'create');
  const leave = 3;
  t.equal(await b.sys.write(fd, new Uint8Array((free - leave) * st0.bsize).fill(1)), (free - leave) * st0.bsize, `fill all but ${leave} clusters`);
  // (Our allocation is per page, all or nothing; Linux's per cluster would write 3 of them.)
  const r = await b.sys.write(fd, new Uint8Array(8 * st0.bsize).fill(2));
  t.equal(r, -ENOSPC, 'a write of 8 more clusters is ENOSPC: only 3 are free');
  let more = 0;
  while (more < 10 && await b.sys.write(fd, new Uint8Array(st0.bsize).fill(3)) === st0.bsize) more++;
  t.equal(more, leave, 'one-cluster writes then fill exactly the 3 that were left');
  t.equal(await b.sys.close(fd), 0);
  t.equal(await b.sys.unlink(`${mp}/fill`), 0, 'unlink gives every cluster back');
  const st1 = await b.sys.statfs(mp);
  if (typeof st1 === 'number') throw new Error(`statfs: ${st1}`);
  t.equal(st1.bfree, free, 'statfs: the free count is what it was');
  t.equal(await b.k.umountDev(b.disk, 0), 0, 'unmount');
  await b.k.halt();
  const f = fsckVfat(img);
  t.same(fsckProblems(f.out), [], 'fsck.vfat -n: FSInfo\'s free count is right');
});

t.test('FAT32: four parallel writers past ENOSPC keep the free count right', async (t) => {
  for (const seed of process.env.VFAT_SEED ? [SEED] : [SEED, SEED + 7]) await t.test(`seed ${seed}`, (t) => fillers(t, seed, 60));
});
