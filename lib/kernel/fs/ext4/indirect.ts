/*
 * Block maps of non-extent files (fs/ext4/indirect.c: ext4_block_to_path, ext4_get_branch,
 * ext4_ind_map_blocks with and without create, ext4_ind_truncate). i_block holds 12 direct
 * pointers, then one indirect, one double and one triple indirect block. Pointers read
 * from disk are checked against the filesystem before they are followed.
 */
import type { MappedBlock } from '../../include/blk.js';
import { err } from '../../include/errno.js';
import { EFBIG } from '../../include/uapi.js';
import type { buffer_head } from '../buffer.js';
import { EXT4_NDIR_BLOCKS, le32, put_le32 } from './layout.js';
import {
  brelse, ext4_forget, ext4_handle_dirty_metadata, ext4_journal_get_create_access, ext4_journal_get_write_access,
  ext4_sb_bread_bh, ext4_sb_getblk_zero, type handle_t,
} from './ext4_jbd2.js';
import { EXT4_MB_DELALLOC_RESERVED, EXT4_MB_HINT_DATA, EXT4_MB_USE_RESERVED, ext4_free_blocks, ext4_inode_to_goal_block, ext4_mb_new_blocks, ext4_new_meta_blocks } from './mballoc.js';
import { EXT4_GET_BLOCKS_DELALLOC_RESERVE, EXT4_SB, type ext4_inode_info } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_block_valid } from './block_validity.js';
import { ext4_sb_bread } from './super.js';

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
export async function ext4_ind_map_blocks(inode: ext4_inode_info, lblk: number, max: number): Promise<MappedBlock> {
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

/* ---- the write side: allocating branches (ext4_ind_map_blocks with create) and truncate ---- */

/** ext4_find_near: the block before the slot in the same pointer block, else the holder, else near the inode. */
function ext4_find_near(inode: ext4_inode_info, buf: Uint8Array, off: number, start: number, holderBlk: number): number {
  for (let o = off - 4; o >= start; o -= 4) { const p = le32(buf, o); if (p) return p + (off - o) / 4; }
  if (holderBlk) return holderBlk + 1;
  return ext4_inode_to_goal_block(inode);
}

/**
 * ext4_ind_map_blocks with create: the mapping of `lblk`, allocating the missing indirect
 * blocks on its path and up to `max` data blocks for the run of empty slots it starts
 * (ext4_alloc_branch / ext4_splice_branch). The caller holds i_data_sem and writes the inode.
 */
export async function ext4_ind_map_blocks_create(handle: handle_t, inode: ext4_inode_info, lblk: number, max: number, flags = 0): Promise<MappedBlock> {
  const sb = inode.i_sb;
  const bs = EXT4_SB(sb).s_blocksize;
  const a = bs / 4;
  const path = ext4_block_to_path(lblk, a);
  if (!path) throw err(EFBIG);
  let bh: buffer_head | null = null;
  let buf = inode.i_data, off = 4 * path[0]!, start = 0, end = path.length === 1 ? 4 * EXT4_NDIR_BLOCKS : off + 4;
  let holder = 0;
  const dirty = async () => { if (bh) await ext4_handle_dirty_metadata(handle, inode, bh); };
  try {
    for (let level = 0; ; level++) {
      let p = le32(buf, off);
      if (level === path.length - 1) {
        if (p) {
          let len = 1;
          for (let o = off + 4; o < end && len < max; o += 4) { if (le32(buf, o) !== p + len) break; len++; }
          return { pblk: p, len };
        }
        let want = 1;
        for (let o = off + 4; o < end && want < max && le32(buf, o) === 0; o += 4) want++;
        const r = await ext4_mb_new_blocks(handle, { inode, goal: ext4_find_near(inode, buf, off, start, holder), len: want,
          flags: EXT4_MB_HINT_DATA | (flags & EXT4_GET_BLOCKS_DELALLOC_RESERVE ? EXT4_MB_DELALLOC_RESERVED : 0) });
        if (bh) await ext4_journal_get_write_access(handle, sb, bh);
        for (let i = 0; i < r.len; i++) put_le32(buf, off + 4 * i, r.pblk + i);
        await dirty();
        inode.i_blocks += r.len * (bs / 512);
        return { pblk: r.pblk, len: r.len, isNew: true };
      }
      if (!p) {
        p = await ext4_new_meta_blocks(handle, inode, ext4_find_near(inode, buf, off, start, holder), EXT4_MB_USE_RESERVED);
        const nbh = await ext4_sb_getblk_zero(sb, p);
        try {
          await ext4_journal_get_create_access(handle, sb, nbh);
          await ext4_handle_dirty_metadata(handle, inode, nbh);
        } finally { brelse(nbh); }
        inode.i_blocks += bs / 512;
        if (bh) await ext4_journal_get_write_access(handle, sb, bh);
        put_le32(buf, off, p);
        await dirty();
      } else if (!ext4_block_valid(sb, p)) {
        throw ext4_error(sb, 'ext4_get_branch', `invalid block reference ${p} at level ${level}`, { ino: inode.i_ino });
      }
      const next = await ext4_sb_bread_bh(sb, p, 'ext4_get_branch', inode.i_ino);
      brelse(bh);
      bh = next;
      holder = p;
      buf = next.b_data;
      off = 4 * path[level + 1]!;
      start = 0;
      end = bs;
    }
  } finally { brelse(bh); }
}

/** ext4_ind_truncate: free every data block from logical block `first` on. */
export async function ext4_ind_truncate(handle: handle_t, inode: ext4_inode_info, first: number): Promise<void> {
  await ext4_ind_remove_space(handle, inode, first, Infinity);
}

/**
 * ext4_ind_remove_space: free every data block of logical range [first, end), and every
 * indirect block whose whole range lies inside it; pointers to them are cleared.
 */
export async function ext4_ind_remove_space(handle: handle_t, inode: ext4_inode_info, first: number, end: number): Promise<void> {
  const sb = inode.i_sb;
  const bs = EXT4_SB(sb).s_blocksize;
  const a = bs / 4;
  // Runs of contiguous blocks are freed together.
  let runStart = 0, runLen = 0;
  const flush = async () => {
    if (!runLen) return;
    await ext4_free_blocks(handle, inode, runStart, runLen);
    inode.i_blocks = Math.max(0, inode.i_blocks - runLen * (bs / 512));
    runLen = 0;
  };
  const freeBlock = async (p: number) => {
    if (runLen && p === runStart + runLen) { runLen++; return; }
    await flush();
    runStart = p; runLen = 1;
  };
  const check = (p: number, level: number) => {
    if (!ext4_block_valid(sb, p))
      throw ext4_error(sb, 'ext4_free_branches', `invalid block reference ${p} at depth ${level}`, { ino: inode.i_ino });
  };
  /** Free a whole subtree `depth` levels above the data. */
  const freeAll = async (p: number, depth: number): Promise<void> => {
    check(p, depth);
    if (depth > 0) {
      const bh = await ext4_sb_bread_bh(sb, p, 'ext4_free_branches', inode.i_ino);
      try {
        for (let i = 0; i < a; i++) { const c = le32(bh.b_data, 4 * i); if (c) await freeAll(c, depth - 1); }
        ext4_forget(handle, bh);
      } finally { brelse(bh); }
    }
    await freeBlock(p);
  };
  /** Clear the pointers of `buf` covering blocks in [first, end); each covers `span` blocks from `base`. */
  const clear = async (buf: Uint8Array, from: number, count: number, depth: number, base: number, span: number): Promise<boolean> => {
    let changed = false;
    for (let i = 0; i < count; i++) {
      const o = from + 4 * i;
      const lb = base + i * span;
      if (lb + span <= first || lb >= end) continue;
      const p = le32(buf, o);
      if (!p) continue;
      if (lb >= first && lb + span <= end) {
        await freeAll(p, depth);
        put_le32(buf, o, 0);
        changed = true;
      } else {
        check(p, depth);
        const bh = await ext4_sb_bread_bh(sb, p, 'ext4_free_branches', inode.i_ino);
        try {
          if (await clear(bh.b_data, 0, a, depth - 1, lb, span / a)) {
            await ext4_journal_get_write_access(handle, sb, bh);
            await ext4_handle_dirty_metadata(handle, inode, bh);
          }
        } finally { brelse(bh); }
      }
    }
    return changed;
  };
  const d = inode.i_data;
  await clear(d, 0, EXT4_NDIR_BLOCKS, 0, 0, 1);
  await clear(d, 4 * EXT4_NDIR_BLOCKS, 1, 1, EXT4_NDIR_BLOCKS, a);
  await clear(d, 4 * (EXT4_NDIR_BLOCKS + 1), 1, 2, EXT4_NDIR_BLOCKS + a, a * a);
  await clear(d, 4 * (EXT4_NDIR_BLOCKS + 2), 1, 3, EXT4_NDIR_BLOCKS + a + a * a, a * a * a);
  await flush();
}
