/*
 * Inline data (fs/ext4/inline.c): small files and directories whose data lives
 * in the inode itself, the first 60 bytes in i_block and the rest in the value of the
 * in-inode "system.data" attribute. Inline directories have no "." entry on disk and
 * keep the parent's inode number in their first 4 bytes; dir.ts and namei.ts walk them
 * through ext4_inline_dir_view. The write side converts inline files and directories to
 * blocks before changing them (ext4_convert_inline_data / _dir) and creates no inline data.
 */
import { EXT4_XATTR_INDEX_SYSTEM } from './xattr.h.js';
import { EXT4_XATTR_SYSTEM_DATA } from './xattr.h.js';
import { bytesToBstr } from '../../lib/bstr.js';
import {
  EXT4_MIN_INLINE_DATA_SIZE, EXT4_INLINE_DOTDOT_SIZE, EXT4_SB, EXT4_STATE_MAY_INLINE_DATA, type ext4_inode_info,
} from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_xattr_ibody_entries, ext4_xattr_set_handle } from './xattr.js';
import { mark_buffer_dirty, sync_dirty_buffer } from '../buffer.js';
import {
  EXT4_DIR_TAIL_SIZE, EXT4_EXTENTS_FL, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_FILETYPE, EXT4_FT_DIR,
  EXT4_INLINE_DATA_FL, ext4_check_dir_entry, ext4_dir_entry_decode, ext4_dir_entry_encode, ext4_dir_rec_len,
  ext4_dir_tail_init,
} from './layout.js';
import { EXT4_EXT_MAGIC, ext4_ext_header_encode, ext4_ext_space_root } from './ext4_extents.h.js';
import { ext4_dirblock_csum_set } from './csum.js';
import {
  brelse, EXT4_DATA_TRANS_BLOCKS, EXT4_HT_DIR, EXT4_HT_INODE, ext4_handle_dirty_metadata, ext4_journal_get_create_access,
  ext4_journal_start, ext4_journal_stop, ext4_sb_getblk_zero, type handle_t,
} from './ext4_jbd2.js';
// inode.ts imports this file too: only its functions are used, at call time.
import { ext4_map_blocks_create, ext4_mark_inode_dirty } from './inode.js';
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

/* ---- the write side: inline data is converted to blocks before it is changed ---- */

/**
 * Drop the inline area: system.data removed, i_block cleared, INLINE_DATA_FL off, and the
 * inode set up for blocks (an empty extent tree with the extents feature, else an empty
 * block map).
 */
async function ext4_destroy_inline_data(handle: handle_t, inode: ext4_inode_info): Promise<void> {
  // The flag goes first: with it set, the xattr code keeps looking for system.data.
  inode.i_ext4_flags &= ~EXT4_INLINE_DATA_FL;
  await ext4_xattr_set_handle(handle, inode, EXT4_XATTR_INDEX_SYSTEM, EXT4_XATTR_SYSTEM_DATA, null, 0);
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

/**
 * ext4_convert_inline_data: a regular file (or symlink) whose data is inline gets it moved
 * into a block of its own, as Linux does before a write that outgrows the inode; the
 * lkl-ts write side converts before any change and never creates inline data itself.
 * The block is written at once (it is file data written outside the page cache, so no
 * copy of it may stay dirty in the device's cache).
 */
export async function ext4_convert_inline_data(inode: ext4_inode_info): Promise<void> {
  if (!(inode.i_ext4_flags & EXT4_INLINE_DATA_FL)) return;
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

/**
 * ext4_convert_inline_dir (Linux: ext4_convert_inline_data_nolock for directories): the
 * entries of an inline directory move into block 0, after real "." and ".." records, with
 * the checksum tail; the directory is then an ordinary one-block directory.
 */
export async function ext4_convert_inline_dir(dir: ext4_inode_info): Promise<void> {
  if (!(dir.i_ext4_flags & EXT4_INLINE_DATA_FL)) return;
  const sb = dir.i_sb;
  const sbi = EXT4_SB(sb);
  const bs = sbi.s_blocksize;
  const csum = !!sbi.s_csum?.metadata_csum;
  const usable = bs - (csum ? EXT4_DIR_TAIL_SIZE : 0);
  const view = await ext4_inline_dir_view(dir);
  const entries: { ino: number; name: Uint8Array; ft: number }[] = [];
  for (const a of view.areas) {
    let off = 0;
    while (off + 8 <= a.size) {
      const why = ext4_check_dir_entry(a.buf, off, a.size, bs, sbi.s_es.s_inodes_count);
      if (why) throw ext4_error(sb, 'ext4_convert_inline_dir', `bad inline entry: ${why} - offset=${off}`, { ino: dir.i_ino });
      const de = ext4_dir_entry_decode(a.buf, off, bs);
      if (de.inode) entries.push({ ino: de.inode, name: de.name.slice(), ft: de.file_type });
      off += de.rec_len;
    }
  }
  const ftDir = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_FILETYPE) ? EXT4_FT_DIR : 0;
  const records = [{ ino: dir.i_ino, name: new Uint8Array([0x2e]), ft: ftDir },
    { ino: view.parent, name: new Uint8Array([0x2e, 0x2e]), ft: ftDir }, ...entries];
  const handle = ext4_journal_start(dir, EXT4_HT_DIR, EXT4_DATA_TRANS_BLOCKS);
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
      let off = 0;
      records.forEach((r, i) => {
        const need = ext4_dir_rec_len(r.name.length);
        const rec = i === records.length - 1 ? usable - off : need;
        ext4_dir_entry_encode({ inode: r.ino, rec_len: rec, name_len: r.name.length, file_type: r.ft, name: r.name }, buf, off, bs);
        off += rec;
      });
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
  } finally { await ext4_journal_stop(handle); }
}
