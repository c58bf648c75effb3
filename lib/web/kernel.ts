/*
 * The kernel in a web page: the host-independent API (drivers/api.ts) bound to the browser
 * HostOps (web-host.ts), with disks over Files or Blobs (blob-store.ts) served by the shared
 * virtio-blk device half. The browser's lib/index.ts.
 */
import { bootKernel, type KernelCore } from '../drivers/api.js';
import { diskAddDevice, diskDevName, diskPartitions, nextDiskName } from '../drivers/disks.js';
import { VirtioBlkDevice } from '../drivers/virtio-blk-device.js';
import type { DevicePlatform } from '../drivers/virtio-mmio-host.js';
import { BlobStore, type BlobStoreOptions } from './blob-store.js';
import { createWebHost, debugEnabled, formatMessage } from './web-host.js';

export { BlobStore } from './blob-store.js';
export { opendir } from '../drivers/api.js';

export interface WebKernelOptions {
  memMiB?: number;
  cmdline?: string;
  /** Kernel messages and enabled debug output. */
  print(msg: string): void;
  /** DEBUG-style namespace patterns shown through print ("lkl:virtio:*"). */
  debug?: string;
}

export interface WebDisk {
  id: number;
  store: BlobStore;
  /** Kernel name ("vda"). */
  name: string;
  /** Partitions the kernel found: number -> name (1 -> "vda1"). */
  partitions: Map<number, string>;
}

export interface WebKernel extends KernelCore {
  /** Adds a disk over the Blob (writes stay in memory); resolves once probed, or to -errno. */
  diskAddBlob(blob: Blob, opts?: BlobStoreOptions): Promise<WebDisk | number>;
}

/* A task of its own, soon, without setTimeout's clamping: one message on a channel. */
function taskQueue(): (fn: () => void) => void {
  const ch = new MessageChannel();
  const q: Array<() => void> = [];
  ch.port1.onmessage = () => {
    const fns = q.splice(0);
    for (const fn of fns) fn();
  };
  return (fn) => {
    q.push(fn);
    if (q.length === 1) ch.port2.postMessage(0);
  };
}

export async function startWebKernel(opts: WebKernelOptions): Promise<WebKernel> {
  const host = createWebHost({ print: opts.print, debug: opts.debug });
  const platform: DevicePlatform = {
    logger: (ns) => opts.debug && debugEnabled(opts.debug, ns)
      ? (fmt: string, ...args: unknown[]) => opts.print(`${ns} ${formatMessage(fmt, args)}`)
      : () => {},
    defer: taskQueue(),
  };
  const core = await bootKernel(host, {
    memMiB: opts.memMiB ?? 64,
    cmdline: opts.cmdline ?? '',
    syscallThreads: 4,
    warn: (m) => opts.print(m),
  });
  return {
    ...core,
    async diskAddBlob(blob, o = {}) {
      const store = new BlobStore(blob, o);
      const dev = new VirtioBlkDevice(store, platform, { name: nextDiskName() });
      const id = await diskAddDevice(store, dev);
      if (id < 0) return id;
      return { id, store, name: diskDevName(id) ?? '', partitions: diskPartitions(id) };
    },
  };
}
