/* Filesystem type detection: mke2fs / mkfs.vfat images when the tools exist, and synthetic edge cases. */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXT_LAYOUT as L, detectFs } from '../../lib/fuse/detect.js';

const head = (file: string) => {
  const b = Buffer.alloc(65536);
  const fd = fs.openSync(file, 'r');
  const n = fs.readSync(fd, b, 0, b.length, 0);
  fs.closeSync(fd);
  return b.subarray(0, n);
};

t.test('real images', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lklfuse-detect-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const haveE2 = spawnSync('mke2fs', ['-V']).status === 0;
  const haveVfat = spawnSync('mkfs.vfat', ['--help']).status !== null && fs.existsSync('/usr/sbin/mkfs.vfat');
  const rows: [string, string[], string, RegExp][] = [
    ['ext2', ['mke2fs', '-q', '-F', '-t', 'ext2'], 'ext2', /^ext2 superblock$/],
    ['ext3', ['mke2fs', '-q', '-F', '-t', 'ext3'], 'ext3', /^ext3 superblock \(has_journal\)$/],
    ['ext4', ['mke2fs', '-q', '-F', '-t', 'ext4'], 'ext4', /^ext4 superblock \(has_journal, .*extent/],
    ['ext4 without journal', ['mke2fs', '-q', '-F', '-t', 'ext4', '-O', '^has_journal'], 'ext4', /^ext4 superblock \(extent/],
    ['ext2 with 4 KiB blocks', ['mke2fs', '-q', '-F', '-t', 'ext2', '-b', '4096'], 'ext2', /^ext2/],
    ['FAT12', ['mkfs.vfat', '-F', '12'], 'vfat', /FAT12 boot sector/],
    ['FAT16', ['mkfs.vfat', '-F', '16'], 'vfat', /FAT16 boot sector/],
    ['FAT32', ['mkfs.vfat', '-F', '32'], 'vfat', /FAT32 boot sector/],
  ];
  for (const [name, cmd, type, reason] of rows) {
    const isExt = cmd[0] === 'mke2fs';
    if ((isExt && !haveE2) || (!isExt && !haveVfat)) { t.pass(name, { skip: `this machine has no ${cmd[0]} (install ${isExt ? 'e2fsprogs' : 'dosfstools'})` }); continue; }
    const img = path.join(dir, `${name.replace(/\W/g, '_')}.img`);
    const size = name === 'FAT32' ? 40 << 20 : 16 << 20;
    fs.writeFileSync(img, '');
    fs.truncateSync(img, size);
    execFileSync(cmd[0]!, [...cmd.slice(1), img, ...(isExt ? [] : [])], { stdio: 'ignore' });
    const d = detectFs(head(img));
    t.equal(d.type, type, `${name}: type`);
    t.match(d.reason, reason, `${name}: ${d.reason}`);
  }
});

function extSb(compat: number, incompat: number, roCompat: number, rev = 1): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  dv.setUint16(L.EXT_SB + L.S_MAGIC, 0xef53, true);
  dv.setUint32(L.EXT_SB + L.S_REV_LEVEL, rev, true);
  dv.setUint32(L.EXT_SB + L.S_FEATURE_COMPAT, compat, true);
  dv.setUint32(L.EXT_SB + L.S_FEATURE_INCOMPAT, incompat, true);
  dv.setUint32(L.EXT_SB + L.S_FEATURE_RO_COMPAT, roCompat, true);
  return b;
}

t.test('synthetic superblocks and sectors', async (t) => {
  const mbr = new Uint8Array(4096);
  mbr[510] = 0x55; mbr[511] = 0xaa;
  mbr[446 + 4] = 0x83; new DataView(mbr.buffer).setUint32(446 + 12, 2048, true);
  mbr[446 + 16 + 4] = 0x0c; new DataView(mbr.buffer).setUint32(446 + 16 + 12, 2048, true);
  const rows: [string, Uint8Array, string | undefined, RegExp][] = [
    ['rev 0 ext2', extSb(0, 0, 0, 0), 'ext2', /^ext2 superblock$/],
    ['journal only: ext3', extSb(0x4, 0x2, 0x1 | 0x2), 'ext3', /^ext3/],
    ['journal + extents: ext4', extSb(0x4, 0x2 | 0x40, 0x1), 'ext4', /extent/],
    ['64bit alone: ext4', extSb(0, 0x80, 0), 'ext4', /64bit/],
    ['metadata_csum alone: ext4', extSb(0, 0, 0x400), 'ext4', /metadata_csum/],
    ['huge_file alone: ext4', extSb(0, 0, 0x8), 'ext4', /huge_file/],
    ['unknown incompat bit named in hex', extSb(0, 0x40000000, 0), 'ext4', /0x40000000/],
    ['journal device', extSb(0, 0x8, 0), undefined, /journal device/],
    ['MBR partition table', mbr, undefined, /DOS partition table \(partitions 1, 2\)/],
    ['zeros', new Uint8Array(4096), undefined, /only zeros/],
    ['noise', new Uint8Array(4096).fill(0x5a), undefined, /no ext2\/ext3\/ext4 superblock or FAT boot sector/],
    ['too short', new Uint8Array(100).fill(1), undefined, /no ext2/],
  ];
  for (const [name, buf, type, reason] of rows) {
    const d = detectFs(buf);
    t.equal(d.type, type, `${name}: type`);
    t.match(d.reason, reason, `${name}: ${d.reason}`);
  }
  t.same(detectFs(mbr).partitions, [1, 2], 'partition numbers');
});
