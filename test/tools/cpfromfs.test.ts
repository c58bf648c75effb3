/*
 * cpfromfs out of images other tools made: an `mke2fs -d` ext4 image (symlinks, a hard link,
 * a fifo and a device node, setuid and unusual modes, other owners, a long name) and a vfat
 * image filled by mtools. `diff -r` against the source is empty; with -p the modes, owners
 * and mtimes follow (ext4: exact seconds; vfat: 2 s), the hard link is one inode again; the
 * image is byte for byte unchanged (it is opened read-only).
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExtImage, makeVfatImage, mtoolsCopyIn } from '../lib/images.js';
import { isRoot, run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { buildTree, type NodeSpec } from '../lib/tree.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> => run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 300_000 });
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

const T0 = 981_173_106n; // 2001-02-03T04:05:06Z
const S = 1_000_000_000n;

/** diff -r output minus the lines GNU diff prints for two fifos or two device nodes. */
function diffLines(text: string): string[] {
  return text.split('\n').filter((l) => l && !/^File .* is a (fifo|character special file|block special file) while file .* is a \1$/.test(l));
}

function extTree(): NodeSpec[] {
  const n: NodeSpec[] = [
    { kind: 'file', path: 'etc/hostname', content: { kind: 'text', text: 'lkl\n' }, mtimeNs: (T0 + 1n) * S },
    { kind: 'file', path: 'data/big.bin', content: { kind: 'random', size: 3 * 1024 * 1024 + 17 }, mtimeNs: (T0 + 2n) * S },
    { kind: 'file', path: 'data/empty', content: { kind: 'text', text: '' } },
    { kind: 'file', path: 'data/sparse', content: { kind: 'sparse', size: 5 * 1024 * 1024, extents: [{ offset: 4096, length: 100 }] } },
    { kind: 'dir', path: 'data/emptydir', mode: 0o700, mtimeNs: (T0 + 5n) * S },
    { kind: 'symlink', path: 'links/rel', target: '../etc/hostname' },
    { kind: 'symlink', path: 'links/abs', target: '/etc/hostname' },
    { kind: 'symlink', path: 'links/dangling', target: 'no/such/thing' },
    { kind: 'file', path: 'links/orig', content: { kind: 'text', text: 'linked\n' } },
    { kind: 'hardlink', path: 'links/hard', target: 'links/orig' },
    { kind: 'file', path: 'modes/setuid', content: { kind: 'text', text: '#!/bin/sh\n' }, mode: 0o4755 },
    { kind: 'file', path: 'modes/private', content: { kind: 'text', text: 'p\n' }, mode: 0o600 },
    { kind: 'dir', path: 'modes/sticky', mode: 0o1777 },
    { kind: 'file', path: `long/${'n'.repeat(150)}`, content: { kind: 'text', text: 'long name\n' } },
    { kind: 'file', path: 'long/日本語-é.txt', content: { kind: 'text', text: 'utf8\n' } },
  ];
  if (isRoot()) {
    n.push({ kind: 'file', path: 'owners/user', content: { kind: 'text', text: 'u\n' }, uid: 1000, gid: 1000 });
    n.push({ kind: 'fifo', path: 'special/fifo', mode: 0o640 });
    n.push({ kind: 'chr', path: 'special/null', major: 1, minor: 3, mode: 0o666 });
  }
  return n;
}

interface Attr { mode: number; uid: number; gid: number; mtime: number; rdev: number; ino: number }
function attrs(root: string, skipNames: string[] = []): Map<string, Attr> {
  const out = new Map<string, Attr>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      if (!rel && skipNames.includes(name)) continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      out.set(r, { mode: st.mode, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), rdev: st.rdev, ino: st.ino });
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

t.test('cpfromfs -p out of an mke2fs -d ext4 image: diff -r empty, modes/owners/mtimes exact, hard link kept', { skip: whyNot(['mke2fs', 'diff', 'touch', 'mknod']) }, async (t) => {
  const dir = scratchDir(t, 'cpfromfs-ext4');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: extTree(), defaultTimeNs: T0 * S });
  const img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 64, blockSize: 4096, fromDir: src });
  const before = sha(img);

  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await tool('cpfromfs', ['-i', img, '-p', '/', out]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(r.stderr, '', 'nothing on stderr');

  const d = await run('diff', ['-r', '--no-dereference', '-x', 'lost+found', src, out], { allowFail: true });
  t.same(diffLines(d.stdout + d.stderr), [], 'diff -r source copy is empty');

  const a = attrs(src), b = attrs(out, ['lost+found']);
  t.same([...b.keys()].sort(), [...a.keys()].sort(), 'the same entries');
  const off: string[] = [];
  for (const [p, x] of a) {
    const y = b.get(p);
    if (!y) continue;
    for (const k of ['mode', 'uid', 'gid', 'mtime', 'rdev'] as const) {
      if (x[k] !== y[k]) off.push(`${p}: ${k} ${y[k]} != ${x[k]}`);
    }
  }
  t.same(off, [], 'mode (with setuid/sticky), uid, gid, mtime (seconds) and device numbers preserved');
  t.equal(b.get('links/hard')!.ino, b.get('links/orig')!.ino, 'the hard link is one inode');
  t.ok(fs.statSync(path.join(out, 'data/sparse')).blocks * 512 < 1024 * 1024, 'the sparse file stays sparse');
  t.equal(sha(img), before, 'the image is unchanged');

  // Without -p: modes minus the umask, times of the copy; a single file to a new name.
  const single = path.join(dir, 'single.txt');
  const r2 = await tool('cpfromfs', ['-i', img, 'etc/hostname', single]);
  t.equal(r2.code, 0, `single file: exit 0 (${r2.stderr})`);
  t.equal(fs.readFileSync(single, 'utf8'), 'lkl\n');
  t.ok(Math.abs(fs.statSync(single).mtimeMs - Date.now()) < 60_000, 'without -p the mtime is the time of the copy');
});

t.test('cpfromfs -p out of a vfat image filled by mtools: diff -r empty, mtimes within 2 s', { skip: whyNot(['mkfs.vfat', 'mcopy', 'diff', 'touch']) }, async (t) => {
  const dir = scratchDir(t, 'cpfromfs-vfat');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const nodes: NodeSpec[] = [
    { kind: 'file', path: 'README.TXT', content: { kind: 'text', text: 'readme\n' }, mtimeNs: (T0 + 1n) * S },
    { kind: 'file', path: 'Long File Name with Spaces.dat', content: { kind: 'random', size: 100_000 }, mtimeNs: (T0 + 4n) * S },
    { kind: 'file', path: 'sub/dir/deep.bin', content: { kind: 'random', size: 5000 }, mtimeNs: (T0 + 7n) * S },
    { kind: 'file', path: 'sub/empty', content: { kind: 'text', text: '' } },
    { kind: 'dir', path: 'sub/emptydir' },
    { kind: 'file', path: 'grüße/日本語.txt', content: { kind: 'text', text: 'utf8\n' } },
  ];
  await buildTree(src, { nodes, defaultTimeNs: T0 * S });
  const img = await makeVfatImage({ dir, fat: 16, sizeMiB: 32 });
  await mtoolsCopyIn(img, src);
  const before = sha(img);

  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await tool('cpfromfs', ['-i', img, '-p', '/', out]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  const d = await run('diff', ['-r', src, out], { allowFail: true });
  t.equal(d.stdout + d.stderr, '', 'diff -r source copy is empty');
  const a = attrs(src), b = attrs(out);
  const off: string[] = [];
  for (const [p, x] of a) {
    if (fs.lstatSync(path.join(src, p)).isDirectory()) continue; // mcopy sets directory times to now
    const y = b.get(p);
    if (!y || Math.abs(y.mtime - x.mtime) > 2) off.push(`${p}: ${y?.mtime} vs ${x.mtime}`);
  }
  t.same(off, [], 'file mtimes within 2 s');
  t.equal(sha(img), before, 'the image is unchanged');

  // Copying one directory into an existing host directory puts it under its own name.
  const into = path.join(dir, 'into');
  fs.mkdirSync(into);
  const r2 = await tool('cpfromfs', ['-i', img, '-t', 'vfat', '/sub', into]);
  t.equal(r2.code, 0, `directory into a directory: exit 0 (${r2.stderr})`);
  t.equal(fs.readFileSync(path.join(into, 'sub/dir/deep.bin')).length, 5000);
});
