/*
 * The real chattr and lsattr (e2fsprogs) on an ext4 image mounted by lklfuse's kernel
 * transport, against the same commands on the host's ext4 (a loop mount of a copy of the
 * image made before): every command's exit status and message, and lsattr's output
 * (flags and generations, lsattr -d -v), must be the host's. The host kernel sends the
 * flags as FUSE_IOCTL requests (FS_IOC_GETFLAGS/SETFLAGS from its fileattr code, on a
 * handle it opens for the purpose; FS_IOC_GETVERSION from lsattr -v as a restricted
 * ioctl), directories included (FUSE_IOCTL_DIR). The flags hold through the mount: an
 * immutable file cannot be written or removed, an append-only one only appended to. After
 * unmount e2fsck -fn is clean and the host's lsattr on the image lklfuse wrote equals its
 * lsattr on the image it wrote itself. On vfat (no inode flags in Linux either) the lkl-ts
 * kernel answers ENOTTY, which the host's fuse passes on as EOPNOTSUPP, while FAT's own
 * requests (FAT_IOCTL_SET/GET_ATTRIBUTES, GET_VOLUME_ID) work and mtools reads the
 * attributes set. Over fuse-native
 * (libfuse 2 through fuse-native, whose binding has no ioctl operation) lsattr and chattr
 * fail, as README says.
 */
import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtools, withLoopMount } from '../lib/images.js';
import { box, daemonsFor, fuseSkip, isMounted, startForeground, stopDaemon, transportSkip, within } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'e2fsck', 'mkfs.vfat', 'fsck.vfat', 'losetup', 'mount', 'umount', 'chattr', 'lsattr', 'sh', 'python3', 'mattrib']) || transportSkip('kernel');

function sh(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}


const FILES = ['f1', 'f2', 'imm', 'app', 'small', 'big', 'plain'];
const DIRS = ['d', 'd2'];
/* chattr commands: [arguments..., path]; refusals included (P and T are for directories,
 * C is not an ext4 flag, a change to an immutable file, -e past the 12 direct blocks). */
const CMDS: string[][] = [
  ['+d', 'f1'], ['+A', 'f1'], ['+s', 'f1'], ['+S', 'f1'], ['+u', 'f1'],
  ['+c', 'f2'], ['+t', 'f2'], ['+x', 'f2'],
  ['+D', 'd'], ['+T', 'd'], ['+P', 'd'], ['+A', 'd'],
  ['+i', 'd2'], ['+d', 'd2'],
  ['+P', 'plain'], ['+T', 'plain'], ['+C', 'plain'], ['+D', 'plain'],
  ['-e', 'small'], ['-e', 'big'],
  ['+i', 'imm'], ['+d', 'imm'], ['+a', 'app'],
  ['=d', 'plain'],
];

/** Runs the commands and the probes in `root`; the results with `root` taken out of them. */
function exercise(root: string): string[] {
  const out: string[] = [];
  const clean = (s: string) => s.split(root + '/').join('').trim();
  for (const c of CMDS) {
    const r = sh('chattr', [...c.slice(0, -1), path.join(root, c[c.length - 1]!)]);
    out.push(`chattr ${c.join(' ')}: ${r.status} ${clean(r.stderr)}`);
  }
  // What the flags do, through the mount.
  const w = (p: string, how: string) => {
    const r = sh('sh', ['-c', `${how} "$1"`, 'sh', path.join(root, p)]);
    out.push(`${how} ${p}: ${r.status} ${clean(r.stderr).replace(/^sh: \d+: /, 'sh: ')}`);
  };
  w('imm', 'echo more >>');
  w('imm', 'echo new >');
  w('imm', 'rm -f');
  w('imm', 'chmod 600');
  w('app', 'echo more >>');
  w('app', 'echo new >');
  w('app', 'rm -f');
  w('d2', 'touch');
  out.push(`app: ${JSON.stringify(fs.readFileSync(path.join(root, 'app'), 'utf8'))}`);
  const ls = sh('lsattr', ['-d', '-v', ...[...FILES, ...DIRS].map((p) => path.join(root, p))]);
  out.push(`lsattr: ${ls.status}`, ...clean(ls.stdout).split('\n'), clean(ls.stderr));
  return out;
}

t.test('chattr and lsattr through the kernel transport do what they do on the host\'s ext4', { skip }, async (t) => {
  const b = box(t, 'chattr');
  const img = await makeExtImage({ path: b.path('a.img'), type: 'ext4', sizeMiB: 32, blockSize: 4096 });
  await withLoopMount(img, {}, async (dir) => {
    for (const f of FILES) fs.writeFileSync(path.join(dir, f), `${f}\n`);
    fs.writeFileSync(path.join(dir, 'small'), Buffer.alloc(3 * 4096, 0x61));
    fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(20 * 4096, 0x62));
    for (const d of DIRS) fs.mkdirSync(path.join(dir, d));
  });
  const hostImg = b.path('host.img');
  fs.copyFileSync(img, hostImg);
  const nativeImg = b.path('native.img');
  fs.copyFileSync(img, nativeImg);

  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'transport=kernel']);
  const fuse = exercise(mnt);
  await stopDaemon(t, mnt, d);

  const host = await withLoopMount(hostImg, {}, async (dir) => exercise(dir));
  t.same(fuse, host, 'every chattr, write and lsattr through lklfuse gives what it gives on the host kernel\'s ext4');
  t.ok(host.some((l) => /^\s*\d+\s+----i-+e-+ imm$/.test(l)), 'the run did set flags (imm is immutable)');
  t.ok(host.some((l) => /^chattr -e big: 1 .*Operation not supported/.test(l)), 'and some were refused');

  for (const i of [img, hostImg]) {
    const fsck = await e2fsckClean(i);
    t.ok(fsck.clean, `e2fsck -fn clean: ${path.basename(i)}`, { output: fsck.output });
  }
  const lsattr = (i: string) => withLoopMount(i, { ro: true }, async (dir) => {
    const r = sh('lsattr', ['-d', '-v', ...[...FILES, ...DIRS].map((p) => path.join(dir, p))]);
    return r.stdout.split(dir + '/').join('');
  });
  t.equal(await lsattr(img), await lsattr(hostImg), 'the host reads the same flags and generations in the image lklfuse wrote');

  t.test('fuse-native: no ioctl operation in the binding', { skip: transportSkip('fuse-native') }, async (t) => {
    const m2 = b.mnt('native');
    const n = await startForeground(nativeImg, m2, ['-o', 'transport=fuse-native']);
    const ls = sh('lsattr', ['-d', path.join(m2, 'f1')]);
    t.not(ls.status, 0, 'lsattr fails');
    t.match(ls.stderr, /Inappropriate ioctl for device|Operation not supported|Function not implemented/, `lsattr says why: ${ls.stderr.trim()}`);
    const ch = sh('chattr', ['+d', path.join(m2, 'f1')]);
    t.not(ch.status, 0, 'chattr fails');
    await stopDaemon(t, m2, n);
  });
});

t.test('vfat through the kernel transport has no inode flags (ENOTTY, which the host\'s fuse reports as EOPNOTSUPP)', { skip }, async (t) => {
  const b = box(t, 'chattr-vfat');
  const img = await makeVfatImage({ path: b.path('v.img'), fat: 16, sizeMiB: 32, volumeId: '1234abcd' });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'transport=kernel']);
  fs.writeFileSync(path.join(mnt, 'a.txt'), 'a\n');
  const ls = sh('lsattr', [path.join(mnt, 'a.txt')]);
  t.not(ls.status, 0, 'lsattr fails');
  t.match(ls.stderr, /Operation not supported While reading flags/, `lsattr: ${ls.stderr.trim()}`);
  const ch = sh('chattr', ['+d', path.join(mnt, 'a.txt')]);
  t.not(ch.status, 0, 'chattr fails');
  t.match(ch.stderr, /Operation not supported while reading flags/, `chattr: ${ch.stderr.trim()}`);
  // FAT's own requests pass as restricted ioctls: set hidden+system, read them back.
  const py = [
    'import fcntl, struct, sys',
    'fd = open(sys.argv[1], "rb")',
    'fcntl.ioctl(fd, 0x40047211, struct.pack("I", 0x06))',
    'a = fcntl.ioctl(fd, 0x80047210, b"\\0" * 4)',
    'v = fcntl.ioctl(fd, 0x80047213, b"\\0" * 4)',
    'print(struct.unpack("I", a)[0], "%08x" % struct.unpack("I", v)[0])',
  ].join('\n');
  const r = sh('python3', ['-c', py, path.join(mnt, 'a.txt')]);
  t.equal(r.status, 0, `FAT_IOCTL_SET/GET_ATTRIBUTES, GET_VOLUME_ID through the mount ${r.stderr}`);
  t.equal(r.stdout.trim(), '6 1234abcd', 'hidden and system, and the volume id');
  await stopDaemon(t, mnt, d);
  const fsck = await fsckVfatClean(img);
  t.ok(fsck.clean, 'fsck.vfat -n clean', { output: fsck.output });
  const ma = await mtools('mattrib', ['-i', img, '::/A.TXT']);
  t.equal([...(/^(.*?)::\/A\.TXT$/m.exec(ma.stdout)?.[1] ?? '?').replace(/\s/g, '')].sort().join(''), 'HS', 'mattrib reads hidden and system');
});
