/*
 * Disks for the public API (LKL's tools/lkl/lib/virtio_blk.c lkl_disk_add/remove and
 * fs.c lkl_mount_dev/lkl_umount_dev): a backing store becomes a virtio-blk host device,
 * handed to the kernel, which probes it (vda, vdb, ...), reads its partition table and
 * creates /dev nodes. Mounting goes through ordinary system calls.
 *
 * Host side: only raises the kernel's hot-plug IRQ and makes system calls. Disks added
 * before boot are kept and hot-plugged, in order, right after boot.
 *
 * Platform-free: the caller brings the store and its device half (Node: disk.ts opens
 * files; the browser: lib/web wraps a File).
 */
import type { BlockStore } from './block-store.js';
import type { VirtioBlkDevice } from './virtio-blk-device.js';
import { syscall } from '../kernel/arch/syscalls.js';
import { __NR_virtio_mmio_device_add, __NR_virtio_mmio_device_remove } from '../kernel/include/unistd.js';
import type { VirtioDeviceInfo } from '../kernel/host-ops.js';
import type { Sys } from '../kernel/include/sys.js';
import { EBUSY, EEXIST, ENODEV, EINVAL } from '../kernel/include/uapi.js';

interface DiskEntry {
  id: number;
  store: BlockStore;
  dev: VirtioBlkDevice;
  /** Kernel name once probed ("vda"). */
  name: string | null;
  /** Its partitions' kernel names by number, as the kernel reported them when it took the disk. */
  partitions: Map<number, string>;
  /** Mount points made by mountDev, by partition number. */
  mounts: Map<number, string>;
  /** Set when the device is given to the kernel. */
  attached: boolean;
}

const disks = new Map<number, DiskEntry>();
let nextId = 0;
let kernelUp = false;

/** Where the registry reports what it cannot return (Node: process warnings). */
let warn: (msg: string) => void = () => {};

/** Hand a device to the kernel and wait for its probe; resolves to the disk name or -errno. */
async function attach(d: DiskEntry): Promise<string | number> {
  d.attached = true;
  const r = await syscall(__NR_virtio_mmio_device_add, [d.dev]) as VirtioDeviceInfo | number;
  if (typeof r === 'number') { d.attached = false; return r; }
  d.name = r.disk?.name ?? null;
  d.partitions = new Map((r.disk?.partitions ?? []).map((p) => [p.partno, p.name]));
  return d.name ?? -ENODEV;
}

/** The name a new disk's device gets in messages (disk0, disk1, ...). */
export function nextDiskName(): string { return `disk${nextId}`; }

/**
 * lkl_disk_add: a disk backed by the store, served by `dev`. Resolves to the disk id (>= 0)
 * once the kernel has probed it (after boot), or at once before boot (probed at boot);
 * resolves to -errno if the kernel refuses the device (which is then closed).
 */
export async function diskAddDevice(store: BlockStore, dev: VirtioBlkDevice): Promise<number> {
  const id = nextId++;
  const d: DiskEntry = { id, store, dev, name: null, partitions: new Map(), mounts: new Map(), attached: false };
  disks.set(id, d);
  if (!kernelUp) return id;
  const r = await attach(d);
  if (typeof r === 'number') {
    disks.delete(id);
    await dev.close();
    return r;
  }
  return id;
}

/** Called once the kernel has booted: probe the disks added before. */
export async function disksBoot(warnings: (msg: string) => void = () => {}): Promise<void> {
  warn = warnings;
  kernelUp = true;
  for (const d of [...disks.values()].sort((a, b) => a.id - b.id)) {
    if (d.attached) continue;
    const r = await attach(d);
    if (typeof r === 'number') warn(`lkl-ts: disk ${d.id} was refused by the kernel (errno ${-r})`);
  }
}

/** The partitions the kernel found on disk `id`: number -> kernel name (1 -> vda1). */
export function diskPartitions(id: number): Map<number, string> {
  return new Map(disks.get(id)?.partitions ?? []);
}

/** The kernel name of disk `id` (vda) or of its partition `part` (vda1). */
export function diskDevName(id: number, part = 0): string | null {
  const d = disks.get(id);
  if (!d?.name) return null;
  return part ? d.partitions.get(part) ?? null : d.name;
}

/**
 * lkl_mount_dev: mount /dev/vdX[N] on /mnt/vdX[N] (created as needed). Resolves to the
 * mount point, or -errno.
 */
export async function mountDev(sys: Sys, id: number, part: number, fsType: string, flags = 0, opts: string | null = null): Promise<string | number> {
  const d = disks.get(id);
  if (!d) return -ENODEV;
  const name = diskDevName(id, part);
  if (!name) return -ENODEV;
  if (d.mounts.has(part)) return -EBUSY;
  const mnt = `/mnt/${name}`;
  for (const dir of ['/mnt', mnt]) {
    const r = await sys.mkdir(dir, 0o755);
    if (r < 0 && r !== -EEXIST) return r;
  }
  const r = await sys.mount(`/dev/${name}`, mnt, fsType, flags, opts);
  if (r < 0) { await sys.rmdir(mnt); return r; }
  d.mounts.set(part, mnt);
  return mnt;
}

/**
 * lkl_umount_dev: unmount what mountDev mounted, retrying while busy for up to timeoutMs
 * (LKL's lkl_umount_timeout), then remove the mount point. Resolves to 0 or -errno.
 */
export async function umountDev(sys: Sys, id: number, part: number, flags = 0, timeoutMs = 1000): Promise<number> {
  const d = disks.get(id);
  const mnt = d?.mounts.get(part);
  if (!d || !mnt) return -EINVAL;
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await sys.umount2(mnt, flags);
    if (r === 0) break;
    if (r !== -EBUSY || Date.now() >= until) return r;
    await new Promise((res) => setTimeout(res, 10));
  }
  d.mounts.delete(part);
  await sys.rmdir(mnt);
  return 0;
}

/**
 * lkl_disk_remove: EBUSY while mounted; otherwise the kernel lets go of the device (its
 * cache written back) and the store is closed. Resolves to 0 or -errno.
 */
export async function diskRemove(id: number): Promise<number> {
  const d = disks.get(id);
  if (!d) return -ENODEV;
  if (d.mounts.size) return -EBUSY;
  if (d.attached && kernelUp) {
    const r = await syscall(__NR_virtio_mmio_device_remove, [d.dev]) as number;
    if (r < 0) return r;
  }
  disks.delete(id);
  await d.dev.close();
  return 0;
}

/** After the kernel halted (every device reset): close every store; forget the disks. */
export async function disksHalt(): Promise<void> {
  kernelUp = false;
  const all = [...disks.values()];
  disks.clear();
  for (const d of all) {
    try { await d.dev.close(); } catch (e) {
      warn(`lkl-ts: closing disk ${d.id}: ${(e as Error)?.message ?? e}`);
    }
  }
}

/** The host device of a disk (tests look at its statistics). */
export function diskHostDevice(id: number): VirtioBlkDevice | null { return disks.get(id)?.dev ?? null; }
