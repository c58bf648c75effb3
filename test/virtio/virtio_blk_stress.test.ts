/*
 * Thousands of random concurrent reads and writes (up to 1 MiB, scatter-gather with
 * arbitrary buffer framing, direct and indirect chains, queue depth 48) against a
 * FileStore on a temp file, some held back at random so they complete out of order;
 * every read is checked against an in-memory model, and the file itself at the end.
 * In-flight requests never overlap, as the block layer guarantees the driver.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
} from '../../lib/kernel/include/uapi/linux/virtio_blk.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../../lib/kernel/include/uapi/linux/virtio_config.js';
import { FaultyStore, FileStore } from '../../lib/drivers/stores.js';
import { VirtioBlkHost } from '../../lib/drivers/virtio-blk.js';
import { TestBlkDriver, type Buf } from './blk-driver.js';

/* a small deterministic PRNG so that a failure can be replayed with its seed */
function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const DISK = 64 << 20;
const SECTORS = DISK / 512;
const DEPTH = 48;
const TOTAL = Number(process.env.VIRTIO_STRESS_REQUESTS ?? 4000);
const MAX_SECTORS = 2048;                 /* 1 MiB */
const SLOT = MAX_SECTORS * 512 + (256 << 10);

t.test('random concurrent I/O matches the model byte for byte', async (t) => {
  const seed = Number(process.env.VIRTIO_STRESS_SEED ?? Date.now() % 1e9);
  t.comment(`seed ${seed}`);
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);

  const dir = t.testdir({});
  const file = path.join(dir, 'disk.img');
  const model = new Uint8Array(DISK);
  randomBytes(DISK).copy(Buffer.from(model.buffer));
  fs.writeFileSync(file, model);

  const store = new FaultyStore(await FileStore.open(file), {
    /* hold a quarter of the operations back by up to 4 ms: completions reorder */
    delay: () => (rnd() < 0.25 ? 1 + int(4) : 0),
  });
  const dev = new VirtioBlkHost(store, { queueNumMax: 256 });
  const drv = new TestBlkDriver(dev, { memBytes: (32 << 20) + DEPTH * SLOT });
  t.equal(drv.init() & VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_DRIVER_OK);
  t.equal(drv.capacity, SECTORS);

  const slots = Array.from({ length: DEPTH }, () => drv.alloc(SLOT, 4096));
  const pool = randomBytes(4 << 20);
  const busy: [number, number][] = [];  /* in-flight sector ranges */
  const overlaps = (s: number, n: number) => busy.some(([a, m]) => s < a + m && a < s + n);

  let reads = 0, writes = 0, flushes = 0, bytes = 0, maxOutstanding = 0, mismatches = 0, bad = 0, indirect = 0;
  let bigOnes = 0;

  const pickSectors = (i: number) => {
    if (i % 97 === 0) return MAX_SECTORS;
    const r = rnd();
    return 1 + int(r < 0.45 ? 32 : r < 0.85 ? 512 : MAX_SECTORS);
  };

  /* splits len bytes into 1..16 buffers of arbitrary (not sector-sized) lengths, with gaps */
  const buffers = (slot: number, len: number): Buf[] => {
    const n = Math.min(len, 1 + int(16));
    const cuts = new Set<number>();
    while (cuts.size < n - 1) cuts.add(1 + int(len - 1));
    const ends = [...cuts].sort((a, b) => a - b).concat(len);
    const out: Buf[] = [];
    let at = slot + int(4096), prev = 0;
    for (const e of ends) {
      out.push({ addr: at, len: e - prev });
      at += e - prev + int(8192);
      prev = e;
    }
    if (at > slot + SLOT) throw new Error('slot overflow');
    return out;
  };

  const one = async (i: number, slot: number): Promise<void> => {
    if (rnd() < 0.02) {
      flushes++;
      const r = await drv.request(VIRTIO_BLK_T_FLUSH, 0, []);
      if (r.status !== VIRTIO_BLK_S_OK || r.len !== 1) bad++;
      return;
    }
    let sectors = pickSectors(i), sector = int(SECTORS - sectors + 1), tries = 0;
    while (overlaps(sector, sectors) && tries++ < 20) {
      sectors = pickSectors(i);
      sector = int(SECTORS - sectors + 1);
    }
    if (overlaps(sector, sectors)) return;
    const range: [number, number] = [sector, sectors];
    busy.push(range);
    const len = sectors * 512, pos = sector * 512;
    if (sectors === MAX_SECTORS) bigOnes++;
    const bufs = buffers(slot, len);
    const useIndirect = bufs.length + 2 > 8 || rnd() < 0.3;
    if (useIndirect) indirect++;
    bytes += len;
    if (rnd() < 0.5) {
      writes++;
      let off = 0;
      for (const b of bufs) {
        const src = int(pool.length - b.len);
        drv.mem.set(pool.subarray(src, src + b.len), b.addr);
        model.set(pool.subarray(src, src + b.len), pos + off);
        off += b.len;
      }
      const r = await drv.request(VIRTIO_BLK_T_OUT, sector, bufs, { indirect: useIndirect });
      if (r.status !== VIRTIO_BLK_S_OK || r.len !== 1) bad++;
    } else {
      reads++;
      for (const b of bufs) drv.mem.fill(0xcd, b.addr, b.addr + b.len);
      const r = await drv.request(VIRTIO_BLK_T_IN, sector, bufs, { indirect: useIndirect });
      if (r.status !== VIRTIO_BLK_S_OK || r.len !== len + 1) bad++;
      let off = 0;
      for (const b of bufs) {
        if (Buffer.compare(drv.mem.subarray(b.addr, b.addr + b.len), model.subarray(pos + off, pos + off + b.len)) !== 0) mismatches++;
        off += b.len;
      }
    }
    busy.splice(busy.indexOf(range), 1);
  };

  const free = [...slots];
  const running = new Set<Promise<void>>();
  for (let i = 0; i < TOTAL; i++) {
    while (running.size >= DEPTH || drv.freeCount < 20) await Promise.race(running);
    const slot = free.pop()!;
    const p: Promise<void> = one(i, slot).finally(() => { running.delete(p); free.push(slot); });
    running.add(p);
    maxOutstanding = Math.max(maxOutstanding, drv.outstanding, dev.inflightCount);
  }
  await Promise.all(running);

  t.equal(bad, 0, 'every request completed OK with the right used len');
  t.equal(mismatches, 0, 'every read returned the model\'s bytes');
  t.ok(reads > TOTAL / 4 && writes > TOTAL / 4, `${reads} reads, ${writes} writes, ${(bytes / 2 ** 20).toFixed(0)} MiB`);
  t.ok(bigOnes >= 10, `${bigOnes} requests of 1 MiB`);
  t.ok(indirect > 100, `${indirect} indirect chains`);
  t.ok(maxOutstanding >= 32, `queue depth reached ${maxOutstanding}`);
  t.equal(store.flushes, flushes, `${flushes} FLUSH requests reached the store`);
  let outOfOrder = 0;
  for (let i = 1; i < drv.completionOrder.length; i++) if (drv.completionOrder[i] < drv.completionOrder[i - 1]) outOfOrder++;
  t.ok(outOfOrder > 0, `${outOfOrder} completions came back before an earlier submission`);
  t.equal(drv.ringMismatches, 0, 'used ring agrees with IRQ data');
  t.ok(dev.stats.irqs < dev.stats.completed, `${dev.stats.completed} completions batched into ${dev.stats.irqs} IRQs`);
  t.equal(dev.stats.chainErrors, 0);
  await dev.close();
  const onDisk = fs.readFileSync(file);
  t.equal(Buffer.compare(onDisk, model), 0, 'the image file equals the model');
});
