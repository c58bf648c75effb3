/*
 * Disks (block/genhd.c, block/partitions/core.c's glue): a driver registers a disk with
 * add_disk; it gets a name (vda, vdb, ... vdz, vdaa like virtio_blk's), device numbers
 * (major 254, 16 minors per disk; partitions past 15 get extended numbers on major 259 as
 * Linux's blkext), a request queue, a block_device for the whole disk, its partition table
 * read (partitions/check.ts parses; we read through the block layer), a block_device per
 * partition, and /dev nodes (devtmpfs-like, through the VFS's mknod).
 *
 * del_gendisk undoes it: the disk is marked dead (new opens fail with ENXIO, new bios with
 * an I/O error), its nodes disappear, its caches are written back and dropped, in-flight
 * requests drain. The caller refuses while the disk is mounted (EBUSY).
 */
import { pr_err, pr_info, pr_warn } from '../kernel/printk.js';
import { INIT_CORE, initcall } from '../arch/setup.js';
import { err, isErrno } from '../include/errno.js';
import { EBUSY, EEXIST, ENOENT, S_IFBLK, makedev } from '../include/uapi.js';
import { REQ_OP_READ, type BlockDriver } from '../include/blk.js';
import { request_queue } from './blk-core.js';
import { block_device, bdevRegister, bdevUnregister, kill_bdev, sync_blockdev } from './bdev.js';
import { bdev_rw_sectors } from './bio.js';
import { scan_partitions, type Partition } from './partitions/check.js';
import { vfsMkdirPath, vfsMknodPath, vfsUnlinkPath } from '../fs/namei.js';

/** virtio_blk's major (dynamic in Linux; 254 as on most systems). */
export const VIRTBLK_MAJOR = 254;
/** BLOCK_EXT_MAJOR: numbers for partitions beyond a disk's minors. */
export const BLOCK_EXT_MAJOR = 259;
/** virtio_blk's PART_BITS: 16 minors per disk (the disk and 15 partitions). */
export const PART_BITS = 4;

/** struct gendisk. */
export class gendisk {
  readonly minors = 1 << PART_BITS;
  readonly queue: request_queue;
  part0!: block_device;
  /** Partitions by number. */
  readonly parts = new Map<number, block_device>();
  dead = false;
  /** Driver data. */
  private_data: unknown = null;
  constructor(
    readonly disk_name: string,
    readonly index: number,
    readonly major: number,
    readonly first_minor: number,
    readonly driver: BlockDriver,
  ) {
    this.queue = new request_queue(driver, disk_name);
  }
  get readOnly(): boolean { return this.driver.readOnly; }
  get logical_block_size(): number { return this.driver.logical_block_size; }
  /** get_capacity: 512-byte sectors. */
  get capacity(): number { return this.driver.capacity(); }
  /** Every block_device of the disk, the whole disk first. */
  get bdevs(): block_device[] { return [this.part0, ...[...this.parts.keys()].sort((a, b) => a - b).map((n) => this.parts.get(n)!)]; }
}

const disks = new Map<string, gendisk>();
const usedIndex = new Set<number>();
let extMinors = new Set<number>();

export function gendisks(): gendisk[] { return [...disks.values()]; }
export function diskByName(name: string): gendisk | null { return disks.get(name) ?? null; }

/** virtblk_name_format: 0 → vda, 25 → vdz, 26 → vdaa, ... */
export function diskNameFormat(prefix: string, index: number): string {
  let suffix = '';
  let n = index;
  do {
    suffix = String.fromCharCode(97 + (n % 26)) + suffix;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return prefix + suffix;
}

/** Partition name as disk_name() makes it: vda1, but nvme0n1p1 when the name ends in a digit. */
export function partition_name(disk: string, partno: number): string {
  return /\d$/.test(disk) ? `${disk}p${partno}` : `${disk}${partno}`;
}

function allocExtMinor(): number {
  let m = 0;
  while (extMinors.has(m)) m++;
  extMinors.add(m);
  return m;
}

/** Device number of partition `partno` of `disk`. */
function partDevt(disk: gendisk, partno: number): number {
  if (partno < disk.minors) return makedev(disk.major, disk.first_minor + partno);
  return makedev(BLOCK_EXT_MAJOR, allocExtMinor());
}

function freeDevt(dev: number): void {
  const major = (dev >>> 8) & 0xfff;
  if (major === BLOCK_EXT_MAJOR) extMinors.delete((dev & 0xff) | ((dev >>> 12) & 0xfff00));
}

/**
 * device_add_disk: register a disk driven by `driver`, read its partition table, create
 * its /dev nodes. Runs in a kernel thread (it sleeps on I/O). `prefix` names the disk
 * ("vd" for virtio).
 */
export async function add_disk(driver: BlockDriver, prefix = 'vd'): Promise<gendisk> {
  let index = 0;
  while (usedIndex.has(index)) index++;
  usedIndex.add(index);
  const name = diskNameFormat(prefix, index);
  const disk = new gendisk(name, index, VIRTBLK_MAJOR, index * 2 ** PART_BITS, driver);
  const nr = driver.capacity();
  disk.part0 = new block_device(disk, makedev(disk.major, disk.first_minor), name, 0, 0, nr, null);
  disks.set(name, disk);
  bdevRegister(disk.part0);
  await rescanPartitions(disk);
  await devtmpfsCreate(disk.part0);
  for (const p of disk.parts.values()) await devtmpfsCreate(p);
  return disk;
}

/** Read the partition table and create the partitions' devices (blk_add_partitions). */
async function rescanPartitions(disk: gendisk): Promise<void> {
  const lbs = disk.logical_block_size;
  const perBlock = lbs / 512;
  const part0 = disk.part0;
  const warn = (msg: string) => pr_warn(`${disk.disk_name}: ${msg}`);
  let parts: Partition[] = [];
  try {
    parts = await scan_partitions({
      sectorSize: lbs,
      sectors: Math.floor(disk.capacity / perBlock),
      read: async (lba: number, count: number) => {
        const buf = new Uint8Array(count * lbs);
        await bdev_rw_sectors(part0, REQ_OP_READ, lba * perBlock, buf);
        return buf;
      },
    }, warn);
  } catch (e) {
    warn(`partition scan failed: ${(e as Error)?.message ?? e}`);
  }
  for (const p of parts) {
    if (p.size <= 0 || p.start + p.size > disk.capacity) {
      warn(`partition ${p.no} (${p.start}+${p.size}) beyond the end of the disk, ignored`);
      continue;
    }
    const bdev = new block_device(disk, partDevt(disk, p.no), partition_name(disk.disk_name, p.no), p.no, p.start, p.size, part0);
    disk.parts.set(p.no, bdev);
    bdevRegister(bdev);
  }
  /* the kernel's " vda: vda1 vda2 vda5" line */
  pr_info(` ${disk.disk_name}:${[...disk.parts.values()].map((b) => ' ' + b.bd_name).join('')}`);
}

/**
 * blkdev_reread_part (BLKRRPART): drop the partitions and read the table again. EBUSY
 * while any partition is open.
 */
export async function blkdev_reread_part(disk: gendisk): Promise<void> {
  for (const p of disk.parts.values()) if (p.bd_openers > 0) throw err(EBUSY);
  for (const p of [...disk.parts.values()]) {
    await devtmpfsRemove(p);
    await kill_bdev(p);
    bdevUnregister(p);
    freeDevt(p.bd_dev);
  }
  disk.parts.clear();
  await kill_bdev(disk.part0);
  await rescanPartitions(disk);
  for (const p of disk.parts.values()) await devtmpfsCreate(p);
}

/** Is anything of the disk open or claimed (mounted)? */
export function diskBusy(disk: gendisk): boolean {
  return disk.bdevs.some((b) => b.bd_holder !== null);
}

/**
 * del_gendisk: the disk goes away. Dirty cached blocks are written while the device still
 * works, then it is marked dead, its nodes removed, its caches dropped, and outstanding
 * requests drained. EBUSY if a filesystem holds it (unless `force`).
 */
export async function del_gendisk(disk: gendisk, force = false, halting = false): Promise<void> {
  if (!force && diskBusy(disk)) throw err(EBUSY);
  for (const b of disk.bdevs) {
    try { await sync_blockdev(b); } catch (e) {
      pr_err(`${b.bd_name}: writeback before removal failed: ${(e as Error)?.message ?? e}`);
    }
  }
  disk.dead = true;
  /* at halt the root filesystem is already gone, and the nodes with it */
  if (!halting) for (const b of disk.bdevs) await devtmpfsRemove(b);
  await disk.queue.drain();
  disk.queue.dying = true;
  disk.queue.tagWq.wakeUpAll();
  for (const b of disk.bdevs) {
    await kill_bdev(b);
    bdevUnregister(b);
    freeDevt(b.bd_dev);
  }
  disks.delete(disk.disk_name);
  usedIndex.delete(disk.index);
}

/* ---- /dev nodes (drivers/base/devtmpfs.c's job) ---- */

let devtmpfsEnabled = true;
/** Tests that run the block layer without a root filesystem turn node creation off. */
export function setDevtmpfs(on: boolean): void { devtmpfsEnabled = on; }

async function devtmpfsCreate(b: block_device): Promise<void> {
  if (!devtmpfsEnabled) return;
  try {
    try { await vfsMkdirPath('/dev', 0o755); } catch (e) { if (!(isErrno(e) && e.errno === EEXIST)) throw e; }
    await vfsMknodPath(`/dev/${b.bd_name}`, S_IFBLK | 0o660, b.bd_dev);
  } catch (e) {
    if (isErrno(e) && e.errno === EEXIST) return;
    pr_err(`devtmpfs: /dev/${b.bd_name}: ${(e as Error)?.message ?? e}`);
  }
}

async function devtmpfsRemove(b: block_device): Promise<void> {
  if (!devtmpfsEnabled) return;
  try { await vfsUnlinkPath(`/dev/${b.bd_name}`); } catch (e) {
    if (isErrno(e) && e.errno === ENOENT) return;
    pr_err(`devtmpfs: removing /dev/${b.bd_name}: ${(e as Error)?.message ?? e}`);
  }
}

/** Forget every disk (boot). */
export function genhdReset(): void {
  disks.clear();
  usedIndex.clear();
  extMinors = new Set();
}
initcall(INIT_CORE, 'genhd', genhdReset);
