/*
 * Inline data (fs/ext4/inline.c): small files and directories whose data lives
 * in the inode itself, the first 60 bytes in i_block and the rest in the value of the
 * in-inode "system.data" attribute. Inline directories have no "." entry on disk and
 * keep the parent's inode number in their first 4 bytes; dir.ts and namei.ts walk them
 * through ext4_inline_dir_view. The write side is Linux's: new files and directories start
 * inline (EXT4_STATE_MAY_INLINE_DATA); a write that still fits the inode is copied into it
 * (ext4_da_write_inline_data_begin / ext4_write_inline_data_end), a truncate keeps it inline
 * (ext4_inline_data_truncate), entries are added and deleted in place, the directory growing
 * into the xattr space first (ext4_try_add_inline_entry); what outgrows the inode moves to a
 * block (ext4_convert_inline_data / ext4_convert_inline_dir).
 */
import {
  EXT4_XATTR_INDEX_SYSTEM, EXT4_XATTR_IBODY_HEADER_SIZE, EXT4_XATTR_LEN, EXT4_XATTR_MAGIC, EXT4_XATTR_ROUND,
  EXT4_XATTR_SIZE, EXT4_XATTR_SYSTEM_DATA,
} from './xattr.h.js';
import { bytesToBstr } from '../../lib/bstr.js';
import { err } from '../../include/errno.js';
import { ENOSPC, EUCLEAN } from '../../include/uapi.js';
import {
  EXT4_MIN_INLINE_DATA_SIZE, EXT4_INLINE_DOTDOT_SIZE, EXT4_SB, EXT4_STATE_MAY_INLINE_DATA, type ext4_inode_info,
} from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_xattr_ibody_entries, ext4_xattr_ibody_set_system_data } from './xattr.js';
import { mark_buffer_dirty, sync_dirty_buffer } from '../buffer.js';
import {
  EXT4_DIR_TAIL_SIZE, EXT4_EXTENTS_FL, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_FILETYPE, EXT4_FT_DIR,
  EXT4_GOOD_OLD_INODE_SIZE, EXT4_INLINE_DATA_FL, ext4_dir_entry_encode, ext4_dir_rec_len, ext4_dir_tail_init,
  ext4_rec_len_from_disk, ext4_rec_len_to_disk, le16, le32, put_le16, put_le32,
} from './layout.js';
import { EXT4_EXT_MAGIC, ext4_ext_header_encode, ext4_ext_space_root } from './ext4_extents.h.js';
import { ext4_dirblock_csum_set } from './csum.js';
import {
  brelse, EXT4_DATA_TRANS_BLOCKS, EXT4_HT_DIR, EXT4_HT_INODE, ext4_handle_dirty_metadata, ext4_journal_get_create_access,
  ext4_journal_start, ext4_journal_stop, ext4_sb_getblk_zero, type handle_t,
} from './ext4_jbd2.js';
import type { address_space } from '../../include/fs.js';
import { find_or_create_page, unlock_page } from '../../mm/filemap.js';
import { put_page, PG_uptodate, type page } from '../../mm/page_alloc.js';
// inode.ts and namei.ts import this file too: only their functions are used, at call time.
import { ext4_map_blocks_create, ext4_mark_inode_dirty } from './inode.js';
import { add_dirent_to_buf, ext4_generic_delete_entry } from './namei.js';
import { ext4_walk_dirblock } from './dir.js';
import { ext4_es_remove_extent } from './extents_status.js';

/** ext4_find_inline_data_nolock: locate system.data; i_inline_off/size describe it. */
export async function ext4_find_inline_data(inode: ext4_inode_info): Promise<void> {
  inode.i_inline_off = -1;
  inode.i_inline_size = 0;
  for (const f of ext4_xattr_ibody_entries(inode)) {
    const e = f.entry;
    if (e.e_name_index === EXT4_XATTR_INDEX_SYSTEM && bytesToBstr(e.e_name) === EXT4_XATTR_SYSTEM_DATA) {
      if (e.e_value_inum !== 0)
        throw ext4_error(inode.i_sb, 'ext4_find_inline_data_nolock', 'inline data in an ea_inode', { ino: inode.i_ino });
      inode.i_inline_off = f.valueOff;
      inode.i_inline_size = EXT4_MIN_INLINE_DATA_SIZE + e.e_value_size;
      inode.i_state_flags |= EXT4_STATE_MAY_INLINE_DATA;
      return;
    }
  }
  throw ext4_error(inode.i_sb, 'ext4_find_inline_data_nolock', 'inline data flag set but no system.data attribute', { ino: inode.i_ino });
}

/** All inline bytes: i_block then the system.data value (ext4_read_inline_data), i_size long at most. */
export async function ext4_read_inline_data(inode: ext4_inode_info): Promise<Uint8Array> {
  const total = inode.i_inline_size || EXT4_MIN_INLINE_DATA_SIZE;
  const out = new Uint8Array(total);
  out.set(inode.i_data.subarray(0, EXT4_MIN_INLINE_DATA_SIZE));
  if (inode.i_inline_off >= 0 && total > EXT4_MIN_INLINE_DATA_SIZE)
    out.set(inode.i_raw.subarray(inode.i_inline_off, inode.i_inline_off + total - EXT4_MIN_INLINE_DATA_SIZE), EXT4_MIN_INLINE_DATA_SIZE);
  // Files end at i_size; directories use the whole area.
  if ((inode.i_mode & 0o170000) !== 0o040000) return out.subarray(0, Math.min(total, inode.i_size));
  return out;
}

/**
 * An inline directory as the directory code sees it: the parent inode number, and the
 * entry areas (i_block after the 4-byte parent, then the xattr value) each walked as its
 * own "block" of ext4_dir_entry_2 records.
 */
export interface InlineDirView {
  parent: number;
  areas: { buf: Uint8Array; size: number; /** readdir position of the area's first byte */ pos: number }[];
}

/** Positions Linux gives inline entries: "." 0, ".." 12, then i_block bytes from 4 at 24 - 4... */
export const INLINE_DOTDOT_OFFSET = 12;  /* EXT4_DIR_REC_LEN(1) */
export const INLINE_EXTRA_OFFSET = 24 - EXT4_INLINE_DOTDOT_SIZE; /* dotdot_size - EXT4_INLINE_DOTDOT_SIZE */

export async function ext4_inline_dir_view(inode: ext4_inode_info): Promise<InlineDirView> {
  const data = await ext4_read_inline_data(inode);
  const parent = data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24);
  const areas: InlineDirView['areas'] = [];
  const first = data.subarray(EXT4_INLINE_DOTDOT_SIZE, EXT4_MIN_INLINE_DATA_SIZE);
  areas.push({ buf: first, size: first.length, pos: INLINE_EXTRA_OFFSET + EXT4_INLINE_DOTDOT_SIZE });
  if (data.length > EXT4_MIN_INLINE_DATA_SIZE) {
    const rest = data.subarray(EXT4_MIN_INLINE_DATA_SIZE);
    areas.push({ buf: rest, size: rest.length, pos: INLINE_EXTRA_OFFSET + EXT4_MIN_INLINE_DATA_SIZE });
  }
  return { parent: parent >>> 0, areas };
}

/* ---- the write side ---- */

/**
 * get_max_inline_xattr_value_size: how big the system.data value could be in this inode:
 * the free space between the entries and the lowest value, plus what system.data holds
 * already (or less the room its entry would take).
 */
function get_max_inline_xattr_value_size(inode: ext4_inode_info): number {
  const isz = EXT4_SB(inode.i_sb).s_inode_size;
  const hdr = EXT4_GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
  let min_offs = isz - hdr - EXT4_XATTR_IBODY_HEADER_SIZE;
  if (inode.i_raw.length < isz || le32(inode.i_raw, hdr) !== EXT4_XATTR_MAGIC)
    return Math.max(0, EXT4_XATTR_SIZE(min_offs - EXT4_XATTR_LEN(EXT4_XATTR_SYSTEM_DATA.length) - EXT4_XATTR_ROUND - 4));
  let entries = 0;
  for (const f of ext4_xattr_ibody_entries(inode)) {
    const e = f.entry;
    if (e.e_value_inum === 0 && e.e_value_size) min_offs = Math.min(min_offs, e.e_value_offs);
    entries += EXT4_XATTR_LEN(e.e_name_len);
  }
  let free = min_offs - entries - 4;
  if (inode.i_inline_off >= 0) return free + EXT4_XATTR_SIZE(inode.i_inline_size - EXT4_MIN_INLINE_DATA_SIZE);
  free -= EXT4_XATTR_LEN(EXT4_XATTR_SYSTEM_DATA.length);
  return free > EXT4_XATTR_ROUND ? EXT4_XATTR_SIZE(free - EXT4_XATTR_ROUND) : 0;
}

/** ext4_get_max_inline_size: the most data this inode can hold inline now (0: none). */
export function ext4_get_max_inline_size(inode: ext4_inode_info): number {
  if (inode.i_extra_isize === 0) return 0;
  const max = get_max_inline_xattr_value_size(inode);
  return max > 0 ? max + EXT4_MIN_INLINE_DATA_SIZE : 0;
}

/**
 * ext4_create_inline_data: system.data is created (zeros past the first 60 bytes), i_block
 * cleared, and the inode switched from an (empty) extent tree to inline data. False when
 * the inode body has no room: the inode stops trying (MAY_INLINE_DATA cleared).
 */
async function ext4_create_inline_data(handle: handle_t, inode: ext4_inode_info, len: number): Promise<boolean> {
  const value = new Uint8Array(len > EXT4_MIN_INLINE_DATA_SIZE ? len - EXT4_MIN_INLINE_DATA_SIZE : 0);
  try {
    await ext4_xattr_ibody_set_system_data(handle, inode, value);
  } catch (e) {
    if ((e as { errno?: number }).errno !== ENOSPC) throw e;
    inode.i_state_flags &= ~EXT4_STATE_MAY_INLINE_DATA;
    return false;
  }
  inode.i_data.fill(0);
  inode.i_ext4_flags &= ~EXT4_EXTENTS_FL;
  inode.i_ext4_flags |= EXT4_INLINE_DATA_FL;
  await ext4_find_inline_data(inode);
  await ext4_mark_inode_dirty(handle, inode);
  return true;
}

/** ext4_update_inline_data: system.data grows to hold `len` bytes in all, its bytes kept. */
async function ext4_update_inline_data(handle: handle_t, inode: ext4_inode_info, len: number): Promise<void> {
  if (len <= inode.i_inline_size) return;
  const value = new Uint8Array(len - EXT4_MIN_INLINE_DATA_SIZE);
  const old = inode.i_inline_size - EXT4_MIN_INLINE_DATA_SIZE;
  if (old > 0) value.set(inode.i_raw.subarray(inode.i_inline_off, inode.i_inline_off + old));
  await ext4_xattr_ibody_set_system_data(handle, inode, value);
  inode.i_state_flags |= EXT4_STATE_MAY_INLINE_DATA;
  await ext4_mark_inode_dirty(handle, inode);
}

/**
 * ext4_prepare_inline_data: room for `len` inline bytes, creating or growing system.data.
 * False (Linux's -ENOSPC) when the inode may not or cannot hold them.
 */
async function ext4_prepare_inline_data(handle: handle_t, inode: ext4_inode_info, len: number): Promise<boolean> {
  if (!(inode.i_state_flags & EXT4_STATE_MAY_INLINE_DATA)) return false;
  if (ext4_get_max_inline_size(inode) < len) return false;
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) {
    try {
      await ext4_update_inline_data(handle, inode, len);
    } catch (e) {
      if ((e as { errno?: number }).errno === ENOSPC) return false;
      throw e;
    }
    return true;
  }
  return ext4_create_inline_data(handle, inode, len);
}

/** ext4_write_inline_data: `len` bytes of `buf` from `pos` into i_block and the system.data value. */
function ext4_write_inline_data(inode: ext4_inode_info, buf: Uint8Array, pos: number, len: number): void {
  if (pos + len > inode.i_inline_size)
    throw ext4_error(inode.i_sb, 'ext4_write_inline_data', `write past the inline area (${pos + len} > ${inode.i_inline_size})`, { ino: inode.i_ino });
  let at = 0;
  if (pos < EXT4_MIN_INLINE_DATA_SIZE) {
    const n = Math.min(len, EXT4_MIN_INLINE_DATA_SIZE - pos);
    inode.i_data.set(buf.subarray(pos, pos + n), pos);
    at = n;
  }
  if (at < len) {
    const from = pos + at;
    inode.i_raw.set(buf.subarray(from, pos + len), inode.i_inline_off + from - EXT4_MIN_INLINE_DATA_SIZE);
  }
}

/**
 * Drop the inline area (ext4_destroy_inline_data_nolock): system.data removed, i_block
 * cleared, INLINE_DATA_FL off, and the inode set up for blocks (an empty extent tree with
 * the extents feature, else an empty block map).
 */
async function ext4_destroy_inline_data(handle: handle_t, inode: ext4_inode_info): Promise<void> {
  // The flag goes first: with it set, the xattr code keeps looking for system.data.
  inode.i_ext4_flags &= ~EXT4_INLINE_DATA_FL;
  await ext4_xattr_ibody_set_system_data(handle, inode, null);
  inode.i_state_flags &= ~EXT4_STATE_MAY_INLINE_DATA;
  inode.i_inline_off = -1;
  inode.i_inline_size = 0;
  inode.i_data.fill(0);
  if (EXT4_SB(inode.i_sb).has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS)) {
    inode.i_ext4_flags |= EXT4_EXTENTS_FL;
    ext4_ext_header_encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: ext4_ext_space_root(), eh_depth: 0, eh_generation: 0 },
      inode.i_data, 0);
  }
}

/* ---- regular files ---- */

/**
 * ext4_da_write_inline_data_begin: a write of [pos, pos+len) to a file that may be inline.
 * If it fits the inode, system.data is made big enough and page 0 comes back locked and
 * uptodate with the inline bytes (write_end copies it into the inode). If not, an inline
 * file moves to a block now (ext4_convert_inline_data) and a file with no inline data
 * stops trying; null then: the caller takes the block path.
 */
export async function ext4_da_write_inline_data_begin(m: address_space, inode: ext4_inode_info, pos: number, len: number): Promise<page | null> {
  if (pos + len <= ext4_get_max_inline_size(inode)) {
    const handle = ext4_journal_start(inode, EXT4_HT_INODE, 1);
    let ok: boolean;
    try { ok = await ext4_prepare_inline_data(handle, inode, pos + len); } finally { await ext4_journal_stop(handle); }
    if (ok) {
      const page = await find_or_create_page(m, 0);
      if (!page.test(PG_uptodate)) {
        page.data.set(await ext4_read_inline_data(inode));
        page.data.fill(0, Math.min(inode.i_size, inode.i_inline_size));
        page.set(PG_uptodate);
      }
      return page;
    }
  }
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) await ext4_convert_inline_data(inode);
  inode.i_state_flags &= ~EXT4_STATE_MAY_INLINE_DATA;
  return null;
}

/**
 * ext4_write_inline_data_end: the bytes written into page 0 go into the inode; the page
 * stays clean (writeback has nothing to do for an inline file), i_size and the on-disk
 * size grow together.
 */
export async function ext4_write_inline_data_end(inode: ext4_inode_info, pos: number, len: number, copied: number, page: page): Promise<number> {
  try {
    if (copied < len && !page.test(PG_uptodate)) return 0;
    await ext4_find_inline_data(inode);
    ext4_write_inline_data(inode, page.data, pos, copied);
    page.set(PG_uptodate);
    if (pos + copied > inode.i_size) {
      inode.i_size = pos + copied;
      inode.i_disksize = inode.i_size;
    }
  } finally {
    unlock_page(page);
    put_page(page);
  }
  const handle = ext4_journal_start(inode, EXT4_HT_INODE, 1);
  try { await ext4_mark_inode_dirty(handle, inode); } finally { await ext4_journal_stop(handle); }
  return copied;
}

/**
 * ext4_inline_data_truncate: an inline file cut to i_size stays inline: system.data shrinks
 * to what is left past the first 60 bytes, and i_block is zeroed past the end.
 */
export async function ext4_inline_data_truncate(inode: ext4_inode_info): Promise<void> {
  const handle = ext4_journal_start(inode, EXT4_HT_INODE, EXT4_DATA_TRANS_BLOCKS);
  try {
    await inode.i_data_sem.downWrite();
    try {
      if (!(inode.i_ext4_flags & EXT4_INLINE_DATA_FL)) return;
      const size = inode.i_size;
      inode.i_disksize = size;
      if (size < inode.i_inline_size) {
        if (inode.i_inline_size > EXT4_MIN_INLINE_DATA_SIZE) {
          const keep = size > EXT4_MIN_INLINE_DATA_SIZE ? size - EXT4_MIN_INLINE_DATA_SIZE : 0;
          const value = inode.i_raw.slice(inode.i_inline_off, inode.i_inline_off + keep);
          await ext4_xattr_ibody_set_system_data(handle, inode, value);
          await ext4_find_inline_data(inode);
        }
        if (size < EXT4_MIN_INLINE_DATA_SIZE) inode.i_data.fill(0, size, EXT4_MIN_INLINE_DATA_SIZE);
        inode.i_inline_size = Math.max(size, EXT4_MIN_INLINE_DATA_SIZE);
      }
    } finally { inode.i_data_sem.upWrite(); }
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}

/**
 * ext4_convert_inline_data: a regular file (or symlink) whose data is inline gets it moved
 * into a block of its own, as Linux does before a write, truncate or fallocate that the
 * inode cannot hold. The block is written at once (it is file data written outside the page
 * cache, so no copy of it may stay dirty in the device's cache).
 */
export async function ext4_convert_inline_data(inode: ext4_inode_info): Promise<void> {
  if (!(inode.i_ext4_flags & EXT4_INLINE_DATA_FL)) {
    inode.i_state_flags &= ~EXT4_STATE_MAY_INLINE_DATA;
    return;
  }
  const sb = inode.i_sb;
  const data = (await ext4_read_inline_data(inode)).slice();
  const handle = ext4_journal_start(inode, EXT4_HT_INODE, EXT4_DATA_TRANS_BLOCKS);
  try {
    await inode.i_data_sem.downWrite();
    ext4_es_remove_extent(inode);
    try {
      if (!(inode.i_ext4_flags & EXT4_INLINE_DATA_FL)) return;
      await ext4_destroy_inline_data(handle, inode);
    } finally { inode.i_data_sem.upWrite(); }
    if (data.length > 0) {
      const m = await ext4_map_blocks_create(handle, inode, 0, 1);
      // File data, not metadata: written in place at once (never through the journal, whose
      // copy would later be replayed over newer data written through the page cache).
      const bh = await ext4_sb_getblk_zero(sb, m.pblk);
      try {
        bh.b_data.set(data.subarray(0, Math.min(data.length, bh.b_data.length)));
        mark_buffer_dirty(bh);
        await sync_dirty_buffer(bh);
      } finally { brelse(bh); }
    }
    await ext4_mark_inode_dirty(handle, inode);
  } finally { await ext4_journal_stop(handle); }
}

/* ---- directories ---- */

/**
 * One entry area of an inline directory, live: i_block after the parent's number (Linux's
 * inline offsets 4..60), or the system.data value (offsets from 60). Entries are edited in
 * place and the inode written.
 */
interface InlineArea { buf: Uint8Array; base: number }

function ext4_inline_areas(dir: ext4_inode_info): InlineArea[] {
  const areas: InlineArea[] = [{ buf: dir.i_data.subarray(EXT4_INLINE_DOTDOT_SIZE, EXT4_MIN_INLINE_DATA_SIZE), base: EXT4_INLINE_DOTDOT_SIZE }];
  const extra = dir.i_inline_size - EXT4_MIN_INLINE_DATA_SIZE;
  if (dir.i_inline_off >= 0 && extra > 0)
    areas.push({ buf: dir.i_raw.subarray(dir.i_inline_off, dir.i_inline_off + extra), base: EXT4_MIN_INLINE_DATA_SIZE });
  return areas;
}

/** ext4_get_inline_entry: the area holding inline offset `off`. */
function ext4_inline_area_at(dir: ext4_inode_info, off: number): InlineArea {
  for (const a of ext4_inline_areas(dir)) if (off >= a.base && off < a.base + a.buf.length) return a;
  throw ext4_error(dir.i_sb, 'ext4_get_inline_entry', `offset ${off} outside the inline directory`, { ino: dir.i_ino });
}

/**
 * ext4_try_create_inline_dir: a new directory that may be inline gets system.data and, in
 * i_block, its parent's number and one free record over the rest. False when the inode has
 * no room (the caller makes a block directory).
 */
export async function ext4_try_create_inline_dir(handle: handle_t, parent: ext4_inode_info, inode: ext4_inode_info): Promise<boolean> {
  if (!(await ext4_prepare_inline_data(handle, inode, EXT4_MIN_INLINE_DATA_SIZE))) return false;
  put_le32(inode.i_data, 0, parent.i_ino);
  const bs = EXT4_SB(inode.i_sb).s_blocksize;
  put_le32(inode.i_data, EXT4_INLINE_DOTDOT_SIZE, 0);
  put_le16(inode.i_data, EXT4_INLINE_DOTDOT_SIZE + 4, ext4_rec_len_to_disk(EXT4_MIN_INLINE_DATA_SIZE - EXT4_INLINE_DOTDOT_SIZE, bs));
  inode.i_size = EXT4_MIN_INLINE_DATA_SIZE;
  inode.i_disksize = EXT4_MIN_INLINE_DATA_SIZE;
  return true;
}

/**
 * ext4_update_inline_dir: an inline directory whose i_block is full grows into all the
 * xattr space the inode has (one free record over it), if that is more than one small
 * entry's worth. False if not.
 */
async function ext4_update_inline_dir(handle: handle_t, dir: ext4_inode_info): Promise<boolean> {
  const old_size = dir.i_inline_size - EXT4_MIN_INLINE_DATA_SIZE;
  const new_size = get_max_inline_xattr_value_size(dir);
  if (new_size - old_size <= ext4_dir_rec_len(1)) return false;
  try {
    await ext4_update_inline_data(handle, dir, new_size + EXT4_MIN_INLINE_DATA_SIZE);
  } catch (e) {
    if ((e as { errno?: number }).errno === ENOSPC) return false;
    throw e;
  }
  const area = dir.i_raw.subarray(dir.i_inline_off, dir.i_inline_off + dir.i_inline_size - EXT4_MIN_INLINE_DATA_SIZE);
  ext4_update_final_de(area, old_size, area.length, EXT4_SB(dir.i_sb).s_blocksize);
  dir.i_size = dir.i_inline_size;
  dir.i_disksize = dir.i_inline_size;
  return true;
}

/**
 * ext4_update_final_de: the last record of the first `old_size` bytes of `buf` is stretched
 * to end at `new_size`; with nothing there yet, one free record covers it.
 */
function ext4_update_final_de(buf: Uint8Array, old_size: number, new_size: number, bs: number): void {
  if (old_size === 0) {
    put_le32(buf, 0, 0);
    put_le16(buf, 4, ext4_rec_len_to_disk(new_size, bs));
    return;
  }
  let off = 0, prev = 0, len = 0;
  do {
    prev = off;
    len = ext4_rec_len_from_disk(le16(buf, off + 4), bs);
    if (len < 8) throw err(EUCLEAN, 'ext4_update_final_de: bad rec_len');
    off += len;
  } while (off < old_size);
  put_le16(buf, prev + 4, ext4_rec_len_to_disk(len + new_size - old_size, bs));
}

/**
 * ext4_try_add_inline_entry: `name` -> `ino` into an inline directory: i_block first, then
 * the xattr space (grown to its most the first time), else the directory moves to a block
 * (ext4_convert_inline_dir) and false tells the caller to add it there. EEXIST from a name
 * already present.
 */
export async function ext4_try_add_inline_entry(handle: handle_t, dir: ext4_inode_info, name: Uint8Array, ino: number, ftype: number): Promise<boolean> {
  if (!(dir.i_ext4_flags & EXT4_INLINE_DATA_FL)) return false;
  const [first] = ext4_inline_areas(dir);
  if (add_dirent_to_buf(dir, first.buf, first.buf.length, 0, name, ino, ftype)) {
    await ext4_mark_inode_dirty(handle, dir);
    return true;
  }
  if (dir.i_inline_size === EXT4_MIN_INLINE_DATA_SIZE) await ext4_update_inline_dir(handle, dir);
  const second = ext4_inline_areas(dir)[1];
  if (second && add_dirent_to_buf(dir, second.buf, second.buf.length, 0, name, ino, ftype)) {
    await ext4_mark_inode_dirty(handle, dir);
    return true;
  }
  await ext4_convert_inline_dir(dir, handle);
  return false;
}

/** ext4_find_inline_entry: where `name` is in an inline directory (lblk -1, inline offset). */
export function ext4_find_inline_entry(dir: ext4_inode_info, name: string): { lblk: number; off: number; ino: number } | null {
  for (const a of ext4_inline_areas(dir)) {
    let r: { lblk: number; off: number; ino: number } | null = null;
    ext4_walk_dirblock(dir, a.buf, a.buf.length, 0, (de) => {
      if (de.name === name) { r = { lblk: -1, off: a.base + de.off, ino: de.ino }; return false; }
    });
    if (r) return r;
  }
  return null;
}

/** ext4_delete_inline_entry: the record at inline offset `off` goes, within its area. */
export async function ext4_delete_inline_entry(handle: handle_t, dir: ext4_inode_info, off: number, ino: number): Promise<void> {
  const a = ext4_inline_area_at(dir, off);
  ext4_generic_delete_entry(dir, a.buf, a.buf.length, off - a.base, ino, 0);
  await ext4_mark_inode_dirty(handle, dir);
}

/** ext4_setent for an inline entry: the record at `off` names another inode. */
export async function ext4_inline_setent(handle: handle_t, dir: ext4_inode_info, off: number, ino: number, ftype: number | null): Promise<void> {
  const a = ext4_inline_area_at(dir, off);
  put_le32(a.buf, off - a.base, ino);
  if (ftype !== null) a.buf[off - a.base + 7] = ftype;
  await ext4_mark_inode_dirty(handle, dir);
}

/** A moved inline directory's ".." (the parent number in i_block's first 4 bytes). */
export async function ext4_inline_set_dotdot(handle: handle_t, dir: ext4_inode_info, parent: number): Promise<void> {
  put_le32(dir.i_data, 0, parent);
  await ext4_mark_inode_dirty(handle, dir);
}

/**
 * ext4_convert_inline_dir (Linux: ext4_convert_inline_data_nolock and
 * ext4_finish_convert_inline_dir): an inline directory moves into block 0: real "." and
 * ".." records, then the inline records as they are (i_block's, then the xattr area's),
 * the last one stretched to the end of the block, and the checksum tail.
 */
export async function ext4_convert_inline_dir(dir: ext4_inode_info, outer?: handle_t): Promise<void> {
  if (!(dir.i_ext4_flags & EXT4_INLINE_DATA_FL)) return;
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const bs = sbi.s_blocksize;
  const csum = !!sbi.s_csum?.metadata_csum;
  const data = (await ext4_read_inline_data(dir)).slice();
  // ext4_check_all_de: nothing is moved that would need fsck.
  for (const a of ext4_inline_areas(dir)) ext4_walk_dirblock(dir, a.buf, a.buf.length, 0, () => {});
  const parent = le32(data, 0);
  const handle = outer ?? ext4_journal_start(dir, EXT4_HT_DIR, EXT4_DATA_TRANS_BLOCKS);
  try {
    await dir.i_data_sem.downWrite();
    ext4_es_remove_extent(dir);
    try {
      if (!(dir.i_ext4_flags & EXT4_INLINE_DATA_FL)) return;
      await ext4_destroy_inline_data(handle, dir);
    } finally { dir.i_data_sem.upWrite(); }
    const m = await ext4_map_blocks_create(handle, dir, 0, 1);
    const bh = await ext4_sb_getblk_zero(sb, m.pblk);
    try {
      await ext4_journal_get_create_access(handle, sb, bh);
      const buf = bh.b_data;
      buf.fill(0);
      const ftDir = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_FILETYPE) ? EXT4_FT_DIR : 0;
      ext4_dir_entry_encode({ inode: dir.i_ino, rec_len: ext4_dir_rec_len(1), name_len: 1, file_type: ftDir, name: new Uint8Array([0x2e]) }, buf, 0, bs);
      const header = ext4_dir_rec_len(1) + ext4_dir_rec_len(2);
      ext4_dir_entry_encode({ inode: parent, rec_len: ext4_dir_rec_len(2), name_len: 2, file_type: ftDir, name: new Uint8Array([0x2e, 0x2e]) },
        buf, ext4_dir_rec_len(1), bs);
      buf.set(data.subarray(EXT4_INLINE_DOTDOT_SIZE), header);
      ext4_update_final_de(buf, data.length - EXT4_INLINE_DOTDOT_SIZE + header, bs - (csum ? EXT4_DIR_TAIL_SIZE : 0), bs);
      if (csum) {
        ext4_dir_tail_init(buf, bs);
        ext4_dirblock_csum_set(sbi.s_csum!, dir.i_csum_seed, buf, 0);
        sbi.s_dirblock_verified.add(bh.b_blocknr);
      }
      await ext4_handle_dirty_metadata(handle, dir, bh);
    } finally { brelse(bh); }
    dir.i_size = bs;
    dir.i_disksize = bs;
    await ext4_mark_inode_dirty(handle, dir);
  } finally { if (!outer) await ext4_journal_stop(handle); }
}
