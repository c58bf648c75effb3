/*
 * Filesystem type detection for lklfuse when no type= is given, in the spirit of blkid: read
 * the first 64 KiB of the block device and look for an ext2/3/4 superblock or a FAT boot
 * sector. Also recognises an MBR partition table so a whole-disk image with partitions gets
 * a useful hint. Works on a buffer; the caller reads it (through the kernel's /dev/vdX).
 */

/* ext4 superblock (fs/ext4/ext4.h struct ext4_super_block), at byte 1024 of the device */
const EXT_SB = 1024;
const S_INODES_COUNT = 0x00, S_BLOCKS_COUNT_LO = 0x04, S_LOG_BLOCK_SIZE = 0x18,
  S_MAGIC = 0x38, S_REV_LEVEL = 0x4c, S_FEATURE_COMPAT = 0x5c, S_FEATURE_INCOMPAT = 0x60,
  S_FEATURE_RO_COMPAT = 0x64;
const EXT4_SUPER_MAGIC = 0xef53;
const COMPAT_HAS_JOURNAL = 0x4;
/* incompat features ext3 knows: FILETYPE, RECOVER, JOURNAL_DEV, META_BG */
const EXT3_INCOMPAT_SUPP = 0x2 | 0x4 | 0x8 | 0x10;
/* ro_compat features ext3 knows: SPARSE_SUPER, LARGE_FILE, BTREE_DIR */
const EXT3_RO_COMPAT_SUPP = 0x1 | 0x2 | 0x4;
const INCOMPAT_JOURNAL_DEV = 0x8;

const INCOMPAT_NAMES: Record<number, string> = {
  0x40: 'extent', 0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg', 0x400: 'ea_inode',
  0x1000: 'dirdata', 0x2000: 'metadata_csum_seed', 0x4000: 'large_dir', 0x8000: 'inline_data',
  0x10000: 'encrypt', 0x20000: 'casefold',
};
const RO_COMPAT_NAMES: Record<number, string> = {
  0x8: 'huge_file', 0x10: 'uninit_bg', 0x20: 'dir_nlink', 0x40: 'extra_isize', 0x100: 'quota',
  0x200: 'bigalloc', 0x400: 'metadata_csum', 0x1000: 'read-only', 0x2000: 'project',
  0x8000: 'verity', 0x10000: 'orphan_present',
};

export interface Detection {
  type?: 'ext2' | 'ext3' | 'ext4' | 'vfat';
  /** What was found, in words: "ext4 (has_journal, extent, 64bit)", "FAT32 boot sector". */
  reason: string;
  /** A DOS partition table was found (and no filesystem on the whole device). */
  partitions?: number[];
}

function featureNames(bits: number, names: Record<number, string>): string[] {
  const out: string[] = [];
  for (let b = 1; b !== 0 && b <= 0x80000000; b = (b << 1) >>> 0) {
    if (bits & b) out.push(names[b] ?? `0x${b.toString(16)}`);
  }
  return out;
}

function detectExt(dv: DataView): Detection | undefined {
  if (dv.byteLength < EXT_SB + 0x68) return undefined;
  if (dv.getUint16(EXT_SB + S_MAGIC, true) !== EXT4_SUPER_MAGIC) return undefined;
  const compat = dv.getUint32(EXT_SB + S_FEATURE_COMPAT, true);
  const incompat = dv.getUint32(EXT_SB + S_FEATURE_INCOMPAT, true);
  const roCompat = dv.getUint32(EXT_SB + S_FEATURE_RO_COMPAT, true);
  if (incompat & INCOMPAT_JOURNAL_DEV) {
    return { reason: 'an ext journal device (external journal), not a filesystem' };
  }
  const rev = dv.getUint32(EXT_SB + S_REV_LEVEL, true);
  const extra = [
    ...featureNames(incompat & ~EXT3_INCOMPAT_SUPP, INCOMPAT_NAMES),
    ...featureNames(roCompat & ~EXT3_RO_COMPAT_SUPP, RO_COMPAT_NAMES),
  ];
  const journal = (compat & COMPAT_HAS_JOURNAL) !== 0;
  // As blkid: features ext3 lacks make it ext4 (journal or not); else a journal makes ext3.
  const type = rev > 0 && extra.length ? 'ext4' : journal ? 'ext3' : 'ext2';
  const feats = [...(journal ? ['has_journal'] : []), ...extra];
  return { type, reason: `${type} superblock${feats.length ? ` (${feats.join(', ')})` : ''}` };
}

/** Sanity checks of a FAT boot sector (BPB), as the Linux fat driver and blkid make them. */
function detectFat(b: Uint8Array, dv: DataView): Detection | undefined {
  if (b.length < 512) return undefined;
  if (b[510] !== 0x55 || b[511] !== 0xaa) return undefined;
  if (b[0] !== 0xeb && b[0] !== 0xe9) return undefined; // a jump instruction
  const bytesPerSector = dv.getUint16(11, true);
  const secPerClus = b[13]!;
  const reserved = dv.getUint16(14, true);
  const fats = b[16]!;
  const media = b[21]!;
  if (![512, 1024, 2048, 4096].includes(bytesPerSector)) return undefined;
  if (secPerClus === 0 || (secPerClus & (secPerClus - 1)) !== 0) return undefined;
  if (reserved === 0 || fats === 0 || fats > 4) return undefined;
  if (media !== 0xf0 && media < 0xf8) return undefined;
  const fatSize16 = dv.getUint16(22, true);
  const label = (off: number) => String.fromCharCode(...b.subarray(off, off + 8)).trimEnd();
  const kind = fatSize16 === 0 ? (label(82) || 'FAT32') : (label(54) || 'FAT');
  return { type: 'vfat', reason: `${kind.startsWith('FAT') ? kind : 'FAT'} boot sector` };
}

/** Primary partitions of a DOS (MBR) table, by number (1-4), or [] if there is none. */
function mbrPartitions(b: Uint8Array, dv: DataView): number[] {
  if (b.length < 512 || b[510] !== 0x55 || b[511] !== 0xaa) return [];
  const parts: number[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + 16 * i;
    const status = b[e]!;
    if (status !== 0 && status !== 0x80) return [];
    const sysType = b[e + 4]!;
    const sectors = dv.getUint32(e + 12, true);
    if (sysType !== 0 && sectors !== 0) parts.push(i + 1);
  }
  return parts;
}

/**
 * Detects the filesystem in the first bytes of a device (pass at least 2 KiB; 4 KiB or
 * more is better). Never throws.
 */
export function detectFs(buf: Uint8Array): Detection {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const ext = detectExt(dv);
  if (ext) return ext;
  const fat = detectFat(buf, dv);
  if (fat) return fat;
  const parts = mbrPartitions(buf, dv);
  if (parts.length) {
    return { reason: `a DOS partition table (partitions ${parts.join(', ')})`, partitions: parts };
  }
  if (buf.every((x) => x === 0)) return { reason: 'only zeros at the start of the device' };
  return { reason: 'no ext2/ext3/ext4 superblock or FAT boot sector' };
}

/* Exported for tests: offsets of the ext superblock fields lklfuse reads. */
export const EXT_LAYOUT = {
  EXT_SB, S_INODES_COUNT, S_BLOCKS_COUNT_LO, S_LOG_BLOCK_SIZE, S_MAGIC, S_REV_LEVEL,
  S_FEATURE_COMPAT, S_FEATURE_INCOMPAT, S_FEATURE_RO_COMPAT,
} as const;
