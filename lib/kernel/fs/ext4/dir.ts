/*
 * Directories on disk (fs/ext4/dir.c and the block-reading half of namei.c): reading
 * directory blocks with their checksums (ext4_read_dirblock), walking ext4_dir_entry_2
 * records with ext4_check_dir_entry's checks, and readdir for the three layouts:
 *  - linear directories: positions are byte offsets in the directory, as Linux;
 *  - htree directories (EXT4_INDEX_FL): entries come in hash order and positions are hash
 *    cookies. Linux's 64-bit cookie is (major >> 1) << 32 | minor; a JS number keeps 53
 *    bits, so ours is (major >> 1) * 2^21 + (minor >> 11) (31 + 21 bits, < 2^52) and the
 *    end-of-directory cookie is 2^52. Cookies keep the hash order, so telldir/seekdir work;
 *    names whose 52 hash bits collide get the next free cookie, so a resume never repeats.
 *    (Linux also hashes single-block directories on dir_index filesystems; we use byte
 *    offsets for every directory without EXT4_INDEX_FL.)
 *  - inline directories: "." at 0, ".." at 12, entries at Linux's inline offsets.
 * All knowledge of the directory layout is here; namei.ts is the glue to the VFS.
 */
import type { dir_context, file, file_operations } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  DT_BLK, DT_CHR, DT_DIR, DT_FIFO, DT_LNK, DT_REG, DT_SOCK, DT_UNKNOWN, EINVAL, SEEK_CUR, SEEK_END,
  SEEK_SET, EISDIR,
} from '../../include/uapi.js';
import { bytesToBstr } from '../../lib/bstr.js';
import {
  EXT4_FEATURE_COMPAT_DIR_INDEX, EXT4_FEATURE_INCOMPAT_FILETYPE, EXT4_INDEX_FL,
  EXT4_INLINE_DATA_FL, ext4_check_dir_entry, ext4_dir_entry_decode, le16, le32,
  ext4_rec_len_from_disk, EXT4_FT_MAX,
} from './layout.js';
import { ext4_dirblock_csum_verify, ext4_dx_csum_verify } from './csum.js';
import { EXT4_I, EXT4_SB, type ext4_inode_info } from './ext4.js';
import { ext4_csum_error, ext4_error } from './errors.js';
import { ext4_sb_bread } from './super.js';
import { ext4_map_blocks } from './inode.js';
import { page_cache_sync_readahead, ra_has_index } from '../../mm/filemap.js';
import { PAGE_SIZE } from '../../mm/page_alloc.js';
import type { block_device } from '../../include/blk.js';
import { ext4_force_commit } from './ext4_jbd2.js';
import { ext4_inline_dir_view, INLINE_DOTDOT_OFFSET } from './inline.js';
import { ext4fs_dirhash } from './hash.js';
import { dx_leaf_blocks } from './namei.js';
import { ext4_ioctl } from './ioctl.js';

/** ext4_filetype_table: on-disk file type → d_type. */
const FILETYPE_TABLE = [DT_UNKNOWN, DT_REG, DT_DIR, DT_CHR, DT_BLK, DT_FIFO, DT_SOCK, DT_LNK];
export function ext4_get_dtype(inode: ext4_inode_info, ft: number): number {
  if (!EXT4_SB(inode.i_sb).has_incompat(EXT4_FEATURE_INCOMPAT_FILETYPE) || ft >= EXT4_FT_MAX) return DT_UNKNOWN;
  return FILETYPE_TABLE[ft];
}

/** is_dx: an htree directory (dir_index feature and EXT4_INDEX_FL). */
export function is_dx(dir: ext4_inode_info): boolean {
  return EXT4_SB(dir.i_sb).has_compat(EXT4_FEATURE_COMPAT_DIR_INDEX) && (dir.i_ext4_flags & EXT4_INDEX_FL) !== 0 &&
    !(dir.i_ext4_flags & EXT4_INLINE_DATA_FL);
}

export type DirblockType = 'leaf' | 'index' | 'any';

/**
 * ext4_read_dirblock: logical block `lblk` of a directory, checksum verified (leaf blocks by
 * their tail, index blocks by their dx tail). Returns null for a hole; `pblk` is reported.
 * With `ra` (readdir's open file), the device is read ahead around the block first.
 */
export async function ext4_read_dirblock(dir: ext4_inode_info, lblk: number, type: DirblockType, ra: file | null = null):
  Promise<{ buf: Uint8Array; pblk: number } | null> {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const m = await ext4_map_blocks(dir, lblk, 1);
  if (m.pblk === 0 || m.unwritten) {
    if (type === 'index')
      throw ext4_error(sb, 'ext4_read_dirblock', `Directory hole found for htree index block ${lblk}`, { ino: dir.i_ino });
    return null;
  }
  if (ra) await ext4_dir_readahead(ra, dir, m.pblk);
  const buf = await ext4_sb_bread(sb, m.pblk, '__ext4_read_dirblock', dir.i_ino);
  const ctx = sbi.s_csum;
  if (ctx?.metadata_csum && !sbi.s_dirblock_verified.has(m.pblk)) {
    if (type === 'index') {
      if (!ext4_dx_csum_verify(ctx, dir.i_csum_seed, buf, 0))
        throw ext4_csum_error(sb, '__ext4_read_dirblock', `block ${m.pblk}: Directory index failed checksum`, { ino: dir.i_ino });
    } else if (type === 'leaf') {
      if (!ext4_dirblock_csum_verify(ctx, dir.i_csum_seed, buf, 0))
        throw ext4_csum_error(sb, '__ext4_read_dirblock', `block ${m.pblk}: Directory block failed checksum`, { ino: dir.i_ino });
    }
    // 'any' reads skip verification: only a verified leaf or index block is remembered.
    if (type !== 'any') sbi.s_dirblock_verified.add(m.pblk);
  }
  return { buf, pblk: m.pblk };
}

/** One live directory entry. `off` is its byte offset inside the walked area. */
export interface DirEnt { ino: number; name: string; file_type: number; off: number; rec_len: number }

/**
 * Walk the records of one block (or inline area) of `size` bytes, checking each as
 * ext4_check_dir_entry does. `fn` sees live entries (inode != 0); returning false stops.
 * Throws EFSCORRUPTED through ext4_error on the first bad record.
 */
export function ext4_walk_dirblock(dir: ext4_inode_info, buf: Uint8Array, size: number, pblk: number,
  fn: (de: DirEnt) => boolean | void, startOff = 0): void {
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const bs = sbi.s_blocksize;
  let off = startOff;
  while (off < size) {
    const why = ext4_check_dir_entry(buf, off, size, bs, sbi.s_es.s_inodes_count);
    if (why) {
      throw ext4_error(sb, 'ext4_readdir', `bad entry in directory: ${why} - offset=${off}, inode=${off + 4 <= size ? le32(buf, off) : 0}, rec_len=${off + 6 <= size ? ext4_rec_len_from_disk(le16(buf, off + 4), bs) : 0}, size=${size} fake=0`,
        { ino: dir.i_ino, block: pblk });
    }
    const de = ext4_dir_entry_decode(buf, off, bs);
    if (de.inode !== 0) {
      if (fn({ ino: de.inode, name: bytesToBstr(de.name), file_type: de.file_type, off, rec_len: de.rec_len }) === false) return;
    }
    off += de.rec_len;
  }
}

/** Number of blocks a directory spans (i_size must be block aligned for block dirs). */
export function dir_blocks(dir: ext4_inode_info): number {
  return Math.ceil(dir.i_size / EXT4_SB(dir.i_sb).s_blocksize);
}

/* ---- readdir ---- */

export const EXT4_HTREE_EOF_COOKIE = 2 ** 52;
export function hash2pos(major: number, minor: number): number {
  return (major >>> 1) * 2 ** 21 + (minor >>> 11);
}

interface DxDirInfo { entries: { pos: number; name: string; ino: number; dtype: number }[] }

/**
 * ext4_readdir's read-ahead: before a directory block is read, the block device's pages
 * around it are read ahead with the directory file's read-ahead state, as Linux's
 * ext4_readdir does (page_cache_sync_readahead on sb->s_bdev's mapping). A walk of many
 * small directories whose blocks lie near each other then finds most of them cached.
 */
async function ext4_dir_readahead(file: file, dir: ext4_inode_info, pblk: number): Promise<void> {
  const bdev = dir.i_sb.s_bdev as block_device | null;
  if (!bdev) return;
  const index = Math.floor(pblk * EXT4_SB(dir.i_sb).s_blocksize / PAGE_SIZE);
  if (!ra_has_index(file, index)) await page_cache_sync_readahead(bdev.bd_inode.i_mapping, file, index, 1);
}

async function ext4_readdir_linear(file: file, dir: ext4_inode_info, ctx: dir_context): Promise<void> {
  const sb = dir.i_sb;
  const bs = EXT4_SB(sb).s_blocksize;
  while (ctx.pos < dir.i_size) {
    const lblk = Math.floor(ctx.pos / bs);
    const inBlk = ctx.pos % bs;
    let blk: { buf: Uint8Array; pblk: number } | null;
    try {
      blk = await ext4_read_dirblock(dir, lblk, 'leaf', file);
    } catch (e) {
      // A bad block is reported (by ext4_read_dirblock) and skipped, as Linux's readdir does.
      if ((e as { errno?: number }).errno === 74 || (e as { errno?: number }).errno === 117) {
        ctx.pos = (lblk + 1) * bs;
        continue;
      }
      throw e;
    }
    if (!blk) { ctx.pos = (lblk + 1) * bs; continue; }
    // Resynchronise: start at the first record at or after the position (the block may
    // have changed since the position was handed out).
    let startOff = 0;
    {
      let o = 0;
      while (o < inBlk && o + 8 <= bs) {
        const rl = ext4_rec_len_from_disk(le16(blk.buf, o + 4), bs);
        if (rl < 12) break;
        o += rl;
      }
      startOff = o;
    }
    let full = false;
    try {
      ext4_walk_dirblock(dir, blk.buf, bs, blk.pblk, (de) => {
        const pos = lblk * bs + de.off;
        ctx.pos = pos;
        if (!ctx.emit(de.name, de.ino, ext4_get_dtype(dir, de.file_type))) { full = true; return false; }
        ctx.pos = pos + de.rec_len;
      }, startOff);
    } catch (e) {
      if ((e as { errno?: number }).errno !== 117) throw e;
      if (full) return;
      ctx.pos = (lblk + 1) * bs; // error reported; skip the rest of the block
      continue;
    }
    if (full) return;
    ctx.pos = (lblk + 1) * bs;
  }
}

async function ext4_readdir_inline(dir: ext4_inode_info, ctx: dir_context): Promise<void> {
  const view = await ext4_inline_dir_view(dir);
  if (ctx.pos === 0) {
    if (!ctx.emit('.', dir.i_ino, DT_DIR)) return;
    ctx.pos = INLINE_DOTDOT_OFFSET;
  }
  if (ctx.pos <= INLINE_DOTDOT_OFFSET) {
    if (!ctx.emit('..', view.parent, DT_DIR)) return;
    ctx.pos = view.areas[0].pos;
  }
  for (const area of view.areas) {
    const end = area.pos + area.size;
    if (ctx.pos >= end) continue;
    let full = false;
    ext4_walk_dirblock(dir, area.buf, area.size, 0, (de) => {
      const pos = area.pos + de.off;
      if (pos < ctx.pos) return;
      ctx.pos = pos;
      if (!ctx.emit(de.name, de.ino, ext4_get_dtype(dir, de.file_type))) { full = true; return false; }
      ctx.pos = pos + de.rec_len;
    });
    if (full) return;
    ctx.pos = end;
  }
}

/** ext4_htree_fill_tree + call_filldir: every entry, sorted by (hash, minor hash). */
async function ext4_dx_fill(dir: ext4_inode_info): Promise<DxDirInfo> {
  const sbi = EXT4_SB(dir.i_sb);
  const { leaves, hashVersion, dotdot } = await dx_leaf_blocks(dir);
  const list: { major: number; minor: number; name: string; ino: number; dtype: number }[] = [];
  list.push({ major: 0, minor: 0, name: '.', ino: dir.i_ino, dtype: DT_DIR });
  list.push({ major: 2, minor: 0, name: '..', ino: dotdot, dtype: DT_DIR });
  for (const lblk of leaves) {
    const blk = await ext4_read_dirblock(dir, lblk, 'leaf');
    if (!blk) continue;
    ext4_walk_dirblock(dir, blk.buf, sbi.s_blocksize, blk.pblk, (de) => {
      const nameBytes = new Uint8Array(de.name.length);
      for (let i = 0; i < de.name.length; i++) nameBytes[i] = de.name.charCodeAt(i);
      const h = ext4fs_dirhash(nameBytes, hashVersion, sbi.s_hash_seed);
      if (!h) return;
      list.push({ major: h.hash, minor: h.minor_hash, name: de.name, ino: de.ino, dtype: ext4_get_dtype(dir, de.file_type) });
    });
  }
  list.sort((a, b) => a.major - b.major || a.minor - b.minor);
  // Cookies must increase strictly so that a resume never repeats or skips an entry:
  // a collision takes the next free value (stable while the directory does not change).
  let prev = -1;
  return { entries: list.map((e) => {
    const pos = Math.max(hash2pos(e.major, e.minor), prev + 1);
    prev = pos;
    return { pos, name: e.name, ino: e.ino, dtype: e.dtype };
  }) };
}

async function ext4_dx_readdir(file: file, dir: ext4_inode_info, ctx: dir_context): Promise<void> {
  if (ctx.pos >= EXT4_HTREE_EOF_COOKIE) return;
  let info = file.private_data as DxDirInfo | null;
  if (!info || ctx.pos === 0) {
    info = await ext4_dx_fill(dir);
    file.private_data = info;
  }
  // First entry at or after the cookie.
  let lo = 0, hi = info.entries.length;
  while (lo < hi) { const m = (lo + hi) >>> 1; if (info.entries[m].pos < ctx.pos) lo = m + 1; else hi = m; }
  for (let i = lo; i < info.entries.length; i++) {
    const e = info.entries[i];
    ctx.pos = e.pos;
    if (!ctx.emit(e.name, e.ino, e.dtype)) return;
    ctx.pos = i + 1 < info.entries.length ? info.entries[i + 1].pos : EXT4_HTREE_EOF_COOKIE;
  }
  ctx.pos = EXT4_HTREE_EOF_COOKIE;
}

/** ext4_readdir (iterate_shared). */
export async function ext4_readdir(file: file, ctx: dir_context): Promise<void> {
  const dir = EXT4_I(file.f_inode);
  if (dir.i_ext4_flags & EXT4_INLINE_DATA_FL) return ext4_readdir_inline(dir, ctx);
  if (is_dx(dir)) {
    try {
      return await ext4_dx_readdir(file, dir, ctx);
    } catch (e) {
      if (!(e instanceof DxFallback)) throw e;
      if (EXT4_SB(dir.i_sb).s_csum?.metadata_csum) throw err(117);
      if (ctx.pos !== 0) throw err(117);
      // ERR_BAD_DX_DIR without checksums: read it as a linear directory.
    }
  }
  return ext4_readdir_linear(file, dir, ctx);
}

/** Thrown by dx_probe-like code for a malformed index that a linear walk can still read. */
export class DxFallback extends Error {}

async function ext4_dir_llseek(file: file, offset: number, whence: number): Promise<number> {
  const dir = EXT4_I(file.f_inode);
  let pos: number;
  switch (whence) {
    case SEEK_SET: pos = offset; break;
    case SEEK_CUR: pos = file.f_pos + offset; break;
    case SEEK_END: pos = (is_dx(dir) ? EXT4_HTREE_EOF_COOKIE : dir.i_size) + offset; break;
    default: throw err(EINVAL);
  }
  if (pos < 0) throw err(EINVAL);
  if (pos !== file.f_pos) { file.f_pos = pos; }
  return pos;
}

export const ext4_dir_operations: file_operations = {
  llseek: ext4_dir_llseek,
  async read() { throw err(EISDIR); },
  iterate_shared: ext4_readdir,
  /* With a journal, a directory's changes are durable once committed (nojournal: nothing to do). */
  async fsync(file: file) { await ext4_force_commit(file.f_inode.i_sb); },
  async release(_inode, file) { file.private_data = null; },
  unlocked_ioctl: ext4_ioctl,
};

