/*
 * Block allocation and freeing (fs/ext4/mballoc.c: ext4_mb_new_blocks, ext4_free_blocks,
 * and the free-space checks of balloc.c: ext4_has_free_clusters / ext4_claim_free_clusters).
 *
 * Not Linux's buddy allocator: a search of the block bitmaps from a goal. The request's
 * goal group is tried first from the goal block on, then every other group in order; the
 * first free block found is taken together with the free blocks that follow it, up to the
 * length asked for. Groups whose descriptor says they are full are skipped without reading
 * their bitmap. A bitmap is searched and its bits set without yielding the CPU, so two
 * allocations can never take the same block. Reserved blocks are honoured as Linux does:
 * s_r_blocks_count for everybody but the reserved uid/gid and CAP_SYS_RESOURCE, and the
 * 2% (at most 4096 clusters) ext4 keeps back for metadata it must never fail to allocate
 * (EXT4_MB_USE_RESERVED). With a journal, blocks freed by a transaction stay out of reach
 * until it commits (s_busy_blocks).
 */
import type { inode } from '../../include/fs.js';
import { CAP_SYS_RESOURCE } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { ENOSPC } from '../../include/uapi.js';
import { capable, current_cred, in_group_p } from '../../kernel/cred.js';
import { clean_bdev_aliases } from '../buffer.js';
import {
  EXT4_BG_BLOCK_UNINIT, EXT4_FEATURE_INCOMPAT_FLEX_BG, ext4_free_group_clusters, ext4_free_group_clusters_set,
  ext4_r_blocks_count,
} from './layout.js';
import { EXT4_SB, type ext4_sb_info } from './ext4.js';
import { ext4_error } from './errors.js';
import {
  ext4_blocks_in_group, ext4_clear_bit, ext4_get_group_no_and_offset, ext4_group_desc_write, ext4_group_first_block_no,
  ext4_read_block_bitmap, ext4_set_bit, ext4_test_bit, ext4_resv_clusters,
} from './balloc.js';
import {
  brelse, ext4_handle_dirty_metadata, ext4_journal_block_freed, ext4_journal_get_write_access, type handle_t,
} from './ext4_jbd2.js';

/* Allocation hints (EXT4_MB_*) */
export const EXT4_MB_HINT_MERGE = 0x0001, EXT4_MB_HINT_METADATA = 0x0004, EXT4_MB_HINT_DATA = 0x0020,
  EXT4_MB_HINT_TRY_GOAL = 0x0200, EXT4_MB_DELALLOC_RESERVED = 0x0400, EXT4_MB_USE_ROOT_BLOCKS = 0x1000,
  EXT4_MB_USE_RESERVED = 0x2000;
/* ext4_free_blocks flags */
export const EXT4_FREE_BLOCKS_METADATA = 0x0001, EXT4_FREE_BLOCKS_FORGET = 0x0002;

/** struct ext4_allocation_request (the parts used). */
export interface ext4_allocation_request {
  inode: inode | null;
  /** Preferred physical block. */
  goal: number;
  /** Blocks wanted (at least one is allocated, or ENOSPC). */
  len: number;
  flags: number;
}

/** The free-cluster counter (s_freeclusters_counter), initialised from the descriptors at mount. */
export function ext4_free_clusters(sbi: ext4_sb_info): number { return sbi.s_freeclusters_counter; }

/**
 * ext4_has_free_clusters: may `n` clusters be taken? Below the root reservation only the
 * reserved uid/gid and CAP_SYS_RESOURCE may allocate; the metadata reserve only with
 * EXT4_MB_USE_RESERVED.
 */
export function ext4_has_free_clusters(sbi: ext4_sb_info, n: number, flags: number): boolean {
  // Clusters promised to delayed-allocation writes are as good as taken.
  const free = sbi.s_freeclusters_counter - sbi.s_dirtyclusters_counter;
  const rsv = ext4_resv_clusters(sbi);
  const root = ext4_r_blocks_count(sbi.s_es) / sbi.s_cluster_ratio;
  if (free >= root + rsv + n) return true;
  if (free >= rsv + n) {
    const cred = current_cred();
    if (cred.fsuid === sbi.s_resuid || (sbi.s_resgid !== 0 && in_group_p(sbi.s_resgid)) ||
      capable(CAP_SYS_RESOURCE) || (flags & EXT4_MB_USE_ROOT_BLOCKS)) return true;
  }
  if ((flags & EXT4_MB_USE_RESERVED) && free >= n) return true;
  return false;
}

/**
 * ext4_claim_free_clusters: take `n` clusters off what allocations may still use (delayed
 * allocation's reservation); false (nothing claimed) when they are not there.
 */
export function ext4_claim_free_clusters(sbi: ext4_sb_info, n: number, flags: number): boolean {
  if (!ext4_has_free_clusters(sbi, n, flags)) return false;
  sbi.s_dirtyclusters_counter += n;
  return true;
}

/** How many of `want` blocks an allocation may take now (0: ENOSPC). */
function ext4_claimable(sbi: ext4_sb_info, want: number, flags: number): number {
  // Blocks of delayed-allocation writes were claimed when the data was written.
  if (flags & EXT4_MB_DELALLOC_RESERVED) return Math.min(want, Math.max(0, sbi.s_freeclusters_counter));
  if (ext4_has_free_clusters(sbi, want, flags)) return want;
  let lo = 0, hi = want;
  while (lo < hi) {
    const m = Math.ceil((lo + hi) / 2);
    if (ext4_has_free_clusters(sbi, m, flags)) lo = m; else hi = m - 1;
  }
  return lo;
}

/** Clamp a goal into the filesystem (ext4_mb_new_blocks does the same for a bad goal). */
function ext4_goal(sbi: ext4_sb_info, goal: number): number {
  if (!Number.isFinite(goal) || goal < sbi.s_first_data_block || goal >= sbi.s_blocks_count) return sbi.s_first_data_block;
  return goal;
}

/**
 * ext4_mb_new_blocks: allocate up to `ar.len` contiguous blocks near `ar.goal`. Returns the
 * first block and how many were taken (>= 1). ENOSPC when nothing may be taken.
 */
export async function ext4_mb_new_blocks(handle: handle_t, ar: ext4_allocation_request): Promise<{ pblk: number; len: number }> {
  const sb = handle.h_sb;
  const sbi = EXT4_SB(sb);
  const want = ext4_claimable(sbi, Math.max(1, Math.min(ar.len, sbi.s_blocks_per_group)), ar.flags);
  if (want === 0) throw err(ENOSPC);
  const goal = ext4_goal(sbi, ar.goal);
  const { group: g0, offset: o0 } = ext4_get_group_no_and_offset(sbi, goal);
  const ngroups = sbi.s_groups_count;
  for (let i = 0; i <= ngroups; i++) {
    // The goal group twice: from the goal on first, and from its start last.
    const g = (g0 + i) % ngroups;
    const from = i === 0 ? o0 : 0;
    const to = i === ngroups ? o0 : ext4_blocks_in_group(sbi, g);
    if (from >= to) continue;
    if (ext4_free_group_clusters(sbi.s_group_desc[g]!) === 0) continue;
    const bh = await ext4_read_block_bitmap(sb, g);
    try {
      // From here to the bits being set there is no await: the search and the claim are atomic.
      const map = bh.b_data;
      const busy = sbi.s_busy_blocks;
      const gstart = ext4_group_first_block_no(sbi, g);
      const isFree = (b: number) => !ext4_test_bit(b, map) && (busy.size === 0 || !busy.has(gstart + b));
      let start = -1;
      for (let b = from; b < to; b++) {
        if (map[b >> 3] === 0xff && (b & 7) === 0) { b += 7; continue; } // bits32: bit index inside one bitmap block
        if (isFree(b)) { start = b; break; }
      }
      if (start < 0) continue;
      const n = ext4_blocks_in_group(sbi, g);
      let len = 1;
      while (len < want && start + len < n && isFree(start + len)) len++;
      const gd = sbi.s_group_desc[g]!;
      const free = ext4_free_group_clusters(gd);
      if (free < len) {
        throw ext4_error(sb, 'ext4_mb_new_blocks', `group ${g}: ${free} clusters in the descriptor, bitmap has ${len} free`);
      }
      for (let b = start; b < start + len; b++) ext4_set_bit(b, map);
      ext4_free_group_clusters_set(gd, free - len);
      gd.bg_flags &= ~EXT4_BG_BLOCK_UNINIT;
      sbi.s_freeclusters_counter -= len;
      sbi.s_dirty_super = true;
      await ext4_journal_get_write_access(handle, sb, bh);
      await ext4_handle_dirty_metadata(handle, null, bh);
      await ext4_group_desc_write(handle, sb, g, { block: map });
      const pblk = ext4_group_first_block_no(sbi, g) + start;
      return { pblk, len };
    } finally { brelse(bh); }
  }
  // Blocks freed by a transaction not yet committed are counted free but not reusable yet:
  // ENOSPC for now (ext4_should_retry_alloc commits and tries again).
  if (sbi.s_busy_blocks.size) throw err(ENOSPC);
  // The counter said there was room but no bitmap had any: the descriptors lie.
  throw ext4_error(sb, 'ext4_mb_new_blocks', `free clusters count ${sbi.s_freeclusters_counter} but no free block in any group`);
}

/** ext4_new_meta_blocks: one metadata block near `goal` (extent tree, index, xattr block). */
export async function ext4_new_meta_blocks(handle: handle_t, inode: inode | null, goal: number, flags = 0): Promise<number> {
  const r = await ext4_mb_new_blocks(handle, { inode, goal, len: 1, flags: flags | EXT4_MB_HINT_METADATA });
  return r.pblk;
}

/**
 * ext4_free_blocks: give `count` blocks from `block` back (they may span groups). A block
 * already free is corruption (Linux: "bit already cleared"). Buffers of freed metadata
 * are forgotten so that a stale write cannot land on the block's next owner.
 */
export async function ext4_free_blocks(handle: handle_t, _inode: inode | null, block: number, count: number, _flags = 0): Promise<void> {
  const sb = handle.h_sb;
  const sbi = EXT4_SB(sb);
  if (count <= 0) return;
  if (block < sbi.s_first_data_block || block + count > sbi.s_blocks_count)
    throw ext4_error(sb, 'ext4_free_blocks', `Freeing blocks not in datazone - block = ${block}, count = ${count}`);
  if (sb.s_bdev) clean_bdev_aliases(sb.s_bdev, block, count, sbi.s_blocksize);
  // A freed block's checksum is checked again if it is ever read as metadata again.
  for (const set of [sbi.s_extent_block_verified, sbi.s_dirblock_verified]) {
    if (set.size > count) { for (let b = block; b < block + count; b++) set.delete(b); }
    else for (const b of set) if (b >= block && b < block + count) set.delete(b);
  }
  let blk = block, left = count;
  while (left > 0) {
    const { group, offset } = ext4_get_group_no_and_offset(sbi, blk);
    const n = Math.min(left, ext4_blocks_in_group(sbi, group) - offset);
    const bh = await ext4_read_block_bitmap(sb, group);
    try {
      const map = bh.b_data;
      let freed = 0;
      const gstart = ext4_group_first_block_no(sbi, group);
      const t = handle.h_transaction;
      const busy: number[] = [];
      for (let b = offset; b < offset + n; b++) {
        if (!ext4_test_bit(b, map)) {
          ext4_error(sb, 'ext4_free_blocks', `bit already cleared for block ${gstart + b}`);
          continue;
        }
        ext4_clear_bit(b, map);
        freed++;
        if (t) { busy.push(gstart + b); ext4_journal_block_freed(handle, gstart + b); }
      }
      if (t && busy.length) {
        for (const x of busy) sbi.s_busy_blocks.add(x);
        t.t_commit_callbacks.push(() => { for (const x of busy) sbi.s_busy_blocks.delete(x); });
      }
      const gd = sbi.s_group_desc[group]!;
      ext4_free_group_clusters_set(gd, ext4_free_group_clusters(gd) + freed);
      sbi.s_freeclusters_counter += freed;
      sbi.s_dirty_super = true;
      await ext4_journal_get_write_access(handle, sb, bh);
      await ext4_handle_dirty_metadata(handle, null, bh);
      await ext4_group_desc_write(handle, sb, group, { block: map });
    } finally { brelse(bh); }
    blk += n;
    left -= n;
  }
}

/**
 * The goal for an inode's first block (ext4_inode_to_goal_block): the start of its group,
 * or with flex_bg of the flex group (regular files one group further on, so that their data
 * does not crowd the directories' blocks next to the inode tables).
 */
export function ext4_inode_to_goal_block(inode: inode): number {
  const sbi = EXT4_SB(inode.i_sb);
  let group = Math.floor((inode.i_ino - 1) / sbi.s_inodes_per_group);
  const flexSize = 2 ** sbi.s_log_groups_per_flex;
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_FLEX_BG) && flexSize >= 4) {
    group -= group % flexSize;
    if ((inode.i_mode & 0o170000) === 0o100000) group++;
    if (group >= sbi.s_groups_count) group = 0;
  }
  return ext4_group_first_block_no(sbi, group);
}
