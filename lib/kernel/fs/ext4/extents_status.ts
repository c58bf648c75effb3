/*
 * The extent status cache (fs/ext4/extents_status.c, in miniature): what ext4_map_blocks
 * last found for an extent-mapped inode — a written or unwritten extent, or a hole — so that
 * the next lookup in the same range (the next page of a sequential write or read) does not
 * walk the extent tree again.
 *
 * Linux keeps a tree of such entries per inode, with a shrinker; this keeps one entry per
 * inode (the last lookup), which is what sequential I/O hits. Delayed extents are not
 * recorded here (the BH_Delay buffers are the record). Every change of the extent tree is
 * made under i_data_sem held for writing, and whoever takes it so removes the entries of
 * the range it may change (ext4_es_remove_extent) before changing anything; entries are
 * inserted only under i_data_sem held for reading, from what the tree says. Pure kernel code.
 */
import type { ext4_inode_info } from './ext4.js';

/* es_status */
export const EXTENT_STATUS_WRITTEN = 1, EXTENT_STATUS_UNWRITTEN = 2, EXTENT_STATUS_DELAYED = 4, EXTENT_STATUS_HOLE = 8;

/** struct extent_status: logical blocks [es_lblk, es_lblk + es_len) and where they are. */
export interface extent_status {
  es_lblk: number;
  es_len: number;
  /** First physical block (0 for a hole). */
  es_pblk: number;
  es_status: number;
}

/** ext4_es_lookup_extent: the cached entry covering `lblk`, or null. */
export function ext4_es_lookup_extent(inode: ext4_inode_info, lblk: number): extent_status | null {
  const es = inode.i_es_cache;
  return es && lblk >= es.es_lblk && lblk < es.es_lblk + es.es_len ? es : null;
}

/** ext4_es_insert_extent: remember what the tree says of [lblk, lblk + len). */
export function ext4_es_insert_extent(inode: ext4_inode_info, lblk: number, len: number, pblk: number, status: number): void {
  if (len <= 0) return;
  const es = inode.i_es_cache;
  if (es) { es.es_lblk = lblk; es.es_len = len; es.es_pblk = pblk; es.es_status = status; return; }
  inode.i_es_cache = { es_lblk: lblk, es_len: len, es_pblk: pblk, es_status: status };
}

/** ext4_es_remove_extent: forget what is cached of [lblk, lblk + len) (the tree is about to change). */
export function ext4_es_remove_extent(inode: ext4_inode_info, lblk = 0, len = Number.MAX_SAFE_INTEGER): void {
  const es = inode.i_es_cache;
  if (es && es.es_lblk < lblk + len && lblk < es.es_lblk + es.es_len) inode.i_es_cache = null;
}
