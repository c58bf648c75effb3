/*
 * fs2tar of an `mke2fs -d` ext4 image: `tar -tvf` lists every entry (a hard link as a link,
 * the device node with its numbers, the long name whole); `tar -xpf` into a temp dir gives a
 * tree `diff -r` finds equal to the source, with modes, owners, mtimes (nanoseconds where the
 * image has them), device numbers and the hard link; xattrs (by default; -x is accepted)
 * are what GNU tar --xattrs restores, --no-xattrs leaves them out; TARFILE "-" writes the same bytes to stdout; the image is unchanged.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExtImage } from '../lib/images.js';
import { isRoot, run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { buildTree, type NodeSpec } from '../lib/tree.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> =>
  run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 300_000 });
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

const T0 = 981_173_106n; // 2001-02-03T04:05:06Z
const S = 1_000_000_000n;
const LONG = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(120)}.txt`; // > 100 bytes, no ustar split fits

function diffLines(text: string): string[] {
  return text.split('\n').filter((l) => l && !/^File .* is a (fifo|character special file|block special file) while file .* is a \1$/.test(l));
}

function tree(): NodeSpec[] {
  const n: NodeSpec[] = [
    { kind: 'file', path: 'hello.txt', content: { kind: 'text', text: 'hello\n' }, mtimeNs: (T0 + 1n) * S },
    { kind: 'file', path: 'bin/big', content: { kind: 'random', size: 2 * 1024 * 1024 + 3 }, mode: 0o755 },
    { kind: 'file', path: 'bin/setuid', content: { kind: 'text', text: '#!/bin/sh\n' }, mode: 0o4755 },
    { kind: 'dir', path: 'empty', mode: 0o700 },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    { kind: 'symlink', path: 'link-rel', target: 'hello.txt' },
    { kind: 'symlink', path: 'link-long', target: `${'x'.repeat(150)}/target` },
    { kind: 'file', path: 'orig', content: { kind: 'text', text: 'one inode\n' } },
    { kind: 'hardlink', path: 'bin/hard', target: 'orig' },
    { kind: 'file', path: LONG, content: { kind: 'text', text: 'long path\n' } },
    { kind: 'file', path: 'names/日本語-é.txt', content: { kind: 'text', text: 'utf8\n' } },
    { kind: 'file', path: 'xattr-file', content: { kind: 'text', text: 'x\n' }, xattrs: { 'user.colour': 'blue', 'user.bin': new Uint8Array([0, 1, 2, 255]) } },
  ];
  if (isRoot()) {
    n.push({ kind: 'chr', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
    n.push({ kind: 'blk', path: 'dev/loop0', major: 7, minor: 0, mode: 0o660, gid: 6 });
    n.push({ kind: 'fifo', path: 'dev/fifo', mode: 0o640 });
    n.push({ kind: 'file', path: 'owned', content: { kind: 'text', text: 'o\n' }, uid: 1000, gid: 2000 });
  }
  return n;
}

interface Attr { mode: number; uid: number; gid: number; mtimeNs: bigint; rdev: bigint; ino: bigint }
function attrs(root: string): Map<string, Attr> {
  const out = new Map<string, Attr>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      if (!rel && name === 'lost+found') continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r), { bigint: true });
      out.set(r, { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, rdev: st.rdev, ino: st.ino });
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

const skip = whyNot(['mke2fs', 'debugfs', 'tar', 'diff', 'touch', 'mknod', 'setfattr', 'getfattr']);

t.test('fs2tar of an mke2fs -d image: tar -tvf lists it, tar -xpf gives back the source', { skip }, async (t) => {
  const dir = scratchDir(t, 'fs2tar');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: tree(), defaultTimeNs: T0 * S });
  const img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 64, blockSize: 4096, fromDir: src });
  // mke2fs -d keeps whole seconds only: give one file nanoseconds in the image and the source.
  const NS = 123_456_789;
  await run('debugfs', ['-w', '-R', `sif /hello.txt mtime_extra ${NS * 4}`, img]);
  await run('touch', ['-h', '-m', '-d', `@${T0 + 1n}.${NS}`, path.join(src, 'hello.txt')]);
  const before = sha(img);

  const tarFile = path.join(dir, 'out.tar');
  const r = await tool('fs2tar', ['--no-xattrs', img, tarFile]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(r.stderr, '', 'nothing on stderr');
  t.equal(sha(img), before, 'the image is unchanged');
  t.equal(fs.statSync(tarFile).size % 10240, 0, 'the archive is a whole number of 10 KiB records');

  const list = await run('tar', ['-tvf', tarFile, '--full-time']);
  const lines = list.stdout.split('\n');
  const line = (p: string) => lines.find((l) => l.endsWith(` ${p}`) || l.includes(` ${p} `)) ?? '';
  t.ok(lines.some((l) => /^h.* (orig link to bin\/hard|bin\/hard link to orig)$/.test(l)), 'the second name is listed as a hard link');
  t.match(line('hello.txt'), /2001-02-03 04:05:07\.123456789/, 'nanosecond mtime listed');
  t.match(line(LONG), /^-/, 'the long name is listed whole');
  t.match(line(`link-long -> ${'x'.repeat(150)}/target`), /^l/, 'the long symlink target is listed whole');
  if (isRoot()) {
    t.match(line('dev/null'), /^crw-rw-rw- 0\/0 +1,3 /, 'the character device with its numbers');
    t.match(line('dev/loop0'), /^brw-rw---- 0\/6 +7,0 /, 'the block device with its numbers');
    t.match(line('owned'), / 1000\/2000 /, 'numeric owner');
  }

  const x = path.join(dir, 'x');
  fs.mkdirSync(x);
  await run('tar', ['-xpf', tarFile, '-C', x]);
  const d = await run('diff', ['-r', '--no-dereference', '-x', 'lost+found', src, x], { allowFail: true });
  t.same(diffLines(d.stdout + d.stderr), [], 'diff -r source extracted is empty');
  const a = attrs(src), b = attrs(x);
  t.same([...b.keys()].sort(), [...a.keys()].sort(), 'the same entries');
  const off: string[] = [];
  for (const [p, s] of a) {
    const e = b.get(p);
    if (!e) continue;
    for (const k of ['mode', 'uid', 'gid', 'mtimeNs', 'rdev'] as const) {
      if (k === 'mtimeNs' && (s.mode & 0o170000) === 0o120000) continue; // tar does not restore symlink times
      if (s[k] !== e[k]) off.push(`${p}: ${k} ${e[k]} != ${s[k]}`);
    }
  }
  t.same(off, [], 'modes, owners, mtimes (to the nanosecond) and device numbers');
  t.equal(b.get('bin/hard')!.ino, b.get('orig')!.ino, 'the hard link is one inode again');

  // stdout gives the same archive
  const s = await run(process.execPath, [BIN('fs2tar'), '--no-xattrs', img, '-'], { maxBuffer: 64 * 1024 * 1024 });
  t.equal(crypto.createHash('sha256').update(s.stdoutBuf).digest('hex'), sha(tarFile), 'fs2tar IMAGE - writes the same bytes');

  // by default (-x is the old spelling): xattrs as SCHILY.xattr records, restored by GNU tar --xattrs
  const tarX = path.join(dir, 'x.tar');
  const rx = await tool('fs2tar', ['-x', '-t', 'ext4', img, tarX]);
  t.equal(rx.code, 0, `-x: exit 0 (${rx.stderr})`);
  t.ok(fs.readFileSync(tarX).includes('SCHILY.xattr.user.colour=blue'), 'SCHILY.xattr record in the archive');
  t.notOk(fs.readFileSync(tarFile).includes('SCHILY.xattr'), 'no xattrs with --no-xattrs');
  const xx = path.join(dir, 'xx');
  fs.mkdirSync(xx);
  await run('tar', ['--xattrs', '--xattrs-include=user.*', '-xpf', tarX, '-C', xx]);
  const g = await run('getfattr', ['-d', '-e', 'hex', path.join(xx, 'xattr-file')]);
  t.match(g.stdout, /user\.colour=0x626c7565/, 'user.colour restored');
  t.match(g.stdout, /user\.bin=0x000102ff/, 'binary value restored');
});
