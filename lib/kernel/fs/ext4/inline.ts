/*
 * Inline data, read side (fs/ext4/inline.c): small files and directories whose data lives
 * in the inode itself, the first 60 bytes in i_block and the rest in the value of the
 * in-inode "system.data" attribute. Inline directories have no "." entry on disk and
 * keep the parent's inode number in their first 4 bytes; dir.ts and namei.ts walk them
 * through ext4_inline_dir_view.
 */
import { EXT4_XATTR_INDEX_SYSTEM } from './xattr.h.js';
import { EXT4_XATTR_SYSTEM_DATA } from './xattr.h.js';
import { bytesToBstr } from '../../lib/bstr.js';
import { EXT4_MIN_INLINE_DATA_SIZE, EXT4_INLINE_DOTDOT_SIZE, type Ext4Inode } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_xattr_ibody_entries } from './xattr.js';

/** ext4_find_inline_data_nolock: locate system.data; i_inline_off/size describe it. */
export async function ext4_find_inline_data(inode: Ext4Inode): Promise<void> {
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
export async function ext4_read_inline_data(inode: Ext4Inode): Promise<Uint8Array> {
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

export async function ext4_inline_dir_view(inode: Ext4Inode): Promise<InlineDirView> {
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
