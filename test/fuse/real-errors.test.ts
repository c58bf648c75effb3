/*
 * lklfuse's failures with the real kernel: each exits non-zero (2 for a taken lock) with
 * one clear line on stderr, mounts nothing and leaves the image's bytes unchanged.
 */
import t from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { makeExtImage, makeVfatImage } from '../lib/images.js';
import { E2FSPROGS_FIXTURES, fixturesSkip, unpackFixture } from '../lib/fixtures.js';
import { readMountinfo } from '../../lib/fuse/mountinfo.js';
import { BIN, box, type Box, fuseSkip, lklfuse, realEnv, sha256File, overTransports } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'mkfs.vfat', 'setpriv', 'flock']);

interface Setup { image: string; mnt: string; args?: string[]; env?: NodeJS.ProcessEnv; asNobody?: boolean; before?: () => Promise<void> }
interface Case {
  name: string;
  setup(b: Box): Promise<Setup>;
  status?: number;
  message: RegExp;
  /** Also run with -f (the foreground daemon reports the same line). */
  foreground?: boolean;
  /** Uses the shared e2fsprogs fixtures (skipped, saying where they were looked for, without). */
  fixtures?: boolean;
}

const ext4 = (b: Box, name = 'ext4.img') => makeExtImage({ type: 'ext4', sizeMiB: 8, path: b.path(name) });
const fat32 = (b: Box, name = 'fat32.img') => makeVfatImage({ fat: 32, sizeMiB: 40, path: b.path(name) });
const poke = (file: string, offset: number, bytes: number[]) => {
  const fd = fs.openSync(file, 'r+');
  try { fs.writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset); } finally { fs.closeSync(fd); }
};

const cases: Case[] = [
  {
    name: 'missing image',
    setup: async (b) => ({ image: b.path('nope.img'), mnt: b.mnt() }),
    message: /^lklfuse: \/.*\/nope\.img: No such file or directory$/,
  },
  {
    name: 'image is a directory',
    setup: async (b) => { fs.mkdirSync(b.path('adir')); return { image: b.path('adir'), mnt: b.mnt() }; },
    message: /^lklfuse: .*\/adir: Is a directory \(expected a disk image\)$/,
  },
  {
    name: 'unreadable image (mode 0600, root\'s; lklfuse run as uid 65534)',
    setup: async (b) => {
      const image = await ext4(b);
      fs.chmodSync(image, 0o600);
      const mnt = b.mnt();
      fs.chownSync(mnt, 65534, 65534);
      return { image, mnt, asNobody: true };
    },
    message: /^lklfuse: .*ext4\.img: Permission denied$/,
  },
  {
    name: 'read-only image file, mounted read-write (lklfuse run as uid 65534)',
    setup: async (b) => {
      const image = await ext4(b);
      fs.chmodSync(image, 0o644);
      const mnt = b.mnt();
      fs.chownSync(mnt, 65534, 65534);
      return { image, mnt, asNobody: true };
    },
    message: /^lklfuse: .*ext4\.img: Permission denied \(mount it read-only with -o ro\?\)$/,
  },
  {
    name: 'unknown type=xfs',
    setup: async (b) => ({ image: await ext4(b), mnt: b.mnt(), args: ['-o', 'type=xfs'] }),
    message: /^lklfuse: unknown filesystem type 'xfs' \(supported: ext2, ext3, ext4, vfat\)$/,
  },
  {
    name: 'undetectable type (random bytes)',
    setup: async (b) => {
      const image = b.path('random.img');
      const buf = Buffer.alloc(4 << 20);
      for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
      fs.writeFileSync(image, buf);
      return { image, mnt: b.mnt() };
    },
    message: /^lklfuse: .*random\.img: cannot detect the filesystem type: found no ext2\/ext3\/ext4 superblock or FAT boot sector \(supported: ext2, ext3, ext4, vfat; or give -o type=\)$/,
  },
  {
    name: 'ext4 superblock magic broken (detection finds nothing)',
    setup: async (b) => { const image = await ext4(b); poke(image, 1024 + 0x38, [0, 0]); return { image, mnt: b.mnt() }; },
    message: /^lklfuse: .*ext4\.img: cannot detect the filesystem type/,
  },
  {
    name: 'ext4 superblock magic broken, type=ext4 given (the kernel refuses)',
    setup: async (b) => { const image = await ext4(b); poke(image, 1024 + 0x38, [0, 0]); return { image, mnt: b.mnt(), args: ['-o', 'type=ext4'] }; },
    message: /^lklfuse: .*ext4\.img: cannot mount the ext4 filesystem: Invalid argument \(corrupt or unsupported filesystem\?\) \[kernel: .+\]$/,
    foreground: true,
  },
  {
    name: 'ext4 superblock checksum wrong (metadata_csum)',
    // s_volume_name changed without updating s_checksum
    setup: async (b) => { const image = await ext4(b); poke(image, 1024 + 0x78, [0x58, 0x59]); return { image, mnt: b.mnt() }; },
    message: /^lklfuse: .*ext4\.img: cannot mount the ext4 filesystem: Bad message \(corrupt or unsupported filesystem\?\) \[kernel: .+\]$/,
    foreground: true,
  },
  {
    name: 'ext4 block size absurd (s_log_block_size = 32)',
    setup: async (b) => { const image = await ext4(b); poke(image, 1024 + 0x18, [32, 0, 0, 0]); return { image, mnt: b.mnt(), args: ['-o', 'ro'] }; },
    message: /^lklfuse: .*ext4\.img: cannot mount the ext4 filesystem: (Invalid argument|Structure needs cleaning|Bad message) \(corrupt or unsupported filesystem\?\) \[kernel: .+\]$/,
  },
  {
    name: 'vfat with a bogus BPB (FAT32 sectors per FAT = 0)',
    setup: async (b) => { const image = await fat32(b); poke(image, 36, [0, 0, 0, 0]); return { image, mnt: b.mnt() }; },
    message: /^lklfuse: .*fat32\.img: cannot mount the vfat filesystem: Invalid argument \(corrupt or unsupported filesystem\?\) \[kernel: .+\]$/,
    foreground: true,
  },
  {
    name: 'ext4 whose journal holds fast commits (e2fsprogs j_recover_fast_commit), read-write',
    setup: async (b) => {
      const image = b.path('fc.img');
      const img = await unpackFixture(path.join(E2FSPROGS_FIXTURES, 'j_recover_fast_commit'));
      if (!img) throw new Error('no j_recover_fast_commit fixture');
      fs.writeFileSync(image, img);
      return { image, mnt: b.mnt() };
    },
    fixtures: true,
    message: /^lklfuse: .*fc\.img: cannot mount the ext4 filesystem: Operation not supported \[kernel: EXT4-fs \(vda\): the journal holds fast commits \(transaction 6\) that lkl-ts cannot replay: mount read-only, or replay them with e2fsck -fy \(or the Linux kernel\) first\]$/,
  },
  {
    name: 'missing mountpoint',
    setup: async (b) => ({ image: await fat32(b), mnt: b.path('nowhere') }),
    message: /^lklfuse: mountpoint .*\/nowhere: No such file or directory$/,
  },
  {
    name: 'mountpoint is not a directory',
    setup: async (b) => { fs.writeFileSync(b.path('afile'), 'x'); return { image: await fat32(b), mnt: b.path('afile') }; },
    message: /^lklfuse: mountpoint .*\/afile: Not a directory$/,
  },
  {
    name: 'mountpoint already in use (by a first lklfuse)',
    setup: async (b) => {
      const mnt = b.mnt();
      const first = await lklfuse([await fat32(b, 'first.img'), mnt]);
      if (first.status !== 0) throw new Error(`the first lklfuse failed: ${first.stderr}`);
      return { image: await fat32(b), mnt };
    },
    message: /^lklfuse: mountpoint .*\/mnt: already mounted \(fuse\.lklfuse .*\/first\.img\)$/,
  },
  {
    name: 'no /dev/fuse',
    setup: async (b) => ({ image: await fat32(b), mnt: b.mnt(), env: { LKLFUSE_TEST_FUSE_DEVICE: '/dev/no-such-fuse' } }),
    message: /^lklfuse: \/dev\/no-such-fuse: No such file or directory \(is the fuse kernel module loaded\? try: modprobe fuse\)$/,
  },
  {
    name: 'lock taken (the image is mounted by another lklfuse)',
    setup: async (b) => {
      const image = await fat32(b);
      const first = await lklfuse([image, b.mnt('first')]);
      if (first.status !== 0) throw new Error(`the first lklfuse failed: ${first.stderr}`);
      return { image, mnt: b.mnt() };
    },
    status: 2,
    message: /^lklfuse: .*fat32\.img: image is locked by another lklfuse \(mounted elsewhere\)$/,
  },
];

/** How many mounts sit on `mnt` (to see that a failed run added none). */
async function mountsAt(mnt: string): Promise<number> {
  return (await readMountinfo()).filter((m) => m.mountPoint === mnt).length;
}

function canOpenAsNobody(dev: string): boolean {
  return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'sh', '-c', 'exec 3<>"$1"', 'sh', dev]).status === 0;
}

function runAsNobody(args: string[], env: NodeJS.ProcessEnv): { status: number | null; stderr: string } {
  // /dev/fuse is root's only on this machine kind (0600); the device check comes first, so
  // point it at a device uid 65534 may open: the image check is what is tested here.
  if (!canOpenAsNobody('/dev/fuse')) env = { LKLFUSE_TEST_FUSE_DEVICE: '/dev/null', ...env };
  // env -u NODE_OPTIONS: tap's process-info hook would try to write its record as uid 65534.
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'env', '-u', 'NODE_OPTIONS', process.execPath, BIN, ...args],
    { env: realEnv(env), encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

overTransports(t, (t) => {
  for (const c of cases) {
    for (const mode of c.foreground ? ['background', 'foreground'] as const : ['background'] as const) {
      t.test(`${c.name} (${mode})`, { skip: skip || (c.fixtures ? fixturesSkip() : false) }, async (t) => {
        const b = box(t, 'err');
        const s = await c.setup(b);
        const before = await mountsAt(s.mnt);
        const hash = fs.statSync(s.image, { throwIfNoEntry: false })?.isFile() ? sha256File(s.image) : undefined;
        const args = [s.image, s.mnt, ...(s.args ?? []), ...(mode === 'foreground' ? ['-f'] : [])];
        const r = s.asNobody ? runAsNobody(args, s.env ?? {}) : await lklfuse(args, s.env);
        t.equal(r.status, c.status ?? 1, `exit status ${c.status ?? 1}`);
        const lines = r.stderr.split('\n').filter(Boolean);
        t.equal(lines.length, 1, 'one line on stderr', { stderr: r.stderr });
        t.match(lines[0] ?? '', c.message, lines[0] ?? '(nothing)');
        if (hash) t.equal(sha256File(s.image), hash, 'the image bytes are unchanged');
        t.equal(await mountsAt(s.mnt), before, 'nothing mounted');
      });
    }
  }
});
