// inline_data written as Linux writes it (fs/ext4/inline.c). The same script runs on two
// copies of a fresh image, one by the host kernel through a loop mount and one by lkl-ts
// through its system calls. Then, besides e2fsck -fn on both and the host kernel reading
// both trees alike, the layout must be the host's for every path (debugfs on both images):
// inline or not, i_size, the size of the inline area, and for directories every record in
// order with its rec_len (in the inode, and in block 0 after a conversion).
//
// The script: new empty files and directories; writes that fit the inode (in i_block, in
// the system.data value, exactly at the limit) and that do not; appends and writes at an
// offset inside the limit; truncates down (kept inline, the value shrinking) and up (kept
// inline inside the area, moved to a block past it); fallocate (moved to a block);
// directories filled to i_block's end, into the xattr space and past it (converted);
// unlink, rmdir, link and rename in inline directories, a directory moved between inline
// parents (its ".." in i_block), rename over an existing entry; an xattr that leaves less
// room. Variants: 4 KiB blocks without and with a journal, 1 KiB blocks, 512-byte inodes
// (more room inline), and metadata_csum off. (mke2fs refuses inline_data with 128-byte inodes.)

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, type ExtImageOptions } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel } from '../../lib/index.js';
import { checkBothImages, hostApply, lklApply, type Op } from './write-script.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'debugfs', 'losetup', 'mount', 'setfattr', 'fallocate'], { root: true });

interface Case { name: string; image: Omit<ExtImageOptions, 'dir' | 'path'>; mountData?: string }
const CASES: Case[] = [
  { name: '4k', image: { type: 'ext4', sizeMiB: 64, blockSize: 4096, features: ['^has_journal', 'inline_data'] } },
  { name: '4k journal', image: { type: 'ext4', sizeMiB: 64, blockSize: 4096, features: ['inline_data'] } },
  { name: '1k', image: { type: 'ext4', sizeMiB: 64, blockSize: 1024, features: ['^has_journal', 'inline_data'] } },
  { name: '512-byte inodes', image: { type: 'ext4', sizeMiB: 64, blockSize: 4096, inodeSize: 512, features: ['^has_journal', 'inline_data'] } },
  { name: '^metadata_csum', image: { type: 'ext4', sizeMiB: 64, blockSize: 4096, features: ['^has_journal', '^metadata_csum', 'inline_data'] } },
];

const w = (p: string, size: number, seed: number, extra: Partial<Extract<Op, { op: 'write' }>> = {}): Op => ({ op: 'write', p, size, seed, ...extra });
const files = (dir: string, names: string[]): Op[] => names.map((n, i) => w(`${dir}/${n}`, 0, i));

const SCRIPT: Op[] = [
  { op: 'mkdir', p: 'd', mode: 0o755 },
  w('empty', 0, 1),
  w('f10', 10, 2), w('f100', 100, 3), w('f128', 128, 4), w('f129', 129, 5), w('f200', 200, 6), w('f400', 400, 7),
  w('f1000', 1000, 8), w('f5000', 5000, 9),
  w('t-up-out', 10, 10), { op: 'truncate', p: 't-up-out', size: 100 },
  w('t-up-in', 10, 11), { op: 'truncate', p: 't-up-in', size: 50 },
  w('t-down-small', 100, 12), { op: 'truncate', p: 't-down-small', size: 5 },
  w('t-down-value', 100, 13), { op: 'truncate', p: 't-down-value', size: 70 },
  w('t-zero', 100, 14), { op: 'truncate', p: 't-zero', size: 0 },
  w('t-empty-up', 0, 15), { op: 'truncate', p: 't-empty-up', size: 30 },
  w('append', 5, 16), w('append', 5, 17, { mode: 'append' }), w('append', 70, 18, { mode: 'append' }),
  w('append-out', 100, 19), w('append-out', 100, 20, { mode: 'append' }),
  w('at-in', 5, 21), w('at-in', 5, 22, { mode: 'keep', at: 40 }),
  w('at-value', 5, 23), w('at-value', 5, 24, { mode: 'keep', at: 100 }),
  w('at-out', 5, 25), w('at-out', 5, 26, { mode: 'keep', at: 3000 }),
  w('overwrite', 90, 27), w('overwrite', 20, 28, { mode: 'keep', at: 50 }),
  w('falloc', 10, 29), { op: 'fallocate', p: 'falloc', mode: 'keep', off: 0, len: 20 },
  { op: 'mkdir', p: 'one', mode: 0o755 }, ...files('one', ['a']),
  { op: 'mkdir', p: 'four', mode: 0o755 }, ...files('four', ['a', 'bbbbbbbbbbbb', 'cccccccccccccc', 'dd']),
  { op: 'mkdir', p: 'eight', mode: 0o755 }, ...files('eight', ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8']),
  { op: 'mkdir', p: 'twelve', mode: 0o755 }, ...files('twelve', Array.from({ length: 12 }, (_, i) => `n${i + 1}`)),
  { op: 'mkdir', p: 'long', mode: 0o755 }, ...files('long', ['x'.repeat(60), 'y'.repeat(200)]),
  { op: 'mkdir', p: 'mv', mode: 0o755 }, ...files('mv', ['x', 'y']),
  { op: 'unlink', p: 'mv/x' },
  { op: 'mkdir', p: 'one/sub', mode: 0o755 }, w('one/sub/inner', 20, 30),
  { op: 'rename', from: 'one/sub', to: 'mv/sub' },
  { op: 'rename', from: 'mv/y', to: 'mv/z' },
  { op: 'unlink', p: 'eight/n7' }, { op: 'unlink', p: 'eight/n2' }, { op: 'unlink', p: 'eight/n1' },
  ...files('eight', ['m1']),
  { op: 'link', from: 'f10', p: 'four/f10-link' },
  w('four/over', 3, 31), { op: 'rename', from: 'four/a', to: 'four/over' },
  { op: 'rename', from: 'f100', to: 'eight/f100' },
  { op: 'mkdir', p: 'gone', mode: 0o755 }, ...files('gone', ['a', 'b']),
  { op: 'unlink', p: 'gone/a' }, { op: 'unlink', p: 'gone/b' }, { op: 'rmdir', p: 'gone' },
  { op: 'mkdir', p: 'd/deep', mode: 0o700 }, { op: 'mkdir', p: 'd/deep/er', mode: 0o700 },
  { op: 'symlink', target: 'f10', p: 'fast-link' }, { op: 'symlink', target: 'z'.repeat(100), p: 'slow-link' },
  { op: 'mknod', p: 'fifo', kind: 'p' },
  w('xattr-file', 100, 32), w('xattr-then', 10, 33),
];

/** After SCRIPT: xattrs on inline inodes, then writes that the smaller room must move. */
const XATTRS: { p: string; name: string; value: string }[] = [
  { p: 'xattr-file', name: 'user.note', value: 'v'.repeat(30) },
  { p: 'xattr-then', name: 'user.note', value: 'w'.repeat(40) },
  { p: 'd', name: 'user.dir', value: 'u'.repeat(20) },
];
const AFTER: Op[] = [
  w('xattr-then', 100, 34, { mode: 'append' }),
  ...files('d', ['a', 'bbbbbbbbbbbbbbbbbbbbbbbb', 'c', 'dd', 'eee']),
];

interface Layout { inline: boolean; size: string; inlineSize: string; entries?: string[] }

/** debugfs's view of one path: inline flag, sizes, and for directories the records with rec_len. */
async function layoutOf(img: string, p: string): Promise<Layout> {
  const st = (await run('debugfs', ['-R', `stat "/${p}"`, img])).stdout;
  const flags = Number(/Flags: (0x[0-9a-f]+)/.exec(st)?.[1] ?? 'NaN');
  const type = /Type: (\w+)/.exec(st)?.[1];
  const out: Layout = {
    inline: (flags & 0x10000000) !== 0,
    size: /\bSize: (\d+)/.exec(st)?.[1] ?? '?',
    inlineSize: /Size of inline data: (\d+)/.exec(st)?.[1] ?? '-',
  };
  if (type === 'directory') {
    // `ls -d`: "ino  (rec_len) name", deleted records as "<ino>"; a wiped free record has no name.
    const ls = (await run('debugfs', ['-R', `ls -d "/${p}"`, img])).stdout;
    out.entries = [...ls.matchAll(/(<?)(\d+)>?\s+\((\d+)\) (\S*)/g)]
      .map((m) => `${m[4]}(${m[3]})${m[1] ? ' deleted' : m[2] === '0' ? ' free' : ''}`);
  }
  return out;
}

function walk(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
    if (!rel && n === 'lost+found') continue;
    const r = rel ? `${rel}/${n}` : n;
    out.push(r);
    if (fs.lstatSync(path.join(root, r)).isDirectory()) out.push(...walk(root, r));
  }
  return out;
}

t.test('inline_data writes against the host kernel', { skip }, async (t) => {
  const dir = scratchDir(t, 'ext4-inline-write');
  const k = await startKernel();
  t.teardown(() => k.halt());
  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      const base = path.join(dir, `${c.name.replace(/\W+/g, '_')}.img`);
      await makeExtImage({ ...c.image, path: base });
      const lklImg = `${base}.lkl`, hostImg = `${base}.host`;
      fs.copyFileSync(base, lklImg);
      fs.copyFileSync(base, hostImg);

      let paths: string[] = [];
      await withLoopMount(hostImg, {}, async (mnt) => {
        await hostApply(mnt, SCRIPT);
        for (const x of XATTRS) await run('setfattr', ['-n', x.name, '-v', x.value, path.join(mnt, x.p)]);
        await hostApply(mnt, AFTER);
        paths = walk(mnt);
      });

      const id = await k.diskAdd({ path: lklImg });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, c.mountData ?? '');
      t.type(mnt, 'string', 'mounted read-write');
      if (typeof mnt !== 'string') return;
      try {
        await lklApply(k, mnt, SCRIPT);
        for (const x of XATTRS) {
          t.equal(await k.sys.setxattr(`${mnt}/${x.p}`, x.name, new TextEncoder().encode(x.value), 0), 0, `setxattr ${x.p}`);
        }
        await lklApply(k, mnt, AFTER);
      } finally {
        t.equal(await k.umountDev(id, 0), 0, 'unmounted');
      }

      await checkBothImages(t, lklImg, hostImg, { ignore: ['ctime', 'atime', 'mtime'] });

      let inlineSeen = 0;
      const diffs: string[] = [];
      const host = new Map<string, Layout>();
      for (const p of paths) {
        const [a, b] = [await layoutOf(hostImg, p), await layoutOf(lklImg, p)];
        host.set(p, a);
        if (a.inline) inlineSeen++;
        if (JSON.stringify(a) !== JSON.stringify(b)) diffs.push(`${p}: host ${JSON.stringify(a)} lkl-ts ${JSON.stringify(b)}`);
      }
      t.same(diffs, [], `inline flags, sizes and directory records as the host's (${paths.length} paths)`);
      t.ok(inlineSeen >= 15, `the host made ${inlineSeen} inline inodes`);
      // The comparison sees what it should: the boundaries the script aims at, on the host's side.
      const four = host.get('four'), twelve = host.get('twelve'), f10 = host.get('f10');
      t.ok(four?.inline && (four.entries?.length ?? 0) >= 7 && four.size === four.inlineSize && four.entries?.some((e) => e.endsWith(' free')),
        'the host keeps "four" inline, grown into the xattr space, its records (a freed one too) listed', { four });
      if (!c.image.inodeSize) t.ok(twelve && !twelve.inline && (twelve.entries?.length ?? 0) === 14, 'the host moved "twelve" to a block', { twelve });
      t.ok(f10?.inline && f10.size === '10' && f10.inlineSize === '60', 'a 10-byte file is inline in i_block', { f10 });
      if (!c.image.inodeSize) {
        t.same([host.get('f128')?.inline, host.get('f129')?.inline], [true, false], '128 bytes is the limit of a 256-byte inode');
      }
    });
  }
});
