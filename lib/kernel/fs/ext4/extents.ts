/*
 * Extent trees, read side (fs/ext4/extents.c: ext4_find_extent, __ext4_ext_check,
 * ext4_ext_map_blocks without create). The root lives in i_block (4 entries); deeper
 * nodes are whole blocks ending with a checksum tail under metadata_csum. Every node is
 * validated before use: magic, depth as expected, entries <= max, entries ordered and
 * inside the filesystem, and its checksum. The write side (insert, split, remove) goes
 * here too, later.
 */
import type { MappedBlock } from '../../include/blk.js';
import {
  EXT4_MAX_EXTENT_DEPTH, ext4_ext_check, ext4_ext_header_decode, ext4_ext_space_block,
  ext4_ext_space_root, ext4_extent_decode, ext4_extent_idx_decode, type Ext4Extent,
} from './ext4_extents.h.js';
import { ext4_extent_block_csum_verify } from './csum.js';
import { EXT4_SB, type Ext4Inode } from './ext4.js';
import { ext4_csum_error, ext4_error } from './errors.js';
import { ext4_block_valid, ext4_sb_bread } from './block_validity.js';

/** EXT_MAX_BLOCKS: logical block numbers are 32-bit. */
export const EXT_MAX_BLOCKS = 0xffffffff;

/** One level of the path to a leaf: the node's bytes and where its header is. */
interface PathNode { buf: Uint8Array; off: number; depth: number; entries: number; idx: number; blk: number }

/** Validate one node (__ext4_ext_check); throws through ext4_error. */
function ext4_ext_check_node(inode: Ext4Inode, buf: Uint8Array, off: number, depth: number, max: number,
  blk: number): void {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const why = ext4_ext_check(buf, off, depth, max, (p, n) => ext4_block_valid(sb, p, n));
  if (why) {
    const h = ext4_ext_header_decode(buf, off);
    throw ext4_error(sb, 'ext4_ext_check_inode', `pblk ${blk} bad header/extent: ${why} - magic ${h.eh_magic.toString(16)}, entries ${h.eh_entries}, max ${h.eh_max}(${max}), depth ${h.eh_depth}(${depth})`,
      { ino: inode.i_ino });
  }
  if (blk !== 0 && sbi.s_csum?.metadata_csum && !ext4_extent_block_csum_verify(sbi.s_csum, inode.i_csum_seed, buf, off))
    throw ext4_csum_error(sb, 'ext4_ext_check_inode', `pblk ${blk} extent tree (at level ${depth}) could not be verified: invalid checksum`, { ino: inode.i_ino });
}

/** Root depth, validated (ext4_ext_check_inode). */
export function ext_depth(inode: Ext4Inode): number {
  const h = ext4_ext_header_decode(inode.i_data, 0);
  if (h.eh_depth > EXT4_MAX_EXTENT_DEPTH)
    throw ext4_error(inode.i_sb, 'ext4_ext_check_inode', `bad header: too large eh_depth ${h.eh_depth}`, { ino: inode.i_ino });
  return h.eh_depth;
}

/**
 * ext4_find_extent: the path from the root to the leaf that would hold `lblk`. Each node
 * records the index of the entry chosen (the last one starting at or before lblk, or the
 * first one), as ext4_ext_binsearch(_idx) do.
 */
export async function ext4_find_extent(inode: Ext4Inode, lblk: number): Promise<PathNode[]> {
  const sb = inode.i_sb;
  const depth = ext_depth(inode);
  ext4_ext_check_node(inode, inode.i_data, 0, depth, ext4_ext_space_root(), 0);
  const path: PathNode[] = [];
  let buf = inode.i_data, blk = 0;
  for (let d = depth; ; d--) {
    const h = ext4_ext_header_decode(buf, 0);
    let lo = 0, hi = h.eh_entries - 1, pick = 0;
    while (lo <= hi) {
      const m = (lo + hi) >>> 1;
      const start = d > 0 ? ext4_extent_idx_decode(buf, 0, m).ei_block : ext4_extent_decode(buf, 0, m).ee_block;
      if (start <= lblk) { pick = m; lo = m + 1; } else hi = m - 1;
    }
    path.push({ buf, off: 0, depth: d, entries: h.eh_entries, idx: h.eh_entries ? pick : -1, blk });
    if (d === 0) break;
    const next = ext4_extent_idx_decode(buf, 0, pick).leaf;
    if (path.length > EXT4_MAX_EXTENT_DEPTH + 1)
      throw ext4_error(sb, 'ext4_find_extent', 'extent tree too deep', { ino: inode.i_ino });
    buf = await ext4_sb_bread(sb, next, 'ext4_find_extent', inode.i_ino);
    blk = next;
    ext4_ext_check_node(inode, buf, 0, d - 1, ext4_ext_space_block(sbi_bs(inode)), blk);
  }
  return path;
}

function sbi_bs(inode: Ext4Inode): number { return EXT4_SB(inode.i_sb).s_blocksize; }

/** ext4_ext_next_allocated_block: the first logical block mapped after the path's position. */
function next_allocated(path: PathNode[]): number {
  for (let i = path.length - 1; i >= 0; i--) {
    const n = path[i];
    if (n.idx + 1 < n.entries) {
      return n.depth === 0 ? ext4_extent_decode(n.buf, n.off, n.idx + 1).ee_block
        : ext4_extent_idx_decode(n.buf, n.off, n.idx + 1).ei_block;
    }
  }
  return EXT_MAX_BLOCKS;
}

/**
 * ext4_ext_map_blocks (lookup only): where logical block `lblk` lives and for how many
 * blocks the mapping continues (at most `max`). Holes come back with pblk 0 and the
 * hole's length; unwritten extents with `unwritten` set (they read as zeros).
 */
export async function ext4_ext_map_blocks(inode: Ext4Inode, lblk: number, max: number): Promise<MappedBlock> {
  const path = await ext4_find_extent(inode, lblk);
  const leaf = path[path.length - 1];
  if (leaf.idx >= 0) {
    const ex: Ext4Extent = ext4_extent_decode(leaf.buf, leaf.off, leaf.idx);
    if (lblk >= ex.ee_block && lblk < ex.ee_block + ex.len) {
      const off = lblk - ex.ee_block;
      return { pblk: ex.start + off, len: Math.min(max, ex.len - off), unwritten: ex.unwritten };
    }
    if (lblk < ex.ee_block) return { pblk: 0, len: Math.max(1, Math.min(max, ex.ee_block - lblk)) };
  }
  const next = next_allocated(path);
  return { pblk: 0, len: Math.max(1, Math.min(max, next - lblk)) };
}

/** Every extent of the inode in logical order (for SEEK_DATA/SEEK_HOLE, fiemap-like walks and tests). */
export async function ext4_ext_walk(inode: Ext4Inode, fn: (ex: Ext4Extent) => boolean | void): Promise<void> {
  const sb = inode.i_sb;
  const depth = ext_depth(inode);
  ext4_ext_check_node(inode, inode.i_data, 0, depth, ext4_ext_space_root(), 0);
  let stop = false;
  const visit = async (buf: Uint8Array, d: number): Promise<void> => {
    const h = ext4_ext_header_decode(buf, 0);
    for (let i = 0; i < h.eh_entries && !stop; i++) {
      if (d === 0) { if (fn(ext4_extent_decode(buf, 0, i)) === false) stop = true; continue; }
      const blk = ext4_extent_idx_decode(buf, 0, i).leaf;
      const child = await ext4_sb_bread(sb, blk, 'ext4_ext_walk', inode.i_ino);
      ext4_ext_check_node(inode, child, 0, d - 1, ext4_ext_space_block(sbi_bs(inode)), blk);
      await visit(child, d - 1);
    }
  };
  await visit(inode.i_data, depth);
}
