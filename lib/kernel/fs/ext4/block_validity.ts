/*
 * Block validity (ext4_inode_block_valid from block_validity.c): every block number that
 * came from disk is checked against the filesystem's geometry before it is used.
 * ext4_sb_bread, which makes the same check before a read, is in super.ts (super.c).
 */
import type { super_block } from '../../include/fs.js';
import { EXT4_SB } from './ext4.js';

/** ext4_inode_block_valid without the system-zone map: inside [first_data_block, blocks_count). */
export function ext4_block_valid(sb: super_block, blk: number, count = 1): boolean {
  const sbi = EXT4_SB(sb);
  return Number.isInteger(blk) && count >= 1 && blk >= sbi.s_first_data_block && blk !== 0 &&
    blk + count <= sbi.s_blocks_count;
}
