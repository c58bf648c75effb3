/*
 * The disk part of the public API: diskAdd before and after boot, names and device numbers,
 * diskRemove, and halt leaving no host handle on any image.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { diskAdd, startKernel, O_RDONLY, O_RDWR, SEEK_END, ENOENT, ENODEV, ENXIO, major, minor } from '../../lib/index.js';
import { scratchDir } from '../lib/scratch.js';
import { fillRandom, firstDiff, rng } from './helpers.js';

const MiB = 1 << 20;

/** Host descriptors of this process open on `file`. */
function openHandles(file: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try { if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) n++; } catch { /* raced */ }
  }
  return n;
}

t.test('disks before and after boot, removal, halt closes the stores', async (t) => {
  const dir = scratchDir(t, 'blk-api');
  const imgs = ['a.img', 'b.img', 'c.img'].map((n) => path.join(dir, n));
  const contents = imgs.map((f, i) => {
    const b = fillRandom(new Uint8Array((i + 1) * MiB), rng(i + 1));
    fs.writeFileSync(f, b);
    return b;
  });
  const a = await diskAdd({ path: imgs[0]! });
  t.ok(a >= 0, 'diskAdd before boot gives an id');
  t.equal(openHandles(imgs[0]!), 1, 'its image is open');
  const k = await startKernel({ memMiB: 32 });
  const b = await k.diskAdd({ path: imgs[1]! });
  const c = await k.diskAdd({ memory: contents[2]!.slice() });
  t.ok(b > a && c > b, 'ids in order');
  for (const [name, size, dev] of [['vda', 1, 0], ['vdb', 2, 16], ['vdc', 3, 32]] as const) {
    const st = await k.sys.stat(`/dev/${name}`);
    t.ok(typeof st !== 'number' && major(st.rdev) === 254 && minor(st.rdev) === dev, `/dev/${name} is 254:${dev}`);
    const fd = await k.sys.open(`/dev/${name}`, O_RDONLY);
    t.equal(await k.sys.lseek(fd, 0, SEEK_END), size * MiB, `/dev/${name}: ${size} MiB`);
    const buf = new Uint8Array(100000);
    t.equal(await k.sys.pread64(fd, buf, 12345), buf.length);
    t.equal(firstDiff(buf, contents[size - 1]!.subarray(12345, 12345 + buf.length)), -1, `/dev/${name} reads its image`);
    await k.sys.close(fd);
  }

  /* removal: the node goes, the store closes, the name is reused */
  const fd = await k.sys.open('/dev/vdb', O_RDWR);
  t.equal(await k.sys.pwrite64(fd, new Uint8Array(4096).fill(1), 0), 4096);
  t.equal(await k.sys.close(fd), 0);
  t.equal(await k.diskRemove(b), 0, 'diskRemove');
  t.equal(await k.sys.stat('/dev/vdb'), -ENOENT, '/dev/vdb is gone');
  t.equal(openHandles(imgs[1]!), 0, 'its image is closed');
  t.equal(fs.readFileSync(imgs[1]!)[0], 1, 'what was written before removal is in the image');
  t.equal(await k.diskRemove(b), -ENODEV, 'removing twice: ENODEV');
  const b2 = await k.diskAdd({ path: imgs[1]! });
  t.ok(b2 > c, 'a new id');
  const st = await k.sys.stat('/dev/vdb');
  t.ok(typeof st !== 'number', 'the free name vdb is used again');
  t.equal(await k.mountDev(99, 0, 'ext4'), -ENODEV, 'mountDev of an unknown disk');

  /* an open descriptor on a removed disk: ENXIO, not a crash */
  const cfd = await k.sys.open('/dev/vdc', O_RDONLY);
  t.equal(await k.diskRemove(c), 0);
  t.equal(await k.sys.pread64(cfd, new Uint8Array(512), 0), -ENXIO, 'I/O on a removed disk: ENXIO');
  t.equal(await k.sys.close(cfd), 0);

  await k.halt();
  t.equal(openHandles(imgs[0]!) + openHandles(imgs[1]!), 0, 'halt closed every image');
});
