/* Split virtqueue layout (virtio 1.x, 2.7) and the ring accessors. */
import t from 'tap';
import {
  VIRTQ_AVAIL_ALIGN, VIRTQ_DESC_ALIGN, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE, VIRTQ_USED_ALIGN, VIRTQ_USED_ELEM_SIZE, vring, availRingSize, descTableSize,
  isValidQueueSize, readDesc, usedRingSize, vring_size, writeDesc,
} from '../../lib/kernel/include/uapi/linux/virtio_ring.js';
import {
  VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_REQ_HDR_SIZE,
} from '../../lib/kernel/include/uapi/linux/virtio_blk.js';
import {
  VIRTIO_F_VERSION_1, featureWindow, features, hasFeature,
} from '../../lib/kernel/include/uapi/linux/virtio_config.js';
import { VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_MAGIC } from '../../lib/kernel/include/uapi/linux/virtio_mmio.js';

t.test('spec constants', async (t) => {
  t.equal(VIRTQ_DESC_SIZE, 16);
  t.equal(VIRTQ_USED_ELEM_SIZE, 8);
  t.same([VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT], [1, 2, 4]);
  t.same([VIRTQ_DESC_ALIGN, VIRTQ_AVAIL_ALIGN, VIRTQ_USED_ALIGN], [16, 2, 4]);
  t.equal(VIRTIO_MMIO_MAGIC, 0x74726976);
  t.equal(String.fromCharCode(...new Uint8Array(new Uint32Array([VIRTIO_MMIO_MAGIC]).buffer)), 'virt');
  t.equal(VIRTIO_MMIO_CONFIG, 0x100);
  t.equal(VIRTIO_BLK_REQ_HDR_SIZE, 16);
  t.equal(featureWindow(features(VIRTIO_F_VERSION_1, VIRTIO_BLK_F_FLUSH), 0), 1 << 9);
  t.equal(featureWindow(features(VIRTIO_F_VERSION_1, VIRTIO_BLK_F_FLUSH), 1), 1);
  t.ok(hasFeature(features(VIRTIO_F_VERSION_1), 32));
  t.notOk(hasFeature(features(VIRTIO_F_VERSION_1), 0));
});

const table: [number, { avail: number; used: number; total: number }][] = [
  [1, { avail: 16, used: 24, total: 38 }],           /* avail 16+8=24 already 4-aligned */
  [2, { avail: 32, used: 44, total: 66 }],           /* 32+10=42 -> 44 */
  [8, { avail: 128, used: 152, total: 222 }],        /* 128+22=150 -> 152 */
  [128, { avail: 2048, used: 2312, total: 3342 }],   /* 2048+262=2310 -> 2312 */
  [256, { avail: 4096, used: 4616, total: 6670 }],   /* 4096+518=4614 -> 4616 */
  [32768, { avail: 524288, used: 589832, total: 851982 }],
];

t.test('vringSize: sizes, offsets and alignment per 2.7', async (t) => {
  for (const [num, want] of table) {
    const l = vring_size(num);
    t.equal(l.descOffset, 0, `num=${num} desc at 0`);
    t.equal(l.descSize, 16 * num, `num=${num} desc size 16*num`);
    t.equal(l.availSize, 6 + 2 * num, `num=${num} avail size 6+2*num`);
    t.equal(l.usedSize, 6 + 8 * num, `num=${num} used size 6+8*num`);
    t.equal(l.availOffset, want.avail, `num=${num} avail offset`);
    t.equal(l.usedOffset, want.used, `num=${num} used offset`);
    t.equal(l.totalSize, want.total, `num=${num} total`);
    t.equal(l.descOffset % 16, 0);
    t.equal(l.availOffset % 2, 0);
    t.equal(l.usedOffset % 4, 0);
    t.ok(l.usedOffset >= l.availOffset + l.availSize, 'used after avail');
    t.ok(l.usedOffset - (l.availOffset + l.availSize) < 4, 'no more padding than alignment needs');
    t.equal(descTableSize(num), l.descSize);
    t.equal(availRingSize(num), l.availSize);
    t.equal(usedRingSize(num), l.usedSize);
  }
  /* legacy-style page alignment of the used ring */
  t.equal(vring_size(128, 4096).usedOffset, 4096);
  t.equal(vring_size(256, 4096).usedOffset, 8192);
});

t.test('queue sizes: powers of 2 up to 32768', async (t) => {
  for (const n of [1, 2, 4, 1024, 32768]) t.ok(isValidQueueSize(n), `${n}`);
  for (const n of [0, 3, 100, 65536, -2, 1.5]) {
    t.notOk(isValidQueueSize(n), `${n}`);
    t.throws(() => vring_size(n));
  }
});

t.test('accessors write the spec layout, little-endian', async (t) => {
  const num = 8;
  const mem = new Uint8Array(new SharedArrayBuffer(8192));
  const l = vring_size(num);
  const base = 1024;
  const r = new vring(mem, num, base, base + l.availOffset, base + l.usedOffset);
  t.ok(r.u16, 'atomic 16-bit view on a SharedArrayBuffer');
  const dv = new DataView(mem.buffer);

  r.writeDesc(3, { addr: 0x1_2345_6789, len: 0xabcdef, flags: VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, next: 5 });
  const at = base + 3 * 16;
  t.equal(dv.getUint32(at, true), 0x2345_6789, 'addr low');
  t.equal(dv.getUint32(at + 4, true), 1, 'addr high');
  t.equal(dv.getUint32(at + 8, true), 0xabcdef, 'len');
  t.equal(dv.getUint16(at + 12, true), 3, 'flags');
  t.equal(dv.getUint16(at + 14, true), 5, 'next');
  t.same(r.readDesc(3), { addr: 0x1_2345_6789, len: 0xabcdef, flags: 3, next: 5 });
  writeDesc(dv, 4000, { addr: 7, len: 8, flags: 4, next: 0 });
  t.same(readDesc(dv, 4000), { addr: 7, len: 8, flags: 4, next: 0 });

  r.availFlags = 1;
  r.availIdx = 0x1234;
  r.setAvailRing(9, 7);  /* position 9 wraps to slot 1 */
  r.usedEvent = 0xbeef;
  t.equal(dv.getUint16(r.avail, true), 1);
  t.equal(dv.getUint16(r.avail + 2, true), 0x1234);
  t.equal(dv.getUint16(r.avail + 4 + 2, true), 7);
  t.equal(r.availRing(1), 7);
  t.equal(dv.getUint16(r.avail + 4 + 2 * num, true), 0xbeef, 'used_event after ring[num]');
  t.equal(r.usedEvent, 0xbeef);

  r.usedFlags = 1;
  r.usedIdx = 0x10002;  /* u16 */
  r.setUsedElem(8 + 2, 5, 4097);
  r.availEvent = 0xcafe;
  t.equal(r.usedIdx, 2);
  t.equal(dv.getUint16(r.used, true), 1);
  t.equal(dv.getUint32(r.used + 4 + 8 * 2, true), 5, 'used elem id');
  t.equal(dv.getUint32(r.used + 4 + 8 * 2 + 4, true), 4097, 'used elem len');
  t.same(r.usedElem(2), { id: 5, len: 4097 });
  t.equal(dv.getUint16(r.used + 4 + 8 * num, true), 0xcafe, 'avail_event after ring[num]');
  t.equal(r.availEvent, 0xcafe);

  /* a non-shared buffer falls back to DataView */
  const plain = new vring(new Uint8Array(8192), num, 0, l.availOffset, l.usedOffset);
  t.equal(plain.u16, null);
  plain.availIdx = 0x20001;
  t.equal(plain.availIdx, 1);
});
