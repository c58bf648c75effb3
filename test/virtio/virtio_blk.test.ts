/*
 * virtio-blk host half, driven the way a driver drives it: requests of every type,
 * scatter-gather, indirect tables, store errors, read-only images, malformed chains.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_CFG_CAPACITY, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS,
  VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG, VIRTIO_BLK_CFG_NUM_QUEUES, VIRTIO_BLK_CFG_SEG_MAX,
  VIRTIO_BLK_DWZ_FLAGS, VIRTIO_BLK_DWZ_NUM_SECTORS, VIRTIO_BLK_DWZ_SECTOR, VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../../lib/kernel/include/uapi/linux/virtio_blk.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1, features, hasFeature,
} from '../../lib/kernel/include/uapi/linux/virtio_config.js';
import { VIRTIO_ID_BLOCK } from '../../lib/kernel/include/uapi/linux/virtio_ids.js';
import {
  VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_DEVICE_ID, VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_STATUS,
} from '../../lib/kernel/include/uapi/linux/virtio_mmio.js';
import {
  VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, setU64,
} from '../../lib/kernel/include/uapi/linux/virtio_ring.js';
import { FaultyStore, FileStore, MemoryStore, type BlockStore } from '../../lib/drivers/stores.js';
import { VirtioBlkHost, type VirtioBlkOptions } from '../../lib/drivers/virtio-blk.js';
import type { VirtioChainError } from '../../lib/drivers/virtio-mmio-host.js';
import { TestBlkDriver, type Buf } from './blk-driver.js';

const IN = VIRTIO_BLK_T_IN, OUT = VIRTIO_BLK_T_OUT, OK = VIRTIO_BLK_S_OK, IOERR = VIRTIO_BLK_S_IOERR,
  UNSUPP = VIRTIO_BLK_S_UNSUPP;

function setup(store: BlockStore, opts: VirtioBlkOptions = {}, memBytes = 16 << 20) {
  const errors: VirtioChainError[] = [];
  const dev = new VirtioBlkHost(store, { onChainError: (e) => errors.push(e), ...opts });
  const drv = new TestBlkDriver(dev, { memBytes });
  const status = drv.init();
  return { dev, drv, errors, status };
}

/** Splits [addr, addr+len) into buffers of the given sizes, placed with gaps in between. */
function scatterBufs(drv: TestBlkDriver, sizes: number[]): Buf[] {
  return sizes.map((len) => ({ addr: drv.alloc(len + 64, 8) + 32, len }));
}
function fill(drv: TestBlkDriver, bufs: Buf[], data: Uint8Array): void {
  let off = 0;
  for (const b of bufs) { drv.mem.set(data.subarray(off, off + b.len), b.addr); off += b.len; }
}
function collect(drv: TestBlkDriver, bufs: Buf[]): Buffer {
  return Buffer.concat(bufs.map((b) => Buffer.from(drv.mem.subarray(b.addr, b.addr + b.len))));
}

t.test('negotiation and configuration space', async (t) => {
  const store = new MemoryStore(1 << 20);
  const { dev, drv, status } = setup(store, { serial: 'disk-serial-0001' });
  t.equal(status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  t.equal(dev.read(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
  for (const bit of [VIRTIO_F_VERSION_1, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE,
    VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_F_INDIRECT_DESC]) {
    t.ok(hasFeature(drv.offered, bit), `offers bit ${bit}`);
  }
  t.notOk(hasFeature(drv.offered, VIRTIO_BLK_F_RO), 'not read-only');
  t.notOk(hasFeature(drv.offered, VIRTIO_F_RING_EVENT_IDX), 'no event idx');
  t.equal(drv.capacity, 2048);
  t.equal(drv.configU32(VIRTIO_BLK_CFG_SEG_MAX), 254);
  t.equal(drv.configU32(VIRTIO_BLK_CFG_BLK_SIZE), 512);
  t.equal(dev.read(VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_NUM_QUEUES, 2), 1);
  t.equal(dev.read(VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_CAPACITY + 1, 1), 8, 'byte access: 2048 = 0x800');
  t.ok(drv.configU32(VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS) > 0);
  t.equal(drv.configU32(VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG), 254);
  t.equal(dev.read(VIRTIO_MMIO_CONFIG + 4096), 0, 'beyond the config space reads 0');

  const id = drv.alloc(20);
  const r = await drv.request(VIRTIO_BLK_T_GET_ID, 0, [{ addr: id, len: 20 }]);
  t.equal(r.status, OK);
  t.equal(r.len, 21, 'used len = id bytes + status');
  t.equal(Buffer.from(drv.mem.subarray(id, id + 20)).toString('latin1'), 'disk-serial-0001\0\0\0\0');
  await dev.close();

  /* a file-backed, 4 KiB-block device: no DISCARD, WRITE_ZEROES by writing zeros */
  const dir = t.testdir({});
  const file = path.join(dir, 'img');
  fs.writeFileSync(file, Buffer.alloc(1 << 20, 0xaa));
  const f = setup(await FileStore.open(file), { blkSize: 4096 });
  t.notOk(hasFeature(f.drv.offered, VIRTIO_BLK_F_DISCARD));
  t.ok(hasFeature(f.drv.offered, VIRTIO_BLK_F_WRITE_ZEROES));
  t.equal(f.drv.configU32(VIRTIO_BLK_CFG_BLK_SIZE), 4096);
  const seg = f.drv.alloc(16);
  setU64(f.drv.view, seg + VIRTIO_BLK_DWZ_SECTOR, 8);
  f.drv.view.setUint32(seg + VIRTIO_BLK_DWZ_NUM_SECTORS, 2 + 4096, true);  /* crosses the 1 MiB zero chunk */
  f.drv.view.setUint32(seg + VIRTIO_BLK_DWZ_FLAGS, 0, true);
  t.equal((await f.drv.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, [{ addr: seg, len: 16 }])).status, IOERR, 'beyond capacity');
  f.drv.view.setUint32(seg + VIRTIO_BLK_DWZ_NUM_SECTORS, 2, true);
  t.equal((await f.drv.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, [{ addr: seg, len: 16 }])).status, OK);
  t.equal((await f.drv.request(VIRTIO_BLK_T_DISCARD, 0, [{ addr: seg, len: 16 }])).status, UNSUPP, 'discard not offered');
  await f.dev.close();
  const img = fs.readFileSync(file);
  t.ok(img.subarray(4096, 5120).every((b) => b === 0) && img[4095] === 0xaa && img[5120] === 0xaa, 'sectors 8-9 zeroed');
  t.throws(() => new VirtioBlkHost(new MemoryStore(4096), { blkSize: 1000 }));
});

t.test('reads and writes, scatter-gather and indirect, byte exact', async (t) => {
  const store = new MemoryStore(4 << 20);
  randomBytes(4 << 20).copy(Buffer.from(store.data.buffer));
  const { dev, drv, errors } = setup(store);
  const data = randomBytes(67072);
  const out = scatterBufs(drv, [512, 4096, 1536, 32768, 28160]);
  fill(drv, out, data);
  const w = await drv.request(OUT, 100, out);
  t.same(w, { status: OK, len: 1, id: w.id }, 'write: used len counts only the status byte');
  t.same(Buffer.from(store.data.subarray(100 * 512, 100 * 512 + 67072)), data);

  const inb = scatterBufs(drv, [1024, 65536 - 1024, 512]);
  const r = await drv.request(IN, 100, inb, { indirect: true });
  t.equal(r.status, OK);
  t.equal(r.len, 66049, 'read: used len = data + status');
  t.same(collect(drv, inb), data.subarray(0, 66048));

  /* header and status framed oddly (2.6.4): header split over two buffers, status sharing
   * the last data buffer's descriptor */
  const h = drv.alloc(16), h2 = drv.alloc(16), tail = drv.alloc(513);
  drv.view.setUint32(h, IN, true);
  drv.view.setUint32(h + 4, 0, true);
  setU64(drv.view, h2 - 8, 0);
  drv.view.setUint32(h2, 101, true); drv.view.setUint32(h2 + 4, 0, true);
  drv.mem[tail + 512] = 0xff;
  const odd = await drv.submit([{ addr: h, len: 8 }, { addr: h2, len: 8 }, { addr: tail, len: 513, write: true }]);
  t.equal(odd.len, 513);
  t.equal(drv.mem[tail + 512], OK);
  t.same(Buffer.from(drv.mem.subarray(tail, tail + 512)), data.subarray(512, 1024));

  t.equal(drv.ringMismatches, 0, 'used ring in memory matches the IRQ data');
  t.equal(errors.length, 0);
  await dev.close();
});

t.test('status errors: capacity, alignment, types, RO, store faults', async (t) => {
  const mem = new MemoryStore(1 << 20);
  const store = new FaultyStore(mem, { faults: [{ op: 'read', pos: 4096 * 10, len: 512 }, { op: 'write', pos: 4096 * 20, len: 1 }, { op: 'flush', times: 1 }] });
  const { dev, drv } = setup(store);
  const buf = drv.alloc(8192);
  const b = (len: number) => [{ addr: buf, len }];
  t.equal((await drv.request(IN, 2047, b(512))).status, OK, 'last sector');
  t.equal((await drv.request(IN, 2047, b(1024))).status, IOERR, 'past the last sector');
  t.equal((await drv.request(IN, 2048, b(512))).status, IOERR, 'at capacity');
  t.equal((await drv.request(OUT, 2 ** 40, b(512))).status, IOERR, 'huge sector');
  t.equal((await drv.request(OUT, 0, b(100))).status, IOERR, 'not whole sectors');
  const e = await drv.request(IN, 79, b(1024));  /* covers byte 40960 */
  t.equal(e.status, IOERR, 'injected read error');
  t.equal(e.len, 1, 'error: only the status byte counted');
  drv.mem.fill(0x5a, buf, buf + 512);
  t.equal((await drv.request(OUT, 160, b(512))).status, IOERR, 'injected write error');
  t.equal((await drv.request(OUT, 161, b(512))).status, OK, 'the neighbour still writes');
  t.equal(mem.data[161 * 512], 0x5a);
  t.equal((await drv.request(VIRTIO_BLK_T_FLUSH, 0, [])).status, IOERR, 'injected flush error');
  t.equal((await drv.request(VIRTIO_BLK_T_FLUSH, 0, [])).status, OK);
  t.equal(store.flushes, 2, 'FLUSH reached the store each time');
  t.equal((await drv.request(99, 0, [])).status, UNSUPP, 'unknown type');
  t.equal((await drv.request(VIRTIO_BLK_T_GET_LIFETIME, 0, b(16))).status, UNSUPP);

  /* DISCARD / WRITE_ZEROES */
  mem.data.fill(0x77, 0, 8192);
  const seg = drv.alloc(32);
  const setSeg = (i: number, sector: number, n: number, flags: number) => {
    setU64(drv.view, seg + 16 * i, sector);
    drv.view.setUint32(seg + 16 * i + 8, n, true);
    drv.view.setUint32(seg + 16 * i + 12, flags, true);
  };
  setSeg(0, 1, 2, 0); setSeg(1, 10, 1, 0);
  t.equal((await drv.request(VIRTIO_BLK_T_DISCARD, 0, [{ addr: seg, len: 32 }])).status, OK);
  t.ok(mem.data.subarray(512, 1536).every((x) => x === 0) && mem.data[511] === 0x77 && mem.data[1536] === 0x77);
  t.ok(mem.data.subarray(5120, 5632).every((x) => x === 0));
  t.equal(store.counts.discard, 2);
  setSeg(0, 3, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
  t.equal((await drv.request(VIRTIO_BLK_T_DISCARD, 0, [{ addr: seg, len: 16 }])).status, UNSUPP, 'unmap flag on discard');
  t.equal((await drv.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, [{ addr: seg, len: 16 }])).status, OK, 'unmap flag on write zeroes');
  t.ok(mem.data.subarray(1536, 2048).every((x) => x === 0));
  setSeg(0, 3, 1, 4);
  t.equal((await drv.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, [{ addr: seg, len: 16 }])).status, UNSUPP, 'reserved flag');
  t.equal((await drv.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, [{ addr: seg, len: 12 }])).status, IOERR, 'partial segment');
  t.ok(dev.blkStats.ioErrors >= 8 && dev.blkStats.unsupported >= 4);
  await dev.close();

  /* a driver that did not negotiate DISCARD cannot use it */
  const n = new VirtioBlkHost(new MemoryStore(1 << 20));
  const d2 = new TestBlkDriver(n, { memBytes: 8 << 20 });
  d2.init({ accept: (f) => f & ~features(VIRTIO_BLK_F_DISCARD) });
  const s2 = d2.alloc(16);
  d2.view.setUint32(s2 + 8, 1, true);
  t.equal((await d2.request(VIRTIO_BLK_T_DISCARD, 0, [{ addr: s2, len: 16 }])).status, UNSUPP);
  await n.close();
});

t.test('read-only FileStore: RO offered, writes IOERR, file bytes and mtime unchanged', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'ro.img');
  const content = randomBytes(256 * 1024);
  fs.writeFileSync(file, content);
  const past = new Date(Date.now() - 3600_000);
  fs.utimesSync(file, past, past);
  const before = fs.statSync(file);
  const { dev, drv } = setup(await FileStore.open(file, { readOnly: true }));
  t.ok(hasFeature(drv.offered, VIRTIO_BLK_F_RO));
  t.notOk(hasFeature(drv.offered, VIRTIO_BLK_F_WRITE_ZEROES));
  t.notOk(hasFeature(drv.offered, VIRTIO_BLK_F_DISCARD));
  const buf = drv.alloc(65536);
  drv.mem.fill(0xee, buf, buf + 65536);
  const w = await drv.request(OUT, 0, [{ addr: buf, len: 65536 }]);
  t.equal(w.status, IOERR);
  const seg = drv.alloc(16);
  drv.view.setUint32(seg + 8, 8, true);
  t.equal((await drv.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, [{ addr: seg, len: 16 }])).status, UNSUPP, 'not offered');
  t.equal((await drv.request(VIRTIO_BLK_T_FLUSH, 0, [])).status, OK, 'flush of a read-only device is fine');
  const r = await drv.request(IN, 8, [{ addr: buf, len: 65536 }]);
  t.equal(r.status, OK);
  t.same(Buffer.from(drv.mem.subarray(buf, buf + 65536)), content.subarray(4096, 4096 + 65536));
  await dev.close();
  const after = fs.statSync(file);
  t.same(fs.readFileSync(file), content, 'bytes unchanged');
  t.equal(after.mtimeMs, before.mtimeMs, 'mtime unchanged');
  t.equal(after.size, before.size);
});

t.test('malformed chains are reported and the device keeps serving', async (t) => {
  const store = new MemoryStore(1 << 20);
  const { dev, drv, errors } = setup(store);
  const buf = drv.alloc(4096);
  store.data.fill(0x42, 0, 4096);
  const good = async (what: string) => {
    drv.mem.fill(0, buf, buf + 4096);
    const r = await drv.request(IN, 0, [{ addr: buf, len: 4096 }]);
    t.equal(r.status, OK, `good request after ${what}`);
    t.ok(drv.mem.subarray(buf, buf + 4096).every((x) => x === 0x42));
  };
  const expectError = async (what: string, post: () => Promise<{ len: number }>, re: RegExp) => {
    const before = errors.length;
    const c = await post();
    t.equal(c.len, 0, `${what}: completed with used len 0`);
    t.equal(errors.length, before + 1, `${what}: reported once`);
    t.match(errors[errors.length - 1].reason, re, `${what}: reason`);
    await good(what);
  };

  /* a descriptor loop: a -> b -> a */
  {
    const [a, b] = drv.takeDescs(2);
    drv.ring.writeDesc(a, { addr: buf, len: 16, flags: VIRTQ_DESC_F_NEXT, next: b });
    drv.ring.writeDesc(b, { addr: buf, len: 16, flags: VIRTQ_DESC_F_NEXT, next: a });
    await expectError('loop', () => drv.post([a, b]), /loop/);
  }
  /* a length reaching beyond memory */
  {
    const [a, b] = drv.takeDescs(2);
    drv.ring.writeDesc(a, { addr: buf, len: 16, flags: VIRTQ_DESC_F_NEXT, next: b });
    drv.ring.writeDesc(b, { addr: drv.mem.length - 100, len: 4096, flags: VIRTQ_DESC_F_WRITE, next: 0 });
    await expectError('length beyond memory', () => drv.post([a, b]), /beyond memory/);
  }
  /* an address out of range (64-bit) */
  {
    const [a] = drv.takeDescs(1);
    drv.ring.writeDesc(a, { addr: 2 ** 40, len: 16, flags: 0, next: 0 });
    await expectError('address out of range', () => drv.post([a]), /beyond memory/);
  }
  /* no status descriptor: header and data, all device-readable */
  {
    const hdr = drv.alloc(16);
    drv.view.setUint32(hdr, OUT, true);
    await expectError('no status', () => drv.submit([{ addr: hdr, len: 16 }, { addr: buf, len: 512 }]), /status/);
    t.equal(store.data[0], 0x42, 'nothing was written');
  }
  /* zero-length descriptor */
  {
    const [a] = drv.takeDescs(1);
    drv.ring.writeDesc(a, { addr: buf, len: 0, flags: VIRTQ_DESC_F_WRITE, next: 0 });
    await expectError('zero length', () => drv.post([a]), /zero-length/);
  }
  /* next index out of range */
  {
    const [a] = drv.takeDescs(1);
    drv.ring.writeDesc(a, { addr: buf, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 9999 });
    await expectError('next out of range', () => drv.post([a]), /out of range/);
  }
  /* readable after writable */
  {
    const hdr = drv.alloc(17);
    await expectError('readable after writable',
      () => drv.submit([{ addr: hdr, len: 1, write: true }, { addr: hdr + 1, len: 16 }]), /after a device-writable/);
  }
  /* a short header with a status byte gets IOERR */
  {
    const hdr = drv.alloc(17);
    const c = await drv.submit([{ addr: hdr, len: 8 }, { addr: hdr + 16, len: 1, write: true }], { statusAddr: hdr + 16 });
    t.equal(c.status, IOERR);
    t.match(errors[errors.length - 1].reason, /header of 8 bytes/);
  }
  /* an indirect table with a bad length, and a nested indirect */
  {
    const [a] = drv.takeDescs(1);
    drv.ring.writeDesc(a, { addr: buf, len: 24, flags: 4, next: 0 });
    await expectError('indirect length', () => drv.post([a]), /multiple of 16/);
    const [i2] = drv.takeDescs(1);
    const table = drv.alloc(32);
    drv.view.setUint16(table + 12, 4, true);
    drv.view.setUint32(table + 8, 16, true);
    drv.ring.writeDesc(i2, { addr: table, len: 32, flags: 4, next: 0 });
    await expectError('nested indirect', () => drv.post([i2]), /inside an indirect/);
  }
  /* a head index beyond the queue: skipped (nothing to complete), reported */
  {
    const before = errors.length;
    drv.publish(drv.num + 5);
    await good('bad head');
    t.equal(errors.length, before + 1);
    t.match(errors[before].reason, /head index/);
  }
  t.equal(dev.stats.chainErrors, errors.length);
  t.equal(drv.orphans.length, 0);
  t.equal(drv.ringMismatches, 0);
  t.equal(dev.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 0, 'bad chains do not need a reset');
  t.equal(drv.freeCount, drv.num, 'every descriptor came back');
  await dev.close();
});

t.test('indirect descriptors are refused when not negotiated', async (t) => {
  const dev = new VirtioBlkHost(new MemoryStore(1 << 20));
  const errors: string[] = [];
  const drv = new TestBlkDriver(dev, { memBytes: 8 << 20 });
  (dev as unknown as { onChainError: (e: VirtioChainError) => void }).onChainError = (e) => errors.push(e.reason);
  drv.init({ accept: (f) => f & ~features(VIRTIO_F_INDIRECT_DESC) });
  const buf = drv.alloc(512);
  const r = await drv.request(IN, 0, [{ addr: buf, len: 512 }], { indirect: true });
  t.equal(r.len, 0);
  t.match(errors[0], /VIRTIO_F_INDIRECT_DESC/);
  await dev.close();
});

t.test('reset drops completions of in-flight requests; close waits for them', async (t) => {
  const mem = new MemoryStore(1 << 20);
  mem.data.fill(0x11);
  const store = new FaultyStore(mem, { delay: () => 40 });
  const { dev, drv } = setup(store);
  const buf = drv.alloc(512);
  const lost = drv.request(IN, 0, [{ addr: buf, len: 512 }]);
  t.equal(dev.inflightCount, 1);
  dev.write(VIRTIO_MMIO_STATUS, 0);
  t.equal(dev.read(VIRTIO_MMIO_STATUS), 0);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_READY), 0);
  await dev.quiesce();
  await new Promise((r) => setImmediate(r));
  let settled = false;
  void lost.then(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 10));
  t.notOk(settled, 'no used entry after reset');
  t.equal(drv.ring.usedIdx, 0, 'used ring untouched');

  const d2 = new TestBlkDriver(dev, { memBytes: 8 << 20 });
  d2.init();
  const b2 = d2.alloc(512);
  const p = d2.request(IN, 0, [{ addr: b2, len: 512 }]);
  const closing = dev.close();
  t.equal((await p).status, OK, 'in-flight request completes before close resolves');
  await closing;
  t.equal(d2.mem[b2], 0x11);
});
