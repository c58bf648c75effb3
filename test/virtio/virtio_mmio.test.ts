/* The generic virtio-mmio register file (4.2.2) and status machine, through virtio-blk. */
import t from 'tap';
import {
  VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_MQ, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN,
} from '../../lib/kernel/include/uapi/linux/virtio_blk.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../lib/kernel/include/uapi/linux/virtio_config.js';
import {
  VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_DEVICE_FEATURES, VIRTIO_MMIO_DEVICE_FEATURES_SEL,
  VIRTIO_MMIO_DEVICE_ID, VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_DRIVER_FEATURES_SEL,
  VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_MAGIC_VALUE,
  VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
  VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_QUEUE_NUM,
  VIRTIO_MMIO_QUEUE_NUM_MAX, VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_STATUS,
  VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_VERSION, VIRTIO_VENDOR_LKL,
} from '../../lib/kernel/include/uapi/linux/virtio_mmio.js';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, vring_size } from '../../lib/kernel/include/uapi/linux/virtio_ring.js';
import { MemoryStore } from '../../lib/drivers/stores.js';
import { VirtioBlkHost } from '../../lib/drivers/virtio-blk.js';
import type { vring_used_elem } from '../../lib/kernel/host-ops.js';
import { TestBlkDriver } from './blk-driver.js';

const ACK = VIRTIO_CONFIG_S_ACKNOWLEDGE, DRV = VIRTIO_CONFIG_S_DRIVER;
const FOK = VIRTIO_CONFIG_S_FEATURES_OK, DOK = VIRTIO_CONFIG_S_DRIVER_OK;
const tick = () => new Promise((r) => setImmediate(r));

function bare() {
  const dev = new VirtioBlkHost(new MemoryStore(1 << 20), { name: 'vdt' });
  const mem = new Uint8Array(new SharedArrayBuffer(1 << 20));
  const irqs: vring_used_elem[][] = [];
  dev.attach(mem, (d) => irqs.push(d as vring_used_elem[]));
  return { dev, mem, irqs };
}

t.test('identification registers', async (t) => {
  const { dev } = bare();
  t.equal(dev.read(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
  t.equal(dev.read(VIRTIO_MMIO_VERSION), 2);
  t.equal(dev.read(VIRTIO_MMIO_DEVICE_ID), 2);
  t.equal(dev.read(VIRTIO_MMIO_VENDOR_ID), VIRTIO_VENDOR_LKL);
  t.equal(dev.read(VIRTIO_MMIO_STATUS), 0);
  t.equal(dev.read(VIRTIO_MMIO_CONFIG_GENERATION), 0);
  t.equal(dev.read(0x0f0), 0, 'unknown register reads 0');
  t.equal(dev.name, 'vdt');
});

t.test('feature windows and FEATURES_OK', async (t) => {
  const { dev } = bare();
  dev.write(VIRTIO_MMIO_STATUS, ACK | DRV);
  dev.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  const lo = dev.read(VIRTIO_MMIO_DEVICE_FEATURES);
  dev.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  const hi = dev.read(VIRTIO_MMIO_DEVICE_FEATURES);
  dev.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
  t.equal(dev.read(VIRTIO_MMIO_DEVICE_FEATURES), 0, 'window 2 is empty');
  t.equal(hi & 1, 1, 'VERSION_1 in window 1');
  t.ok(lo & (1 << VIRTIO_BLK_F_FLUSH));

  const offerAndCheck = (wlo: number, whi: number) => {
    dev.write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    dev.write(VIRTIO_MMIO_DRIVER_FEATURES, wlo);
    dev.write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    dev.write(VIRTIO_MMIO_DRIVER_FEATURES, whi);
    dev.write(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
    return dev.read(VIRTIO_MMIO_STATUS) & FOK;
  };
  t.equal(offerAndCheck(lo | (1 << VIRTIO_BLK_F_MQ), hi), 0, 'a feature not offered: refused');
  t.equal(offerAndCheck(lo, 0), 0, 'no VERSION_1: refused');
  t.equal(dev.negotiatedFeatures, 0n);
  t.equal(offerAndCheck(1 << VIRTIO_BLK_F_FLUSH, 1), FOK, 'a subset with VERSION_1: accepted');
  t.ok(dev.negotiated(VIRTIO_BLK_F_FLUSH));
  t.notOk(dev.negotiated(VIRTIO_BLK_F_DISCARD));
  dev.write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  dev.write(VIRTIO_MMIO_DRIVER_FEATURES, lo);
  t.notOk(dev.negotiated(VIRTIO_BLK_F_DISCARD), 'DriverFeatures after FEATURES_OK ignored');
});

t.test('queue configuration is validated at QueueReady', async (t) => {
  const { dev, mem } = bare();
  dev.write(VIRTIO_MMIO_STATUS, ACK | DRV);
  dev.write(VIRTIO_MMIO_QUEUE_SEL, 1);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_NUM_MAX), 0, 'queue 1 does not exist');
  dev.write(VIRTIO_MMIO_QUEUE_READY, 1);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_READY), 0);
  dev.write(VIRTIO_MMIO_QUEUE_SEL, 0);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_NUM_MAX), 256);

  const setq = (num: number, desc: number, avail: number, used: number, descHigh = 0) => {
    dev.write(VIRTIO_MMIO_QUEUE_NUM, num);
    dev.write(VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
    dev.write(VIRTIO_MMIO_QUEUE_DESC_HIGH, descHigh);
    dev.write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, avail);
    dev.write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, used);
    dev.write(VIRTIO_MMIO_QUEUE_READY, 1);
    return dev.read(VIRTIO_MMIO_QUEUE_READY);
  };
  const l = vring_size(128);
  const before = dev.stats.chainErrors;
  t.equal(setq(100, 0x1000, 0x1000 + l.availOffset, 0x1000 + l.usedOffset), 0, 'size not a power of 2');
  t.equal(setq(512, 0x1000, 0x1000 + l.availOffset, 0x1000 + l.usedOffset), 0, 'size above max');
  t.equal(setq(128, 0x1008, 0x1000 + l.availOffset, 0x1000 + l.usedOffset), 0, 'desc not 16-aligned');
  t.equal(setq(128, 0x1000, 0x1001 + l.availOffset, 0x1000 + l.usedOffset), 0, 'avail not 2-aligned');
  t.equal(setq(128, 0x1000, 0x1000 + l.availOffset, 0x1002 + l.usedOffset), 0, 'used not 4-aligned');
  t.equal(setq(128, 0x1000, 0x1000 + l.availOffset, mem.length - 8), 0, 'used beyond memory');
  t.equal(setq(128, 0x1000, 0x1000 + l.availOffset, 0x1000 + l.usedOffset, 1), 0, 'desc above 4 GiB');
  t.equal(dev.stats.chainErrors, before + 7, 'each refusal reported');
  t.equal(setq(128, 0x1000, 0x1000 + l.availOffset, 0x1000 + l.usedOffset), 1, 'good queue');
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_NUM), 128);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_DESC_LOW), 0x1000);
  dev.write(VIRTIO_MMIO_QUEUE_NUM, 64);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_NUM), 128, 'queue registers are frozen while ready');
  dev.write(VIRTIO_MMIO_QUEUE_READY, 0);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_READY), 0);
  dev.write(VIRTIO_MMIO_QUEUE_NUM, 64);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_NUM), 64);

  dev.write(VIRTIO_MMIO_STATUS, 0);
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_NUM), 256, 'reset: QueueNum back to max');
  t.equal(dev.read(VIRTIO_MMIO_QUEUE_DESC_LOW), 0, 'reset: addresses cleared');

  const unattached = new VirtioBlkHost(new MemoryStore(4096));
  unattached.write(VIRTIO_MMIO_QUEUE_READY, 1);
  t.equal(unattached.read(VIRTIO_MMIO_QUEUE_READY), 0, 'no memory attached');
});

t.test('interrupt status, ACK, batching, NO_INTERRUPT', async (t) => {
  const dev = new VirtioBlkHost(new MemoryStore(1 << 20));
  const drv = new TestBlkDriver(dev, { memBytes: 8 << 20 });
  drv.init();
  const irqs: unknown[] = [];
  const orig = (drv as unknown as { irq: (d: vring_used_elem[]) => void }).irq.bind(drv);
  dev.attach(drv.mem, (d) => { irqs.push(d); orig(d as vring_used_elem[]); });
  const buf = drv.alloc(4096);
  const ps = [0, 1, 2, 3].map((i) => drv.request(VIRTIO_BLK_T_IN, i, [{ addr: buf + 512 * i, len: 512 }]));
  t.equal(irqs.length, 0, 'never raised synchronously inside a register access');
  await Promise.all(ps);
  t.equal(irqs.length, 1, 'completions of one tick share an IRQ');
  t.equal((irqs[0] as vring_used_elem[]).length, 4);
  t.equal(dev.read(VIRTIO_MMIO_INTERRUPT_STATUS), 0, 'the driver ACKed');

  /* with NO_INTERRUPT the driver polls; the ring still gets the entry */
  drv.ring.availFlags = VIRTQ_AVAIL_F_NO_INTERRUPT;
  const usedBefore = drv.ring.usedIdx;
  void drv.request(VIRTIO_BLK_T_IN, 0, [{ addr: buf, len: 512 }]);
  await dev.quiesce();
  await tick();
  t.equal(irqs.length, 1, 'no IRQ');
  t.equal(drv.ring.usedIdx, (usedBefore + 1) & 0xffff, 'used idx moved');
  t.equal(dev.read(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING, 0);
  drv.ring.availFlags = 0;

  /* configuration change */
  dev.configChanged();
  await tick();
  t.equal(irqs.length, 2);
  t.same(irqs[1], [], 'config interrupt carries no entries');
  t.equal(dev.read(VIRTIO_MMIO_CONFIG_GENERATION), 1);
  t.equal(drv.configIrqs, 1);
  await dev.close();
});

t.test('notify before DRIVER_OK waits for DRIVER_OK; a corrupt avail idx needs reset', async (t) => {
  const dev = new VirtioBlkHost(new MemoryStore(1 << 20));
  const drv = new TestBlkDriver(dev, { memBytes: 8 << 20 });
  drv.init();
  const buf = drv.alloc(512);
  dev.write(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);  /* drop DRIVER_OK: a misbehaving driver */
  const early = drv.request(VIRTIO_BLK_T_IN, 0, [{ addr: buf, len: 512 }]);
  await tick();
  t.equal(dev.stats.popped, 0, 'not served before DRIVER_OK');
  dev.write(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
  t.equal((await early).status, VIRTIO_BLK_S_OK, 'served at DRIVER_OK');

  drv.ring.availIdx = (drv.ring.availIdx + drv.num + 1) & 0xffff;
  dev.write(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  t.ok(dev.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET');
  await tick();
  t.equal(drv.configIrqs, 1, 'configuration interrupt told the driver');
  dev.write(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK | VIRTIO_CONFIG_S_FAILED);
  t.ok(dev.read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 'sticky until reset');

  const again = new TestBlkDriver(dev, { memBytes: 8 << 20 });
  t.equal(again.init() & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 0, 'reset clears it');
  const b2 = again.alloc(512);
  t.equal((await again.request(VIRTIO_BLK_T_IN, 0, [{ addr: b2, len: 512 }])).status, VIRTIO_BLK_S_OK);
  await dev.close();
  const d = again.request(VIRTIO_BLK_T_IN, 0, [{ addr: b2, len: 512 }]);
  await tick();
  t.equal(dev.inflightCount, 0, 'a closed device ignores notifies');
  again.forget((await Promise.race([d, Promise.resolve(null)]))?.id ?? -1);
});
