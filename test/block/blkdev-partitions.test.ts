/*
 * Partitioned disks through the kernel: tables written by sfdisk (MBR with an extended
 * partition and logical ones) and sgdisk (GPT) become /dev/vda1.. with the right sizes
 * (lseek SEEK_END) and contents (each partition's bytes are its own slice of the image).
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startKernel, O_RDONLY, O_RDWR, SEEK_END, ENOENT, S_IFBLK, S_IFMT, major, minor } from '../../lib/index.js';
import { scratchDir } from '../lib/scratch.js';
import { fillRandom, firstDiff, rng } from './helpers.js';

const MiB = 1 << 20;

function makeImage(file: string, mib: number): void {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, mib * MiB);
}

/** Start and size (512-byte sectors) of each partition as sfdisk reads the table back. */
function sfdiskParts(img: string): Map<number, { start: number; size: number }> {
  const j = JSON.parse(execFileSync('sfdisk', ['--json', img], { encoding: 'utf8' }));
  const out = new Map<number, { start: number; size: number }>();
  for (const p of j.partitiontable.partitions) {
    const no = Number(/(\d+)$/.exec(p.node)![1]);
    out.set(no, { start: p.start, size: p.size });
  }
  return out;
}

async function checkDisk(t: Test, img: string, expect: Map<number, { start: number; size: number; extended?: boolean }>): Promise<void> {
  /* a distinct pattern in every partition's data area (tables and EBRs lie outside them) */
  const bytes = new Uint8Array(fs.readFileSync(img));
  const rand = rng(99);
  for (const [, p] of expect) {
    if (!p.extended) bytes.set(fillRandom(new Uint8Array(p.size * 512), rand), p.start * 512);
  }
  fs.writeFileSync(img, bytes);
  const img2 = new Uint8Array(fs.readFileSync(img));

  const k = await startKernel({ memMiB: 32 });
  t.ok(await k.diskAdd({ path: img }) >= 0);
  for (const [no, p] of expect) {
    const dev = `/dev/vda${no}`;
    const st = await k.sys.stat(dev);
    if (typeof st === 'number') { t.fail(`stat ${dev}: ${st}`); continue; }
    t.equal(st.mode & S_IFMT, S_IFBLK, `${dev} is a block device`);
    const fd = await k.sys.open(dev, O_RDONLY);
    t.ok(fd >= 0, `open ${dev}`);
    const size = p.extended ? 1024 : p.size * 512;
    t.equal(await k.sys.lseek(fd, 0, SEEK_END), size, `${dev}: ${size} bytes`);
    if (!p.extended) {
      const buf = new Uint8Array(Math.min(size, 3 * MiB));
      t.equal(await k.sys.pread64(fd, buf, 0), buf.length);
      t.equal(firstDiff(buf, img2.subarray(p.start * 512, p.start * 512 + buf.length)), -1, `${dev}: its first bytes`);
      const tail = new Uint8Array(8192);
      t.equal(await k.sys.pread64(fd, tail, size - 4096), 4096, `${dev}: read at the end is short`);
      t.equal(firstDiff(tail.subarray(0, 4096), img2.subarray(p.start * 512 + size - 4096, p.start * 512 + size)), -1, `${dev}: its last bytes`);
    }
    t.equal(await k.sys.close(fd), 0);
    t.comment(`${dev}: rdev ${major(st.rdev)}:${minor(st.rdev)}`);
  }
  const whole = await k.sys.stat('/dev/vda');
  t.ok(typeof whole !== 'number' && major(whole.rdev) === 254 && minor(whole.rdev) === 0, '/dev/vda is 254:0');
  t.equal(await k.sys.stat(`/dev/vda${Math.max(...expect.keys()) + 1}`), -ENOENT, 'no more partitions than the table has');

  /* writing through a partition lands inside it, and the whole disk sees it after close */
  const last = [...expect].filter(([, p]) => !p.extended).pop()!;
  const fd = await k.sys.open(`/dev/vda${last[0]}`, O_RDWR);
  const w = new Uint8Array(4096).fill(0xe5);
  t.equal(await k.sys.pwrite64(fd, w, 8192), 4096);
  t.equal(await k.sys.fsync(fd), 0);
  t.equal(await k.sys.close(fd), 0);
  const wd = await k.sys.open('/dev/vda', O_RDONLY);
  const r = new Uint8Array(4096);
  t.equal(await k.sys.pread64(wd, r, last[1].start * 512 + 8192), 4096);
  t.equal(firstDiff(r, w), -1, 'the whole disk sees the partition write');
  await k.sys.close(wd);
  await k.halt();
  t.equal(firstDiff(fs.readFileSync(img).subarray(last[1].start * 512 + 8192, last[1].start * 512 + 12288), w), -1, 'at the right place in the image');
}

t.test('MBR with an extended partition (sfdisk)', async (t) => {
  const img = path.join(scratchDir(t, 'blk-mbr'), 'mbr.img');
  makeImage(img, 64);
  execFileSync('sfdisk', ['-q', img], {
    input: 'label: dos\n' +
      'start=2048, size=8192, type=83\n' +
      'start=10240, size=20480, type=83\n' +
      'start=30720, size=4096, type=83\n' +
      'start=36864, size=90112, type=5\n' +
      'start=38912, size=16384, type=83\n' +
      'start=57344, size=6144, type=83\n',
  });
  const parts = sfdiskParts(img);
  const expect = new Map<number, { start: number; size: number; extended?: boolean }>();
  for (const [no, p] of parts) expect.set(no, { ...p, extended: no === 4 });
  t.same([...expect.keys()].sort(), [1, 2, 3, 4, 5, 6], 'sfdisk made 1-4 and logical 5, 6');
  await checkDisk(t, img, expect);
});

t.test('GPT (sgdisk)', async (t) => {
  const img = path.join(scratchDir(t, 'blk-gpt'), 'gpt.img');
  makeImage(img, 64);
  execFileSync('sgdisk', ['-n', '1:2048:+4M', '-n', '2:0:+8M', '-n', '3:0:+1M', '-n', '4:0:+6M', '-n', '5:0:+3M', '-t', '5:8300', img], { stdio: 'ignore' });
  const parts = sfdiskParts(img);
  t.equal(parts.size, 5, 'sgdisk made 5 partitions');
  await checkDisk(t, img, parts);
});
