/*
 * The virtio-mmio transport, kernel side (drivers/virtio/virtio_mmio.c): register-level
 * access to a device the host registered (a VirtioMmioDevice), its interrupt, and device
 * discovery — at boot from HostOps.virtio_devices, and hot-plug/unplug later from host code.
 *
 * Hot-plug follows the execution model: host code never calls into the kernel; it raises
 * IRQ_VIRTIO_HOTPLUG carrying the device and a callback. The handler (IRQ context, no
 * sleeping) starts a kernel thread that checks the device (magic, version 2, device ID),
 * probes it through the virtio core and reports back through the callback, which only
 * resolves a host promise.
 *
 * Only modern (version 2) devices are driven: the legacy register layout (QueuePFN) is not
 * implemented, as LKL's host devices have been modern for years.
 */
import { pr_err, pr_warn } from '../../kernel/printk.js';
import { alloc_irq_number, free_irq, request_irq, trigger_irq } from '../../arch/irq.js';
import { host } from '../../arch/cpu.js';
import { INIT_DEVICE, initcall } from '../../arch/setup.js';
import { define_syscall } from '../../arch/syscalls.js';
import { __NR_virtio_mmio_device_add, __NR_virtio_mmio_device_remove } from '../../include/unistd.js';
import { physMem } from '../../mm/page_alloc.js';
import { err } from '../../include/errno.js';
import { EIO, ENODEV, ENOMEM } from '../../include/uapi.js';
import type { VirtioDeviceInfo, VirtioMmioDevice } from '../../host-ops.js';
import {
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_F_INDIRECT_DESC, featureWindow,
} from '../../include/uapi/linux/virtio_config.js';
import {
  VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_DEVICE_FEATURES,
  VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DEVICE_ID, VIRTIO_MMIO_DRIVER_FEATURES,
  VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_MAGIC_VALUE,
  VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DEVICE_HIGH,
  VIRTIO_MMIO_QUEUE_DEVICE_LOW, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, VIRTIO_MMIO_QUEUE_DRIVER_LOW,
  VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_NUM_MAX,
  VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_STATUS, VIRTIO_MMIO_VERSION,
  VIRTIO_MMIO_VERSION_MODERN,
} from '../../include/uapi/linux/virtio_mmio.js';
import {
  virtio_device, virtio_config_changed, virtio_device_probe, virtio_device_remove, type virtio_config_ops,
} from './virtio.js';
import { vring_create_virtqueue, type virtqueue } from './virtio_ring.js';

const hi32 = (v: number) => Math.floor(v / 0x100000000);
const lo32 = (v: number) => v % 0x100000000;

/** struct virtio_mmio_device: one host device seen through its registers. */
export class virtio_mmio_device implements virtio_config_ops {
  readonly irq: number;
  vdev!: virtio_device;
  private readonly debug = host().debug?.('lkl:virtio:mmio');

  constructor(readonly dev: VirtioMmioDevice) {
    this.irq = alloc_irq_number();
  }

  /** vm_probe's checks: magic, version, device ID. Returns the device ID. */
  check(): number {
    const d = this.dev;
    const magic = d.read(VIRTIO_MMIO_MAGIC_VALUE);
    if (magic !== VIRTIO_MMIO_MAGIC) throw err(ENODEV, `${d.name}: wrong magic value 0x${magic.toString(16)}`);
    const version = d.read(VIRTIO_MMIO_VERSION);
    if (version !== VIRTIO_MMIO_VERSION_MODERN) throw err(ENODEV, `${d.name}: version ${version} not supported (modern virtio-mmio only)`);
    const id = d.read(VIRTIO_MMIO_DEVICE_ID);
    /* 4.2.3.1.1: device ID 0 is a placeholder with no device behind it */
    if (id === 0) throw err(ENODEV, `${d.name}: placeholder device`);
    return id;
  }

  getStatus(): number { return this.dev.read(VIRTIO_MMIO_STATUS); }
  setStatus(s: number): void { this.dev.write(VIRTIO_MMIO_STATUS, s); }
  reset(): void {
    this.dev.write(VIRTIO_MMIO_STATUS, 0);
  }

  getFeatures(): bigint {
    let f = 0n;
    for (const sel of [0, 1]) {
      this.dev.write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
      f |= BigInt(this.dev.read(VIRTIO_MMIO_DEVICE_FEATURES) >>> 0) << BigInt(32 * sel);
    }
    return f;
  }

  finalizeFeatures(f: bigint): void {
    for (const sel of [0, 1]) {
      this.dev.write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
      this.dev.write(VIRTIO_MMIO_DRIVER_FEATURES, featureWindow(f, sel));
    }
  }

  configGeneration(): number { return this.dev.read(VIRTIO_MMIO_CONFIG_GENERATION); }

  /** 4.2.3.1.1 / 2.5.1: multi-word fields are read until the generation is stable. */
  configRead(offset: number, size: 1 | 2 | 4 | 8): number {
    for (;;) {
      const gen = this.configGeneration();
      let v: number;
      if (size === 8) {
        const lo = this.dev.read(VIRTIO_MMIO_CONFIG + offset, 4) >>> 0;
        const hi = this.dev.read(VIRTIO_MMIO_CONFIG + offset + 4, 4) >>> 0;
        v = hi * 0x100000000 + lo;
      } else v = this.dev.read(VIRTIO_MMIO_CONFIG + offset, size) >>> 0;
      if (gen === this.configGeneration()) return v;
    }
  }

  /** vm_setup_vq: a queue of min(maxNum, QueueNumMax, one page's worth) entries. */
  setupVq(vdev: virtio_device, index: number, maxNum: number, callback: (vq: virtqueue) => void): virtqueue {
    const d = this.dev;
    d.write(VIRTIO_MMIO_QUEUE_SEL, index);
    if (d.read(VIRTIO_MMIO_QUEUE_READY)) throw err(ENODEV, `${d.name}: queue ${index} already set up`);
    const numMax = d.read(VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (numMax === 0) throw err(ENODEV, `${d.name}: queue ${index} not available`);
    /* a power of two no larger than either limit */
    let num = 1;
    while (num * 2 <= Math.min(numMax, maxNum)) num *= 2;
    const vq = vring_create_virtqueue(index, num, vdev.hasFeature(VIRTIO_F_INDIRECT_DESC),
      (q) => d.write(VIRTIO_MMIO_QUEUE_NOTIFY, q.index), callback);
    if (!vq) throw err(ENOMEM, `${d.name}: no memory for queue ${index}`);
    d.write(VIRTIO_MMIO_QUEUE_NUM, num);
    d.write(VIRTIO_MMIO_QUEUE_DESC_LOW, lo32(vq.descAddr));
    d.write(VIRTIO_MMIO_QUEUE_DESC_HIGH, hi32(vq.descAddr));
    d.write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, lo32(vq.availAddr));
    d.write(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, hi32(vq.availAddr));
    d.write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, lo32(vq.usedAddr));
    d.write(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, hi32(vq.usedAddr));
    d.write(VIRTIO_MMIO_QUEUE_READY, 1);
    if (d.read(VIRTIO_MMIO_QUEUE_READY) !== 1) {
      vq.free();
      throw err(EIO, `${d.name}: device refused queue ${index}`);
    }
    vdev.vqs[index] = vq;
    this.debug?.(`${d.name}: queue ${index}: ${num} entries${vq.useIndirect ? ', indirect' : ''}`);
    return vq;
  }

  delVqs(vdev: virtio_device): void {
    for (const vq of vdev.vqs) {
      if (!vq) continue;
      this.dev.write(VIRTIO_MMIO_QUEUE_SEL, vq.index);
      this.dev.write(VIRTIO_MMIO_QUEUE_READY, 0);
      vq.free();
    }
    vdev.vqs.length = 0;
  }

  /** vm_interrupt: read and acknowledge the cause, then run the queue callbacks. */
  interrupt(): void {
    const isr = this.dev.read(VIRTIO_MMIO_INTERRUPT_STATUS);
    this.dev.write(VIRTIO_MMIO_INTERRUPT_ACK, isr);
    if (isr & VIRTIO_MMIO_INT_CONFIG) {
      if (this.getStatus() & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) {
        this.vdev.broken = true;
        pr_warn(`virtio: ${this.dev.name}: device needs reset`);
      }
      virtio_config_changed(this.vdev);
    }
    /* The IRQ's data lists the used entries, but the used ring says the same and is
     * what a real transport has; every queue is polled, as vm_interrupt does. */
    if (isr & VIRTIO_MMIO_INT_VRING || isr === 0) {
      for (const vq of this.vdev.vqs) if (vq && vq.moreUsed()) vq.callback(vq);
    }
  }
}

let nextIndex = 0;
const byDevice = new Map<VirtioMmioDevice, virtio_mmio_device>();

/**
 * Register and probe a device (kernel context, may sleep). Resolves with the virtio device
 * once its driver is bound; throws on an unusable device, leaving nothing registered.
 */
export async function virtio_mmio_add(dev: VirtioMmioDevice): Promise<virtio_device> {
  if (byDevice.has(dev)) throw err(EIO, `${dev.name}: registered twice`);
  const t = new virtio_mmio_device(dev);
  const id = t.check();
  const vdev = new virtio_device(nextIndex++, id, t, dev.name);
  t.vdev = vdev;
  dev.attach(physMem(), (data) => trigger_irq(t.irq, data));
  request_irq(t.irq, () => t.interrupt());
  byDevice.set(dev, t);
  try {
    await virtio_device_probe(vdev);
  } catch (e) {
    byDevice.delete(dev);
    free_irq(t.irq);
    throw e;
  }
  return vdev;
}

/** Unregister a device (kernel context): the driver lets go, the device is reset. */
export async function virtio_mmio_remove(dev: VirtioMmioDevice): Promise<void> {
  const t = byDevice.get(dev);
  if (!t) throw err(ENODEV, `${dev.name}: not registered`);
  await virtio_device_remove(t.vdev);
  byDevice.delete(dev);
  free_irq(t.irq);
}

/** Remove every device (halt); failures are reported and skipped. */
export async function virtio_mmio_remove_all(): Promise<void> {
  for (const dev of [...byDevice.keys()]) {
    try { await virtio_mmio_remove(dev); } catch (e) {
      pr_err(`virtio-mmio: ${dev.name}: removal failed: ${(e as Error)?.message ?? e}`);
    }
  }
}

export function virtio_mmio_lookup(dev: VirtioMmioDevice): virtio_device | null {
  return byDevice.get(dev)?.vdev ?? null;
}

/*
 * Hot-plug from the host, as LKL does it: system calls, so that the host reaches the kernel
 * only through its public entry points. virtio_mmio_device_add is LKL's
 * (__NR_arch_specific_syscall + 0); virtio_mmio_device_remove is ours (+ 1). Both run in a
 * syscall thread and may sleep; add returns plain data (VirtioDeviceInfo), never a kernel
 * object.
 */
function virtio_device_info(vdev: virtio_device): VirtioDeviceInfo {
  const drv = vdev.driver;
  return { index: vdev.index, driver: drv?.name ?? null, ...(drv?.describe?.(vdev) ?? {}) };
}

define_syscall(__NR_virtio_mmio_device_add, 'virtio_mmio_device_add', async (dev: VirtioMmioDevice) =>
  virtio_device_info(await virtio_mmio_add(dev)));
define_syscall(__NR_virtio_mmio_device_remove, 'virtio_mmio_device_remove', async (dev: VirtioMmioDevice) => {
  await virtio_mmio_remove(dev);
});

/* After the drivers (device level), before anything that mounts disks (late). */
initcall(INIT_DEVICE, 'virtio_mmio', async () => {
  nextIndex = 0;
  byDevice.clear();
  for (const dev of host().virtioDevices ?? []) {
    try { await virtio_mmio_add(dev); } catch (e) {
      pr_err(`virtio-mmio: ${dev.name}: ${(e as Error)?.message ?? e}`);
    }
  }
});
