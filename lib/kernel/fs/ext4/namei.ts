/*
 * Glue between the VFS and ext4's directories (fs/ext4/namei.c): name lookup, linear and
 * through the htree index (dx_probe, ext4_htree_next_block for hash collisions), and the
 * inode operation tables of directories and special files. All knowledge of the entry
 * layout is in dir.ts. The write side: adding entries (linear, and through the index for
 * htree directories), deleting them, and create/mknod/symlink/mkdir/link/unlink/rmdir/rename.
 */
import type { dentry, inode, inode_operations } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EEXIST, EINVAL, EMLINK, ENAMETOOLONG, ENOENT, ENOSPC, ENOTEMPTY, EROFS, ESTALE, RENAME_EXCHANGE, RENAME_WHITEOUT,
  S_IFCHR, S_IFBLK, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
} from '../../include/uapi.js';
import type { buffer_head } from '../buffer.js';
import { clear_nlink, drop_nlink, ihold, inc_nlink, init_special_inode, iput, set_nlink, unlock_new_inode } from '../inode.js';
import { d_instantiate } from '../dcache.js';
import { current_time } from '../time.js';
import {
  DX_ENTRY_SIZE, DX_HASH_TEA, DX_ROOT_INFO_OFFSET, DX_NODE_COUNT_OFFSET, EXT4_FEATURE_INCOMPAT_LARGEDIR,
  EXT4_HTREE_LEVEL, EXT4_HTREE_LEVEL_COMPAT, EXT4_NAME_LEN, EXT4_ROOT_INO, dx_countlimit_decode, dx_countlimit_encode,
  dx_entry_decode, dx_entry_encode, dx_node_check, dx_node_init, dx_node_limit,
  dx_root_check, dx_root_info_decode, dx_root_info_encode, type dx_countlimit, ext4_dir_entry_decode, ext4_rec_len_from_disk,
  EXT4_INLINE_DATA_FL, EXT4_DIR_TAIL_SIZE, EXT4_FEATURE_INCOMPAT_FILETYPE, EXT4_FEATURE_RO_COMPAT_DIR_NLINK,
  EXT4_EXTENTS_FL, EXT4_N_BLOCKS, ext4_check_dir_entry, ext4_dir_entry_encode, ext4_dir_rec_len, ext4_dir_tail_init,
  ext4_rec_len_to_disk, ext4_type_by_mode, le16, le32, put_le16, put_le32,
  EXT4_FEATURE_COMPAT_DIR_INDEX, EXT4_INDEX_FL, DX_ROOT_COUNT_OFFSET, dx_root_init, dx_root_limit,
} from './layout.js';
import { ext4_dirblock_csum_set, ext4_dx_csum_set } from './csum.js';
import {
  brelse, EXT4_DATA_TRANS_BLOCKS, EXT4_HT_DIR, EXT4_INDEX_EXTRA_TRANS_BLOCKS, ext4_handle_dirty_metadata,
  ext4_journal_get_create_access, ext4_journal_get_write_access, ext4_journal_start, ext4_journal_stop, ext4_sb_bread_bh,
  ext4_sb_getblk_zero, type handle_t,
} from './ext4_jbd2.js';
import { __ext4_new_inode } from './ialloc.js';
import { ext4_file_inode_operations, ext4_file_operations } from './file.js';
import { ext4_fast_symlink_inode_operations, ext4_symlink_inode_operations } from './symlink.js';
import { ext4fs_dirhash } from './hash.js';
import { EXT4_I, EXT4_MOUNT_NO_AUTO_DA_ALLOC, EXT4_SB, EXT4_STATE_MAY_INLINE_DATA, type ext4_inode_info } from './ext4.js';
import { ext4_error, ext4_warning } from './errors.js';
import { ext4_orphan_add } from './orphan.js';
import {
  ext4_alloc_da_blocks, ext4_aops, ext4_iget, ext4_getattr, ext4_map_blocks, ext4_map_blocks_create, ext4_mark_inode_dirty, ext4_set_dev,
  ext4_setattr,
} from './inode.js';
import { ext4_dir_operations } from './dir.js';
import { DxFallback, dir_blocks, ext4_read_dirblock, ext4_walk_dirblock, is_dx } from './dir.js';
import {
  ext4_delete_inline_entry, ext4_find_inline_entry, ext4_inline_dir_view, ext4_inline_set_dotdot, ext4_inline_setent,
  ext4_try_add_inline_entry, ext4_try_create_inline_dir,
} from './inline.js';
import { ext4_listxattr } from './xattr.js';
import { ext4_get_acl, ext4_set_acl_op } from './acl.js';
import { ext4_fileattr_get, ext4_fileattr_set } from './ioctl.js';

/** The hash version of an htree, with the unsigned-char offset the superblock asks for. */
export function dx_hash_version(dir: ext4_inode_info, rootVersion: number): number {
  let v = rootVersion;
  if (v <= DX_HASH_TEA) v += EXT4_SB(dir.i_sb).s_hash_unsigned;
  return v;
}

/** One level of a dx path: the entries array (buffer, offset), count and the chosen slot. */
interface DxFrame { buf: Uint8Array; at: number; count: number; idx: number }

function nameBytes(name: string): Uint8Array {
  const b = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) b[i] = name.charCodeAt(i);
  return b;
}

const DX_BLOCK_MASK = 0x0fffffff;

/** Read and check the root; returns what the rest of the walk needs. Structural trouble → DxFallback. */
async function dx_root(dir: ext4_inode_info): Promise<{ buf: Uint8Array; at: number; levels: number; hashVersion: number; dotdot: number }> {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const root = await ext4_read_dirblock(dir, 0, 'index');
  if (!root) throw new DxFallback();
  const csum = !!sbi.s_csum?.metadata_csum;
  const why = dx_root_check(root.buf, sbi.s_blocksize, csum, sbi.has_incompat(EXT4_FEATURE_INCOMPAT_LARGEDIR), 0);
  if (why) {
    ext4_warning(sb, 'dx_probe', `inode #${dir.i_ino}: ${why}`);
    throw new DxFallback();
  }
  const info = dx_root_info_decode(root.buf, 0);
  const dotdot = ext4_dir_entry_decode(root.buf, 12, sbi.s_blocksize).inode;
  return { buf: root.buf, at: DX_ROOT_INFO_OFFSET + info.info_length, levels: info.indirect_levels,
    hashVersion: dx_hash_version(dir, info.hash_version), dotdot };
}

async function dx_node(dir: ext4_inode_info, lblk: number): Promise<{ buf: Uint8Array; at: number }> {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const n = await ext4_read_dirblock(dir, lblk, 'index');
  if (!n) throw new DxFallback();
  const why = dx_node_check(n.buf, sbi.s_blocksize, !!sbi.s_csum?.metadata_csum, 0);
  if (why) {
    ext4_warning(sb, 'dx_probe', `inode #${dir.i_ino}: ${why}`);
    throw new DxFallback();
  }
  return { buf: n.buf, at: DX_NODE_COUNT_OFFSET };
}

function dx_block_of(dir: ext4_inode_info, buf: Uint8Array, at: number, i: number): number {
  const b = dx_entry_decode(buf, at, i).block & DX_BLOCK_MASK; // bits32: a le32 field
  if (b >= dir_blocks(dir)) {
    ext4_warning(dir.i_sb, 'dx_probe', `inode #${dir.i_ino}: dx entry: block ${b} beyond i_size`);
    throw new DxFallback();
  }
  return b;
}

/** dx_probe: the path of index frames leading to the leaf that holds `hash`. */
async function dx_probe(dir: ext4_inode_info, hash: number, root?: Awaited<ReturnType<typeof dx_root>>): Promise<{ frames: DxFrame[]; leaf: number }> {
  const r = root ?? await dx_root(dir);
  const frames: DxFrame[] = [];
  let buf = r.buf, at = r.at;
  for (let level = 0; ; level++) {
    const { count } = dx_countlimit_decode(buf, at);
    // The last entry whose hash is <= ours (entry 0 covers everything below entry 1).
    let lo = 1, hi = count - 1, pick = 0;
    while (lo <= hi) {
      const m = (lo + hi) >>> 1;
      if (dx_entry_decode(buf, at, m).hash > hash) hi = m - 1; else { pick = m; lo = m + 1; }
    }
    frames.push({ buf, at, count, idx: pick });
    const blk = dx_block_of(dir, buf, at, pick);
    if (level === r.levels) return { frames, leaf: blk };
    const n = await dx_node(dir, blk);
    buf = n.buf; at = n.at;
  }
}

/**
 * ext4_htree_next_block: step to the next leaf if it continues our hash (a collision run
 * spilled over). Returns the next leaf's block or -1.
 */
async function ext4_htree_next_block(dir: ext4_inode_info, hash: number, frames: DxFrame[]): Promise<number> {
  let i = frames.length - 1;
  for (; i >= 0; i--) {
    const f = frames[i];
    if (f.idx + 1 < f.count) break;
  }
  if (i < 0) return -1;
  const f = frames[i];
  f.idx++;
  const bhash = dx_entry_decode(f.buf, f.at, f.idx).hash;
  if ((hash & 1) === 0 && ((bhash & ~1) >>> 0) !== hash) return -1;
  let blk = dx_block_of(dir, f.buf, f.at, f.idx);
  for (let j = i + 1; j < frames.length; j++) {
    const n = await dx_node(dir, blk);
    const { count } = dx_countlimit_decode(n.buf, n.at);
    frames[j] = { buf: n.buf, at: n.at, count, idx: 0 };
    blk = dx_block_of(dir, n.buf, n.at, 0);
  }
  return blk;
}

/** Every leaf block of an htree in index order, with the hash version and ".."'s inode. */
export async function dx_leaf_blocks(dir: ext4_inode_info): Promise<{ leaves: number[]; hashVersion: number; dotdot: number }> {
  const r = await dx_root(dir);
  const leaves: number[] = [];
  const walk = async (buf: Uint8Array, at: number, level: number): Promise<void> => {
    const { count } = dx_countlimit_decode(buf, at);
    for (let i = 0; i < count; i++) {
      const blk = dx_block_of(dir, buf, at, i);
      if (level === r.levels) leaves.push(blk);
      else {
        const n = await dx_node(dir, blk);
        await walk(n.buf, n.at, level + 1);
      }
    }
  };
  await walk(r.buf, r.at, 0);
  return { leaves, hashVersion: r.hashVersion, dotdot: r.dotdot };
}

/**
 * Search one leaf block for `name`; the inode number or 0 (ext4_search_dir). As Linux does,
 * the scan compares raw bytes without decoding every record, and fully checks only the
 * entry that matches (ext4_check_dir_entry); a record whose length cannot be followed, or a
 * match that fails the check, sends the block to the checked walk, which reports the
 * corruption by name.
 */
async function search_dirblock(dir: ext4_inode_info, lblk: number, name: string): Promise<number> {
  const blk = await ext4_read_dirblock(dir, lblk, 'leaf');
  if (!blk) return 0;
  const sbi = EXT4_SB(dir.i_sb);
  const bs = sbi.s_blocksize;
  const maxIno = sbi.s_es.s_inodes_count;
  const buf = blk.buf;
  const len = name.length;
  let off = 0;
  while (off + 8 <= bs) {
    const recLen = ext4_rec_len_from_disk(buf[off + 4]! | (buf[off + 5]! << 8), bs);
    const ino = (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
    const nameLen = buf[off + 6]!;
    // ext4_check_dir_entry's cheap conditions, on every record: a bad one goes to the
    // checked walk, which names the failure.
    if (recLen < 12 || recLen % 4 !== 0 || recLen < ((nameLen + 8 + 3) & ~3) || off + recLen > bs || ino > maxIno)
      return searchChecked(dir, blk.buf, blk.pblk, name);
    if (ino !== 0 && nameLen === len) {
      let i = 0;
      while (i < len && buf[off + 8 + i] === name.charCodeAt(i)) i++;
      if (i === len) {
        // The match gets ext4_check_dir_entry's full check; the checked walk names a failure.
        if (ext4_check_dir_entry(buf, off, bs, bs, maxIno)) return searchChecked(dir, blk.buf, blk.pblk, name);
        return ino;
      }
    }
    off += recLen;
  }
  return 0;
}

/** The checked walk over one block: the inode number of `name` or 0; throws on corruption. */
function searchChecked(dir: ext4_inode_info, buf: Uint8Array, pblk: number, name: string): number {
  let found = 0;
  ext4_walk_dirblock(dir, buf, EXT4_SB(dir.i_sb).s_blocksize, pblk, (de) => {
    if (de.name === name) { found = de.ino; return false; }
  });
  return found;
}

/**
 * The leaves a name's hash may be in, in index order (dx_probe, then ext4_htree_next_block
 * while a collision run continues), until `visit` returns something. Throws DxFallback
 * when the index is unusable.
 */
async function ext4_dx_search<T>(dir: ext4_inode_info, name: string, visit: (lblk: number) => Promise<T | null>): Promise<T | null> {
  const r = await dx_root(dir);
  const h = ext4fs_dirhash(nameBytes(name), r.hashVersion, EXT4_SB(dir.i_sb).s_hash_seed);
  if (!h) throw new DxFallback();
  const { frames, leaf } = await dx_probe(dir, h.hash, r);
  for (let blk = leaf; blk >= 0; blk = await ext4_htree_next_block(dir, h.hash, frames)) {
    const v = await visit(blk);
    if (v !== null) return v;
  }
  return null;
}

/** ext4_dx_find_entry. Throws DxFallback when the index is unusable. */
async function ext4_dx_find_entry(dir: ext4_inode_info, name: string): Promise<number> {
  return (await ext4_dx_search(dir, name, async (blk) => (await search_dirblock(dir, blk, name)) || null)) ?? 0;
}

/** ext4_find_entry: the inode number `name` refers to in `dir`, or 0. */
export async function ext4_find_entry(dir: ext4_inode_info, name: string): Promise<number> {
  if (name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  if (dir.i_ext4_flags & EXT4_INLINE_DATA_FL) {
    const view = await ext4_inline_dir_view(dir);
    if (name === '.') return dir.i_ino;
    if (name === '..') return view.parent;
    let found = 0;
    for (const a of view.areas) {
      ext4_walk_dirblock(dir, a.buf, a.size, 0, (de) => { if (de.name === name) { found = de.ino; return false; } });
      if (found) return found;
    }
    return 0;
  }
  if (is_dx(dir) && name !== '.' && name !== '..') {
    try {
      return await ext4_dx_find_entry(dir, name);
    } catch (e) {
      if (!(e instanceof DxFallback)) throw e;
      // Fall back to a linear search, as Linux does for ERR_BAD_DX_DIR.
    }
  }
  const n = dir_blocks(dir);
  for (let b = 0; b < n; b++) {
    const ino = await search_dirblock(dir, b, name);
    if (ino) return ino;
  }
  return 0;
}

/** ext4_valid_inum. */
function ext4_valid_inum(dir: ext4_inode_info, ino: number): boolean {
  const sbi = EXT4_SB(dir.i_sb);
  return ino === EXT4_ROOT_INO || (ino >= sbi.s_first_ino && ino <= sbi.s_es.s_inodes_count);
}

/** ext4_lookup. */
export async function ext4_lookup(dirI: inode, dentry: dentry, _flags: number): Promise<inode | null> {
  const dir = EXT4_I(dirI);
  const ino = await ext4_find_entry(dir, dentry.d_name);
  if (!ino) return null;
  if (!ext4_valid_inum(dir, ino))
    throw ext4_error(dir.i_sb, 'ext4_lookup', `bad inode number: ${ino}`, { ino: dir.i_ino });
  if (ino === dir.i_ino)
    throw ext4_error(dir.i_sb, 'ext4_lookup', `'${dentry.d_name}' linked to parent dir`, { ino: dir.i_ino });
  try {
    return await ext4_iget(dir.i_sb, ino);
  } catch (e) {
    if ((e as { errno?: number }).errno === ESTALE)
      throw ext4_error(dir.i_sb, 'ext4_lookup', `deleted inode referenced: ${ino}`, { ino: dir.i_ino });
    throw e;
  }
}

/** ext4_get_parent (for the VFS's ".." of a disconnected dentry). */
export async function ext4_get_parent(dir: ext4_inode_info): Promise<ext4_inode_info> {
  const ino = await ext4_find_entry(dir, '..');
  if (!ino || !ext4_valid_inum(dir, ino))
    throw ext4_error(dir.i_sb, 'ext4_get_parent', `bad parent inode number: ${ino}`, { ino: dir.i_ino });
  return ext4_iget(dir.i_sb, ino);
}

/* ---- the write side: adding and removing entries, and the directory operations ---- */

/** Bytes of a leaf block that entries may use (the checksum tail takes the last 12). */
function ext4_usable_size(dir: ext4_inode_info): number {
  const sbi = EXT4_SB(dir.i_sb);
  return sbi.s_blocksize - (sbi.s_csum?.metadata_csum ? EXT4_DIR_TAIL_SIZE : 0);
}

/** The live buffer of directory block `lblk` (null for a hole). */
async function ext4_dirblock_bh(dir: ext4_inode_info, lblk: number): Promise<buffer_head | null> {
  const m = await ext4_map_blocks(dir, lblk, 1);
  if (m.pblk === 0 || m.unwritten) return null;
  return ext4_sb_bread_bh(dir.i_sb, m.pblk, 'ext4_bread', dir.i_ino);
}

/** A leaf block changed: its checksum tail, remembered as verified, dirtied (ext4_handle_dirty_dirblock). */
async function ext4_handle_dirty_dirblock(handle: handle_t, dir: ext4_inode_info, bh: buffer_head): Promise<void> {
  const sbi = EXT4_SB(dir.i_sb);
  if (sbi.s_csum?.metadata_csum) {
    if (!ext4_dirblock_csum_set(sbi.s_csum, dir.i_csum_seed, bh.b_data, 0))
      throw ext4_error(dir.i_sb, 'ext4_handle_dirty_dirblock', `block ${bh.b_blocknr}: no space for directory leaf checksum`,
        { ino: dir.i_ino });
    sbi.s_dirblock_verified.add(bh.b_blocknr);
  }
  await ext4_handle_dirty_metadata(handle, dir, bh);
}

/** An index block changed: its dx tail checksum, then dirty. */
async function ext4_handle_dirty_dx_node(handle: handle_t, dir: ext4_inode_info, bh: buffer_head): Promise<void> {
  const sbi = EXT4_SB(dir.i_sb);
  if (sbi.s_csum?.metadata_csum) {
    ext4_dx_csum_set(sbi.s_csum, dir.i_csum_seed, bh.b_data, 0);
    sbi.s_dirblock_verified.add(bh.b_blocknr);
  }
  await ext4_handle_dirty_metadata(handle, dir, bh);
}

/**
 * add_dirent_to_buf: put `name` -> `ino` into a block of `size` usable bytes, in the first
 * record that is free and big enough or whose slack after its own name is. False if full.
 */
export function add_dirent_to_buf(dir: ext4_inode_info, buf: Uint8Array, size: number, pblk: number, name: Uint8Array, ino: number, ftype: number): boolean {
  const bs = EXT4_SB(dir.i_sb).s_blocksize;
  const need = ext4_dir_rec_len(name.length);
  const inodes = EXT4_SB(dir.i_sb).s_es.s_inodes_count;
  let off = 0;
  while (off < size) {
    const why = ext4_check_dir_entry(buf, off, size, bs, inodes);
    if (why) throw ext4_error(dir.i_sb, 'ext4_find_dest_de', `bad entry in directory: ${why} - offset=${off}`, { ino: dir.i_ino, block: pblk });
    const de = ext4_dir_entry_decode(buf, off, bs);
    if (de.inode !== 0 && de.name_len === name.length && de.name.every((c, i) => c === name[i])) throw err(EEXIST);
    const used = de.inode ? ext4_dir_rec_len(de.name_len) : 0;
    if (de.rec_len - used >= need) {
      let at = off, len = de.rec_len;
      if (de.inode) {
        put_le16(buf, off + 4, ext4_rec_len_to_disk(used, bs));
        at = off + used;
        len = de.rec_len - used;
      }
      buf.fill(0, at, at + len);
      ext4_dir_entry_encode({ inode: ino, rec_len: len, name_len: name.length, file_type: ftype, name }, buf, at, bs);
      return true;
    }
    off += de.rec_len;
  }
  return false;
}

function ext4_ftype(dir: ext4_inode_info, mode: number): number {
  return EXT4_SB(dir.i_sb).has_incompat(EXT4_FEATURE_INCOMPAT_FILETYPE) ? ext4_type_by_mode(mode) : 0;
}

/** An empty leaf block: one free record spanning it, and the checksum tail. */
function ext4_init_leaf(dir: ext4_inode_info, buf: Uint8Array): void {
  const sbi = EXT4_SB(dir.i_sb);
  const bs = sbi.s_blocksize;
  buf.fill(0);
  put_le16(buf, 4, ext4_rec_len_to_disk(ext4_usable_size(dir), bs));
  if (sbi.s_csum?.metadata_csum) ext4_dir_tail_init(buf, bs);
}

/** ext4_append: a new block at the end of the directory (i_size grows by a block). */
async function ext4_append(handle: handle_t, dir: ext4_inode_info): Promise<{ bh: buffer_head; lblk: number }> {
  const sbi = EXT4_SB(dir.i_sb);
  const lblk = dir_blocks(dir);
  if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_LARGEDIR) && (lblk + 1) * sbi.s_blocksize > 0xffffffff) throw err(ENOSPC);
  const m = await ext4_map_blocks_create(handle, dir, lblk, 1);
  const bh = await ext4_sb_getblk_zero(dir.i_sb, m.pblk);
  await ext4_journal_get_create_access(handle, dir.i_sb, bh);
  dir.i_size = (lblk + 1) * sbi.s_blocksize;
  dir.i_disksize = dir.i_size;
  return { bh, lblk };
}

/**
 * ext4_add_entry: link `name` to `inode` in `dir`. Htree directories insert through the
 * index (ext4_dx_add_entry); others take the first block with room, or a new block.
 */
export async function ext4_add_entry(handle: handle_t, dir: ext4_inode_info, name: string, inode: inode): Promise<void> {
  if (name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  const nb = nameBytes(name);
  const ftype = ext4_ftype(dir, inode.i_mode);
  if (dir.i_ext4_flags & EXT4_INLINE_DATA_FL) {
    // In the inode if it fits; else the directory has just moved to block 0 (below).
    if (await ext4_try_add_inline_entry(handle, dir, nb, inode.i_ino, ftype)) {
      await ext4_touch_dir(handle, dir);
      return;
    }
  }
  if (is_dx(dir)) {
    try {
      await ext4_dx_add_entry(handle, dir, nb, inode.i_ino, ftype);
      return;
    } catch (e) {
      if (!(e instanceof DxFallback)) throw e;
      throw ext4_error(dir.i_sb, 'ext4_add_entry', 'Directory has corrupted htree index.', { ino: dir.i_ino });
    }
  }
  const size = ext4_usable_size(dir);
  const n = dir_blocks(dir);
  for (let b = 0; b < n; b++) {
    const blk = await ext4_read_dirblock(dir, b, 'leaf');
    if (!blk) continue;
    const bh = await ext4_sb_bread_bh(dir.i_sb, blk.pblk, 'ext4_add_entry', dir.i_ino);
    try {
      await ext4_journal_get_write_access(handle, dir.i_sb, bh);
      if (add_dirent_to_buf(dir, bh.b_data, size, blk.pblk, nb, inode.i_ino, ftype)) {
        await ext4_handle_dirty_dirblock(handle, dir, bh);
        await ext4_touch_dir(handle, dir);
        return;
      }
    } finally { brelse(bh); }
  }
  if (n === 1 && EXT4_SB(dir.i_sb).has_compat(EXT4_FEATURE_COMPAT_DIR_INDEX)) {
    await make_indexed_dir(handle, dir, nb, inode.i_ino, ftype);
    await ext4_touch_dir(handle, dir);
    return;
  }
  const { bh } = await ext4_append(handle, dir);
  try {
    ext4_init_leaf(dir, bh.b_data);
    add_dirent_to_buf(dir, bh.b_data, size, bh.b_blocknr, nb, inode.i_ino, ftype);
    await ext4_handle_dirty_dirblock(handle, dir, bh);
  } finally { brelse(bh); }
  await ext4_touch_dir(handle, dir);
}

/** A directory's contents changed: mtime and ctime now, inode written. */
async function ext4_touch_dir(handle: handle_t, dir: ext4_inode_info): Promise<void> {
  const now = current_time(dir);
  dir.i_mtime = now;
  dir.i_ctime = { ...now };
  await ext4_mark_inode_dirty(handle, dir);
}

/** Where an entry lives: directory block (-1: inline, off is then Linux's inline offset), byte offset, and its inode. */
interface DirLoc { lblk: number; off: number; ino: number }

function find_in_block(dir: ext4_inode_info, buf: Uint8Array, pblk: number, name: string): { off: number; ino: number } | null {
  let r: { off: number; ino: number } | null = null;
  ext4_walk_dirblock(dir, buf, EXT4_SB(dir.i_sb).s_blocksize, pblk, (de) => {
    if (de.name === name) { r = { off: de.off, ino: de.ino }; return false; }
  });
  return r;
}

/** ext4_find_entry returning where the entry is (for delete and rename). */
async function ext4_find_entry_loc(dir: ext4_inode_info, name: string): Promise<DirLoc | null> {
  if (dir.i_ext4_flags & EXT4_INLINE_DATA_FL) return ext4_find_inline_entry(dir, name);
  if (is_dx(dir) && name !== '.' && name !== '..') {
    try {
      return await ext4_dx_search(dir, name, async (blk): Promise<DirLoc | null> => {
        const b = await ext4_read_dirblock(dir, blk, 'leaf');
        const f = b ? find_in_block(dir, b.buf, b.pblk, name) : null;
        return f ? { lblk: blk, ...f } : null;
      });
    } catch (e) {
      if (!(e instanceof DxFallback)) throw e;
    }
  }
  const n = dir_blocks(dir);
  for (let b = 0; b < n; b++) {
    const blk = await ext4_read_dirblock(dir, b, 'leaf');
    if (!blk) continue;
    const f = find_in_block(dir, blk.buf, blk.pblk, name);
    if (f) return { lblk: b, ...f };
  }
  return null;
}

/**
 * ext4_generic_delete_entry: the record at `at` (naming `ino`) in an area of `size` bytes is
 * merged into the one before it, or (first in the area) its inode is zeroed; either way its
 * bytes are wiped, as Linux does.
 */
export function ext4_generic_delete_entry(dir: ext4_inode_info, buf: Uint8Array, size: number, at: number, ino: number, pblk: number): void {
  const bs = EXT4_SB(dir.i_sb).s_blocksize;
  let prev = -1, off = 0;
  while (off < at && off < size) {
    const rl = ext4_rec_len_from_disk(le16(buf, off + 4), bs);
    if (rl < 12) throw ext4_error(dir.i_sb, 'ext4_delete_entry', `bad rec_len at ${off}`, { ino: dir.i_ino, block: pblk });
    prev = off;
    off += rl;
  }
  if (off !== at || le32(buf, off) !== ino)
    throw ext4_error(dir.i_sb, 'ext4_delete_entry', 'directory entry moved under us', { ino: dir.i_ino, block: pblk });
  const rl = ext4_rec_len_from_disk(le16(buf, off + 4), bs);
  if (rl < 12 || off + rl > size) throw ext4_error(dir.i_sb, 'ext4_delete_entry', `bad rec_len at ${off}`, { ino: dir.i_ino, block: pblk });
  if (prev >= 0) {
    const prl = ext4_rec_len_from_disk(le16(buf, prev + 4), bs);
    put_le16(buf, prev + 4, ext4_rec_len_to_disk(prl + rl, bs));
    buf.fill(0, off, off + rl);
  } else {
    put_le32(buf, off, 0);
    buf.fill(0, off + 6, off + rl);
  }
}

/** ext4_delete_entry: the entry at `loc` goes (in its block, or in the inode for inline directories). */
async function ext4_delete_entry(handle: handle_t, dir: ext4_inode_info, loc: DirLoc): Promise<void> {
  if (loc.lblk < 0) return ext4_delete_inline_entry(handle, dir, loc.off, loc.ino);
  const bh = await ext4_dirblock_bh(dir, loc.lblk);
  if (!bh) throw ext4_error(dir.i_sb, 'ext4_delete_entry', `hole at directory block ${loc.lblk}`, { ino: dir.i_ino });
  try {
    await ext4_journal_get_write_access(handle, dir.i_sb, bh);
    ext4_generic_delete_entry(dir, bh.b_data, ext4_usable_size(dir), loc.off, loc.ino, bh.b_blocknr);
    await ext4_handle_dirty_dirblock(handle, dir, bh);
  } finally { brelse(bh); }
}

/** Point an existing entry at another inode (ext4_setent, for rename over a target). */
async function ext4_setent(handle: handle_t, dir: ext4_inode_info, loc: DirLoc, ino: number, mode: number): Promise<void> {
  if (loc.lblk < 0) {
    const ft = EXT4_SB(dir.i_sb).has_incompat(EXT4_FEATURE_INCOMPAT_FILETYPE) ? ext4_type_by_mode(mode) : null;
    return ext4_inline_setent(handle, dir, loc.off, ino, ft);
  }
  const bh = await ext4_dirblock_bh(dir, loc.lblk);
  if (!bh) throw ext4_error(dir.i_sb, 'ext4_setent', `hole at directory block ${loc.lblk}`, { ino: dir.i_ino });
  try {
    await ext4_journal_get_write_access(handle, dir.i_sb, bh);
    put_le32(bh.b_data, loc.off, ino);
    if (EXT4_SB(dir.i_sb).has_incompat(EXT4_FEATURE_INCOMPAT_FILETYPE)) bh.b_data[loc.off + 7] = ext4_type_by_mode(mode);
    await ext4_handle_dirty_dirblock(handle, dir, bh);
  } finally { brelse(bh); }
}

/** empty_dir: only "." and ".." are left. */
async function ext4_empty_dir(dir: ext4_inode_info): Promise<boolean> {
  if (dir.i_ext4_flags & EXT4_INLINE_DATA_FL) {
    const view = await ext4_inline_dir_view(dir);
    let empty = true;
    for (const a of view.areas) ext4_walk_dirblock(dir, a.buf, a.size, 0, () => { empty = false; return false; });
    return empty;
  }
  const n = dir_blocks(dir);
  for (let b = 0; b < n; b++) {
    const blk = await ext4_read_dirblock(dir, b, 'any');
    if (!blk) continue;
    let empty = true;
    // An htree's root and index nodes hold their entries behind records of inode 0.
    ext4_walk_dirblock(dir, blk.buf, EXT4_SB(dir.i_sb).s_blocksize, blk.pblk, (de) => {
      if (de.name !== '.' && de.name !== '..') { empty = false; return false; }
    });
    if (!empty) return false;
  }
  return true;
}

/**
 * ext4_inc_count / ext4_dec_count: past EXT4_LINK_MAX an htree directory's count is 1 ("too
 * many to count"), and stays 1 when it gains more (1 -> 2 is set back to 1).
 */
function ext4_inc_count(inode: inode): void {
  inc_nlink(inode);
  if (is_dx(EXT4_I(inode)) && (inode.i_nlink > EXT4_LINK_MAX || inode.i_nlink === 2)) set_nlink(inode, 1);
}
function ext4_dec_count(inode: inode): void {
  if ((inode.i_mode & S_IFMT) !== S_IFDIR || inode.i_nlink > 2) drop_nlink(inode);
}
const EXT4_LINK_MAX = 65000;
/** EXT4_DIR_LINK_MAX: `dir` cannot take another subdirectory (only an htree one with dir_nlink can go past the limit). */
function EXT4_DIR_LINK_MAX(dir: ext4_inode_info): boolean {
  return dir.i_nlink >= EXT4_LINK_MAX && !(EXT4_SB(dir.i_sb).has_ro_compat(EXT4_FEATURE_RO_COMPAT_DIR_NLINK) && is_dx(dir));
}

/** The common tail of create/mknod/symlink: the entry, then the dentry (ext4_add_nondir). */
async function ext4_add_nondir(handle: handle_t, dir: ext4_inode_info, dentry: dentry, inode: ext4_inode_info): Promise<void> {
  try {
    await ext4_mark_inode_dirty(handle, inode);
    await ext4_add_entry(handle, dir, dentry.d_name, inode);
  } catch (e) {
    await ext4_undo_new_inode(inode);
    throw e;
  }
  d_instantiate(dentry, inode);
  unlock_new_inode(inode);
}

/** A new inode that could not be linked: no links, evicted (its number and blocks freed). */
async function ext4_undo_new_inode(inode: ext4_inode_info): Promise<void> {
  clear_nlink(inode);
  unlock_new_inode(inode);
  await iput(inode);
}

async function ext4_new_inode_start_handle(dir: ext4_inode_info, mode: number, credits: number): Promise<{ handle: handle_t; inode: ext4_inode_info }> {
  const handle = ext4_journal_start(dir, EXT4_HT_DIR, credits);
  try {
    const inode = await __ext4_new_inode(handle, dir, mode);
    return { handle, inode };
  } catch (e) {
    await ext4_journal_stop(handle).catch(() => {});
    throw e;
  }
}

const CREATE_CREDITS = EXT4_DATA_TRANS_BLOCKS + EXT4_INDEX_EXTRA_TRANS_BLOCKS + 3;

async function ext4_create(dirI: inode, dentry: dentry, mode: number, _excl: boolean): Promise<void> {
  const dir = EXT4_I(dirI);
  if (dentry.d_name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  const { handle, inode } = await ext4_new_inode_start_handle(dir, (mode & ~S_IFMT) | S_IFREG, CREATE_CREDITS);
  try {
    inode.i_op = ext4_file_inode_operations;
    inode.i_fop = ext4_file_operations;
    inode.i_mapping.a_ops = ext4_aops;
    await ext4_add_nondir(handle, dir, dentry, inode);
  } finally { await ext4_journal_stop(handle); }
}

async function ext4_mknod(dirI: inode, dentry: dentry, mode: number, rdev: number): Promise<void> {
  const dir = EXT4_I(dirI);
  if (dentry.d_name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  const { handle, inode } = await ext4_new_inode_start_handle(dir, mode, CREATE_CREDITS);
  try {
    init_special_inode(inode, inode.i_mode, rdev);
    inode.i_op = ext4_special_inode_operations;
    if ((mode & S_IFMT) === S_IFCHR || (mode & S_IFMT) === S_IFBLK) ext4_set_dev(inode, rdev);
    await ext4_add_nondir(handle, dir, dentry, inode);
  } finally { await ext4_journal_stop(handle); }
}

async function ext4_symlink(dirI: inode, dentry: dentry, target: string): Promise<void> {
  const dir = EXT4_I(dirI);
  if (dentry.d_name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  const len = target.length;
  const bs = EXT4_SB(dir.i_sb).s_blocksize;
  if (len + 1 > bs) throw err(ENAMETOOLONG);
  const { handle, inode } = await ext4_new_inode_start_handle(dir, S_IFLNK | 0o777, CREATE_CREDITS);
  try {
    const bytes = nameBytes(target);
    if (len + 1 <= EXT4_N_BLOCKS * 4) {
      // A fast symlink: the target in i_block, no extent tree (as Linux clears the flag).
      inode.i_ext4_flags &= ~EXT4_EXTENTS_FL;
      inode.i_data.fill(0);
      inode.i_data.set(bytes);
      inode.i_size = len;
      inode.i_disksize = len;
      inode.i_link = target;
      inode.i_op = ext4_fast_symlink_inode_operations;
    } else {
      inode.i_op = ext4_symlink_inode_operations;
      inode.i_mapping.a_ops = ext4_aops;
      try {
        const m = await ext4_map_blocks_create(handle, inode, 0, 1);
        const bh = await ext4_sb_getblk_zero(inode.i_sb, m.pblk);
        try {
          await ext4_journal_get_create_access(handle, inode.i_sb, bh);
          bh.b_data.set(bytes);
          await ext4_handle_dirty_metadata(handle, inode, bh);
        } finally { brelse(bh); }
        inode.i_size = len;
        inode.i_disksize = len;
      } catch (e) {
        await ext4_undo_new_inode(inode);
        throw e;
      }
    }
    await ext4_add_nondir(handle, dir, dentry, inode);
  } finally { await ext4_journal_stop(handle); }
}

async function ext4_mkdir(dirI: inode, dentry: dentry, mode: number): Promise<void> {
  const dir = EXT4_I(dirI);
  if (dentry.d_name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  if (EXT4_DIR_LINK_MAX(dir)) throw err(EMLINK);
  const { handle, inode } = await ext4_new_inode_start_handle(dir, (mode & ~S_IFMT) | S_IFDIR, CREATE_CREDITS + 1);
  try {
    inode.i_op = ext4_dir_inode_operations;
    inode.i_fop = ext4_dir_operations;
    inode.i_mapping.a_ops = ext4_aops;
    try {
      await ext4_init_new_dir(handle, dir, inode);
      await ext4_mark_inode_dirty(handle, inode);
      await ext4_add_entry(handle, dir, dentry.d_name, inode);
    } catch (e) {
      await ext4_undo_new_inode(inode);
      throw e;
    }
    ext4_inc_count(dir);
    await ext4_mark_inode_dirty(handle, dir);
    d_instantiate(dentry, inode);
    unlock_new_inode(inode);
  } finally { await ext4_journal_stop(handle); }
}

/**
 * ext4_init_new_dir: a new directory is inline when it may be (inline_data, room in the
 * inode), else block 0 with "." and "..". Two links either way.
 */
async function ext4_init_new_dir(handle: handle_t, dir: ext4_inode_info, inode: ext4_inode_info): Promise<void> {
  set_nlink(inode, 2);
  if (inode.i_state_flags & EXT4_STATE_MAY_INLINE_DATA && await ext4_try_create_inline_dir(handle, dir, inode)) return;
  const { bh } = await ext4_append(handle, inode);
  try {
    const bs = EXT4_SB(dir.i_sb).s_blocksize;
    const buf = bh.b_data;
    ext4_init_leaf(inode, buf);
    const ft = ext4_ftype(inode, S_IFDIR);
    ext4_dir_entry_encode({ inode: inode.i_ino, rec_len: 12, name_len: 1, file_type: ft, name: nameBytes('.') }, buf, 0, bs);
    ext4_dir_entry_encode({ inode: dir.i_ino, rec_len: ext4_usable_size(inode) - 12, name_len: 2, file_type: ft,
      name: nameBytes('..') }, buf, 12, bs);
    await ext4_handle_dirty_dirblock(handle, inode, bh);
  } finally { brelse(bh); }
}

async function ext4_link(oldDentry: dentry, dirI: inode, dentry: dentry): Promise<void> {
  const dir = EXT4_I(dirI);
  const inode = EXT4_I(oldDentry.d_inode!);
  if (dentry.d_name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  if (inode.i_nlink >= EXT4_LINK_MAX) throw err(EMLINK);
  const handle = ext4_journal_start(dir, EXT4_HT_DIR, CREATE_CREDITS);
  try {
    inode.i_ctime = current_time(inode);
    ext4_inc_count(inode);
    try {
      await ext4_add_entry(handle, dir, dentry.d_name, inode);
    } catch (e) {
      drop_nlink(inode);
      throw e;
    }
    await ext4_mark_inode_dirty(handle, inode);
    ihold(inode);
    d_instantiate(dentry, inode);
  } finally { await ext4_journal_stop(handle); }
}

/** The entry `name` of `dir`, which must name `inode`, is deleted (ENOENT if it does not). */
async function ext4_remove_entry(handle: handle_t, dir: ext4_inode_info, name: string, inode: inode): Promise<void> {
  const loc = await ext4_find_entry_loc(dir, name);
  if (!loc || loc.ino !== inode.i_ino) throw err(ENOENT);
  await ext4_delete_entry(handle, dir, loc);
}

async function ext4_unlink(dirI: inode, dentry: dentry): Promise<void> {
  const dir = EXT4_I(dirI);
  const inode = EXT4_I(dentry.d_inode!);
  const handle = ext4_journal_start(dir, EXT4_HT_DIR, EXT4_DATA_TRANS_BLOCKS + 2);
  try {
    await ext4_remove_entry(handle, dir, dentry.d_name, inode);
    await ext4_touch_dir(handle, dir);
    if (inode.i_nlink === 0) ext4_warning(inode.i_sb, 'ext4_unlink', `Deleting file '${dentry.d_name}' with no links`);
    else drop_nlink(inode);
    inode.i_ctime = { ...dir.i_ctime };
    // Open or not, it stays on the orphan chain until evict deletes it.
    if (inode.i_nlink === 0) await ext4_orphan_add(handle, inode);
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}

async function ext4_rmdir(dirI: inode, dentry: dentry): Promise<void> {
  const dir = EXT4_I(dirI);
  const inode = EXT4_I(dentry.d_inode!);
  if (!(await ext4_empty_dir(inode))) throw err(ENOTEMPTY);
  const handle = ext4_journal_start(dir, EXT4_HT_DIR, EXT4_DATA_TRANS_BLOCKS + 2);
  try {
    await ext4_remove_entry(handle, dir, dentry.d_name, inode);
    if (inode.i_nlink !== 2) ext4_warning(inode.i_sb, 'ext4_rmdir', `empty directory '${dentry.d_name}' has too many links (${inode.i_nlink})`);
    clear_nlink(inode);
    inode.i_size = 0;
    inode.i_ctime = current_time(inode);
    await ext4_orphan_add(handle, inode);
    await ext4_mark_inode_dirty(handle, inode);
    ext4_dec_count(dir);
    await ext4_touch_dir(handle, dir);
  } finally { await ext4_journal_stop(handle); }
}

/** The ".." entry of a directory being moved: its block and offset (always block 0, second record). */
async function ext4_dotdot_loc(dir: ext4_inode_info): Promise<DirLoc> {
  const blk = await ext4_read_dirblock(dir, 0, 'any');
  if (!blk) throw ext4_error(dir.i_sb, 'ext4_rename', 'directory has no block 0', { ino: dir.i_ino });
  const bs = EXT4_SB(dir.i_sb).s_blocksize;
  const first = ext4_dir_entry_decode(blk.buf, 0, bs);
  const de = ext4_dir_entry_decode(blk.buf, first.rec_len, bs);
  if (de.name_len !== 2 || de.name[0] !== 0x2e || de.name[1] !== 0x2e)
    throw ext4_error(dir.i_sb, 'ext4_rename', 'directory has no ".." entry', { ino: dir.i_ino, block: blk.pblk });
  return { lblk: 0, off: first.rec_len, ino: de.inode };
}

/** Rewrite ".." of a moved directory (in an htree root the same record: dx_root keeps it). */
async function ext4_set_dotdot(handle: handle_t, dir: ext4_inode_info, parent: ext4_inode_info): Promise<void> {
  if (dir.i_ext4_flags & EXT4_INLINE_DATA_FL) return ext4_inline_set_dotdot(handle, dir, parent.i_ino);
  const loc = await ext4_dotdot_loc(dir);
  const bh = await ext4_dirblock_bh(dir, 0);
  if (!bh) throw ext4_error(dir.i_sb, 'ext4_rename', 'directory has no block 0', { ino: dir.i_ino });
  try {
    await ext4_journal_get_write_access(handle, dir.i_sb, bh);
    put_le32(bh.b_data, loc.off, parent.i_ino);
    if (is_dx(dir)) await ext4_handle_dirty_dx_node(handle, dir, bh);
    else await ext4_handle_dirty_dirblock(handle, dir, bh);
  } finally { brelse(bh); }
}

/**
 * ext4_rename (and RENAME_EXCHANGE, ext4_cross_rename). The VFS has checked permissions,
 * NOREPLACE and that a directory is not moved below itself; emptiness of a replaced
 * directory is checked here, as Linux does.
 */
async function ext4_rename(oldDirI: inode, oldDentry: dentry, newDirI: inode, newDentry: dentry, flags: number): Promise<void> {
  const oldDir = EXT4_I(oldDirI), newDir = EXT4_I(newDirI);
  const old = EXT4_I(oldDentry.d_inode!);
  const target = newDentry.d_inode ? EXT4_I(newDentry.d_inode) : null;
  if (newDentry.d_name.length > EXT4_NAME_LEN) throw err(ENAMETOOLONG);
  if (flags & RENAME_WHITEOUT) throw err(EINVAL);
  const oldIsDir = (old.i_mode & S_IFMT) === S_IFDIR;
  // auto_da_alloc: "write a new copy, rename it over the old one" must not leave an empty
  // file after a crash: the new copy's delayed data is allocated before the rename's handle.
  if (target && !(flags & RENAME_EXCHANGE) && (old.i_mode & S_IFMT) === S_IFREG &&
    !EXT4_SB(old.i_sb).test_opt(EXT4_MOUNT_NO_AUTO_DA_ALLOC)) await ext4_alloc_da_blocks(old);
  const handle = ext4_journal_start(oldDir, EXT4_HT_DIR, 2 * CREATE_CREDITS);
  try {
    const oldLoc = await ext4_find_entry_loc(oldDir, oldDentry.d_name);
    if (!oldLoc || oldLoc.ino !== old.i_ino) throw err(ENOENT);
    if (flags & RENAME_EXCHANGE) {
      if (!target) throw err(ENOENT);
      const newLoc = await ext4_find_entry_loc(newDir, newDentry.d_name);
      if (!newLoc || newLoc.ino !== target.i_ino) throw err(ENOENT);
      const newIsDir = (target.i_mode & S_IFMT) === S_IFDIR;
      await ext4_setent(handle, oldDir, oldLoc, target.i_ino, target.i_mode);
      await ext4_setent(handle, newDir, newLoc, old.i_ino, old.i_mode);
      if (oldDir !== newDir) {
        if (oldIsDir) await ext4_set_dotdot(handle, old, newDir);
        if (newIsDir) await ext4_set_dotdot(handle, target, oldDir);
        if (oldIsDir && !newIsDir) { ext4_dec_count(oldDir); ext4_inc_count(newDir); }
        if (newIsDir && !oldIsDir) { ext4_dec_count(newDir); ext4_inc_count(oldDir); }
      }
      const now = current_time(old);
      old.i_ctime = now; target.i_ctime = { ...now };
      await ext4_mark_inode_dirty(handle, old);
      await ext4_mark_inode_dirty(handle, target);
      await ext4_touch_dir(handle, oldDir);
      if (newDir !== oldDir) await ext4_touch_dir(handle, newDir);
      return;
    }
    if (target) {
      if ((target.i_mode & S_IFMT) === S_IFDIR && !(await ext4_empty_dir(target))) throw err(ENOTEMPTY);
      const newLoc = await ext4_find_entry_loc(newDir, newDentry.d_name);
      if (!newLoc || newLoc.ino !== target.i_ino) throw err(ENOENT);
      await ext4_setent(handle, newDir, newLoc, old.i_ino, old.i_mode);
    } else {
      if (oldIsDir && oldDir !== newDir && EXT4_DIR_LINK_MAX(newDir)) throw err(EMLINK);
      await ext4_add_entry(handle, newDir, newDentry.d_name, old);
    }
    // The old entry may have moved if the add split its block: find it again.
    const again = await ext4_find_entry_loc(oldDir, oldDentry.d_name);
    if (!again || again.ino !== old.i_ino) throw ext4_error(oldDir.i_sb, 'ext4_rename', 'source entry vanished', { ino: oldDir.i_ino });
    await ext4_delete_entry(handle, oldDir, again);
    old.i_ctime = current_time(old);
    await ext4_mark_inode_dirty(handle, old);
    if (target) {
      target.i_ctime = current_time(target);
      ext4_dec_count(target);
      if ((target.i_mode & S_IFMT) === S_IFDIR) { clear_nlink(target); target.i_size = 0; }
      if (target.i_nlink === 0) await ext4_orphan_add(handle, target);
      await ext4_mark_inode_dirty(handle, target);
    }
    if (oldIsDir && oldDir !== newDir) {
      await ext4_set_dotdot(handle, old, newDir);
      ext4_dec_count(oldDir);
      if (!target) ext4_inc_count(newDir);
    } else if (oldIsDir && target && (target.i_mode & S_IFMT) === S_IFDIR) {
      /* same parent, replaced an empty directory: the parent lost one subdirectory */
      ext4_dec_count(newDir);
    }
    await ext4_touch_dir(handle, oldDir);
    if (newDir !== oldDir) await ext4_touch_dir(handle, newDir);
  } finally { await ext4_journal_stop(handle); }
}

/* ---- htree insertion (make_indexed_dir, ext4_dx_add_entry, do_split, dx_insert_block) ---- */

/**
 * make_indexed_dir: a one-block directory whose block is full becomes an htree, as Linux
 * does it: its entries after ".." move to a new block 1, block 0 becomes the dx root (the
 * "." and ".." records, the root info with the filesystem's default hash, one index entry
 * for block 1), and block 1 is split at once with the new name (do_split), leaving a
 * root and two leaves.
 */
async function make_indexed_dir(handle: handle_t, dir: ext4_inode_info, name: Uint8Array, ino: number, ftype: number): Promise<void> {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const bs = sbi.s_blocksize;
  const bh0 = await ext4_dirblock_bh(dir, 0);
  if (!bh0) throw ext4_error(sb, 'make_indexed_dir', 'directory has no block 0', { ino: dir.i_ino });
  try {
    const buf = bh0.b_data;
    const dot = ext4_dir_entry_decode(buf, 0, bs);
    const dotdot = ext4_dir_entry_decode(buf, dot.rec_len, bs);
    if (dot.name_len !== 1 || dot.name[0] !== 0x2e || dotdot.name_len !== 2 || dotdot.name[0] !== 0x2e || dotdot.name[1] !== 0x2e)
      throw ext4_error(sb, 'make_indexed_dir', 'invalid "." or ".." in block 0', { ino: dir.i_ino, block: bh0.b_blocknr });
    const onDiskVersion = sbi.s_def_hash_version;
    const hashVersion = dx_hash_version(dir, onDiskVersion);
    const size = ext4_usable_size(dir);
    const start = dot.rec_len + dotdot.rec_len;
    // The records after "..", as a block of their own (the offsets shift by `start`).
    const map = start < size ? dx_make_map_range(dir, buf, start, size, bh0.b_blocknr, hashVersion) : [];
    const { bh: bh1, lblk } = await ext4_append(handle, dir);
    try {
      if (lblk !== 1) throw ext4_error(sb, 'make_indexed_dir', `new block is ${lblk}, not 1`, { ino: dir.i_ino });
      await ext4_journal_get_write_access(handle, sb, bh0);
      dx_fill_leaf(dir, bh1.b_data, map);
      dx_root_init(buf, bs, dir.i_ino, dotdot.inode, onDiskVersion);
      buf.fill(0, DX_ROOT_COUNT_OFFSET);
      buf[7] = dot.file_type;
      buf[12 + 7] = dotdot.file_type;
      dx_countlimit_encode({ limit: dx_root_limit(bs, !!sbi.s_csum?.metadata_csum), count: 1 }, buf, DX_ROOT_COUNT_OFFSET);
      put_le32(buf, DX_ROOT_COUNT_OFFSET + 4, 1);
      dir.i_ext4_flags |= EXT4_INDEX_FL;
      await ext4_handle_dirty_dirblock(handle, dir, bh1);
      await ext4_handle_dirty_dx_node(handle, dir, bh0);
      await ext4_mark_inode_dirty(handle, dir);
      const h = ext4fs_dirhash(name, hashVersion, sbi.s_hash_seed);
      if (!h) throw ext4_error(sb, 'make_indexed_dir', `unknown hash version ${onDiskVersion}`, { ino: dir.i_ino });
      const frame: DxWriteFrame = { bh: bh0, lblk: 0, at: DX_ROOT_COUNT_OFFSET, idx: 0 };
      await do_split(handle, dir, bh1, frame, h.hash >>> 0, hashVersion, name, ino, ftype);
    } finally { brelse(bh1); }
  } finally { brelse(bh0); }
}

/** dx_make_map over the records in [from, to) of a block. */
function dx_make_map_range(dir: ext4_inode_info, buf: Uint8Array, from: number, to: number, pblk: number, hashVersion: number): DxMapEntry[] {
  const view = new Uint8Array(to - from);
  view.set(buf.subarray(from, to));
  const map = dx_make_map(dir, view, to - from, pblk, hashVersion);
  // Linux copies the records to the new block as they are and stretches the final one to
  // the block's end: when that one is live, its size grows by what "." and ".." took.
  const bs = EXT4_SB(dir.i_sb).s_blocksize;
  let off = 0, finalOff = 0;
  while (off < to - from) { finalOff = off; off += ext4_rec_len_from_disk(le16(view, off + 4), bs); }
  if (map.length && le32(view, finalOff) !== 0) map[map.length - 1]!.size += from;
  return map;
}

/** ext4_dir_htree_level: levels of index a tree may have (root included). */
function ext4_dir_htree_level(dir: ext4_inode_info): number {
  return EXT4_SB(dir.i_sb).has_incompat(EXT4_FEATURE_INCOMPAT_LARGEDIR) ? EXT4_HTREE_LEVEL : EXT4_HTREE_LEVEL_COMPAT;
}

/** One index level of the write path: the live buffer of the index block, its entries and the chosen slot. */
interface DxWriteFrame { bh: buffer_head; lblk: number; at: number; idx: number }

function dx_frame_count(f: DxWriteFrame): dx_countlimit {
  return dx_countlimit_decode(f.bh.b_data, f.at);
}

/**
 * The frames dx_probe chose (read from checked copies), as live buffers for writing. The
 * live block must be the one that was checked: anything else means the cache moved under us.
 */
async function dx_write_frames(dir: ext4_inode_info, probed: DxFrame[]): Promise<DxWriteFrame[]> {
  const out: DxWriteFrame[] = [];
  try {
    let lblk = 0;
    for (const f of probed) {
      const bh = await ext4_dirblock_bh(dir, lblk);
      if (!bh) throw ext4_error(dir.i_sb, 'ext4_dx_add_entry', `Directory hole found for htree index block ${lblk}`, { ino: dir.i_ino });
      out.push({ bh, lblk, at: f.at, idx: f.idx });
      const cl = dx_countlimit_decode(bh.b_data, f.at);
      if (cl.count !== f.count || cl.limit !== dx_countlimit_decode(f.buf, f.at).limit)
        throw ext4_error(dir.i_sb, 'ext4_dx_add_entry', `htree index block ${lblk} changed under us`, { ino: dir.i_ino });
      lblk = dx_entry_decode(f.buf, f.at, f.idx).block & DX_BLOCK_MASK; // bits32: a le32 field
    }
    return out;
  } catch (e) {
    for (const f of out) brelse(f.bh);
    throw e;
  }
}

/** dx_insert_block: a new {hash, block} right after the frame's chosen entry. The caller checked count < limit. */
function dx_insert_block(f: DxWriteFrame, hash: number, block: number): void {
  const buf = f.bh.b_data;
  const cl = dx_countlimit_decode(buf, f.at);
  if (cl.count >= cl.limit) throw new Error('dx_insert_block: index block full');
  const pos = f.idx + 1;
  const from = f.at + DX_ENTRY_SIZE * pos;
  buf.copyWithin(from + DX_ENTRY_SIZE, from, f.at + DX_ENTRY_SIZE * cl.count);
  dx_entry_encode({ hash: hash >>> 0, block }, buf, f.at, pos);
  dx_countlimit_encode({ limit: cl.limit, count: cl.count + 1 }, buf, f.at);
}

/** One live entry of a leaf, as do_split's map holds it (dx_map_entry plus the record). */
interface DxMapEntry {
  hash: number; minor: number; ino: number; ftype: number; name: Uint8Array;
  /** The record's rec_len where it was (dx_map_entry.size): the split balances on it, as Linux. */
  size: number;
}

/** dx_make_map: the live entries of a leaf with their hashes. */
function dx_make_map(dir: ext4_inode_info, buf: Uint8Array, size: number, pblk: number, hashVersion: number): DxMapEntry[] {
  const sbi = EXT4_SB(dir.i_sb);
  const bs = sbi.s_blocksize;
  const map: DxMapEntry[] = [];
  let off = 0;
  while (off < size) {
    const why = ext4_check_dir_entry(buf, off, size, bs, sbi.s_es.s_inodes_count);
    if (why) throw ext4_error(dir.i_sb, 'dx_make_map', `bad entry in directory: ${why} - offset=${off}`, { ino: dir.i_ino, block: pblk });
    const de = ext4_dir_entry_decode(buf, off, bs);
    if (de.inode !== 0) {
      const name = de.name.slice();
      const h = ext4fs_dirhash(name, hashVersion, sbi.s_hash_seed);
      if (!h) throw new DxFallback();
      map.push({ hash: h.hash >>> 0, minor: h.minor_hash >>> 0, ino: de.inode, ftype: de.file_type, name, size: de.rec_len });
    }
    off += de.rec_len;
  }
  return map;
}

/** Bytes the entries need packed (each at its minimal rec_len). */
function dx_map_bytes(map: DxMapEntry[]): number {
  let n = 0;
  for (const e of map) n += ext4_dir_rec_len(e.name.length);
  return n;
}

/**
 * A leaf rebuilt from `map`: records packed from the start, the last one's rec_len running
 * to the end of the usable space, and the checksum tail (dx_move_dirents + dx_pack_dirents).
 */
function dx_fill_leaf(dir: ext4_inode_info, buf: Uint8Array, map: DxMapEntry[]): void {
  const bs = EXT4_SB(dir.i_sb).s_blocksize;
  const size = ext4_usable_size(dir);
  ext4_init_leaf(dir, buf);
  let off = 0;
  for (let i = 0; i < map.length; i++) {
    const e = map[i]!;
    const need = ext4_dir_rec_len(e.name.length);
    const rec = i === map.length - 1 ? size - off : need;
    if (rec < need || off + rec > size) throw new Error('dx_fill_leaf: entries do not fit');
    ext4_dir_entry_encode({ inode: e.ino, rec_len: rec, name_len: e.name.length, file_type: e.ftype, name: e.name }, buf, off, bs);
    off += rec;
  }
}

/**
 * do_split: the full leaf `bh` is split in hash order into a new block, the upper part moved
 * so that neither block is more than half full; the new block's index entry goes in right
 * after the leaf's, its hash the first moved entry's (with the continuation bit when the
 * last kept entry has the same hash). The new name is added to the half its hash belongs to.
 * Everything is checked to fit before anything is written.
 */
async function do_split(handle: handle_t, dir: ext4_inode_info, bh: buffer_head, frame: DxWriteFrame, hash: number,
  hashVersion: number, name: Uint8Array, ino: number, ftype: number): Promise<void> {
  const size = ext4_usable_size(dir);
  const map = dx_make_map(dir, bh.b_data, size, bh.b_blocknr, hashVersion);
  const count = map.length;
  if (count < 2)
    throw ext4_error(dir.i_sb, 'do_split', `full leaf block ${bh.b_blocknr} has ${count} live entries`, { ino: dir.i_ino });
  map.sort((a, b) => a.hash - b.hash || a.minor - b.minor);
  // Move from the top while more than half of the next entry still falls in the upper half.
  let moved = 0, move = 0, i = count - 1;
  for (; i >= 0; i--) {
    const sz = map[i]!.size;
    if (moved + sz / 2 > EXT4_SB(dir.i_sb).s_blocksize / 2) break;
    moved += sz;
    move++;
  }
  const split = i > 0 ? count - move : Math.floor(count / 2);
  const hash2 = map[split]!.hash;
  const continued = map[split - 1]!.hash === hash2 ? 1 : 0;
  const lower = map.slice(0, split), upper = map.slice(split);
  const entry: DxMapEntry = { hash, minor: 0, ino, ftype, name, size: ext4_dir_rec_len(name.length) };
  (hash >= hash2 ? upper : lower).push(entry);
  if (dx_map_bytes(lower) > size || dx_map_bytes(upper) > size)
    throw ext4_error(dir.i_sb, 'do_split', `cannot split leaf block ${bh.b_blocknr}: the halves do not fit`, { ino: dir.i_ino });
  if (dx_frame_count(frame).count >= dx_frame_count(frame).limit)
    throw ext4_error(dir.i_sb, 'do_split', `index block ${frame.lblk} is full`, { ino: dir.i_ino });

  const { bh: bh2, lblk: newblock } = await ext4_append(handle, dir);
  try {
    await ext4_mark_inode_dirty(handle, dir);
    await ext4_journal_get_write_access(handle, dir.i_sb, bh);
    await ext4_journal_get_write_access(handle, dir.i_sb, frame.bh);
    dx_fill_leaf(dir, bh.b_data, lower);
    dx_fill_leaf(dir, bh2.b_data, upper);
    dx_insert_block(frame, hash2 + continued, newblock);
    await ext4_handle_dirty_dirblock(handle, dir, bh2);
    await ext4_handle_dirty_dirblock(handle, dir, bh);
    await ext4_handle_dirty_dx_node(handle, dir, frame.bh);
  } finally { brelse(bh2); }
}

/**
 * The bottom index block is full: split the highest full block below one with room, moving
 * its upper half of entries to a new index block whose {hash, block} goes into the parent;
 * or, when every level up to the root is full, move the root's entries into a new index
 * block and leave the root pointing to it (a level more). ENOSPC when the tree is as deep
 * as it may be.
 */
async function dx_grow_index(handle: handle_t, dir: ext4_inode_info, frames: DxWriteFrame[]): Promise<void> {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const bs = sbi.s_blocksize;
  const csum = !!sbi.s_csum?.metadata_csum;
  let f = frames.length - 1;
  let addLevel = true;
  while (f > 0) {
    const up = dx_frame_count(frames[f - 1]!);
    if (up.count < up.limit) { addLevel = false; break; }
    f--;
  }
  if (addLevel && frames.length >= ext4_dir_htree_level(dir)) {
    // Linux's words since largedir (before it: "Directory index full!").
    ext4_warning(sb, 'ext4_dx_add_entry', `Directory (ino: ${dir.i_ino}) index full, reach max htree level :${frames.length}`);
    if (ext4_dir_htree_level(dir) < EXT4_HTREE_LEVEL)
      ext4_warning(sb, 'ext4_dx_add_entry', 'Large directory feature is not enabled on this filesystem');
    throw err(ENOSPC);
  }
  const frame = frames[f]!;
  const buf = frame.bh.b_data;
  const { count: icount } = dx_frame_count(frame);
  const nodeLimit = dx_node_limit(bs, csum);
  const { bh: bh2, lblk: newblock } = await ext4_append(handle, dir);
  try {
    await ext4_mark_inode_dirty(handle, dir);
    const buf2 = bh2.b_data;
    dx_node_init(buf2, bs);
    await ext4_journal_get_write_access(handle, sb, frame.bh);
    if (!addLevel) {
      const parent = frames[f - 1]!;
      await ext4_journal_get_write_access(handle, sb, parent.bh);
      const icount1 = Math.floor(icount / 2), icount2 = icount - icount1;
      const hash2 = dx_entry_decode(buf, frame.at, icount1).hash;
      buf2.set(buf.subarray(frame.at + DX_ENTRY_SIZE * icount1, frame.at + DX_ENTRY_SIZE * icount), DX_NODE_COUNT_OFFSET);
      dx_countlimit_encode({ limit: nodeLimit, count: icount2 }, buf2, DX_NODE_COUNT_OFFSET);
      const lim = dx_frame_count(frame).limit;
      buf.fill(0, frame.at + DX_ENTRY_SIZE * icount1, frame.at + DX_ENTRY_SIZE * icount);
      dx_countlimit_encode({ limit: lim, count: icount1 }, buf, frame.at);
      dx_insert_block(parent, hash2, newblock);
      await ext4_handle_dirty_dx_node(handle, dir, bh2);
      await ext4_handle_dirty_dx_node(handle, dir, frame.bh);
      await ext4_handle_dirty_dx_node(handle, dir, parent.bh);
    } else {
      // frame is the root: its entries move down into the new node.
      buf2.set(buf.subarray(frame.at, frame.at + DX_ENTRY_SIZE * icount), DX_NODE_COUNT_OFFSET);
      dx_countlimit_encode({ limit: nodeLimit, count: icount }, buf2, DX_NODE_COUNT_OFFSET);
      const lim = dx_frame_count(frame).limit;
      buf.fill(0, frame.at + DX_ENTRY_SIZE, frame.at + DX_ENTRY_SIZE * icount);
      dx_countlimit_encode({ limit: lim, count: 1 }, buf, frame.at);
      dx_entry_encode({ hash: 0, block: newblock }, buf, frame.at, 0);
      const info = dx_root_info_decode(buf, 0);
      dx_root_info_encode({ ...info, indirect_levels: info.indirect_levels + 1 }, buf, 0);
      await ext4_handle_dirty_dx_node(handle, dir, bh2);
      await ext4_handle_dirty_dx_node(handle, dir, frame.bh);
    }
  } finally { brelse(bh2); }
}

/**
 * ext4_dx_add_entry: find the leaf for the name's hash and add there; a full leaf is split
 * in hash order into a new block whose index entry is inserted after the old one (do_split);
 * a full index node is split, or the tree grows a level, as Linux's ext4_dx_add_entry does.
 * After an index change the path is probed again (Linux's restart).
 */
async function ext4_dx_add_entry(handle: handle_t, dir: ext4_inode_info, name: Uint8Array, ino: number, ftype: number): Promise<void> {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const size = ext4_usable_size(dir);
  // Each pass either adds the entry or grows the index by one block; a path has at most
  // EXT4_HTREE_LEVEL index blocks, so a few passes always suffice.
  for (let pass = 0; pass <= 2 * EXT4_HTREE_LEVEL + 1; pass++) {
    const r = await dx_root(dir);
    const h = ext4fs_dirhash(name, r.hashVersion, sbi.s_hash_seed);
    if (!h) throw new DxFallback();
    const hash = h.hash >>> 0;
    const probed = await dx_probe(dir, hash, r);
    const leaf = await ext4_read_dirblock(dir, probed.leaf, 'leaf');
    if (!leaf) throw ext4_error(sb, 'ext4_dx_add_entry', `Directory hole found for htree leaf block ${probed.leaf}`, { ino: dir.i_ino });
    const frames = await dx_write_frames(dir, probed.frames);
    try {
      const bh = await ext4_sb_bread_bh(sb, leaf.pblk, 'ext4_dx_add_entry', dir.i_ino);
      try {
        await ext4_journal_get_write_access(handle, sb, bh);
        if (add_dirent_to_buf(dir, bh.b_data, size, leaf.pblk, name, ino, ftype)) {
          await ext4_handle_dirty_dirblock(handle, dir, bh);
          await ext4_touch_dir(handle, dir);
          return;
        }
        const bottom = frames[frames.length - 1]!;
        const cl = dx_frame_count(bottom);
        if (cl.count < cl.limit) {
          await do_split(handle, dir, bh, bottom, hash, r.hashVersion, name, ino, ftype);
          await ext4_touch_dir(handle, dir);
          return;
        }
        await dx_grow_index(handle, dir, frames);
      } finally { brelse(bh); }
    } finally { for (const f of frames) brelse(f.bh); }
  }
  throw ext4_error(sb, 'ext4_dx_add_entry', 'htree insertion did not settle', { ino: dir.i_ino });
}

export const ext4_dir_inode_operations: inode_operations = {
  lookup: ext4_lookup,
  create: ext4_create, link: ext4_link, unlink: ext4_unlink, symlink: ext4_symlink, mkdir: ext4_mkdir, rmdir: ext4_rmdir,
  mknod: ext4_mknod, rename: ext4_rename,
  getattr: ext4_getattr,
  setattr: ext4_setattr,
  listxattr: ext4_listxattr,
  get_inode_acl: ext4_get_acl,
  set_acl: ext4_set_acl_op,
  fileattr_get: ext4_fileattr_get,
  fileattr_set: ext4_fileattr_set,
};

export const ext4_special_inode_operations: inode_operations = {
  getattr: ext4_getattr,
  setattr: ext4_setattr,
  listxattr: ext4_listxattr,
  get_inode_acl: ext4_get_acl,
  set_acl: ext4_set_acl_op,
};
