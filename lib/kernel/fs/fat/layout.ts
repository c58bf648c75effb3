/*
 * FAT on-disk layout: boot sector / BPB, FSInfo, FAT entries, directory entries and VFAT
 * long-name slots, as Linux's include/uapi/linux/msdos_fs.h and fs/fat/* see them.
 *
 * Pure codecs over Uint8Array/DataView: no kernel runtime, no I/O. The driver (inode.c-,
 * dir.c-, fatent.c-shaped files next to this one) reads sectors and hands them here. Disk
 * data is distrusted: every check that rejects something names its failure with Linux's
 * words, so the driver can pass the string on to its error function unchanged.
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

/** Result of a check of on-disk data: the value, or why the data was refused. */
export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

function fail<T>(error: string): Checked<T> {
  return { ok: false, error };
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

function isPowerOf2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * fat_read_bpb: the sanity checks Linux applies to a boot sector before trusting any
 * geometry in it, in Linux's order and with Linux's messages.
 */
export function fat_read_bpb(bs: FatBootSector): string | null {
  if (!bs.reserved) return 'bogus number of reserved sectors';
  if (!bs.fats) return 'bogus number of FAT structure';
  /* Zero sectors-per-track or heads is legal: real volumes have it. */
  if (!fat_valid_media(bs.media)) return `invalid media value (0x${hex2(bs.media)})`;
  if (!isPowerOf2(bs.sectorSize) || bs.sectorSize < 512 || bs.sectorSize > 4096)
    return `bogus logical sector size ${bs.sectorSize}`;
  if (!isPowerOf2(bs.secPerClus)) return `bogus sectors per cluster ${bs.secPerClus}`;
  if (bs.fatLength === 0 && bs.fat32.length === 0) return 'bogus number of FAT sectors';
  return null;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** The geometry fat_fill_super derives (a subset of struct msdos_sb_info, same names). */
export interface FatSbInfo {
  sectorSize: number;
  secPerClus: number;
  clusterSize: number;
  fats: number;
  /** 12, 16 or 32. */
  fatBits: 12 | 16 | 32;
  /** First sector of FAT #0 (= reserved sectors). */
  fatStart: number;
  /** Sectors per FAT. */
  fatLength: number;
  /** First sector of the FAT12/16 root directory (after the FATs). */
  dirStart: number;
  /** FAT12/16 root directory entries (0 on FAT32). */
  dirEntries: number;
  /** First sector of cluster 2. */
  dataStart: number;
  totalSectors: number;
  /** Usable data clusters, already clamped to what the FAT can describe. */
  totalClusters: number;
  /** One past the last valid cluster number (total_clusters + FAT_START_ENT). */
  maxCluster: number;
  /** FAT32 root directory's first cluster; 0 on FAT12/16. */
  rootCluster: number;
  /** FAT32 FSInfo sector (Linux reads sector 1 when the BPB says 0); 0 on FAT12/16. */
  fsinfoSector: number;
  /** FAT32 backup boot sector; 0 on FAT12/16. */
  backupBoot: number;
  /** FAT32 extended flags (mirroring / active FAT). */
  fat32Flags: number;
  /** The volume was not cleanly unmounted (state byte bit 0). */
  dirty: boolean;
  volId: number;
  media: number;
}

/**
 * fat_fill_super's geometry: validates with fat_read_bpb, then decides FAT32 the way Linux
 * does (16-bit FAT length is 0 and the 32-bit one is not) and FAT12 vs FAT16 by cluster
 * count (> MAX_FAT12 = 4084 clusters is FAT16), which agrees with Microsoft's rule
 * (fat_type_from_clusters) for every volume a conforming formatter made.
 */
export function fat_fill_geometry(bs: FatBootSector): Checked<FatSbInfo> {
  const bad = fat_read_bpb(bs);
  if (bad) return fail(bad);

  const isFat32 = bs.fatLength === 0 && bs.fat32.length !== 0;
  const sectorSize = bs.sectorSize;
  const fatLength = isFat32 ? bs.fat32.length : bs.fatLength;
  const fatStart = bs.reserved;
  const dirStart = fatStart + bs.fats * fatLength;
  const dirEntries = bs.dirEntries;
  const dirPerBlock = sectorSize / MSDOS_DIR_ENTRY_SIZE;
  if (dirEntries % dirPerBlock) return fail(`bogus number of directory entries (${dirEntries})`);

  const rootdirSectors = (dirEntries * MSDOS_DIR_ENTRY_SIZE) / sectorSize;
  const dataStart = dirStart + rootdirSectors;
  const totalSectors = bs.sectors !== 0 ? bs.sectors : bs.totalSect;
  /* Linux computes this in unsigned 32-bit arithmetic: a data area past the end wraps and
   * is then clamped by the FAT size below. Reproduce that rather than invent a check. */
  // bits32: u32 arithmetic, as fat_fill_super does it (a data start past the end wraps and fails below)
  let totalClusters = Math.floor(((totalSectors - dataStart) >>> 0) / bs.secPerClus);

  const fatBits: 12 | 16 | 32 = isFat32 ? 32 : totalClusters > MAX_FAT12 ? 16 : 12;
  const fatClusters = fat_calc_fat_clusters(fatBits, fatLength, sectorSize);
  totalClusters = Math.min(totalClusters, fatClusters - FAT_START_ENT);
  const maxFat = fatBits === 32 ? MAX_FAT32 : fatBits === 16 ? MAX_FAT16 : MAX_FAT12;
  if (totalClusters > maxFat) return fail(`count of clusters too big (${totalClusters})`);

  let fsinfoSector = 0;
  if (isFat32) fsinfoSector = bs.fat32.infoSector === 0 ? 1 : bs.fat32.infoSector;
  const ext = isFat32 ? bs.fat32 : bs.fat16;
  return {
    ok: true,
    value: {
      sectorSize,
      secPerClus: bs.secPerClus,
      clusterSize: sectorSize * bs.secPerClus,
      fats: bs.fats,
      fatBits,
      fatStart,
      fatLength,
      dirStart,
      dirEntries,
      dataStart,
      totalSectors,
      totalClusters,
      maxCluster: totalClusters + FAT_START_ENT,
      rootCluster: isFat32 ? bs.fat32.rootCluster : 0,
      fsinfoSector,
      backupBoot: isFat32 ? bs.fat32.backupBoot : 0,
      fat32Flags: isFat32 ? bs.fat32.flags : 0,
      dirty: (ext.state & FAT_STATE_DIRTY) !== 0,
      volId: ext.volId,
      media: bs.media,
    },
  };
}

/** calc_fat_clusters: how many entries the FAT can hold (12-bit entries divide last). */
export function fat_calc_fat_clusters(fatBits: number, fatLength: number, sectorSize: number): number {
  if (fatBits !== 12) return Math.floor((sectorSize * 8) / fatBits) * fatLength;
  return Math.floor((fatLength * sectorSize * 8) / 12);
}

/** Microsoft's rule (fatgen103): the FAT type is decided by the count of data clusters alone. */
export function fat_type_from_clusters(clusters: number): 12 | 16 | 32 {
  if (clusters < 4085) return 12;
  if (clusters < 65525) return 16;
  return 32;
}

/** First sector of a data cluster. */
export function fat_clus_to_blknr(sbi: FatSbInfo, cluster: number): number {
  return (cluster - FAT_START_ENT) * sbi.secPerClus + sbi.dataStart;
}

/** fat_valid_entry's idea of a cluster number that may appear in a chain or an inode. */
export function fat_valid_cluster(sbi: FatSbInfo, cluster: number): boolean {
  return cluster >= FAT_START_ENT && cluster < sbi.maxCluster;
}

/* ---- The dirty bit ---- */

/**
 * Where Linux (fat_set_state) and fsck.fat keep "mounted, not cleanly unmounted": bit 0 of
 * the BPB state byte, 0x25 on FAT12/16 and 0x41 on FAT32. Linux never touches the FAT[1]
 * flags (fat_ent1_* below are for Windows-made volumes only).
 */
export function fat_state_offset(fatBits: number): number {
  return fatBits === 32 ? BS32_STATE : BS16_STATE;
}

export function fat_get_state_dirty(boot: Uint8Array, fatBits: number): boolean {
  return (boot[fat_state_offset(fatBits)]! & FAT_STATE_DIRTY) !== 0;
}

/**
 * fat_set_state on the boot-sector bytes. Linux calls it with set=true at a read-write
 * mount and set=false at unmount, but leaves a volume that was already dirty at mount time
 * alone (the caller checks FatSbInfo.dirty): only fsck may clear someone else's dirt.
 */
export function fat_set_state(boot: Uint8Array, fatBits: number, set: boolean): void {
  const off = fat_state_offset(fatBits);
  if (set) boot[off] = boot[off]! | FAT_STATE_DIRTY;
  else boot[off] = boot[off]! & ~FAT_STATE_DIRTY;
}

/** Microsoft's FAT[1] "clean shutdown" flag (set = clean). FAT12 has none: always true. */
export function fat_ent1_clean(fat: Uint8Array, fatBits: number): boolean {
  if (fatBits === 12) return true;
  const v = fat_ent_get_raw(fat, fatBits, 1);
  return (v & (fatBits === 32 ? FAT32_CLN_SHUT_BIT : FAT16_CLN_SHUT_BIT)) !== 0;
}

export function fat_ent1_set_clean(fat: Uint8Array, fatBits: number, clean: boolean): void {
  if (fatBits === 12) return;
  const bit = fatBits === 32 ? FAT32_CLN_SHUT_BIT : FAT16_CLN_SHUT_BIT;
  const v = fat_ent_get_raw(fat, fatBits, 1);
  fat_ent_set(fat, fatBits, 1, clean ? v | bit : v & ~bit);
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

/**
 * IS_FSINFO plus what Linux does with the two hints: only the lead and structure signatures
 * make the sector an FSInfo (the trail one is not checked); a wrong signature is a warning
 * at mount and the hints are ignored. A free count above the volume's cluster count becomes
 * unknown, and the next-free hint is reduced modulo max_cluster and raised to 2.
 */
export function fat_fsinfo_check(
  fsi: FatFsInfo,
  sbi: FatSbInfo,
): Checked<{ freeClusters: number; prevFree: number }> {
  if (fsi.signature1 !== FAT_FSINFO_SIG1 || fsi.signature2 !== FAT_FSINFO_SIG2)
    return fail(
      `Invalid FSINFO signature: 0x${fsi.signature1.toString(16).padStart(8, '0')}, ` +
        `0x${fsi.signature2.toString(16).padStart(8, '0')} (sector = ${sbi.fsinfoSector})`,
    );
  let freeClusters = fsi.freeClusters === 0xffffffff ? -1 : fsi.freeClusters;
  if (freeClusters !== -1 && freeClusters > sbi.totalClusters) freeClusters = -1;
  let prevFree = fsi.nextCluster % sbi.maxCluster;
  if (prevFree < FAT_START_ENT) prevFree = FAT_START_ENT;
  return { ok: true, value: { freeClusters, prevFree } };
}

/* =================================================================================== */
/* FAT entries                                                                         */
/* =================================================================================== */

/**
 * Byte offset of entry `entry` inside a FAT. A FAT12 entry is 1.5 bytes: even entries use
 * a byte and the low nibble of the next, odd entries the high nibble and the next byte, so
 * an entry may straddle a sector boundary (the driver must then hold both sectors).
 */
export function fat_ent_offset(fatBits: number, entry: number): number {
  if (fatBits === 12) return entry + (entry >> 1);
  return entry * (fatBits >> 3);
}

/** Bytes an entry touches starting at fat_ent_offset (2 for FAT12). */
export function fat_ent_bytes(fatBits: number): number {
  return fatBits === 32 ? 4 : 2;
}

/** The value as stored, masked to the entry width (FAT32: low 28 bits). */
export function fat_ent_get_raw(fat: Uint8Array, fatBits: number, entry: number): number {
  const off = fat_ent_offset(fatBits, entry);
  if (fatBits === 12) {
    const v = fat[off]! | (fat[off + 1]! << 8);
    return entry & 1 ? v >> 4 : v & 0xfff;
  }
  if (fatBits === 16) return fat[off]! | (fat[off + 1]! << 8);
  return (fat[off]! | (fat[off + 1]! << 8) | (fat[off + 2]! << 16) | (fat[off + 3]! << 24)) & 0x0fffffff;
}

/**
 * fat_ent_read's view: FAT_ENT_FREE, a next cluster, or FAT_ENT_EOF for anything from the
 * width's bad-cluster mark up (Linux folds "bad" and every end-of-chain value into EOF).
 */
export function fat_ent_get(fat: Uint8Array, fatBits: number, entry: number): number {
  const v = fat_ent_get_raw(fat, fatBits, entry);
  const bad = fatBits === 12 ? BAD_FAT12 : fatBits === 16 ? BAD_FAT16 : BAD_FAT32;
  return v >= bad ? FAT_ENT_EOF : v;
}

/**
 * Stores `value` (FAT_ENT_EOF / FAT_ENT_BAD are narrowed to the width). FAT12 keeps the
 * neighbour's nibble; FAT32 keeps the top 4 reserved bits of the old entry, as Microsoft
 * requires and Linux's fat32_ent_put does.
 */
export function fat_ent_set(fat: Uint8Array, fatBits: number, entry: number, value: number): void {
  const off = fat_ent_offset(fatBits, entry);
  if (fatBits === 12) {
    const v = value & 0xfff;
    if (entry & 1) {
      fat[off] = (fat[off]! & 0x0f) | ((v & 0x0f) << 4);
      fat[off + 1] = v >> 4;
    } else {
      fat[off] = v & 0xff;
      fat[off + 1] = (fat[off + 1]! & 0xf0) | (v >> 8);
    }
  } else if (fatBits === 16) {
    fat[off] = value & 0xff;
    fat[off + 1] = (value >> 8) & 0xff;
  } else {
    const v = ((value & 0x0fffffff) | ((fat[off + 3]! & 0xf0) << 24)) >>> 0;
    fat[off] = v & 0xff;
    fat[off + 1] = (v >>> 8) & 0xff;
    fat[off + 2] = (v >>> 16) & 0xff;
    fat[off + 3] = v >>> 24;
  }
}

/** The value FAT[0] holds on a fresh volume: the media byte with all other bits set. */
export function fat_ent0_value(fatBits: number, media: number): number {
  const mask = fatBits === 12 ? 0xfff : fatBits === 16 ? 0xffff : 0x0fffffff;
  return (mask & ~0xff) | media;
}

/**
 * Follows a chain from `start` through an in-memory FAT: the list of clusters, or why the
 * chain is broken (free entry or out-of-range link, as fat_get_cluster reports; a loop,
 * which Linux only catches by the chain outgrowing the volume).
 */
export function fat_chain(fat: Uint8Array, sbi: FatSbInfo, start: number): Checked<number[]> {
  const out: number[] = [];
  let c = start;
  while (true) {
    if (!fat_valid_cluster(sbi, c)) return fail(`invalid cluster chain (i_pos ${start}) at ${c}`);
    out.push(c);
    if (out.length > sbi.totalClusters) return fail(`cluster chain loops (start ${start})`);
    const next = fat_ent_get(fat, sbi.fatBits, c);
    if (next === FAT_ENT_EOF) return { ok: true, value: out };
    if (next === FAT_ENT_FREE) return fail(`chain of cluster ${start} runs into a free cluster at ${c}`);
    c = next;
  }
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

/** fat_get_start: starthi counts only on FAT32 (on FAT12/16 it is EA-index garbage). */
export function fat_get_start(de: MsdosDirEntry, fatBits: number): number {
  let c = de.start;
  if (fatBits === 32) c = (c | (de.starthi << 16)) >>> 0;
  return c;
}

/** fat_set_start: both halves, as Linux writes them whatever the FAT width. */
export function fat_set_start(de: MsdosDirEntry, cluster: number): void {
  de.start = cluster & 0xffff;
  de.starthi = (cluster >>> 16) & 0xffff;
}

/** IS_FREE: never used (0) or deleted (0xE5). */
export function fat_is_free(name0: number): boolean {
  return name0 === 0 || name0 === DELETED_FLAG;
}

export function fat_is_dot(name: Uint8Array): boolean {
  return bytesEqStr(name, MSDOS_DOT) || bytesEqStr(name, MSDOS_DOTDOT);
}

function bytesEqStr(b: Uint8Array, s: string): boolean {
  if (b.length < s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[i] !== s.charCodeAt(i)) return false;
  return true;
}

/** fat_checksum: the 8.3 alias checksum every long-name slot of the alias carries. */
export function fat_checksum(name: Uint8Array | string): number {
  let s = 0;
  for (let i = 0; i < MSDOS_NAME; i++) {
    const c = typeof name === 'string' ? name.charCodeAt(i) & 0xff : name[i]!;
    s = ((((s & 1) << 7) | ((s & 0xfe) >> 1)) + c) & 0xff;
  }
  return s;
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

/**
 * vfat_build_slots' long part: splits a long name (UTF-16, already validated, at most 255
 * units) into slots in disk order, the LAST_LONG_ENTRY slot first. A name that does not
 * fill its last slot is ended by one 0x0000 then padded with 0xFFFF; a name that fills it
 * exactly gets neither.
 */
export function vfat_split_long_name(uname: Uint16Array, aliasChecksum: number): MsdosDirSlot[] {
  const n = Math.ceil(uname.length / FAT_LFN_CHARS_PER_SLOT);
  if (n === 0 || n > FAT_MAX_LFN_SLOTS) throw new RangeError(`long name of ${uname.length} units`);
  const padded = new Uint16Array(n * FAT_LFN_CHARS_PER_SLOT).fill(0xffff);
  padded.set(uname);
  if (uname.length < padded.length) padded[uname.length] = 0;
  const slots: MsdosDirSlot[] = [];
  for (let i = n; i >= 1; i--) {
    slots.push({
      id: i === n ? i | LAST_LONG_ENTRY : i,
      name: padded.slice((i - 1) * FAT_LFN_CHARS_PER_SLOT, i * FAT_LFN_CHARS_PER_SLOT),
      attr: ATTR_EXT,
      reserved: 0,
      aliasChecksum,
      start: 0,
    });
  }
  return slots;
}

/**
 * Encodes a whole directory record: long-name slots (if uname is given) then the 8.3 entry,
 * whose name provides the alias checksum. Returns (slots + 1) * 32 bytes.
 */
export function vfat_encode_record(de: MsdosDirEntry, uname: Uint16Array | null): Uint8Array {
  const slots = uname && uname.length ? vfat_split_long_name(uname, fat_checksum(de.name)) : [];
  const out = new Uint8Array((slots.length + 1) * MSDOS_DIR_ENTRY_SIZE);
  slots.forEach((s, i) => msdos_dir_slot_encode(s, out, i * MSDOS_DIR_ENTRY_SIZE));
  msdos_dir_entry_encode(de, out, slots.length * MSDOS_DIR_ENTRY_SIZE);
  return out;
}

/** One directory record as readdir/lookup see it: an 8.3 entry and its long name, if any. */
export interface FatDirRecord {
  /** Byte offset of the 8.3 entry in the directory. */
  offset: number;
  /** Byte offset of the record's first slot (= offset when there is no long name). */
  slotOffset: number;
  /** Long-name slots that belong to the entry (0: none, or they failed the checksum). */
  nrSlots: number;
  de: MsdosDirEntry;
  /** The long name up to its 0x0000 terminator, or null. */
  longName: Uint16Array | null;
}

export interface FatDirParseOptions {
  /** Treat long-name slots at all (vfat); msdos mode reads 8.3 entries only. */
  isvfat?: boolean;
  /**
   * Stop at the first entry whose name[0] is 0. Linux never stops there (it scans the whole
   * directory, treating 0 as free); DOS, mtools and fsck.fat do. Default false.
   */
  stopAtZero?: boolean;
}

/**
 * __fat_readdir / fat_search_long over a directory's bytes (all its clusters, or the
 * FAT12/16 root area, concatenated): yields each live 8.3 entry with its long name.
 * Free and deleted entries and volume labels are skipped. Long names are gathered exactly
 * as fat_parse_long does: the run must start with a LAST_LONG_ENTRY slot of 1..20, count
 * down with one checksum; a slot out of sequence restarts the parse at that slot (which is
 * dropped if it cannot start a run); a deleted, free or volume entry after the run drops
 * the record; an 8.3 entry whose checksum differs keeps only its short name.
 */
export function* fat_dir_records(buf: Uint8Array, opts: FatDirParseOptions = {}): Generator<FatDirRecord> {
  const isvfat = opts.isvfat ?? true;
  const n = Math.floor(buf.length / MSDOS_DIR_ENTRY_SIZE);
  let i = 0;
  while (i < n) {
    const off = i * MSDOS_DIR_ENTRY_SIZE;
    const name0 = buf[off]!;
    const attr = buf[off + DE_ATTR]!;
    if (name0 === 0 && opts.stopAtZero) return;
    if (isvfat) {
      if (name0 === DELETED_FLAG) { i++; continue; }
      if (attr !== ATTR_EXT && attr & ATTR_VOLUME) { i++; continue; }
      if (attr !== ATTR_EXT && fat_is_free(name0)) { i++; continue; }
    } else if (attr & ATTR_VOLUME || fat_is_free(name0)) {
      i++;
      continue;
    }
    if (!(isvfat && attr === ATTR_EXT)) {
      yield { offset: off, slotOffset: off, nrSlots: 0, de: msdos_dir_entry_decode(buf, off), longName: null };
      i++;
      continue;
    }
    const r = parseLong(buf, i, n);
    if (r.kind === 'eof') return;
    if (r.kind === 'invalid') { i = r.next; continue; }
    if (r.kind === 'notlong') { i = r.next; continue; /* re-parsed as an ordinary entry */ }
    yield r.record;
    i = r.next;
  }
}

type ParseLong =
  | { kind: 'ok'; record: FatDirRecord; next: number }
  | { kind: 'invalid'; next: number }
  | { kind: 'notlong'; next: number }
  | { kind: 'eof' };

/* fat_parse_long: i indexes an ATTR_EXT entry. On 'invalid', next skips the entry the parse
 * stopped on; on 'notlong', next is that entry, to be read as a record of its own. */
function parseLong(buf: Uint8Array, start: number, n: number): ParseLong {
  let i = start;
  restart: while (true) {
    const first = i;
    let ds = msdos_dir_slot_decode(buf, i * MSDOS_DIR_ENTRY_SIZE);
    if (!(ds.id & LAST_LONG_ENTRY)) return { kind: 'invalid', next: i + 1 };
    const slots = ds.id & ~LAST_LONG_ENTRY;
    if (slots > FAT_MAX_LFN_SLOTS || !slots) return { kind: 'invalid', next: i + 1 };
    const checksum = ds.aliasChecksum;
    const unicode = new Uint16Array(slots * FAT_LFN_CHARS_PER_SLOT);
    let slot = slots;
    while (true) {
      slot--;
      unicode.set(ds.name, slot * FAT_LFN_CHARS_PER_SLOT);
      i++;
      if (i >= n) return { kind: 'eof' };
      if (slot === 0) break;
      const off = i * MSDOS_DIR_ENTRY_SIZE;
      if (buf[off + DS_ATTR] !== ATTR_EXT) return { kind: 'notlong', next: i };
      ds = msdos_dir_slot_decode(buf, off);
      if ((ds.id & ~LAST_LONG_ENTRY) !== slot || ds.aliasChecksum !== checksum) continue restart;
    }
    const off = i * MSDOS_DIR_ENTRY_SIZE;
    const name0 = buf[off]!;
    const attr = buf[off + DE_ATTR]!;
    if (name0 === DELETED_FLAG) return { kind: 'invalid', next: i + 1 };
    if (attr === ATTR_EXT) continue restart;
    if (fat_is_free(name0) || attr & ATTR_VOLUME) return { kind: 'invalid', next: i + 1 };
    const de = msdos_dir_entry_decode(buf, off);
    if (fat_checksum(de.name) !== checksum)
      return { kind: 'ok', record: { offset: off, slotOffset: off, nrSlots: 0, de, longName: null }, next: i + 1 };
    let len = unicode.indexOf(0);
    if (len < 0) len = unicode.length;
    return {
      kind: 'ok',
      record: {
        offset: off,
        slotOffset: first * MSDOS_DIR_ENTRY_SIZE,
        nrSlots: slots,
        de,
        longName: unicode.slice(0, len),
      },
      next: i + 1,
    };
  }
}

/**
 * The volume label: the first entry with ATTR_VOLUME that is not a long-name slot (root
 * directory only). Returns its 11 bytes, or null.
 */
export function fat_find_volume_label(buf: Uint8Array): Uint8Array | null {
  for (let off = 0; off + MSDOS_DIR_ENTRY_SIZE <= buf.length; off += MSDOS_DIR_ENTRY_SIZE) {
    const name0 = buf[off]!;
    if (name0 === 0) return null;
    const attr = buf[off + DE_ATTR]!;
    if (name0 !== DELETED_FLAG && attr !== ATTR_EXT && attr & ATTR_VOLUME)
      return buf.slice(off, off + MSDOS_NAME);
  }
  return null;
}
