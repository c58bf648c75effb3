/*
 * The host half of a virtio-mmio device, generic part (tools/lkl/lib/virtio.c's role):
 * the register file, feature windows and negotiation, the status machine with reset,
 * queue configuration, InterruptStatus/ACK, config generation; and HostVirtqueue, which
 * pops descriptor chains off the avail ring and pushes used entries.
 *
 * A device type (virtio-blk.ts) extends VirtioMmioHost with its ID, features, config
 * space and what to do with a chain. Everything here touches only physical memory (the
 * Uint8Array given to attach), register calls and the raiseIrq callback, so the device
 * can move into a worker thread.
 *
 * Platform-free: the Node host (virtio-blk.ts) and the browser page (lib/web) share this
 * file. What differs between them, the debug channel and how to run something "soon", comes
 * in as a DevicePlatform; nothing here imports node:* or an npm package.
 *
 * The driver is not trusted: a chain with a loop, an out-of-range index or address, or a
 * bad length is reported (debug, stats.chainErrors, onChainError) and completed with used
 * len 0 (or skipped when its head index itself is unusable); the device keeps serving.
 * A driver that corrupts the ring itself (avail idx jumping past the queue size) breaks
 * that queue: DEVICE_NEEDS_RESET is set and a configuration interrupt raised (2.1.2).
 */
import type { VirtioMmioDevice, vring_used_elem } from '../kernel/host-ops.js';
import {
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureWindow,
  hasFeature,
} from '../kernel/include/uapi/linux/virtio_config.js';
import {
  VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_DEVICE_FEATURES,
  VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DEVICE_ID, VIRTIO_MMIO_DRIVER_FEATURES,
  VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_MAGIC_VALUE,
  VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DEVICE_HIGH,
  VIRTIO_MMIO_QUEUE_DEVICE_LOW, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, VIRTIO_MMIO_QUEUE_DRIVER_LOW,
  VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_NUM_MAX,
  VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_STATUS, VIRTIO_MMIO_VENDOR_ID,
  VIRTIO_MMIO_VERSION, VIRTIO_MMIO_VERSION_MODERN, VIRTIO_VENDOR_LKL,
} from '../kernel/include/uapi/linux/virtio_mmio.js';
import {
  VIRTQ_AVAIL_ALIGN, VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_ALIGN, VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE, VIRTQ_USED_ALIGN, vring, availRingSize,
  descTableSize, isValidQueueSize, readDesc, usedRingSize,
} from '../kernel/include/uapi/linux/virtio_ring.js';

/** A printf-style debug logger (%s, %d, as the debug package's), or a no-op. */
export type DeviceLog = (fmt: string, ...args: unknown[]) => void;

/** What a device's host half takes from the platform it runs on. */
export interface DevicePlatform {
  /** The debug logger of a namespace ("lkl:virtio:blk"). */
  logger(namespace: string): DeviceLog;
  /**
   * Runs fn once, soon, as a task of its own after the current one (Node: setImmediate).
   * Completions that arrive before it runs go out in one IRQ.
   */
  defer(fn: () => void): void;
}

/** One buffer of a chain, in physical memory. */
export interface VirtqSeg {
  addr: number;
  len: number;
}

/** A well-formed descriptor chain popped off the avail ring. */
export interface VirtqChain {
  queue: number;
  head: number;
  /** Device-readable buffers, in chain order, then the device-writable ones. */
  readable: VirtqSeg[];
  writable: VirtqSeg[];
  readableLen: number;
  writableLen: number;
  /** The queue's reset epoch when popped: completions from before a reset are dropped. */
  epoch: number;
}

export interface VirtioChainError {
  device: string;
  queue: number;
  /** Head descriptor index (possibly the out-of-range value the ring held). */
  head: number;
  reason: string;
}

export interface VirtioHostOptions {
  name: string;
  /** Virtqueues the device has (virtio-blk without MQ: 1). */
  numQueues?: number;
  /** QueueNumMax of every queue (power of 2, <= 32768). */
  queueNumMax?: number;
  platform: DevicePlatform;
  /** Debug logger of the device type (default: the platform's lkl:virtio:mmio). */
  log?: DeviceLog;
  /** Told about every malformed chain or ring, after the debug message. */
  onChainError?: (e: VirtioChainError) => void;
}

export interface VirtioHostStats {
  /** Malformed chains and rings reported. */
  chainErrors: number;
  /** Chains popped and well formed. */
  popped: number;
  /** Used entries written (including error completions of malformed chains). */
  completed: number;
  /** IRQs raised. */
  irqs: number;
}

/** One split virtqueue, seen from the device. */
export class HostVirtqueue {
  num: number;
  ready = false;
  descLow = 0; descHigh = 0;
  driverLow = 0; driverHigh = 0;
  deviceLow = 0; deviceHigh = 0;
  /** Next avail ring position to consume; our shadow of used idx. */
  lastAvail = 0;
  usedIdx = 0;
  epoch = 0;
  /** Set when the driver corrupted the ring; cleared by reset. */
  broken = false;
  ring: vring | null = null;
  /** Heads popped and not yet completed, to catch a driver reusing one. */
  private inflight: Uint8Array;

  constructor(readonly index: number, readonly numMax: number, private readonly host: VirtioMmioHost) {
    this.num = numMax;
    this.inflight = new Uint8Array(numMax);
  }

  get descAddr(): number { return this.descHigh * 0x100000000 + this.descLow; }
  get driverAddr(): number { return this.driverHigh * 0x100000000 + this.driverLow; }
  get deviceAddr(): number { return this.deviceHigh * 0x100000000 + this.deviceLow; }

  reset(): void {
    this.epoch++;
    this.ready = false;
    this.ring = null;
    this.num = this.numMax;
    this.descLow = this.descHigh = this.driverLow = this.driverHigh = this.deviceLow = this.deviceHigh = 0;
    this.lastAvail = this.usedIdx = 0;
    this.broken = false;
    this.inflight.fill(0);
  }

  /** QueueReady = 1: check the configuration; returns why it is refused, or null. */
  enable(mem: Uint8Array | null): string | null {
    if (!mem) return 'no memory attached';
    if (!isValidQueueSize(this.num) || this.num > this.numMax) return `bad queue size ${this.num} (max ${this.numMax})`;
    const parts: [string, number, number, number][] = [
      ['descriptor table', this.descAddr, descTableSize(this.num), VIRTQ_DESC_ALIGN],
      ['avail ring', this.driverAddr, availRingSize(this.num), VIRTQ_AVAIL_ALIGN],
      ['used ring', this.deviceAddr, usedRingSize(this.num), VIRTQ_USED_ALIGN],
    ];
    for (const [what, addr, size, align] of parts) {
      if (addr % align !== 0) return `${what} at ${addr} is not ${align}-aligned`;
      if (addr + size > mem.byteLength) return `${what} at ${addr}+${size} is beyond memory (${mem.byteLength})`;
    }
    this.ring = new vring(mem, this.num, this.descAddr, this.driverAddr, this.deviceAddr);
    if (this.inflight.length !== this.num) this.inflight = new Uint8Array(this.num);
    /* 2.7.13 the device starts from the indices the driver left (normally 0 after reset) */
    this.lastAvail = this.ring.availIdx;
    this.usedIdx = this.ring.usedIdx;
    this.ready = true;
    return null;
  }

  /**
   * Takes the next well-formed chain off the avail ring, or null when the ring is empty
   * (or the queue unusable). Malformed chains met on the way are reported and completed
   * with len 0, or skipped when their head cannot be completed.
   */
  pop(): VirtqChain | null {
    const ring = this.ring;
    if (!ring || !this.ready || this.broken) return null;
    for (;;) {
      const availIdx = ring.availIdx;
      const waiting = (availIdx - this.lastAvail) & 0xffff;
      if (waiting === 0) return null;
      if (waiting > this.num) {
        this.host.queueBroken(this, `avail idx moved from ${this.lastAvail} to ${availIdx}, beyond queue size ${this.num}`);
        return null;
      }
      const head = ring.availRing(this.lastAvail);
      this.lastAvail = (this.lastAvail + 1) & 0xffff;
      if (head >= this.num) {
        this.host.reportChainError(this.index, head, `head index ${head} out of range (queue size ${this.num})`);
        continue;
      }
      if (this.inflight[head]) {
        this.host.reportChainError(this.index, head, `head ${head} made available again while in flight`);
        continue;
      }
      const chain = this.walk(ring, head);
      this.inflight[head] = 1;
      if (typeof chain === 'string') {
        this.host.reportChainError(this.index, head, chain);
        this.push(this.emptyChain(head), 0);
        continue;
      }
      this.host.stats.popped++;
      return chain;
    }
  }

  /** A chain stripped of its buffers: what an error completion needs. */
  emptyChain(head: number): VirtqChain {
    return { queue: this.index, head, readable: [], writable: [], readableLen: 0, writableLen: 0, epoch: this.epoch };
  }

  /**
   * Returns a chain to the driver: used ring entry, used idx, and an IRQ soon (batched
   * with the rest of this tick). False if the queue was reset since the chain was popped.
   */
  push(chain: VirtqChain, len: number): boolean {
    const ring = this.ring;
    if (chain.epoch !== this.epoch || !ring) return false;
    this.inflight[chain.head] = 0;
    ring.setUsedElem(this.usedIdx, chain.head, len);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    ring.usedIdx = this.usedIdx;  /* after the entry: the publication point */
    this.host.usedAdded({ id: chain.head, len, queue: this.index });
    return true;
  }

  private walk(ring: vring, head: number): VirtqChain | string {
    const limit = ring.mem.byteLength;
    const inMemory = (addr: number, len: number) => Number.isSafeInteger(addr) && addr + len <= limit;
    const chain = this.emptyChain(head);
    let table = ring.desc, tableSize = this.num, i = head, hops = 0, indirect = false;
    for (;;) {
      if (i >= tableSize) return `descriptor index ${i} out of range (${tableSize})`;
      /* a chain visits each descriptor of its table at most once */
      if (++hops > tableSize) return `descriptor loop (more than ${tableSize} descriptors)`;
      const d = readDesc(ring.view, table + VIRTQ_DESC_SIZE * i);
      if (d.flags & VIRTQ_DESC_F_INDIRECT) {
        /* 2.7.5.3.1 */
        if (indirect) return 'indirect descriptor inside an indirect table';
        if (!this.host.negotiated(VIRTIO_F_INDIRECT_DESC)) return 'indirect descriptor without VIRTIO_F_INDIRECT_DESC';
        if (d.flags & VIRTQ_DESC_F_NEXT) return 'indirect descriptor with NEXT set';
        if (d.len === 0 || d.len % VIRTQ_DESC_SIZE !== 0) return `indirect table length ${d.len} is not a multiple of ${VIRTQ_DESC_SIZE}`;
        if (!inMemory(d.addr, d.len)) return `indirect table at ${d.addr}+${d.len} is beyond memory`;
        table = d.addr; tableSize = d.len / VIRTQ_DESC_SIZE; i = 0; hops = 0; indirect = true;
        continue;
      }
      if (d.len === 0) return `zero-length descriptor ${i}`;
      if (!inMemory(d.addr, d.len)) return `buffer at ${d.addr}+${d.len} is beyond memory (${limit})`;
      if (d.flags & VIRTQ_DESC_F_WRITE) {
        chain.writable.push({ addr: d.addr, len: d.len });
        chain.writableLen += d.len;
      } else {
        /* 2.7.4.2 device-writable descriptors come after all device-readable ones */
        if (chain.writable.length) return `device-readable descriptor ${i} after a device-writable one`;
        chain.readable.push({ addr: d.addr, len: d.len });
        chain.readableLen += d.len;
      }
      if (!(d.flags & VIRTQ_DESC_F_NEXT)) return chain;
      i = d.next;
    }
  }
}

/** A virtio-mmio device; subclasses supply the device type. */
export abstract class VirtioMmioHost implements VirtioMmioDevice {
  /** 5 Device Types. */
  abstract readonly deviceId: number;
  readonly name: string;
  readonly stats: VirtioHostStats = { chainErrors: 0, popped: 0, completed: 0, irqs: 0 };
  readonly queues: HostVirtqueue[];
  protected readonly log: DeviceLog;
  private readonly defer: (fn: () => void) => void;
  protected mem: Uint8Array | null = null;
  private raiseIrq: ((data: unknown) => void) | null = null;
  private readonly onChainError?: (e: VirtioChainError) => void;

  /* the register file */
  status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  /** The features accepted at FEATURES_OK; 0n before. */
  negotiatedFeatures = 0n;
  private queueSel = 0;
  interruptStatus = 0;
  configGeneration = 0;

  private pendingUsed: vring_used_elem[] = [];
  private configIrqPending = false;
  private irqScheduled = false;
  private readonly inflight = new Set<Promise<unknown>>();
  protected closed = false;

  constructor(opts: VirtioHostOptions) {
    this.name = opts.name;
    this.log = opts.log ?? opts.platform.logger('lkl:virtio:mmio');
    this.defer = opts.platform.defer;
    this.onChainError = opts.onChainError;
    const numMax = opts.queueNumMax ?? 256;
    if (!isValidQueueSize(numMax)) throw new RangeError(`queueNumMax ${numMax} is not a power of 2 in 1..32768`);
    this.queues = Array.from({ length: opts.numQueues ?? 1 }, (_, i) => new HostVirtqueue(i, numMax, this));
  }

  /* ---- what a device type provides ---- */

  /** Every feature the device offers (the driver picks a subset). */
  protected abstract get deviceFeatures(): bigint;
  /** The device-specific configuration space, read at VIRTIO_MMIO_CONFIG + offset. */
  protected abstract get config(): Uint8Array;
  /** The driver notified queue q: pop and start its chains. */
  protected abstract queueNotify(q: HostVirtqueue): void;
  /** Checks the driver's feature choice beyond "a subset, with VERSION_1"; null = fine. */
  protected validateFeatures(_f: bigint): string | null { return null; }
  /** A config write (most config fields are read-only). */
  protected configWrite(offset: number, value: number, _size: number): void {
    this.log('%s: ignored config write %d at %d', this.name, value, offset);
  }
  /** Device reset: forget device-type state (in-flight I/O will be dropped on completion). */
  protected onReset(): void {}
  /** Teardown of the device type's resources, after in-flight I/O. */
  protected async closeBackend(): Promise<void> {}

  /* ---- VirtioMmioDevice ---- */

  attach(mem: Uint8Array, raiseIrq: (data: unknown) => void): void {
    this.mem = mem;
    this.raiseIrq = raiseIrq;
  }

  read(offset: number, size: 1 | 2 | 4 = 4): number {
    if (offset >= VIRTIO_MMIO_CONFIG) return this.readConfig(offset - VIRTIO_MMIO_CONFIG, size);
    if (size !== 4) this.log('%s: %d-byte read of register %s', this.name, size, hex(offset));
    const q = this.queues[this.queueSel];
    switch (offset) {
      case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
      case VIRTIO_MMIO_VERSION: return VIRTIO_MMIO_VERSION_MODERN;
      case VIRTIO_MMIO_DEVICE_ID: return this.deviceId;
      case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_VENDOR_LKL;
      case VIRTIO_MMIO_DEVICE_FEATURES: return featureWindow(this.deviceFeatures, this.deviceFeaturesSel);
      case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? q.numMax : 0;
      case VIRTIO_MMIO_QUEUE_NUM: return q ? q.num : 0;
      case VIRTIO_MMIO_QUEUE_READY: return q?.ready ? 1 : 0;
      case VIRTIO_MMIO_QUEUE_DESC_LOW: return q ? q.descLow : 0;
      case VIRTIO_MMIO_QUEUE_DESC_HIGH: return q ? q.descHigh : 0;
      case VIRTIO_MMIO_QUEUE_DRIVER_LOW: return q ? q.driverLow : 0;
      case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: return q ? q.driverHigh : 0;
      case VIRTIO_MMIO_QUEUE_DEVICE_LOW: return q ? q.deviceLow : 0;
      case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return q ? q.deviceHigh : 0;
      case VIRTIO_MMIO_INTERRUPT_STATUS: return this.interruptStatus;
      case VIRTIO_MMIO_STATUS: return this.status;
      case VIRTIO_MMIO_CONFIG_GENERATION: return this.configGeneration;
      default:
        this.log('%s: read of unknown register %s', this.name, hex(offset));
        return 0;
    }
  }

  write(offset: number, value: number, size: 1 | 2 | 4 = 4): void {
    if (offset >= VIRTIO_MMIO_CONFIG) {
      this.configWrite(offset - VIRTIO_MMIO_CONFIG, value, size);
      return;
    }
    value >>>= 0;
    const q = this.queues[this.queueSel];
    switch (offset) {
      case VIRTIO_MMIO_DEVICE_FEATURES_SEL: this.deviceFeaturesSel = value; return;
      case VIRTIO_MMIO_DRIVER_FEATURES_SEL: this.driverFeaturesSel = value; return;
      case VIRTIO_MMIO_DRIVER_FEATURES: {
        if (this.status & VIRTIO_CONFIG_S_FEATURES_OK) {
          this.log('%s: DriverFeatures written after FEATURES_OK, ignored', this.name);
          return;
        }
        if (this.driverFeaturesSel > 1) return;  /* no feature bits beyond 63 are defined */
        const shift = BigInt(32 * this.driverFeaturesSel);
        this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(value) << shift);
        return;
      }
      case VIRTIO_MMIO_QUEUE_SEL: this.queueSel = value; return;
      case VIRTIO_MMIO_QUEUE_NOTIFY: this.notify(value & 0xffff); return;
      case VIRTIO_MMIO_INTERRUPT_ACK: this.interruptStatus &= ~value; return;
      case VIRTIO_MMIO_STATUS: this.setStatus(value); return;
    }
    if (!q) {
      this.log('%s: write %s to register %s of nonexistent queue %d', this.name, hex(value), hex(offset), this.queueSel);
      return;
    }
    if (offset === VIRTIO_MMIO_QUEUE_READY) {
      if (!(value & 1)) { q.ready = false; return; }
      if (q.ready) return;
      const why = q.enable(this.mem);
      if (why) this.reportChainError(q.index, -1, `queue ${q.index} not enabled: ${why}`);
      return;
    }
    if (q.ready) {
      this.log('%s: queue %d register %s written while ready, ignored', this.name, q.index, hex(offset));
      return;
    }
    switch (offset) {
      case VIRTIO_MMIO_QUEUE_NUM: q.num = value; return;
      case VIRTIO_MMIO_QUEUE_DESC_LOW: q.descLow = value; return;
      case VIRTIO_MMIO_QUEUE_DESC_HIGH: q.descHigh = value; return;
      case VIRTIO_MMIO_QUEUE_DRIVER_LOW: q.driverLow = value; return;
      case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: q.driverHigh = value; return;
      case VIRTIO_MMIO_QUEUE_DEVICE_LOW: q.deviceLow = value; return;
      case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: q.deviceHigh = value; return;
      default: this.log('%s: write to unknown register %s', this.name, hex(offset));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.quiesce();
    this.flushIrq();
    await this.closeBackend();
  }

  /* ---- for device types and the queue ---- */

  negotiated(bit: number): boolean {
    return hasFeature(this.negotiatedFeatures, bit);
  }

  /** Waits until no I/O started through track() is in flight. */
  async quiesce(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /** Registers device work in flight (close() and quiesce() wait for it). */
  protected track(p: Promise<unknown>): void {
    this.inflight.add(p);
    const done = () => { this.inflight.delete(p); };
    p.then(done, done);
  }

  get inflightCount(): number { return this.inflight.size; }

  reportChainError(queue: number, head: number, reason: string): void {
    this.stats.chainErrors++;
    this.log('%s: queue %d chain %d: %s', this.name, queue, head, reason);
    this.onChainError?.({ device: this.name, queue, head, reason });
  }

  /** 2.1.2: the driver broke the ring; stop using the queue until reset. */
  queueBroken(q: HostVirtqueue, reason: string): void {
    q.broken = true;
    this.reportChainError(q.index, -1, reason);
    this.status |= VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET;
    if (this.status & VIRTIO_CONFIG_S_DRIVER_OK) this.configChanged(false);
  }

  /** The configuration space changed: new generation, configuration interrupt. */
  configChanged(bumpGeneration = true): void {
    if (bumpGeneration) this.configGeneration = (this.configGeneration + 1) >>> 0;
    this.configIrqPending = true;
    this.scheduleIrq();
  }

  usedAdded(e: vring_used_elem): void {
    this.stats.completed++;
    this.pendingUsed.push(e);
    this.scheduleIrq();
  }

  /* ---- internals ---- */

  private readConfig(offset: number, size: 1 | 2 | 4): number {
    const cfg = this.config;
    if (offset < 0 || offset + size > cfg.length) return 0;
    const v = new DataView(cfg.buffer, cfg.byteOffset, cfg.byteLength);
    return size === 1 ? v.getUint8(offset) : size === 2 ? v.getUint16(offset, true) : v.getUint32(offset, true);
  }

  private setStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.status;
    if ((value & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
      const why = this.checkFeatures(this.driverFeatures);
      if (why) {
        /* 3.1.1: the driver re-reads Status and finds FEATURES_OK unset */
        this.log('%s: features %s refused: %s', this.name, this.driverFeatures.toString(16), why);
        value &= ~VIRTIO_CONFIG_S_FEATURES_OK;
      } else {
        this.negotiatedFeatures = this.driverFeatures;
        this.log('%s: features %s accepted', this.name, this.negotiatedFeatures.toString(16));
      }
    }
    if (value & VIRTIO_CONFIG_S_FAILED && !(old & VIRTIO_CONFIG_S_FAILED)) this.log('%s: driver gave up (FAILED)', this.name);
    this.status = value | (old & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET);
    if ((value & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
      this.log('%s: DRIVER_OK', this.name);
      /* buffers made available before DRIVER_OK are served now */
      for (const q of this.queues) if (q.ready) this.notify(q.index);
    }
  }

  private checkFeatures(f: bigint): string | null {
    const extra = f & ~this.deviceFeatures;
    if (extra) return `not offered: ${extra.toString(16)}`;
    if (!hasFeature(f, VIRTIO_F_VERSION_1)) return 'VIRTIO_F_VERSION_1 not accepted (modern virtio-mmio)';
    return this.validateFeatures(f);
  }

  /* 4.2.2.1 writing 0 to Status resets the device */
  private reset(): void {
    this.log('%s: reset', this.name);
    this.status = 0;
    this.deviceFeaturesSel = this.driverFeaturesSel = 0;
    this.driverFeatures = this.negotiatedFeatures = 0n;
    this.queueSel = 0;
    this.interruptStatus = 0;
    for (const q of this.queues) q.reset();
    this.pendingUsed = [];
    this.configIrqPending = false;
    this.onReset();
  }

  private notify(index: number): void {
    const q = this.queues[index];
    if (this.closed || !q) return;
    if (!(this.status & VIRTIO_CONFIG_S_DRIVER_OK) || !q.ready || q.broken) {
      this.log('%s: notify of queue %d ignored (status %s, ready %s)', this.name, index, hex(this.status), q.ready);
      return;
    }
    this.queueNotify(q);
  }

  private scheduleIrq(): void {
    if (this.irqScheduled) return;
    this.irqScheduled = true;
    /* everything completing in this turn of the event loop goes in one IRQ; never
     * raised synchronously from inside a register access */
    this.defer(() => this.flushIrq());
  }

  private flushIrq(): void {
    this.irqScheduled = false;
    /* 2.7.7.2 a driver that set NO_INTERRUPT polls the used ring for these */
    const data = this.pendingUsed.filter((e) => !((this.queues[e.queue].ring?.availFlags ?? 0) & VIRTQ_AVAIL_F_NO_INTERRUPT));
    this.pendingUsed = [];
    const config = this.configIrqPending;
    this.configIrqPending = false;
    if (!data.length && !config) return;
    if (data.length) this.interruptStatus |= VIRTIO_MMIO_INT_VRING;
    if (config) this.interruptStatus |= VIRTIO_MMIO_INT_CONFIG;
    if (!this.raiseIrq) return;
    this.stats.irqs++;
    this.raiseIrq(data);
  }
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(3, '0');
}
