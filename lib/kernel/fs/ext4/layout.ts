/*
 * ext2/ext3/ext4 on-disk structures of fs/ext4/ext4.h (superblock, group descriptors,
 * inodes, directory entries and htree, MMP and orphan blocks): field offsets, decode and
 * encode over Uint8Array, the feature and flag constants, and validators that name what is
 * wrong with a structure. Extents, xattrs and ACLs are in ext4_extents.h.ts, xattr.h.ts
 * and acl.h.ts, as Linux keeps them in their own headers. Pure
 * codecs with no kernel state and no I/O: the mount, read and write paths bring the bytes.
 * Pure kernel code: imports nothing outside lib/kernel.
 *
 * Everything on disk is little-endian. Each struct is described once, as a table of
 * (Linux field name, byte offset, kind); decode and encode are both driven by that table,
 * so the two directions cannot disagree. Decoded structs hold the raw on-disk fields (lo and
 * hi halves kept apart, as in <fs/ext4/ext4.h>); helpers below combine them the way Linux
 * does, so an encode after a decode writes back exactly what was read. Encoders write into
 * an existing buffer and touch only their fields: bytes we do not model (padding, in-inode
 * xattr space, unknown future fields) survive a read-modify-write.
 *
 * References: fs/ext4/ext4.h, ext4_extents.h, xattr.h, acl.h, namei.c, dir.c,
 * Documentation/filesystems/ext4/.
 */


/** Bytes up to the first NUL, as Latin-1 (volume names are arbitrary bytes). */
export function cstring(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length && b[i] !== 0; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** 16 bytes → "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as dumpe2fs prints it. */
export function uuidToString(u: Uint8Array): string {
  const h = Array.from(u.subarray(0, 16), (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/* The struct codec and byte accessors live in lib/struct.ts (shared with jbd2 and fat). */
import {
  HI32, hi32, lo32, dataView, decodeStruct, encodeStruct, fieldSize, le16, le32, offsetsOf,
  put_le16, put_le32,
  type FieldDef, type FieldKind, type StructOf,
} from '../../lib/struct.js';
export {
  dataView, decodeStruct, encodeStruct, fieldSize, le16, le32, offsetsOf, put_le16, put_le32,
  type FieldDef, type FieldKind, type StructOf,
};

/* ------------------------------------------------------------------------------------ */
/* Superblock (struct ext4_super_block): 1024 bytes at byte 1024 of the device           */

export const EXT4_SUPER_MAGIC = 0xef53;
export const EXT4_SUPERBLOCK_OFFSET = 1024;
export const EXT4_SUPERBLOCK_SIZE = 1024;
export const EXT4_MIN_BLOCK_LOG_SIZE = 10;
export const EXT4_MAX_BLOCK_LOG_SIZE = 16;
export const EXT4_MIN_BLOCK_SIZE = 1024;
export const EXT4_MAX_BLOCK_SIZE = 65536;

export const ext4_super_block_fields = [
  ['s_inodes_count', 0x0, 'u32'],
  ['s_blocks_count_lo', 0x4, 'u32'],
  ['s_r_blocks_count_lo', 0x8, 'u32'],
  ['s_free_blocks_count_lo', 0xc, 'u32'],
  ['s_free_inodes_count', 0x10, 'u32'],
  ['s_first_data_block', 0x14, 'u32'],
  ['s_log_block_size', 0x18, 'u32'],
  ['s_log_cluster_size', 0x1c, 'u32'],
  ['s_blocks_per_group', 0x20, 'u32'],
  ['s_clusters_per_group', 0x24, 'u32'],
  ['s_inodes_per_group', 0x28, 'u32'],
  ['s_mtime', 0x2c, 'u32'],
  ['s_wtime', 0x30, 'u32'],
  ['s_mnt_count', 0x34, 'u16'],
  ['s_max_mnt_count', 0x36, 's16'],
  ['s_magic', 0x38, 'u16'],
  ['s_state', 0x3a, 'u16'],
  ['s_errors', 0x3c, 'u16'],
  ['s_minor_rev_level', 0x3e, 'u16'],
  ['s_lastcheck', 0x40, 'u32'],
  ['s_checkinterval', 0x44, 'u32'],
  ['s_creator_os', 0x48, 'u32'],
  ['s_rev_level', 0x4c, 'u32'],
  ['s_def_resuid', 0x50, 'u16'],
  ['s_def_resgid', 0x52, 'u16'],
  /* EXT4_DYNAMIC_REV superblocks only */
  ['s_first_ino', 0x54, 'u32'],
  ['s_inode_size', 0x58, 'u16'],
  ['s_block_group_nr', 0x5a, 'u16'],
  ['s_feature_compat', 0x5c, 'u32'],
  ['s_feature_incompat', 0x60, 'u32'],
  ['s_feature_ro_compat', 0x64, 'u32'],
  ['s_uuid', 0x68, 'bytes16'],
  ['s_volume_name', 0x78, 'bytes16'],
  ['s_last_mounted', 0x88, 'bytes64'],
  ['s_algorithm_usage_bitmap', 0xc8, 'u32'],
  ['s_prealloc_blocks', 0xcc, 'u8'],
  ['s_prealloc_dir_blocks', 0xcd, 'u8'],
  ['s_reserved_gdt_blocks', 0xce, 'u16'],
  /* journalling (COMPAT_HAS_JOURNAL) */
  ['s_journal_uuid', 0xd0, 'bytes16'],
  ['s_journal_inum', 0xe0, 'u32'],
  ['s_journal_dev', 0xe4, 'u32'],
  ['s_last_orphan', 0xe8, 'u32'],
  ['s_hash_seed', 0xec, 'u32x4'],
  ['s_def_hash_version', 0xfc, 'u8'],
  ['s_jnl_backup_type', 0xfd, 'u8'],
  ['s_desc_size', 0xfe, 'u16'],
  ['s_default_mount_opts', 0x100, 'u32'],
  ['s_first_meta_bg', 0x104, 'u32'],
  ['s_mkfs_time', 0x108, 'u32'],
  ['s_jnl_blocks', 0x10c, 'u32x17'],
  /* INCOMPAT_64BIT */
  ['s_blocks_count_hi', 0x150, 'u32'],
  ['s_r_blocks_count_hi', 0x154, 'u32'],
  ['s_free_blocks_count_hi', 0x158, 'u32'],
  ['s_min_extra_isize', 0x15c, 'u16'],
  ['s_want_extra_isize', 0x15e, 'u16'],
  ['s_flags', 0x160, 'u32'],
  ['s_raid_stride', 0x164, 'u16'],
  ['s_mmp_update_interval', 0x166, 'u16'],
  ['s_mmp_block', 0x168, 'u64'],
  ['s_raid_stripe_width', 0x170, 'u32'],
  ['s_log_groups_per_flex', 0x174, 'u8'],
  ['s_checksum_type', 0x175, 'u8'],
  ['s_encryption_level', 0x176, 'u8'],
  ['s_reserved_pad', 0x177, 'u8'],
  ['s_kbytes_written', 0x178, 'u64'],
  ['s_snapshot_inum', 0x180, 'u32'],
  ['s_snapshot_id', 0x184, 'u32'],
  ['s_snapshot_r_blocks_count', 0x188, 'u64'],
  ['s_snapshot_list', 0x190, 'u32'],
  ['s_error_count', 0x194, 'u32'],
  ['s_first_error_time', 0x198, 'u32'],
  ['s_first_error_ino', 0x19c, 'u32'],
  ['s_first_error_block', 0x1a0, 'u64'],
  ['s_first_error_func', 0x1a8, 'bytes32'],
  ['s_first_error_line', 0x1c8, 'u32'],
  ['s_last_error_time', 0x1cc, 'u32'],
  ['s_last_error_ino', 0x1d0, 'u32'],
  ['s_last_error_line', 0x1d4, 'u32'],
  ['s_last_error_block', 0x1d8, 'u64'],
  ['s_last_error_func', 0x1e0, 'bytes32'],
  ['s_mount_opts', 0x200, 'bytes64'],
  ['s_usr_quota_inum', 0x240, 'u32'],
  ['s_grp_quota_inum', 0x244, 'u32'],
  ['s_overhead_clusters', 0x248, 'u32'],
  ['s_backup_bgs', 0x24c, 'u32x2'],
  ['s_encrypt_algos', 0x254, 'bytes4'],
  ['s_encrypt_pw_salt', 0x258, 'bytes16'],
  ['s_lpf_ino', 0x268, 'u32'],
  ['s_prj_quota_inum', 0x26c, 'u32'],
  ['s_checksum_seed', 0x270, 'u32'],
  ['s_wtime_hi', 0x274, 'u8'],
  ['s_mtime_hi', 0x275, 'u8'],
  ['s_mkfs_time_hi', 0x276, 'u8'],
  ['s_lastcheck_hi', 0x277, 'u8'],
  ['s_first_error_time_hi', 0x278, 'u8'],
  ['s_last_error_time_hi', 0x279, 'u8'],
  ['s_first_error_errcode', 0x27a, 'u8'],
  ['s_last_error_errcode', 0x27b, 'u8'],
  ['s_encoding', 0x27c, 'u16'],
  ['s_encoding_flags', 0x27e, 'u16'],
  ['s_orphan_file_inum', 0x280, 'u32'],
  /* s_reserved[94] at 0x284 */
  ['s_checksum', 0x3fc, 'u32'],
] as const satisfies readonly FieldDef[];

export type ext4_super_block = StructOf<typeof ext4_super_block_fields>;
export const EXT4_SB_OFF = offsetsOf(ext4_super_block_fields);

/** Decodes the 1024-byte superblock found at `off` (pass 1024 for a whole-device buffer). */
export function ext4_super_decode(buf: Uint8Array, off = 0): ext4_super_block {
  return decodeStruct(ext4_super_block_fields, buf, off);
}
export function ext4_super_encode(sb: ext4_super_block, buf: Uint8Array, off = 0): void {
  encodeStruct(ext4_super_block_fields, sb, buf, off);
}

/* s_state */
export const EXT4_VALID_FS = 0x0001, EXT4_ERROR_FS = 0x0002, EXT4_ORPHAN_FS = 0x0004,
  EXT4_FC_REPLAY = 0x0020;
/* s_errors */
export const EXT4_ERRORS_CONTINUE = 1, EXT4_ERRORS_RO = 2, EXT4_ERRORS_PANIC = 3;
/* s_rev_level */
export const EXT4_GOOD_OLD_REV = 0, EXT4_DYNAMIC_REV = 1;
export const EXT4_GOOD_OLD_FIRST_INO = 11, EXT4_GOOD_OLD_INODE_SIZE = 128;
/* s_creator_os */
export const EXT4_OS_LINUX = 0, EXT4_OS_HURD = 1;
/* s_flags */
export const EXT2_FLAGS_SIGNED_HASH = 0x0001, EXT2_FLAGS_UNSIGNED_HASH = 0x0002,
  EXT2_FLAGS_TEST_FILESYS = 0x0004;
/* s_checksum_type */
export const EXT4_CRC32C_CHKSUM = 1;
/* s_default_mount_opts */
export const EXT4_DEFM_DEBUG = 0x0001, EXT4_DEFM_BSDGROUPS = 0x0002, EXT4_DEFM_XATTR_USER = 0x0004,
  EXT4_DEFM_ACL = 0x0008, EXT4_DEFM_UID16 = 0x0010, EXT4_DEFM_JMODE = 0x0060,
  EXT4_DEFM_JMODE_DATA = 0x0020, EXT4_DEFM_JMODE_ORDERED = 0x0040, EXT4_DEFM_JMODE_WBACK = 0x0060,
  EXT4_DEFM_NOBARRIER = 0x0100, EXT4_DEFM_BLOCK_VALIDITY = 0x0200, EXT4_DEFM_DISCARD = 0x0400,
  EXT4_DEFM_NODELALLOC = 0x0800;
/* s_encoding */
export const EXT4_ENC_UTF8_12_1 = 1;
/* Reserved inode numbers */
export const EXT4_BAD_INO = 1, EXT4_ROOT_INO = 2, EXT4_USR_QUOTA_INO = 3, EXT4_GRP_QUOTA_INO = 4,
  EXT4_BOOT_LOADER_INO = 5, EXT4_UNDEL_DIR_INO = 6, EXT4_RESIZE_INO = 7, EXT4_JOURNAL_INO = 8;

/* Feature flags (s_feature_compat / _incompat / _ro_compat) */
export const EXT4_FEATURE_COMPAT_DIR_PREALLOC = 0x0001;
export const EXT4_FEATURE_COMPAT_IMAGIC_INODES = 0x0002;
export const EXT4_FEATURE_COMPAT_HAS_JOURNAL = 0x0004;
export const EXT4_FEATURE_COMPAT_EXT_ATTR = 0x0008;
export const EXT4_FEATURE_COMPAT_RESIZE_INODE = 0x0010;
export const EXT4_FEATURE_COMPAT_DIR_INDEX = 0x0020;
export const EXT4_FEATURE_COMPAT_LAZY_BG = 0x0040;
export const EXT4_FEATURE_COMPAT_EXCLUDE_BITMAP = 0x0100;
export const EXT4_FEATURE_COMPAT_SPARSE_SUPER2 = 0x0200;
export const EXT4_FEATURE_COMPAT_FAST_COMMIT = 0x0400;
export const EXT4_FEATURE_COMPAT_STABLE_INODES = 0x0800;
export const EXT4_FEATURE_COMPAT_ORPHAN_FILE = 0x1000;

export const EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER = 0x0001;
export const EXT4_FEATURE_RO_COMPAT_LARGE_FILE = 0x0002;
export const EXT4_FEATURE_RO_COMPAT_BTREE_DIR = 0x0004;
export const EXT4_FEATURE_RO_COMPAT_HUGE_FILE = 0x0008;
export const EXT4_FEATURE_RO_COMPAT_GDT_CSUM = 0x0010;
export const EXT4_FEATURE_RO_COMPAT_DIR_NLINK = 0x0020;
export const EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE = 0x0040;
export const EXT4_FEATURE_RO_COMPAT_HAS_SNAPSHOT = 0x0080;
export const EXT4_FEATURE_RO_COMPAT_QUOTA = 0x0100;
export const EXT4_FEATURE_RO_COMPAT_BIGALLOC = 0x0200;
export const EXT4_FEATURE_RO_COMPAT_METADATA_CSUM = 0x0400;
export const EXT4_FEATURE_RO_COMPAT_REPLICA = 0x0800;
export const EXT4_FEATURE_RO_COMPAT_READONLY = 0x1000;
export const EXT4_FEATURE_RO_COMPAT_PROJECT = 0x2000;
export const EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS = 0x4000;
export const EXT4_FEATURE_RO_COMPAT_VERITY = 0x8000;
export const EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT = 0x10000;

export const EXT4_FEATURE_INCOMPAT_COMPRESSION = 0x0001;
export const EXT4_FEATURE_INCOMPAT_FILETYPE = 0x0002;
export const EXT4_FEATURE_INCOMPAT_RECOVER = 0x0004;
export const EXT4_FEATURE_INCOMPAT_JOURNAL_DEV = 0x0008;
export const EXT4_FEATURE_INCOMPAT_META_BG = 0x0010;
export const EXT4_FEATURE_INCOMPAT_EXTENTS = 0x0040;
export const EXT4_FEATURE_INCOMPAT_64BIT = 0x0080;
export const EXT4_FEATURE_INCOMPAT_MMP = 0x0100;
export const EXT4_FEATURE_INCOMPAT_FLEX_BG = 0x0200;
export const EXT4_FEATURE_INCOMPAT_EA_INODE = 0x0400;
export const EXT4_FEATURE_INCOMPAT_DIRDATA = 0x1000;
export const EXT4_FEATURE_INCOMPAT_CSUM_SEED = 0x2000;
export const EXT4_FEATURE_INCOMPAT_LARGEDIR = 0x4000;
export const EXT4_FEATURE_INCOMPAT_INLINE_DATA = 0x8000;
export const EXT4_FEATURE_INCOMPAT_ENCRYPT = 0x10000;
export const EXT4_FEATURE_INCOMPAT_CASEFOLD = 0x20000;

/*
 * What Linux's ext2, ext3 and ext4 drivers accept (ext4.h *_FEATURE_*_SUPP). An unknown
 * incompat bit means "refuse to mount"; an unknown ro_compat bit means "read-only only";
 * unknown compat bits are harmless. What lkl-ts itself implements may be narrower: the
 * mount code intersects.
 */
export const EXT2_FEATURE_COMPAT_SUPP = EXT4_FEATURE_COMPAT_EXT_ATTR;
export const EXT2_FEATURE_INCOMPAT_SUPP = EXT4_FEATURE_INCOMPAT_FILETYPE | EXT4_FEATURE_INCOMPAT_META_BG;
export const EXT2_FEATURE_RO_COMPAT_SUPP = EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER |
  EXT4_FEATURE_RO_COMPAT_LARGE_FILE | EXT4_FEATURE_RO_COMPAT_BTREE_DIR;
export const EXT3_FEATURE_COMPAT_SUPP = EXT4_FEATURE_COMPAT_EXT_ATTR;
export const EXT3_FEATURE_INCOMPAT_SUPP = EXT4_FEATURE_INCOMPAT_FILETYPE |
  EXT4_FEATURE_INCOMPAT_RECOVER | EXT4_FEATURE_INCOMPAT_META_BG;
export const EXT3_FEATURE_RO_COMPAT_SUPP = EXT2_FEATURE_RO_COMPAT_SUPP;
export const EXT4_FEATURE_COMPAT_SUPP = EXT4_FEATURE_COMPAT_EXT_ATTR | EXT4_FEATURE_COMPAT_ORPHAN_FILE;
export const EXT4_FEATURE_INCOMPAT_SUPP = EXT4_FEATURE_INCOMPAT_FILETYPE |
  EXT4_FEATURE_INCOMPAT_RECOVER | EXT4_FEATURE_INCOMPAT_META_BG | EXT4_FEATURE_INCOMPAT_EXTENTS |
  EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_EA_INODE |
  EXT4_FEATURE_INCOMPAT_MMP | EXT4_FEATURE_INCOMPAT_INLINE_DATA | EXT4_FEATURE_INCOMPAT_ENCRYPT |
  EXT4_FEATURE_INCOMPAT_CASEFOLD | EXT4_FEATURE_INCOMPAT_CSUM_SEED | EXT4_FEATURE_INCOMPAT_LARGEDIR;
export const EXT4_FEATURE_RO_COMPAT_SUPP = EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER |
  EXT4_FEATURE_RO_COMPAT_LARGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
  EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |
  EXT4_FEATURE_RO_COMPAT_BTREE_DIR | EXT4_FEATURE_RO_COMPAT_HUGE_FILE |
  EXT4_FEATURE_RO_COMPAT_BIGALLOC | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM |
  EXT4_FEATURE_RO_COMPAT_QUOTA | EXT4_FEATURE_RO_COMPAT_PROJECT | EXT4_FEATURE_RO_COMPAT_VERITY |
  EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT;

export type FeatureWord = 'compat' | 'incompat' | 'ro_compat';

export function ext4_has_compat(sb: ext4_super_block, mask: number): boolean {
  return (sb.s_feature_compat & mask) !== 0;
}
export function ext4_has_incompat(sb: ext4_super_block, mask: number): boolean {
  return (sb.s_feature_incompat & mask) !== 0;
}
export function ext4_has_ro_compat(sb: ext4_super_block, mask: number): boolean {
  return (sb.s_feature_ro_compat & mask) !== 0;
}
export function ext4_has_metadata_csum(sb: ext4_super_block): boolean {
  return ext4_has_ro_compat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
}

/** Feature bits set on disk that the named Linux driver does not know, per word (0 = none). */
export function ext4_unknown_features(sb: ext4_super_block, driver: 'ext2' | 'ext3' | 'ext4' = 'ext4'):
  { compat: number; incompat: number; ro_compat: number } {
  const [c, i, r] = driver === 'ext2'
    ? [EXT2_FEATURE_COMPAT_SUPP, EXT2_FEATURE_INCOMPAT_SUPP, EXT2_FEATURE_RO_COMPAT_SUPP]
    : driver === 'ext3'
      ? [EXT3_FEATURE_COMPAT_SUPP, EXT3_FEATURE_INCOMPAT_SUPP, EXT3_FEATURE_RO_COMPAT_SUPP]
      : [EXT4_FEATURE_COMPAT_SUPP, EXT4_FEATURE_INCOMPAT_SUPP, EXT4_FEATURE_RO_COMPAT_SUPP];
  return {
    compat: (sb.s_feature_compat & ~c) >>> 0,
    incompat: (sb.s_feature_incompat & ~i) >>> 0,
    ro_compat: (sb.s_feature_ro_compat & ~r) >>> 0,
  };
}

/* e2fsprogs' names (lib/e2p/feature.c), so messages and tests speak dumpe2fs's language. */
const FEATURE_NAMES: Record<FeatureWord, Record<number, string>> = {
  compat: {
    0x1: 'dir_prealloc', 0x2: 'imagic_inodes', 0x4: 'has_journal', 0x8: 'ext_attr',
    0x10: 'resize_inode', 0x20: 'dir_index', 0x40: 'lazy_bg', 0x100: 'snapshot_bitmap',
    0x200: 'sparse_super2', 0x400: 'fast_commit', 0x800: 'stable_inodes', 0x1000: 'orphan_file',
  },
  incompat: {
    0x1: 'compression', 0x2: 'filetype', 0x4: 'needs_recovery', 0x8: 'journal_dev',
    0x10: 'meta_bg', 0x40: 'extent', 0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg',
    0x400: 'ea_inode', 0x1000: 'dirdata', 0x2000: 'metadata_csum_seed', 0x4000: 'large_dir',
    0x8000: 'inline_data', 0x10000: 'encrypt', 0x20000: 'casefold',
  },
  ro_compat: {
    0x1: 'sparse_super', 0x2: 'large_file', 0x4: 'btree_dir', 0x8: 'huge_file', 0x10: 'uninit_bg',
    0x20: 'dir_nlink', 0x40: 'extra_isize', 0x80: 'snapshot', 0x100: 'quota', 0x200: 'bigalloc',
    0x400: 'metadata_csum', 0x800: 'replica', 0x1000: 'read-only', 0x2000: 'project',
    0x4000: 'shared_blocks', 0x8000: 'verity', 0x10000: 'orphan_present',
  },
};

/** The name of one feature bit; unknown bits as e2p prints them (FEATURE_I17...). */
export function ext4_feature_name(word: FeatureWord, bit: number): string {
  const n = FEATURE_NAMES[word][bit];
  if (n) return n;
  const letter = word === 'compat' ? 'C' : word === 'incompat' ? 'I' : 'R';
  return `FEATURE_${letter}${31 - Math.clz32(bit)}`;
}

/** The set features in dumpe2fs's order: compat, incompat, ro_compat, low bit first. */
export function ext4_feature_names(sb: ext4_super_block): string[] {
  const out: string[] = [];
  const words: [FeatureWord, number][] = [['compat', sb.s_feature_compat],
    ['incompat', sb.s_feature_incompat], ['ro_compat', sb.s_feature_ro_compat]];
  for (const [w, v] of words) {
    for (let b = 0; b < 32; b++) {
      const bit = (1 << b) >>> 0;
      if (v & bit) out.push(ext4_feature_name(w, bit));
    }
  }
  return out;
}

/* Derived superblock quantities, as Linux computes them */
export function ext4_block_size(sb: ext4_super_block): number { return 1024 * 2 ** sb.s_log_block_size; }
export function ext4_cluster_size(sb: ext4_super_block): number { return 1024 * 2 ** sb.s_log_cluster_size; }
export function ext4_inode_size(sb: ext4_super_block): number {
  return sb.s_rev_level === EXT4_GOOD_OLD_REV ? EXT4_GOOD_OLD_INODE_SIZE : sb.s_inode_size;
}
export function ext4_first_ino(sb: ext4_super_block): number {
  return sb.s_rev_level === EXT4_GOOD_OLD_REV ? EXT4_GOOD_OLD_FIRST_INO : sb.s_first_ino;
}
export const EXT4_MIN_DESC_SIZE = 32, EXT4_MIN_DESC_SIZE_64BIT = 64, EXT4_MAX_DESC_SIZE = 1024;
/** Bytes per group descriptor: s_desc_size with INCOMPAT_64BIT, else 32. */
export function ext4_desc_size(sb: ext4_super_block): number {
  return ext4_has_incompat(sb, EXT4_FEATURE_INCOMPAT_64BIT) ? sb.s_desc_size : EXT4_MIN_DESC_SIZE;
}
function sb64(sb: ext4_super_block, lo: number, hi: number): number {
  return ext4_has_incompat(sb, EXT4_FEATURE_INCOMPAT_64BIT) ? hi * HI32 + lo : lo;
}
export function ext4_blocks_count(sb: ext4_super_block): number {
  return sb64(sb, sb.s_blocks_count_lo, sb.s_blocks_count_hi);
}
export function ext4_r_blocks_count(sb: ext4_super_block): number {
  return sb64(sb, sb.s_r_blocks_count_lo, sb.s_r_blocks_count_hi);
}
export function ext4_free_blocks_count(sb: ext4_super_block): number {
  return sb64(sb, sb.s_free_blocks_count_lo, sb.s_free_blocks_count_hi);
}
export function ext4_blocks_count_set(sb: ext4_super_block, v: number): void {
  sb.s_blocks_count_lo = lo32(v); sb.s_blocks_count_hi = hi32(v);
}
export function ext4_r_blocks_count_set(sb: ext4_super_block, v: number): void {
  sb.s_r_blocks_count_lo = lo32(v); sb.s_r_blocks_count_hi = hi32(v);
}
export function ext4_free_blocks_count_set(sb: ext4_super_block, v: number): void {
  sb.s_free_blocks_count_lo = lo32(v); sb.s_free_blocks_count_hi = hi32(v);
}
export function ext4_groups_count(sb: ext4_super_block): number {
  return Math.ceil((ext4_blocks_count(sb) - sb.s_first_data_block) / sb.s_blocks_per_group);
}
/** A superblock time with its 8 extra high bits (s_wtime + s_wtime_hi...), unsigned as Linux. */
export function ext4_get_tstamp(lo: number, hi: number): number { return hi * HI32 + lo; }
/** Splits seconds into the (lo32, hi8) pair the superblock stores. */
export function ext4_split_tstamp(sec: number): [lo: number, hi: number] {
  return [lo32(sec), hi32(sec) & 0xff];
}
/** The hash version offset Linux adds for unsigned-char directory hashes (s_hash_unsigned). */
export function ext4_hash_unsigned(sb: ext4_super_block): number {
  return sb.s_flags & EXT2_FLAGS_UNSIGNED_HASH ? 3 : 0;
}

/**
 * The superblock checks ext4_fill_super makes before trusting geometry, with Linux's
 * messages. Returns the reason or null. Feature-set policy is ext4_unknown_features'.
 */
export function ext4_super_check(sb: ext4_super_block): string | null {
  if (sb.s_magic !== EXT4_SUPER_MAGIC) return "Can't find ext4 filesystem";
  if (sb.s_log_block_size > EXT4_MAX_BLOCK_LOG_SIZE - EXT4_MIN_BLOCK_LOG_SIZE)
    return `Invalid log block size: ${sb.s_log_block_size}`;
  if (sb.s_rev_level > EXT4_DYNAMIC_REV) return `unsupported revision level ${sb.s_rev_level}`;
  if (ext4_has_metadata_csum(sb) && ext4_has_ro_compat(sb, EXT4_FEATURE_RO_COMPAT_GDT_CSUM))
    return 'metadata_csum and uninit_bg are redundant flags; please run fsck.';
  if (ext4_has_metadata_csum(sb) && sb.s_checksum_type !== EXT4_CRC32C_CHKSUM)
    return 'VFS: Found ext4 filesystem with unknown checksum algorithm.';
  const bs = ext4_block_size(sb);
  if (sb.s_rev_level !== EXT4_GOOD_OLD_REV) {
    const isz = sb.s_inode_size;
    if (isz < EXT4_GOOD_OLD_INODE_SIZE || (isz & (isz - 1)) !== 0 || isz > bs)
      return `unsupported inode size: ${isz}`;
    if (sb.s_first_ino < EXT4_GOOD_OLD_FIRST_INO) return `invalid first ino: ${sb.s_first_ino}`;
  }
  if (ext4_has_incompat(sb, EXT4_FEATURE_INCOMPAT_64BIT)) {
    const d = sb.s_desc_size;
    if (d < EXT4_MIN_DESC_SIZE_64BIT || d > EXT4_MAX_DESC_SIZE || (d & (d - 1)) !== 0)
      return `unsupported descriptor size ${d}`;
  }
  if (sb.s_blocks_per_group === 0 || sb.s_blocks_per_group > bs * 8)
    return `#blocks per group too big: ${sb.s_blocks_per_group}`;
  const isz = ext4_inode_size(sb);
  if (sb.s_inodes_per_group < bs / isz || sb.s_inodes_per_group > bs * 8)
    return `invalid inodes per group: ${sb.s_inodes_per_group}`;
  if (sb.s_first_data_block >= ext4_blocks_count(sb))
    return `bad geometry: first data block ${sb.s_first_data_block} is beyond end of filesystem (${ext4_blocks_count(sb)})`;
  if (bs === 1024 && sb.s_first_data_block === 0 && !ext4_has_ro_compat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC))
    return 'bad geometry: first data block is 0 with a 1k block and cluster size';
  if (sb.s_inodes_count !== sb.s_inodes_per_group * ext4_groups_count(sb))
    return `inodes count not valid: ${sb.s_inodes_count} vs ${sb.s_inodes_per_group * ext4_groups_count(sb)}`;
  return null;
}

/* ------------------------------------------------------------------------------------ */
/* Group descriptor (struct ext4_group_desc): 32 bytes, or s_desc_size with 64BIT        */

export const ext4_group_desc_fields = [
  ['bg_block_bitmap_lo', 0x0, 'u32'],
  ['bg_inode_bitmap_lo', 0x4, 'u32'],
  ['bg_inode_table_lo', 0x8, 'u32'],
  ['bg_free_blocks_count_lo', 0xc, 'u16'],
  ['bg_free_inodes_count_lo', 0xe, 'u16'],
  ['bg_used_dirs_count_lo', 0x10, 'u16'],
  ['bg_flags', 0x12, 'u16'],
  ['bg_exclude_bitmap_lo', 0x14, 'u32'],
  ['bg_block_bitmap_csum_lo', 0x18, 'u16'],
  ['bg_inode_bitmap_csum_lo', 0x1a, 'u16'],
  ['bg_itable_unused_lo', 0x1c, 'u16'],
  ['bg_checksum', 0x1e, 'u16'],
  ['bg_block_bitmap_hi', 0x20, 'u32'],
  ['bg_inode_bitmap_hi', 0x24, 'u32'],
  ['bg_inode_table_hi', 0x28, 'u32'],
  ['bg_free_blocks_count_hi', 0x2c, 'u16'],
  ['bg_free_inodes_count_hi', 0x2e, 'u16'],
  ['bg_used_dirs_count_hi', 0x30, 'u16'],
  ['bg_itable_unused_hi', 0x32, 'u16'],
  ['bg_exclude_bitmap_hi', 0x34, 'u32'],
  ['bg_block_bitmap_csum_hi', 0x38, 'u16'],
  ['bg_inode_bitmap_csum_hi', 0x3a, 'u16'],
  ['bg_reserved', 0x3c, 'u32'],
] as const satisfies readonly FieldDef[];
export type ext4_group_desc = StructOf<typeof ext4_group_desc_fields>;
export const EXT4_BG_OFF = offsetsOf(ext4_group_desc_fields);
/* Ends of the checksum-hi fields: a descriptor shorter than this has no hi half (ext4.h). */
export const EXT4_BG_INODE_BITMAP_CSUM_HI_END = 0x3c;
export const EXT4_BG_BLOCK_BITMAP_CSUM_HI_END = 0x3a;
/* bg_flags */
export const EXT4_BG_INODE_UNINIT = 0x0001, EXT4_BG_BLOCK_UNINIT = 0x0002, EXT4_BG_INODE_ZEROED = 0x0004;

/** Decodes one descriptor of `descSize` bytes (ext4_desc_size); hi halves read 0 below 64. */
export function ext4_group_desc_decode(buf: Uint8Array, off: number, descSize: number): ext4_group_desc {
  return decodeStruct(ext4_group_desc_fields, buf, off, descSize);
}
export function ext4_group_desc_encode(gd: ext4_group_desc, buf: Uint8Array, off: number, descSize: number): void {
  encodeStruct(ext4_group_desc_fields, gd, buf, off, descSize);
}
/* The lo/hi combinations of ext4_block_bitmap() & co.; hi is 0 for 32-byte descriptors. */
export const ext4_block_bitmap = (g: ext4_group_desc): number => g.bg_block_bitmap_hi * HI32 + g.bg_block_bitmap_lo;
export const ext4_inode_bitmap = (g: ext4_group_desc): number => g.bg_inode_bitmap_hi * HI32 + g.bg_inode_bitmap_lo;
export const ext4_inode_table = (g: ext4_group_desc): number => g.bg_inode_table_hi * HI32 + g.bg_inode_table_lo;
export const ext4_free_group_clusters = (g: ext4_group_desc): number =>
  g.bg_free_blocks_count_hi * 0x10000 + g.bg_free_blocks_count_lo;
export const ext4_free_inodes_count = (g: ext4_group_desc): number =>
  g.bg_free_inodes_count_hi * 0x10000 + g.bg_free_inodes_count_lo;
export const ext4_used_dirs_count = (g: ext4_group_desc): number =>
  g.bg_used_dirs_count_hi * 0x10000 + g.bg_used_dirs_count_lo;
export const ext4_itable_unused_count = (g: ext4_group_desc): number =>
  g.bg_itable_unused_hi * 0x10000 + g.bg_itable_unused_lo;
export function ext4_block_bitmap_set(g: ext4_group_desc, v: number): void {
  g.bg_block_bitmap_lo = lo32(v); g.bg_block_bitmap_hi = hi32(v);
}
export function ext4_inode_bitmap_set(g: ext4_group_desc, v: number): void {
  g.bg_inode_bitmap_lo = lo32(v); g.bg_inode_bitmap_hi = hi32(v);
}
export function ext4_inode_table_set(g: ext4_group_desc, v: number): void {
  g.bg_inode_table_lo = lo32(v); g.bg_inode_table_hi = hi32(v);
}
export function ext4_free_group_clusters_set(g: ext4_group_desc, v: number): void {
  g.bg_free_blocks_count_lo = v & 0xffff; g.bg_free_blocks_count_hi = (v >>> 16) & 0xffff;
}
export function ext4_free_inodes_set(g: ext4_group_desc, v: number): void {
  g.bg_free_inodes_count_lo = v & 0xffff; g.bg_free_inodes_count_hi = (v >>> 16) & 0xffff;
}
export function ext4_used_dirs_set(g: ext4_group_desc, v: number): void {
  g.bg_used_dirs_count_lo = v & 0xffff; g.bg_used_dirs_count_hi = (v >>> 16) & 0xffff;
}
export function ext4_itable_unused_set(g: ext4_group_desc, v: number): void {
  g.bg_itable_unused_lo = v & 0xffff; g.bg_itable_unused_hi = (v >>> 16) & 0xffff;
}

/* ------------------------------------------------------------------------------------ */
/* Inode (struct ext4_inode): 128 bytes, plus i_extra_isize bytes of large-inode fields  */

export const EXT4_N_BLOCKS = 15;
export const ext4_inode_fields = [
  ['i_mode', 0x0, 'u16'],
  ['i_uid', 0x2, 'u16'],
  ['i_size_lo', 0x4, 'u32'],
  ['i_atime', 0x8, 'u32'],
  ['i_ctime', 0xc, 'u32'],
  ['i_mtime', 0x10, 'u32'],
  ['i_dtime', 0x14, 'u32'],
  ['i_gid', 0x18, 'u16'],
  ['i_links_count', 0x1a, 'u16'],
  ['i_blocks_lo', 0x1c, 'u32'],
  ['i_flags', 0x20, 'u32'],
  ['l_i_version', 0x24, 'u32'],
  /* Block map, extent tree root, inline data or fast symlink target: kept as raw bytes */
  ['i_block', 0x28, 'bytes60'],
  ['i_generation', 0x64, 'u32'],
  ['i_file_acl_lo', 0x68, 'u32'],
  ['i_size_high', 0x6c, 'u32'],
  ['i_obso_faddr', 0x70, 'u32'],
  ['l_i_blocks_high', 0x74, 'u16'],
  ['l_i_file_acl_high', 0x76, 'u16'],
  ['l_i_uid_high', 0x78, 'u16'],
  ['l_i_gid_high', 0x7a, 'u16'],
  ['l_i_checksum_lo', 0x7c, 'u16'],
  ['l_i_reserved', 0x7e, 'u16'],
  /* Large inodes: valid only where EXT4_GOOD_OLD_INODE_SIZE + i_extra_isize covers them */
  ['i_extra_isize', 0x80, 'u16'],
  ['i_checksum_hi', 0x82, 'u16'],
  ['i_ctime_extra', 0x84, 'u32'],
  ['i_mtime_extra', 0x88, 'u32'],
  ['i_atime_extra', 0x8c, 'u32'],
  ['i_crtime', 0x90, 'u32'],
  ['i_crtime_extra', 0x94, 'u32'],
  ['i_version_hi', 0x98, 'u32'],
  ['i_projid', 0x9c, 'u32'],
] as const satisfies readonly FieldDef[];
export type ext4_inode = StructOf<typeof ext4_inode_fields>;
export const EXT4_INODE_OFF = offsetsOf(ext4_inode_fields);
/** sizeof(struct ext4_inode) today; i_extra_isize beyond 160 - 128 is corruption. */
export const EXT4_INODE_STRUCT_SIZE = 0xa0;

/** EXT4_FITS_IN_INODE: does the large-inode field ending at `end` lie inside i_extra_isize? */
export function ext4_fits_in_inode(extraIsize: number, fieldEnd: number): boolean {
  return EXT4_GOOD_OLD_INODE_SIZE + extraIsize >= fieldEnd;
}

/**
 * Decodes the inode at `off`, `inodeSize` bytes long (s_inode_size). Large-inode fields
 * that i_extra_isize does not cover read as 0, as Linux treats them.
 */
export function ext4_inode_decode(buf: Uint8Array, off: number, inodeSize: number): ext4_inode {
  let limit = EXT4_GOOD_OLD_INODE_SIZE;
  let extra = 0;
  if (inodeSize > EXT4_GOOD_OLD_INODE_SIZE) {
    extra = le16(buf, off + EXT4_INODE_OFF.i_extra_isize);
    limit = Math.min(inodeSize, EXT4_GOOD_OLD_INODE_SIZE + extra);
  }
  const ino = decodeStruct(ext4_inode_fields, buf, off, limit);
  ino.i_extra_isize = extra;
  return ino;
}
/** Encodes into the inode slot at `off`; writes large fields only where i_extra_isize covers. */
export function ext4_inode_encode(ino: ext4_inode, buf: Uint8Array, off: number, inodeSize: number): void {
  const limit = inodeSize > EXT4_GOOD_OLD_INODE_SIZE
    ? Math.min(inodeSize, EXT4_GOOD_OLD_INODE_SIZE + Math.max(ino.i_extra_isize, 2))
    : EXT4_GOOD_OLD_INODE_SIZE;
  encodeStruct(ext4_inode_fields, ino, buf, off, limit);
}

/** Checks ext4_iget makes on i_extra_isize, with its messages. */
export function ext4_inode_check_extra_isize(ino: ext4_inode, inodeSize: number): string | null {
  if (inodeSize <= EXT4_GOOD_OLD_INODE_SIZE) return null;
  const e = ino.i_extra_isize;
  if (EXT4_GOOD_OLD_INODE_SIZE + e > inodeSize || (e & 3) !== 0)
    return `iget: bad extra_isize ${e} (inode size ${inodeSize})`;
  return null;
}

/* i_flags */
export const EXT4_SECRM_FL = 0x00000001, EXT4_UNRM_FL = 0x00000002, EXT4_COMPR_FL = 0x00000004,
  EXT4_SYNC_FL = 0x00000008, EXT4_IMMUTABLE_FL = 0x00000010, EXT4_APPEND_FL = 0x00000020,
  EXT4_NODUMP_FL = 0x00000040, EXT4_NOATIME_FL = 0x00000080, EXT4_DIRTY_FL = 0x00000100,
  EXT4_COMPRBLK_FL = 0x00000200, EXT4_NOCOMPR_FL = 0x00000400, EXT4_ENCRYPT_FL = 0x00000800,
  EXT4_INDEX_FL = 0x00001000, EXT4_IMAGIC_FL = 0x00002000, EXT4_JOURNAL_DATA_FL = 0x00004000,
  EXT4_NOTAIL_FL = 0x00008000, EXT4_DIRSYNC_FL = 0x00010000, EXT4_TOPDIR_FL = 0x00020000,
  EXT4_HUGE_FILE_FL = 0x00040000, EXT4_EXTENTS_FL = 0x00080000, EXT4_VERITY_FL = 0x00100000,
  EXT4_EA_INODE_FL = 0x00200000, EXT4_DAX_FL = 0x02000000, EXT4_INLINE_DATA_FL = 0x10000000,
  EXT4_PROJINHERIT_FL = 0x20000000, EXT4_CASEFOLD_FL = 0x40000000, EXT4_RESERVED_FL = 0x80000000;
/* The flags FS_IOC_GETFLAGS shows and SETFLAGS may change (ext4.h; 0x00400000 is the old EOFBLOCKS_FL) */
export const EXT4_FL_USER_MODIFIABLE = (EXT4_SECRM_FL | EXT4_UNRM_FL | EXT4_COMPR_FL | EXT4_SYNC_FL |
  EXT4_IMMUTABLE_FL | EXT4_APPEND_FL | EXT4_NODUMP_FL | EXT4_NOATIME_FL | EXT4_JOURNAL_DATA_FL | EXT4_NOTAIL_FL |
  EXT4_DIRSYNC_FL | EXT4_TOPDIR_FL | EXT4_EXTENTS_FL | 0x00400000 | EXT4_DAX_FL | EXT4_PROJINHERIT_FL |
  EXT4_CASEFOLD_FL) >>> 0;
export const EXT4_FL_USER_VISIBLE = (EXT4_FL_USER_MODIFIABLE | EXT4_DIRTY_FL | EXT4_COMPRBLK_FL | EXT4_NOCOMPR_FL |
  EXT4_ENCRYPT_FL | EXT4_INDEX_FL | EXT4_VERITY_FL | EXT4_INLINE_DATA_FL) >>> 0;

/*
 * Timestamps. The 32-bit base is signed (1901..2038); the low 2 bits of the *_extra word
 * extend it by multiples of 2^32 seconds (up to 2446), the upper 30 bits are nanoseconds.
 * Decoding adds the epoch bits to the *signed* base, exactly as ext4_decode_extra_time
 * does, so pre-1970 times with epoch 0 stay negative.
 */
export const EXT4_EPOCH_BITS = 2, EXT4_EPOCH_MASK = 3, EXT4_NSEC_MASK = ~EXT4_EPOCH_MASK >>> 0;
export interface Ext4Time { sec: number; nsec: number }

export function ext4_decode_extra_time(base: number, extra: number): Ext4Time {
  let sec = base | 0;
  if (extra & EXT4_EPOCH_MASK) sec += (extra & EXT4_EPOCH_MASK) * HI32;
  return { sec, nsec: (extra & EXT4_NSEC_MASK) >>> EXT4_EPOCH_BITS };
}
/** Splits a time into (base, extra). The epoch is (sec - (s32)sec) >> 32, kept to 2 bits. */
export function ext4_encode_extra_time(t: Ext4Time): [base: number, extra: number] {
  const base = t.sec | 0;
  const epoch = Math.floor((t.sec - base) / HI32) & EXT4_EPOCH_MASK;
  return [base >>> 0, (epoch | (t.nsec << EXT4_EPOCH_BITS)) >>> 0];
}
export type Ext4InodeTime = 'atime' | 'ctime' | 'mtime' | 'crtime';
const TIME_EXTRA_END: Record<Ext4InodeTime, number> = { ctime: 0x88, mtime: 0x8c, atime: 0x90, crtime: 0x98 };
/** An inode time as Linux reads it: with nsec/epoch if the extra field fits, else seconds. */
export function ext4_inode_get_time(ino: ext4_inode, which: Ext4InodeTime): Ext4Time {
  const base = ino[`i_${which}`];
  if (ext4_fits_in_inode(ino.i_extra_isize, TIME_EXTRA_END[which]))
    return ext4_decode_extra_time(base, ino[`i_${which}_extra`]);
  if (which === 'crtime') return { sec: 0, nsec: 0 };
  return { sec: base | 0, nsec: 0 };
}
/** Stores a time; without room for the extra word, only the clamped 32-bit seconds. */
export function ext4_inode_set_time(ino: ext4_inode, which: Ext4InodeTime, t: Ext4Time): void {
  if (ext4_fits_in_inode(ino.i_extra_isize, TIME_EXTRA_END[which])) {
    const [b, e] = ext4_encode_extra_time(t);
    ino[`i_${which}`] = b;
    ino[`i_${which}_extra`] = e;
  } else if (which !== 'crtime') {
    ino[`i_${which}`] = Math.max(-0x80000000, Math.min(0x7fffffff, t.sec)) >>> 0;
  }
}

/** i_size: the high word counts for regular files and, with largedir, directories. */
export function ext4_isize(ino: ext4_inode, largedir = false): number {
  if (largedir || (ino.i_mode & 0o170000) === 0o100000) return ino.i_size_high * HI32 + ino.i_size_lo;
  return ino.i_size_lo;
}
export function ext4_isize_set(ino: ext4_inode, size: number): void {
  ino.i_size_lo = lo32(size); ino.i_size_high = hi32(size);
}
/**
 * i_blocks in 512-byte sectors, as ext4_inode_blocks: the 48-bit count needs huge_file;
 * with HUGE_FILE_FL set on the inode it counts filesystem blocks instead.
 */
export function ext4_inode_blocks(ino: ext4_inode, hugeFile: boolean, blockSize: number): number {
  if (!hugeFile) return ino.i_blocks_lo;
  const n = ino.l_i_blocks_high * HI32 + ino.i_blocks_lo;
  return ino.i_flags & EXT4_HUGE_FILE_FL ? n * (blockSize / 512) : n;
}
/**
 * ext4_inode_blocks_set: returns false if `sectors` cannot be represented (EFBIG). Chooses
 * the encoding Linux would and sets or clears HUGE_FILE_FL accordingly.
 */
export function ext4_inode_blocks_set(ino: ext4_inode, sectors: number, hugeFile: boolean, blockSize: number): boolean {
  if (sectors <= 0xffffffff) {
    ino.i_blocks_lo = sectors; ino.l_i_blocks_high = 0;
    ino.i_flags = (ino.i_flags & ~EXT4_HUGE_FILE_FL) >>> 0;
    return true;
  }
  if (!hugeFile) return false;
  if (sectors <= 0xffffffffffff) {
    ino.i_blocks_lo = lo32(sectors); ino.l_i_blocks_high = hi32(sectors) & 0xffff;
    ino.i_flags = (ino.i_flags & ~EXT4_HUGE_FILE_FL) >>> 0;
    return true;
  }
  const blocks = Math.floor(sectors / (blockSize / 512));
  if (blocks > 0xffffffffffff) return false;
  ino.i_blocks_lo = lo32(blocks); ino.l_i_blocks_high = hi32(blocks) & 0xffff;
  ino.i_flags = (ino.i_flags | EXT4_HUGE_FILE_FL) >>> 0;
  return true;
}
/** The xattr block: 48 bits with 64BIT, else the low 32. */
export function ext4_inode_file_acl(ino: ext4_inode, is64bit: boolean): number {
  return is64bit ? ino.l_i_file_acl_high * HI32 + ino.i_file_acl_lo : ino.i_file_acl_lo;
}
export function ext4_inode_file_acl_set(ino: ext4_inode, blk: number): void {
  ino.i_file_acl_lo = lo32(blk); ino.l_i_file_acl_high = hi32(blk) & 0xffff;
}
/** uid/gid: 32 bits from the lo and hi halves (Linux ignores hi only under no_uid32). */
export const ext4_inode_uid = (ino: ext4_inode): number => (ino.l_i_uid_high << 16 | ino.i_uid) >>> 0;
export const ext4_inode_gid = (ino: ext4_inode): number => (ino.l_i_gid_high << 16 | ino.i_gid) >>> 0;
export function ext4_inode_uid_set(ino: ext4_inode, uid: number): void {
  ino.i_uid = uid & 0xffff; ino.l_i_uid_high = (uid >>> 16) & 0xffff;
}
export function ext4_inode_gid_set(ino: ext4_inode, gid: number): void {
  ino.i_gid = gid & 0xffff; ino.l_i_gid_high = (gid >>> 16) & 0xffff;
}
export const EXT4_DEF_PROJID = 0;
/** i_projid when the project feature is on and the field fits, else EXT4_DEF_PROJID. */
export function ext4_inode_projid(ino: ext4_inode, projectFeature: boolean): number {
  return projectFeature && ext4_fits_in_inode(ino.i_extra_isize, 0xa0) ? ino.i_projid : EXT4_DEF_PROJID;
}
/** Block-map inodes: i_block as its 15 le32 slots (12 direct, IND, DIND, TIND). */
export function ext4_i_block_words(ino: ext4_inode): number[] {
  const w: number[] = [];
  for (let i = 0; i < EXT4_N_BLOCKS; i++) w.push(le32(ino.i_block, 4 * i));
  return w;
}
export const EXT4_NDIR_BLOCKS = 12, EXT4_IND_BLOCK = 12, EXT4_DIND_BLOCK = 13, EXT4_TIND_BLOCK = 14;

/* ------------------------------------------------------------------------------------ */
/* Directories (struct ext4_dir_entry_2, dir tail, htree)                                */

export const EXT4_NAME_LEN = 255;
export const EXT4_FT_UNKNOWN = 0, EXT4_FT_REG_FILE = 1, EXT4_FT_DIR = 2, EXT4_FT_CHRDEV = 3,
  EXT4_FT_BLKDEV = 4, EXT4_FT_FIFO = 5, EXT4_FT_SOCK = 6, EXT4_FT_SYMLINK = 7, EXT4_FT_MAX = 8;
/* The fake file type marking the checksum tail entry */
export const EXT4_FT_DIR_CSUM = 0xde;
export const EXT4_MAX_REC_LEN = 65535;
export const EXT4_DIR_ENTRY_HEADER = 8;
export const EXT4_DIR_TAIL_SIZE = 12;

/** Bytes a dirent with a name of `nameLen` needs (EXT4_DIR_REC_LEN): 8 + name, rounded to 4. */
export const ext4_dir_rec_len = (nameLen: number): number => (nameLen + 8 + 3) & ~3;

/** File type from a mode (ext4_type_by_mode). */
export function ext4_type_by_mode(mode: number): number {
  switch (mode & 0o170000) {
    case 0o100000: return EXT4_FT_REG_FILE;
    case 0o040000: return EXT4_FT_DIR;
    case 0o020000: return EXT4_FT_CHRDEV;
    case 0o060000: return EXT4_FT_BLKDEV;
    case 0o010000: return EXT4_FT_FIFO;
    case 0o140000: return EXT4_FT_SOCK;
    case 0o120000: return EXT4_FT_SYMLINK;
    default: return EXT4_FT_UNKNOWN;
  }
}

/*
 * rec_len is 16 bits but a 64 KiB block's single entry spans 65536 bytes: Linux stores that
 * as 65535 (or 0) and, for blocks above 64 KiB, keeps bits 16-17 in the low two bits that
 * 4-byte alignment leaves free. Below 64 KiB blocks the value is taken as it is, so a zero
 * rec_len stays the corruption it is there.
 */
export function ext4_rec_len_from_disk(dlen: number, blockSize: number): number {
  if (blockSize < 65536) return dlen;
  if (dlen === EXT4_MAX_REC_LEN || dlen === 0) return blockSize;
  return (dlen & 65532) | ((dlen & 3) << 16);
}
export function ext4_rec_len_to_disk(len: number, blockSize: number): number {
  if (len < 65536) return len;
  if (len === blockSize) return blockSize === 65536 ? EXT4_MAX_REC_LEN : 0;
  return (len & 65532) | ((len >>> 16) & 3); // bits32: rec_len is at most 2^18
}

export interface ext4_dir_entry_2 { inode: number; rec_len: number; name_len: number; file_type: number; name: Uint8Array }

/** The entry at `off`; rec_len decoded; name is a view (not a copy) of name_len bytes. */
export function ext4_dir_entry_decode(buf: Uint8Array, off: number, blockSize: number): ext4_dir_entry_2 {
  const name_len = buf[off + 6];
  return { inode: le32(buf, off), rec_len: ext4_rec_len_from_disk(le16(buf, off + 4), blockSize),
    name_len, file_type: buf[off + 7], name: buf.subarray(off + 8, off + 8 + name_len) };
}
/** Writes header and name; bytes between the name and rec_len are left as they are. */
export function ext4_dir_entry_encode(de: ext4_dir_entry_2, buf: Uint8Array, off: number, blockSize: number): void {
  put_le32(buf, off, de.inode);
  put_le16(buf, off + 4, ext4_rec_len_to_disk(de.rec_len, blockSize));
  buf[off + 6] = de.name_len;
  buf[off + 7] = de.file_type;
  buf.set(de.name.subarray(0, de.name_len), off + 8);
}

/**
 * __ext4_check_dir_entry for the entry at `off` of a `size`-byte directory block (size
 * excludes nothing: pass the full block; the tail entry is a valid entry to this check).
 * `inodesCount` bounds the inode number. Returns Linux's message or null.
 */
export function ext4_check_dir_entry(buf: Uint8Array, off: number, size: number, blockSize: number,
  inodesCount: number): string | null {
  if (off + EXT4_DIR_ENTRY_HEADER > size) return 'directory entry overrun';
  const rlen = ext4_rec_len_from_disk(le16(buf, off + 4), blockSize);
  const nameLen = buf[off + 6];
  const next = off + rlen;
  if (rlen < ext4_dir_rec_len(1)) return 'rec_len is smaller than minimal';
  if (rlen % 4 !== 0) return 'rec_len % 4 != 0';
  if (rlen < ext4_dir_rec_len(nameLen)) return 'rec_len is too small for name_len';
  if (next > size) return 'directory entry overrun';
  if (next > size - ext4_dir_rec_len(1) && next !== size) return 'directory entry too close to block end';
  if (le32(buf, off) > inodesCount) return 'inode out of bounds';
  if (next === size && nameLen === 1 && buf[off + 8] === 0x2e) return "'.' directory cannot be the last in data block";
  return null;
}

/* struct ext4_dir_entry_tail: a fake entry in the last 12 bytes holding the checksum */
export function ext4_dir_tail_present(buf: Uint8Array, blockSize: number, off = 0): boolean {
  const t = off + blockSize - EXT4_DIR_TAIL_SIZE;
  return le32(buf, t) === 0 && le16(buf, t + 4) === EXT4_DIR_TAIL_SIZE && buf[t + 6] === 0 &&
    buf[t + 7] === EXT4_FT_DIR_CSUM;
}
/** ext4_initialize_dirent_tail: writes the tail entry (checksum 0) at the block's end. */
export function ext4_dir_tail_init(buf: Uint8Array, blockSize: number, off = 0): void {
  const t = off + blockSize - EXT4_DIR_TAIL_SIZE;
  buf.fill(0, t, t + EXT4_DIR_TAIL_SIZE);
  put_le16(buf, t + 4, EXT4_DIR_TAIL_SIZE);
  buf[t + 7] = EXT4_FT_DIR_CSUM;
}

/*
 * htree (dx) blocks. The root is the directory's block 0: a "." entry of rec_len 12, a ".."
 * entry spanning the rest of the block (so non-htree readers see an ordinary block), then
 * dx_root_info and the dx_entry array whose first slot is the count/limit pair. Interior
 * nodes hide behind one empty entry spanning the whole block.
 */
export const DX_HASH_LEGACY = 0, DX_HASH_HALF_MD4 = 1, DX_HASH_TEA = 2, DX_HASH_LEGACY_UNSIGNED = 3,
  DX_HASH_HALF_MD4_UNSIGNED = 4, DX_HASH_TEA_UNSIGNED = 5, DX_HASH_SIPHASH = 6;
export const DX_ROOT_INFO_OFFSET = 0x18, DX_ROOT_COUNT_OFFSET = 0x20, DX_NODE_COUNT_OFFSET = 8;
export const DX_ENTRY_SIZE = 8, DX_TAIL_SIZE = 8;
export const EXT4_HTREE_LEVEL_COMPAT = 2, EXT4_HTREE_LEVEL = 3;

export interface dx_root_info { reserved_zero: number; hash_version: number; info_length: number;
  indirect_levels: number; unused_flags: number }
export interface dx_countlimit { limit: number; count: number }
export interface dx_entry { hash: number; block: number }

export function dx_root_info_decode(buf: Uint8Array, off = 0): dx_root_info {
  const o = off + DX_ROOT_INFO_OFFSET;
  return { reserved_zero: le32(buf, o), hash_version: buf[o + 4], info_length: buf[o + 5],
    indirect_levels: buf[o + 6], unused_flags: buf[o + 7] };
}
export function dx_root_info_encode(i: dx_root_info, buf: Uint8Array, off = 0): void {
  const o = off + DX_ROOT_INFO_OFFSET;
  put_le32(buf, o, i.reserved_zero); buf[o + 4] = i.hash_version; buf[o + 5] = i.info_length;
  buf[o + 6] = i.indirect_levels; buf[o + 7] = i.unused_flags;
}
/** Writes the root's fake "." and ".." entries (dx_root.dot/dotdot) and the root info. */
export function dx_root_init(buf: Uint8Array, blockSize: number, dirIno: number, parentIno: number,
  hashVersion: number, off = 0): void {
  buf.fill(0, off, off + DX_ROOT_COUNT_OFFSET);
  ext4_dir_entry_encode({ inode: dirIno, rec_len: 12, name_len: 1, file_type: EXT4_FT_DIR,
    name: new Uint8Array([0x2e]) }, buf, off, blockSize);
  ext4_dir_entry_encode({ inode: parentIno, rec_len: blockSize - 12, name_len: 2, file_type: EXT4_FT_DIR,
    name: new Uint8Array([0x2e, 0x2e]) }, buf, off + 12, blockSize);
  dx_root_info_encode({ reserved_zero: 0, hash_version: hashVersion, info_length: 8, indirect_levels: 0,
    unused_flags: 0 }, buf, off);
}
/** Writes an interior node's fake entry (inode 0, rec_len = block). */
export function dx_node_init(buf: Uint8Array, blockSize: number, off = 0): void {
  put_le32(buf, off, 0);
  put_le16(buf, off + 4, ext4_rec_len_to_disk(blockSize, blockSize));
  buf[off + 6] = 0; buf[off + 7] = 0;
}
/** count/limit pair at byte `at` (DX_ROOT_COUNT_OFFSET or DX_NODE_COUNT_OFFSET from the block). */
export function dx_countlimit_decode(buf: Uint8Array, at: number): dx_countlimit {
  return { limit: le16(buf, at), count: le16(buf, at + 2) };
}
export function dx_countlimit_encode(c: dx_countlimit, buf: Uint8Array, at: number): void {
  put_le16(buf, at, c.limit); put_le16(buf, at + 2, c.count);
}
/** dx_entry i of the array at `at`; entry 0's hash slot is the count/limit, so its hash is 0. */
export function dx_entry_decode(buf: Uint8Array, at: number, i: number): dx_entry {
  const o = at + DX_ENTRY_SIZE * i;
  return { hash: i === 0 ? 0 : le32(buf, o), block: le32(buf, o + 4) };
}
export function dx_entry_encode(e: dx_entry, buf: Uint8Array, at: number, i: number): void {
  const o = at + DX_ENTRY_SIZE * i;
  if (i !== 0) put_le32(buf, o, e.hash);
  put_le32(buf, o + 4, e.block);
}
/** dx_root_limit / dx_node_limit: entries that fit, minus room for the dx_tail with csums. */
export function dx_root_limit(blockSize: number, csum: boolean): number {
  return (blockSize - DX_ROOT_COUNT_OFFSET - (csum ? DX_TAIL_SIZE : 0)) / DX_ENTRY_SIZE;
}
export function dx_node_limit(blockSize: number, csum: boolean): number {
  return (blockSize - DX_NODE_COUNT_OFFSET - (csum ? DX_TAIL_SIZE : 0)) / DX_ENTRY_SIZE;
}
/**
 * get_dx_countlimit: where this block's count/limit lives if it is a dx root or node, else
 * -1. This is how the checksum code tells dx blocks from leaf blocks.
 */
export function dx_countlimit_offset(buf: Uint8Array, blockSize: number, off = 0): number {
  const rlen = ext4_rec_len_from_disk(le16(buf, off + 4), blockSize);
  if (rlen === blockSize) return DX_NODE_COUNT_OFFSET;
  if (rlen !== 12) return -1;
  if (ext4_rec_len_from_disk(le16(buf, off + 12 + 4), blockSize) !== blockSize - 12) return -1;
  const info = dx_root_info_decode(buf, off);
  if (info.reserved_zero !== 0 || info.info_length !== 8) return -1;
  return DX_ROOT_COUNT_OFFSET;
}
/**
 * dx_probe's checks on a root block, with Linux's messages. `largedir` allows 3 levels.
 * The hash version must be one of legacy/half_md4/tea (siphash needs casefold).
 */
export function dx_root_check(buf: Uint8Array, blockSize: number, csum: boolean, largedir: boolean, off = 0): string | null {
  const info = dx_root_info_decode(buf, off);
  if (info.hash_version !== DX_HASH_LEGACY && info.hash_version !== DX_HASH_HALF_MD4 &&
    info.hash_version !== DX_HASH_TEA && info.hash_version !== DX_HASH_SIPHASH)
    return `Unrecognised inode hash code ${info.hash_version}`;
  if (info.unused_flags & 1) return `Unimplemented hash flags: ${info.unused_flags}`;
  const maxLevels = largedir ? EXT4_HTREE_LEVEL : EXT4_HTREE_LEVEL_COMPAT;
  if (info.indirect_levels >= maxLevels) return `htree depth ${info.indirect_levels} exceed supported value`;
  const cl = dx_countlimit_decode(buf, off + DX_ROOT_INFO_OFFSET + info.info_length);
  const lim = dx_root_limit(blockSize, csum);
  if (cl.limit !== lim) return `dx entry: limit ${cl.limit} != root limit ${lim}`;
  if (cl.count > cl.limit || cl.count === 0) return `dx entry: count ${cl.count} beyond limit ${cl.limit}`;
  return null;
}
/** The same for an interior node. */
export function dx_node_check(buf: Uint8Array, blockSize: number, csum: boolean, off = 0): string | null {
  const cl = dx_countlimit_decode(buf, off + DX_NODE_COUNT_OFFSET);
  const lim = dx_node_limit(blockSize, csum);
  if (cl.limit !== lim) return `dx entry: limit ${cl.limit} != node limit ${lim}`;
  if (cl.count > cl.limit || cl.count === 0) return `dx entry: count ${cl.count} beyond limit ${cl.limit}`;
  return null;
}

/* ------------------------------------------------------------------------------------ */
/* MMP block (struct mmp_struct) and orphan file blocks                                   */

export const EXT4_MMP_MAGIC = 0x004d4d50;
export const EXT4_MMP_SEQ_CLEAN = 0xff4d4d50, EXT4_MMP_SEQ_FSCK = 0xe24d4d50, EXT4_MMP_SEQ_MAX = 0xe24d4d4f;
export const ext4_mmp_fields = [
  ['mmp_magic', 0x0, 'u32'],
  ['mmp_seq', 0x4, 'u32'],
  ['mmp_time', 0x8, 'u64'],
  ['mmp_nodename', 0x10, 'bytes64'],
  ['mmp_bdevname', 0x50, 'bytes32'],
  ['mmp_check_interval', 0x70, 'u16'],
  ['mmp_pad1', 0x72, 'u16'],
  /* mmp_pad2[226] */
  ['mmp_checksum', 0x3fc, 'u32'],
] as const satisfies readonly FieldDef[];
export type mmp_struct = StructOf<typeof ext4_mmp_fields>;
export const EXT4_MMP_OFF = offsetsOf(ext4_mmp_fields);
export const ext4_mmp_decode = (buf: Uint8Array, off = 0): mmp_struct => decodeStruct(ext4_mmp_fields, buf, off);
export function ext4_mmp_encode(m: mmp_struct, buf: Uint8Array, off = 0): void { encodeStruct(ext4_mmp_fields, m, buf, off); }

/* struct ext4_orphan_block_tail: the last 8 bytes of each orphan file block */
export const EXT4_ORPHAN_BLOCK_MAGIC = 0x0b10ca04;
export const EXT4_ORPHAN_BLOCK_TAIL_SIZE = 8;
export const ext4_inodes_per_orphan_block = (blockSize: number): number =>
  (blockSize - EXT4_ORPHAN_BLOCK_TAIL_SIZE) / 4;
export interface ext4_orphan_block_tail { ob_magic: number; ob_checksum: number }
export function ext4_orphan_block_tail_decode(buf: Uint8Array, blockSize: number, off = 0): ext4_orphan_block_tail {
  const t = off + blockSize - EXT4_ORPHAN_BLOCK_TAIL_SIZE;
  return { ob_magic: le32(buf, t), ob_checksum: le32(buf, t + 4) };
}
export function ext4_orphan_block_tail_encode(tl: ext4_orphan_block_tail, buf: Uint8Array, blockSize: number, off = 0): void {
  const t = off + blockSize - EXT4_ORPHAN_BLOCK_TAIL_SIZE;
  put_le32(buf, t, tl.ob_magic); put_le32(buf, t + 4, tl.ob_checksum);
}
