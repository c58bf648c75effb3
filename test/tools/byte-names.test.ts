/*
 * Host names that are not valid UTF-8 (issue 16): a directory, a file, a symbolic link whose
 * target holds a byte 0xff, a fifo, a file with holes, a hard link, a file with an xattr and
 * nanosecond times, all named with bytes such as 0xff, 0xfe 0x80 or latin1's 0xe9, go
 *
 *   host -> cptofs -p -> ext4 -> cpfromfs -p -> host     and     ext4 -> fs2tar -> GNU tar -x
 *
 * with every byte of every name and target kept. Each tree is read by bytes
 * (hostManifest's bytePaths) and compared with the source; the image passes e2fsck -fn and
 * the host kernel reads the same tree from it. These names reach the host tools the copy
 * runs (getfattr, setfattr, touch, mknod, perl), which is where they used to be changed.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest, type DiffOptions, type Manifest } from '../lib/manifest.js';
import { run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> =>
  run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 80_000 });

/** A path of bytes: text parts and byte values. */
const B = (...parts: (string | number)[]) =>
  Buffer.concat(parts.map((p) => typeof p === 'string' ? Buffer.from(p) : Buffer.from([p])));
/** The same as the byte string hostManifest's bytePaths gives. */
const L = (...parts: (string | number)[]) => B(...parts).toString('latin1');

function build(src: string): void {
  const at = (...parts: (string | number)[]) => Buffer.concat([Buffer.from(`${src}/`), B(...parts)]);
  fs.mkdirSync(at('d-', 0xff));
  fs.writeFileSync(at('d-', 0xff, '/f-', 0xfe, 0x80), 'bytes\n');
  fs.writeFileSync(at('plain-', 0xe9), 'latin1 name\n');
  fs.linkSync(at('plain-', 0xe9), at('d-', 0xff, '/hard-', 0xff));
  fs.writeFileSync(at('utf8-日本-é'), 'valid UTF-8\n');
  fs.symlinkSync(B('t-', 0xff, 0xfe, '/x'), at('l-', 0xff));
  // Holes: the map comes from perl (SEEK_DATA/SEEK_HOLE) on this name.
  const fd = fs.openSync(at('s-', 0xff), 'w');
  fs.writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, 512 * 1024);
  fs.ftruncateSync(fd, 1024 * 1024);
  fs.closeSync(fd);
}

const BASE: DiffOptions = {
  ignore: ['atime', 'ctime', 'dirSize'],
  ignoreAt: [
    { path: '.', fields: 'all', why: 'the root of the image is mke2fs\'s ("SRC/." copies what is inside)' },
    { path: 'lost+found', fields: 'all', why: 'made by mke2fs' },
  ],
};

const skip = whyNot(['mke2fs', 'e2fsck', 'tar', 'setfattr', 'getfattr', 'touch', 'mknod', 'perl', 'losetup', 'mount'], { root: true });

t.test('names with bytes that are not UTF-8 survive cptofs -p, cpfromfs -p and fs2tar', { skip, timeout: 90_000 }, async (t) => {
  const dir = scratchDir(t, 'byte-names');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  build(src);
  // A fifo (mknod(1)), an xattr (getfattr/setfattr) and nanosecond times (touch(1)) on such names.
  await run('perl', ['-e', 'my ($d, $n) = @ARGV; $n = pack("H*", $n); ' +
    'system("mkfifo", "$d/$n") == 0 or die; system("setfattr", "-n", "trusted.k", "-v", "v\\xff", "$d/$n") == 0 or die; ' +
    'system("setfattr", "-n", "user.k", "-v", "0x00ff", "$d/plain-\\xe9") == 0 or die; ' +
    'system("touch", "-h", "-d", "2001-02-03 04:05:06.123456789", "$d/d-\\xff/f-\\xfe\\x80", "$d/l-\\xff") == 0 or die',
  src, B('p-', 0xff).toString('hex')]);
  const orig = await hostManifest(src, { producer: 'source', bytePaths: true });
  const e = (m: Manifest, p: string) => m.entries.find((x) => x.path === p);
  t.equal(e(orig, L('d-', 0xff, '/f-', 0xfe, 0x80))?.mtimeNs, 981173106123456789n, 'the source file with a 0xff directory and ns time');
  t.equal(e(orig, L('l-', 0xff))?.target, L('t-', 0xff, 0xfe, '/x'), 'the source symlink target holds 0xff');
  t.same(e(orig, L('p-', 0xff))?.xattrs, { 'trusted.k': '76ff' }, 'the fifo named with 0xff has its xattr');
  t.same(e(orig, L('plain-', 0xe9))?.xattrs, { 'user.k': '00ff' }, 'the latin1-named file has its xattr');
  t.equal(e(orig, L('p-', 0xff))?.type, 'fifo');
  t.same(e(orig, L('d-', 0xff, '/hard-', 0xff))?.links, [L('d-', 0xff, '/hard-', 0xff), L('plain-', 0xe9)], 'the hard link');

  const img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 32, blockSize: 4096, inodeSize: 256 });
  const w = await tool('cptofs', ['-p', '-i', img, `${src}/.`, '/']);
  t.equal(w.code, 0, `cptofs exit 0 (${w.stderr})`);
  t.equal(w.stderr, '', 'cptofs: nothing on stderr');
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, `e2fsck -fn clean: ${fsck.output}`);
  await withLoopMount(img, { ro: true, type: 'ext4' }, async (mnt) => {
    const m = await hostManifest(mnt, { producer: 'host-kernel', exclude: ['lost+found'], bytePaths: true });
    t.same(diffManifests(orig, m, BASE), [], 'the host kernel reads the source\'s names, bytes and all, from the image');
    t.ok(fs.statSync(Buffer.concat([Buffer.from(`${mnt}/`), B('s-', 0xff)])).blocks * 512 <= 64 * 1024, 'the file with holes has its holes in the image');
  });

  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await tool('cpfromfs', ['-p', '-i', img, '/', out]);
  t.equal(r.code, 0, `cpfromfs exit 0 (${r.stderr})`);
  t.equal(r.stderr, '', 'cpfromfs: nothing on stderr');
  const back = await hostManifest(out, { producer: 'cpfromfs', exclude: ['lost+found'], bytePaths: true });
  t.same(diffManifests(orig, back, BASE), [], 'cpfromfs -p gives back every name, target, xattr and time');

  const tarFile = path.join(dir, 'img.tar');
  const a = await tool('fs2tar', [img, tarFile]);
  t.equal(a.code, 0, `fs2tar exit 0 (${a.stderr})`);
  const list = await run('tar', ['-tf', tarFile]);
  t.match(list.stdout, /^d-\\377\/f-\\376\\200$/m, 'GNU tar lists the name with its bytes');
  const x = path.join(dir, 'x');
  fs.mkdirSync(x);
  await run('tar', ['--xattrs', '--xattrs-include=*', '-xpf', tarFile, '-C', x]);
  const ex = await hostManifest(x, { producer: 'tar-x', exclude: ['lost+found'], bytePaths: true });
  t.same(diffManifests(orig, ex, {
    ...BASE,
    ignoreAt: [...BASE.ignoreAt!, { path: L('l-', 0xff), fields: ['mtime'], why: 'GNU tar does not restore the times of symbolic links' }],
  }), [], 'tar -x of the fs2tar archive gives back every name and target');
});
