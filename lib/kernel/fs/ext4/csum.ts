/*
 * ext4 metadata checksums, exactly as fs/ext4 computes them: which bytes, which seed, which
 * fields are zeroed while summing, and how 32-bit sums are cut to the 16-bit fields some
 * structures have. Each structure has a *_csum (compute), *_csum_verify and *_csum_set.
 * Pure kernel code over buffers; the caller decides what a failure means (EFSBADCRC).
 *
 * The chain: crc32c is the bare register (lib/crc32c.ts). The filesystem seed is
 * crc32c(~0, s_uuid) or s_checksum_seed with CSUM_SEED; inode-owned structures (extent
 * blocks, directory blocks) are seeded further with the inode number and generation.
 * Every verify returns true when the feature that would carry the checksum is off, as
 * Linux's do, so callers can call them unconditionally.
 */
import { crc16 } from '../../lib/crc16.js';
import { crc32c, crc32c_le32 } from '../../lib/crc32c.js';
import {
  DX_ENTRY_SIZE, DX_TAIL_SIZE, EXT4_BG_BLOCK_BITMAP_CSUM_HI_END, EXT4_BG_INODE_BITMAP_CSUM_HI_END,
  EXT4_BG_OFF, EXT4_DIR_TAIL_SIZE, EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_CSUM_SEED,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, EXT4_GOOD_OLD_INODE_SIZE,
  EXT4_INODE_OFF, EXT4_MMP_OFF, EXT4_ORPHAN_BLOCK_TAIL_SIZE, EXT4_SB_OFF, dx_countlimit_decode,
  dx_countlimit_offset, ext4_dir_tail_present, ext4_fits_in_inode, ext4_inodes_per_orphan_block,
  le16, le32, put_le16, put_le32,
} from './layout.js';
import { EXT4_EXTENT_ENTRY_SIZE } from './ext4_extents.h.js';
import { EXT4_EXTENT_HEADER_SIZE } from './ext4_extents.h.js';
import type { ext4_super_block } from './layout.js';

/** What the checksum code needs from the superblock, computed once at mount (ext4_sb_info). */
export interface Ext4CsumCtx {
  /** RO_COMPAT_METADATA_CSUM */
  metadata_csum: boolean;
  /** RO_COMPAT_GDT_CSUM (the older crc16 descriptor checksum) */
  gdt_csum: boolean;
  is64bit: boolean;
  /** sbi->s_csum_seed */
  csum_seed: number;
  uuid: Uint8Array;
  block_size: number;
  desc_size: number;
  inode_size: number;
  inodes_per_group: number;
  clusters_per_group: number;
  /** Linux leaves inode checksums alone on filesystems another OS (Hurd) created */
  creator_os_linux: boolean;
}

const dummy_csum = new Uint8Array(4);

/** sbi->s_csum_seed: s_checksum_seed with CSUM_SEED, else crc32c(~0, s_uuid). */
export function ext4_csum_seed(sb: ext4_super_block): number {
  if (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_CSUM_SEED) return sb.s_checksum_seed >>> 0;
  return crc32c(0xffffffff, sb.s_uuid, 0, 16);
}

export function ext4_csum_ctx(sb: ext4_super_block): Ext4CsumCtx {
  const is64bit = (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_64BIT) !== 0;
  return {
    metadata_csum: (sb.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM) !== 0,
    gdt_csum: (sb.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_GDT_CSUM) !== 0,
    is64bit,
    csum_seed: ext4_csum_seed(sb),
    uuid: sb.s_uuid.slice(0, 16),
    block_size: 1024 * 2 ** sb.s_log_block_size,
    desc_size: is64bit ? sb.s_desc_size : 32,
    inode_size: sb.s_rev_level === 0 ? EXT4_GOOD_OLD_INODE_SIZE : sb.s_inode_size,
    inodes_per_group: sb.s_inodes_per_group,
    clusters_per_group: sb.s_clusters_per_group,
    creator_os_linux: sb.s_creator_os === 0,
  };
}

/* ---- superblock: crc32c(~0) over the 1020 bytes before s_checksum ---------------------- */

/** The checksum of the raw superblock at `off` (1024 bytes). */
export function ext4_superblock_csum(buf: Uint8Array, off = 0): number {
  return crc32c(0xffffffff, buf, off, EXT4_SB_OFF.s_checksum);
}
/** True if metadata_csum is off or the stored s_checksum matches. */
export function ext4_superblock_csum_verify(buf: Uint8Array, off = 0): boolean {
  if (!(le32(buf, off + EXT4_SB_OFF.s_feature_ro_compat) & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) return true;
  return le32(buf, off + EXT4_SB_OFF.s_checksum) === ext4_superblock_csum(buf, off);
}
export function ext4_superblock_csum_set(buf: Uint8Array, off = 0): void {
  if (!(le32(buf, off + EXT4_SB_OFF.s_feature_ro_compat) & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) return;
  put_le32(buf, off + EXT4_SB_OFF.s_checksum, ext4_superblock_csum(buf, off));
}

/* ---- group descriptors -------------------------------------------------------------- */

/**
 * ext4_group_desc_csum for the descriptor at `off` of group `group`. metadata_csum: low 16
 * bits of crc32c(seed, le32 group, desc with bg_checksum zeroed). gdt_csum: crc16 over
 * uuid, group and the descriptor minus bg_checksum (the part after it only for 64-bit
 * descriptors). 0 when neither feature is on.
 */
export function ext4_group_desc_csum(ctx: Ext4CsumCtx, group: number, buf: Uint8Array, off: number): number {
  const csumOff = EXT4_BG_OFF.bg_checksum;
  const le_group = new Uint8Array(4);
  put_le32(le_group, 0, group);
  if (ctx.metadata_csum) {
    let c = crc32c(ctx.csum_seed, le_group);
    c = crc32c(c, buf, off, csumOff);
    c = crc32c(c, dummy_csum, 0, 2);
    c = crc32c(c, buf, off + csumOff + 2, ctx.desc_size - csumOff - 2);
    return c & 0xffff;
  }
  if (!ctx.gdt_csum) return 0;
  let c = crc16(0xffff, ctx.uuid, 0, 16);
  c = crc16(c, le_group);
  c = crc16(c, buf, off, csumOff);
  const rest = csumOff + 2;
  if (ctx.is64bit && rest < ctx.desc_size) c = crc16(c, buf, off + rest, ctx.desc_size - rest);
  return c;
}
export function ext4_group_desc_csum_verify(ctx: Ext4CsumCtx, group: number, buf: Uint8Array, off: number): boolean {
  if (!ctx.metadata_csum && !ctx.gdt_csum) return true;
  return le16(buf, off + EXT4_BG_OFF.bg_checksum) === ext4_group_desc_csum(ctx, group, buf, off);
}
export function ext4_group_desc_csum_set(ctx: Ext4CsumCtx, group: number, buf: Uint8Array, off: number): void {
  if (!ctx.metadata_csum && !ctx.gdt_csum) return;
  put_le16(buf, off + EXT4_BG_OFF.bg_checksum, ext4_group_desc_csum(ctx, group, buf, off));
}

/* ---- inodes ------------------------------------------------------------------------- */

/** ei->i_csum_seed: the filesystem seed extended by le32 inode number and le32 generation. */
export function ext4_inode_csum_seed(ctx: Ext4CsumCtx, ino: number, generation: number): number {
  return crc32c_le32(crc32c_le32(ctx.csum_seed, ino), generation);
}
const I_CSUM_LO = EXT4_INODE_OFF.l_i_checksum_lo, I_CSUM_HI = EXT4_INODE_OFF.i_checksum_hi;
function inode_has_csum_hi(ctx: Ext4CsumCtx, buf: Uint8Array, off: number): boolean {
  return ctx.inode_size > EXT4_GOOD_OLD_INODE_SIZE &&
    ext4_fits_in_inode(le16(buf, off + EXT4_INODE_OFF.i_extra_isize), I_CSUM_HI + 2);
}
/**
 * ext4_inode_csum: crc32c over the whole on-disk inode (s_inode_size bytes) with both
 * checksum halves summed as zeros; the hi half is a checksum field only if i_extra_isize
 * covers it. The full 32 bits are returned.
 */
export function ext4_inode_csum(ctx: Ext4CsumCtx, ino: number, buf: Uint8Array, off: number): number {
  const gen = le32(buf, off + EXT4_INODE_OFF.i_generation);
  let c = crc32c(ext4_inode_csum_seed(ctx, ino, gen), buf, off, I_CSUM_LO);
  c = crc32c(c, dummy_csum, 0, 2);
  c = crc32c(c, buf, off + I_CSUM_LO + 2, EXT4_GOOD_OLD_INODE_SIZE - I_CSUM_LO - 2);
  if (ctx.inode_size > EXT4_GOOD_OLD_INODE_SIZE) {
    let o = I_CSUM_HI;
    c = crc32c(c, buf, off + EXT4_GOOD_OLD_INODE_SIZE, I_CSUM_HI - EXT4_GOOD_OLD_INODE_SIZE);
    if (inode_has_csum_hi(ctx, buf, off)) {
      c = crc32c(c, dummy_csum, 0, 2);
      o += 2;
    }
    c = crc32c(c, buf, off + o, ctx.inode_size - o);
  }
  return c;
}
export function ext4_inode_csum_verify(ctx: Ext4CsumCtx, ino: number, buf: Uint8Array, off: number): boolean {
  if (!ctx.metadata_csum || !ctx.creator_os_linux) return true;
  let provided = le16(buf, off + I_CSUM_LO);
  let calculated = ext4_inode_csum(ctx, ino, buf, off);
  if (inode_has_csum_hi(ctx, buf, off)) provided = (provided | (le16(buf, off + I_CSUM_HI) << 16)) >>> 0;
  else calculated &= 0xffff;
  return provided === calculated;
}
export function ext4_inode_csum_set(ctx: Ext4CsumCtx, ino: number, buf: Uint8Array, off: number): void {
  if (!ctx.metadata_csum || !ctx.creator_os_linux) return;
  const c = ext4_inode_csum(ctx, ino, buf, off);
  put_le16(buf, off + I_CSUM_LO, c & 0xffff);
  if (inode_has_csum_hi(ctx, buf, off)) put_le16(buf, off + I_CSUM_HI, c >>> 16);
}

/* ---- extent tree blocks: crc32c(inode seed, header + eh_max entries), tail after them --- */

function extent_tail_offset(buf: Uint8Array, off: number): number {
  return EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE * le16(buf, off + 4);
}
/** `iseed` is ext4_inode_csum_seed of the owning inode. */
export function ext4_extent_block_csum(iseed: number, buf: Uint8Array, off = 0): number {
  return crc32c(iseed, buf, off, extent_tail_offset(buf, off));
}
export function ext4_extent_block_csum_verify(ctx: Ext4CsumCtx, iseed: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  const t = extent_tail_offset(buf, off);
  if (t + 4 > ctx.block_size) return false;
  return le32(buf, off + t) === ext4_extent_block_csum(iseed, buf, off);
}
export function ext4_extent_block_csum_set(ctx: Ext4CsumCtx, iseed: number, buf: Uint8Array, off = 0): void {
  if (!ctx.metadata_csum) return;
  put_le32(buf, off + extent_tail_offset(buf, off), ext4_extent_block_csum(iseed, buf, off));
}

/* ---- directory leaf blocks: crc32c(inode seed, block up to the 12-byte tail) ----------- */

export function ext4_dirblock_csum(iseed: number, buf: Uint8Array, blockSize: number, off = 0): number {
  return crc32c(iseed, buf, off, blockSize - EXT4_DIR_TAIL_SIZE);
}
/** False also when the block has no tail entry (Linux: "No space for directory leaf checksum"). */
export function ext4_dirblock_csum_verify(ctx: Ext4CsumCtx, iseed: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  if (!ext4_dir_tail_present(buf, ctx.block_size, off)) return false;
  return le32(buf, off + ctx.block_size - 4) === ext4_dirblock_csum(iseed, buf, ctx.block_size, off);
}
/** Fills in the checksum of an existing tail (ext4_dir_tail_init writes the tail). */
export function ext4_dirblock_csum_set(ctx: Ext4CsumCtx, iseed: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  if (!ext4_dir_tail_present(buf, ctx.block_size, off)) return false;
  put_le32(buf, off + ctx.block_size - 4, ext4_dirblock_csum(iseed, buf, ctx.block_size, off));
  return true;
}

/* ---- htree root and nodes ----------------------------------------------------------- */

/*
 * ext4_dx_csum: the checksum covers the block up to the last *used* dx_entry (count), then
 * dx_tail's reserved word and a zero in place of the checksum; the tail itself sits after
 * the last *possible* entry (limit). A block whose limit leaves no room for the tail
 * cannot carry a checksum.
 */
function dx_tail_at(buf: Uint8Array, blockSize: number, off: number):
  { countOffset: number; count: number; tail: number } | null {
  const co = dx_countlimit_offset(buf, blockSize, off);
  if (co < 0) return null;
  const { limit, count } = dx_countlimit_decode(buf, off + co);
  if (co + limit * DX_ENTRY_SIZE > blockSize - DX_TAIL_SIZE) return null;
  return { countOffset: co, count, tail: co + limit * DX_ENTRY_SIZE };
}
export function ext4_dx_csum(iseed: number, buf: Uint8Array, blockSize: number, off = 0): number | null {
  const t = dx_tail_at(buf, blockSize, off);
  if (!t) return null;
  let c = crc32c(iseed, buf, off, t.countOffset + t.count * DX_ENTRY_SIZE);
  c = crc32c(c, buf, off + t.tail, 4);
  return crc32c(c, dummy_csum, 0, 4);
}
export function ext4_dx_csum_verify(ctx: Ext4CsumCtx, iseed: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  const t = dx_tail_at(buf, ctx.block_size, off);
  if (!t) return false;
  return le32(buf, off + t.tail + 4) === ext4_dx_csum(iseed, buf, ctx.block_size, off);
}
export function ext4_dx_csum_set(ctx: Ext4CsumCtx, iseed: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  const t = dx_tail_at(buf, ctx.block_size, off);
  if (!t) return false;
  put_le32(buf, off + t.tail + 4, ext4_dx_csum(iseed, buf, ctx.block_size, off)!);
  return true;
}
/**
 * Verifies any directory block the way ext4 reads them: dx roots/nodes by their dx tail,
 * everything else by the leaf tail. (Linux tries the leaf tail first; a dx block never has
 * one.)
 */
export function ext4_dir_block_csum_verify(ctx: Ext4CsumCtx, iseed: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  if (ext4_dir_tail_present(buf, ctx.block_size, off)) return ext4_dirblock_csum_verify(ctx, iseed, buf, off);
  if (dx_countlimit_offset(buf, ctx.block_size, off) >= 0) return ext4_dx_csum_verify(ctx, iseed, buf, off);
  return false;
}

/* ---- bitmaps: crc32c(fs seed) over the used part of the bitmap, split lo/hi in the desc -- */

export function ext4_inode_bitmap_csum(ctx: Ext4CsumCtx, bitmap: Uint8Array, off = 0): number {
  return crc32c(ctx.csum_seed, bitmap, off, ctx.inodes_per_group / 8);
}
export function ext4_block_bitmap_csum(ctx: Ext4CsumCtx, bitmap: Uint8Array, off = 0): number {
  return crc32c(ctx.csum_seed, bitmap, off, ctx.clusters_per_group / 8);
}
function bitmap_verify(ctx: Ext4CsumCtx, calc: number, gd: Uint8Array, gdOff: number, lo: number, hi: number, hiEnd: number): boolean {
  let provided = le16(gd, gdOff + lo);
  if (ctx.desc_size >= hiEnd) provided = (provided | (le16(gd, gdOff + hi) << 16)) >>> 0;
  else calc &= 0xffff;
  return provided === calc;
}
function bitmap_set(ctx: Ext4CsumCtx, calc: number, gd: Uint8Array, gdOff: number, lo: number, hi: number, hiEnd: number): void {
  put_le16(gd, gdOff + lo, calc & 0xffff);
  if (ctx.desc_size >= hiEnd) put_le16(gd, gdOff + hi, calc >>> 16);
}
/** Checks the inode bitmap `bitmap` against the descriptor at `gdOff` of `gd`. */
export function ext4_inode_bitmap_csum_verify(ctx: Ext4CsumCtx, gd: Uint8Array, gdOff: number, bitmap: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  return bitmap_verify(ctx, ext4_inode_bitmap_csum(ctx, bitmap, off), gd, gdOff, EXT4_BG_OFF.bg_inode_bitmap_csum_lo,
    EXT4_BG_OFF.bg_inode_bitmap_csum_hi, EXT4_BG_INODE_BITMAP_CSUM_HI_END);
}
export function ext4_inode_bitmap_csum_set(ctx: Ext4CsumCtx, gd: Uint8Array, gdOff: number, bitmap: Uint8Array, off = 0): void {
  if (!ctx.metadata_csum) return;
  bitmap_set(ctx, ext4_inode_bitmap_csum(ctx, bitmap, off), gd, gdOff, EXT4_BG_OFF.bg_inode_bitmap_csum_lo,
    EXT4_BG_OFF.bg_inode_bitmap_csum_hi, EXT4_BG_INODE_BITMAP_CSUM_HI_END);
}
export function ext4_block_bitmap_csum_verify(ctx: Ext4CsumCtx, gd: Uint8Array, gdOff: number, bitmap: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  return bitmap_verify(ctx, ext4_block_bitmap_csum(ctx, bitmap, off), gd, gdOff, EXT4_BG_OFF.bg_block_bitmap_csum_lo,
    EXT4_BG_OFF.bg_block_bitmap_csum_hi, EXT4_BG_BLOCK_BITMAP_CSUM_HI_END);
}
export function ext4_block_bitmap_csum_set(ctx: Ext4CsumCtx, gd: Uint8Array, gdOff: number, bitmap: Uint8Array, off = 0): void {
  if (!ctx.metadata_csum) return;
  bitmap_set(ctx, ext4_block_bitmap_csum(ctx, bitmap, off), gd, gdOff, EXT4_BG_OFF.bg_block_bitmap_csum_lo,
    EXT4_BG_OFF.bg_block_bitmap_csum_hi, EXT4_BG_BLOCK_BITMAP_CSUM_HI_END);
}

/* ---- xattr blocks: fs seed, le64 block number, then the block with h_checksum zeroed ---- */

const XATTR_H_CHECKSUM = 16;
function le64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  put_le32(b, 0, v >>> 0);
  put_le32(b, 4, Math.floor(v / 0x100000000) >>> 0);
  return b;
}
export function ext4_xattr_block_csum(ctx: Ext4CsumCtx, blockNr: number, buf: Uint8Array, off = 0): number {
  let c = crc32c(ctx.csum_seed, le64(blockNr));
  c = crc32c(c, buf, off, XATTR_H_CHECKSUM);
  c = crc32c(c, dummy_csum, 0, 4);
  return crc32c(c, buf, off + XATTR_H_CHECKSUM + 4, ctx.block_size - XATTR_H_CHECKSUM - 4);
}
export function ext4_xattr_block_csum_verify(ctx: Ext4CsumCtx, blockNr: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  return le32(buf, off + XATTR_H_CHECKSUM) === ext4_xattr_block_csum(ctx, blockNr, buf, off);
}
export function ext4_xattr_block_csum_set(ctx: Ext4CsumCtx, blockNr: number, buf: Uint8Array, off = 0): void {
  if (!ctx.metadata_csum) return;
  put_le32(buf, off + XATTR_H_CHECKSUM, ext4_xattr_block_csum(ctx, blockNr, buf, off));
}

/* ---- MMP block: fs seed over everything before mmp_checksum ---------------------------- */

export function ext4_mmp_csum(ctx: Ext4CsumCtx, buf: Uint8Array, off = 0): number {
  return crc32c(ctx.csum_seed, buf, off, EXT4_MMP_OFF.mmp_checksum);
}
export function ext4_mmp_csum_verify(ctx: Ext4CsumCtx, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  return le32(buf, off + EXT4_MMP_OFF.mmp_checksum) === ext4_mmp_csum(ctx, buf, off);
}
export function ext4_mmp_csum_set(ctx: Ext4CsumCtx, buf: Uint8Array, off = 0): void {
  if (!ctx.metadata_csum) return;
  put_le32(buf, off + EXT4_MMP_OFF.mmp_checksum, ext4_mmp_csum(ctx, buf, off));
}

/* ---- orphan file blocks: orphan inode's seed, le64 physical block, the entry slots ------ */

/** `ofSeed` is ext4_inode_csum_seed of the orphan file inode; `blockNr` the physical block. */
export function ext4_orphan_file_block_csum(ctx: Ext4CsumCtx, ofSeed: number, blockNr: number, buf: Uint8Array, off = 0): number {
  const c = crc32c(ofSeed, le64(blockNr));
  return crc32c(c, buf, off, ext4_inodes_per_orphan_block(ctx.block_size) * 4);
}
export function ext4_orphan_file_block_csum_verify(ctx: Ext4CsumCtx, ofSeed: number, blockNr: number, buf: Uint8Array, off = 0): boolean {
  if (!ctx.metadata_csum) return true;
  return le32(buf, off + ctx.block_size - EXT4_ORPHAN_BLOCK_TAIL_SIZE + 4) ===
    ext4_orphan_file_block_csum(ctx, ofSeed, blockNr, buf, off);
}
export function ext4_orphan_file_block_csum_set(ctx: Ext4CsumCtx, ofSeed: number, blockNr: number, buf: Uint8Array, off = 0): void {
  if (!ctx.metadata_csum) return;
  put_le32(buf, off + ctx.block_size - EXT4_ORPHAN_BLOCK_TAIL_SIZE + 4,
    ext4_orphan_file_block_csum(ctx, ofSeed, blockNr, buf, off));
}
