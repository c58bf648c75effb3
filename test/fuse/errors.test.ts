/*
 * lklfuse's failures: each exits non-zero with one clear line on stderr, mounts nothing and
 * writes nothing to the image.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isMounted, run, scratch, teardown } from './helpers.js';
import type { Scratch } from './helpers.js';

const hash = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

interface Case {
  name: string;
  setup?(s: Scratch): { args?: string[]; env?: NodeJS.ProcessEnv } | void;
  args?(s: Scratch): string[];
  status?: number;
  message: RegExp;
}

const cases: Case[] = [
  {
    name: 'missing image',
    args: (s) => [path.join(s.dir, 'nope.img'), s.mnt],
    message: /^lklfuse: \/.*\/nope\.img: No such file or directory$/,
  },
  {
    name: 'image is a directory',
    args: (s) => [s.back, s.mnt],
    message: /^lklfuse: .*back: Is a directory/,
  },
  {
    name: 'unknown type= option',
    args: (s) => [s.image, s.mnt, '-o', 'type=xfs'],
    message: /^lklfuse: unknown filesystem type 'xfs' \(supported: ext2, ext3, ext4, vfat\)$/,
  },
  {
    name: 'undetectable type',
    setup: (s) => { fs.writeFileSync(s.image, Buffer.alloc(1 << 20, 0x5a)); },
    args: (s) => [s.image, s.mnt],
    message: /^lklfuse: .*disk\.img: cannot detect the filesystem type: found no ext2\/ext3\/ext4 superblock or FAT boot sector \(supported: ext2, ext3, ext4, vfat/,
  },
  {
    name: 'corrupt superblock (the kernel refuses to mount)',
    setup: (s) => {
      const fd = fs.openSync(s.image, 'r+');
      fs.writeSync(fd, Buffer.from([0x20, 0, 0, 0]), 0, 4, 1024 + 0x18); // s_log_block_size = 32
      fs.closeSync(fd);
    },
    args: (s) => [s.image, s.mnt],
    message: /^lklfuse: .*disk\.img: cannot mount the ext4 filesystem: Invalid argument/,
  },
  {
    name: 'missing mountpoint',
    args: (s) => [s.image, path.join(s.dir, 'nowhere')],
    message: /^lklfuse: mountpoint .*nowhere: No such file or directory$/,
  },
  {
    name: 'mountpoint is not a directory',
    args: (s) => [s.image, s.image],
    message: /^lklfuse: mountpoint .*disk\.img: Not a directory$/,
  },
  {
    name: 'mountpoint already mounted',
    args: (s) => [s.image, '/proc'],
    message: /^lklfuse: mountpoint \/proc: already mounted \(proc proc\)$/,
  },
  {
    name: 'no /dev/fuse',
    setup: () => ({ env: { LKLFUSE_TEST_FUSE_DEVICE: '/dev/no-such-fuse' } }),
    args: (s) => [s.image, s.mnt],
    message: /^lklfuse: \/dev\/no-such-fuse: No such file or directory \(is the fuse kernel module loaded/,
  },
  {
    name: 'bad option value',
    args: (s) => [s.image, s.mnt, '-o', 'part=x'],
    message: /^lklfuse: bad option: invalid value for part: 'x'$/,
  },
  {
    name: 'partition that does not exist',
    args: (s) => [s.image, s.mnt, '-o', 'part=3'],
    message: /^lklfuse: .*disk\.img: no partition 3/,
  },
  {
    name: 'missing arguments',
    args: (s) => [s.image],
    message: /^lklfuse: expected IMAGE and MOUNTPOINT, got 1 argument$/,
  },
];

for (const mode of ['background', 'foreground'] as const) {
  for (const c of cases) {
    t.test(`${c.name} (${mode})`, async (t) => {
      const s = scratch('err');
      t.teardown(() => teardown(s));
      const extra = c.setup?.(s) ?? {};
      const before = hash(s.image);
      const args = [...c.args!(s), ...(mode === 'foreground' ? ['-f'] : [])];
      const r = await run(s, args, extra.env);
      t.equal(r.status, c.status ?? 1, `exit status ${c.status ?? 1}`);
      const lines = r.stderr.split('\n').filter(Boolean);
      t.match(lines[0], c.message, r.stderr);
      t.ok(lines.length === 1 || (lines.length === 2 && /--help/.test(lines[1]!)), 'one line (plus a --help hint for usage errors)');
      t.equal(hash(s.image), before, 'the image is untouched');
      t.notOk(await isMounted(s.mnt), 'nothing mounted');
    });
  }
}
