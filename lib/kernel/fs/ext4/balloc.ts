/*
 * Block groups (fs/ext4/balloc.c and the accounting parts of super.c): group geometry
 * (ext4_bg_has_super, ext4_bg_num_gdb, ext4_num_base_meta_blocks), statfs
 * (ext4_count_free_clusters, ext4_calculate_overhead, ext4_calculate_resv_clusters,
 * ext4_statfs), and for the write side the block bitmaps (ext4_read_block_bitmap with
 * ext4_init_block_bitmap for BLOCK_UNINIT groups) and writing a descriptor back with its
 * checksums. Allocation itself is mballoc.ts's. Counts come from the group descriptors, as
 * Linux's percpu counters are initialised from them.
 */
import type { dentry, super_block } from '../../include/fs.js';
import { sb_getblk, type buffer_head } from '../buffer.js';
import type { Ext4CsumCtx } from './csum.js';
import { BH_Uptodate } from '../../include/blk.js';
import type { statfs } from '../../include/uapi.js';
import {
  EXT4_FEATURE_COMPAT_SPARSE_SUPER2, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_META_BG,
  EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER, EXT4_NAME_LEN, EXT4_SUPER_MAGIC, ext4_free_group_clusters,
  ext4_free_inodes_count, ext4_r_blocks_count, le32, EXT4_BG_BLOCK_UNINIT, ext4_block_bitmap, ext4_inode_bitmap,
  ext4_inode_table, ext4_group_desc_encode, ext4_group_desc_decode,
} from './layout.js';
import {
  ext4_block_bitmap_csum_set, ext4_block_bitmap_csum_verify, ext4_group_desc_csum_set, ext4_inode_bitmap_csum_set,
} from './csum.js';
import { ext4_block_valid } from './block_validity.js';
import { ext4_csum_error, ext4_error } from './errors.js';
import {
  brelse, ext4_handle_dirty_metadata, ext4_journal_get_write_access, ext4_sb_bread_bh,
  type handle_t,
} from './ext4_jbd2.js';
import { EXT4_SB, EXT4_MOUNT_MINIX_DF, type ext4_sb_info } from './ext4.js';

function test_root(a: number, b: number): boolean {
  let num = b;
  while (num < a) num *= b;
  return num === a;
}

/** ext4_bg_has_super: does group `group` hold a superblock (backup)? */
export function ext4_bg_has_super(sbi: ext4_sb_info, group: number): boolean {
  if (group === 0) return true;
  if (sbi.has_compat(EXT4_FEATURE_COMPAT_SPARSE_SUPER2)) {
    const b = sbi.s_es.s_backup_bgs;
    return group === b[0] || group === b[1];
  }
  if (group <= 1 || !sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER)) return true;
  if (!(group & 1)) return false;
  return test_root(group, 3) || test_root(group, 5) || test_root(group, 7);
}

/** ext4_bg_num_gdb: group descriptor blocks stored in `group`. */
export function ext4_bg_num_gdb(sbi: ext4_sb_info, group: number): number {
  const firstMetaBg = sbi.s_es.s_first_meta_bg;
  const metagroup = Math.floor(group / sbi.s_desc_per_block);
  if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_META_BG) || metagroup < firstMetaBg) {
    if (!ext4_bg_has_super(sbi, group)) return 0;
    return sbi.has_incompat(EXT4_FEATURE_INCOMPAT_META_BG) ? firstMetaBg : sbi.s_gdb_count;
  }
  const first = metagroup * sbi.s_desc_per_block;
  const last = first + sbi.s_desc_per_block - 1;
  return group === first || group === first + 1 || group === last ? 1 : 0;
}

/** ext4_group_first_block_no. */
export function ext4_group_first_block_no(sbi: ext4_sb_info, group: number): number {
  return group * sbi.s_blocks_per_group + sbi.s_first_data_block;
}

/**
 * ext4_calculate_overhead (non-bigalloc): blocks before the first group, each group's
 * superblock backup, descriptor blocks, reserved GDT blocks, bitmaps and inode table, and
 * the internal journal. s_overhead_clusters wins when mke2fs recorded it.
 */
export function ext4_calculate_overhead(sbi: ext4_sb_info, journalBlocks: number): number {
  if (sbi.s_es.s_overhead_clusters) return sbi.s_es.s_overhead_clusters * sbi.s_cluster_ratio;
  let overhead = sbi.s_first_data_block;
  for (let g = 0; g < sbi.s_groups_count; g++) {
    const hasSuper = ext4_bg_has_super(sbi, g) ? 1 : 0;
    overhead += hasSuper + ext4_bg_num_gdb(sbi, g) + (hasSuper ? sbi.s_es.s_reserved_gdt_blocks : 0) +
      sbi.s_itb_per_group + 2;
  }
  return overhead + journalBlocks;
}

/** ext4_calculate_resv_clusters: 2% of the filesystem, at most 4096 clusters, extents only. */
export function ext4_calculate_resv_clusters(sbi: ext4_sb_info): number {
  if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS)) return 0;
  const clusters = Math.floor(sbi.s_blocks_count / sbi.s_cluster_ratio);
  return Math.min(Math.floor(clusters / 50), 4096);
}

export function ext4_count_free_clusters(sbi: ext4_sb_info): number {
  let n = 0;
  for (const gd of sbi.s_group_desc) n += ext4_free_group_clusters(gd);
  return n;
}
export function ext4_count_free_inodes(sbi: ext4_sb_info): number {
  let n = 0;
  for (const gd of sbi.s_group_desc) n += ext4_free_inodes_count(gd);
  return n;
}

/** State kept at mount for statfs (sbi->s_overhead, s_resv_clusters). */
export interface Ext4StatfsState { overhead: number; resvClusters: number }
const statfsState = new WeakMap<ext4_sb_info, Ext4StatfsState>();
export function ext4_statfs_init(sbi: ext4_sb_info, journalBlocks: number): void {
  statfsState.set(sbi, { overhead: ext4_calculate_overhead(sbi, journalBlocks), resvClusters: ext4_calculate_resv_clusters(sbi) });
  sbi.s_freeclusters_counter = ext4_count_free_clusters(sbi);
  sbi.s_freeinodes_counter = ext4_count_free_inodes(sbi);
}
/** sbi->s_resv_clusters. */
export function ext4_resv_clusters(sbi: ext4_sb_info): number { return statfsState.get(sbi)?.resvClusters ?? 0; }

/** ext4_statfs. */
export function ext4_statfs_sb(sb: super_block): statfs {
  const sbi = EXT4_SB(sb);
  const st = statfsState.get(sbi) ?? { overhead: 0, resvClusters: 0 };
  const ratio = sbi.s_cluster_ratio;
  const overhead = sbi.test_opt(EXT4_MOUNT_MINIX_DF) ? 0 : st.overhead;
  const blocks = sbi.s_blocks_count - overhead;
  const bfree = Math.max(0, sbi.s_freeclusters_counter - sbi.s_dirtyclusters_counter) * ratio;
  const reserved = ext4_r_blocks_count(sbi.s_es) + st.resvClusters * ratio;
  const bavail = bfree < reserved ? 0 : bfree - reserved;
  const u = sbi.s_es.s_uuid;
  const fsid: [number, number] = [(le32(u, 0) ^ le32(u, 8)) >>> 0, (le32(u, 4) ^ le32(u, 12)) >>> 0];
  return {
    type: EXT4_SUPER_MAGIC, bsize: sbi.s_blocksize, blocks, bfree, bavail,
    files: sbi.s_es.s_inodes_count, ffree: sbi.s_freeinodes_counter, fsid, namelen: EXT4_NAME_LEN,
    frsize: sbi.s_blocksize, flags: 0,
  };
}

export async function ext4_statfs(dentry: dentry): Promise<statfs> {
  return ext4_statfs_sb(dentry.d_sb);
}

/* ---- the write side: bitmaps and descriptors (balloc.c, the descriptor half of super.c) ---- */

/** ext4_get_group_number / ext4_get_group_no_and_offset. */
export function ext4_get_group_no_and_offset(sbi: ext4_sb_info, blk: number): { group: number; offset: number } {
  const rel = blk - sbi.s_first_data_block;
  return { group: Math.floor(rel / sbi.s_blocks_per_group), offset: rel % sbi.s_blocks_per_group };
}

/** Blocks in `group` (the last group may be short): ext4_blocks_in_group. */
export function ext4_blocks_in_group(sbi: ext4_sb_info, group: number): number {
  if (group < sbi.s_groups_count - 1) return sbi.s_blocks_per_group;
  return sbi.s_blocks_count - ext4_group_first_block_no(sbi, group);
}

/** ext4_num_base_meta_blocks: superblock backup, descriptor blocks and reserved GDT blocks of a group. */
export function ext4_num_base_meta_blocks(sbi: ext4_sb_info, group: number): number {
  let num = ext4_bg_has_super(sbi, group) ? 1 : 0;
  const metaBg = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_META_BG);
  if (!metaBg || group < sbi.s_es.s_first_meta_bg * sbi.s_desc_per_block) {
    if (num) num += ext4_bg_num_gdb(sbi, group) + sbi.s_es.s_reserved_gdt_blocks;
  } else {
    num += ext4_bg_num_gdb(sbi, group);
  }
  return num;
}

/** Set bit `nr` of a bitmap (ext4_set_bit). */
export function ext4_set_bit(nr: number, map: Uint8Array): void { map[Math.floor(nr / 8)]! |= 1 << (nr % 8); }
export function ext4_clear_bit(nr: number, map: Uint8Array): void { map[Math.floor(nr / 8)]! &= ~(1 << (nr % 8)); }
export function ext4_test_bit(nr: number, map: Uint8Array): boolean { return (map[Math.floor(nr / 8)]! & (1 << (nr % 8))) !== 0; }

/** ext4_mark_bitmap_end: bits from `start` to the end of the bitmap block are set (padding). */
export function ext4_mark_bitmap_end(start: number, endBit: number, map: Uint8Array): void {
  for (let i = start; i < endBit; i++) ext4_set_bit(i, map);
}

/**
 * ext4_init_block_bitmap: the bitmap of a BLOCK_UNINIT group, as mke2fs meant it: the
 * superblock backup and descriptor blocks, the group's own bitmaps and inode table when
 * they lie in it, and the padding past the group's last block.
 */
export function ext4_init_block_bitmap(sbi: ext4_sb_info, group: number, map: Uint8Array): void {
  map.fill(0);
  const base = ext4_num_base_meta_blocks(sbi, group);
  for (let i = 0; i < base; i++) ext4_set_bit(i, map);
  const start = ext4_group_first_block_no(sbi, group);
  const n = ext4_blocks_in_group(sbi, group);
  const gd = sbi.s_group_desc[group]!;
  const mark = (blk: number, count: number) => {
    for (let b = blk; b < blk + count; b++) if (b >= start && b < start + n) ext4_set_bit(b - start, map);
  };
  mark(ext4_block_bitmap(gd), 1);
  mark(ext4_inode_bitmap(gd), 1);
  mark(ext4_inode_table(gd), sbi.s_itb_per_group);
  ext4_mark_bitmap_end(n, sbi.s_blocksize * 8, map);
}

/** ext4_free_clusters_after_init: what a BLOCK_UNINIT group has free once initialised. */
export function ext4_free_clusters_after_init(sbi: ext4_sb_info, group: number): number {
  const map = new Uint8Array(sbi.s_blocksize);
  ext4_init_block_bitmap(sbi, group, map);
  const n = ext4_blocks_in_group(sbi, group);
  let used = 0;
  for (let i = 0; i < n; i++) if (ext4_test_bit(i, map)) used++;
  return n - used;
}

/** ext4_has_group_desc_csum: uninit_bg (gdt_csum) or metadata_csum. */
export function ext4_has_group_desc_csum(sbi: ext4_sb_info): boolean {
  return !!(sbi.s_csum?.metadata_csum || sbi.s_csum?.gdt_csum);
}

/**
 * ext4_read_block_bitmap: group `group`'s block bitmap as a live buffer, initialised if the
 * group is BLOCK_UNINIT (the flag is cleared by the caller that dirties it), its checksum
 * verified on first read.
 */
export async function ext4_read_block_bitmap(sb: super_block, group: number): Promise<buffer_head> {
  const sbi = EXT4_SB(sb);
  const gd = sbi.s_group_desc[group]!;
  const blk = ext4_block_bitmap(gd);
  if (!ext4_block_valid(sb, blk))
    throw ext4_error(sb, 'ext4_read_block_bitmap', `Invalid block bitmap block ${blk} in block_group ${group}`);
  if ((gd.bg_flags & EXT4_BG_BLOCK_UNINIT) && ext4_has_group_desc_csum(sbi)) {
    const bh = await sb_getblk(sb, blk);
    if (!sbi.s_bitmap_inited.has(blk) || !bh.test(BH_Uptodate)) {
      ext4_init_block_bitmap(sbi, group, bh.b_data);
      bh.set(BH_Uptodate);
      sbi.s_bitmap_inited.add(blk);
      sbi.s_bitmap_verified.add(blk);
    }
    return bh;
  }
  return ext4_read_bitmap_verified(sb, group, blk, ext4_block_bitmap_csum_verify, 'ext4_validate_block_bitmap',
    `bg ${group}: bad block bitmap checksum`);
}

/**
 * A bitmap block read and, the first time, checked against the checksum its descriptor
 * holds (`verify`: the block or the inode bitmap's); a bad one is ext4_csum_error(`func`, `msg`).
 */
export async function ext4_read_bitmap_verified(sb: super_block, group: number, blk: number,
  verify: (ctx: Ext4CsumCtx, gd: Uint8Array, gdOff: number, bitmap: Uint8Array) => boolean, func: string, msg: string): Promise<buffer_head> {
  const sbi = EXT4_SB(sb);
  const bh = await ext4_sb_bread_bh(sb, blk, func);
  if (sbi.s_bitmap_verified.has(blk)) return bh;
  const loc = sbi.s_group_desc_loc[group]!;
  let ok: boolean;
  try {
    const gdbh = await ext4_sb_bread_bh(sb, loc.block, func);
    try { ok = verify(sbi.s_csum!, gdbh.b_data, loc.off, bh.b_data); } finally { brelse(gdbh); }
  } catch (e) { brelse(bh); throw e; }
  if (!ok) { brelse(bh); throw ext4_csum_error(sb, func, msg); }
  sbi.s_bitmap_verified.add(blk);
  return bh;
}

/**
 * Write group `group`'s descriptor (from sbi.s_group_desc) into its block, with the bitmap
 * checksums of the bitmaps given and the descriptor checksum; dirtied under `handle`.
 * Everything after the descriptor block is read happens without yielding, so the
 * checksums match the bitmaps' bytes at this instant.
 */
export async function ext4_group_desc_write(handle: handle_t, sb: super_block, group: number,
  bitmaps: { block?: Uint8Array; inode?: Uint8Array }): Promise<void> {
  const sbi = EXT4_SB(sb);
  const loc = sbi.s_group_desc_loc[group]!;
  const bh = await ext4_sb_bread_bh(sb, loc.block, 'ext4_group_desc_write');
  try {
    await ext4_journal_get_write_access(handle, sb, bh);
    const gd = sbi.s_group_desc[group]!;
    ext4_group_desc_encode(gd, bh.b_data, loc.off, sbi.s_desc_size);
    if (bitmaps.block) ext4_block_bitmap_csum_set(sbi.s_csum!, bh.b_data, loc.off, bitmaps.block);
    if (bitmaps.inode) ext4_inode_bitmap_csum_set(sbi.s_csum!, bh.b_data, loc.off, bitmaps.inode);
    ext4_group_desc_csum_set(sbi.s_csum!, group, bh.b_data, loc.off);
    sbi.s_group_desc[group] = ext4_group_desc_decode(bh.b_data, loc.off, sbi.s_desc_size);
    await ext4_handle_dirty_metadata(handle, null, bh);
  } finally { brelse(bh); }
}
