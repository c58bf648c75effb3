/*
 * Partition-table scanning, as Linux's block/partitions/core.c + check.h do it: a
 * `parsed_partitions` state handed to each table parser in turn (GPT first, then msdos),
 * the first parser that recognises the disk wins, then the blk_add_partition() checks
 * against the device size.
 *
 * Pure kernel code: it reaches the disk only through PartitionSource.read, which in the kernel
 * sleeps on block I/O and in tests reads an image file. Everything read is hostile: parsers
 * may only produce warnings and a shorter list, never an exception, a loop without end or an
 * allocation the table's numbers ask for.
 *
 * Units, as Linux: partition start/size are in 512-byte sectors whatever the logical block
 * size; PartitionSource.read and GPT LBAs are in logical blocks (sectorSize bytes).
 */
import { efi_partition } from './efi.js';
import { msdos_partition } from './msdos.js';

export interface PartitionSource {
  /** Logical block size in bytes: a power of two, 512..65536. */
  sectorSize: number;
  /** Device size in logical blocks. */
  sectors: number;
  /**
   * Reads `count` logical blocks from block `lba`; may reject on an I/O error. The scanner
   * never writes into the returned bytes.
   */
  read(lba: number, count: number): Promise<Uint8Array>;
}

export interface Partition {
  /** Partition number as Linux numbers it (sdaN): msdos 1-4 primary, 5.. logical; GPT entry index + 1. */
  no: number;
  /** Start and length in 512-byte sectors. */
  start: number;
  size: number;
  /** msdos: the system indicator byte; GPT: the partition type GUID, lower case. */
  type: number | string;
  /** GPT partition name. */
  name?: string;
  /** GPT: unique partition GUID; msdos: "<disk signature>-<partno>" as Linux's PARTUUID. */
  uuid?: string;
  /** msdos: boot indicator 0x80; GPT: attribute bit 2 (legacy BIOS bootable). */
  bootable?: boolean;
}

export interface ScanOptions {
  /**
   * Linux's `gpt` command-line parameter: accept a GPT even without a valid protective MBR.
   * (Falling back to the backup header at the last LBA when the primary is bad is always on
   * here, unlike Linux, which needs `gpt` for it; see efi.ts.)
   */
  force_gpt?: boolean;
}

/** DISK_MAX_PARTS: slots 0..255, slot 0 being the whole disk. */
export const DISK_MAX_PARTS = 256;

/** What Linux keeps per slot in struct parsed_partitions.parts[]. */
export interface parsed_partition {
  from: number;
  size: number;
  type: number | string;
  name?: string;
  uuid?: string;
  bootable?: boolean;
}

/** The state each table parser gets (struct parsed_partitions in check.h). */
export class parsed_partitions {
  readonly parts = new Map<number, parsed_partition>();
  /** Next free slot for msdos logical partitions. */
  next = 1;
  readonly limit = DISK_MAX_PARTS;
  /** A parser asked for a sector past the end of the device. */
  access_beyond_eod = false;
  /** Logical block size and its ratio to 512-byte sectors. */
  readonly ssz: number;
  readonly sector_size: number;
  /** Device size in 512-byte sectors (get_capacity()). */
  readonly capacity: number;
  /** Last logical block (last_lba() in efi.c). */
  readonly lastlba: number;

  /* One logical block cached: msdos reads sector 0 and each EBR, GPT reads LBA 0 and 1;
   * Linux gets the same effect from the page cache. */
  private cachedLba = -1;
  private cached: Uint8Array | null = null;

  constructor(
    readonly src: PartitionSource,
    readonly warn: (msg: string) => void,
    readonly opts: ScanOptions,
  ) {
    this.ssz = src.sectorSize;
    this.sector_size = src.sectorSize / 512;
    this.capacity = src.sectors * this.sector_size;
    this.lastlba = src.sectors - 1;
  }

  /**
   * Reads `count` whole logical blocks from `lba`, or null if they are not all on the device
   * or the read failed. Callers bound `count`: this is the only place bytes are allocated
   * on a table's say-so.
   */
  async read_blocks(lba: number, count: number): Promise<Uint8Array | null> {
    if (!Number.isSafeInteger(lba) || !Number.isSafeInteger(count) || lba < 0 || count <= 0)
      return null;
    if (lba > this.lastlba || count > this.src.sectors - lba) {
      this.access_beyond_eod = true;
      return null;
    }
    if (count === 1 && lba === this.cachedLba) return this.cached;
    let data: Uint8Array;
    try {
      data = await this.src.read(lba, count);
    } catch (e) {
      this.warn(`partitions: read error at block ${lba}: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
    if (!(data instanceof Uint8Array) || data.length < count * this.ssz) {
      this.warn(`partitions: short read at block ${lba}`);
      return null;
    }
    if (count === 1) {
      this.cachedLba = lba;
      this.cached = data;
    }
    return data;
  }

  /** read_part_sector(): the 512 bytes of 512-byte sector `n`, or null past the end. */
  async read_part_sector(n: number): Promise<Uint8Array | null> {
    if (!Number.isSafeInteger(n) || n < 0) return null;
    if (n >= this.capacity) {
      this.access_beyond_eod = true;
      return null;
    }
    const lba = Math.floor(n / this.sector_size);
    const block = await this.read_blocks(lba, 1);
    if (!block) return null;
    const off = (n % this.sector_size) * 512;
    /* A copy (not .slice(): a Node Buffer's slice is a view): callers keep sector 0 across
     * later reads, and the source may reuse its buffers. */
    const sect = new Uint8Array(512);
    sect.set(block.subarray(off, off + 512));
    return sect;
  }

  /** put_partition(): fills slot n if it is below the limit. */
  put_partition(n: number, from: number, size: number, info: Omit<parsed_partition, 'from' | 'size'>): void {
    if (n < this.limit) this.parts.set(n, { from, size, ...info });
  }
}

/** A table parser: < 0 I/O error, 0 not mine, > 0 recognised (possibly with no partitions). */
type check_fn = (state: parsed_partitions) => Promise<number>;

/* Order matters as in Linux's check_part[]: GPT must claim a disk before msdos, which would
 * otherwise read the protective MBR's 0xEE entry. */
const check_part: check_fn[] = [efi_partition, msdos_partition];

function valid_source(src: PartitionSource): string | null {
  const ss = src.sectorSize;
  if (!Number.isInteger(ss) || ss < 512 || ss > 65536 || (ss & (ss - 1)) !== 0)
    return `bad logical block size ${ss}`;
  if (!Number.isSafeInteger(src.sectors) || src.sectors < 0 || src.sectors * ss > Number.MAX_SAFE_INTEGER)
    return `bad device size ${src.sectors}`;
  return null;
}

/**
 * Scans `src` for a partition table and returns its partitions ordered by number, after
 * the checks Linux's blk_add_partition() makes: a partition starting past the end of the
 * device is dropped, one running past it is truncated, each with a warning.
 */
export async function scan_partitions(
  src: PartitionSource,
  warn: (msg: string) => void,
  opts: ScanOptions = {},
): Promise<Partition[]> {
  const bad = valid_source(src);
  if (bad) {
    warn(`partitions: ${bad}`);
    return [];
  }
  if (src.sectors === 0) return [];

  /* check_partition(): the first parser returning > 0 wins; an I/O error from one is only
   * remembered, so the others still get their turn. */
  let state: parsed_partitions | null = null;
  let err = 0;
  let beyond_eod = false;
  for (const check of check_part) {
    const s = new parsed_partitions(src, warn, opts);
    let res: number;
    try {
      res = await check(s);
    } catch (e) {
      /* A parser bug must not take the disk down with it. */
      warn(`partitions: parser failed: ${e instanceof Error ? e.message : String(e)}`);
      res = -1;
    }
    beyond_eod ||= s.access_beyond_eod;
    if (res > 0) {
      state = s;
      break;
    }
    if (res < 0) err = res;
  }
  if (!state) {
    if (beyond_eod) warn('partitions: partition table beyond EOD');
    else if (err) warn('partitions: unable to read partition table');
    return [];
  }

  const out: Partition[] = [];
  const slots = [...state.parts.keys()].sort((a, b) => a - b);
  for (const no of slots) {
    const p = state.parts.get(no)!;
    if (no < 1 || !p.size) continue;
    let size = p.size;
    if (p.from >= state.capacity) {
      warn(`partitions: p${no} start ${p.from} is beyond EOD, disabled`);
      continue;
    }
    if (p.from + size > state.capacity) {
      warn(`partitions: p${no} size ${size} extends beyond EOD, truncated`);
      size = state.capacity - p.from;
    }
    const part: Partition = { no, start: p.from, size, type: p.type };
    if (p.name !== undefined) part.name = p.name;
    if (p.uuid !== undefined) part.uuid = p.uuid;
    if (p.bootable !== undefined) part.bootable = p.bootable;
    out.push(part);
  }
  return out;
}
