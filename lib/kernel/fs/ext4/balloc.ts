/*
 * Free-space accounting for statfs (the read-only parts of fs/ext4/balloc.c and
 * super.c: ext4_count_free_clusters, ext4_bg_has_super, ext4_bg_num_gdb,
 * ext4_calculate_overhead, ext4_calculate_resv_clusters, ext4_statfs). Counts come from
 * the group descriptors, as Linux's percpu counters are initialised from them.
 */
import type { Dentry, super_block } from '../../include/fs.js';
import type { Statfs } from '../../include/uapi.js';
import {
  EXT4_FEATURE_COMPAT_SPARSE_SUPER2, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_META_BG,
  EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER, EXT4_NAME_LEN, EXT4_SUPER_MAGIC, ext4_free_group_clusters,
  ext4_free_inodes_count, ext4_r_blocks_count, le32,
} from './layout.js';
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
}

/** ext4_statfs. */
export function ext4_statfs_sb(sb: super_block): Statfs {
  const sbi = EXT4_SB(sb);
  const st = statfsState.get(sbi) ?? { overhead: 0, resvClusters: 0 };
  const ratio = sbi.s_cluster_ratio;
  const overhead = sbi.test_opt(EXT4_MOUNT_MINIX_DF) ? 0 : st.overhead;
  const blocks = sbi.s_blocks_count - overhead;
  const bfree = Math.max(0, ext4_count_free_clusters(sbi)) * ratio;
  const reserved = ext4_r_blocks_count(sbi.s_es) + st.resvClusters * ratio;
  const bavail = bfree < reserved ? 0 : bfree - reserved;
  const u = sbi.s_es.s_uuid;
  const fsid: [number, number] = [(le32(u, 0) ^ le32(u, 8)) >>> 0, (le32(u, 4) ^ le32(u, 12)) >>> 0];
  return {
    type: EXT4_SUPER_MAGIC, bsize: sbi.s_blocksize, blocks, bfree, bavail,
    files: sbi.s_es.s_inodes_count, ffree: ext4_count_free_inodes(sbi), fsid, namelen: EXT4_NAME_LEN,
    frsize: sbi.s_blocksize, flags: 0,
  };
}

export async function ext4_statfs(dentry: Dentry): Promise<Statfs> {
  return ext4_statfs_sb(dentry.d_sb);
}
