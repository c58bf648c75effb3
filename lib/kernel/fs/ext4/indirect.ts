/*
 * Block maps of non-extent files, read side (fs/ext4/indirect.c: ext4_block_to_path,
 * ext4_get_branch, ext4_ind_map_blocks without create). i_block holds 12 direct pointers,
 * then one indirect, one double and one triple indirect block. Pointers read from disk are
 * checked against the filesystem before they are followed.
 */
import type { MappedBlock } from '../../include/blk.js';
import { EXT4_NDIR_BLOCKS, le32 } from './layout.js';
import { EXT4_SB, type Ext4Inode } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_block_valid, ext4_sb_bread } from './block_validity.js';

/**
 * ext4_block_to_path: the slot in i_block and the index in each indirect level for `lblk`,
 * or null past what a block map can address.
 */
export function ext4_block_to_path(lblk: number, addrPerBlock: number): number[] | null {
  const a = addrPerBlock;
  if (lblk < 0) return null;
  if (lblk < EXT4_NDIR_BLOCKS) return [lblk];
  let b = lblk - EXT4_NDIR_BLOCKS;
  if (b < a) return [EXT4_NDIR_BLOCKS, b];
  b -= a;
  if (b < a * a) return [EXT4_NDIR_BLOCKS + 1, Math.floor(b / a), b % a];
  b -= a * a;
  if (b < a * a * a) return [EXT4_NDIR_BLOCKS + 2, Math.floor(b / (a * a)), Math.floor(b / a) % a, b % a];
  return null;
}

/** How many logical blocks one pointer at level `level` (0 = i_block slot) of `path` covers. */
function spanOf(path: number[], level: number, a: number): number {
  return a ** (path.length - 1 - level);
}

/**
 * ext4_ind_map_blocks (lookup only): pblk and contiguous length from `lblk`, or a hole
 * (pblk 0) with the number of unmapped blocks that follow within the same pointer block.
 */
export async function ext4_ind_map_blocks(inode: Ext4Inode, lblk: number, max: number): Promise<MappedBlock> {
  const sb = inode.i_sb;
  const a = EXT4_SB(sb).s_blocksize / 4;
  const path = ext4_block_to_path(lblk, a);
  if (!path) {
    throw ext4_error(sb, 'ext4_block_to_path', `block ${lblk} > max in inode ${inode.i_ino}`, { ino: inode.i_ino });
  }
  let buf = inode.i_data;
  let ptrOff = 4 * path[0];
  // At the root only the 12 direct slots are alike; IND/DIND/TIND stand alone.
  let ptrsEnd = path.length === 1 ? 4 * EXT4_NDIR_BLOCKS : ptrOff + 4;
  for (let level = 0; ; level++) {
    const p = le32(buf, ptrOff);
    if (p === 0) {
      // A hole: this pointer (and any zero pointers after it in the same block) cover it.
      const span = spanOf(path, level, a);
      const intoSpan = level === path.length - 1 ? 0 : lblk - blockAtPath(path, level, a);
      let len = span - intoSpan;
      for (let o = ptrOff + 4; o < ptrsEnd && len < max && le32(buf, o) === 0; o += 4) len += span;
      return { pblk: 0, len: Math.max(1, Math.min(max, len)) };
    }
    if (!ext4_block_valid(sb, p))
      throw ext4_error(sb, 'ext4_get_branch', `invalid block reference ${p} at level ${level}`, { ino: inode.i_ino });
    if (level === path.length - 1) {
      // Count contiguous pointers after this one in the same block.
      let len = 1;
      for (let o = ptrOff + 4; o < ptrsEnd && len < max; o += 4) {
        if (le32(buf, o) !== p + len) break;
        len++;
      }
      return { pblk: p, len };
    }
    buf = await ext4_sb_bread(sb, p, 'ext4_get_branch', inode.i_ino);
    ptrOff = 4 * path[level + 1];
    ptrsEnd = EXT4_SB(sb).s_blocksize;
  }
}

/** The first logical block covered by the pointer chosen at `level` of `path`. */
function blockAtPath(path: number[], level: number, a: number): number {
  let base: number;
  const slot = path[0];
  if (slot < EXT4_NDIR_BLOCKS) return slot;
  base = EXT4_NDIR_BLOCKS;
  if (slot >= EXT4_NDIR_BLOCKS + 1) base += a;
  if (slot >= EXT4_NDIR_BLOCKS + 2) base += a * a;
  let b = base;
  for (let l = 1; l <= level; l++) b += path[l] * a ** (path.length - 1 - l);
  return b;
}
