/*
 * virtio-blk on Node: the shared device half (virtio-blk-device.ts) with Node's debug
 * channels and setImmediate for batching completions into one IRQ per event-loop turn.
 */
import createDebug from 'debug';
import type { BlockStore } from './block-store.js';
import { VirtioBlkDevice, type VirtioBlkOptions } from './virtio-blk-device.js';
import type { DevicePlatform } from './virtio-mmio-host.js';

export type { VirtioBlkOptions, VirtioBlkStats } from './virtio-blk-device.js';

export const nodeDevicePlatform: DevicePlatform = {
  logger: (ns) => createDebug(ns),
  defer: (fn) => { setImmediate(fn); },
};

export class VirtioBlkHost extends VirtioBlkDevice {
  constructor(store: BlockStore, opts: VirtioBlkOptions = {}) {
    super(store, nodeDevicePlatform, opts);
  }
}
