/*
 * The GUID Partition Table (UEFI spec, "GUID Partition Table (GPT) Disk Layout"), as Linux's
 * block/partitions/efi.c reads it: a protective MBR in LBA 0, the primary header in LBA 1
 * pointing at its partition entry array, and a backup header (normally in the last LBA)
 * with its own copy of the array. Both are checked the way is_gpt_valid() checks them;
 * entries are numbered by their index in the array, unused ones leave gaps.
 *
 * One deliberate difference: Linux reads the backup header at the last LBA only when booted
 * with `gpt`, so a damaged primary hides every partition. We always fall back to it (with a
 * warning), as partx/sgdisk do; ScanOptions.force_gpt only lifts the protective-MBR test.
 */
import type { parsed_partitions } from './check.js';
import { efi_crc32 } from '../../lib/crc32.js';
import { EFI_PMBR_OSTYPE_EFI_GPT, msdos_magic_present } from './msdos.js';

const GPT_PRIMARY_PARTITION_TABLE_LBA = 1;
/* "EFI PART", little-endian. */
const GPT_HEADER_SIGNATURE = [0x45, 0x46, 0x49, 0x20, 0x50, 0x41, 0x52, 0x54];

/* gpt_header field offsets (UEFI spec table "GPT Header"). */
const GPT_SIGNATURE = 0; /* u64 */
const GPT_HEADER_SIZE = 12; /* u32, >= 92 and <= logical block size */
const GPT_HEADER_CRC32 = 16; /* u32, over header_size bytes with this field zeroed */
const GPT_MY_LBA = 24; /* u64, where this header is */
const GPT_ALTERNATE_LBA = 32; /* u64, where the other header is */
const GPT_FIRST_USABLE_LBA = 40; /* u64 */
const GPT_LAST_USABLE_LBA = 48; /* u64 */
const GPT_DISK_GUID = 56; /* 16 bytes */
const GPT_PARTITION_ENTRY_LBA = 72; /* u64, first block of the entry array */
const GPT_NUM_PARTITION_ENTRIES = 80; /* u32 */
const GPT_SIZEOF_PARTITION_ENTRY = 84; /* u32, 128 for Linux */
const GPT_PARTITION_ENTRY_ARRAY_CRC32 = 88; /* u32, over num * sizeof bytes */
const GPT_HEADER_MIN_SIZE = 92; /* sizeof(gpt_header) without the reserved tail */

/* gpt_entry field offsets. */
const PTE_TYPE_GUID = 0; /* 16 bytes, all zero = unused */
const PTE_UNIQUE_GUID = 16; /* 16 bytes */
const PTE_STARTING_LBA = 32; /* u64 */
const PTE_ENDING_LBA = 40; /* u64, inclusive */
const PTE_ATTRIBUTES = 48; /* u64 */
const PTE_NAME = 56; /* 36 UTF-16LE code units */
const PTE_NAME_UNITS = 36;
const GPT_ENTRY_SIZE = 128; /* sizeof(gpt_entry): Linux accepts no other size */
const GPT_ATTR_LEGACY_BIOS_BOOTABLE = 1 << 2;

/* Linux refuses entry arrays larger than one kmalloc can give (KMALLOC_MAX_SIZE, 4 MiB on
 * x86-64); it also bounds what a hostile header can make us read and allocate. */
const GPT_MAX_ENTRY_ARRAY_BYTES = 4 << 20;

/* is_pmbr_valid() results. */
const GPT_MBR_PROTECTIVE = 1;
const GPT_MBR_HYBRID = 2;

interface gpt_header {
  header_size: number;
  my_lba: number;
  alternate_lba: number;
  first_usable_lba: number;
  last_usable_lba: number;
  disk_guid: string;
  partition_entry_lba: number;
  num_partition_entries: number;
  sizeof_partition_entry: number;
  partition_entry_array_crc32: number;
}

interface gpt {
  header: gpt_header;
  ptes: Uint8Array;
}

function le32(d: Uint8Array, off: number): number {
  return (d[off] | (d[off + 1] << 8) | (d[off + 2] << 16) | (d[off + 3] << 24)) >>> 0;
}

/* u64 as a number: exact below 2^53, and rounding is monotonic above, so comparisons
 * against device sizes (always < 2^53) still come out right. */
function le64(d: Uint8Array, off: number): number {
  return le32(d, off) + le32(d, off + 4) * 0x1_0000_0000;
}

function hex(d: Uint8Array, from: number, to: number, step: 1 | -1): string {
  let s = '';
  for (let i = from; i !== to; i += step) s += d[i].toString(16).padStart(2, '0');
  return s;
}

/** efi_guid_to_str() / %pUl: the first three fields are little-endian on disk. */
export function efi_guid_to_str(d: Uint8Array, off: number): string {
  return [
    hex(d, off + 3, off - 1, -1),
    hex(d, off + 5, off + 3, -1),
    hex(d, off + 7, off + 5, -1),
    hex(d, off + 8, off + 10, 1),
    hex(d, off + 10, off + 16, 1),
  ].join('-');
}

function guid_is_null(d: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (d[off + i]) return false;
  return true;
}

/* Linux squashes names to 7-bit ASCII; we keep them as the UTF-16 they are, up to the first
 * NUL, with unpaired surrogates replaced so the result is a well-formed string. */
function utf16le_name(d: Uint8Array, off: number, units: number): string {
  const cu: number[] = [];
  for (let i = 0; i < units; i++) {
    const c = d[off + 2 * i] | (d[off + 2 * i + 1] << 8);
    if (c === 0) break;
    cu.push(c);
  }
  for (let i = 0; i < cu.length; i++) {
    const c = cu[i];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < cu.length && cu[i + 1] >= 0xdc00 && cu[i + 1] <= 0xdfff) {
      i++;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) cu[i] = 0xfffd;
  }
  return String.fromCharCode(...cu);
}

/**
 * is_pmbr_valid(): 0, GPT_MBR_PROTECTIVE or GPT_MBR_HYBRID. A protective entry is type 0xEE
 * starting at LBA 1; any other non-empty type beside it makes the MBR hybrid. The entry's
 * size is not checked: images dd'ed onto a larger disk keep their old one.
 */
function is_pmbr_valid(mbr: Uint8Array): number {
  if (!msdos_magic_present(mbr)) return 0;
  let found = false;
  for (let i = 0; i < 4; i++) {
    const o = 0x1be + 16 * i;
    if (mbr[o + 4] === EFI_PMBR_OSTYPE_EFI_GPT && le32(mbr, o + 8) === GPT_PRIMARY_PARTITION_TABLE_LBA) {
      found = true;
      break;
    }
  }
  if (!found) return 0;
  for (let i = 0; i < 4; i++) {
    const t = mbr[0x1be + 16 * i + 4];
    if (t !== EFI_PMBR_OSTYPE_EFI_GPT && t !== 0) return GPT_MBR_HYBRID;
  }
  return GPT_MBR_PROTECTIVE;
}

/**
 * is_gpt_valid(): reads the header at `lba` and its entry array and checks them; returns
 * the table or the reason it is not one.
 */
async function is_gpt_valid(state: parsed_partitions, lba: number): Promise<gpt | string> {
  if (!(lba >= 0 && lba <= state.lastlba)) return `header LBA ${lba} is beyond the device`;
  const block = await state.read_blocks(lba, 1);
  if (!block) return `cannot read header at LBA ${lba}`;

  for (let i = 0; i < 8; i++)
    if (block[GPT_SIGNATURE + i] !== GPT_HEADER_SIGNATURE[i]) return 'header signature is wrong';

  const header_size = le32(block, GPT_HEADER_SIZE);
  if (header_size > state.ssz) return `header size ${header_size} is larger than a block`;
  if (header_size < GPT_HEADER_MIN_SIZE) return `header size ${header_size} is too small`;

  /* The CRC is taken with its own field zeroed: work on a copy, never on the source's bytes. */
  const hdr = new Uint8Array(header_size);
  hdr.set(block.subarray(0, header_size));
  const origcrc = le32(hdr, GPT_HEADER_CRC32);
  hdr.fill(0, GPT_HEADER_CRC32, GPT_HEADER_CRC32 + 4);
  const crc = efi_crc32(hdr);
  if (crc !== origcrc)
    return `header CRC is wrong (${crc.toString(16)} != ${origcrc.toString(16)})`;

  const h: gpt_header = {
    header_size,
    my_lba: le64(block, GPT_MY_LBA),
    alternate_lba: le64(block, GPT_ALTERNATE_LBA),
    first_usable_lba: le64(block, GPT_FIRST_USABLE_LBA),
    last_usable_lba: le64(block, GPT_LAST_USABLE_LBA),
    disk_guid: efi_guid_to_str(block, GPT_DISK_GUID),
    partition_entry_lba: le64(block, GPT_PARTITION_ENTRY_LBA),
    num_partition_entries: le32(block, GPT_NUM_PARTITION_ENTRIES),
    sizeof_partition_entry: le32(block, GPT_SIZEOF_PARTITION_ENTRY),
    partition_entry_array_crc32: le32(block, GPT_PARTITION_ENTRY_ARRAY_CRC32),
  };

  if (h.my_lba !== lba) return `my_lba ${h.my_lba} is not where the header is (${lba})`;
  if (h.first_usable_lba > state.lastlba) return `first_usable_lba ${h.first_usable_lba} is beyond the device`;
  if (h.last_usable_lba > state.lastlba) return `last_usable_lba ${h.last_usable_lba} is beyond the device`;
  if (h.last_usable_lba < h.first_usable_lba) return 'last_usable_lba is below first_usable_lba';
  if (h.sizeof_partition_entry !== GPT_ENTRY_SIZE)
    return `partition entry size ${h.sizeof_partition_entry} is not ${GPT_ENTRY_SIZE}`;

  const pt_size = h.num_partition_entries * h.sizeof_partition_entry;
  if (pt_size === 0) return 'partition entry array is empty';
  if (pt_size > GPT_MAX_ENTRY_ARRAY_BYTES) return `partition entry array of ${pt_size} bytes is too large`;

  const blocks = Math.ceil(pt_size / state.ssz);
  if (h.partition_entry_lba > state.lastlba || blocks > state.src.sectors - h.partition_entry_lba)
    return `partition entry array at LBA ${h.partition_entry_lba} is beyond the device`;
  const arr = await state.read_blocks(h.partition_entry_lba, blocks);
  if (!arr) return `cannot read partition entry array at LBA ${h.partition_entry_lba}`;
  const ptes = arr.subarray(0, pt_size);

  if (efi_crc32(ptes) !== h.partition_entry_array_crc32) return 'partition entry array CRC is wrong';
  return { header: h, ptes };
}

/** compare_gpts(): both headers are valid; say where they disagree with each other. */
function compare_gpts(state: parsed_partitions, p: gpt_header, a: gpt_header): void {
  const errs: string[] = [];
  if (p.my_lba !== a.alternate_lba)
    errs.push(`primary header LBA ${p.my_lba} != alternate header's alternate_lba ${a.alternate_lba}`);
  if (p.alternate_lba !== a.my_lba)
    errs.push(`primary header's alternate_lba ${p.alternate_lba} != alternate header LBA ${a.my_lba}`);
  if (p.first_usable_lba !== a.first_usable_lba) errs.push('first_usable_lba differs between headers');
  if (p.last_usable_lba !== a.last_usable_lba) errs.push('last_usable_lba differs between headers');
  if (p.disk_guid !== a.disk_guid) errs.push('disk GUID differs between headers');
  if (p.num_partition_entries !== a.num_partition_entries)
    errs.push('num_partition_entries differs between headers');
  if (p.sizeof_partition_entry !== a.sizeof_partition_entry)
    errs.push('sizeof_partition_entry differs between headers');
  if (p.partition_entry_array_crc32 !== a.partition_entry_array_crc32)
    errs.push('partition entry arrays differ between headers');
  if (p.alternate_lba !== state.lastlba)
    errs.push('primary header thinks the alternate header is not at the end of the disk');
  if (a.my_lba !== state.lastlba) errs.push('alternate GPT header not at the end of the disk');
  for (const e of errs) state.warn(`GPT: ${e}`);
}

/**
 * find_valid_gpt(): the primary table if it is valid, else the backup; null if the disk
 * does not carry a (readable) GPT.
 */
async function find_valid_gpt(state: parsed_partitions): Promise<gpt | null> {
  if (!state.opts.force_gpt) {
    const mbr = await state.read_part_sector(0);
    /* Without a protective MBR this is not a GPT disk; say nothing, msdos may claim it. */
    if (!mbr || !is_pmbr_valid(mbr)) return null;
  }

  const pgpt = await is_gpt_valid(state, GPT_PRIMARY_PARTITION_TABLE_LBA);
  let agpt: gpt | string = 'not read';
  if (typeof pgpt !== 'string') agpt = await is_gpt_valid(state, pgpt.header.alternate_lba);
  if (typeof agpt === 'string' && (typeof pgpt === 'string' || pgpt.header.alternate_lba !== state.lastlba))
    agpt = await is_gpt_valid(state, state.lastlba);

  if (typeof pgpt === 'string' && typeof agpt === 'string') {
    state.warn(`GPT: no valid GPT: primary: ${pgpt}; alternate: ${agpt}`);
    return null;
  }
  if (typeof pgpt !== 'string' && typeof agpt !== 'string') compare_gpts(state, pgpt.header, agpt.header);

  if (typeof pgpt !== 'string') {
    if (typeof agpt === 'string') state.warn(`GPT: Alternate GPT is invalid (${agpt}), using primary GPT.`);
    return pgpt;
  }
  state.warn(`GPT: Primary GPT is invalid (${pgpt}), using alternate GPT.`);
  return agpt as gpt;
}

/** efi_partition(): 1 with the partitions filled in if the disk has a valid GPT, else 0. */
export async function efi_partition(state: parsed_partitions): Promise<number> {
  const g = await find_valid_gpt(state);
  if (!g) return 0;
  const { header, ptes } = g;
  const ssz = state.sector_size;
  /* Slot numbers are entry index + 1 and stop below the slot limit, as in Linux. */
  const n = Math.min(header.num_partition_entries, state.limit - 1);
  for (let i = 0; i < n; i++) {
    const o = i * GPT_ENTRY_SIZE;
    if (guid_is_null(ptes, o + PTE_TYPE_GUID)) continue;
    const start = le64(ptes, o + PTE_STARTING_LBA);
    const end = le64(ptes, o + PTE_ENDING_LBA);
    if (start > state.lastlba || end > state.lastlba) {
      state.warn(`GPT: partition ${i + 1} (LBA ${start}..${end}) is beyond the end of the device, ignored`);
      continue;
    }
    if (end < start) {
      state.warn(`GPT: partition ${i + 1} ends (LBA ${end}) before it starts (LBA ${start}), ignored`);
      continue;
    }
    const attrs = le32(ptes, o + PTE_ATTRIBUTES);
    state.put_partition(i + 1, start * ssz, (end - start + 1) * ssz, {
      type: efi_guid_to_str(ptes, o + PTE_TYPE_GUID),
      uuid: efi_guid_to_str(ptes, o + PTE_UNIQUE_GUID),
      name: utf16le_name(ptes, o + PTE_NAME, PTE_NAME_UNITS),
      bootable: (attrs & GPT_ATTR_LEGACY_BIOS_BOOTABLE) !== 0,
    });
  }
  for (let i = n; i < header.num_partition_entries; i++) {
    if (!guid_is_null(ptes, i * GPT_ENTRY_SIZE + PTE_TYPE_GUID)) {
      state.warn(`GPT: entries from ${i + 1} on are past the ${state.limit - 1}-partition limit, ignored`);
      break;
    }
  }
  return 1;
}
