/*
 * The PC (MBR, "msdos") partition table, as Linux's block/partitions/msdos.c reads it: four
 * primary entries in sector 0, numbered 1-4; extended partitions (types 0x05, 0x0f, 0x85)
 * hold a chain of EBRs, each describing one logical partition (numbered from 5) and a link
 * to the next EBR. A protective MBR (type 0xEE) belongs to efi.ts.
 *
 * Not done here (Linux's second pass): BSD/Solaris/UnixWare/Minix sub-partitions inside a
 * primary, AIX and Disk Manager/EZ-Drive special cases.
 */
import type { parsed_partitions } from './check.js';

/* Sector 0 / EBR layout. */
const MSDOS_LABEL_MAGIC_OFF = 510; /* 0x55 0xAA */
const MSDOS_DISKSIG_OFF = 0x1b8; /* u32 disk signature (PARTUUID prefix) */
const MSDOS_PART_TABLE_OFF = 0x1be; /* 4 entries of 16 bytes */
const MSDOS_PART_SIZE = 16;
/* Entry fields. */
const P_BOOT_IND = 0; /* 0x80 active, 0 inactive, anything else: not a partition table */
const P_SYS_IND = 4; /* partition type */
const P_START_SECT = 8; /* u32 LE, relative: see parse_extended() */
const P_NR_SECTS = 12; /* u32 LE */

/* Partition types with a meaning to the parser. */
export const DOS_EXTENDED_PARTITION = 0x05;
export const WIN98_EXTENDED_PARTITION = 0x0f;
export const LINUX_EXTENDED_PARTITION = 0x85;
export const EFI_PMBR_OSTYPE_EFI_GPT = 0xee;

/* FAT boot sector fields, to tell a partitionless FAT volume from a broken table. */
const FAT_RESERVED_OFF = 14; /* u16 reserved sectors */
const FAT_FATS_OFF = 16; /* u8 number of FATs */
const FAT_MEDIA_OFF = 21; /* u8 media descriptor */

/* An EBR chain that yields no data partition for this many links is garbage (Linux: loopct). */
const MAX_EMPTY_LINKS = 100;

interface msdos_partition_entry {
  boot_ind: number;
  sys_ind: number;
  start_sect: number;
  nr_sects: number;
}

function le32(d: Uint8Array, off: number): number {
  return (d[off] | (d[off + 1] << 8) | (d[off + 2] << 16) | (d[off + 3] << 24)) >>> 0;
}

function entry(d: Uint8Array, slot: number): msdos_partition_entry {
  const o = MSDOS_PART_TABLE_OFF + slot * MSDOS_PART_SIZE;
  return {
    boot_ind: d[o + P_BOOT_IND],
    sys_ind: d[o + P_SYS_IND],
    start_sect: le32(d, o + P_START_SECT),
    nr_sects: le32(d, o + P_NR_SECTS),
  };
}

export function msdos_magic_present(d: Uint8Array): boolean {
  return d[MSDOS_LABEL_MAGIC_OFF] === 0x55 && d[MSDOS_LABEL_MAGIC_OFF + 1] === 0xaa;
}

export function is_extended_partition(p: msdos_partition_entry): boolean {
  return (
    p.sys_ind === DOS_EXTENDED_PARTITION ||
    p.sys_ind === WIN98_EXTENDED_PARTITION ||
    p.sys_ind === LINUX_EXTENDED_PARTITION
  );
}

function fat_valid_media(media: number): boolean {
  return media >= 0xf8 || media === 0xf0;
}

/* Linux's PARTUUID for msdos partitions: disk signature, then the partition number. */
function set_uuid(disksig: number, partno: number): string {
  return `${disksig.toString(16).padStart(8, '0')}-${partno.toString(16).padStart(2, '0')}`;
}

/**
 * Follows the EBR chain of the extended partition at [first_sector, +first_size), in
 * 512-byte sectors. Data-partition offsets in an EBR are relative to that EBR; the link to
 * the next EBR is relative to the start of the outermost extended partition.
 */
async function parse_extended(
  state: parsed_partitions,
  first_sector: number,
  first_size: number,
  disksig: number,
): Promise<void> {
  const sector_size = state.sector_size;
  let this_sector = first_sector;
  let this_size = first_size;
  let loopct = 0;
  /* Linux bounds a looping chain only by the slot limit, filling the remaining slots with
   * copies of the same logical partitions; we stop at the first EBR seen twice. */
  const visited = new Set<number>();

  for (;;) {
    if (++loopct > MAX_EMPTY_LINKS) {
      state.warn(`msdos: more than ${MAX_EMPTY_LINKS} empty EBRs in a row, chain abandoned`);
      return;
    }
    if (state.next >= state.limit) return;
    if (visited.has(this_sector)) {
      state.warn(`msdos: EBR chain loops back to sector ${this_sector}, stopped`);
      return;
    }
    visited.add(this_sector);

    const data = await state.read_part_sector(this_sector);
    if (!data) {
      state.warn(`msdos: cannot read EBR at sector ${this_sector}, chain stopped`);
      return;
    }
    if (!msdos_magic_present(data)) return;

    /* Usually entry 0 is the data partition and entry 1 the link, but DR-DOS may put the
     * link first and OS/2 uses all four: take every data entry, then the first link. */
    for (let i = 0; i < 4; i++) {
      const p = entry(data, i);
      if (!p.nr_sects || is_extended_partition(p)) continue;
      const offs = p.start_sect * sector_size;
      const size = p.nr_sects * sector_size;
      const next = this_sector + offs;
      /* Entries 3 and 4 often hold leftovers: keep them only if they fit inside both this
       * EBR's extent and the whole extended partition. */
      if (i >= 2) {
        if (offs + size > this_size) continue;
        if (next < first_sector) continue;
        if (next + size > first_sector + first_size) continue;
      }
      state.put_partition(state.next, next, size, {
        type: p.sys_ind,
        uuid: set_uuid(disksig, state.next),
        bootable: p.boot_ind === 0x80,
      });
      loopct = 0;
      if (++state.next >= state.limit) return;
    }

    let link: msdos_partition_entry | null = null;
    for (let i = 0; i < 4; i++) {
      const p = entry(data, i);
      if (p.nr_sects && is_extended_partition(p)) {
        link = p;
        break;
      }
    }
    if (!link) return;
    this_sector = first_sector + link.start_sect * sector_size;
    this_size = link.nr_sects * sector_size;
  }
}

/** msdos_partition(): 1 if sector 0 holds a PC partition table (or a bare FAT volume), else 0. */
export async function msdos_partition(state: parsed_partitions): Promise<number> {
  const sector_size = state.sector_size;
  const data = await state.read_part_sector(0);
  if (!data) return -1;
  if (!msdos_magic_present(data)) return 0;

  /* 0x55AA is also the signature of a FAT boot sector: a table whose boot indicators are
   * neither 0 nor 0x80 is not a table. A FAT volume is "recognised" with no partitions, so
   * no later parser mistakes it for anything else. */
  for (let slot = 0; slot < 4; slot++) {
    const p = entry(data, slot);
    if (p.boot_ind !== 0 && p.boot_ind !== 0x80) {
      const reserved = data[FAT_RESERVED_OFF] | (data[FAT_RESERVED_OFF + 1] << 8);
      if (slot === 0 && reserved && data[FAT_FATS_OFF] && fat_valid_media(data[FAT_MEDIA_OFF]))
        return 1;
      return 0;
    }
  }

  /* A GPT disk whose GPT efi.ts rejected: its protective entry must not be read as data. */
  for (let slot = 0; slot < 4; slot++)
    if (entry(data, slot).sys_ind === EFI_PMBR_OSTYPE_EFI_GPT) return 0;

  const disksig = le32(data, MSDOS_DISKSIG_OFF);
  state.next = 5;
  for (let slot = 1; slot <= 4; slot++) {
    const p = entry(data, slot - 1);
    const start = p.start_sect * sector_size;
    const size = p.nr_sects * sector_size;
    if (!size) continue;
    const info = { type: p.sys_ind, uuid: set_uuid(disksig, slot), bootable: p.boot_ind === 0x80 };
    if (is_extended_partition(p)) {
      /* The extended partition itself is exposed with only 1 KiB (or one logical block),
       * room for a boot loader but too small for anyone to mkfs over the logical ones. */
      const n = Math.min(size, Math.max(sector_size, 2));
      state.put_partition(slot, start, n, info);
      await parse_extended(state, start, size, disksig);
      continue;
    }
    state.put_partition(slot, start, size, info);
  }
  return 1;
}
