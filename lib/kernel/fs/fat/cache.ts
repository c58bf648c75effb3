/*
 * The cluster-chain cache and block mapping (fs/fat/cache.c): which disk cluster holds
 * file cluster N (fat_get_cluster), and which disk block holds file block N (fat_bmap).
 * Walking a FAT chain costs one FAT read per cluster, so each inode remembers a few
 * contiguous runs it has walked; truncation invalidates them.
 */
import { EIO } from '../../include/uapi.js';
import { MSDOS_SB, MSDOS_ROOT_INO, type msdos_inode_info } from './fat.js';
import { FAT_ENT_EOF, FAT_ENT_FREE, FAT_START_ENT } from './layout.js';
import { fat_fs_error } from './misc.js';
import { fat_ent_read } from './fatent.js';

const FAT_MAX_CACHE = 8;

export function fat_cache_inval_inode(inode: msdos_inode_info): void {
  inode.cache_lru = [];
}

function cacheAdd(inode: msdos_inode_info, fclus: number, dclus: number): void {
  const c = inode.cache_lru;
  for (const e of c) {
    if (fclus === e.fcluster + e.len && dclus === e.dcluster + e.len) { e.len++; return; }
    if (fclus >= e.fcluster && fclus < e.fcluster + e.len) return;
  }
  c.push({ fcluster: fclus, dcluster: dclus, len: 1 });
  if (c.length > FAT_MAX_CACHE) c.shift();
}

/**
 * fat_get_cluster: the disk cluster of file cluster `want` (0-based). If the chain ends
 * first, `eof` is set and fclus/dclus name the last cluster (want = MAX_SAFE_INTEGER
 * finds the last cluster). The file must have a start cluster.
 */
export async function fat_get_cluster(inode: msdos_inode_info, want: number): Promise<{ fclus: number; dclus: number; eof: boolean }> {
  const sb = inode.i_sb;
  const sbi = MSDOS_SB(sb);
  if (inode.i_start === 0) throw fat_fs_error(sb, `fat_get_cluster: empty chain (i_pos ${inode.i_pos})`, EIO);
  let fclus = 0;
  let dclus = inode.i_start;
  let best = null;
  for (const e of inode.cache_lru) if (e.fcluster <= want && (!best || e.fcluster > best.fcluster)) best = e;
  if (best) {
    const off = Math.min(want - best.fcluster, best.len - 1);
    fclus = best.fcluster + off;
    dclus = best.dcluster + off;
    if (fclus === want) return { fclus, dclus, eof: false };
  }
  const limit = sbi.totalClusters;
  while (fclus < want) {
    const next = await fat_ent_read(sb, dclus);
    if (next === FAT_ENT_FREE || (next !== FAT_ENT_EOF && (next < FAT_START_ENT || next >= sbi.max_cluster))) {
      throw fat_fs_error(sb, `fat_get_cluster: invalid cluster chain (i_pos ${inode.i_pos})`, EIO);
    }
    if (next === FAT_ENT_EOF) return { fclus, dclus, eof: true };
    fclus++;
    dclus = next;
    if (fclus > limit) throw fat_fs_error(sb, `fat_get_cluster: detected the cluster chain loop (i_pos ${inode.i_pos})`, EIO);
    cacheAdd(inode, fclus, dclus);
  }
  return { fclus, dclus, eof: false };
}

/**
 * fat_bmap: disk block of file block `iblock` (in blocks of sbi.blocksize), with how many
 * following blocks are contiguous on disk (at most to the end of that cluster), or
 * {pblk: 0} past the end of the chain. The FAT12/16 root directory is its fixed area.
 */
export async function fat_bmap(inode: msdos_inode_info, iblock: number): Promise<{ pblk: number; len: number }> {
  const sbi = MSDOS_SB(inode.i_sb);
  if (inode.i_ino === MSDOS_ROOT_INO && sbi.fat_bits !== 32) {
    const n = sbi.data_start - sbi.dir_start;
    if (iblock >= n) return { pblk: 0, len: 0 };
    return { pblk: sbi.dir_start + iblock, len: n - iblock };
  }
  if (inode.i_start === 0) return { pblk: 0, len: 0 };
  const cl = Math.floor(iblock / sbi.sec_per_clus);
  const off = iblock % sbi.sec_per_clus;
  const r = await fat_get_cluster(inode, cl);
  if (r.eof) return { pblk: 0, len: 0 };
  return { pblk: (r.dclus - FAT_START_ENT) * sbi.sec_per_clus + sbi.data_start + off, len: sbi.sec_per_clus - off };
}
