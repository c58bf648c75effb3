/*
 * The virtio core (drivers/virtio/virtio.c, much reduced): the bus that matches devices
 * with drivers, and the device-independent half of initialisation that every driver goes
 * through — status bits and feature negotiation (virtio 1.x, 3.1.1). A transport
 * (virtio_mmio.ts) supplies the register accesses; a driver (virtio_blk.ts) names the
 * features it understands and does its own queue setup in probe().
 *
 * Devices are added at boot (HostOps.virtio_devices) or hot-added from host code through an
 * IRQ (virtio_mmio.ts). Probing sleeps (a block driver reads its partition table), so it
 * runs in a kernel thread, never in the IRQ handler that announced the device.
 *
 * May touch: the transport, the driver table. Nothing block- or fs-specific.
 */
import { pr_err } from '../../kernel/printk.js';
import type { VirtioDeviceInfo } from '../../host-ops.js';
import { err } from '../../include/errno.js';
import { ENODEV, EIO } from '../../include/uapi.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_F_VERSION_1, features, hasFeature,
} from '../../include/uapi/linux/virtio_config.js';
import type { virtqueue } from './virtio_ring.js';

/** What a transport offers the core and the drivers (struct virtio_config_ops). */
export interface virtio_config_ops {
  getStatus(): number;
  setStatus(status: number): void;
  /** Writing 0 to Status: the device forgets everything, including its queues. */
  reset(): void;
  /** All 64 feature bits the device offers. */
  getFeatures(): bigint;
  /** Write the driver's feature choice (before FEATURES_OK). */
  finalizeFeatures(f: bigint): void;
  /** Set up queue `index` with at most `maxNum` entries; `callback` runs in IRQ context. */
  setupVq(vdev: virtio_device, index: number, maxNum: number, callback: (vq: virtqueue) => void): virtqueue;
  /** Tear the queues down (after reset) and give their memory back. */
  delVqs(vdev: virtio_device): void;
  /** Device-specific config space, little-endian, read consistently (generation counter). */
  configRead(offset: number, size: 1 | 2 | 4 | 8): number;
  configGeneration(): number;
}

/** struct virtio_device. */
export class virtio_device {
  /** Features both sides agreed on (valid after finalize). */
  features = 0n;
  /** The driver bound to it, and its private state. */
  driver: virtio_driver | null = null;
  priv: unknown = null;
  readonly vqs: virtqueue[] = [];
  /** Set when a config-change interrupt arrives; drivers may look. */
  configChanged = 0;
  /** Set when the device reported DEVICE_NEEDS_RESET or the driver gave up. */
  broken = false;
  constructor(public readonly index: number, public readonly deviceId: number,
    public readonly config: virtio_config_ops, public readonly name: string) {}
  hasFeature(bit: number): boolean { return hasFeature(this.features, bit); }
  /* Config-space helpers (virtio_cread*) */
  cread8(off: number): number { return this.config.configRead(off, 1); }
  cread16(off: number): number { return this.config.configRead(off, 2); }
  cread32(off: number): number { return this.config.configRead(off, 4); }
  cread64(off: number): number { return this.config.configRead(off, 8); }
}

/** struct virtio_driver. */
export interface virtio_driver {
  readonly name: string;
  /** The device type it drives (5 Device Types). */
  readonly deviceId: number;
  /** Feature bits it understands; the core offers back the intersection with the device's. */
  readonly feature_table: number[];
  /**
   * Set up queues and the device; must end by calling virtio_device_ready(vdev) before any
   * I/O. Runs in a kernel thread and may sleep. Throw to refuse the device.
   */
  probe(vdev: virtio_device): Promise<void>;
  /** Undo probe; the core resets the device afterwards. */
  remove(vdev: virtio_device): Promise<void>;
  /** Config-change interrupt (IRQ context). */
  config_changed?(vdev: virtio_device): void;
  /** What the host is told about a device this driver took (plain data only). */
  describe?(vdev: virtio_device): Omit<VirtioDeviceInfo, 'index' | 'driver'>;
}

const drivers: virtio_driver[] = [];
const devices = new Set<virtio_device>();

export function register_virtio_driver(drv: virtio_driver): void {
  if (!drivers.includes(drv)) drivers.push(drv);
}
export function virtio_devices(): virtio_device[] { return [...devices]; }

function addStatus(vdev: virtio_device, bit: number): void {
  vdev.config.setStatus(vdev.config.getStatus() | bit);
}

/**
 * 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK and re-read it. The
 * driver then sets up queues and calls virtio_device_ready (step 8, DRIVER_OK).
 */
function negotiate(vdev: virtio_device, drv: virtio_driver): void {
  const c = vdev.config;
  c.reset();
  addStatus(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  addStatus(vdev, VIRTIO_CONFIG_S_DRIVER);
  const offered = c.getFeatures();
  /* modern virtio-mmio only: without VERSION_1 the device speaks the legacy layout */
  if (!hasFeature(offered, VIRTIO_F_VERSION_1)) throw err(ENODEV, `${vdev.name}: device lacks VIRTIO_F_VERSION_1`);
  const wanted = features(VIRTIO_F_VERSION_1, ...drv.feature_table);
  vdev.features = offered & wanted;
  c.finalizeFeatures(vdev.features);
  addStatus(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
  /* 3.1.1 step 6: the device may refuse the subset; only the re-read tells */
  if (!(c.getStatus() & VIRTIO_CONFIG_S_FEATURES_OK)) throw err(ENODEV, `${vdev.name}: device refused features ${vdev.features.toString(16)}`);
}

/** virtio_device_ready: DRIVER_OK; the device may now use the queues. */
export function virtio_device_ready(vdev: virtio_device): void {
  addStatus(vdev, VIRTIO_CONFIG_S_DRIVER_OK);
}

/**
 * Bind `vdev` to the first driver for its type and probe it (from a kernel thread). On
 * failure the device is marked FAILED and left alone; the error is thrown on.
 */
export async function virtio_device_probe(vdev: virtio_device): Promise<void> {
  const drv = drivers.find((d) => d.deviceId === vdev.deviceId);
  if (!drv) throw err(ENODEV, `${vdev.name}: no driver for virtio device type ${vdev.deviceId}`);
  devices.add(vdev);
  try {
    negotiate(vdev, drv);
    vdev.driver = drv;
    await drv.probe(vdev);
    if (!(vdev.config.getStatus() & VIRTIO_CONFIG_S_DRIVER_OK)) throw err(EIO, `${vdev.name}: driver did not set DRIVER_OK`);
  } catch (e) {
    pr_err(`virtio: ${vdev.name}: probe with ${drv.name} failed: ${(e as Error)?.message ?? e}`);
    vdev.driver = null;
    vdev.config.delVqs(vdev);
    addStatus(vdev, VIRTIO_CONFIG_S_FAILED);
    devices.delete(vdev);
    throw e;
  }
}

/** Unbind: the driver's remove, then reset so the device stops touching our memory. */
export async function virtio_device_remove(vdev: virtio_device): Promise<void> {
  const drv = vdev.driver;
  if (drv) await drv.remove(vdev);
  vdev.driver = null;
  vdev.config.reset();
  vdev.config.delVqs(vdev);
  devices.delete(vdev);
}

/** A config-change interrupt (IRQ context). */
export function virtio_config_changed(vdev: virtio_device): void {
  vdev.configChanged++;
  vdev.driver?.config_changed?.(vdev);
}
