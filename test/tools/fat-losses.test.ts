/*
 * cptofs -p of a tree FAT cannot hold whole into a vfat image: it copies what FAT holds
 * (directories, files, contents, mtimes to FAT's 2 s, sparse files written whole), says what
 * it leaves out with one warning line per kind of loss (not per file: every kind appears
 * twice in the tree), exits 0; fsck.vfat -n finds the image clean and mtools sees the tree.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsckVfatClean, makeVfatImage, mtoolsCopyOut, mtoolsList } from '../lib/images.js';
import { run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { buildTree, type NodeSpec } from '../lib/tree.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> =>
  run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 80_000 });

const S = 1_000_000_000n;
const T0 = 1_600_000_000n * S;

function tree(): NodeSpec[] {
  return [
    { kind: 'file', path: 'a.txt', content: { kind: 'text', text: 'a\n' }, mtimeNs: T0 + 123_456_789n, uid: 1000, gid: 1000, mode: 0o600 },
    { kind: 'file', path: 'sub/b.txt', content: { kind: 'text', text: 'b\n' }, uid: 1001, mode: 0o640, xattrs: { 'user.one': '1' } },
    { kind: 'file', path: 'sub/c.txt', content: { kind: 'text', text: 'c\n' }, xattrs: { 'user.two': '2' }, acl: 'u:1234:rwx' },
    { kind: 'file', path: 'sub/d.txt', content: { kind: 'text', text: 'd\n' }, acl: 'u:4321:r--' },
    { kind: 'symlink', path: 'l1', target: 'a.txt' },
    { kind: 'symlink', path: 'sub/l2', target: '../a.txt' },
    { kind: 'hardlink', path: 'h1', target: 'a.txt' },
    { kind: 'hardlink', path: 'sub/h2', target: 'a.txt' },
    { kind: 'fifo', path: 'f1' },
    { kind: 'fifo', path: 'sub/f2' },
    { kind: 'chr', path: 'c1', major: 1, minor: 3 },
    { kind: 'chr', path: 'sub/c2', major: 1, minor: 5 },
    { kind: 'blk', path: 'b1', major: 7, minor: 0 },
    { kind: 'file', path: 'sparse', content: { kind: 'sparse', size: 1024 * 1024, extents: [{ offset: 500_000, length: 10 }] } },
    { kind: 'file', path: 'sparse2', content: { kind: 'sparse', size: 300_000, extents: [{ offset: 0, length: 10 }] } },
  ];
}

const skip = whyNot(['mkfs.vfat', 'fsck.vfat', 'mcopy', 'mdir', 'setfattr', 'getfattr', 'setfacl', 'touch', 'mknod', 'perl'], { root: true });

t.test('cptofs -p into vfat: what FAT holds is copied, one warning per kind of loss', { skip, timeout: 90_000 }, async (t) => {
  const dir = scratchDir(t, 'fat-losses');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: tree(), defaultTimeNs: T0 });
  const img = await makeVfatImage({ dir, fat: 16, sizeMiB: 32 });

  const r = await tool('cptofs', ['-p', '-i', img, `${src}/.`, '/']);
  t.equal(r.code, 0, `exit 0: losses are not errors (${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  t.equal(count(/symbolic links skipped/), 1, 'one line for the symlinks');
  t.equal(count(/fifos skipped/), 1, 'one line for the fifos');
  t.equal(count(/character devices skipped/), 1, 'one line for the character devices');
  t.equal(count(/block devices skipped/), 1, 'one line for the block device');
  t.equal(count(/hard links/), 1, 'one line for the hard links');
  t.equal(count(/owners not preserved/), 1, 'one line for the owners');
  t.equal(count(/modes not preserved/), 1, 'one line for the modes');
  t.equal(count(/^cptofs: warning: extended attributes not preserved/), 1, 'one line for the xattrs');
  t.equal(count(/POSIX ACLs not preserved/), 1, 'one line for the ACLs');
  t.equal(count(/no holes/), 1, 'one line for the holes');
  t.equal(count(/2 seconds/), 1, 'one line for the times');
  t.ok(lines.every((l) => l.startsWith('cptofs: ')), 'every line names the tool');
  t.ok(lines.length <= 12, `no line per file (${lines.length} lines):\n${r.stderr}`);

  const fsck = await fsckVfatClean(img);
  t.ok(fsck.clean, `fsck.vfat -n clean: ${fsck.output}`);
  const list = await mtoolsList(img);
  const names = list.entries.map((e) => e.path).sort();
  t.same(names, ['a.txt', 'h1', 'sparse', 'sparse2', 'sub', 'sub/b.txt', 'sub/c.txt', 'sub/d.txt', 'sub/h2'], 'mtools sees the files and directories');
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  await mtoolsCopyOut(img, out);
  for (const p of ['a.txt', 'h1', 'sub/h2', 'sub/b.txt', 'sparse', 'sparse2']) {
    t.ok(fs.readFileSync(path.join(out, p)).equals(fs.readFileSync(path.join(src, p))), `${p}: the same content`);
  }
  const m = Number(fs.statSync(path.join(out, 'a.txt')).mtimeMs / 1000);
  t.ok(Math.abs(m - 1_600_000_000) <= 2, `a.txt: mtime within FAT's 2 s (${m})`);
});
