/*
 * A minimal virtio-blk driver for tests: does what the kernel's driver does (reset, ACK,
 * DRIVER, feature negotiation, one split queue in a SharedArrayBuffer, DRIVER_OK), posts
 * request chains and completes them from the IRQ's data, checking that the used ring in
 * memory says the same thing. Also posts raw chains, for malformed-chain tests.
 */
import type { VirtioMmioDevice, vring_used_elem } from '../../lib/kernel/host-ops.js';
import {
  VIRTIO_BLK_CFG_CAPACITY, VIRTIO_BLK_REQ_RESERVED, VIRTIO_BLK_REQ_SECTOR, VIRTIO_BLK_REQ_TYPE,
  VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
} from '../../lib/kernel/include/uapi/linux/virtio_blk.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK, featureWindow,
} from '../../lib/kernel/include/uapi/linux/virtio_config.js';
import {
  VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_DEVICE_FEATURES,
  VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_DRIVER_FEATURES_SEL,
  VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_QUEUE_DESC_HIGH,
  VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
  VIRTIO_MMIO_QUEUE_DRIVER_HIGH, VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_MMIO_QUEUE_NOTIFY,
  VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_NUM_MAX, VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_SEL,
  VIRTIO_MMIO_STATUS, VIRTIO_MMIO_VERSION,
} from '../../lib/kernel/include/uapi/linux/virtio_mmio.js';
import {
  VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE, vring, setU64,
  vring_size, writeDesc,
} from '../../lib/kernel/include/uapi/linux/virtio_ring.js';

export interface Buf { addr: number; len: number }
export interface RawSeg extends Buf { write?: boolean }
export interface Completion { status: number; len: number; id: number }

export interface DriverOptions {
  memBytes?: number;
  num?: number;
  /** Which offered features to accept (default: all offered). */
  accept?: (offered: bigint) => bigint;
}

interface Pending {
  resolve: (c: Completion) => void;
  descs: number[];
  seq: number;
  statusAddr: number;
}

export class TestBlkDriver {
  readonly mem: Uint8Array;
  readonly view: DataView;
  ring!: vring;
  num: number;
  offered = 0n;
  negotiated = 0n;
  private brk: number;
  private freeDescs: number[] = [];
  private pending = new Map<number, Pending>();
  private hdrArea = 0;
  private indirectArea = 0;
  private lastUsed = 0;
  private seq = 0;
  /** Submission sequence numbers in completion order. */
  readonly completionOrder: number[] = [];
  ringMismatches = 0;
  irqs = 0;
  configIrqs = 0;
  /** Entries for heads nobody waits for (malformed chains completed by the device). */
  readonly orphans: vring_used_elem[] = [];

  constructor(readonly dev: VirtioMmioDevice, opts: DriverOptions = {}) {
    this.mem = new Uint8Array(new SharedArrayBuffer(opts.memBytes ?? 64 << 20));
    this.view = new DataView(this.mem.buffer);
    this.num = opts.num ?? 256;
    this.brk = 0x1000;
    dev.attach(this.mem, (data) => this.irq(data as vring_used_elem[]));
  }

  /** A fresh buffer in "physical memory" (never freed). */
  alloc(len: number, align = 16): number {
    const addr = Math.ceil(this.brk / align) * align;
    this.brk = addr + len;
    if (this.brk > this.mem.length) throw new Error('test memory exhausted');
    return addr;
  }

  get outstanding(): number { return this.pending.size; }
  get freeCount(): number { return this.freeDescs.length; }

  /** 3.1.1 Driver Requirements: Device Initialization. Returns the status read back. */
  init(opts: DriverOptions = {}): number {
    const d = this.dev;
    if (d.read(VIRTIO_MMIO_MAGIC_VALUE) !== VIRTIO_MMIO_MAGIC) throw new Error('bad magic');
    if (d.read(VIRTIO_MMIO_VERSION) !== 2) throw new Error('bad version');
    d.write(VIRTIO_MMIO_STATUS, 0);
    d.write(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    d.write(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    this.offered = 0n;
    for (const sel of [0, 1]) {
      d.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
      this.offered |= BigInt(d.read(VIRTIO_MMIO_DEVICE_FEATURES)) << BigInt(32 * sel);
    }
    this.negotiated = opts.accept ? opts.accept(this.offered) : this.offered;
    for (const sel of [0, 1]) {
      d.write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
      d.write(VIRTIO_MMIO_DRIVER_FEATURES, featureWindow(this.negotiated, sel));
    }
    const base = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
    d.write(VIRTIO_MMIO_STATUS, base | VIRTIO_CONFIG_S_FEATURES_OK);
    const st = d.read(VIRTIO_MMIO_STATUS);
    if (!(st & VIRTIO_CONFIG_S_FEATURES_OK)) return st;

    d.write(VIRTIO_MMIO_QUEUE_SEL, 0);
    if (d.read(VIRTIO_MMIO_QUEUE_READY)) throw new Error('queue already ready');
    const max = d.read(VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max < this.num) this.num = max;
    const layout = vring_size(this.num);
    const base16 = this.alloc(layout.totalSize, 4096);
    this.ring = new vring(this.mem, this.num, base16 + layout.descOffset, base16 + layout.availOffset, base16 + layout.usedOffset);
    d.write(VIRTIO_MMIO_QUEUE_NUM, this.num);
    d.write(VIRTIO_MMIO_QUEUE_DESC_LOW, this.ring.desc);
    d.write(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    d.write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, this.ring.avail);
    d.write(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
    d.write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, this.ring.used);
    d.write(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
    d.write(VIRTIO_MMIO_QUEUE_READY, 1);
    if (d.read(VIRTIO_MMIO_QUEUE_READY) !== 1) throw new Error('queue refused');
    this.freeDescs = Array.from({ length: this.num }, (_, i) => this.num - 1 - i);
    this.hdrArea = this.alloc(this.num * 32);
    this.indirectArea = this.alloc(this.num * this.num * VIRTQ_DESC_SIZE);
    this.lastUsed = 0;
    d.write(VIRTIO_MMIO_STATUS, base | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    return d.read(VIRTIO_MMIO_STATUS);
  }

  configU32(off: number): number { return this.dev.read(VIRTIO_MMIO_CONFIG + off, 4); }
  get capacity(): number {
    for (;;) {
      const gen = this.dev.read(VIRTIO_MMIO_CONFIG_GENERATION);
      const lo = this.configU32(VIRTIO_BLK_CFG_CAPACITY), hi = this.configU32(VIRTIO_BLK_CFG_CAPACITY + 4);
      if (gen === this.dev.read(VIRTIO_MMIO_CONFIG_GENERATION)) return hi * 2 ** 32 + lo;
    }
  }

  /**
   * Posts a block request: header, data buffers (device-writable for IN and GET_ID,
   * device-readable otherwise), status byte. Resolves with status and used len.
   */
  request(type: number, sector: number, data: Buf[], opts: { indirect?: boolean } = {}): Promise<Completion> {
    const writeData = type === VIRTIO_BLK_T_IN || type === VIRTIO_BLK_T_GET_ID;
    const head = this.peekHead();
    const hdr = this.hdrArea + head * 32;
    this.view.setUint32(hdr + VIRTIO_BLK_REQ_TYPE, type, true);
    this.view.setUint32(hdr + VIRTIO_BLK_REQ_RESERVED, 0, true);
    setU64(this.view, hdr + VIRTIO_BLK_REQ_SECTOR, sector);
    const status = hdr + 16;
    this.mem[status] = 0xff;
    const segs: RawSeg[] = [{ addr: hdr, len: 16 }, ...data.map((b) => ({ ...b, write: writeData })),
      { addr: status, len: 1, write: true }];
    return this.submit(segs, { ...opts, statusAddr: status });
  }

  /** Posts a chain of buffers as given; resolves when the device returns it. */
  submit(segs: RawSeg[], opts: { indirect?: boolean; statusAddr?: number } = {}): Promise<Completion> {
    let descs: number[];
    if (opts.indirect) {
      descs = this.takeDescs(1);
      const table = this.indirectArea + descs[0] * this.num * VIRTQ_DESC_SIZE;
      if (segs.length > this.num) throw new Error('indirect table too long');
      segs.forEach((s, i) => writeDesc(this.view, table + i * VIRTQ_DESC_SIZE, {
        addr: s.addr, len: s.len,
        flags: (s.write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < segs.length ? VIRTQ_DESC_F_NEXT : 0),
        next: i + 1,
      }));
      this.ring.writeDesc(descs[0], { addr: table, len: segs.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    } else {
      descs = this.takeDescs(segs.length);
      segs.forEach((s, i) => this.ring.writeDesc(descs[i], {
        addr: s.addr, len: s.len,
        flags: (s.write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < segs.length ? VIRTQ_DESC_F_NEXT : 0),
        next: i + 1 < segs.length ? descs[i + 1] : 0,
      }));
    }
    return this.post(descs, opts.statusAddr ?? -1);
  }

  /** Posts descriptors already written into the table (for hand-made malformed chains). */
  post(descs: number[], statusAddr = -1): Promise<Completion> {
    const head = descs[0];
    const p = new Promise<Completion>((resolve) => {
      this.pending.set(head, { resolve, descs, seq: this.seq++, statusAddr });
    });
    this.publish(head);
    return p;
  }

  /** Puts a head on the avail ring without waiting for it (for heads the device must skip). */
  publish(head: number): void {
    const idx = this.ring.availIdx;
    this.ring.setAvailRing(idx, head);
    this.ring.availIdx = (idx + 1) & 0xffff;
    this.dev.write(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  }

  takeDescs(n: number): number[] {
    if (this.freeDescs.length < n) throw new Error(`out of descriptors (${n} wanted, ${this.freeDescs.length} free)`);
    return this.freeDescs.splice(this.freeDescs.length - n, n).reverse();
  }

  private peekHead(): number {
    const h = this.freeDescs[this.freeDescs.length - 1];
    if (h === undefined) throw new Error('out of descriptors');
    return h;
  }

  private irq(data: vring_used_elem[]): void {
    this.irqs++;
    const isr = this.dev.read(VIRTIO_MMIO_INTERRUPT_STATUS);
    this.dev.write(VIRTIO_MMIO_INTERRUPT_ACK, isr);
    if (isr & VIRTIO_MMIO_INT_CONFIG) this.configIrqs++;
    for (const e of data) {
      const inRing = this.ring.usedElem(this.lastUsed);
      if (inRing.id !== e.id || inRing.len !== e.len) this.ringMismatches++;
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      const p = this.pending.get(e.id);
      if (!p) {
        this.orphans.push(e);
        continue;
      }
      this.pending.delete(e.id);
      this.freeDescs.push(...p.descs);
      this.completionOrder.push(p.seq);
      p.resolve({ status: p.statusAddr >= 0 ? this.mem[p.statusAddr] : -1, len: e.len, id: e.id });
    }
    if (this.ring.usedIdx !== this.lastUsed) this.ringMismatches++;
  }

  /** Forgets a posted head (the test knows the device will skip it). */
  forget(head: number): void {
    const p = this.pending.get(head);
    if (p) {
      this.pending.delete(head);
      this.freeDescs.push(...p.descs);
    }
  }
}
