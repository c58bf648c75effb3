/*
 * FAT on-disk layout (include/uapi/linux/msdos_fs.h and the on-disk parts of fs/fat/fat.h):
 * constants, field offsets and the codecs of struct fat_boot_sector, struct
 * fat_boot_fsinfo, struct msdos_dir_entry and struct msdos_dir_slot.
 *
 * Pure codecs: each struct is a FieldDef table with the field names of msdos_fs.h, read and
 * written by lib/struct.ts (the codec ext4 and jbd2 use). No kernel runtime, no I/O, no
 * checks beyond what msdos_fs.h itself defines (FAT_VALID_MEDIA, IS_FREE, IS_FSINFO).
 * What the driver does with the fields lives where Linux keeps it: fat_read_bpb and the geometry in super.ts
 * (inode.c's super half), FAT entries in fatent.ts, directory records in dir.ts, long-name
 * slots in namei_vfat.ts, the fat.h inline helpers in fat.ts.
 */

import { decodeStruct, encodeStruct, type FieldDef, type StructOf } from '../../lib/struct.js';

/* ---- Constants (msdos_fs.h) ---- */

export const MSDOS_NAME = 11;
/** Size of one directory entry, long-name slot or short entry alike. */
export const MSDOS_DIR_ENTRY_SIZE = 32;
export const MSDOS_DOT = '.          ';
export const MSDOS_DOTDOT = '..         ';
/** Entry count above which Linux refuses to grow a directory (FAT_MAX_DIR_ENTRIES). */
export const FAT_MAX_DIR_ENTRIES = 65536;

export const ATTR_NONE = 0;
export const ATTR_RO = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYS = 0x04;
export const ATTR_VOLUME = 0x08;
export const ATTR_DIR = 0x10;
export const ATTR_ARCH = 0x20;
/** The attribute byte of every VFAT long-name slot: no DOS would list such an entry. */
export const ATTR_EXT = ATTR_RO | ATTR_HIDDEN | ATTR_SYS | ATTR_VOLUME;

/** NTRes bits: the base / extension of an 8.3 name is displayed in lower case (WinNT). */
export const CASE_LOWER_BASE = 0x08;
export const CASE_LOWER_EXT = 0x10;

/** name[0] of a deleted entry; a real leading 0xE5 is stored as 0x05 instead. */
export const DELETED_FLAG = 0xe5;
export const KANJI_ESCAPE = 0x05;

/** First data cluster number: FAT[0] and FAT[1] are reserved. */
export const FAT_START_ENT = 2;

/** Largest cluster count per FAT type (Linux MAX_FAT*: counts, not cluster numbers). */
export const MAX_FAT12 = 0xff4;
export const MAX_FAT16 = 0xfff4;
export const MAX_FAT32 = 0x0ffffff6;

export const BAD_FAT12 = 0xff7;
export const BAD_FAT16 = 0xfff7;
export const BAD_FAT32 = 0x0ffffff7;

export const EOF_FAT12 = 0xfff;
export const EOF_FAT16 = 0xffff;
export const EOF_FAT32 = 0x0fffffff;

/** Linux normalises every FAT width to these values when it reads an entry. */
export const FAT_ENT_FREE = 0;
export const FAT_ENT_BAD = BAD_FAT32;
export const FAT_ENT_EOF = EOF_FAT32;

export const FAT_FSINFO_SIG1 = 0x41615252; /* "RRaA", lead signature */
export const FAT_FSINFO_SIG2 = 0x61417272; /* "rrAa", structure signature */
export const FAT_FSINFO_TRAIL_SIG = 0xaa550000;

/** Bit 0 of the BPB "state" byte: set while mounted read-write (fat_set_state). */
export const FAT_STATE_DIRTY = 0x01;

/** The two flags Microsoft keeps in the high bits of FAT[1] (Linux ignores them). */
export const FAT16_CLN_SHUT_BIT = 0x8000;
export const FAT16_HRD_ERR_BIT = 0x4000;
export const FAT32_CLN_SHUT_BIT = 0x08000000;
export const FAT32_HRD_ERR_BIT = 0x04000000;

/** Boot sector signature at 510..511. Linux does not require it; mkfs and Windows write it. */
export const BOOT_SIGNATURE = 0xaa55;

/* ---- Boot sector field offsets (struct fat_boot_sector) ---- */

export const BS_JUMP = 0x00; /* 3: boot-strap jump */
export const BS_SYSTEM_ID = 0x03; /* 8: OEM name */
export const BS_SECTOR_SIZE = 0x0b; /* u16: bytes per logical sector (unaligned) */
export const BS_SEC_PER_CLUS = 0x0d; /* u8 */
export const BS_RESERVED = 0x0e; /* u16: reserved sectors, boot sector included */
export const BS_FATS = 0x10; /* u8: number of FATs */
export const BS_DIR_ENTRIES = 0x11; /* u16: root directory entries (0 on FAT32, unaligned) */
export const BS_SECTORS = 0x13; /* u16: total sectors if < 65536 (unaligned) */
export const BS_MEDIA = 0x15; /* u8: media descriptor */
export const BS_FAT_LENGTH = 0x16; /* u16: sectors per FAT; 0 means FAT32 */
export const BS_SECS_TRACK = 0x18; /* u16 */
export const BS_HEADS = 0x1a; /* u16 */
export const BS_HIDDEN = 0x1c; /* u32: sectors before the volume */
export const BS_TOTAL_SECT = 0x20; /* u32: total sectors if BS_SECTORS == 0 */
/* FAT12/16 extended BPB */
export const BS16_DRIVE_NUMBER = 0x24;
export const BS16_STATE = 0x25; /* mount state: FAT_STATE_DIRTY */
export const BS16_SIGNATURE = 0x26; /* 0x29 (or 0x28): the next three fields are valid */
export const BS16_VOL_ID = 0x27;
export const BS16_VOL_LABEL = 0x2b;
export const BS16_FS_TYPE = 0x36;
/* FAT32 BPB */
export const BS32_LENGTH = 0x24; /* u32: sectors per FAT */
export const BS32_FLAGS = 0x28; /* u16: bit 7 mirroring off, bits 0-3 active FAT */
export const BS32_VERSION = 0x2a; /* 2 bytes: minor, major */
export const BS32_ROOT_CLUSTER = 0x2c; /* u32 */
export const BS32_INFO_SECTOR = 0x30; /* u16: FSInfo sector */
export const BS32_BACKUP_BOOT = 0x32; /* u16: backup boot sector */
export const BS32_DRIVE_NUMBER = 0x40;
export const BS32_STATE = 0x41;
export const BS32_SIGNATURE = 0x42;
export const BS32_VOL_ID = 0x43;
export const BS32_VOL_LABEL = 0x47;
export const BS32_FS_TYPE = 0x52;
export const BS_BOOT_SIGNATURE = 0x1fe;

/* ---- FSInfo offsets (struct fat_boot_fsinfo) ---- */

export const FSI_SIGNATURE1 = 0;
export const FSI_SIGNATURE2 = 484;
export const FSI_FREE_CLUSTERS = 488; /* -1 when unknown */
export const FSI_NEXT_CLUSTER = 492; /* hint: most recently allocated cluster */
export const FSI_TRAIL_SIG = 508;

/* ---- Directory entry offsets (struct msdos_dir_entry) ---- */

export const DE_NAME = 0;
export const DE_ATTR = 11;
export const DE_LCASE = 12;
export const DE_CTIME_CS = 13;
export const DE_CTIME = 14;
export const DE_CDATE = 16;
export const DE_ADATE = 18;
export const DE_STARTHI = 20;
export const DE_TIME = 22;
export const DE_DATE = 24;
export const DE_START = 26;
export const DE_SIZE = 28;

/* ---- Long-name slot offsets (struct msdos_dir_slot) ---- */

export const DS_ID = 0;
export const DS_NAME0_4 = 1;
export const DS_ATTR = 11;
export const DS_RESERVED = 12;
export const DS_ALIAS_CHECKSUM = 13;
export const DS_NAME5_10 = 14;
export const DS_START = 26;
export const DS_NAME11_12 = 28;

/** id bit of the slot that comes first on disk and holds the end of the name. */
export const LAST_LONG_ENTRY = 0x40;
/** UTF-16 units per slot. */
export const FAT_LFN_CHARS_PER_SLOT = 13;
/** ceil(255 / 13): more slots than this cannot belong to a valid name. */
export const FAT_MAX_LFN_SLOTS = 20;
/** Long-name slots plus the 8.3 entry (MSDOS_SLOTS). */
export const MSDOS_SLOTS = 21;

/**
 * Bytes a byte-string field is written with: `b` when it has n bytes or more, else `b`
 * over what buf already holds there (the hand-written encoders' buf.set of a short array).
 */
function overlay(b: Uint8Array, buf: Uint8Array, off: number, n: number): Uint8Array {
  if (b.length >= n) return b;
  const out = buf.slice(off, off + n);
  out.set(b);
  return out;
}

function padBytes(b: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n).fill(0x20);
  out.set(b.subarray(0, n));
  return out;
}

/* =================================================================================== */
/* Boot sector                                                                         */
/* =================================================================================== */

/*
 * struct fat_boot_sector. Where Linux declares a byte array because the field is unaligned
 * (sector_size[2], dir_entries[2], sectors[2]) or a byte string (vol_id[4], version[2]),
 * the table decodes the little-endian integer it holds, as fat_read_bpb reads them
 * (get_unaligned_le16 and friends). Offsets are from the start of the sector, for the
 * union arms too.
 */
export const fat_boot_sector_fields = [
  ['ignored', 0x00, 'bytes3'], /* boot-strap jump */
  ['system_id', 0x03, 'bytes8'], /* OEM name; encode pads it with spaces */
  ['sector_size', 0x0b, 'u16'], /* C: __u8 sector_size[2] */
  ['sec_per_clus', 0x0d, 'u8'],
  ['reserved', 0x0e, 'u16'], /* reserved sectors, boot sector included */
  ['fats', 0x10, 'u8'],
  ['dir_entries', 0x11, 'u16'], /* C: __u8 dir_entries[2]; 0 on FAT32 */
  ['sectors', 0x13, 'u16'], /* C: __u8 sectors[2]; 0 when total_sect holds the count */
  ['media', 0x15, 'u8'],
  ['fat_length', 0x16, 'u16'], /* sectors per FAT; 0 means FAT32 */
  ['secs_track', 0x18, 'u16'],
  ['heads', 0x1a, 'u16'],
  ['hidden', 0x1c, 'u32'],
  ['total_sect', 0x20, 'u32'],
  /* Not in struct fat_boot_sector: the 16-bit word at 510 (0xAA55 when present). */
  ['boot_signature', BS_BOOT_SIGNATURE, 'u16'],
] as const satisfies readonly FieldDef[];

/* union arm fat16: the FAT12/16 extended BPB. */
export const fat_boot_fat16_fields = [
  ['drive_number', 0x24, 'u8'],
  ['state', 0x25, 'u8'], /* undocumented by Microsoft; Linux keeps FAT_STATE_DIRTY here */
  ['signature', 0x26, 'u8'], /* 0x29 (or 0x28) when vol_id, vol_label, fs_type are present */
  ['vol_id', 0x27, 'u32'], /* C: __u8 vol_id[4] */
  ['vol_label', 0x2b, 'bytes11'], /* encode pads it with spaces */
  ['fs_type', 0x36, 'bytes8'], /* encode pads it with spaces */
] as const satisfies readonly FieldDef[];

/*
 * union arm fat32. reserved2[6] (0x34..0x3f) is left out: not decoded, and encode leaves
 * those bytes as they are.
 */
export const fat_boot_fat32_fields = [
  ['length', 0x24, 'u32'], /* sectors per FAT */
  ['flags', 0x28, 'u16'], /* bit 7 mirroring off, bits 0-3 active FAT */
  ['version', 0x2a, 'u16'], /* C: __u8 version[2] (minor, major): major << 8 | minor */
  ['root_cluster', 0x2c, 'u32'],
  ['info_sector', 0x30, 'u16'], /* FSInfo sector */
  ['backup_boot', 0x32, 'u16'], /* backup boot sector */
  ['drive_number', 0x40, 'u8'],
  ['state', 0x41, 'u8'],
  ['signature', 0x42, 'u8'],
  ['vol_id', 0x43, 'u32'], /* C: __u8 vol_id[4] */
  ['vol_label', 0x47, 'bytes11'],
  ['fs_type', 0x52, 'bytes8'],
] as const satisfies readonly FieldDef[];

/** The extended BPB of either arm: the fields fat16 and fat32 share. */
export type FatExtBpb = StructOf<typeof fat_boot_fat16_fields>;

/** Every decoded field of struct fat_boot_sector, both union arms decoded. */
export type fat_boot_sector = StructOf<typeof fat_boot_sector_fields> & {
  fat16: FatExtBpb;
  fat32: StructOf<typeof fat_boot_fat32_fields>;
};

/** Decodes the first 512 bytes of a volume. Checks nothing: see fat_read_bpb. */
export function fat_boot_sector_decode(buf: Uint8Array): fat_boot_sector {
  if (buf.length < 512) throw new RangeError('boot sector buffer shorter than 512 bytes');
  return {
    ...decodeStruct(fat_boot_sector_fields, buf),
    fat16: decodeStruct(fat_boot_fat16_fields, buf),
    fat32: decodeStruct(fat_boot_fat32_fields, buf),
  };
}

/** The extended BPB fields as encode writes them: labels padded with spaces. */
function padExt<E extends FatExtBpb>(e: E): E {
  return { ...e, vol_label: padBytes(e.vol_label, 11), fs_type: padBytes(e.fs_type, 8) };
}

/**
 * Writes a boot sector's fields into buf (512 bytes at least), leaving the boot code alone.
 * Only the union arm that matches the layout is written: fat32 when fat_length is 0 (as
 * Linux decides FAT32), fat16 otherwise, so the two never overwrite each other.
 */
export function fat_boot_sector_encode(bs: fat_boot_sector, buf: Uint8Array): void {
  encodeStruct(fat_boot_sector_fields,
    { ...bs, ignored: overlay(bs.ignored, buf, 0x00, 3), system_id: padBytes(bs.system_id, 8) }, buf);
  if (bs.fat_length === 0) encodeStruct(fat_boot_fat32_fields, padExt(bs.fat32), buf);
  else encodeStruct(fat_boot_fat16_fields, padExt(bs.fat16), buf);
}

/** FAT_VALID_MEDIA: 0xF0 (removable) or 0xF8..0xFF. */
export function fat_valid_media(media: number): boolean {
  return media === 0xf0 || (media >= 0xf8 && media <= 0xff);
}

/* =================================================================================== */
/* FSInfo (FAT32)                                                                      */
/* =================================================================================== */

/*
 * struct fat_boot_fsinfo. reserved1[120] and reserved2[0..2] are left out (encode leaves
 * them as they are); reserved2[3] is decoded as trail_signature, which Linux does not name
 * or check but fsck.fat and Windows do.
 */
export const fat_boot_fsinfo_fields = [
  ['signature1', 0, 'u32'],
  ['signature2', 484, 'u32'],
  ['free_clusters', 488, 'u32'], /* 0xFFFFFFFF when unknown */
  ['next_cluster', 492, 'u32'], /* allocation hint, 0xFFFFFFFF when unknown */
  ['trail_signature', 508, 'u32'],
] as const satisfies readonly FieldDef[];

export type fat_boot_fsinfo = StructOf<typeof fat_boot_fsinfo_fields>;

export function fat_fsinfo_decode(buf: Uint8Array): fat_boot_fsinfo {
  return decodeStruct(fat_boot_fsinfo_fields, buf);
}

/** Writes all five fields; the reserved areas between them are left as they are. */
export function fat_fsinfo_encode(fsi: fat_boot_fsinfo, buf: Uint8Array): void {
  encodeStruct(fat_boot_fsinfo_fields, fsi, buf);
}

/** IS_FSINFO: the lead and structure signatures make the sector an FSInfo (the trail one is not checked). */
export function fat_is_fsinfo(fsi: fat_boot_fsinfo): boolean {
  return fsi.signature1 === FAT_FSINFO_SIG1 && fsi.signature2 === FAT_FSINFO_SIG2;
}

/** A fresh FSInfo with both hints unknown. */
export function fat_fsinfo_new(free_clusters = 0xffffffff, next_cluster = 0xffffffff): fat_boot_fsinfo {
  return {
    signature1: FAT_FSINFO_SIG1,
    signature2: FAT_FSINFO_SIG2,
    free_clusters,
    next_cluster,
    trail_signature: FAT_FSINFO_TRAIL_SIG,
  };
}

/* =================================================================================== */
/* Directory entries                                                                   */
/* =================================================================================== */

/* struct msdos_dir_entry */
export const msdos_dir_entry_fields = [
  ['name', 0, 'bytes11'], /* base padded with spaces to 8, then extension to 3; name[0] 0x05 = 0xE5 */
  ['attr', 11, 'u8'],
  ['lcase', 12, 'u8'], /* NTRes: CASE_LOWER_BASE / CASE_LOWER_EXT */
  ['ctime_cs', 13, 'u8'], /* creation time: centiseconds 0..199 on top of the 2-second ctime */
  ['ctime', 14, 'u16'],
  ['cdate', 16, 'u16'],
  ['adate', 18, 'u16'],
  ['starthi', 20, 'u16'],
  ['time', 22, 'u16'],
  ['date', 24, 'u16'],
  ['start', 26, 'u16'],
  ['size', 28, 'u32'],
] as const satisfies readonly FieldDef[];

export type msdos_dir_entry = StructOf<typeof msdos_dir_entry_fields>;

export function msdos_dir_entry_decode(buf: Uint8Array, off = 0): msdos_dir_entry {
  return decodeStruct(msdos_dir_entry_fields, buf, off);
}

export function msdos_dir_entry_encode(de: msdos_dir_entry, buf: Uint8Array, off = 0): void {
  encodeStruct(msdos_dir_entry_fields, { ...de, name: overlay(de.name, buf, off + DE_NAME, MSDOS_NAME) }, buf, off);
}

/** A zeroed entry with the given 11-byte name (strings are taken as Latin-1 bytes). */
export function msdos_dir_entry_new(name: Uint8Array | string, attr: number): msdos_dir_entry {
  const n = typeof name === 'string' ? Uint8Array.from(name, (c) => c.charCodeAt(0) & 0xff) : name;
  return {
    name: padBytes(n, MSDOS_NAME),
    attr,
    lcase: 0,
    ctime_cs: 0,
    ctime: 0,
    cdate: 0,
    adate: 0,
    starthi: 0,
    time: 0,
    date: 0,
    start: 0,
    size: 0,
  };
}

/** IS_FREE: never used (0) or deleted (0xE5). */
export function fat_is_free(name0: number): boolean {
  return name0 === 0 || name0 === DELETED_FLAG;
}

/* ---- Long-name slots ---- */

/*
 * struct msdos_dir_slot. Linux declares the name parts as byte arrays (name0_4[10],
 * name5_10[12], name11_12[4]); here they decode as the little-endian UTF-16 units they
 * hold: 5, 6 and 2 units. msdos_dir_slot_name joins them.
 */
export const msdos_dir_slot_fields = [
  ['id', 0, 'u8'], /* sequence number 1..20, | LAST_LONG_ENTRY on the slot holding the end of the name */
  ['name0_4', 1, 'u16x5'],
  ['attr', 11, 'u8'],
  ['reserved', 12, 'u8'],
  ['alias_checksum', 13, 'u8'],
  ['name5_10', 14, 'u16x6'],
  ['start', 26, 'u16'],
  ['name11_12', 28, 'u16x2'],
] as const satisfies readonly FieldDef[];

export type msdos_dir_slot = StructOf<typeof msdos_dir_slot_fields>;

export function msdos_dir_slot_decode(buf: Uint8Array, off = 0): msdos_dir_slot {
  return decodeStruct(msdos_dir_slot_fields, buf, off);
}

export function msdos_dir_slot_encode(ds: msdos_dir_slot, buf: Uint8Array, off = 0): void {
  encodeStruct(msdos_dir_slot_fields, ds, buf, off);
}

/** The slot's 13 UTF-16 units: name0_4, name5_10, name11_12 joined. */
export function msdos_dir_slot_name(ds: msdos_dir_slot): Uint16Array {
  const u = new Uint16Array(FAT_LFN_CHARS_PER_SLOT);
  u.set(ds.name0_4, 0);
  u.set(ds.name5_10, 5);
  u.set(ds.name11_12, 11);
  return u;
}
