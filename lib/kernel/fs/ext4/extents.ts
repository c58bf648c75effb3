/*
 * Extent trees, read side (fs/ext4/extents.c: ext4_find_extent, __ext4_ext_check,
 * ext4_ext_map_blocks without create). The root lives in i_block (4 entries); deeper
 * nodes are whole blocks ending with a checksum tail under metadata_csum. Every node is
 * validated before use: magic, depth as expected, entries <= max, entries ordered and
 * inside the filesystem, and its checksum. The write side (below) inserts extents (merging
 * with the left neighbour, splitting full nodes, growing the tree in depth), converts
 * unwritten extents that are written to, removes space (truncate, punch) and shifts the
 * extents after a point (collapse and insert range).
 */
import type { MappedBlock } from '../../include/blk.js';
import type { file } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EFBIG, EINVAL, EOPNOTSUPP, EROFS, FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
} from '../../include/uapi.js';
import { PAGE_SIZE, truncate_inode_pages_range } from '../../mm/filemap.js';
import { filemap_write_and_wait_range } from '../fs-writeback.js';
import { current_time } from '../time.js';
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL } from './layout.js';
import { ext4_convert_inline_data } from './inline.js';
import type { buffer_head } from '../buffer.js';
import {
  EXT4_MAX_EXTENT_DEPTH, ext4_ext_check, ext4_ext_header_decode, ext4_ext_space_block,
  ext4_ext_space_root, ext4_extent_decode, ext4_extent_idx_decode, type ext4_extent,
  EXT4_EXTENT_HEADER_SIZE, EXT4_EXTENT_ENTRY_SIZE, EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN, EXT_UNWRITTEN_MAX_LEN,
  ext4_ext_header_encode, ext4_extent_encode, ext4_extent_idx_encode,
} from './ext4_extents.h.js';
import { le16, le32, put_le16, put_le32 } from '../../lib/struct.js';
import { ext4_extent_block_csum_set, ext4_extent_block_csum_verify } from './csum.js';
import {
  brelse, EXT4_DATA_TRANS_BLOCKS, EXT4_HT_MAP_BLOCKS, EXT4_HT_TRUNCATE, ext4_forget, ext4_handle_dirty_metadata,
  ext4_journal_get_create_access, ext4_journal_get_write_access, ext4_journal_start, ext4_journal_stop, ext4_sb_bread_bh,
  ext4_sb_getblk_zero, type handle_t,
} from './ext4_jbd2.js';
// inode.ts imports this file too: only its functions are used, at call time.
import { ext4_map_blocks, ext4_mark_inode_dirty } from './inode.js';
import { ext4_ind_remove_space } from './indirect.js';
import {
  EXT4_MB_DELALLOC_RESERVED, EXT4_MB_HINT_DATA, EXT4_MB_USE_RESERVED, ext4_free_blocks, ext4_inode_to_goal_block, ext4_mb_new_blocks,
  ext4_new_meta_blocks,
} from './mballoc.js';
import { EXT4_GET_BLOCKS_DELALLOC_RESERVE, EXT4_SB, type ext4_inode_info } from './ext4.js';
import { ext4_csum_error, ext4_error } from './errors.js';
import { ext4_block_valid } from './block_validity.js';
import { ext4_sb_bread } from './super.js';
import { ext4_es_remove_extent } from './extents_status.js';

/** EXT_MAX_BLOCKS: logical block numbers are 32-bit. */
export const EXT_MAX_BLOCKS = 0xffffffff;

/** One level of the path to a leaf: the node's bytes and where its header is. */
interface PathNode { buf: Uint8Array; off: number; depth: number; entries: number; idx: number; blk: number }

/** Validate one node (__ext4_ext_check); throws through ext4_error. */
function ext4_ext_check_node(inode: ext4_inode_info, buf: Uint8Array, off: number, depth: number, max: number,
  blk: number): void {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const why = ext4_ext_check(buf, off, depth, max, (p, n) => ext4_block_valid(sb, p, n));
  if (why) {
    const h = ext4_ext_header_decode(buf, off);
    throw ext4_error(sb, 'ext4_ext_check_inode', `pblk ${blk} bad header/extent: ${why} - magic ${h.eh_magic.toString(16)}, entries ${h.eh_entries}, max ${h.eh_max}(${max}), depth ${h.eh_depth}(${depth})`,
      { ino: inode.i_ino });
  }
  if (blk !== 0 && sbi.s_csum?.metadata_csum && !sbi.s_extent_block_verified.has(blk)) {
    if (!ext4_extent_block_csum_verify(sbi.s_csum, inode.i_csum_seed, buf, off))
      throw ext4_csum_error(sb, 'ext4_ext_check_inode', `pblk ${blk} extent tree (at level ${depth}) could not be verified: invalid checksum`, { ino: inode.i_ino });
    sbi.s_extent_block_verified.add(blk);
  }
}

/** Root depth, validated (ext4_ext_check_inode). */
export function ext_depth(inode: ext4_inode_info): number {
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
export async function ext4_find_extent(inode: ext4_inode_info, lblk: number): Promise<PathNode[]> {
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

function sbi_bs(inode: ext4_inode_info): number { return EXT4_SB(inode.i_sb).s_blocksize; }

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
export async function ext4_ext_map_blocks(inode: ext4_inode_info, lblk: number, max: number): Promise<MappedBlock> {
  const path = await ext4_find_extent(inode, lblk);
  const leaf = path[path.length - 1];
  if (leaf.idx >= 0) {
    const ex: ext4_extent = ext4_extent_decode(leaf.buf, leaf.off, leaf.idx);
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
export async function ext4_ext_walk(inode: ext4_inode_info, fn: (ex: ext4_extent) => boolean | void): Promise<void> {
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

/* ---- the write side: inserting extents, growing and splitting nodes, removing space ---- */

/** One node of a path being changed: a live tree block (bh) or the root in i_data (bh null). */
interface WNode { bh: buffer_head | null; buf: Uint8Array; blk: number; depth: number; idx: number }

const entries_of = (buf: Uint8Array): number => le16(buf, 2);
const max_of = (buf: Uint8Array): number => le16(buf, 4);
const entry_at = (i: number): number => EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE * i;
/** The key (first logical block) of entry i: ee_block and ei_block share the offset. */
const key_of = (buf: Uint8Array, i: number): number => le32(buf, entry_at(i));

/** The path to `lblk` with live buffers, each node checked (ext4_find_extent for writing). */
async function ext4_find_extent_rw(inode: ext4_inode_info, lblk: number): Promise<WNode[]> {
  const sb = inode.i_sb;
  const depth = ext_depth(inode);
  ext4_ext_check_node(inode, inode.i_data, 0, depth, ext4_ext_space_root(), 0);
  const path: WNode[] = [];
  let node: WNode = { bh: null, buf: inode.i_data, blk: 0, depth, idx: -1 };
  for (;;) {
    const n = entries_of(node.buf);
    let lo = 0, hi = n - 1, pick = n ? 0 : -1;
    while (lo <= hi) {
      const m = (lo + hi) >>> 1;
      if (key_of(node.buf, m) <= lblk) { pick = m; lo = m + 1; } else hi = m - 1;
    }
    node.idx = pick;
    path.push(node);
    if (node.depth === 0) return path;
    const child = ext4_extent_idx_decode(node.buf, 0, pick).leaf;
    const bh = await ext4_sb_bread_bh(sb, child, 'ext4_find_extent', inode.i_ino);
    try {
      ext4_ext_check_node(inode, bh.b_data, 0, node.depth - 1, ext4_ext_space_block(sbi_bs(inode)), child);
    } catch (e) { for (const p of path) brelse(p.bh); brelse(bh); throw e; }
    node = { bh, buf: bh.b_data, blk: child, depth: node.depth - 1, idx: -1 };
  }
}

function release_path(path: WNode[]): void { for (const p of path) brelse(p.bh); }

/** A node changed: a tree block gets its checksum and is dirtied; the root is the inode's. */
async function ext4_ext_dirty(handle: handle_t, inode: ext4_inode_info, node: WNode): Promise<void> {
  if (!node.bh) return; /* i_data: written by the caller's ext4_mark_inode_dirty */
  const sbi = EXT4_SB(inode.i_sb);
  if (sbi.s_csum?.metadata_csum) ext4_extent_block_csum_set(sbi.s_csum, inode.i_csum_seed, node.buf, 0);
  await ext4_handle_dirty_metadata(handle, inode, node.bh);
}

/** A new, empty tree block at `depth` (ext4_ext_new_meta_block + header). */
async function ext4_ext_new_node(handle: handle_t, inode: ext4_inode_info, goal: number, depth: number): Promise<WNode> {
  const sb = inode.i_sb;
  const blk = await ext4_new_meta_blocks(handle, inode, goal, EXT4_MB_USE_RESERVED);
  const bh = await ext4_sb_getblk_zero(sb, blk);
  await ext4_journal_get_create_access(handle, sb, bh);
  ext4_ext_header_encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: ext4_ext_space_block(sbi_bs(inode)), eh_depth: depth,
    eh_generation: 0 }, bh.b_data, 0);
  inode.i_blocks += sbi_bs(inode) / 512;
  return { bh, buf: bh.b_data, blk, depth, idx: -1 };
}

/**
 * ext4_ext_grow_indepth: the root is full: its entries move to a new block and the root
 * becomes an index of one entry pointing there, one level deeper.
 */
async function ext4_ext_grow_indepth(handle: handle_t, inode: ext4_inode_info): Promise<void> {
  const root = inode.i_data;
  const h = ext4_ext_header_decode(root, 0);
  if (h.eh_depth >= EXT4_MAX_EXTENT_DEPTH)
    throw ext4_error(inode.i_sb, 'ext4_ext_grow_indepth', `extent tree too deep (${h.eh_depth})`, { ino: inode.i_ino });
  const goal = h.eh_entries ? (h.eh_depth ? ext4_extent_idx_decode(root, 0, 0).leaf : ext4_extent_decode(root, 0, 0).start)
    : ext4_inode_to_goal_block(inode);
  const n = await ext4_ext_new_node(handle, inode, goal, h.eh_depth);
  try {
    n.buf.set(root.subarray(EXT4_EXTENT_HEADER_SIZE, entry_at(h.eh_entries)), EXT4_EXTENT_HEADER_SIZE);
    put_le16(n.buf, 2, h.eh_entries);
    await ext4_ext_dirty(handle, inode, n);
    const first = h.eh_entries ? key_of(root, 0) : 0;
    root.fill(0, EXT4_EXTENT_HEADER_SIZE);
    ext4_ext_header_encode({ ...h, eh_entries: 1, eh_max: ext4_ext_space_root(), eh_depth: h.eh_depth + 1 }, root, 0);
    ext4_extent_idx_encode({ ei_block: first, leaf: n.blk }, root, 0, 0);
  } finally { brelse(n.bh); }
}

/** ext4_ext_correct_indexes: a node's first key changed: its parents' index keys follow. */
async function ext4_ext_correct_indexes(handle: handle_t, inode: ext4_inode_info, path: WNode[], level: number): Promise<void> {
  let key = key_of(path[level]!.buf, 0);
  for (let k = level; k > 0; k--) {
    const parent = path[k - 1]!;
    put_le32(parent.buf, entry_at(parent.idx), key);
    await ext4_ext_dirty(handle, inode, parent);
    if (parent.idx !== 0) break;
    key = key_of(parent.buf, 0);
  }
}

type EntryWriter = { key: number; write(buf: Uint8Array, i: number): void };

/**
 * Insert an entry at `pos` of node `level` of the path (ext4_ext_insert_extent /
 * ext4_ext_insert_index). A full node is split (ext4_ext_split): a new node takes the
 * entries from the split point on (none when appending, so sequential files fill their
 * nodes), and an index entry for it goes into the parent. When no node up to the root
 * has room the tree first grows a level and false is returned: the caller starts again.
 */
async function ext4_ext_insert_at(handle: handle_t, inode: ext4_inode_info, path: WNode[], level: number, pos: number,
  e: EntryWriter): Promise<boolean> {
  const node = path[level]!;
  const n = entries_of(node.buf);
  if (n < max_of(node.buf)) {
    node.buf.copyWithin(entry_at(pos + 1), entry_at(pos), entry_at(n));
    e.write(node.buf, pos);
    put_le16(node.buf, 2, n + 1);
    await ext4_ext_dirty(handle, inode, node);
    if (pos === 0 && level > 0) await ext4_ext_correct_indexes(handle, inode, path, level);
    return true;
  }
  let room = false;
  for (let k = 0; k < level; k++) if (entries_of(path[k]!.buf) < max_of(path[k]!.buf)) room = true;
  if (!room) { await ext4_ext_grow_indepth(handle, inode); return false; }
  const split = pos === n ? n : Math.floor(n / 2);
  const nn = await ext4_ext_new_node(handle, inode, node.blk, node.depth);
  try {
    nn.buf.set(node.buf.subarray(entry_at(split), entry_at(n)), EXT4_EXTENT_HEADER_SIZE);
    put_le16(nn.buf, 2, n - split);
    node.buf.fill(0, entry_at(split), entry_at(n));
    put_le16(node.buf, 2, split);
    const target = pos >= split ? nn : node;
    const tpos = pos >= split ? pos - split : pos;
    const tn = entries_of(target.buf);
    target.buf.copyWithin(entry_at(tpos + 1), entry_at(tpos), entry_at(tn));
    e.write(target.buf, tpos);
    put_le16(target.buf, 2, tn + 1);
    await ext4_ext_dirty(handle, inode, nn);
    await ext4_ext_dirty(handle, inode, node);
    if (target === node && tpos === 0) await ext4_ext_correct_indexes(handle, inode, path, level);
    const parent = path[level - 1]!;
    const key = key_of(nn.buf, 0);
    const blk = nn.blk;
    return await ext4_ext_insert_at(handle, inode, path, level - 1, parent.idx + 1,
      { key, write: (buf, i) => ext4_extent_idx_encode({ ei_block: key, leaf: blk }, buf, 0, i) });
  } finally { brelse(nn.bh); }
}

/**
 * ext4_ext_insert_extent: add a mapping to the tree, merged into its left neighbour when
 * it continues it logically and physically (and both are written extents) unless `merge`
 * is false (a split that must stay split).
 */
export async function ext4_ext_insert_extent(handle: handle_t, inode: ext4_inode_info, ex: ext4_extent, merge = true): Promise<void> {
  for (let attempt = 0; attempt <= EXT4_MAX_EXTENT_DEPTH + 1; attempt++) {
    const path = await ext4_find_extent_rw(inode, ex.ee_block);
    try {
      const leaf = path[path.length - 1]!;
      const n = entries_of(leaf.buf);
      let pos = 0;
      if (n > 0) {
        const cur = ext4_extent_decode(leaf.buf, 0, leaf.idx);
        const max = ex.unwritten ? EXT_UNWRITTEN_MAX_LEN : EXT_INIT_MAX_LEN;
        if (merge && cur.ee_block + cur.len === ex.ee_block && cur.start + cur.len === ex.start && cur.unwritten === ex.unwritten &&
          cur.len + ex.len <= max) {
          ext4_extent_encode({ ...cur, len: cur.len + ex.len }, leaf.buf, 0, leaf.idx);
          await ext4_ext_dirty(handle, inode, leaf);
          return;
        }
        pos = cur.ee_block > ex.ee_block ? leaf.idx : leaf.idx + 1;
      }
      const done = await ext4_ext_insert_at(handle, inode, path, path.length - 1, pos,
        { key: ex.ee_block, write: (buf, i) => ext4_extent_encode(ex, buf, 0, i) });
      if (done) return;
    } finally { release_path(path); }
  }
  throw ext4_error(inode.i_sb, 'ext4_ext_insert_extent', 'could not make room in the extent tree', { ino: inode.i_ino });
}

/** ext4_ext_find_goal: next to the extent before `lblk`, else near the inode. */
function ext4_ext_find_goal(inode: ext4_inode_info, path: PathNode[], lblk: number): number {
  const leaf = path[path.length - 1];
  if (leaf && leaf.idx >= 0) {
    const ex = ext4_extent_decode(leaf.buf, leaf.off, leaf.idx);
    return lblk >= ex.ee_block ? ex.start + (lblk - ex.ee_block) : Math.max(0, ex.start - (ex.ee_block - lblk));
  }
  if (leaf && leaf.blk) return leaf.blk;
  return ext4_inode_to_goal_block(inode);
}

/**
 * ext4_ext_map_blocks with create (nodelalloc): an existing written mapping is returned as
 * is; a hole gets up to `max` new blocks near the goal; a block in an unwritten extent is
 * converted: the extent is split around the written part (ext4_ext_convert_to_initialized).
 * The caller holds i_data_sem for writing and writes the inode afterwards.
 */
export async function ext4_ext_map_blocks_create(handle: handle_t, inode: ext4_inode_info, lblk: number, max: number, flags = 0): Promise<MappedBlock> {
  if (lblk >= EXT_MAX_BLOCKS) throw err(EFBIG);
  const path = await ext4_find_extent(inode, lblk);
  const leaf = path[path.length - 1]!;
  if (leaf.idx >= 0) {
    const ex = ext4_extent_decode(leaf.buf, leaf.off, leaf.idx);
    if (lblk >= ex.ee_block && lblk < ex.ee_block + ex.len) {
      const off = lblk - ex.ee_block;
      const len = Math.min(max, ex.len - off);
      if (!ex.unwritten) return { pblk: ex.start + off, len };
      await ext4_ext_convert_to_initialized(handle, inode, ex, lblk, len);
      return { pblk: ex.start + off, len, isNew: true };
    }
  }
  const hole = await ext4_ext_map_blocks(inode, lblk, max);
  const want = Math.max(1, Math.min(max, hole.len, EXT_INIT_MAX_LEN, EXT_MAX_BLOCKS - lblk));
  const goal = ext4_ext_find_goal(inode, path, lblk);
  const mbFlags = EXT4_MB_HINT_DATA | (flags & EXT4_GET_BLOCKS_DELALLOC_RESERVE ? EXT4_MB_DELALLOC_RESERVED : 0);
  const r = await ext4_mb_new_blocks(handle, { inode, goal, len: want, flags: mbFlags });
  try {
    await ext4_ext_insert_extent(handle, inode, { ee_block: lblk, len: r.len, start: r.pblk, unwritten: false });
  } catch (e) {
    await ext4_free_blocks(handle, inode, r.pblk, r.len).catch(() => {});
    throw e;
  }
  inode.i_blocks += r.len * (sbi_bs(inode) / 512);
  return { pblk: r.pblk, len: r.len, isNew: true };
}

/**
 * Blocks [lblk, lblk+len) of unwritten extent `ex` become written: the extent shrinks to
 * its unwritten head (or is replaced by the written part), and the written part and the
 * unwritten tail are inserted after it.
 */
async function ext4_ext_convert_to_initialized(handle: handle_t, inode: ext4_inode_info, ex: ext4_extent, lblk: number, len: number): Promise<void> {
  const head = lblk - ex.ee_block;
  const tail = ex.ee_block + ex.len - (lblk + len);
  const mid: ext4_extent = { ee_block: lblk, len, start: ex.start + head, unwritten: false };
  const path = await ext4_find_extent_rw(inode, ex.ee_block);
  try {
    const leaf = path[path.length - 1]!;
    ext4_extent_encode(head ? { ...ex, len: head } : mid, leaf.buf, 0, leaf.idx);
    await ext4_ext_dirty(handle, inode, leaf);
  } finally { release_path(path); }
  if (head) await ext4_ext_insert_extent(handle, inode, mid);
  if (tail) await ext4_ext_insert_extent(handle, inode, { ee_block: lblk + len, len: tail, start: mid.start + len, unwritten: true });
}

/**
 * ext4_ext_remove_space: every block of logical range [first, end) is freed. Extents inside
 * are dropped, extents across an edge trimmed, an extent across the whole range split (its
 * right part re-inserted afterwards); emptied tree blocks are freed and their index entries
 * removed, index keys follow their children's first keys, and an emptied tree becomes a
 * depth-0 root again. The caller holds i_data_sem for writing.
 */
export async function ext4_ext_remove_space(handle: handle_t, inode: ext4_inode_info, first: number, end: number): Promise<void> {
  const sb = inode.i_sb;
  const bs = sbi_bs(inode);
  const depth = ext_depth(inode);
  ext4_ext_check_node(inode, inode.i_data, 0, depth, ext4_ext_space_root(), 0);
  const pending: ext4_extent[] = [];
  const free = async (pblk: number, n: number) => {
    if (n <= 0) return;
    await ext4_free_blocks(handle, inode, pblk, n);
    inode.i_blocks = Math.max(0, inode.i_blocks - n * (bs / 512));
  };
  /** Rewrite a node's entries from a list (entries are 12 bytes each). */
  const setEntries = (buf: Uint8Array, list: Uint8Array[]) => {
    buf.fill(0, EXT4_EXTENT_HEADER_SIZE, entry_at(max_of(buf)));
    list.forEach((e, i) => buf.set(e, entry_at(i)));
    put_le16(buf, 2, list.length);
  };
  const entryBytes = (buf: Uint8Array, i: number) => buf.slice(entry_at(i), entry_at(i + 1));
  /** Returns whether the node changed. */
  const rm = async (buf: Uint8Array, d: number): Promise<boolean> => {
    const n = entries_of(buf);
    const keep: Uint8Array[] = [];
    let changed = false;
    if (d === 0) {
      for (let i = 0; i < n; i++) {
        const ex = ext4_extent_decode(buf, 0, i);
        const exEnd = ex.ee_block + ex.len;
        if (exEnd <= first || ex.ee_block >= end) { keep.push(entryBytes(buf, i)); continue; }
        changed = true;
        const lo = Math.max(first, ex.ee_block), hi = Math.min(end, exEnd);
        await free(ex.start + (lo - ex.ee_block), hi - lo);
        const tmp = new Uint8Array(EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE);
        if (ex.ee_block < lo) {
          ext4_extent_encode({ ...ex, len: lo - ex.ee_block }, tmp, 0, 0);
          keep.push(tmp.slice(entry_at(0), entry_at(1)));
        }
        if (hi < exEnd) {
          const right = { ee_block: hi, len: exEnd - hi, start: ex.start + (hi - ex.ee_block), unwritten: ex.unwritten };
          if (ex.ee_block < lo) pending.push(right);
          else { ext4_extent_encode(right, tmp, 0, 0); keep.push(tmp.slice(entry_at(0), entry_at(1))); }
        }
      }
    } else {
      for (let i = 0; i < n; i++) {
        const ix = ext4_extent_idx_decode(buf, 0, i);
        const next = i + 1 < n ? ext4_extent_idx_decode(buf, 0, i + 1).ei_block : EXT_MAX_BLOCKS;
        if (next <= first || ix.ei_block >= end) { keep.push(entryBytes(buf, i)); continue; }
        const bh = await ext4_sb_bread_bh(sb, ix.leaf, 'ext4_ext_remove_space', inode.i_ino);
        try {
          ext4_ext_check_node(inode, bh.b_data, 0, d - 1, ext4_ext_space_block(bs), ix.leaf);
          if (!(await rm(bh.b_data, d - 1))) { keep.push(entryBytes(buf, i)); continue; }
          changed = true;
          if (entries_of(bh.b_data) === 0) {
            ext4_forget(handle, bh);
            await free(ix.leaf, 1);
            continue;
          }
          await ext4_ext_dirty(handle, inode, { bh, buf: bh.b_data, blk: ix.leaf, depth: d - 1, idx: -1 });
          const tmp = new Uint8Array(EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE);
          ext4_extent_idx_encode({ ei_block: key_of(bh.b_data, 0), leaf: ix.leaf }, tmp, 0, 0);
          keep.push(tmp.slice(entry_at(0), entry_at(1)));
        } finally { brelse(bh); }
      }
    }
    if (changed) setEntries(buf, keep);
    return changed;
  };
  await rm(inode.i_data, depth);
  if (entries_of(inode.i_data) === 0 && depth > 0) {
    ext4_ext_header_encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: ext4_ext_space_root(), eh_depth: 0, eh_generation: 0 },
      inode.i_data, 0);
    inode.i_data.fill(0, EXT4_EXTENT_HEADER_SIZE);
  }
  for (const ex of pending) await ext4_ext_insert_extent(handle, inode, ex);
}

/** ext4_ext_truncate: every block from logical block `first` on is freed. */
export async function ext4_ext_truncate(handle: handle_t, inode: ext4_inode_info, first: number): Promise<void> {
  await ext4_ext_remove_space(handle, inode, first, EXT_MAX_BLOCKS);
}

/**
 * Unwritten extents for the holes of logical range [first, end) (ext4_alloc_file_blocks):
 * they read as zeros until written. Mapped blocks are left as they are.
 */
export async function ext4_alloc_file_blocks(handle: handle_t, inode: ext4_inode_info, first: number, end: number): Promise<void> {
  let lblk = first;
  while (lblk < end) {
    const m = await ext4_ext_map_blocks(inode, lblk, Math.min(end - lblk, EXT_UNWRITTEN_MAX_LEN));
    if (m.pblk) { lblk += m.len; continue; }
    const path = await ext4_find_extent(inode, lblk);
    const r = await ext4_mb_new_blocks(handle, { inode, goal: ext4_ext_find_goal(inode, path, lblk), len: m.len, flags: EXT4_MB_HINT_DATA });
    try {
      await ext4_ext_insert_extent(handle, inode, { ee_block: lblk, len: r.len, start: r.pblk, unwritten: true });
    } catch (e) {
      await ext4_free_blocks(handle, inode, r.pblk, r.len).catch(() => {});
      throw e;
    }
    inode.i_blocks += r.len * (sbi_bs(inode) / 512);
    lblk += r.len;
  }
}

/**
 * Zero bytes [from, to) of one block through the page cache if the block is written (a
 * hole or an unwritten extent reads as zeros already): the edges of a punched hole.
 */
async function ext4_zero_partial_block(inode: ext4_inode_info, from: number, to: number): Promise<void> {
  if (from >= to) return;
  const bs = sbi_bs(inode);
  const m = await ext4_map_blocks(inode, Math.floor(from / bs), 1);
  if (!m.pblk || m.unwritten) return;
  const aops = inode.i_mapping.a_ops!;
  const page = await aops.write_begin!(null, inode.i_mapping, from, to - from);
  page.data.fill(0, from % PAGE_SIZE, from % PAGE_SIZE + (to - from));
  await aops.write_end!(null, inode.i_mapping, from, to - from, to - from, page);
}

/**
 * ext4_ext_shift_extents: every extent starting at or after logical block `from` moves by
 * `shift` blocks (negative: left, for collapse; positive: right, for insert). The caller
 * has made sure no extent straddles `from` and that the blocks moved onto are free. Index
 * keys of the nodes visited become their children's first keys again; after a left shift,
 * neighbours that now continue each other (logically and physically, same state) merge,
 * as Linux's ext4_ext_shift_path_extents does. The caller holds i_data_sem for writing.
 */
async function ext4_ext_shift_extents(handle: handle_t, inode: ext4_inode_info, from: number, shift: number): Promise<void> {
  const sb = inode.i_sb;
  const bs = sbi_bs(inode);
  const depth = ext_depth(inode);
  ext4_ext_check_node(inode, inode.i_data, 0, depth, ext4_ext_space_root(), 0);
  /** Returns whether the node changed. */
  const visit = async (buf: Uint8Array, d: number): Promise<boolean> => {
    const n = entries_of(buf);
    let changed = false;
    if (d === 0) {
      const list: ext4_extent[] = [];
      for (let i = 0; i < n; i++) {
        const ex = ext4_extent_decode(buf, 0, i);
        if (ex.ee_block >= from) { ex.ee_block += shift; changed = true; }
        const prev = list[list.length - 1];
        const max = ex.unwritten ? EXT_UNWRITTEN_MAX_LEN : EXT_INIT_MAX_LEN;
        if (shift < 0 && changed && prev && prev.ee_block + prev.len === ex.ee_block && prev.start + prev.len === ex.start &&
          prev.unwritten === ex.unwritten && prev.len + ex.len <= max) {
          prev.len += ex.len;
          continue;
        }
        list.push(ex);
      }
      if (changed) {
        buf.fill(0, EXT4_EXTENT_HEADER_SIZE, entry_at(max_of(buf)));
        list.forEach((ex, i) => ext4_extent_encode(ex, buf, 0, i));
        put_le16(buf, 2, list.length);
      }
      return changed;
    }
    for (let i = 0; i < n; i++) {
      const ix = ext4_extent_idx_decode(buf, 0, i);
      const next = i + 1 < n ? ext4_extent_idx_decode(buf, 0, i + 1).ei_block : EXT_MAX_BLOCKS;
      if (next <= from && i + 1 < n) continue; /* all of this child is before `from` */
      const bh = await ext4_sb_bread_bh(sb, ix.leaf, 'ext4_ext_shift_extents', inode.i_ino);
      try {
        ext4_ext_check_node(inode, bh.b_data, 0, d - 1, ext4_ext_space_block(bs), ix.leaf);
        await ext4_journal_get_write_access(handle, sb, bh);
        if (!(await visit(bh.b_data, d - 1))) continue;
        changed = true;
        await ext4_ext_dirty(handle, inode, { bh, buf: bh.b_data, blk: ix.leaf, depth: d - 1, idx: -1 });
        if (entries_of(bh.b_data)) put_le32(buf, entry_at(i), key_of(bh.b_data, 0));
      } finally { brelse(bh); }
    }
    return changed;
  };
  await visit(inode.i_data, depth);
}

/**
 * Split the extent that holds logical block `lblk` inside it (not at its start) into two
 * at `lblk` (ext4_split_extent_at), so that a shift from `lblk` moves only whole extents.
 */
async function ext4_ext_split_at(handle: handle_t, inode: ext4_inode_info, lblk: number): Promise<void> {
  const path = await ext4_find_extent_rw(inode, lblk);
  let right: ext4_extent | null = null;
  try {
    const leaf = path[path.length - 1]!;
    if (leaf.idx < 0) return;
    const ex = ext4_extent_decode(leaf.buf, 0, leaf.idx);
    if (!(ex.ee_block < lblk && lblk < ex.ee_block + ex.len)) return;
    const head = lblk - ex.ee_block;
    await ext4_ext_journal_access(handle, inode, leaf);
    ext4_extent_encode({ ...ex, len: head }, leaf.buf, 0, leaf.idx);
    await ext4_ext_dirty(handle, inode, leaf);
    right = { ee_block: lblk, len: ex.len - head, start: ex.start + head, unwritten: ex.unwritten };
  } finally { release_path(path); }
  if (right) await ext4_ext_insert_extent(handle, inode, right, false);
}

/** Write access to a tree block about to change (the root is the inode's, journalled with it). */
async function ext4_ext_journal_access(handle: handle_t, inode: ext4_inode_info, node: WNode): Promise<void> {
  if (node.bh) await ext4_journal_get_write_access(handle, inode.i_sb, node.bh);
}

/**
 * ext4_collapse_range: the blocks of [offset, offset + len) go and everything after moves
 * down by len; the file shrinks by len. ext4_insert_range: everything from offset moves up
 * by len, leaving a hole there; the file grows by len. Both on block-aligned ranges of
 * extent files, with offset + len before the end (collapse) or offset before it (insert).
 */
async function ext4_shift_range(inode: ext4_inode_info, collapse: boolean, offset: number, len: number): Promise<void> {
  const sb = inode.i_sb;
  const bs = sbi_bs(inode);
  if (offset % bs !== 0 || len % bs !== 0) throw err(EINVAL);
  if (!(inode.i_ext4_flags & EXT4_EXTENTS_FL)) throw err(EOPNOTSUPP);
  if (collapse) {
    if (offset + len >= inode.i_size) throw err(EINVAL);
  } else {
    if (len > sb.s_maxbytes - inode.i_size) throw err(EFBIG);
    if (offset >= inode.i_size) throw err(EINVAL);
  }
  if (sb.s_flags & 1 /* SB_RDONLY */) throw err(EROFS);
  // Everything from offset on goes to the disk first (delayed blocks get theirs), and the
  // page cache from there is dropped: the pages' file offsets change.
  await filemap_write_and_wait_range(inode.i_mapping, offset, Number.MAX_SAFE_INTEGER);
  await truncate_inode_pages_range(inode.i_mapping, offset, Number.MAX_SAFE_INTEGER);
  const start = offset / bs, n = len / bs;
  const handle = ext4_journal_start(inode, EXT4_HT_TRUNCATE, EXT4_DATA_TRANS_BLOCKS * 4);
  try {
    await inode.i_data_sem.downWrite();
    ext4_es_remove_extent(inode);
    try {
      if (collapse) {
        await ext4_ext_remove_space(handle, inode, start, start + n);
        await ext4_ext_shift_extents(handle, inode, start + n, -n);
      } else {
        await ext4_ext_split_at(handle, inode, start);
        await ext4_ext_shift_extents(handle, inode, start, n);
      }
    } finally { inode.i_data_sem.upWrite(); }
    const size = collapse ? inode.i_size - len : inode.i_size + len;
    inode.i_size = size;
    inode.i_disksize = size;
    const now = current_time(inode);
    inode.i_mtime = now;
    inode.i_ctime = { ...now };
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}

/**
 * ext4_fallocate for extent files: preallocation (mode 0, KEEP_SIZE) as unwritten extents,
 * PUNCH_HOLE (blocks freed, edges zeroed), ZERO_RANGE (a punched range made unwritten
 * again), COLLAPSE_RANGE and INSERT_RANGE (ext4_shift_range). Block-mapped files cannot
 * hold unwritten extents nor shift: only PUNCH_HOLE works on them (ext4_ind_remove_space).
 */
export async function ext4_fallocate(file: file, mode: number, offset: number, len: number): Promise<void> {
  const inode = file.f_inode as ext4_inode_info;
  const sb = inode.i_sb;
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) await ext4_convert_inline_data(inode);
  if (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE))
    return ext4_shift_range(inode, (mode & FALLOC_FL_COLLAPSE_RANGE) !== 0, offset, len);
  // Block-mapped files can only have holes punched (they cannot hold unwritten extents).
  const extents = (inode.i_ext4_flags & EXT4_EXTENTS_FL) !== 0;
  if (!extents && mode !== (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) throw err(EOPNOTSUPP);
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) throw err(EOPNOTSUPP);
  const bs = sbi_bs(inode);
  const end = offset + len;
  const now = current_time(inode);
  // Delayed-allocation pages in the range get their blocks first, so that the extents
  // below see every block the file has.
  if (inode.i_reserved_data_blocks) await filemap_write_and_wait_range(inode.i_mapping, offset, end - 1);
  if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    const stop = mode & FALLOC_FL_PUNCH_HOLE ? Math.min(end, inode.i_size) : end;
    if (offset < stop) {
      await filemap_write_and_wait_range(inode.i_mapping, offset, stop - 1);
      await truncate_inode_pages_range(inode.i_mapping, offset, stop - 1);
      const firstFull = Math.ceil(offset / bs), lastFull = Math.floor(stop / bs);
      if (firstFull > lastFull) {
        await ext4_zero_partial_block(inode, offset, stop);
      } else {
        await ext4_zero_partial_block(inode, offset, firstFull * bs);
        await ext4_zero_partial_block(inode, lastFull * bs, stop);
      }
      if (firstFull < lastFull) {
        const handle = ext4_journal_start(inode, EXT4_HT_TRUNCATE, EXT4_DATA_TRANS_BLOCKS);
        try {
          await inode.i_data_sem.downWrite();
          ext4_es_remove_extent(inode);
          try {
            if (extents) await ext4_ext_remove_space(handle, inode, firstFull, lastFull);
            else await ext4_ind_remove_space(handle, inode, firstFull, lastFull);
            if (mode & FALLOC_FL_ZERO_RANGE) await ext4_alloc_file_blocks(handle, inode, firstFull, lastFull);
          } finally { inode.i_data_sem.upWrite(); }
          await ext4_mark_inode_dirty(handle, inode);
        } finally { await ext4_journal_stop(handle); }
      }
    }
    if (mode & FALLOC_FL_PUNCH_HOLE) { inode.i_mtime = now; inode.i_ctime = { ...now }; }
  }
  if (sb.s_flags & 1 /* SB_RDONLY */) throw err(EROFS);
  const handle = ext4_journal_start(inode, EXT4_HT_MAP_BLOCKS, EXT4_DATA_TRANS_BLOCKS);
  try {
    if (!(mode & FALLOC_FL_PUNCH_HOLE)) {
      await inode.i_data_sem.downWrite();
      ext4_es_remove_extent(inode);
      try {
        await ext4_alloc_file_blocks(handle, inode, Math.floor(offset / bs), Math.ceil(end / bs));
      } finally { inode.i_data_sem.upWrite(); }
      inode.i_ctime = now;
      if (!(mode & FALLOC_FL_KEEP_SIZE) && end > inode.i_size) {
        inode.i_size = end;
        inode.i_disksize = end;
        inode.i_mtime = { ...now };
      }
    }
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}
