/*
 * cptofs onto fresh mkfs.vfat images (FAT16 and FAT32): a host tree (nested and empty
 * directories, sizes 0 to 1 MiB + 1, long and UTF-8 names FAT holds, odd and even mtimes)
 * copied with -p; fsck.vfat -n finds the image clean; mtools copies it back out and
 * `diff -r` against the source is empty, with mtimes within FAT's 2 s. Then the cp-like
 * destination forms (into a directory under SRC's name, to a new name, several sources, DIR/.
 * for the contents, replacing a file), special files skipped with a warning, and the
 * detection of the type without -t.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsckVfatClean, makeVfatImage, mtoolsCopyOut, mtoolsReadFile } from '../lib/images.js';
import { run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { buildTree, type NodeSpec } from '../lib/tree.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> => run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 300_000 });

const skip = whyNot(['mkfs.vfat', 'fsck.vfat', 'mcopy', 'mdir', 'diff', 'touch']);

const T0 = 981_173_106n; // 2001-02-03T04:05:06Z
const S = 1_000_000_000n;

function fatTree(): NodeSpec[] {
  const n: NodeSpec[] = [];
  n.push({ kind: 'dir', path: 'docs' });
  n.push({ kind: 'dir', path: 'docs/empty-dir' });
  n.push({ kind: 'dir', path: 'docs/a/b/c/d' });
  n.push({ kind: 'file', path: 'docs/a/b/c/d/leaf.txt', content: { kind: 'text', text: 'deep\n' } });
  let i = 0;
  for (const size of [0, 1, 511, 512, 513, 2047, 2048, 2049, 4096, 65537, 1024 * 1024 + 1]) {
    n.push({ kind: 'file', path: `docs/size-${size}.bin`, content: { kind: 'random', size }, mtimeNs: (T0 + BigInt(i++) * 3n) * S });
  }
  for (const name of ['Mixed Case Name.TXT', 'with space', 'many.dots.in.name', 'répertoire-données.txt', '日本語のファイル名',
    'a-rather-long-name-that-needs-several-long-name-entries-in-the-directory-and-then-some-more-0123456789']) {
    n.push({ kind: 'file', path: `names/${name}`, content: { kind: 'text', text: `${name}\n` } });
  }
  n.push({ kind: 'file', path: 'top.txt', content: { kind: 'text', text: 'top\n' }, mtimeNs: (T0 + 1n) * S });
  return n;
}

/** mtimes (seconds) of every entry under root, by relative path. */
function mtimes(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      out.set(r, Math.floor(st.mtimeMs / 1000));
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

for (const fat of [16, 32] as const) {
  t.test(`cptofs -p a tree onto a fresh FAT${fat} image: fsck.vfat clean, mtools reads the same tree`, { skip }, async (t) => {
    const dir = scratchDir(t, 'cptofs');
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    await buildTree(src, { nodes: fatTree(), defaultTimeNs: T0 * S });
    const img = await makeVfatImage({ dir, fat, sizeMiB: fat === 32 ? 40 : 32 });

    const r = await tool('cptofs', ['-i', img, '-t', 'vfat', '-p', `${src}/.`, '/']);
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
    t.equal(r.stdout, '', 'nothing on stdout');

    const fsck = await fsckVfatClean(img);
    t.ok(fsck.clean, `fsck.vfat -n clean: ${fsck.output}`);

    const out = path.join(dir, 'out');
    await mtoolsCopyOut(img, out);
    const d = await run('diff', ['-r', src, out], { allowFail: true });
    t.equal(d.stdout + d.stderr, '', 'diff -r source mtools-copy is empty');
    t.equal(d.code, 0);

    // mtimes: FAT keeps even seconds (mcopy -m rounds the same way when copying out)
    const a = mtimes(src), b = mtimes(out);
    const off: string[] = [];
    for (const [p, m] of a) {
      if (fs.lstatSync(path.join(src, p)).isDirectory()) continue; // mcopy does not restore directory times
      const got = b.get(p);
      if (got === undefined || Math.abs(got - m) > 2) off.push(`${p}: ${got} vs ${m}`);
    }
    t.same(off, [], 'file mtimes within 2 s');
  });
}

t.test('cptofs destination forms, as cp: into a directory, to a new name, several sources, replacing a file', { skip }, async (t) => {
  const dir = scratchDir(t, 'cptofs-forms');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: [
    { kind: 'file', path: 'one.txt', content: { kind: 'text', text: 'one\n' } },
    { kind: 'file', path: 'two.txt', content: { kind: 'text', text: 'two\n' } },
    { kind: 'file', path: 'tree/x/y.txt', content: { kind: 'text', text: 'y\n' } },
  ] });
  const img = await makeVfatImage({ dir, fat: 16, sizeMiB: 32 });
  const ok = async (args: string[], what: string) => {
    const r = await tool('cptofs', ['-i', img, ...args]);
    t.equal(r.code, 0, `${what}: exit 0 (${r.stderr.trim()})`);
  };
  await ok([path.join(src, 'tree'), '/'], 'directory into the root');
  await ok([path.join(src, 'one.txt'), '/tree'], 'file into a directory');
  await ok([path.join(src, 'two.txt'), '/tree/renamed.txt'], 'file to a new name');
  await ok([path.join(src, 'one.txt'), path.join(src, 'two.txt'), 'tree/x'], 'several sources into a directory');
  fs.writeFileSync(path.join(src, 'one.txt'), 'replaced\n');
  await ok([path.join(src, 'one.txt'), '/tree/renamed.txt'], 'replacing a file');
  await ok([`${path.join(src, 'tree')}/.`, '/copy-of-tree'], 'DIR/. to a new directory');

  t.equal((await mtoolsReadFile(img, 'tree/x/y.txt')).toString(), 'y\n');
  t.equal((await mtoolsReadFile(img, 'tree/one.txt')).toString(), 'one\n');
  t.equal((await mtoolsReadFile(img, 'tree/renamed.txt')).toString(), 'replaced\n');
  t.equal((await mtoolsReadFile(img, 'tree/x/one.txt')).toString(), 'one\n');
  t.equal((await mtoolsReadFile(img, 'tree/x/two.txt')).toString(), 'two\n');
  t.equal((await mtoolsReadFile(img, 'copy-of-tree/x/y.txt')).toString(), 'y\n');
  const fsck = await fsckVfatClean(img);
  t.ok(fsck.clean, `fsck.vfat -n clean: ${fsck.output}`);
});

t.test('cptofs detects vfat without -t, and skips what FAT cannot hold with a warning', { skip }, async (t) => {
  const dir = scratchDir(t, 'cptofs-detect');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: [
    { kind: 'file', path: 'f.txt', content: { kind: 'text', text: 'f\n' } },
    { kind: 'symlink', path: 'link', target: 'f.txt' },
  ] });
  const img = await makeVfatImage({ dir, fat: 12, sizeMiB: 1 });
  const r = await tool('cptofs', ['-i', img, `${src}/.`, '/']);
  t.equal(r.code, 0, 'exit 0: skipped entries are not errors');
  t.match(r.stderr, /symbolic links skipped: the destination cannot hold them .*first: .*link\)/, 'the symlink is reported as skipped');
  t.equal((await mtoolsReadFile(img, 'f.txt')).toString(), 'f\n');
  t.ok((await fsckVfatClean(img)).clean, 'fsck.vfat -n clean');
});

t.test('cptofs on a full image: one line (ENOSPC), exit 1, the image still fsck clean', { skip }, async (t) => {
  const dir = scratchDir(t, 'cptofs-full');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: [{ kind: 'file', path: 'big.bin', content: { kind: 'random', size: 2 * 1024 * 1024 } }] });
  const img = await makeVfatImage({ dir, fat: 12, sizeMiB: 1 });
  const r = await tool('cptofs', ['-i', img, path.join(src, 'big.bin'), '/']);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, /^cptofs: \/big\.bin: No space left on device/, 'says which file and why');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  const fsck = await fsckVfatClean(img);
  t.ok(fsck.clean, `fsck.vfat -n clean: ${fsck.output}`);
});
