// Mount options and error handling of the vfat driver: unknown options, uid/gid/umask/
// dmask/fmask/showexec/quiet, remount read-only (dirty bit), and errors= when the FAT is
// corrupt (fat_fs_error: report, then continue or turn read-only).
import t from 'tap';
import type { Test } from 'tap';
import { readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  EINVAL, EIO, EPERM, EROFS, MS_RDONLY, MS_REMOUNT, O_CREAT, O_RDONLY, O_WRONLY,
} from '../../lib/index.js';
import { TOOL_ENV, bootWithImage, imageDirty, mkfs, scratchDir } from './driver-util.js';
import { fat_boot_sector_decode } from '../../lib/kernel/fs/fat/layout.js';
import { fat_ent_set } from '../../lib/kernel/fs/fat/fatent.js';
import { fat_fill_geometry } from '../../lib/kernel/fs/fat/super.js';
import { IMAGE_SB, mshowfat } from './fatimage.js';

async function mountedImage(t: Test, opts: string, prep?: (img: string) => void, flags = 0) {
  const dir = scratchDir('opt');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'fat.img');
  mkfs(img, 16);
  prep?.(img);
  const b = await bootWithImage(img);
  t.teardown(() => b.k.halt());
  const mp = await b.k.mountDev(b.disk, 0, 'vfat', flags, opts);
  return { b, mp, img };
}

t.test('an unknown option is EINVAL with Linux\'s message', async (t) => {
  const { b, mp } = await mountedImage(t, 'uid=0,bogus_option=1');
  t.equal(mp, -EINVAL);
  t.ok(b.log.some((l) => l.includes('FAT-fs (vda): Unrecognized mount option "bogus_option=1" or missing value')), 'message');
  t.equal(await b.k.mountDev(b.disk, 0, 'vfat', 0, 'shortname=weird'), -EINVAL, 'bad shortname value');
  t.equal(await b.k.mountDev(b.disk, 0, 'vfat', 0, 'errors=sometimes'), -EINVAL, 'bad errors value');
  t.type(await b.k.mountDev(b.disk, 0, 'vfat', 0,
    'uid=1,gid=2,umask=022,dmask=022,fmask=133,allow_utime=20,codepage=437,iocharset=utf8,utf8,shortname=winnt,' +
    'tz=UTC,errors=continue,flush,quiet,showexec,nonumtail,rodir'), 'string', 'every supported option is accepted');
});

t.test('uid, gid, umask, fmask, dmask, showexec; chown to another owner is EPERM (quiet: ignored)', async (t) => {
  const { b, mp } = await mountedImage(t, 'uid=1000,gid=100,fmask=0137,dmask=0027,showexec');
  const sys = b.sys;
  const m = mp as string;
  let fd = await sys.open(`${m}/prog.exe`, O_CREAT | O_WRONLY, 0o777);
  await sys.close(fd);
  fd = await sys.open(`${m}/data.txt`, O_CREAT | O_WRONLY, 0o777);
  await sys.close(fd);
  await sys.mkdir(`${m}/dir`, 0o777);
  const root = await sys.stat(m);
  const exe = await sys.stat(`${m}/prog.exe`);
  const txt = await sys.stat(`${m}/data.txt`);
  const d = await sys.stat(`${m}/dir`);
  if (typeof root === 'number' || typeof exe === 'number' || typeof txt === 'number' || typeof d === 'number') throw new Error('stat');
  t.equal(root.uid, 1000); t.equal(root.gid, 100);
  t.equal(root.mode, 0o40750, 'root: dmask');
  t.equal(d.mode, 0o40750, 'dir: dmask');
  t.equal(exe.mode, 0o100640, 'prog.exe: fmask 137 (x masked too)');
  t.equal(txt.mode, 0o100640, 'data.txt: showexec drops x');
  t.equal(exe.blksize, 1024, 'st_blksize is the cluster size');
  t.equal(await sys.chown(`${m}/data.txt`, 1000, 100), 0, 'chown to the mount owner is fine');
  t.equal(await sys.chown(`${m}/data.txt`, 0, 0), -EPERM, 'chown to another owner: EPERM');
});

t.test('quiet: chown to another owner succeeds without effect', async (t) => {
  const { b, mp } = await mountedImage(t, 'quiet,uid=5');
  const m = mp as string;
  const fd = await b.sys.open(`${m}/f`, O_CREAT | O_WRONLY, 0o644);
  await b.sys.close(fd);
  t.equal(await b.sys.chown(`${m}/f`, 0, 0), 0, 'no error');
  const st = await b.sys.stat(`${m}/f`);
  t.ok(typeof st !== 'number' && st.uid === 5, 'owner unchanged');
});

t.test('remount read-only clears the dirty bit, read-write sets it again', async (t) => {
  const { b, mp, img } = await mountedImage(t, '');
  const m = mp as string;
  t.ok(imageDirty(img, 16), 'dirty while mounted read-write');
  t.equal(await b.sys.mount(null, m, null, MS_REMOUNT | MS_RDONLY, ''), 0, 'remount ro');
  t.notOk(imageDirty(img, 16), 'clean while read-only');
  t.equal(await b.sys.open(`${m}/x`, O_CREAT | O_WRONLY, 0o644), -EROFS, 'no writes');
  t.equal(await b.sys.mount(null, m, null, MS_REMOUNT, ''), 0, 'remount rw');
  t.ok(imageDirty(img, 16), 'dirty again');
});

/** Break the chain of `path` after its first cluster: FAT[first] = 0 in both FATs. */
function breakChain(img: string, path: string): void {
  const clusters = mshowfat(img, path);
  if (clusters.length < 2) throw new Error(`need a multi-cluster file, got ${clusters}`);
  const data = readFileSync(img);
  const s = fat_fill_geometry(IMAGE_SB, fat_boot_sector_decode(data), true);
  for (let copy = 0; copy < s.fats; copy++) {
    const off = (s.fat_start + copy * s.fat_length) * s.sectorSize;
    fat_ent_set(data.subarray(off, off + s.fat_length * s.sectorSize), s.fat_bits, clusters[0]!, 0);
  }
  writeFileSync(img, data);
}

function withBrokenFile(img: string): void {
  const src = join(img, '..', 'big.bin');
  writeFileSync(src, new Uint8Array(10_000).fill(7));
  execFileSync('mcopy', ['-i', img, src, '::/big.bin'], { env: TOOL_ENV });
  breakChain(img, '/big.bin');
}

async function readFile(b: { sys: import('../../lib/index.js').Sys }, p: string): Promise<number> {
  const fd = await b.sys.open(p, O_RDONLY, 0);
  if (fd < 0) return fd;
  const buf = new Uint8Array(20_000);
  const n = await b.sys.read(fd, buf);
  await b.sys.close(fd);
  return n;
}

t.test('errors=remount-ro (the default): a broken chain is reported and the volume turns read-only', async (t) => {
  const { b, mp } = await mountedImage(t, '', withBrokenFile);
  const m = mp as string;
  t.equal(await readFile(b, `${m}/big.bin`), -EIO, 'reading past the break: EIO');
  t.ok(b.log.some((l) => /^FAT-fs \(vda\): error, .*invalid cluster chain/.test(l)), 'named error through fat_fs_error');
  t.ok(b.log.some((l) => l === 'FAT-fs (vda): Filesystem has been set read-only'), 'remounted read-only');
  t.equal(await b.sys.open(`${m}/new`, O_CREAT | O_WRONLY, 0o644), -EROFS, 'no more writes');
});

t.test('errors=continue: reported, the volume stays writable', async (t) => {
  const { b, mp } = await mountedImage(t, 'errors=continue', withBrokenFile);
  const m = mp as string;
  t.equal(await readFile(b, `${m}/big.bin`), -EIO, 'EIO');
  t.ok(b.log.some((l) => /^FAT-fs \(vda\): error, /.test(l)), 'reported');
  t.notOk(b.log.some((l) => l.includes('set read-only')), 'not read-only');
  const fd = await b.sys.open(`${m}/new`, O_CREAT | O_WRONLY, 0o644);
  t.ok(fd >= 0, 'still writable');
});

t.test('tz=UTC (the default here) and time_offset= shift the times on disk', async (t) => {
  const dir = scratchDir('tz');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'fat.img');
  mkfs(img, 12);
  const src = join(dir, 'f.txt');
  writeFileSync(src, 'x');
  const when = new Date(Date.UTC(2010, 5, 15, 12, 30, 10));
  utimesSync(src, when, when);
  execFileSync('mcopy', ['-m', '-i', img, src, '::/f.txt'], { env: TOOL_ENV }); // TZ=UTC: stores 12:30:10
  const b = await bootWithImage(img);
  t.teardown(() => b.k.halt());
  let mp = await b.k.mountDev(b.disk, 0, 'vfat', MS_RDONLY, '') as string;
  let st = await b.sys.stat(`${mp}/f.txt`);
  t.ok(typeof st !== 'number' && st.mtime.sec === when.getTime() / 1000, 'default: the disk holds UTC');
  t.equal(await b.k.umountDev(b.disk, 0), 0);
  mp = await b.k.mountDev(b.disk, 0, 'vfat', MS_RDONLY, 'time_offset=60') as string;
  st = await b.sys.stat(`${mp}/f.txt`);
  t.ok(typeof st !== 'number' && st.mtime.sec === when.getTime() / 1000 - 3600, 'time_offset=60: the disk holds UTC+1');
});
