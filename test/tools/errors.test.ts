/*
 * cptofs, cpfromfs and fs2tar when something is wrong: a missing image, a bad type, a missing
 * source, a destination that is not a directory, a bad partition, too few arguments, cptofs
 * onto an ext4 with features lkl-ts does not write (bigalloc: read-only, EROFS). Each exits non-zero with one line on stderr, writes
 * nothing to stdout, and leaves the image byte for byte unchanged. --help prints a usage.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExtImage, makeVfatImage } from '../lib/images.js';
import { run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> =>
  run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 120_000 });
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

t.test('--help prints a usage and exits 0', async (t) => {
  for (const [n, re] of [['cptofs', /Usage: cptofs -i IMAGE/], ['cpfromfs', /Usage: cpfromfs -i IMAGE/], ['fs2tar', /Usage: fs2tar .*IMAGE TARFILE/]] as const) {
    const r = await tool(n, ['--help']);
    t.equal(r.code, 0, `${n} --help: exit 0`);
    t.match(r.stdout, re, `${n} usage`);
    t.match(r.stdout, /-t, --type/, `${n} documents -t`);
  }
});

t.test('errors: one line, non-zero exit, image unchanged', { skip: whyNot(['mkfs.vfat', 'mke2fs']) }, async (t) => {
  const dir = scratchDir(t, 'tools-errors');
  const vfat = await makeVfatImage({ dir, fat: 16, sizeMiB: 32 });
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'file.txt'), 'x\n');
  const ext4 = await makeExtImage({ dir, type: 'ext4', sizeMiB: 32, fromDir: src });
  // bigalloc: a feature the lkl-ts ext4 write side does not cover, so the image mounts read-only.
  const bigalloc = await makeExtImage({ dir, type: 'ext4', sizeMiB: 64, fromDir: src, features: ['bigalloc'], extra: ['-C', '16384'],
    path: path.join(dir, 'bigalloc.img') });
  const missing = path.join(dir, 'no-such.img');
  const tarOut = path.join(dir, 'out.tar');
  const sums = () => `${sha(vfat)} ${sha(ext4)} ${sha(bigalloc)}`;
  const before = sums();

  const cases: { name: string; prog: string; args: string[]; line: RegExp }[] = [
    { name: 'cptofs: missing image', prog: 'cptofs', args: ['-i', missing, path.join(src, 'file.txt'), '/'], line: /^cptofs: .*no-such\.img: No such file or directory$/ },
    { name: 'cpfromfs: missing image', prog: 'cpfromfs', args: ['-i', missing, '/', dir], line: /^cpfromfs: .*no-such\.img: No such file or directory$/ },
    { name: 'fs2tar: missing image', prog: 'fs2tar', args: [missing, tarOut], line: /^fs2tar: .*no-such\.img: No such file or directory$/ },
    { name: 'cptofs: bad type', prog: 'cptofs', args: ['-i', vfat, '-t', 'ntfs', path.join(src, 'file.txt'), '/'], line: /^cptofs: unknown filesystem type 'ntfs'/ },
    { name: 'fs2tar: bad type', prog: 'fs2tar', args: ['-t', 'zfs', vfat, tarOut], line: /^fs2tar: unknown filesystem type 'zfs'/ },
    { name: 'cptofs: wrong type for the image', prog: 'cptofs', args: ['-i', vfat, '-t', 'ext4', path.join(src, 'file.txt'), '/'], line: /^cptofs: .*cannot mount the ext4 filesystem: Invalid argument/ },
    { name: 'cptofs: missing source', prog: 'cptofs', args: ['-i', vfat, path.join(src, 'nope'), '/'], line: /^cptofs: .*\/src\/nope: No such file or directory$/ },
    { name: 'cpfromfs: missing source', prog: 'cpfromfs', args: ['-i', ext4, '/nope', dir], line: /^cpfromfs: \/nope: No such file or directory$/ },
    { name: 'cptofs: destination directory missing', prog: 'cptofs', args: ['-i', vfat, path.join(src, 'file.txt'), '/no/dir/'], line: /^cptofs: \/no\/dir\/: No such file or directory$/ },
    { name: 'cptofs: several sources onto a non-directory', prog: 'cptofs', args: ['-i', ext4, path.join(src, 'file.txt'), path.join(src, 'file.txt'), '/file.txt'], line: /^cptofs: \/file\.txt: Not a directory$/ },
    { name: 'cptofs onto a bigalloc ext4: EROFS', prog: 'cptofs', args: ['-i', bigalloc, path.join(src, 'file.txt'), '/'], line: /^cptofs: .*: Read-only file system \(/ },
    { name: 'cpfromfs: bad partition', prog: 'cpfromfs', args: ['-i', vfat, '-P', '3', '/', dir], line: /^cpfromfs: .*: no partition 3/ },
    { name: 'fs2tar: not an image', prog: 'fs2tar', args: [path.join(src, 'file.txt'), tarOut], line: /^fs2tar: .*file\.txt: too small to hold a filesystem/ },
  ];
  for (const c of cases) {
    const r = await tool(c.prog, c.args);
    t.equal(r.code, 1, `${c.name}: exit status 1, as documented`);
    t.equal(r.stdout, '', `${c.name}: nothing on stdout`);
    const lines = r.stderr.split('\n').filter(Boolean);
    t.equal(lines.length, 1, `${c.name}: one line (${r.stderr.trim()})`);
    t.match(lines[0] ?? '', c.line, `${c.name}: the message`);
  }
  t.equal(sums(), before, 'the images are unchanged');
  t.notOk(fs.existsSync(tarOut), 'fs2tar left no partial archive');

  for (const [prog, args] of [['cptofs', ['-i', vfat, 'only-one']], ['cpfromfs', [vfat]], ['fs2tar', [vfat]]] as const) {
    const r = await tool(prog, [...args]);
    t.equal(r.code, 1, `${prog} with too few arguments: exit 1`);
    t.match(r.stderr, new RegExp(`^${prog}: `), `${prog}: says what is wrong`);
    t.match(r.stderr, /Try '.* --help'/, `${prog}: points to --help`);
  }
});
