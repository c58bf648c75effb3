/*
 * Inode allocation (fs/ext4/ialloc.c): the inode bitmaps (ext4_read_inode_bitmap, with
 * INODE_UNINIT groups initialised to empty), choosing a group (find_group_orlov for
 * directories, find_group_other for the rest), __ext4_new_inode and ext4_free_inode, and
 * the descriptor counts that go with them (free inodes, used directories, itable_unused).
 *
 * A bitmap is searched and its bit set without yielding, so two creations never get the
 * same inode number.
 */
import { I_NEW, type inode, type super_block } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { ENOSPC, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../include/uapi.js';
import { clear_nlink, insert_inode_hash, inode_init_owner, iput, new_inode, unlock_new_inode } from '../inode.js';
import { ext4_init_acl } from './acl.js';
import { current_time } from '../time.js';
import { sb_getblk } from '../buffer.js';
import { BH_Uptodate } from '../../include/blk.js';
import {
  EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT, EXT4_EA_INODE_FL, EXT4_EXTENTS_FL, EXT4_FEATURE_INCOMPAT_EXTENTS,
  EXT4_FEATURE_INCOMPAT_INLINE_DATA,
  EXT4_FEATURE_INCOMPAT_FLEX_BG, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INDEX_FL, EXT4_TOPDIR_FL, ext4_free_group_clusters,
  ext4_free_group_clusters_set, ext4_free_inodes_count, ext4_free_inodes_set, ext4_inode_bitmap, ext4_itable_unused_count,
  ext4_itable_unused_set, ext4_used_dirs_count, ext4_used_dirs_set, EXT4_ROOT_INO,
} from './layout.js';
import { ext4_ext_header_encode, EXT4_EXT_MAGIC, ext4_ext_space_root } from './ext4_extents.h.js';
import { ext4_inode_bitmap_csum_verify, ext4_inode_csum_seed } from './csum.js';
import { EXT4_SB, type ext4_inode_info, EXT4_STATE_MAY_INLINE_DATA, EXT4_STATE_NEW, type ext4_sb_info } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_block_valid } from './block_validity.js';
import { ext4_set_inode_flags } from './inode.js';
import {
  ext4_clear_bit, ext4_free_clusters_after_init, ext4_group_desc_write, ext4_has_group_desc_csum, ext4_mark_bitmap_end,
  ext4_read_bitmap_verified, ext4_read_block_bitmap, ext4_set_bit, ext4_test_bit,
} from './balloc.js';
import {
  brelse, ext4_handle_dirty_metadata, ext4_journal_get_write_access, type handle_t,
} from './ext4_jbd2.js';
import type { buffer_head } from '../buffer.js';
import { kzalloc } from '../../mm/slab.js';

/** Flags a new inode inherits from its directory (EXT4_FL_INHERITED), masked by type. */
export const EXT4_FL_INHERITED = 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 |
  0x00000040 | 0x00000080 | 0x00000400 | 0x00004000 | 0x00008000 | 0x00010000 | 0x20000000 | 0x40000000 | 0x02000000;
export const EXT4_REG_FLMASK = ~(0x00010000 | 0x00020000 | 0x40000000 | 0x20000000 | 0x00001000) >>> 0;
export const EXT4_OTHER_FLMASK = 0x00000040 | 0x00000080;

/** ext4_mask_flags. */
export function ext4_mask_flags(mode: number, flags: number): number {
  if ((mode & S_IFMT) === S_IFDIR) return flags >>> 0;
  if ((mode & S_IFMT) === S_IFREG) return (flags & EXT4_REG_FLMASK) >>> 0;
  return (flags & EXT4_OTHER_FLMASK) >>> 0;
}

/** ext4_read_inode_bitmap: the live bitmap buffer of `group`, INODE_UNINIT groups as empty. */
export async function ext4_read_inode_bitmap(sb: super_block, group: number): Promise<buffer_head> {
  const sbi = EXT4_SB(sb);
  const gd = sbi.s_group_desc[group]!;
  const blk = ext4_inode_bitmap(gd);
  if (!ext4_block_valid(sb, blk))
    throw ext4_error(sb, 'ext4_read_inode_bitmap', `Invalid inode bitmap blk ${blk} in block_group ${group}`);
  if ((gd.bg_flags & EXT4_BG_INODE_UNINIT) && ext4_has_group_desc_csum(sbi)) {
    const bh = await sb_getblk(sb, blk);
    if (!sbi.s_bitmap_inited.has(blk) || !bh.test(BH_Uptodate)) {
      bh.b_data.fill(0);
      ext4_mark_bitmap_end(sbi.s_inodes_per_group, sbi.s_blocksize * 8, bh.b_data);
      bh.set(BH_Uptodate);
      sbi.s_bitmap_inited.add(blk);
      sbi.s_bitmap_verified.add(blk);
    }
    return bh;
  }
  return ext4_read_bitmap_verified(sb, group, blk, ext4_inode_bitmap_csum_verify, 'ext4_read_inode_bitmap',
    `Corrupt inode bitmap - block_group = ${group}, inode_bitmap = ${blk}`);
}

function group_of(sbi: ext4_sb_info, ino: number): number { return Math.floor((ino - 1) / sbi.s_inodes_per_group); }

/**
 * find_group_orlov (simplified as Linux's spirit): top-level directories go to the group
 * with the most free inodes among those with at least the average of free inodes and free
 * blocks and the fewest directories; deeper directories stay near their parent when the
 * parent's group has room above the averages.
 */
function find_group_orlov(sbi: ext4_sb_info, parent: inode): number {
  const n = sbi.s_groups_count;
  let freeI = 0, freeB = 0, dirs = 0;
  for (const gd of sbi.s_group_desc) { freeI += ext4_free_inodes_count(gd); freeB += ext4_free_group_clusters(gd); dirs += ext4_used_dirs_count(gd); }
  const avgI = freeI / n, avgB = freeB / n;
  const pg = group_of(sbi, parent.i_ino);
  const topdir = parent.i_ino === EXT4_ROOT_INO || !!((parent as ext4_inode_info).i_ext4_flags & EXT4_TOPDIR_FL);
  if (topdir) {
    let best = -1, bestDirs = Infinity, bestFree = -1;
    for (let g = 0; g < n; g++) {
      const gd = sbi.s_group_desc[g]!;
      const fi = ext4_free_inodes_count(gd);
      if (fi === 0 || fi < avgI || ext4_free_group_clusters(gd) < avgB) continue;
      const d = ext4_used_dirs_count(gd);
      if (d < bestDirs || (d === bestDirs && fi > bestFree)) { best = g; bestDirs = d; bestFree = fi; }
    }
    if (best >= 0) return best;
  } else {
    const maxDirs = dirs / n + 16;
    for (let i = 0; i < n; i++) {
      const g = (pg + i) % n;
      const gd = sbi.s_group_desc[g]!;
      if (ext4_used_dirs_count(gd) >= maxDirs) continue;
      if (ext4_free_inodes_count(gd) < Math.max(1, avgI / 4)) continue;
      if (ext4_free_group_clusters(gd) < avgB / 4) continue;
      return g;
    }
  }
  return find_group_other(sbi, parent);
}

/** find_group_other: the parent's group if it has a free inode and blocks, else the first with a free inode. */
function find_group_other(sbi: ext4_sb_info, parent: inode): number {
  const n = sbi.s_groups_count;
  let pg = group_of(sbi, parent.i_ino);
  const flexSize = 2 ** sbi.s_log_groups_per_flex;
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_FLEX_BG) && flexSize > 1) pg -= pg % flexSize;
  for (let i = 0; i < n; i++) {
    const gd = sbi.s_group_desc[(pg + i) % n]!;
    if (ext4_free_inodes_count(gd) && ext4_free_group_clusters(gd)) return (pg + i) % n;
  }
  for (let i = 0; i < n; i++) if (ext4_free_inodes_count(sbi.s_group_desc[(pg + i) % n]!)) return (pg + i) % n;
  return -1;
}

/**
 * Take a free inode number, starting with group `g0`. The bitmap bit, the descriptor
 * (free count, directories, INODE_UNINIT, itable_unused) and the counters change together.
 */
async function ext4_claim_inode(handle: handle_t, sb: super_block, g0: number, isDir: boolean): Promise<number> {
  const sbi = EXT4_SB(sb);
  const n = sbi.s_groups_count;
  const ipg = sbi.s_inodes_per_group;
  for (let i = 0; i < n; i++) {
    const g = (g0 + i) % n;
    if (ext4_free_inodes_count(sbi.s_group_desc[g]!) === 0) continue;
    const bh = await ext4_read_inode_bitmap(sb, g);
    try {
      const map = bh.b_data;
      const first = g === 0 ? sbi.s_first_ino - 1 : 0;
      let bit = -1;
      for (let b = first; b < ipg; b++) if (!ext4_test_bit(b, map)) { bit = b; break; }
      if (bit < 0) continue;
      const gd = sbi.s_group_desc[g]!;
      const free = ext4_free_inodes_count(gd);
      if (free === 0) throw ext4_error(sb, '__ext4_new_inode', `group ${g}: free inodes count 0 but bitmap has a free inode`);
      ext4_set_bit(bit, map);
      ext4_free_inodes_set(gd, free - 1);
      if (isDir) ext4_used_dirs_set(gd, ext4_used_dirs_count(gd) + 1);
      if (ext4_has_group_desc_csum(sbi)) {
        gd.bg_flags &= ~EXT4_BG_INODE_UNINIT;
        const used = ipg - ext4_itable_unused_count(gd);
        if (bit + 1 > used) ext4_itable_unused_set(gd, ipg - (bit + 1));
      }
      sbi.s_freeinodes_counter--;
      sbi.s_dirty_super = true;
      await ext4_journal_get_write_access(handle, sb, bh);
      await ext4_handle_dirty_metadata(handle, null, bh);
      await ext4_group_desc_write(handle, sb, g, { inode: map });
      return g * ipg + bit + 1;
    } finally { brelse(bh); }
  }
  throw err(ENOSPC);
}

/**
 * A BLOCK_UNINIT group that gets an inode has its block bitmap initialised first, as
 * __ext4_new_inode does (e2fsck then finds a real bitmap for every group in use).
 */
async function ext4_init_group_blocks(handle: handle_t, sb: super_block, group: number): Promise<void> {
  const sbi = EXT4_SB(sb);
  const gd = sbi.s_group_desc[group]!;
  if (!(gd.bg_flags & EXT4_BG_BLOCK_UNINIT) || !ext4_has_group_desc_csum(sbi)) return;
  const bh = await ext4_read_block_bitmap(sb, group);
  try {
    if (!(gd.bg_flags & EXT4_BG_BLOCK_UNINIT)) return;
    gd.bg_flags &= ~EXT4_BG_BLOCK_UNINIT;
    ext4_free_group_clusters_set(gd, ext4_free_clusters_after_init(sbi, group));
    await ext4_handle_dirty_metadata(handle, null, bh);
    await ext4_group_desc_write(handle, sb, group, { block: bh.b_data });
  } finally { brelse(bh); }
}

/**
 * __ext4_new_inode: a new in-core inode of type `mode` in `dir`, its number claimed on
 * disk, owner and flags set, hashed and still I_NEW (the caller instantiates the dentry and
 * unlocks it). The on-disk inode is written by the first ext4_mark_inode_dirty.
 */
export async function __ext4_new_inode(handle: handle_t, dir: ext4_inode_info, mode: number, owner?: { uid: number; gid: number },
  goal = 0, i_flags = 0): Promise<ext4_inode_info> {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const isDir = (mode & S_IFMT) === S_IFDIR;
  // A goal inode (an ea_inode's is the owner's number + 1) names the group to try first.
  let g = goal > 0 && goal <= sbi.s_es.s_inodes_count ? group_of(sbi, goal)
    : isDir ? find_group_orlov(sbi, dir) : find_group_other(sbi, dir);
  if (g < 0) throw err(ENOSPC);
  const ino = await ext4_claim_inode(handle, sb, g, isDir);
  g = group_of(sbi, ino);
  await ext4_init_group_blocks(handle, sb, g);
  const inode = new_inode(sb) as ext4_inode_info;
  inode.i_ino = ino;
  inode.i_state = I_NEW;
  if (owner) { inode.i_uid = owner.uid; inode.i_gid = owner.gid; inode.i_mode = mode; }
  else inode_init_owner(inode, dir, mode);
  inode.i_nlink = 1;
  inode.i_size = 0;
  inode.i_disksize = 0;
  inode.i_blocks = 0;
  const now = current_time(inode);
  inode.i_atime = now; inode.i_mtime = { ...now }; inode.i_ctime = { ...now }; inode.i_btime = { ...now };
  inode.i_generation = (sbi.s_next_generation = (sbi.s_next_generation + 1 + Math.floor(Math.random() * 0xffff)) >>> 0);
  inode.i_blkbits = sbi.s_blocksize_bits;
  inode.i_ext4_flags = ext4_mask_flags(mode, dir.i_ext4_flags & EXT4_FL_INHERITED);
  inode.i_ext4_flags &= ~EXT4_INDEX_FL;
  inode.i_ext4_flags = (inode.i_ext4_flags | i_flags) >>> 0;
  ext4_set_inode_flags(inode);
  inode.i_projid = dir.i_projid;
  inode.i_data.fill(0);
  inode.i_file_acl = 0;
  inode.i_dtime = 0;
  inode.i_extra_isize = sbi.s_inode_size > EXT4_GOOD_OLD_INODE_SIZE ? sbi.s_want_extra_isize : 0;
  inode.i_raw = kzalloc(sbi.s_inode_size);
  if (sbi.s_csum?.metadata_csum) inode.i_csum_seed = ext4_inode_csum_seed(sbi.s_csum, ino, inode.i_generation);
  const type = mode & S_IFMT;
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS) && (type === S_IFREG || type === S_IFDIR || type === S_IFLNK)) {
    inode.i_ext4_flags |= EXT4_EXTENTS_FL;
    ext4_ext_header_encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: ext4_ext_space_root(), eh_depth: 0, eh_generation: 0 },
      inode.i_data, 0);
  }
  inode.i_state_flags |= EXT4_STATE_NEW;
  /* small files and directories start in the inode (inline.ts) */
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_INLINE_DATA) && !(i_flags & EXT4_EA_INODE_FL))
    inode.i_state_flags |= EXT4_STATE_MAY_INLINE_DATA;
  insert_inode_hash(inode);
  /* an ea_inode holds one value: no ACL or security attributes of its own */
  if (i_flags & EXT4_EA_INODE_FL) return inode;
  try {
    await ext4_init_acl(handle, inode, dir);
  } catch (e) {
    /* as a new inode that cannot be linked: no links, evicted (its number freed) */
    clear_nlink(inode);
    unlock_new_inode(inode);
    await iput(inode);
    throw e;
  }
  return inode;
}

/**
 * ext4_free_inode: the inode's bit goes back (the caller has freed its blocks and written
 * it with i_dtime set), with the descriptor's counts.
 */
export async function ext4_free_inode(handle: handle_t, inode: ext4_inode_info): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const ino = inode.i_ino;
  if (ino < sbi.s_first_ino || ino > sbi.s_es.s_inodes_count) {
    ext4_error(sb, 'ext4_free_inode', `reserved or nonexistent inode ${ino}`);
    return;
  }
  const g = group_of(sbi, ino);
  const bit = (ino - 1) % sbi.s_inodes_per_group;
  const bh = await ext4_read_inode_bitmap(sb, g);
  try {
    const map = bh.b_data;
    if (!ext4_test_bit(bit, map)) {
      ext4_error(sb, 'ext4_free_inode', `bit already cleared for inode ${ino}`);
      return;
    }
    ext4_clear_bit(bit, map);
    const gd = sbi.s_group_desc[g]!;
    ext4_free_inodes_set(gd, ext4_free_inodes_count(gd) + 1);
    if ((inode.i_mode & S_IFMT) === S_IFDIR) ext4_used_dirs_set(gd, Math.max(0, ext4_used_dirs_count(gd) - 1));
    sbi.s_freeinodes_counter++;
    sbi.s_dirty_super = true;
    await ext4_journal_get_write_access(handle, sb, bh);
    await ext4_handle_dirty_metadata(handle, null, bh);
    await ext4_group_desc_write(handle, sb, g, { inode: map });
  } finally { brelse(bh); }
}
