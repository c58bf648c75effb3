/*
 * Metadata block reads (ext4_sb_bread, ext4_inode_block_valid from super.c and
 * block_validity.c): every block number that came from disk is checked against the
 * filesystem's geometry before it is read, and blocks replayed from the journal into
 * memory (read-only recovery) are served from the overlay before the device.
 */
import type { super_block } from '../../include/fs.js';
import { EXT4_SB } from './ext4.js';
import { ext4_error } from './errors.js';

/** ext4_inode_block_valid without the system-zone map: inside [first_data_block, blocks_count). */
export function ext4_block_valid(sb: super_block, blk: number, count = 1): boolean {
  const sbi = EXT4_SB(sb);
  return Number.isInteger(blk) && count >= 1 && blk >= sbi.s_first_data_block && blk !== 0 &&
    blk + count <= sbi.s_blocks_count;
}

/** The bytes of block `blk` (shared: never modify). `func`/`ino` name the reader in errors. */
export async function ext4_sb_bread(sb: super_block, blk: number, func = 'ext4_sb_bread', ino?: number): Promise<Uint8Array> {
  const sbi = EXT4_SB(sb);
  if (!(Number.isInteger(blk) && blk >= 0 && blk < sbi.s_blocks_count))
    throw ext4_error(sb, func, `invalid block reference ${blk}`, { ino });
  const o = sbi.s_overlay.get(blk);
  if (o) return o;
  return sbi.s_dev.bread(blk);
}

/** Read a block without geometry checks (superblock probing, journal with its own bounds). */
export async function ext4_raw_bread(sb: super_block, blk: number): Promise<Uint8Array> {
  const sbi = EXT4_SB(sb);
  const o = sbi.s_overlay.get(blk);
  if (o) return o;
  return sbi.s_dev.bread(blk);
}
