/*
 * Extended attributes, read side (fs/ext4/xattr.c, xattr_user.c, xattr_trusted.c,
 * xattr_security.c): attributes stored in the inode body after i_extra_isize (behind the
 * ibody header magic), in one external block (shared between inodes by refcount, with its
 * own header checksum), and large values in separate ea_inodes. Lookup and listing go
 * ibody first, then the block, as Linux does. The xattr_handler objects go in sb.s_xattr;
 * ACL handlers are acl.ts's.
 */
import type { Dentry, Inode, xattr_handler } from '../../include/fs.js';
import { CAP_SYS_ADMIN } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { ENODATA, EOPNOTSUPP, EROFS } from '../../include/uapi.js';
import { capable } from '../../kernel/cred.js';
import { EXT4_EA_INODE_FL, EXT4_GOOD_OLD_INODE_SIZE, le32 } from './layout.js';
import {
  EXT4_XATTR_INDEX_SECURITY, EXT4_XATTR_INDEX_TRUSTED, EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
} from './xattr.h.js';
import {
  EXT4_XATTR_HEADER_SIZE, EXT4_XATTR_INDEX_USER, EXT4_XATTR_MAGIC, ext4_xattr_entries,
  ext4_xattr_full_name, ext4_xattr_header_decode, type Ext4XattrEntry,
} from './xattr.h.js';
import { ext4_xattr_block_csum_set, ext4_xattr_block_csum_verify } from './csum.js';
import { put_le32 } from './layout.js';
import {
  brelse, ext4_forget, ext4_handle_dirty_metadata, ext4_journal_get_write_access, ext4_sb_bread_bh, type handle_t,
} from './ext4_jbd2.js';
import { EXT4_FREE_BLOCKS_METADATA, ext4_free_blocks } from './mballoc.js';
import { bytesToBstr } from '../../lib/bstr.js';
import { EXT4_I, EXT4_SB, EXT4_MOUNT_XATTR_USER, EXT4_MOUNT_POSIX_ACL, type Ext4Inode } from './ext4.js';
import { ext4_csum_error, ext4_error } from './errors.js';
import { ext4_sb_bread } from './block_validity.js';
// inode.ts imports this file too: only its functions and constants are used, at call time.
import { ext4_iget, ext4_iput, ext4_read_data, EXT4_IGET_EA_INODE } from './inode.js';

/** One attribute as found: where its value is and how big. */
export interface Ext4XattrFound {
  entry: Ext4XattrEntry;
  /** Buffer holding the value (inode bytes or block bytes) and the value's offset in it. */
  buf: Uint8Array;
  valueOff: number;
}

/** The in-inode attributes (ext4_xattr_ibody_get's walk), or [] when there is no ibody area. */
export function ext4_xattr_ibody_entries(inode: Ext4Inode): Ext4XattrFound[] {
  const sbi = EXT4_SB(inode.i_sb);
  const isz = sbi.s_inode_size;
  if (isz <= EXT4_GOOD_OLD_INODE_SIZE || inode.i_extra_isize === 0 && isz === EXT4_GOOD_OLD_INODE_SIZE) return [];
  const raw = inode.i_raw;
  const hdr = EXT4_GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
  if (hdr + 4 > isz || raw.length < isz) return [];
  if (le32(raw, hdr) !== EXT4_XATTR_MAGIC) return [];
  const first = hdr + 4;
  const r = ext4_xattr_entries(raw, first, isz, first, isz);
  if (typeof r === 'string')
    throw ext4_error(inode.i_sb, 'ext4_xattr_ibody_get', `corrupted in-inode xattr: ${r}`, { ino: inode.i_ino });
  return r.map((entry) => ({ entry, buf: raw, valueOff: first + entry.e_value_offs }));
}

/** The external block's attributes (ext4_xattr_block_get's walk), validated. */
export async function ext4_xattr_block_entries(inode: Ext4Inode): Promise<Ext4XattrFound[]> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const blk = inode.i_file_acl;
  if (!blk) return [];
  const buf = await ext4_sb_bread(sb, blk, 'ext4_xattr_block_get', inode.i_ino);
  const h = ext4_xattr_header_decode(buf, 0);
  if (h.h_magic !== EXT4_XATTR_MAGIC || h.h_blocks !== 1)
    throw ext4_error(sb, 'ext4_xattr_block_get', `corrupted xattr block ${blk}: bad magic number in xattr block`, { ino: inode.i_ino });
  if (sbi.s_csum?.metadata_csum && !ext4_xattr_block_csum_verify(sbi.s_csum, blk, buf, 0))
    throw ext4_csum_error(sb, 'ext4_xattr_block_get', `corrupted xattr block ${blk}: invalid checksum`, { ino: inode.i_ino });
  const bs = sbi.s_blocksize;
  const r = ext4_xattr_entries(buf, EXT4_XATTR_HEADER_SIZE, bs, 0, bs);
  if (typeof r === 'string')
    throw ext4_error(sb, 'ext4_xattr_block_get', `corrupted xattr block ${blk}: ${r}`, { ino: inode.i_ino });
  return r.map((entry) => ({ entry, buf, valueOff: entry.e_value_offs }));
}

/** The value of a found attribute; ea_inode values are read from their inode. */
export async function ext4_xattr_value(inode: Ext4Inode, f: Ext4XattrFound): Promise<Uint8Array> {
  const e = f.entry;
  if (e.e_value_inum === 0) return f.buf.slice(f.valueOff, f.valueOff + e.e_value_size);
  const sb = inode.i_sb;
  const ea = await ext4_iget(sb, e.e_value_inum, EXT4_IGET_EA_INODE);
  try {
    if (!(ea.i_ext4_flags & EXT4_EA_INODE_FL))
      throw ext4_error(sb, 'ext4_xattr_inode_iget', `EA inode ${e.e_value_inum} does not have EXT4_EA_INODE_FL flag`, { ino: inode.i_ino });
    if (ea.i_size !== e.e_value_size)
      throw ext4_error(sb, 'ext4_xattr_inode_get', `ea_inode file size=${ea.i_size} entry size=${e.e_value_size}`, { ino: ea.i_ino });
    const out = new Uint8Array(e.e_value_size);
    await ext4_read_data(ea, 0, out);
    return out;
  } finally { await ext4_iput(ea); }
}

function nameMatches(e: Ext4XattrEntry, index: number, name: string): boolean {
  return e.e_name_index === index && e.e_name_len === name.length && bytesToBstr(e.e_name) === name;
}

/** ext4_xattr_get: the value of (index, name) or ENODATA. `name` is the stored suffix (a byte string). */
export async function ext4_xattr_get(inode: Ext4Inode, index: number, name: string): Promise<Uint8Array> {
  if (name.length > 255) throw err(34 /* ERANGE */);
  for (const f of ext4_xattr_ibody_entries(inode)) if (nameMatches(f.entry, index, name)) return ext4_xattr_value(inode, f);
  for (const f of await ext4_xattr_block_entries(inode)) if (nameMatches(f.entry, index, name)) return ext4_xattr_value(inode, f);
  throw err(ENODATA);
}

/** Can this namespace be listed for this dentry (xattr_handler_can_list)? */
function can_list(inode: Ext4Inode, index: number): boolean {
  const sbi = EXT4_SB(inode.i_sb);
  switch (index) {
    case EXT4_XATTR_INDEX_USER: return sbi.test_opt(EXT4_MOUNT_XATTR_USER);
    case EXT4_XATTR_INDEX_POSIX_ACL_ACCESS:
    case EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT: return sbi.test_opt(EXT4_MOUNT_POSIX_ACL);
    case EXT4_XATTR_INDEX_TRUSTED: return capable(CAP_SYS_ADMIN);
    case EXT4_XATTR_INDEX_SECURITY: return true;
    default: return false; // system.data and unknown indices have no handler: not listed
  }
}

/** ext4_listxattr: full names (byte strings), ibody entries first, then the block's. */
export async function ext4_listxattr_inode(inode: Ext4Inode): Promise<string[]> {
  const out: string[] = [];
  const add = (fs: Ext4XattrFound[]) => {
    for (const f of fs) {
      if (!can_list(inode, f.entry.e_name_index)) continue;
      const n = ext4_xattr_full_name(f.entry.e_name_index, bytesToBstr(f.entry.e_name));
      if (n !== null) out.push(n);
    }
  };
  add(ext4_xattr_ibody_entries(inode));
  add(await ext4_xattr_block_entries(inode));
  return out;
}

export async function ext4_listxattr(dentry: Dentry): Promise<string[]> {
  return ext4_listxattr_inode(EXT4_I(dentry.d_inode!));
}

/* Setting and removing attributes is not built yet: EOPNOTSUPP, which cp -a and tar skip. */
async function no_set(): Promise<void> { throw err(EOPNOTSUPP); }

export const ext4_xattr_user_handler: xattr_handler = {
  prefix: 'user.',
  list: (dentry) => EXT4_SB(dentry.d_sb).test_opt(EXT4_MOUNT_XATTR_USER),
  async get(_dentry, inode: Inode, name: string) {
    if (!EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_XATTR_USER)) throw err(EOPNOTSUPP);
    return ext4_xattr_get(EXT4_I(inode), EXT4_XATTR_INDEX_USER, name);
  },
  set: no_set,
};
export const ext4_xattr_trusted_handler: xattr_handler = {
  prefix: 'trusted.',
  list: () => capable(CAP_SYS_ADMIN),
  async get(_dentry, inode: Inode, name: string) {
    return ext4_xattr_get(EXT4_I(inode), EXT4_XATTR_INDEX_TRUSTED, name);
  },
  set: no_set,
};
export const ext4_xattr_security_handler: xattr_handler = {
  prefix: 'security.',
  async get(_dentry, inode: Inode, name: string) {
    return ext4_xattr_get(EXT4_I(inode), EXT4_XATTR_INDEX_SECURITY, name);
  },
  set: no_set,
};

/**
 * ext4_xattr_delete_inode (the block part, ext4_xattr_release_block): the inode's xattr
 * block loses a reference; the last one frees it. Values in ea_inodes are not released
 * (the write side does not create them; an inode owning one is refused by the caller).
 */
export async function ext4_xattr_delete_inode(handle: handle_t, inode: Ext4Inode): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const blk = inode.i_file_acl;
  if (!blk) return;
  const bh = await ext4_sb_bread_bh(sb, blk, 'ext4_xattr_release_block', inode.i_ino);
  try {
    const h = ext4_xattr_header_decode(bh.b_data, 0);
    if (h.h_magic !== EXT4_XATTR_MAGIC || h.h_blocks !== 1) {
      throw ext4_error(sb, 'ext4_xattr_release_block', `inode ${inode.i_ino}: bad block ${blk}`, { ino: inode.i_ino });
    }
    if (h.h_refcount <= 1) {
      ext4_forget(handle, bh);
      await ext4_free_blocks(handle, inode, blk, 1, EXT4_FREE_BLOCKS_METADATA);
    } else {
      await ext4_journal_get_write_access(handle, sb, bh);
      put_le32(bh.b_data, 4, h.h_refcount - 1);
      if (sbi.s_csum?.metadata_csum) ext4_xattr_block_csum_set(sbi.s_csum, blk, bh.b_data, 0);
      await ext4_handle_dirty_metadata(handle, inode, bh);
    }
  } finally { brelse(bh); }
  inode.i_file_acl = 0;
  inode.i_blocks = Math.max(0, inode.i_blocks - sbi.s_blocksize / 512);
}
