// Large extended attribute values in their own inodes (the ea_inode feature), written by
// lkl-ts and judged against the host kernel doing the same to a copy of the same image.
//
// For each kind (ea_inode without a journal with 4 KiB and 1 KiB blocks; with the journal)
// the host first writes files whose large values it keeps in ea_inodes, two of them with the
// same value and two with the same attribute block naming an ea_inode. The image is copied;
// then the host (on one copy) and lkl-ts (on the other) apply the same script: values of up
// to 64 KiB, values just over and just under the size that goes to an ea_inode, a value that
// moves there because the block is full, replacements both ways, removals, a file with
// ea_inodes unlinked, one kept by a second link, changes to files whose ea_inodes or blocks
// the host shares, a directory's and trusted./security. values, the same value set on two
// files and under two names (one ea_inode, shared by reference). Every call must give the
// host's result; afterwards e2fsck -fn is clean on both (it checks each ea_inode's hash and
// reference count), both have the same free inode and block counts (every ea_inode no
// longer named is freed), and the host kernel reads exactly the same attributes from both.
// Then lkl-ts reads its image back the same way. Last, the bytes: the same script applied
// by the host to one file and by lkl-ts to another leaves the same in-inode area and block
// but for the ea_inode numbers and the block checksum.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, dumpe2fsHeader } from '../lib/images.js';
import { readXattrs } from '../lib/manifest.js';
import { parseDebugfsDump } from '../lib/debugfs.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_WRONLY, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'debugfs', 'dumpe2fs', 'losetup', 'mount', 'getfattr', 'setfattr'], { root: true });

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

type Op =
  | { op: 'create'; p: string }
  | { op: 'mkdir'; p: string }
  | { op: 'set'; p: string; n: string; v: Uint8Array }
  | { op: 'rm'; p: string; n: string }
  | { op: 'link'; p: string; to: string }
  | { op: 'unlink'; p: string };

const describe = (o: Op): string => o.op === 'set' ? `set ${o.p} ${o.n} (${o.v.length} bytes)`
  : o.op === 'rm' ? `remove ${o.p} ${o.n}` : o.op === 'link' ? `link ${o.p} ${o.to}` : `${o.op} ${o.p}`;

/** The host's result of one step: 0 or the errno setfattr (or the call) reported. */
async function hostStep(mnt: string, o: Op): Promise<number> {
  const P = (p: string) => path.join(mnt, p);
  try {
    switch (o.op) {
      case 'create': fs.writeFileSync(P(o.p), ''); return 0;
      case 'mkdir': fs.mkdirSync(P(o.p)); return 0;
      case 'link': fs.linkSync(P(o.p), P(o.to)); return 0;
      case 'unlink': fs.unlinkSync(P(o.p)); return 0;
      case 'set': {
        // base64 keeps a 64 KiB value under the 128 KiB limit of one argument
        const r = await run('setfattr', ['-n', o.n, '-v', `0s${Buffer.from(o.v).toString('base64')}`, P(o.p)], { allowFail: true });
        return r.code === 0 ? 0 : errnoOf(r.stderr);
      }
      case 'rm': {
        const r = await run('setfattr', ['-x', o.n, P(o.p)], { allowFail: true });
        return r.code === 0 ? 0 : errnoOf(r.stderr);
      }
    }
  } catch (e) { return (e as { errno?: number }).errno ? -Math.abs((e as { errno: number }).errno) : -1; }
}
function errnoOf(stderr: string): number {
  if (/No space left/.test(stderr)) return -28;
  if (/No such attribute/.test(stderr)) return -61;
  if (/Argument list too long/.test(stderr)) return -7;
  return -1000;
}

async function lklStep(k: Kernel, mnt: string, o: Op): Promise<number> {
  const P = (p: string) => `${mnt}/${p}`;
  switch (o.op) {
    case 'create': {
      const fd = await k.sys.open(P(o.p), O_WRONLY | O_CREAT, 0o644);
      if (fd < 0) return fd;
      return k.sys.close(fd);
    }
    case 'mkdir': return k.sys.mkdir(P(o.p), 0o755);
    case 'link': return k.sys.link(P(o.p), P(o.to));
    case 'unlink': return k.sys.unlink(P(o.p));
    case 'set': return k.sys.setxattr(P(o.p), o.n, o.v, 0);
    case 'rm': return k.sys.removexattr(P(o.p), o.n);
  }
}

/** The script, sized for block size `bs` (EXT4_XATTR_MIN_LARGE_EA_SIZE is bs - 23). */
function script(bs: number): Op[] {
  const set = (p: string, n: string, len: number, seed: number): Op => ({ op: 'set', p, n, v: pattern(len, seed) });
  return [
    { op: 'create', p: 'f1' },
    set('f1', 'user.big64', 65536, 10),                 // the largest value there is
    set('f1', 'user.small', 20, 11),                    // beside it, in the inode
    { op: 'create', p: 'f2' },
    set('f2', 'user.a', Math.floor(bs * 0.7), 12),      // to the block
    set('f2', 'user.b', Math.floor(bs * 0.7), 13),      // the block is full: to an ea_inode
    set('f1', 'user.big64', 65536, 14),                 // replaced: the old ea_inode goes
    set('f2', 'user.a', bs + 904, 15),                  // from the block to an ea_inode
    { op: 'rm', p: 'f2', n: 'user.b' },                 // removed: its ea_inode goes
    { op: 'create', p: 'f3' },
    set('f3', 'user.x', 20000, 16),
    { op: 'unlink', p: 'f3' },                          // the file goes, its ea_inode with it
    { op: 'create', p: 'f4' },
    set('f4', 'user.y', 9000, 17),
    { op: 'link', p: 'f4', to: 'f4l' },
    { op: 'unlink', p: 'f4' },                          // still linked: the value stays
    { op: 'rm', p: 'h1', n: 'user.shared' },            // an ea_inode the host shares
    set('hb1', 'user.new', 40, 18),                     // a block the host shares, naming an ea_inode
    set('hb2', 'user.big', 50, 19),                     // that ea_inode's value replaced by a small one
    { op: 'create', p: 'f5' },
    set('f5', 'user.v', bs - 23, 20),                   // just over the ea_inode size
    set('f5', 'user.w', bs - 24, 21),                   // just under: fits nowhere else, so an ea_inode too
    set('f5', 'user.v', 30, 22),                        // back to a small value
    { op: 'mkdir', p: 'd' },
    set('d', 'user.dir', 3 * bs, 23),                   // owned by a directory
    { op: 'create', p: 'f6' },
    set('f6', 'trusted.t', 2 * bs, 24),
    set('f6', 'security.s', 2 * bs, 25),
    set('f6', 'trusted.t', 2 * bs, 24),                 // the same value again
    set('f6', 'user.huge', 65537, 26),                  // over 64 KiB: E2BIG
    { op: 'create', p: 'f7' },
    { op: 'create', p: 'f8' },
    set('f7', 'user.same', 3 * bs, 27),
    set('f8', 'user.same', 3 * bs, 27),                 // the same value: the ea_inode is shared
    set('f8', 'user.other', 3 * bs, 27),                // and again, under another name
    { op: 'rm', p: 'f7', n: 'user.same' },              // one reference less, the value stays
    set('f7', 'user.again', 3 * bs, 27),
    set('f8', 'user.same', 3 * bs, 28),                 // replaced by another value: a new ea_inode
    { op: 'create', p: 'f9' },
    set('f9', 'user.shared', 2 * bs, 1),                // the host's shared value, not read since mount
  ];
}

/** What the host writes first, on the image both copies start from. */
async function populate(mnt: string, bs: number): Promise<void> {
  const setf = (f: string, n: string, v: Uint8Array) =>
    run('setfattr', ['-n', n, '-v', `0s${Buffer.from(v).toString('base64')}`, path.join(mnt, f)]);
  for (const f of ['h1', 'h2', 'hb1', 'hb2']) fs.writeFileSync(path.join(mnt, f), f);
  for (const f of ['h1', 'h2']) await setf(f, 'user.shared', pattern(2 * bs, 1));
  for (const f of ['hb1', 'hb2']) {
    await setf(f, 'user.fill', pattern(60, 2));       // fills the inode's room
    await setf(f, 'user.s', pattern(bs / 16, 3));     // so these go to the block
    await setf(f, 'user.big', pattern(2 * bs + 100, 4));
  }
}

interface Case { name: string; bs: number; sizeMiB: number; features: string[] }
const CASES: Case[] = [
  { name: 'ea_inode 4k, no journal', bs: 4096, sizeMiB: 32, features: ['ea_inode', '^has_journal'] },
  { name: 'ea_inode 1k, no journal', bs: 1024, sizeMiB: 32, features: ['ea_inode', '^has_journal'] },
  { name: 'ea_inode 4k, journal', bs: 4096, sizeMiB: 32, features: ['ea_inode'] },
];

/** The `getfattr` view of a tree as a plain object (files with no attributes left out). */
async function hostView(img: string): Promise<Record<string, Record<string, string>>> {
  return withLoopMount(img, { ro: true }, async (m) => {
    const out: Record<string, Record<string, string>> = {};
    for (const [p, x] of await readXattrs(m)) if (x.size) out[p] = Object.fromEntries([...x].sort());
    return out;
  });
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-ea-inode');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const c of CASES) {
    t.test(c.name, async (t) => {
      const base = path.join(dir, `${c.name.replace(/\W+/g, '_')}.img`);
      await makeExtImage({ type: 'ext4', path: base, sizeMiB: c.sizeMiB, blockSize: c.bs, inodeSize: 256, features: c.features });
      await withLoopMount(base, {}, (m) => populate(m, c.bs));
      const hostImg = `${base}.host`, lklImg = `${base}.lkl`;
      fs.copyFileSync(base, hostImg);
      fs.copyFileSync(base, lklImg);
      const ops = script(c.bs);

      const hostRes = await withLoopMount(hostImg, {}, async (m) => {
        const r: number[] = [];
        for (const o of ops) r.push(await hostStep(m, o));
        return r;
      });
      const id = await k.diskAdd({ path: lklImg });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      t.type(mnt, 'string', 'lkl-ts mounts the image read-write');
      if (typeof mnt !== 'string') return;
      const lklRes: number[] = [];
      try {
        for (const o of ops) lklRes.push(await lklStep(k, mnt, o));
      } finally {
        t.equal(await k.umountDev(id, 0), 0, 'unmounted');
      }
      t.same(lklRes.map((r, n) => `${describe(ops[n]!)}: ${r}`), hostRes.map((r, n) => `${describe(ops[n]!)}: ${r}`),
        'every step gives the host kernel\'s result');
      t.equal(hostRes.filter((r) => r !== 0).length, 1, 'the host refused only the value over 64 KiB');

      const ckL = await e2fsckClean(lklImg);
      t.ok(ckL.clean, 'e2fsck -fn is clean on lkl-ts\'s image', { output: ckL.output });
      const ckH = await e2fsckClean(hostImg);
      t.ok(ckH.clean, 'and on the host\'s', { output: ckH.output });
      const [hL, hH] = [await dumpe2fsHeader(lklImg), await dumpe2fsHeader(hostImg)];
      t.equal(hL.get('Free inodes'), hH.get('Free inodes'), `as many free inodes as the host leaves (${hH.get('Free inodes')})`);
      t.equal(hL.get('Free blocks'), hH.get('Free blocks'), `as many free blocks as the host leaves (${hH.get('Free blocks')})`);

      const want = await hostView(hostImg);
      const got = await hostView(lklImg);
      t.ok(Object.keys(want).length >= 8, `the host's tree has values on ${Object.keys(want).length} files`);
      t.same(got, want, 'the host kernel reads the same attributes from lkl-ts\'s image');

      /* lkl-ts reads its own image back the same */
      const id2 = await k.diskAdd({ path: lklImg, readOnly: true });
      const mnt2 = await k.mountDev(id2, 0, 'ext4', 1 /* MS_RDONLY */, '');
      if (typeof mnt2 !== 'string') { t.fail('read-only mount'); return; }
      try {
        const bad: string[] = [];
        for (const [p, x] of Object.entries(want)) {
          const l = await k.sys.listxattr(`${mnt2}/${p}`);
          if (!Array.isArray(l) || [...l].sort().join() !== Object.keys(x).join()) bad.push(`${p}: lists ${String(l)}`);
          for (const [n, v] of Object.entries(x)) {
            const g = await k.sys.getxattr(`${mnt2}/${p}`, n);
            if (!(g instanceof Uint8Array) || hex(g) !== v) bad.push(`${p} ${n}`);
          }
        }
        t.same(bad, [], 'lkl-ts reads every value back');
      } finally { t.equal(await k.umountDev(id2, 0), 0, 'unmounted'); }
    });
  }

  /* The bytes: the same changes by the host to one file and by lkl-ts to another. */
  t.test('layout as Linux\'s', async (t) => {
    const bs = 4096;
    const img = path.join(dir, 'layout.img');
    await makeExtImage({ type: 'ext4', path: img, sizeMiB: 16, blockSize: bs, inodeSize: 256, features: ['ea_inode', '^has_journal'] });
    const steps: [string, Uint8Array | null][] = [
      ['user.a', pattern(8, 1)], ['user.big', pattern(2 * bs, 2)], ['user.fill', pattern(40, 10)],
      ['user.bb', pattern(2 * bs, 11)], ['user.c', pattern(bs / 4, 3)],
      ['user.d', pattern(bs - 23, 4)], ['user.big', pattern(3 * bs, 5)], ['user.e', pattern(bs / 2, 6)],
      ['user.f', pattern(bs / 2, 7)], ['user.c', null], ['user.d', pattern(40, 8)], ['user.g', pattern(5000, 9)],
    ];
    await withLoopMount(img, {}, async (m) => {
      fs.writeFileSync(path.join(m, 'host'), 'h');
      fs.writeFileSync(path.join(m, 'lkl'), 'l');
      for (const [n, v] of steps) {
        const r = await hostStep(m, v ? { op: 'set', p: 'host', n, v } : { op: 'rm', p: 'host', n });
        if (r !== 0) t.fail(`host ${n}: ${r}`);
      }
    });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    if (typeof mnt !== 'string') { t.fail('mount'); return; }
    try {
      for (const [n, v] of steps) {
        const r = await lklStep(k, mnt, v ? { op: 'set', p: 'lkl', n, v } : { op: 'rm', p: 'lkl', n });
        if (r !== 0) t.fail(`lkl-ts ${n}: ${r}`);
      }
    } finally { t.equal(await k.umountDev(id, 0), 0, 'unmounted'); }
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });

    /* entries from `first` to the terminator, their e_value_inum zeroed (counted) */
    const maskInums = (b: Buffer, first: number): number => {
      let n = 0;
      for (let o = first; o + 4 <= b.length && b.readUInt32LE(o) !== 0; o += (b[o]! + 16 + 3) & ~3) {
        if (b.readUInt32LE(o + 4) !== 0) { b.writeUInt32LE(0, o + 4); n++; }
      }
      return n;
    };
    const dump = async (cmd: string, size: number) => parseDebugfsDump((await run('debugfs', ['-R', cmd, img])).stdout, size);
    const ibody = async (f: string) => {
      const raw = Buffer.from(await dump(`id /${f}`, 256));
      const start = 128 + raw.readUInt16LE(128);
      const area = Buffer.from(raw.subarray(start));
      return { n: maskInums(area, 4), hex: area.toString('hex') };
    };
    const fileAcl = async (f: string) => Number(/File ACL:\s*(\d+)/.exec((await run('debugfs', ['-R', `stat /${f}`, img])).stdout)?.[1] ?? 0);
    const block = async (blk: number) => {
      const b = Buffer.from(await dump(`bd ${blk}`, bs));
      b.fill(0, 16, 20);
      return { n: maskInums(b, 32), hex: b.toString('hex') };
    };
    const [ih, il] = [await ibody('host'), await ibody('lkl')];
    t.ok(ih.n > 0, `the host's in-inode area names ${ih.n} ea_inode(s)`);
    t.equal(il.hex, ih.hex, 'the in-inode area is the host\'s but for the ea_inode numbers');
    const [bh, bl] = [await fileAcl('host'), await fileAcl('lkl')];
    t.ok(bh > 0 && bl > 0, 'both have a block');
    if (bh > 0 && bl > 0) {
      const [xh, xl] = [await block(bh), await block(bl)];
      t.ok(xh.n > 0, `the host's block names ${xh.n} ea_inode(s)`);
      t.equal(xl.hex, xh.hex, 'the block is the host\'s but for the ea_inode numbers and its checksum');
    }
  });
}
