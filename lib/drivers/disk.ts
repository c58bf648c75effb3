/*
 * Disks on Node (LKL's lkl_disk_add with its file and memory backends): opens the backing
 * store a DiskOptions names and hands it, behind a Node virtio-blk device, to the shared
 * disk registry (disks.ts), which also mounts and unmounts.
 */
import { FileStore, MemoryStore } from './stores.js';
import type { BlockStore } from './block-store.js';
import { VirtioBlkHost, type VirtioBlkOptions } from './virtio-blk.js';
import { diskAddDevice, nextDiskName } from './disks.js';

export {
  diskDevName, diskHostDevice, diskPartitions, diskRemove, disksBoot, disksHalt, mountDev, umountDev,
} from './disks.js';

export interface DiskOptions {
  /** A raw image file to open (read-write unless readOnly). */
  path?: string;
  /** An already open file descriptor (left open at removal). */
  fd?: number;
  /** An in-memory disk: its bytes, or a size in bytes. */
  memory?: Uint8Array | number;
  /** Any store (tests wrap stores to inject faults or count flushes). */
  store?: BlockStore;
  readOnly?: boolean;
  /** Passed to the virtio-blk host device (queue size, blk_size, ...). */
  device?: VirtioBlkOptions;
}

async function openStore(o: DiskOptions): Promise<BlockStore> {
  if (o.store) return o.store;
  if (o.memory !== undefined) return new MemoryStore(o.memory, { readOnly: o.readOnly });
  if (o.path !== undefined) return FileStore.open(o.path, { readOnly: o.readOnly });
  if (o.fd !== undefined) return FileStore.open(o.fd, { readOnly: o.readOnly });
  throw new Error('diskAdd: one of path, fd, memory or store is required');
}

/**
 * lkl_disk_add: a disk backed by the store the options name. Resolves to the disk id
 * (>= 0) once the kernel has probed it (after boot), or at once before boot (probed at
 * boot). Rejects if the store cannot be opened; resolves to -errno if the kernel refuses
 * the device.
 */
export async function diskAdd(opts: DiskOptions): Promise<number> {
  const store = await openStore(opts);
  const dev = new VirtioBlkHost(store, { name: nextDiskName(), ...opts.device });
  return diskAddDevice(store, dev);
}
