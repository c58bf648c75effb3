/*
 * FAT on-disk layout (include/uapi/linux/msdos_fs.h and the on-disk parts of fs/fat/fat.h):
 * constants, field offsets and the codecs of struct fat_boot_sector, struct
 * fat_boot_fsinfo, struct msdos_dir_entry and struct msdos_dir_slot.
 *
 * Pure codecs over Uint8Array/DataView: no kernel runtime, no I/O, no checks beyond what
 * msdos_fs.h itself defines (FAT_VALID_MEDIA, IS_FREE, IS_FSINFO). What the driver does
 * with the fields lives where Linux keeps it: fat_read_bpb and the geometry in super.ts
 * (inode.c's super half), FAT entries in fatent.ts, directory records in dir.ts, long-name
 * slots in namei_vfat.ts, the fat.h inline helpers in fat.ts.
 */

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

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/* =================================================================================== */
/* Boot sector                                                                         */
/* =================================================================================== */

/** Extended BPB of FAT12/16 or the tail of FAT32's: same fields, different offsets. */
export interface FatExtBpb {
  driveNumber: number;
  /** Undocumented by Microsoft; Linux keeps FAT_STATE_DIRTY here. */
  state: number;
  /** 0x29 when volId/volLabel/fsType are present. */
  signature: number;
  volId: number;
  volLabel: Uint8Array; /* 11 bytes */
  fsType: Uint8Array; /* 8 bytes */
}

/** Every field of struct fat_boot_sector, raw, both union arms decoded. */
export interface FatBootSector {
  jump: Uint8Array; /* 3 */
  systemId: Uint8Array; /* 8 */
  sectorSize: number;
  secPerClus: number;
  reserved: number;
  fats: number;
  dirEntries: number;
  sectors: number;
  media: number;
  fatLength: number;
  secsTrack: number;
  heads: number;
  hidden: number;
  totalSect: number;
  fat16: FatExtBpb;
  fat32: FatExtBpb & {
    length: number;
    flags: number;
    version: number; /* major << 8 | minor */
    rootCluster: number;
    infoSector: number;
    backupBoot: number;
  };
  /** The 16-bit word at 510 (0xAA55 when present). */
  bootSignature: number;
}

function decodeExt(buf: Uint8Array, dv: DataView, base: number): FatExtBpb {
  return {
    driveNumber: buf[base]!,
    state: buf[base + 1]!,
    signature: buf[base + 2]!,
    volId: dv.getUint32(base + 3, true),
    volLabel: buf.slice(base + 7, base + 18),
    fsType: buf.slice(base + 18, base + 26),
  };
}

function encodeExt(e: FatExtBpb, buf: Uint8Array, dv: DataView, base: number): void {
  buf[base] = e.driveNumber;
  buf[base + 1] = e.state;
  buf[base + 2] = e.signature;
  dv.setUint32(base + 3, e.volId >>> 0, true);
  buf.set(padBytes(e.volLabel, 11), base + 7);
  buf.set(padBytes(e.fsType, 8), base + 18);
}

function padBytes(b: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n).fill(0x20);
  out.set(b.subarray(0, n));
  return out;
}

/** Decodes the first 512 bytes of a volume. Checks nothing: see fat_read_bpb. */
export function fat_boot_sector_decode(buf: Uint8Array): FatBootSector {
  if (buf.length < 512) throw new RangeError('boot sector buffer shorter than 512 bytes');
  const dv = view(buf);
  const ext32 = decodeExt(buf, dv, BS32_DRIVE_NUMBER);
  return {
    jump: buf.slice(BS_JUMP, BS_JUMP + 3),
    systemId: buf.slice(BS_SYSTEM_ID, BS_SYSTEM_ID + 8),
    sectorSize: dv.getUint16(BS_SECTOR_SIZE, true),
    secPerClus: buf[BS_SEC_PER_CLUS]!,
    reserved: dv.getUint16(BS_RESERVED, true),
    fats: buf[BS_FATS]!,
    dirEntries: dv.getUint16(BS_DIR_ENTRIES, true),
    sectors: dv.getUint16(BS_SECTORS, true),
    media: buf[BS_MEDIA]!,
    fatLength: dv.getUint16(BS_FAT_LENGTH, true),
    secsTrack: dv.getUint16(BS_SECS_TRACK, true),
    heads: dv.getUint16(BS_HEADS, true),
    hidden: dv.getUint32(BS_HIDDEN, true),
    totalSect: dv.getUint32(BS_TOTAL_SECT, true),
    fat16: decodeExt(buf, dv, BS16_DRIVE_NUMBER),
    fat32: {
      ...ext32,
      length: dv.getUint32(BS32_LENGTH, true),
      flags: dv.getUint16(BS32_FLAGS, true),
      version: (buf[BS32_VERSION + 1]! << 8) | buf[BS32_VERSION]!,
      rootCluster: dv.getUint32(BS32_ROOT_CLUSTER, true),
      infoSector: dv.getUint16(BS32_INFO_SECTOR, true),
      backupBoot: dv.getUint16(BS32_BACKUP_BOOT, true),
    },
    bootSignature: dv.getUint16(BS_BOOT_SIGNATURE, true),
  };
}

/**
 * Writes a boot sector's fields into buf (512 bytes at least), leaving the boot code alone.
 * Only the union arm that matches the layout is written: fat32 when fatLength is 0 (as
 * Linux decides FAT32), fat16 otherwise, so the two never overwrite each other.
 */
export function fat_boot_sector_encode(bs: FatBootSector, buf: Uint8Array): void {
  const dv = view(buf);
  buf.set(bs.jump.subarray(0, 3), BS_JUMP);
  buf.set(padBytes(bs.systemId, 8), BS_SYSTEM_ID);
  dv.setUint16(BS_SECTOR_SIZE, bs.sectorSize, true);
  buf[BS_SEC_PER_CLUS] = bs.secPerClus;
  dv.setUint16(BS_RESERVED, bs.reserved, true);
  buf[BS_FATS] = bs.fats;
  dv.setUint16(BS_DIR_ENTRIES, bs.dirEntries, true);
  dv.setUint16(BS_SECTORS, bs.sectors, true);
  buf[BS_MEDIA] = bs.media;
  dv.setUint16(BS_FAT_LENGTH, bs.fatLength, true);
  dv.setUint16(BS_SECS_TRACK, bs.secsTrack, true);
  dv.setUint16(BS_HEADS, bs.heads, true);
  dv.setUint32(BS_HIDDEN, bs.hidden >>> 0, true);
  dv.setUint32(BS_TOTAL_SECT, bs.totalSect >>> 0, true);
  if (bs.fatLength === 0) {
    const f = bs.fat32;
    dv.setUint32(BS32_LENGTH, f.length >>> 0, true); // bits32: a u32 field, decoded from 32 bits
    dv.setUint16(BS32_FLAGS, f.flags, true);
    buf[BS32_VERSION] = f.version & 0xff;
    buf[BS32_VERSION + 1] = f.version >> 8;
    dv.setUint32(BS32_ROOT_CLUSTER, f.rootCluster >>> 0, true);
    dv.setUint16(BS32_INFO_SECTOR, f.infoSector, true);
    dv.setUint16(BS32_BACKUP_BOOT, f.backupBoot, true);
    encodeExt(f, buf, dv, BS32_DRIVE_NUMBER);
  } else {
    encodeExt(bs.fat16, buf, dv, BS16_DRIVE_NUMBER);
  }
  dv.setUint16(BS_BOOT_SIGNATURE, bs.bootSignature, true);
}

/** FAT_VALID_MEDIA: 0xF0 (removable) or 0xF8..0xFF. */
export function fat_valid_media(media: number): boolean {
  return media === 0xf0 || (media >= 0xf8 && media <= 0xff);
}

/* =================================================================================== */
/* FSInfo (FAT32)                                                                      */
/* =================================================================================== */

export interface FatFsInfo {
  signature1: number;
  signature2: number;
  /** Free cluster count, 0xFFFFFFFF when unknown. */
  freeClusters: number;
  /** Allocation hint, 0xFFFFFFFF when unknown. */
  nextCluster: number;
  trailSignature: number;
}

export function fat_fsinfo_decode(buf: Uint8Array): FatFsInfo {
  const dv = view(buf);
  return {
    signature1: dv.getUint32(FSI_SIGNATURE1, true),
    signature2: dv.getUint32(FSI_SIGNATURE2, true),
    freeClusters: dv.getUint32(FSI_FREE_CLUSTERS, true),
    nextCluster: dv.getUint32(FSI_NEXT_CLUSTER, true),
    trailSignature: dv.getUint32(FSI_TRAIL_SIG, true),
  };
}

/** Writes all five fields; the reserved areas between them are left as they are. */
export function fat_fsinfo_encode(fsi: FatFsInfo, buf: Uint8Array): void {
  const dv = view(buf);
  dv.setUint32(FSI_SIGNATURE1, fsi.signature1 >>> 0, true);
  dv.setUint32(FSI_SIGNATURE2, fsi.signature2 >>> 0, true);
  dv.setUint32(FSI_FREE_CLUSTERS, fsi.freeClusters >>> 0, true);
  dv.setUint32(FSI_NEXT_CLUSTER, fsi.nextCluster >>> 0, true);
  dv.setUint32(FSI_TRAIL_SIG, fsi.trailSignature >>> 0, true);
}

/** IS_FSINFO: the lead and structure signatures make the sector an FSInfo (the trail one is not checked). */
export function fat_is_fsinfo(fsi: FatFsInfo): boolean {
  return fsi.signature1 === FAT_FSINFO_SIG1 && fsi.signature2 === FAT_FSINFO_SIG2;
}

/** A fresh FSInfo with both hints unknown. */
export function fat_fsinfo_new(freeClusters = 0xffffffff, nextCluster = 0xffffffff): FatFsInfo {
  return {
    signature1: FAT_FSINFO_SIG1,
    signature2: FAT_FSINFO_SIG2,
    freeClusters,
    nextCluster,
    trailSignature: FAT_FSINFO_TRAIL_SIG,
  };
}

/* =================================================================================== */
/* Directory entries                                                                   */
/* =================================================================================== */

export interface MsdosDirEntry {
  /** 11 bytes, base padded with spaces to 8 then extension to 3; name[0] 0x05 = 0xE5. */
  name: Uint8Array;
  attr: number;
  /** NTRes: CASE_LOWER_BASE / CASE_LOWER_EXT. */
  lcase: number;
  /** Creation time: centiseconds 0..199 on top of the 2-second ctime. */
  ctimeCs: number;
  ctime: number;
  cdate: number;
  adate: number;
  starthi: number;
  time: number;
  date: number;
  start: number;
  size: number;
}

export function msdos_dir_entry_decode(buf: Uint8Array, off = 0): MsdosDirEntry {
  const dv = view(buf);
  return {
    name: buf.slice(off + DE_NAME, off + DE_NAME + MSDOS_NAME),
    attr: buf[off + DE_ATTR]!,
    lcase: buf[off + DE_LCASE]!,
    ctimeCs: buf[off + DE_CTIME_CS]!,
    ctime: dv.getUint16(off + DE_CTIME, true),
    cdate: dv.getUint16(off + DE_CDATE, true),
    adate: dv.getUint16(off + DE_ADATE, true),
    starthi: dv.getUint16(off + DE_STARTHI, true),
    time: dv.getUint16(off + DE_TIME, true),
    date: dv.getUint16(off + DE_DATE, true),
    start: dv.getUint16(off + DE_START, true),
    size: dv.getUint32(off + DE_SIZE, true),
  };
}

export function msdos_dir_entry_encode(de: MsdosDirEntry, buf: Uint8Array, off = 0): void {
  const dv = view(buf);
  buf.set(de.name.subarray(0, MSDOS_NAME), off + DE_NAME);
  buf[off + DE_ATTR] = de.attr;
  buf[off + DE_LCASE] = de.lcase;
  buf[off + DE_CTIME_CS] = de.ctimeCs;
  dv.setUint16(off + DE_CTIME, de.ctime, true);
  dv.setUint16(off + DE_CDATE, de.cdate, true);
  dv.setUint16(off + DE_ADATE, de.adate, true);
  dv.setUint16(off + DE_STARTHI, de.starthi, true);
  dv.setUint16(off + DE_TIME, de.time, true);
  dv.setUint16(off + DE_DATE, de.date, true);
  dv.setUint16(off + DE_START, de.start, true);
  dv.setUint32(off + DE_SIZE, de.size >>> 0, true); // bits32: FAT file sizes are u32
}

/** A zeroed entry with the given 11-byte name (strings are taken as Latin-1 bytes). */
export function msdos_dir_entry_new(name: Uint8Array | string, attr: number): MsdosDirEntry {
  const n = typeof name === 'string' ? Uint8Array.from(name, (c) => c.charCodeAt(0) & 0xff) : name;
  return {
    name: padBytes(n, MSDOS_NAME),
    attr,
    lcase: 0,
    ctimeCs: 0,
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

export interface MsdosDirSlot {
  /** Sequence number 1..20, | LAST_LONG_ENTRY on the slot holding the end of the name. */
  id: number;
  /** The slot's 13 UTF-16 units (name0_4, name5_10, name11_12 joined). */
  name: Uint16Array;
  attr: number;
  reserved: number;
  aliasChecksum: number;
  start: number;
}

const SLOT_UNIT_OFFSETS: number[] = (() => {
  const o: number[] = [];
  for (let i = 0; i < 5; i++) o.push(DS_NAME0_4 + 2 * i);
  for (let i = 0; i < 6; i++) o.push(DS_NAME5_10 + 2 * i);
  for (let i = 0; i < 2; i++) o.push(DS_NAME11_12 + 2 * i);
  return o;
})();

export function msdos_dir_slot_decode(buf: Uint8Array, off = 0): MsdosDirSlot {
  const name = new Uint16Array(FAT_LFN_CHARS_PER_SLOT);
  for (let i = 0; i < FAT_LFN_CHARS_PER_SLOT; i++) {
    const p = off + SLOT_UNIT_OFFSETS[i]!;
    name[i] = buf[p]! | (buf[p + 1]! << 8);
  }
  return {
    id: buf[off + DS_ID]!,
    name,
    attr: buf[off + DS_ATTR]!,
    reserved: buf[off + DS_RESERVED]!,
    aliasChecksum: buf[off + DS_ALIAS_CHECKSUM]!,
    start: buf[off + DS_START]! | (buf[off + DS_START + 1]! << 8),
  };
}

export function msdos_dir_slot_encode(ds: MsdosDirSlot, buf: Uint8Array, off = 0): void {
  buf[off + DS_ID] = ds.id;
  for (let i = 0; i < FAT_LFN_CHARS_PER_SLOT; i++) {
    const p = off + SLOT_UNIT_OFFSETS[i]!;
    const u = ds.name[i]!;
    buf[p] = u & 0xff;
    buf[p + 1] = u >> 8;
  }
  buf[off + DS_ATTR] = ds.attr;
  buf[off + DS_RESERVED] = ds.reserved;
  buf[off + DS_ALIAS_CHECKSUM] = ds.aliasChecksum;
  buf[off + DS_START] = ds.start & 0xff;
  buf[off + DS_START + 1] = ds.start >> 8;
}
