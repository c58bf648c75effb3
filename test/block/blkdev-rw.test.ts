/*
 * Random concurrent reads and writes on /dev/vda through the kernel (open, pread64,
 * pwrite64, fsync, close), on a FileStore over a temp file, checked byte for byte against a
 * model: through the kernel while running, through the kernel after the writes, and in the
 * backing file after fsync and halt.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { startKernel, O_RDWR, SEEK_END, EINVAL } from '../../lib/index.js';
import { bdevByName, bdevQueue } from '../../lib/kernel/block/bdev.js';
import { scratchDir } from '../lib/scratch.js';
import { RangeLocks, fillRandom, firstDiff, rng } from './helpers.js';

const MiB = 1 << 20;

t.test('thousands of concurrent mixed-size reads and writes', async (t) => {
  const dir = scratchDir(t, 'blkdev-rw');
  const img = path.join(dir, 'disk.img');
  const SIZE = 48 * MiB;
  const seed = Number(process.env.BLK_SEED ?? 12345);
  const rand = rng(seed);
  const model = fillRandom(new Uint8Array(SIZE), rand);
  fs.writeFileSync(img, model);

  const k = await startKernel({ memMiB: 64, syscallThreads: 64 });
  const id = await k.diskAdd({ path: img });
  t.ok(id >= 0, `disk id ${id}`);
  const fd = await k.sys.open('/dev/vda', O_RDWR);
  t.ok(fd >= 0, `open /dev/vda: ${fd}`);
  t.equal(await k.sys.lseek(fd, 0, SEEK_END), SIZE, 'SEEK_END is the disk size');

  const locks = new RangeLocks();
  const WORKERS = 48, OPS = 4000;
  let issued = 0, reads = 0, writes = 0, bytes = 0, bad = 0;
  const pickSize = () => {
    const r = rand();
    if (r < 0.5) return 1 + Math.floor(rand() * 8192);            /* small, unaligned */
    if (r < 0.85) return 4096 * (1 + Math.floor(rand() * 64));    /* pages, up to 256 KiB */
    return MiB + Math.floor(rand() * MiB);                        /* >= 1 MiB */
  };
  const worker = async () => {
    while (issued < OPS) {
      issued++;
      const len = pickSize();
      const pos = Math.floor(rand() * (SIZE - len));
      const write = rand() < 0.45;
      const release = await locks.acquire(pos, len, write);
      try {
        if (write) {
          const buf = fillRandom(new Uint8Array(len), rand);
          const n = await k.sys.pwrite64(fd, buf, pos);
          if (n !== len) { bad++; t.fail(`pwrite64 ${pos}+${len} = ${n}`); continue; }
          model.set(buf, pos);
          writes++;
        } else {
          const buf = new Uint8Array(len);
          const n = await k.sys.pread64(fd, buf, pos);
          if (n !== len) { bad++; t.fail(`pread64 ${pos}+${len} = ${n}`); continue; }
          const d = firstDiff(buf, model.subarray(pos, pos + len));
          if (d >= 0) { bad++; t.fail(`pread64 ${pos}+${len}: differs at ${pos + d}`); }
          reads++;
        }
        bytes += len;
      } finally { release(); }
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const ms = Date.now() - t0;
  t.equal(bad, 0, `${reads} reads and ${writes} writes (${(bytes / MiB).toFixed(0)} MiB) in ${ms} ms, all as modelled`);

  /* edges: the last byte, past the end */
  const last = new Uint8Array(10);
  t.equal(await k.sys.pread64(fd, last, SIZE - 5), 5, 'read across the end is short');
  t.same(last.subarray(0, 5), model.subarray(SIZE - 5), 'the last bytes');
  t.equal(await k.sys.pread64(fd, last, SIZE), 0, 'read at the end reads nothing');
  t.equal(await k.sys.pwrite64(fd, last, SIZE), -28 /* ENOSPC */, 'write at the end is ENOSPC');
  t.equal(await k.sys.pread64(fd, last, -1), -EINVAL, 'negative offset is EINVAL');

  const q = bdevQueue(bdevByName('vda')!);
  t.ok(q.stats.maxInFlight >= 32, `queue depth reached ${q.stats.maxInFlight} requests in flight`);
  // Pages go out in multi-page bios (mpage) or bios merged in the queue, never a request per page.
  const pages = Math.ceil(bytes / 4096);
  t.ok(q.stats.requests * 4 < pages, `${q.stats.requests} requests (${q.stats.bios} bios, ${q.stats.backMerges} back and ${q.stats.frontMerges} front merges) for ${pages} pages moved`);

  t.equal(await k.sys.fsync(fd), 0, 'fsync');
  /* whole device through the kernel */
  const all = new Uint8Array(SIZE);
  for (let off = 0; off < SIZE; off += 4 * MiB) {
    t.equal(await k.sys.pread64(fd, all.subarray(off, off + 4 * MiB), off), 4 * MiB);
  }
  t.equal(firstDiff(all, model), -1, 'the whole device reads back as modelled');
  /* after fsync the file has it, before halt */
  t.equal(firstDiff(fs.readFileSync(img), model), -1, 'the backing file has every write after fsync');
  t.equal(await k.sys.close(fd), 0);
  await k.halt();
  t.equal(firstDiff(fs.readFileSync(img), model), -1, 'the backing file after halt');
});
