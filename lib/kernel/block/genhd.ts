/*
 * Disks (block/genhd.c, block/partitions/core.c's glue): a driver registers a disk with
 * addDisk; it gets a name (vda, vdb, ... vdz, vdaa like virtio_blk's), device numbers
 * (major 254, 16 minors per disk; partitions past 15 get extended numbers on major 259 as
 * Linux's blkext), a request queue, a BlockDevice for the whole disk, its partition table
 * read (partitions/check.ts parses; we read through the block layer), a BlockDevice per
 * partition, and /dev nodes (devtmpfs-like, through the VFS's mknod).
 *
 * delGendisk undoes it: the disk is marked dead (new opens fail with ENXIO, new bios with
 * an I/O error), its nodes disappear, its caches are written back and dropped, in-flight
 * requests drain. The caller refuses while the disk is mounted (EBUSY).
 */
import { pr_err, pr_info, pr_warn } from '../kernel/printk.js';
import { INIT_CORE, initcall } from '../arch/setup.js';
import { err, isErrno } from '../include/errno.js';
import { EBUSY, EEXIST, ENOENT, S_IFBLK, makedev } from '../include/uapi.js';
import { REQ_OP_READ, type BlockDriver } from '../include/blk.js';
import { RequestQueue } from './blk-core.js';
import { BlockDevice, bdevRegister, bdevUnregister, killBdev, syncBlockdev } from './bdev.js';
import { bdevRwSectors } from './bio.js';
import { scanPartitions, type Partition } from './partitions/check.js';
import { vfsMkdirPath, vfsMknodPath, vfsUnlinkPath } from '../fs/namei.js';

/** virtio_blk's major (dynamic in Linux; 254 as on most systems). */
export const VIRTBLK_MAJOR = 254;
/** BLOCK_EXT_MAJOR: numbers for partitions beyond a disk's minors. */
export const BLOCK_EXT_MAJOR = 259;
/** virtio_blk's PART_BITS: 16 minors per disk (the disk and 15 partitions). */
export const PART_BITS = 4;

/** struct gendisk. */
export class Gendisk {
  readonly minors = 1 << PART_BITS;
  readonly queue: RequestQueue;
  part0!: BlockDevice;
  /** Partitions by number. */
  readonly parts = new Map<number, BlockDevice>();
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
    this.queue = new RequestQueue(driver, disk_name);
  }
  get readOnly(): boolean { return this.driver.readOnly; }
  get logicalBlockSize(): number { return this.driver.logicalBlockSize; }
  /** get_capacity: 512-byte sectors. */
  get capacity(): number { return this.driver.capacity(); }
  /** Every BlockDevice of the disk, the whole disk first. */
  get bdevs(): BlockDevice[] { return [this.part0, ...[...this.parts.keys()].sort((a, b) => a - b).map((n) => this.parts.get(n)!)]; }
}

const disks = new Map<string, Gendisk>();
const usedIndex = new Set<number>();
let extMinors = new Set<number>();

export function gendisks(): Gendisk[] { return [...disks.values()]; }
export function diskByName(name: string): Gendisk | null { return disks.get(name) ?? null; }

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
export function partitionName(disk: string, partno: number): string {
  return /\d$/.test(disk) ? `${disk}p${partno}` : `${disk}${partno}`;
}

function allocExtMinor(): number {
  let m = 0;
  while (extMinors.has(m)) m++;
  extMinors.add(m);
  return m;
}

/** Device number of partition `partno` of `disk`. */
function partDevt(disk: Gendisk, partno: number): number {
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
export async function addDisk(driver: BlockDriver, prefix = 'vd'): Promise<Gendisk> {
  let index = 0;
  while (usedIndex.has(index)) index++;
  usedIndex.add(index);
  const name = diskNameFormat(prefix, index);
  const disk = new Gendisk(name, index, VIRTBLK_MAJOR, index * 2 ** PART_BITS, driver);
  const nr = driver.capacity();
  disk.part0 = new BlockDevice(disk, makedev(disk.major, disk.first_minor), name, 0, 0, nr, null);
  disks.set(name, disk);
  bdevRegister(disk.part0);
  await rescanPartitions(disk);
  await devtmpfsCreate(disk.part0);
  for (const p of disk.parts.values()) await devtmpfsCreate(p);
  return disk;
}

/** Read the partition table and create the partitions' devices (blk_add_partitions). */
async function rescanPartitions(disk: Gendisk): Promise<void> {
  const lbs = disk.logicalBlockSize;
  const perBlock = lbs / 512;
  const part0 = disk.part0;
  const warn = (msg: string) => pr_warn(`${disk.disk_name}: ${msg}`);
  let parts: Partition[] = [];
  try {
    parts = await scanPartitions({
      sectorSize: lbs,
      sectors: Math.floor(disk.capacity / perBlock),
      read: async (lba: number, count: number) => {
        const buf = new Uint8Array(count * lbs);
        await bdevRwSectors(part0, REQ_OP_READ, lba * perBlock, buf);
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
    const bdev = new BlockDevice(disk, partDevt(disk, p.no), partitionName(disk.disk_name, p.no), p.no, p.start, p.size, part0);
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
export async function blkdevRereadPart(disk: Gendisk): Promise<void> {
  for (const p of disk.parts.values()) if (p.bd_openers > 0) throw err(EBUSY);
  for (const p of [...disk.parts.values()]) {
    await devtmpfsRemove(p);
    await killBdev(p);
    bdevUnregister(p);
    freeDevt(p.bd_dev);
  }
  disk.parts.clear();
  await killBdev(disk.part0);
  await rescanPartitions(disk);
  for (const p of disk.parts.values()) await devtmpfsCreate(p);
}

/** Is anything of the disk open or claimed (mounted)? */
export function diskBusy(disk: Gendisk): boolean {
  return disk.bdevs.some((b) => b.bd_holder !== null);
}

/**
 * del_gendisk: the disk goes away. Dirty cached blocks are written while the device still
 * works, then it is marked dead, its nodes removed, its caches dropped, and outstanding
 * requests drained. EBUSY if a filesystem holds it (unless `force`).
 */
export async function delGendisk(disk: Gendisk, force = false, halting = false): Promise<void> {
  if (!force && diskBusy(disk)) throw err(EBUSY);
  for (const b of disk.bdevs) {
    try { await syncBlockdev(b); } catch (e) {
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
    await killBdev(b);
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

async function devtmpfsCreate(b: BlockDevice): Promise<void> {
  if (!devtmpfsEnabled) return;
  try {
    try { await vfsMkdirPath('/dev', 0o755); } catch (e) { if (!(isErrno(e) && e.errno === EEXIST)) throw e; }
    await vfsMknodPath(`/dev/${b.bd_name}`, S_IFBLK | 0o660, b.bd_dev);
  } catch (e) {
    if (isErrno(e) && e.errno === EEXIST) return;
    pr_err(`devtmpfs: /dev/${b.bd_name}: ${(e as Error)?.message ?? e}`);
  }
}

async function devtmpfsRemove(b: BlockDevice): Promise<void> {
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
