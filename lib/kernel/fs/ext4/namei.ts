/*
 * Glue between the VFS and ext4's directories (fs/ext4/namei.c): name lookup, linear and
 * through the htree index (dx_probe, ext4_htree_next_block for hash collisions), and the
 * inode operation tables of directories and special files. All knowledge of the entry
 * layout is in dir.ts. Modifying operations fail with EROFS until the write side exists.
 */
import type { Dentry, Inode, inode_operations } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { ENAMETOOLONG, EROFS, ESTALE } from '../../include/uapi.js';
import {
  DX_HASH_TEA, DX_ROOT_INFO_OFFSET, DX_NODE_COUNT_OFFSET, EXT4_FEATURE_INCOMPAT_LARGEDIR,
  EXT4_NAME_LEN, EXT4_ROOT_INO, dx_countlimit_decode, dx_entry_decode, dx_node_check,
  dx_root_check, dx_root_info_decode, ext4_dir_entry_decode, ext4_rec_len_from_disk,
  EXT4_INLINE_DATA_FL,
} from './layout.js';
import { ext4fs_dirhash } from './hash.js';
import { EXT4_I, EXT4_SB, type Ext4Inode } from './ext4.js';
import { ext4_error, ext4_warning } from './errors.js';
import { ext4_iget, ext4_getattr, ext4_setattr } from './inode.js';
import { DxFallback, dir_blocks, ext4_read_dirblock, ext4_walk_dirblock, is_dx } from './dir.js';
import { ext4_inline_dir_view } from './inline.js';
import { ext4_listxattr } from './xattr.js';

/** The hash version of an htree, with the unsigned-char offset the superblock asks for. */
export function dx_hash_version(dir: Ext4Inode, rootVersion: number): number {
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
async function dx_root(dir: Ext4Inode): Promise<{ buf: Uint8Array; at: number; levels: number; hashVersion: number; dotdot: number }> {
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

async function dx_node(dir: Ext4Inode, lblk: number): Promise<{ buf: Uint8Array; at: number }> {
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

function dx_block_of(dir: Ext4Inode, buf: Uint8Array, at: number, i: number): number {
  const b = dx_entry_decode(buf, at, i).block & DX_BLOCK_MASK; // bits32: a le32 field
  if (b >= dir_blocks(dir)) {
    ext4_warning(dir.i_sb, 'dx_probe', `inode #${dir.i_ino}: dx entry: block ${b} beyond i_size`);
    throw new DxFallback();
  }
  return b;
}

/** dx_probe: the path of index frames leading to the leaf that holds `hash`. */
async function dx_probe(dir: Ext4Inode, hash: number, root?: Awaited<ReturnType<typeof dx_root>>): Promise<{ frames: DxFrame[]; leaf: number }> {
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
async function ext4_htree_next_block(dir: Ext4Inode, hash: number, frames: DxFrame[]): Promise<number> {
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
export async function dx_leaf_blocks(dir: Ext4Inode): Promise<{ leaves: number[]; hashVersion: number; dotdot: number }> {
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
 * entry that matches; a record whose length cannot be followed sends the block to the
 * checked walk, which reports the corruption by name.
 */
async function search_dirblock(dir: Ext4Inode, lblk: number, name: string): Promise<number> {
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
      if (i === len) return searchChecked(dir, blk.buf, blk.pblk, name);
    }
    off += recLen;
  }
  return 0;
}

/** The checked walk over one block: the inode number of `name` or 0; throws on corruption. */
function searchChecked(dir: Ext4Inode, buf: Uint8Array, pblk: number, name: string): number {
  let found = 0;
  ext4_walk_dirblock(dir, buf, EXT4_SB(dir.i_sb).s_blocksize, pblk, (de) => {
    if (de.name === name) { found = de.ino; return false; }
  });
  return found;
}

/** ext4_dx_find_entry. Throws DxFallback when the index is unusable. */
async function ext4_dx_find_entry(dir: Ext4Inode, name: string): Promise<number> {
  const r = await dx_root(dir);
  const h = ext4fs_dirhash(nameBytes(name), r.hashVersion, EXT4_SB(dir.i_sb).s_hash_seed);
  if (!h) throw new DxFallback();
  const { frames, leaf } = await dx_probe(dir, h.hash, r);
  let blk = leaf;
  for (;;) {
    const ino = await search_dirblock(dir, blk, name);
    if (ino) return ino;
    blk = await ext4_htree_next_block(dir, h.hash, frames);
    if (blk < 0) return 0;
  }
}

/** ext4_find_entry: the inode number `name` refers to in `dir`, or 0. */
export async function ext4_find_entry(dir: Ext4Inode, name: string): Promise<number> {
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
function ext4_valid_inum(dir: Ext4Inode, ino: number): boolean {
  const sbi = EXT4_SB(dir.i_sb);
  return ino === EXT4_ROOT_INO || (ino >= sbi.s_first_ino && ino <= sbi.s_es.s_inodes_count);
}

/** ext4_lookup. */
export async function ext4_lookup(dirI: Inode, dentry: Dentry, _flags: number): Promise<Inode | null> {
  const dir = EXT4_I(dirI);
  const ino = await ext4_find_entry(dir, dentry.d_name);
  if (!ino) return null;
  if (!ext4_valid_inum(dir, ino))
    throw ext4_error(dir.i_sb, 'ext4_lookup', `bad inode number: ${ino}`, { ino: dir.i_ino });
  try {
    return await ext4_iget(dir.i_sb, ino);
  } catch (e) {
    if ((e as { errno?: number }).errno === ESTALE)
      throw ext4_error(dir.i_sb, 'ext4_lookup', `deleted inode referenced: ${ino}`, { ino: dir.i_ino });
    throw e;
  }
}

/** ext4_get_parent (for the VFS's ".." of a disconnected dentry). */
export async function ext4_get_parent(dir: Ext4Inode): Promise<Ext4Inode> {
  const ino = await ext4_find_entry(dir, '..');
  if (!ino || !ext4_valid_inum(dir, ino))
    throw ext4_error(dir.i_sb, 'ext4_get_parent', `bad parent inode number: ${ino}`, { ino: dir.i_ino });
  return ext4_iget(dir.i_sb, ino);
}

async function rofs(): Promise<never> { throw err(EROFS); }

export const ext4_dir_inode_operations: inode_operations = {
  lookup: ext4_lookup,
  create: rofs, link: rofs, unlink: rofs, symlink: rofs, mkdir: rofs, rmdir: rofs, mknod: rofs,
  rename: rofs, tmpfile: rofs,
  getattr: ext4_getattr,
  setattr: ext4_setattr,
  listxattr: ext4_listxattr,
};

export const ext4_special_inode_operations: inode_operations = {
  getattr: ext4_getattr,
  setattr: ext4_setattr,
  listxattr: ext4_listxattr,
};

