/*
 * A damaged image whose directory lists a name with a slash ("../../pwn1", patched into the
 * directory block of an mke2fs -d image without checksums): cpfromfs refuses it with one
 * line and exit 1, nothing lands outside the destination; fs2tar refuses it too. And the
 * name check itself (badName) on the names that would escape.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { badName } from '../../lib/tools/sides.js';
import { makeExtImage } from '../lib/images.js';
import { run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { buildTree } from '../lib/tree.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> =>
  run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 60_000 });

t.test('badName: names that would lead out of a directory', async (t) => {
  for (const n of ['', '.', '..', 'a/b', '../x', '/', 'a\0b']) t.ok(badName(Buffer.from(n)), JSON.stringify(n));
  for (const n of ['...', '.a', '..a', 'a..', 'é', ' ']) t.notOk(badName(Buffer.from(n)), JSON.stringify(n));
});

t.test('cpfromfs and fs2tar refuse a name with a slash from a damaged image', { skip: whyNot(['mke2fs']) }, async (t) => {
  const dir = scratchDir(t, 'escape');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: [
    { kind: 'file', path: 'ok.txt', content: { kind: 'text', text: 'ok\n' } },
    { kind: 'file', path: 'deep/ESCAPEQQQQ', content: { kind: 'text', text: 'evil\n' } },
  ] });
  const img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 8, blockSize: 4096, fromDir: src, features: ['^metadata_csum', '^has_journal'] });
  const bytes = fs.readFileSync(img);
  const at = bytes.indexOf('ESCAPEQQQQ');
  t.ok(at > 0 && bytes.indexOf('ESCAPEQQQQ', at + 1) < 0, 'the name is in the image once');
  bytes.write('../../pwn1', at, 'latin1');
  fs.writeFileSync(img, bytes);

  const out = path.join(dir, 'a', 'b', 'out');
  fs.mkdirSync(out, { recursive: true });
  const r = await tool('cpfromfs', ['-p', '-i', img, '/', out]);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, /^cpfromfs: \/deep\/\.\.\/\.\.\/pwn1: .*refusing a directory entry name that would escape/, r.stderr);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  for (const p of [path.join(out, 'deep', '..', '..', 'pwn1'), path.join(dir, 'a', 'b', 'pwn1'), path.join(dir, 'a', 'pwn1')]) {
    t.notOk(fs.existsSync(p), `nothing at ${path.relative(dir, p)}`);
  }

  const tarFile = path.join(dir, 'x.tar');
  const a = await tool('fs2tar', [img, tarFile]);
  t.equal(a.code, 1, 'fs2tar: exit 1');
  t.match(a.stderr, /refusing a directory entry name that would escape/, a.stderr);
  t.notOk(fs.existsSync(tarFile), 'no partial archive');
});
