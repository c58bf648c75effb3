// Htree (dir_index) insertion through lkl-ts, judged by e2fsck and the host kernel.
//
// For each image kind the host kernel makes a directory big enough to be an htree (loop
// mount, -t ext4 so ext2 images get an index too), then lkl-ts mounts it read-write and
// creates thousands more names in it (leaf splits; index node splits; on 1 KiB blocks, and
// on 4 KiB with long names, a second index level), deletes some, renames some within the
// directory and in and out of it, and makes a few subdirectories there. Before unmounting
// every expected name must be found by lookup and readdir must list exactly the expected
// set; after it `e2fsck -fn` must be clean, the directory must still be indexed (debugfs
// stat shows the index flag, htree_dump the levels), and the host kernel must list the same
// set of names.
//
// Two more cases: names with colliding legacy hashes (leaf splits inside a run of equal
// hashes, the continuation bit), and a directory whose two levels of index the host filled
// (lkl-ts refuses the same name with ENOSPC; after tune2fs -O large_dir it adds a third
// level).
//
// LKL_TEST_DX_CASE selects cases by a substring of their name.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, type ExtImageOptions } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, opendir, O_CREAT, O_WRONLY, ENOENT, ENOSPC, type Kernel } from '../../lib/index.js';
import { ext4fs_dirhash } from '../../lib/kernel/fs/ext4/hash.js';
import { DX_HASH_LEGACY } from '../../lib/kernel/fs/ext4/layout.js';
import { captureKernelMessages } from '../lib/printk.js';

const skip = whyNot(['mke2fs', 'tune2fs', 'e2fsck', 'debugfs', 'losetup', 'mount'], { root: true });
const ONLY = process.env.LKL_TEST_DX_CASE;

interface Case {
  name: string;
  image: Omit<ExtImageOptions, 'dir' | 'path'>;
  /** Mount type for lkl-ts. */
  fsType: 'ext2' | 'ext4';
  /** Names the host makes, and names lkl-ts adds. */
  hostCount: number;
  lklCount: number;
  /** Length of the variable filler in the names. */
  pad: (i: number) => number;
  /** The tree must have gone from 0 to 1 indirect levels. */
  addsLevel: boolean;
}

const CASES: Case[] = [
  { name: 'ext4 4k, long names', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 256, blockSize: 4096, inodes: 16384, features: ['^has_journal'] },
    hostCount: 3000, lklCount: 5000, pad: (i) => 170 + (i * 7) % 70, addsLevel: true },
  { name: 'ext4 1k', fsType: 'ext4', image: { type: 'ext4', sizeMiB: 96, blockSize: 1024, inodes: 8192, features: ['^has_journal'] },
    hostCount: 400, lklCount: 2500, pad: (i) => 20 + (i * 7) % 40, addsLevel: true },
  { name: 'ext4 1k, no metadata_csum', fsType: 'ext4',
    image: { type: 'ext4', sizeMiB: 96, blockSize: 1024, inodes: 8192, features: ['^has_journal', '^metadata_csum'] },
    hostCount: 400, lklCount: 2500, pad: (i) => 20 + (i * 7) % 40, addsLevel: true },
  { name: 'ext2 1k, dir_index', fsType: 'ext2', image: { type: 'ext2', sizeMiB: 96, blockSize: 1024, inodes: 8192, features: ['dir_index'] },
    hostCount: 400, lklCount: 2500, pad: (i) => 20 + (i * 7) % 40, addsLevel: true },
];

const hostName = (c: Case, i: number): string => `host-${i}-${'h'.repeat(c.pad(i))}`;
const lklName = (c: Case, i: number): string => `lkl-${i}-${'k'.repeat(c.pad(i + 3))}`;
const renamedName = (c: Case, i: number): string => `ren-${i}-${'r'.repeat(c.pad(i + 5))}`;
const inName = (c: Case, i: number): string => `in-${i}-${'i'.repeat(c.pad(i + 1))}`;

interface HtreeInfo { levels: number; rootCount: number; indexed: boolean }

async function htreeInfo(img: string, dir: string): Promise<HtreeInfo> {
  const st = (await run('debugfs', ['-R', `stat ${dir}`, img])).stdout;
  const flags = /Flags: (0x[0-9a-f]+)/.exec(st);
  const dump = (await run('debugfs', ['-R', `htree_dump ${dir}`, img])).stdout;
  const lv = /Indirect levels: (\d+)/.exec(dump);
  const cnt = /Number of entries \(count\): (\d+)/.exec(dump);
  return { indexed: !!flags && (parseInt(flags[1]!, 16) & 0x1000) !== 0, levels: lv ? Number(lv[1]) : -1,
    rootCount: cnt ? Number(cnt[1]) : -1 };
}

/** Entries of every index block in `htree_dump` whose hash has the continuation bit. */
async function continuedEntries(img: string, dir: string): Promise<number> {
  const dump = (await run('debugfs', ['-R', `htree_dump ${dir}`, img])).stdout;
  let n = 0;
  for (const m of dump.matchAll(/^Entry #\d+: Hash 0x([0-9a-f]+), block/gm)) if (parseInt(m[1]!, 16) & 1) n++;
  return n;
}

/**
 * Pairs of short names with the same legacy (dx_hack_hash) hash, found by search: the
 * legacy hash ignores the seed, so these collide on any filesystem using it.
 */
function legacyCollisions(tries: number): [string, string][] {
  const first = new Map<number, string | null>();
  const pairs: [string, string][] = [];
  const b = new Uint8Array(16);
  for (let i = 0; i < tries; i++) {
    const s = `c${i.toString(36)}`;
    for (let j = 0; j < s.length; j++) b[j] = s.charCodeAt(j);
    const h = ext4fs_dirhash(b.subarray(0, s.length), DX_HASH_LEGACY, null)!.hash;
    const o = first.get(h);
    if (o === undefined) first.set(h, s);
    else if (o !== null) { pairs.push([o, s]); first.set(h, null); }
  }
  return pairs;
}

async function touch(k: Kernel, p: string, data?: string): Promise<number> {
  const fd = await k.sys.open(p, O_CREAT | O_WRONLY, 0o644);
  if (fd < 0) return fd;
  if (data) {
    const w = await k.sys.write(fd, new TextEncoder().encode(data));
    if (typeof w === 'number' && w < 0) { await k.sys.close(fd); return w; }
  }
  return k.sys.close(fd);
}

async function lklList(k: Kernel, p: string): Promise<string[] | number> {
  const d = await opendir(k.sys, p);
  if (typeof d === 'number') return d;
  const out: string[] = [];
  for (;;) {
    const e = await d.readdir();
    if (typeof e === 'number') { await d.close(); return e; }
    if (!e) break;
    if (e.name !== '.' && e.name !== '..') out.push(e.name);
  }
  await d.close();
  return out.sort();
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-dx');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 96 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const c of CASES) {
    if (ONLY && !c.name.includes(ONLY)) continue;
    t.test(c.name, async (t) => {
      const t0 = Date.now();
      const img = path.join(dir, `${c.name.replace(/\W+/g, '_')}.img`);
      await makeExtImage({ ...c.image, path: img });
      const expected = new Set<string>();
      await withLoopMount(img, { type: 'ext4', options: ['noatime'] }, async (mnt) => {
        fs.mkdirSync(path.join(mnt, 'd'));
        fs.mkdirSync(path.join(mnt, 'out'));
        for (let i = 0; i < c.hostCount; i++) {
          const n = hostName(c, i);
          fs.closeSync(fs.openSync(path.join(mnt, 'd', n), 'w'));
          expected.add(n);
        }
        for (let i = 0; i < 200; i++) fs.closeSync(fs.openSync(path.join(mnt, 'out', inName(c, i)), 'w'));
      });
      const before = await htreeInfo(img, '/d');
      t.ok(before.indexed, 'the host made an htree');
      t.equal(before.levels, 0, 'one level of index to start with');
      const ck0 = await e2fsckClean(img);
      t.ok(ck0.clean, 'clean to start with', { output: ck0.output });
      const tHost = Date.now();

      const id = await k.diskAdd({ path: img });
      const mnt = await k.mountDev(id, 0, c.fsType, 0, '');
      t.type(mnt, 'string', `mounted read-write as ${c.fsType}`);
      if (typeof mnt !== 'string') return;
      const D = `${mnt}/d`;
      let mounted = true;
      try {
        // Create: some files with data, the rest empty.
        let bad: string[] = [];
        for (let i = 0; i < c.lklCount; i++) {
          const n = lklName(c, i);
          const r = await touch(k, `${D}/${n}`, i % 10 === 0 ? `data ${i}\n` : undefined);
          if (r < 0) { bad.push(`${n}: ${r}`); if (bad.length > 5) break; } else expected.add(n);
        }
        t.same(bad, [], `created ${c.lklCount} names`);
        // A few subdirectories in the big directory.
        bad = [];
        for (let i = 0; i < 20; i++) {
          const n = `sub-${i}-${'s'.repeat(c.pad(i))}`;
          const r = await k.sys.mkdir(`${D}/${n}`, 0o755);
          if (r < 0) bad.push(`${n}: ${r}`); else expected.add(n);
        }
        t.same(bad, [], 'mkdir in the htree');
        // Delete every 7th host name and every 5th new one.
        bad = [];
        for (let i = 0; i < c.hostCount; i += 7) {
          const n = hostName(c, i);
          const r = await k.sys.unlink(`${D}/${n}`);
          if (r < 0) bad.push(`${n}: ${r}`); else expected.delete(n);
        }
        for (let i = 1; i < c.lklCount; i += 5) {
          const n = lklName(c, i);
          const r = await k.sys.unlink(`${D}/${n}`);
          if (r < 0) bad.push(`${n}: ${r}`); else expected.delete(n);
        }
        t.same(bad, [], 'unlinked');
        // Rename within the directory, out of it, and into it.
        bad = [];
        for (let i = 2; i < c.lklCount; i += 11) {
          const from = lklName(c, i), to = renamedName(c, i);
          if (!expected.has(from)) continue;
          const r = await k.sys.rename(`${D}/${from}`, `${D}/${to}`);
          if (r < 0) bad.push(`${from}: ${r}`); else { expected.delete(from); expected.add(to); }
        }
        for (let i = 3; i < c.hostCount; i += 13) {
          const from = hostName(c, i);
          if (!expected.has(from)) continue;
          const r = await k.sys.rename(`${D}/${from}`, `${mnt}/out/${from}`);
          if (r < 0) bad.push(`${from}: ${r}`); else expected.delete(from);
        }
        for (let i = 0; i < 200; i++) {
          const n = inName(c, i);
          const r = await k.sys.rename(`${mnt}/out/${n}`, `${D}/${n}`);
          if (r < 0) bad.push(`${n}: ${r}`); else expected.add(n);
        }
        t.same(bad, [], 'renamed');
        // And a second round of creates after the deletes, into the freed space and new leaves.
        bad = [];
        for (let i = c.lklCount; i < c.lklCount + 500; i++) {
          const n = lklName(c, i);
          const r = await touch(k, `${D}/${n}`);
          if (r < 0) { bad.push(`${n}: ${r}`); if (bad.length > 5) break; } else expected.add(n);
        }
        t.same(bad, [], 'created 500 more');
        // Every expected name is found; removed ones are not.
        const missing: string[] = [];
        for (const n of expected) {
          const st = await k.sys.lstat(`${D}/${n}`);
          if (typeof st === 'number') missing.push(`${n}: ${st}`);
        }
        t.same(missing.slice(0, 10), [], `lookup of all ${expected.size} names`);
        let ghosts = 0;
        for (let i = 0; i < c.hostCount; i += 7) if (await k.sys.lstat(`${D}/${hostName(c, i)}`) !== -ENOENT) ghosts++;
        for (let i = 1; i < c.lklCount; i += 5) if (await k.sys.lstat(`${D}/${lklName(c, i)}`) !== -ENOENT) ghosts++;
        t.equal(ghosts, 0, 'unlinked names are gone');
        const listed = await lklList(k, D);
        const want = [...expected].sort();
        t.ok(Array.isArray(listed) && listed.length === want.length && listed.every((n, i) => n === want[i]),
          `lkl-ts readdir lists the ${want.length} expected names`, { got: Array.isArray(listed) ? listed.length : listed });
        t.equal(await k.umountDev(id, 0), 0, 'unmounted');
        mounted = false;
      } finally {
        if (mounted) await k.umountDev(id, 0);
      }
      const tLkl = Date.now();

      const ck = await e2fsckClean(img);
      t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
      const after = await htreeInfo(img, '/d');
      t.ok(after.indexed, 'the directory is still indexed');
      if (c.addsLevel) {
        t.equal(after.levels, 1, 'a second level of index was added');
        t.ok(after.rootCount >= 2, `and index nodes were split (root count ${after.rootCount})`);
      }
      const host = await withLoopMount(img, { ro: true, type: 'ext4' }, async (m) => fs.readdirSync(path.join(m, 'd')).sort());
      const want = [...expected].sort();
      t.equal(host.length, want.length, 'the host kernel lists as many names');
      t.same(host.filter((n, i) => n !== want[i]).slice(0, 10), [], 'the host kernel lists exactly the expected names');
      t.comment(`host setup ${tHost - t0} ms, lkl-ts ${tLkl - tHost} ms, checks ${Date.now() - tLkl} ms; ` +
        `levels ${before.levels} -> ${after.levels}, root entries ${before.rootCount} -> ${after.rootCount}`);
    });
  }
  t.test('ext4 1k, legacy hash, colliding names (split runs of equal hashes: the continuation bit)', async (t) => {
    if (ONLY && !'legacy'.includes(ONLY)) return;
    const pairs = legacyCollisions(1_200_000);
    t.ok(pairs.length > 500, `${pairs.length} colliding pairs`);
    const img = path.join(dir, 'legacy.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 1024, inodes: 8192, features: ['^has_journal'],
      path: img });
    await run('tune2fs', ['-E', 'hash_alg=legacy', img]);
    const expected = new Set<string>();
    await withLoopMount(img, { type: 'ext4', options: ['noatime'] }, async (mnt) => {
      fs.mkdirSync(path.join(mnt, 'd'));
      for (let i = 0; i < 300; i++) {
        const n = `filler-${i}-${'f'.repeat(20)}`;
        fs.closeSync(fs.openSync(path.join(mnt, 'd', n), 'w'));
        expected.add(n);
      }
    });
    const before = await htreeInfo(img, '/d');
    t.ok(before.indexed, 'the host made an htree');
    t.equal(await continuedEntries(img, '/d'), 0, 'no continued hashes to start with');
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    t.type(mnt, 'string', 'mounted read-write');
    if (typeof mnt !== 'string') return;
    const D = `${mnt}/d`;
    let mounted = true;
    try {
      const bad: string[] = [];
      for (const [a, b] of pairs) {
        for (const n of [a, b]) {
          const r = await touch(k, `${D}/${n}`);
          if (r < 0) bad.push(`${n}: ${r}`); else expected.add(n);
        }
      }
      t.same(bad.slice(0, 10), [], `created ${2 * pairs.length} colliding names`);
      // One of every third pair goes; its twin must stay reachable.
      for (let i = 0; i < pairs.length; i += 3) {
        const n = pairs[i]![i % 2];
        if ((await k.sys.unlink(`${D}/${n}`)) === 0) expected.delete(n); else bad.push(n);
      }
      t.same(bad.slice(0, 10), [], 'unlinked one of some pairs');
      const missing: string[] = [];
      for (const n of expected) if (typeof await k.sys.lstat(`${D}/${n}`) === 'number') missing.push(n);
      t.same(missing.slice(0, 10), [], `lookup of all ${expected.size} names`);
      const listed = await lklList(k, D);
      const want = [...expected].sort();
      t.ok(Array.isArray(listed) && listed.length === want.length && listed.every((n, i) => n === want[i]),
        `lkl-ts readdir lists the ${want.length} expected names`);
      t.equal(await k.umountDev(id, 0), 0, 'unmounted');
      mounted = false;
    } finally {
      if (mounted) await k.umountDev(id, 0);
    }
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
    t.ok((await htreeInfo(img, '/d')).indexed, 'still indexed');
    const cont = await continuedEntries(img, '/d');
    t.ok(cont > 0, `index entries with the continuation bit: ${cont}`);
    const host = await withLoopMount(img, { ro: true, type: 'ext4' }, async (m) => fs.readdirSync(path.join(m, 'd')).sort());
    t.same(host, [...expected].sort(), 'the host kernel lists exactly the expected names');
  });
  t.test('ext4 1k, index full: ENOSPC without large_dir, a third level with it', async (t) => {
    if (ONLY && !'index full'.includes(ONLY)) return;
    const img = path.join(dir, 'full.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 160, blockSize: 1024, inodes: 40000, features: ['^has_journal', '^metadata_csum'], path: img });
    // The host fills the two levels of index with long names until it says ENOSPC.
    const expected = new Set<string>();
    const longName = (i: number): string => `n${i}-${'x'.repeat(240)}`;
    let full = '';
    await withLoopMount(img, { type: 'ext4', options: ['noatime'] }, async (mnt) => {
      fs.mkdirSync(path.join(mnt, 'd'));
      for (let i = 0; i < 100_000; i++) {
        const n = longName(i);
        try { fs.closeSync(fs.openSync(path.join(mnt, 'd', n), 'w')); } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          full = n;
          break;
        }
        expected.add(n);
      }
    });
    t.ok(full, `the host's index was full after ${expected.size} names`);
    const info = await htreeInfo(img, '/d');
    t.equal(info.levels, 1, 'two levels of index');
    const large = path.join(dir, 'full-largedir.img');
    await run('cp', ['--sparse=always', img, large]);
    await run('tune2fs', ['-O', 'large_dir', large]);

    const msgs: string[] = [];
    captureKernelMessages((m) => msgs.push(m));
    try {
      const id = await k.diskAdd({ path: img });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      t.type(mnt, 'string', 'mounted read-write');
      if (typeof mnt !== 'string') return;
      t.equal(await touch(k, `${mnt}/d/${full}`), -ENOSPC, 'the name the host could not add: ENOSPC');
      t.ok(msgs.some((m) => /index full, reach max htree level :2/.test(m)), 'with the warning', { msgs: msgs.slice(-5) });
      t.equal(await k.sys.lstat(`${mnt}/d/${full}`), -ENOENT, 'and no entry');
      const other: number[] = [];
      for (let i = 0; i < 300; i++) {
        const n = `other-${i}-${'o'.repeat(200)}`;
        const r = await touch(k, `${mnt}/d/${n}`);
        if (r === 0) expected.add(n); else other.push(r);
      }
      t.ok(other.every((r) => r === -ENOSPC), `other names are added (${300 - other.length}) or refused with ENOSPC (${other.length})`);
      t.equal(await k.umountDev(id, 0), 0, 'unmounted');
    } finally { captureKernelMessages(null); }
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
    const host = await withLoopMount(img, { ro: true, type: 'ext4' }, async (m) => fs.readdirSync(path.join(m, 'd')).sort());
    t.ok(host.length === expected.size && host.every((n) => expected.has(n)), 'the host lists the expected names');

    // With large_dir the same name makes a third level.
    const id2 = await k.diskAdd({ path: large });
    const mnt2 = await k.mountDev(id2, 0, 'ext4', 0, '');
    t.type(mnt2, 'string', 'large_dir image mounted read-write');
    if (typeof mnt2 !== 'string') return;
    const want = new Set(expected);
    for (const n of expected) if (n.startsWith('other-')) want.delete(n);
    t.equal(await touch(k, `${mnt2}/d/${full}`), 0, 'large_dir: the name goes in');
    want.add(full);
    let bad = 0;
    const more: string[] = [full];
    for (let i = 0; i < 500; i++) {
      const n = `more-${i}-${'m'.repeat(200)}`;
      if (await touch(k, `${mnt2}/d/${n}`) === 0) { want.add(n); more.push(n); } else bad++;
    }
    t.equal(bad, 0, '500 more names go in');
    // Lookups: every new name and every 8th old one (the host lists them all below).
    let missing = 0, looked = 0;
    for (const n of [...more, ...[...want].filter((_, i) => i % 8 === 0)]) {
      looked++;
      if (typeof await k.sys.lstat(`${mnt2}/d/${n}`) === 'number') missing++;
    }
    t.equal(missing, 0, `lookup of ${looked} names`);
    t.equal(await k.umountDev(id2, 0), 0, 'unmounted');
    const ck2 = await e2fsckClean(large);
    t.ok(ck2.clean, 'e2fsck -fn is clean', { output: ck2.output });
    t.equal((await htreeInfo(large, '/d')).levels, 2, 'three levels of index');
    const host2 = await withLoopMount(large, { ro: true, type: 'ext4' }, async (m) => fs.readdirSync(path.join(m, 'd')).sort());
    t.ok(host2.length === want.size && host2.every((n) => want.has(n)), 'the host lists the expected names');
  });
}
