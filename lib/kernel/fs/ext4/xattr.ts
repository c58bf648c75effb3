/*
 * Extended attributes, read side (fs/ext4/xattr.c, xattr_user.c, xattr_trusted.c,
 * xattr_security.c): attributes stored in the inode body after i_extra_isize (behind the
 * ibody header magic), in one external block (shared between inodes by refcount, with its
 * own header checksum), and large values in separate ea_inodes. Lookup and listing go
 * ibody first, then the block, as Linux does. The xattr_handler objects go in sb.s_xattr;
 * ACL handlers are acl.ts's. With the ea_inode feature a value too big for the block (or
 * bigger than a block's worth) gets an inode of its own, as Linux's ext4_xattr_inode_*
 * functions do: the ea_inode holds the value as its data (written as metadata through the
 * journal), its reference count in ctime seconds (high word) and i_version (low word), and
 * the crc32c of the value in atime seconds; the entry names it in e_value_inum and hashes
 * that crc in place of the value. An ea_inode already holding the same value (found by that
 * crc in s_ea_inode_cache, which values created or read enter) is shared: it takes another
 * reference, as Linux's ext4_xattr_inode_lookup_create does.
 */
import type { dentry, inode, super_block, xattr_handler } from '../../include/fs.js';
import { CAP_SYS_ADMIN } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { EEXIST, EINVAL, EIO, ENODATA, ENOSPC, EOPNOTSUPP, EPERM, ERANGE, S_IFREG } from '../../include/uapi.js';
import { capable } from '../../kernel/cred.js';
import {
  EXT4_EA_INODE_FL, EXT4_FEATURE_COMPAT_EXT_ATTR, EXT4_FEATURE_INCOMPAT_EA_INODE, EXT4_GOOD_OLD_INODE_SIZE,
  EXT4_INLINE_DATA_FL, EXT4_INODE_OFF, ext4_fits_in_inode, le16, le32, put_le16, put_le32,
} from './layout.js';
import {
  EXT4_XATTR_INDEX_SECURITY, EXT4_XATTR_INDEX_TRUSTED, EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT, EXT4_XATTR_INDEX_SYSTEM, EXT4_XATTR_IBODY_HEADER_SIZE, EXT4_XATTR_LEN, EXT4_XATTR_SIZE,
  ext4_xattr_block_hash, ext4_xattr_hash_entry, ext4_xattr_hash_entry_ea_inode, ext4_xattr_header_encode,
  ext4_xattr_is_last_entry, EXT4_XATTR_MIN_LARGE_EA_SIZE,
} from './xattr.h.js';
import {
  EXT4_XATTR_HEADER_SIZE, EXT4_XATTR_INDEX_USER, EXT4_XATTR_MAGIC, EXT4_XATTR_REFCOUNT_MAX, ext4_xattr_entries,
  ext4_xattr_full_name, ext4_xattr_header_decode, type ext4_xattr_entry,
} from './xattr.h.js';
import { ext4_xattr_block_csum_set, ext4_xattr_block_csum_verify } from './csum.js';
import type { buffer_head } from '../buffer.js';
import {
  brelse, ext4_forget, ext4_handle_dirty_metadata, ext4_journal_get_create_access, ext4_journal_get_write_access,
  ext4_journal_start, ext4_journal_stop, ext4_sb_bread_bh, ext4_sb_getblk_zero, EXT4_DATA_TRANS_BLOCKS, EXT4_HT_XATTR,
  type handle_t,
} from './ext4_jbd2.js';
import { EXT4_FREE_BLOCKS_METADATA, ext4_free_blocks, ext4_new_meta_blocks } from './mballoc.js';
import { ext4_group_first_block_no } from './balloc.js';
import { bytesToBstr } from '../../lib/bstr.js';
import {
  EXT4_I, EXT4_SB, EXT4_MOUNT_XATTR_USER, EXT4_MOUNT_POSIX_ACL, EXT4_STATE_XATTR, type ext4_inode_info,
} from './ext4.js';
import { ext4_csum_error, ext4_error } from './errors.js';
import { ext4_sb_bread } from './super.js';
import { current_time } from '../time.js';
// inode.ts and inline.ts import this file too: only their functions are used, at call time.
import {
  ext4_aops, ext4_iget, ext4_iput, ext4_map_blocks_create, ext4_mark_inode_dirty, ext4_read_data, EXT4_IGET_EA_INODE,
} from './inode.js';
import { ext4_find_inline_data } from './inline.js';
import { __ext4_new_inode } from './ialloc.js';
import { ext4_orphan_add, ext4_orphan_del } from './orphan.js';
import { ext4_file_inode_operations, ext4_file_operations } from './file.js';
import { clear_nlink, set_nlink, unlock_new_inode } from '../inode.js';
import { crc32c } from '../../lib/crc32c.js';
import {
  mb_cache_entry_create, mb_cache_entry_delete, mb_cache_entry_find_first, mb_cache_entry_find_next, mb_cache_entry_get,
  mb_cache_entry_touch,
} from '../mbcache.js';

/** One attribute as found: where its value is and how big. */
export interface Ext4XattrFound {
  entry: ext4_xattr_entry;
  /** Buffer holding the value (inode bytes or block bytes) and the value's offset in it. */
  buf: Uint8Array;
  valueOff: number;
}

/** The in-inode attributes (ext4_xattr_ibody_get's walk), or [] when there is no ibody area. */
export function ext4_xattr_ibody_entries(inode: ext4_inode_info): Ext4XattrFound[] {
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
export async function ext4_xattr_block_entries(inode: ext4_inode_info): Promise<Ext4XattrFound[]> {
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
  ext4_xattr_block_cache_insert(sb, blk, buf);
  return r.map((entry) => ({ entry, buf, valueOff: entry.e_value_offs }));
}

/** The value of a found attribute; ea_inode values are read from their inode. */
export async function ext4_xattr_value(inode: ext4_inode_info, f: Ext4XattrFound): Promise<Uint8Array> {
  const e = f.entry;
  if (e.e_value_inum === 0) return f.buf.slice(f.valueOff, f.valueOff + e.e_value_size);
  const sb = inode.i_sb;
  const ea = await ext4_xattr_inode_iget(inode, e.e_value_inum);
  try {
    if (ea.i_size !== e.e_value_size)
      throw ext4_error(sb, 'ext4_xattr_inode_get', `ea_inode file size=${ea.i_size} entry size=${e.e_value_size}`, { ino: ea.i_ino });
    const out = new Uint8Array(e.e_value_size);
    await ext4_read_data(ea, 0, out);
    // A value read whose crc is the one stored can be shared from now on (ext4_xattr_inode_get).
    const cache = EXT4_SB(sb).s_ea_inode_cache;
    const hash = ext4_xattr_inode_hash(sb, out);
    if (cache && hash === ext4_xattr_inode_get_hash(ea)) mb_cache_entry_create(cache, hash, ea.i_ino, true);
    return out;
  } finally { await ext4_iput(ea); }
}

function nameMatches(e: ext4_xattr_entry, index: number, name: string): boolean {
  return e.e_name_index === index && e.e_name_len === name.length && bytesToBstr(e.e_name) === name;
}

/** ext4_xattr_get: the value of (index, name) or ENODATA. `name` is the stored suffix (a byte string). */
export async function ext4_xattr_get(inode: ext4_inode_info, index: number, name: string): Promise<Uint8Array> {
  if (name.length > 255) throw err(34 /* ERANGE */);
  for (const f of ext4_xattr_ibody_entries(inode)) if (nameMatches(f.entry, index, name)) return ext4_xattr_value(inode, f);
  for (const f of await ext4_xattr_block_entries(inode)) if (nameMatches(f.entry, index, name)) return ext4_xattr_value(inode, f);
  throw err(ENODATA);
}

/** Can this namespace be listed for this dentry (xattr_handler_can_list)? */
function can_list(inode: ext4_inode_info, index: number): boolean {
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
export async function ext4_listxattr_inode(inode: ext4_inode_info): Promise<string[]> {
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

export async function ext4_listxattr(dentry: dentry): Promise<string[]> {
  return ext4_listxattr_inode(EXT4_I(dentry.d_inode!));
}

export const ext4_xattr_user_handler: xattr_handler = {
  prefix: 'user.',
  list: (dentry) => EXT4_SB(dentry.d_sb).test_opt(EXT4_MOUNT_XATTR_USER),
  async get(_dentry, inode: inode, name: string) {
    if (!EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_XATTR_USER)) throw err(EOPNOTSUPP);
    return ext4_xattr_get(EXT4_I(inode), EXT4_XATTR_INDEX_USER, name);
  },
  async set(_dentry, inode: inode, name: string, value: Uint8Array | null, flags: number) {
    if (!EXT4_SB(inode.i_sb).test_opt(EXT4_MOUNT_XATTR_USER)) throw err(EOPNOTSUPP);
    await ext4_xattr_set(EXT4_I(inode), EXT4_XATTR_INDEX_USER, name, value, flags);
  },
};
export const ext4_xattr_trusted_handler: xattr_handler = {
  prefix: 'trusted.',
  list: () => capable(CAP_SYS_ADMIN),
  async get(_dentry, inode: inode, name: string) {
    return ext4_xattr_get(EXT4_I(inode), EXT4_XATTR_INDEX_TRUSTED, name);
  },
  async set(_dentry, inode: inode, name: string, value: Uint8Array | null, flags: number) {
    /* the VFS has checked CAP_SYS_ADMIN (xattr_permission); checked again, cheaply */
    if (!capable(CAP_SYS_ADMIN)) throw err(EPERM);
    await ext4_xattr_set(EXT4_I(inode), EXT4_XATTR_INDEX_TRUSTED, name, value, flags);
  },
};
export const ext4_xattr_security_handler: xattr_handler = {
  prefix: 'security.',
  async get(_dentry, inode: inode, name: string) {
    return ext4_xattr_get(EXT4_I(inode), EXT4_XATTR_INDEX_SECURITY, name);
  },
  async set(_dentry, inode: inode, name: string, value: Uint8Array | null, flags: number) {
    await ext4_xattr_set(EXT4_I(inode), EXT4_XATTR_INDEX_SECURITY, name, value, flags);
  },
};

/* ------------------------------------------------------------------------------------ */
/* ea_inodes                                                                             */

/** ext4_xattr_inode_iget: the ea_inode `ea_ino` named by an entry of `parent`, checked. */
async function ext4_xattr_inode_iget(parent: ext4_inode_info, ea_ino: number): Promise<ext4_inode_info> {
  const sb = parent.i_sb;
  const sbi = EXT4_SB(sb);
  if (ea_ino === parent.i_ino)
    throw ext4_error(sb, 'ext4_xattr_inode_iget', `Parent and EA inode have the same ino ${ea_ino}`, { ino: parent.i_ino });
  if (ea_ino < sbi.s_first_ino || ea_ino > sbi.s_es.s_inodes_count)
    throw ext4_error(sb, 'ext4_xattr_inode_iget', `invalid ea_ino ${ea_ino}`, { ino: parent.i_ino });
  const ea = await ext4_iget(sb, ea_ino, EXT4_IGET_EA_INODE);
  if (!(ea.i_ext4_flags & EXT4_EA_INODE_FL)) {
    await ext4_iput(ea);
    throw ext4_error(sb, 'ext4_xattr_inode_iget', `EA inode ${ea_ino} does not have EXT4_EA_INODE_FL flag`, { ino: parent.i_ino });
  }
  return ea;
}

/** ext4_xattr_inode_hash: crc32c of the value, seeded with s_csum_seed. */
function ext4_xattr_inode_hash(sb: super_block, value: Uint8Array): number {
  return crc32c(EXT4_SB(sb).s_csum_seed, value, 0, value.length) >>> 0;
}

/** ext4_xattr_inode_get_hash: the value's crc32c, kept in atime seconds. */
function ext4_xattr_inode_get_hash(ea: ext4_inode_info): number {
  return ea.i_atime.sec >>> 0;
}

/** ext4_xattr_inode_get_ref: ctime seconds are the high word, the raw i_version the low. */
function ext4_xattr_inode_get_ref(ea: ext4_inode_info): number {
  return ea.i_ctime.sec * 2 ** 32 + le32(ea.i_raw, EXT4_INODE_OFF.l_i_version);
}
function ext4_xattr_inode_set_ref(ea: ext4_inode_info, ref: number): void {
  ea.i_ctime = { sec: Math.floor(ref / 2 ** 32), nsec: 0 };
  put_le32(ea.i_raw, EXT4_INODE_OFF.l_i_version, ref % 2 ** 32);
  if (ext4_fits_in_inode(ea.i_extra_isize, EXT4_INODE_OFF.i_version_hi + 4)) put_le32(ea.i_raw, EXT4_INODE_OFF.i_version_hi, 0);
}

/**
 * ext4_xattr_inode_update_ref: one reference more or less. The last one gone, the ea_inode
 * loses its link and goes on the orphan list, so that a crash before its eviction still
 * frees it; the caller's iput evicts it.
 */
async function ext4_xattr_inode_update_ref(handle: handle_t, ea: ext4_inode_info, delta: number): Promise<void> {
  const ref = ext4_xattr_inode_get_ref(ea) + delta;
  if (ref < 0) {
    ext4_error(ea.i_sb, 'ext4_xattr_inode_update_ref', `EA inode ${ea.i_ino} ref_count=${ref}`, { ino: ea.i_ino });
    return;
  }
  ext4_xattr_inode_set_ref(ea, ref);
  if (delta > 0 && ref === 1) {
    set_nlink(ea, 1);
    await ext4_orphan_del(handle, ea);
  } else if (delta < 0 && ref === 0) {
    /* no longer offered for sharing (ext4_evict_ea_inode's mb_cache_entry_delete) */
    const cache = EXT4_SB(ea.i_sb).s_ea_inode_cache;
    if (cache) mb_cache_entry_delete(cache, ext4_xattr_inode_get_hash(ea), ea.i_ino);
    clear_nlink(ea);
    await ext4_orphan_add(handle, ea);
  }
  await ext4_mark_inode_dirty(handle, ea);
}

/** Add `delta` to the reference count of ea_inode `ea_ino` (ext4_xattr_inode_inc_ref / dec_ref). */
async function ext4_xattr_inode_ref(handle: handle_t, parent: ext4_inode_info, ea_ino: number, delta: number): Promise<void> {
  const ea = await ext4_xattr_inode_iget(parent, ea_ino);
  try {
    await ext4_xattr_inode_update_ref(handle, ea, delta);
  } finally { await ext4_iput(ea); }
}

/** The ea_inode numbers an area's entries hold (ext4_xattr_inode_inc_ref_all / dec_ref_all walk these). */
function ext4_xattr_area_ea_inodes(buf: Uint8Array, first: number, end: number, skip = -1): number[] {
  const out: number[] = [];
  for (let o = first; o + 4 <= end && !ext4_xattr_is_last_entry(buf, o); o += XATTR_LEN_AT(buf, o)) {
    const ino = le32(buf, o + 4);
    if (ino !== 0 && o !== skip) out.push(ino);
  }
  return out;
}

/**
 * ext4_xattr_inode_create + ext4_xattr_inode_write: a new ea_inode holding `value`, owned
 * by the owner's uid and gid, near the owner (goal: the next inode number), one reference.
 * Its blocks are written as metadata under the handle, so the value commits with the entry.
 */
async function ext4_xattr_inode_create(handle: handle_t, inode: ext4_inode_info, value: Uint8Array, hash: number): Promise<ext4_inode_info> {
  const sb = inode.i_sb;
  const root = sb.s_root?.d_inode;
  if (!root) throw err(EINVAL, 'ext4_xattr_inode_create: refuse to create EA inode when umounting');
  const ea = await __ext4_new_inode(handle, EXT4_I(root), S_IFREG | 0o600, { uid: inode.i_uid, gid: inode.i_gid },
    inode.i_ino + 1, EXT4_EA_INODE_FL);
  ea.i_op = ext4_file_inode_operations;
  ea.i_fop = ext4_file_operations;
  ea.i_mapping.a_ops = ext4_aops;
  unlock_new_inode(ea);
  ext4_xattr_inode_set_ref(ea, 1);
  ea.i_atime = { sec: hash, nsec: 0 };
  try {
    await ext4_mark_inode_dirty(handle, ea);
    const bs = EXT4_SB(sb).s_blocksize;
    const nblocks = Math.ceil(value.length / bs);
    for (let lblk = 0; lblk < nblocks;) {
      const m = await ext4_map_blocks_create(handle, ea, lblk, nblocks - lblk);
      if (!m.pblk || m.len <= 0) throw ext4_error(sb, 'ext4_xattr_inode_write', 'no block mapped', { ino: ea.i_ino });
      const n = Math.min(m.len, nblocks - lblk);
      for (let k = 0; k < n; k++) {
        const from = (lblk + k) * bs;
        const bh = await ext4_sb_getblk_zero(sb, m.pblk + k);
        try {
          await ext4_journal_get_create_access(handle, sb, bh);
          const chunk = value.subarray(from, Math.min(value.length, from + bs));
          bh.b_data.set(chunk);
          bh.b_data.fill(0, chunk.length, bs);
          await ext4_handle_dirty_metadata(handle, ea, bh);
        } finally { brelse(bh); }
      }
      lblk += n;
    }
    ea.i_size = value.length;
    ea.i_disksize = value.length;
    await ext4_mark_inode_dirty(handle, ea);
  } catch (e) {
    /* not referenced by anything: its last reference goes, and the iput frees it */
    await ext4_xattr_inode_update_ref(handle, ea, -1).catch(() => {});
    await ext4_iput(ea);
    throw e;
  }
  return ea;
}

/**
 * ext4_xattr_inode_cache_find: an ea_inode already holding exactly `value` (same crc, size
 * and bytes), found through the ea_inode cache; null if none.
 */
async function ext4_xattr_inode_cache_find(inode: ext4_inode_info, value: Uint8Array, hash: number): Promise<ext4_inode_info | null> {
  const cache = EXT4_SB(inode.i_sb).s_ea_inode_cache;
  if (!cache) return null;
  for (let ce = mb_cache_entry_find_first(cache, hash); ce; ce = mb_cache_entry_find_next(cache, ce)) {
    let ea: ext4_inode_info;
    try {
      ea = await ext4_iget(inode.i_sb, ce.e_value, EXT4_IGET_EA_INODE);
    } catch {
      continue;
    }
    try {
      if (ea.i_ext4_flags & EXT4_EA_INODE_FL && ea.i_nlink > 0 && ea.i_size === value.length &&
        ext4_xattr_inode_get_hash(ea) === hash && ext4_xattr_inode_get_ref(ea) > 0) {
        const data = new Uint8Array(value.length);
        await ext4_read_data(ea, 0, data);
        if (data.every((b, k) => b === value[k])) {
          mb_cache_entry_touch(cache, ce);
          const found = ea;
          ea = null!;
          return found;
        }
      }
    } finally { if (ea) await ext4_iput(ea); }
  }
  return null;
}

/**
 * ext4_xattr_inode_lookup_create: the ea_inode for `value`: an existing one with the same
 * value takes another reference, else a new one is made and offered for sharing.
 */
async function ext4_xattr_inode_lookup_create(handle: handle_t, inode: ext4_inode_info, value: Uint8Array, hash: number): Promise<ext4_inode_info> {
  const found = await ext4_xattr_inode_cache_find(inode, value, hash);
  if (found) {
    try {
      await ext4_xattr_inode_update_ref(handle, found, 1);
    } catch (e) { await ext4_iput(found); throw e; }
    return found;
  }
  const ea = await ext4_xattr_inode_create(handle, inode, value, hash);
  const cache = EXT4_SB(inode.i_sb).s_ea_inode_cache;
  if (cache) mb_cache_entry_create(cache, hash, ea.i_ino, true);
  return ea;
}

/**
 * The entry at s.here was given the value's place holder by ext4_xattr_set_entry: make the
 * ea_inode and name it there. The entry hash was already computed from the value's crc.
 */
async function ext4_xattr_set_ea_inode(handle: handle_t, inode: ext4_inode_info, i: ext4_xattr_info, s: ext4_xattr_search,
  refs: ext4_xattr_refs): Promise<void> {
  const ea = await ext4_xattr_inode_lookup_create(handle, inode, i.value!, i.ea_hash);
  put_le32(s.base, s.here + 4, ea.i_ino);
  refs.made.push(ea.i_ino);
  refs.quota += ext4_xattr_inode_quota(inode.i_sb, i.value!.length);
  await ext4_iput(ea);
}

/**
 * The ea_inode references one ext4_xattr_set_handle changes: `drop`, those the replaced or
 * removed entries held (let go once the change is in); `made`, the new ea_inodes (let go
 * again if the change fails, which frees them).
 */
interface ext4_xattr_refs { drop: number[]; made: number[]; quota: number }

/**
 * The space an ea_inode value is charged to the inode that names it, in 512-byte sectors:
 * Linux charges it through the quota calls (ext4_xattr_inode_alloc_quota), which add it to
 * i_blocks even with quotas off, and e2fsck expects it there.
 */
function ext4_xattr_inode_quota(sb: super_block, value_len: number): number {
  const bs = EXT4_SB(sb).s_blocksize;
  return Math.ceil(value_len / bs) * (bs / 512);
}

/** The references the entries in [first, end) of `buf` hold, all dropped (ext4_xattr_inode_dec_ref_all). */
async function ext4_xattr_inode_dec_ref_all(handle: handle_t, parent: ext4_inode_info, buf: Uint8Array, first: number, end: number): Promise<void> {
  for (const ea_ino of ext4_xattr_area_ea_inodes(buf, first, end)) {
    try {
      await ext4_xattr_inode_ref(handle, parent, ea_ino, -1);
    } catch (e) {
      /* as Linux: a bad ea_inode reference is reported (ext4_error) and skipped */
      if ((e as { errno?: number }).errno === undefined) throw e;
    }
  }
}

/**
 * ext4_xattr_delete_inode: an inode being freed lets go of its attributes: the references
 * its in-inode entries hold on ea_inodes, then its block (ext4_xattr_release_block).
 */
export async function ext4_xattr_delete_inode(handle: handle_t, inode: ext4_inode_info): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EA_INODE) && inode.i_state_flags & EXT4_STATE_XATTR && ext4_inode_has_xattr_space(inode)) {
    const hdr = EXT4_GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
    if (le32(inode.i_raw, hdr) === EXT4_XATTR_MAGIC)
      await ext4_xattr_inode_dec_ref_all(handle, inode, inode.i_raw, hdr + EXT4_XATTR_IBODY_HEADER_SIZE, sbi.s_inode_size);
  }
  if (inode.i_file_acl) await ext4_xattr_release_block(handle, inode);
}

/**
 * ext4_xattr_release_block: the inode's xattr block loses a reference; the last one frees
 * it, with the references its entries hold on ea_inodes.
 */
async function ext4_xattr_release_block(handle: handle_t, inode: ext4_inode_info): Promise<void> {
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
    const cache = sbi.s_ea_block_cache;
    if (h.h_refcount <= 1) {
      /* out of the cache before it is freed: nobody may share it from now on */
      if (cache) mb_cache_entry_delete(cache, h.h_hash, blk);
      if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EA_INODE))
        await ext4_xattr_inode_dec_ref_all(handle, inode, bh.b_data, EXT4_XATTR_HEADER_SIZE, sbi.s_blocksize);
      ext4_forget(handle, bh);
      await ext4_free_blocks(handle, inode, blk, 1, EXT4_FREE_BLOCKS_METADATA);
    } else {
      await ext4_journal_get_write_access(handle, sb, bh);
      put_le32(bh.b_data, 4, h.h_refcount - 1);
      /* below the limit again: it can be shared once more */
      const ce = cache && h.h_refcount - 1 === EXT4_XATTR_REFCOUNT_MAX - 1 ? mb_cache_entry_get(cache, h.h_hash, blk) : null;
      if (ce) ce.e_reusable = true;
      if (sbi.s_csum?.metadata_csum) ext4_xattr_block_csum_set(sbi.s_csum, blk, bh.b_data, 0);
      await ext4_handle_dirty_metadata(handle, inode, bh);
    }
  } finally { brelse(bh); }
  inode.i_file_acl = 0;
  inode.i_blocks = Math.max(0, inode.i_blocks - sbi.s_blocksize / 512);
}

/* ------------------------------------------------------------------------------------ */
/* Write side (ext4_xattr_set_handle and its helpers)                                    */

/** ext4_xattr_info: what to set; value null removes. */
interface ext4_xattr_info {
  name_index: number;
  name: Uint8Array;
  value: Uint8Array | null;
  /** the value goes to an ea_inode (Linux's i->in_inode) */
  in_inode: boolean;
  /** its crc32c (ext4_xattr_inode_hash), when in_inode */
  ea_hash: number;
}

/** EXT4_XATTR_BLOCK_RESERVE: with ea_inode, a value in the block leaves this much for names. */
const EXT4_XATTR_BLOCK_RESERVE = (bs: number): number => Math.min(bs / 8, 1024);
/** The place holder ext4_xattr_set_entry leaves in e_value_inum until the ea_inode exists. */
const EA_INODE_PENDING = 0xffffffff;

/**
 * ext4_xattr_search over a private copy of the area (the inode body or the block): `vb` is
 * what e_value_offs counts from, `first` the first entry, `end` the end of the area,
 * `here` the entry found (or where a new one goes). Changes are made to the copy and only
 * copied into the inode or the live buffer once the whole operation has succeeded.
 */
interface ext4_xattr_search {
  base: Uint8Array;
  vb: number;
  first: number;
  end: number;
  here: number;
  not_found: boolean;
}

interface ext4_xattr_ibody_find { s: ext4_xattr_search; dirty: boolean }
interface ext4_xattr_block_find { s: ext4_xattr_search | null; bh: buffer_head | null }

const XATTR_LEN_AT = (buf: Uint8Array, o: number): number => EXT4_XATTR_LEN(buf[o]);

/**
 * The checks an area must pass before it is changed and after (ext4_xattr_check_entries,
 * plus what the in-place editing relies on: every value 4-aligned, after the terminator,
 * inside the area, and no two values overlapping). null when sound, else the reason.
 */
function ext4_xattr_check_area(buf: Uint8Array, first: number, end: number, vb: number): string | null {
  const r = ext4_xattr_entries(buf, first, end, vb, end);
  if (typeof r === 'string') return r;
  let o = first;
  for (const e of r) o += EXT4_XATTR_LEN(e.e_name_len);
  const listEnd = o + 4;
  const spans: [number, number][] = [];
  for (const e of r) {
    if (e.e_value_inum !== 0 || e.e_value_size === 0) continue;
    const v = vb + e.e_value_offs;
    const vend = v + EXT4_XATTR_SIZE(e.e_value_size);
    if (v < listEnd || vend > end) return 'xattr value outside the value area';
    spans.push([v, vend]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let k = 1; k < spans.length; k++) if (spans[k][0] < spans[k - 1][1]) return 'overlapping xattr values';
  return null;
}

/** ext4_xattr_find_entry: the entry (index, name) from s.first; sorted lists stop early. */
function ext4_xattr_find_entry(s: ext4_xattr_search, index: number, name: Uint8Array, sorted: boolean): void {
  const buf = s.base;
  let o = s.first;
  let cmp = 1;
  while (!ext4_xattr_is_last_entry(buf, o)) {
    const nlen = buf[o];
    cmp = index - buf[o + 1];
    if (!cmp) cmp = name.length - nlen;
    if (!cmp) {
      for (let k = 0; k < name.length; k++) {
        cmp = name[k] - buf[o + 16 + k];
        if (cmp) break;
      }
    }
    if (cmp <= 0 && (sorted || cmp === 0)) break;
    o += XATTR_LEN_AT(buf, o);
  }
  s.here = o;
  s.not_found = cmp !== 0;
}

/** EXT4_INODE_HAS_XATTR_SPACE (an inode whose i_extra_isize is 0 is left alone: Linux would grow it). */
function ext4_inode_has_xattr_space(inode: ext4_inode_info): boolean {
  const isz = EXT4_SB(inode.i_sb).s_inode_size;
  return isz > EXT4_GOOD_OLD_INODE_SIZE && inode.i_extra_isize > 0 &&
    EXT4_GOOD_OLD_INODE_SIZE + inode.i_extra_isize + EXT4_XATTR_IBODY_HEADER_SIZE + 3 < isz &&
    inode.i_raw.length >= isz;
}

/** ext4_xattr_ibody_find: null when the inode has no room for attributes at all. */
function ext4_xattr_ibody_find(inode: ext4_inode_info, i: ext4_xattr_info): ext4_xattr_ibody_find | null {
  if (!ext4_inode_has_xattr_space(inode)) return null;
  const isz = EXT4_SB(inode.i_sb).s_inode_size;
  const base = inode.i_raw.slice(0, isz);
  const hdr = EXT4_GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
  const first = hdr + EXT4_XATTR_IBODY_HEADER_SIZE;
  const s: ext4_xattr_search = { base, vb: first, first, end: isz, here: first, not_found: true };
  if (le32(base, hdr) === EXT4_XATTR_MAGIC) {
    const why = ext4_xattr_check_area(base, first, isz, first);
    if (why) throw ext4_error(inode.i_sb, 'ext4_xattr_ibody_find', `corrupted in-inode xattr: ${why}`, { ino: inode.i_ino });
    ext4_xattr_find_entry(s, i.name_index, i.name, false);
  } else {
    /* no attributes yet: the area starts empty (Linux zeroes it with the new inode) */
    base.fill(0, hdr, isz);
  }
  return { s, dirty: false };
}

/** ext4_xattr_block_find: the inode's block, checked, with a private copy to edit. */
async function ext4_xattr_block_find(inode: ext4_inode_info, i: ext4_xattr_info): Promise<ext4_xattr_block_find> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const blk = inode.i_file_acl;
  if (!blk) return { s: null, bh: null };
  const bh = await ext4_sb_bread_bh(sb, blk, 'ext4_xattr_block_find', inode.i_ino);
  try {
    const h = ext4_xattr_header_decode(bh.b_data, 0);
    if (h.h_magic !== EXT4_XATTR_MAGIC || h.h_blocks !== 1)
      throw ext4_error(sb, 'ext4_xattr_block_find', `corrupted xattr block ${blk}: bad magic number in xattr block`, { ino: inode.i_ino });
    if (sbi.s_csum?.metadata_csum && !ext4_xattr_block_csum_verify(sbi.s_csum, blk, bh.b_data, 0))
      throw ext4_csum_error(sb, 'ext4_xattr_block_find', `corrupted xattr block ${blk}: invalid checksum`, { ino: inode.i_ino });
    const bs = sbi.s_blocksize;
    const why = ext4_xattr_check_area(bh.b_data, EXT4_XATTR_HEADER_SIZE, bs, 0);
    if (why) throw ext4_error(sb, 'ext4_xattr_block_find', `corrupted xattr block ${blk}: ${why}`, { ino: inode.i_ino });
    ext4_xattr_block_cache_insert(sb, blk, bh.b_data);
    const s: ext4_xattr_search = { base: bh.b_data.slice(0, bs), vb: 0, first: EXT4_XATTR_HEADER_SIZE, end: bs,
      here: EXT4_XATTR_HEADER_SIZE, not_found: true };
    ext4_xattr_find_entry(s, i.name_index, i.name, true);
    return { s, bh };
  } catch (e) { brelse(bh); throw e; }
}

/** ext4_xattr_value_same: an inline value equal to the new one. */
function ext4_xattr_value_same(s: ext4_xattr_search, i: ext4_xattr_info): boolean {
  const b = s.base, o = s.here;
  if (le32(b, o + 4) !== 0 || !i.value) return false;
  if (le32(b, o + 8) !== i.value.length) return false;
  const v = s.vb + le16(b, o + 2);
  for (let k = 0; k < i.value.length; k++) if (b[v + k] !== i.value[k]) return false;
  return true;
}

/** ext4_xattr_rehash: the block hash over the entry hashes (0 if any entry's is 0). */
function ext4_xattr_rehash(buf: Uint8Array): void {
  const hashes: number[] = [];
  for (let o = EXT4_XATTR_HEADER_SIZE; !ext4_xattr_is_last_entry(buf, o); o += XATTR_LEN_AT(buf, o)) hashes.push(le32(buf, o + 12));
  put_le32(buf, 12, ext4_xattr_block_hash(hashes));
}

/**
 * ext4_xattr_set_entry: set, replace or remove the entry at s.here in the area, as Linux
 * edits it: names grow from the start (a new name goes at s.here), values are packed down
 * from the end, a removed value's hole is closed by moving the lower values up. ENOSPC
 * (before any change) when the area cannot hold the result; `reserve` bytes must stay free
 * for names (EXT4_XATTR_BLOCK_RESERVE). A value for an ea_inode takes no room here: its
 * entry gets EA_INODE_PENDING, which the caller replaces with the new inode's number.
 * Returns the ea_inode the entry named before (0 if none) and its value's size: its
 * reference and its charge are the caller's to drop once the change is in.
 */
function ext4_xattr_set_entry(i: ext4_xattr_info, s: ext4_xattr_search, is_block: boolean, reserve = 0): [inum: number, size: number] {
  const buf = s.base;
  const here = s.here;
  const name_len = i.name.length;
  const found = !s.not_found;
  const old_inum = found ? le32(buf, here + 4) : 0;
  const old_value_size = found ? le32(buf, here + 8) : 0;
  const old_size = found && old_inum === 0 ? EXT4_XATTR_SIZE(le32(buf, here + 8)) : 0;
  const new_size = i.value && !i.in_inode ? EXT4_XATTR_SIZE(i.value.length) : 0;
  const value = i.value;

  if (value && new_size && new_size === old_size) {
    /* same padded size: the value is overwritten where it is */
    const val = s.vb + le16(buf, here + 2);
    put_le32(buf, here + 8, value.length);
    buf.set(value, val);
    buf.fill(0, val + value.length, val + new_size);
  } else {
    let min_offs = s.end - s.vb;
    let last = s.first;
    while (!ext4_xattr_is_last_entry(buf, last)) {
      if (le32(buf, last + 4) === 0 && le32(buf, last + 8) !== 0) min_offs = Math.min(min_offs, le16(buf, last + 2));
      last += XATTR_LEN_AT(buf, last);
    }
    if (value) {
      let free = s.vb + min_offs - last - 4;
      if (found) free += EXT4_XATTR_LEN(name_len) + old_size;
      if (free < EXT4_XATTR_LEN(name_len) + new_size) throw err(ENOSPC);
      if (reserve && new_size && min_offs + old_size - new_size < reserve) throw err(ENOSPC);
    }
    if (found && le32(buf, here + 8) !== 0 && le32(buf, here + 4) === 0) {
      /* take the old value out: the values below it move up by its size */
      const first_val = s.vb + min_offs;
      const offs = le16(buf, here + 2);
      const val = s.vb + offs;
      buf.copyWithin(first_val + old_size, first_val, val);
      buf.fill(0, first_val, first_val + old_size);
      min_offs += old_size;
      for (let o = s.first; !ext4_xattr_is_last_entry(buf, o); o += XATTR_LEN_AT(buf, o)) {
        const eo = le16(buf, o + 2);
        if (le32(buf, o + 4) === 0 && le32(buf, o + 8) !== 0 && eo < offs) put_le16(buf, o + 2, eo + old_size);
      }
    }
    if (!value) {
      /* remove the name: the later entries and the terminator move down */
      const size = EXT4_XATTR_LEN(name_len);
      last -= size;
      buf.copyWithin(here, here + size, last + size + 4);
      buf.fill(0, last + 4, last + size + 4);
    } else if (!found) {
      /* insert the new name at here */
      const size = EXT4_XATTR_LEN(name_len);
      buf.copyWithin(here + size, here, last + 4);
      buf.fill(0, here, here + size);
      buf[here] = name_len;
      buf[here + 1] = i.name_index;
      buf.set(i.name, here + 16);
    } else {
      put_le32(buf, here + 4, 0);
      put_le16(buf, here + 2, 0);
      put_le32(buf, here + 8, 0);
    }
    if (value) {
      if (i.in_inode) {
        put_le32(buf, here + 4, EA_INODE_PENDING);
      } else if (value.length) {
        const voff = min_offs - new_size;
        put_le16(buf, here + 2, voff);
        buf.set(value, s.vb + voff);
        buf.fill(0, s.vb + voff + value.length, s.vb + voff + new_size);
      }
      put_le32(buf, here + 8, value.length);
    }
  }
  if (value) {
    /* in-inode entries carry no hash; block entries hash name and padded value; an
       ea_inode entry, wherever it is, hashes the value's crc in place of the value */
    let hash = 0;
    if (i.in_inode) {
      hash = ext4_xattr_hash_entry_ea_inode(i.name, i.ea_hash);
    } else if (is_block) {
      const v = s.vb + le16(buf, here + 2);
      hash = ext4_xattr_hash_entry(i.name, value.length ? buf.subarray(v, v + new_size) : new Uint8Array(0));
    }
    put_le32(buf, here + 12, hash);
  }
  if (is_block) ext4_xattr_rehash(buf);
  const why = ext4_xattr_check_area(buf, s.first, s.end, s.vb);
  if (why) throw err(EIO, `ext4_xattr_set_entry: refusing to write a bad xattr area (${why})`);
  return [old_inum, old_value_size];
}

/**
 * ext4_xattr_ibody_set: into the inode's copy (committed by ext4_xattr_ibody_commit), with
 * the ea_inode made for a value that goes to one. The reference the replaced entry held is
 * added to `drop`.
 */
async function ext4_xattr_ibody_set(handle: handle_t, inode: ext4_inode_info, i: ext4_xattr_info,
  is: ext4_xattr_ibody_find | null, refs: ext4_xattr_refs): Promise<void> {
  if (!is) throw err(ENOSPC);
  /* on a copy of the copy: a failed try leaves is.s as it was for the next one */
  const s: ext4_xattr_search = { ...is.s, base: is.s.base.slice() };
  const [old, old_size] = ext4_xattr_set_entry(i, s, false);
  if (i.value && i.in_inode) await ext4_xattr_set_ea_inode(handle, inode, i, s, refs);
  is.s.base = s.base;
  if (old) { refs.drop.push(old); refs.quota -= ext4_xattr_inode_quota(inode.i_sb, old_size); }
  is.dirty = true;
}

/** The edited in-inode area into inode.i_raw, with the header magic set or cleared. */
async function ext4_xattr_ibody_commit(inode: ext4_inode_info, is: ext4_xattr_ibody_find): Promise<void> {
  const s = is.s;
  const hdr = s.first - EXT4_XATTR_IBODY_HEADER_SIZE;
  if (!ext4_xattr_is_last_entry(s.base, s.first)) {
    put_le32(s.base, hdr, EXT4_XATTR_MAGIC);
    inode.i_state_flags |= EXT4_STATE_XATTR;
  } else {
    put_le32(s.base, hdr, 0);
    inode.i_state_flags &= ~EXT4_STATE_XATTR;
  }
  inode.i_raw.set(s.base.subarray(hdr, s.end), hdr);
  /* the system.data value may have moved */
  if (inode.i_ext4_flags & EXT4_INLINE_DATA_FL) await ext4_find_inline_data(inode);
}

/**
 * ext4_xattr_ibody_set as inline.c calls it: the system.data attribute set to `value` (or
 * removed, null) in the inode body only, never in the block: ENOSPC when it does not fit
 * there. The caller writes the inode; times are not touched.
 */
export async function ext4_xattr_ibody_set_system_data(handle: handle_t, inode: ext4_inode_info, value: Uint8Array | null): Promise<void> {
  const name = new Uint8Array([0x64, 0x61, 0x74, 0x61]); /* "data" */
  const i: ext4_xattr_info = { name_index: EXT4_XATTR_INDEX_SYSTEM, name, value, in_inode: false, ea_hash: 0 };
  const is = ext4_xattr_ibody_find(inode, i);
  if (!is) throw err(ENOSPC);
  if (!value && is.s.not_found) return;
  await ext4_xattr_ibody_set(handle, inode, i, is, { drop: [], made: [], quota: 0 });
  await ext4_xattr_ibody_commit(inode, is);
}

/**
 * ext4_xattr_block_cache_insert: a checked xattr block goes into the cache under its hash,
 * reusable while its refcount is below EXT4_XATTR_REFCOUNT_MAX. Blocks naming ea_inodes are
 * not offered for sharing here (a shared block's ea_inode references are the block's; the
 * values themselves are shared through s_ea_inode_cache instead).
 */
function ext4_xattr_block_cache_insert(sb: super_block, blk: number, buf: Uint8Array): void {
  const sbi = EXT4_SB(sb);
  const cache = sbi.s_ea_block_cache;
  const hash = le32(buf, 12);
  if (!cache || !hash) return;
  if (ext4_xattr_area_ea_inodes(buf, EXT4_XATTR_HEADER_SIZE, sbi.s_blocksize).length) return;
  mb_cache_entry_create(cache, hash, blk, le32(buf, 4) < EXT4_XATTR_REFCOUNT_MAX);
}

/** ext4_xattr_cmp: do two blocks hold the same attributes (names, hashes, sizes, values)? */
function ext4_xattr_cmp(a: Uint8Array, b: Uint8Array): boolean {
  let oa = EXT4_XATTR_HEADER_SIZE, ob = EXT4_XATTR_HEADER_SIZE;
  while (!ext4_xattr_is_last_entry(a, oa)) {
    if (ext4_xattr_is_last_entry(b, ob)) return false;
    const nlen = a[oa]!;
    if (nlen !== b[ob] || a[oa + 1] !== b[ob + 1] || le32(a, oa + 4) !== le32(b, ob + 4) ||
      le32(a, oa + 8) !== le32(b, ob + 8) || le32(a, oa + 12) !== le32(b, ob + 12)) return false;
    for (let k = 0; k < nlen; k++) if (a[oa + 16 + k] !== b[ob + 16 + k]) return false;
    const size = le32(a, oa + 8);
    if (le32(a, oa + 4) === 0 && size) {
      const va = le16(a, oa + 2), vb = le16(b, ob + 2);
      if (va + size > a.length || vb + size > b.length) return false;
      for (let k = 0; k < size; k++) if (a[va + k] !== b[vb + k]) return false;
    }
    oa += EXT4_XATTR_LEN(nlen);
    ob += EXT4_XATTR_LEN(nlen);
  }
  return ext4_xattr_is_last_entry(b, ob);
}

/**
 * ext4_xattr_block_cache_find: a block already on the disk holding exactly the attributes
 * of `base`, found through the cache by its hash and checked, or null.
 */
async function ext4_xattr_block_cache_find(inode: ext4_inode_info, base: Uint8Array): Promise<buffer_head | null> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const cache = sbi.s_ea_block_cache;
  const hash = le32(base, 12);
  if (!cache || !hash) return null;
  for (let ce = mb_cache_entry_find_first(cache, hash); ce;) {
    const next = mb_cache_entry_find_next(cache, ce);
    const bh = await ext4_sb_bread_bh(sb, ce.e_value, 'ext4_xattr_block_cache_find', inode.i_ino).catch(() => null);
    if (bh) {
      const h = ext4_xattr_header_decode(bh.b_data, 0);
      const sound = h.h_magic === EXT4_XATTR_MAGIC && h.h_blocks === 1 && h.h_hash === hash &&
        (!sbi.s_csum?.metadata_csum || ext4_xattr_block_csum_verify(sbi.s_csum, ce.e_value, bh.b_data, 0));
      if (sound && ext4_xattr_cmp(base, bh.b_data)) {
        mb_cache_entry_touch(cache, ce);
        return bh;
      }
      brelse(bh);
      if (!sound) mb_cache_entry_delete(cache, hash, ce.e_value);
    } else mb_cache_entry_delete(cache, hash, ce.e_value);
    ce = next;
  }
  return null;
}

/**
 * Share `found`, a block equal to the one this inode needs: one more reference on it (false
 * when it has EXT4_XATTR_REFCOUNT_MAX already: it stops being offered).
 */
async function ext4_xattr_block_share(handle: handle_t, inode: ext4_inode_info, found: buffer_head): Promise<boolean> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const ref = le32(found.b_data, 4) + 1;
  const ce = sbi.s_ea_block_cache ? mb_cache_entry_get(sbi.s_ea_block_cache, le32(found.b_data, 12), found.b_blocknr) : null;
  if (ref > EXT4_XATTR_REFCOUNT_MAX) {
    if (ce) ce.e_reusable = false;
    return false;
  }
  await ext4_journal_get_write_access(handle, sb, found);
  put_le32(found.b_data, 4, ref);
  if (ref === EXT4_XATTR_REFCOUNT_MAX && ce) ce.e_reusable = false;
  if (sbi.s_csum?.metadata_csum) ext4_xattr_block_csum_set(sbi.s_csum, found.b_blocknr, found.b_data, 0);
  await ext4_handle_dirty_metadata(handle, inode, found);
  return true;
}

/**
 * ext4_xattr_block_set: the change applied to the inode's block. A block only this inode
 * uses is changed in place; a shared one (h_refcount > 1) is copied to a new block and the
 * old one loses a reference; a block left empty is released. A block on the disk equal to
 * the one the inode needs is shared instead of a new one (or of the one just changed in
 * place), found through the block cache (mbcache), as Linux does.
 */
async function ext4_xattr_block_set(handle: handle_t, inode: ext4_inode_info, i: ext4_xattr_info,
  bs: ext4_xattr_block_find, refs: ext4_xattr_refs): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const bsize = sbi.s_blocksize;
  let s: ext4_xattr_search;
  let inPlace = false;
  let unshared = 0; /* the charge of a shared entry replaced in the copy (counted once this succeeds) */
  if (bs.bh && bs.s) {
    /* on a copy of the copy: a failed try leaves bs.s as it was for the next one */
    s = { ...bs.s, base: bs.s.base.slice() };
    if (le32(s.base, 4) === 1) inPlace = true;
    else {
      put_le32(s.base, 4, 1); /* the copy is this inode's alone */
      /* the ea_inode reference of the entry being replaced stays with the shared block;
         only this inode's charge for it goes */
      if (!s.not_found && le32(s.base, s.here + 4) !== 0) {
        unshared = ext4_xattr_inode_quota(sb, le32(s.base, s.here + 8));
        put_le32(s.base, s.here + 4, 0);
        put_le32(s.base, s.here + 8, 0);
      }
    }
  } else {
    const base = new Uint8Array(bsize);
    ext4_xattr_header_encode({ h_magic: EXT4_XATTR_MAGIC, h_refcount: 1, h_blocks: 1, h_hash: 0, h_checksum: 0 }, base, 0);
    s = { base, vb: 0, first: EXT4_XATTR_HEADER_SIZE, end: bsize, here: EXT4_XATTR_HEADER_SIZE, not_found: true };
    ext4_xattr_find_entry(s, i.name_index, i.name, true);
  }
  const reserve = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EA_INODE) ? EXT4_XATTR_BLOCK_RESERVE(bsize) : 0;
  const [old, old_size] = ext4_xattr_set_entry(i, s, true, reserve);
  if (i.value && i.in_inode) await ext4_xattr_set_ea_inode(handle, inode, i, s, refs);
  if (old) { refs.drop.push(old); refs.quota -= ext4_xattr_inode_quota(sb, old_size); }
  const empty = ext4_xattr_is_last_entry(s.base, s.first);
  const cache = sbi.s_ea_block_cache;
  const shareable = !empty && !ext4_xattr_area_ea_inodes(s.base, s.first, s.end).length;
  if (inPlace) {
    /* the block is this inode's: changed where it is (and freed below if now empty, with
       nothing left in it to release), out of the cache while it changes */
    const bh = bs.bh!;
    if (cache) mb_cache_entry_delete(cache, le32(bh.b_data, 12), inode.i_file_acl);
    await ext4_journal_get_write_access(handle, sb, bh);
    bh.b_data.set(s.base);
    if (sbi.s_csum?.metadata_csum) ext4_xattr_block_csum_set(sbi.s_csum, inode.i_file_acl, bh.b_data, 0);
    await ext4_handle_dirty_metadata(handle, inode, bh);
    refs.made = []; /* the block names it now */
    if (!empty) {
      /* another block equal to it now? then that one is shared and this one goes */
      const other = shareable ? await ext4_xattr_block_cache_find(inode, s.base) : null;
      const reused = other && other.b_blocknr !== inode.i_file_acl && await ext4_xattr_block_share(handle, inode, other);
      if (!reused) {
        if (other) brelse(other);
        ext4_xattr_block_cache_insert(sb, inode.i_file_acl, bh.b_data);
        return;
      }
      const blk = other!.b_blocknr;
      brelse(other);
      await ext4_xattr_release_block(handle, inode);
      inode.i_file_acl = blk;
      inode.i_blocks += bsize / 512;
      return;
    }
  }
  let newBlk = 0;
  if (!empty) {
    /* a block on the disk equal to the new one is shared instead (mbcache) */
    const found = shareable ? await ext4_xattr_block_cache_find(inode, s.base) : null;
    if (found && found.b_blocknr === inode.i_file_acl) {
      /* the block this inode has already holds exactly this: keep it */
      brelse(found);
      refs.quota -= unshared;
      return;
    }
    if (found) {
      const ok = await ext4_xattr_block_share(handle, inode, found);
      if (ok) newBlk = found.b_blocknr;
      brelse(found);
    }
  }
  if (!empty && !newBlk) {
    const group = Math.floor((inode.i_ino - 1) / sbi.s_inodes_per_group);
    newBlk = await ext4_new_meta_blocks(handle, inode, ext4_group_first_block_no(sbi, group));
    const nbh = await ext4_sb_getblk_zero(sb, newBlk);
    try {
      await ext4_journal_get_create_access(handle, sb, nbh);
      nbh.b_data.set(s.base);
      if (sbi.s_csum?.metadata_csum) ext4_xattr_block_csum_set(sbi.s_csum, newBlk, nbh.b_data, 0);
      await ext4_handle_dirty_metadata(handle, inode, nbh);
      ext4_xattr_block_cache_insert(sb, newBlk, nbh.b_data);
    } finally { brelse(nbh); }
    /* a new block holds new references to the ea_inodes it names (the one just made has its own) */
    for (const ea_ino of ext4_xattr_area_ea_inodes(s.base, s.first, s.end, i.value && i.in_inode ? s.here : -1))
      await ext4_xattr_inode_ref(handle, inode, ea_ino, 1);
  }
  /* drop the old block (its last reference frees it), then point at the new one */
  if (inode.i_file_acl) await ext4_xattr_release_block(handle, inode);
  if (newBlk) {
    inode.i_file_acl = newBlk;
    inode.i_blocks += bsize / 512;
  }
  refs.made = []; /* the block names it now */
  refs.quota -= unshared;
}

/** ext4_xattr_update_super_block: the first attribute turns on the ext_attr feature. */
function ext4_xattr_update_super_block(sb: super_block): void {
  const sbi = EXT4_SB(sb);
  if (sbi.has_compat(EXT4_FEATURE_COMPAT_EXT_ATTR)) return;
  sbi.s_es.s_feature_compat = (sbi.s_es.s_feature_compat | EXT4_FEATURE_COMPAT_EXT_ATTR) >>> 0;
  sbi.s_dirty_super = true;
}

const XATTR_CREATE = 0x1, XATTR_REPLACE = 0x2;

/**
 * ext4_xattr_set_handle: set (value) or remove (null) attribute (index, name) of the inode
 * under `handle`. XATTR_CREATE: EEXIST if it exists; XATTR_REPLACE: ENODATA if it does not.
 * In-inode first; what does not fit there goes to the block, and the copy in the other
 * place is removed. ctime changes when something changed.
 */
export async function ext4_xattr_set_handle(handle: handle_t, inode: ext4_inode_info, name_index: number, name: string,
  value: Uint8Array | null, flags: number): Promise<void> {
  if (name.length > 255) throw err(ERANGE);
  const nb = new Uint8Array(name.length);
  for (let k = 0; k < name.length; k++) nb[k] = name.charCodeAt(k) & 0xff; // bits32: a byte of the name
  const sb = inode.i_sb;
  const ea_feature = EXT4_SB(sb).has_incompat(EXT4_FEATURE_INCOMPAT_EA_INODE);
  const i: ext4_xattr_info = { name_index, name: nb, value, in_inode: false, ea_hash: 0 };
  const is = ext4_xattr_ibody_find(inode, i);
  let bs: ext4_xattr_block_find = { s: null, bh: null };
  const refs: ext4_xattr_refs = { drop: [], made: [], quota: 0 };
  try {
    if (!is || is.s.not_found) bs = await ext4_xattr_block_find(inode, i);
    const inIbody = !!is && !is.s.not_found;
    const inBlock = !!bs.s && !bs.s.not_found;
    if (!inIbody && !inBlock) {
      if (flags & XATTR_REPLACE) throw err(ENODATA);
      if (!value) return;
    } else if (flags & XATTR_CREATE) throw err(EEXIST);
    if (!value) {
      if (inIbody) await ext4_xattr_ibody_set(handle, inode, i, is, refs);
      else await ext4_xattr_block_set(handle, inode, i, bs, refs);
    } else {
      if (inIbody && ext4_xattr_value_same(is!.s, i)) return;
      if (inBlock && ext4_xattr_value_same(bs.s!, i)) return;
      const isENOSPC = (e: unknown) => (e as { errno?: number }).errno === ENOSPC;
      const toEaInode = () => { i.in_inode = true; i.ea_hash = ext4_xattr_inode_hash(sb, value); };
      if (ea_feature && EXT4_XATTR_SIZE(value.length) > EXT4_XATTR_MIN_LARGE_EA_SIZE(EXT4_SB(sb).s_blocksize)) toEaInode();
      /* in the inode; else in the block; else, with ea_inode, in an ea_inode (named from the
         inode, else from the block): Linux's order of tries */
      for (;;) {
        try {
          await ext4_xattr_ibody_set(handle, inode, i, is, refs);
          if (inBlock) await ext4_xattr_block_set(handle, inode, { ...i, value: null, in_inode: false }, bs, refs);
          break;
        } catch (e) { if (!isENOSPC(e)) throw e; }
        if (inode.i_file_acl && !bs.bh) bs = await ext4_xattr_block_find(inode, i);
        try {
          await ext4_xattr_block_set(handle, inode, i, bs, refs);
          if (inIbody) await ext4_xattr_ibody_set(handle, inode, { ...i, value: null, in_inode: false }, is, refs);
          break;
        } catch (e) {
          if (!isENOSPC(e) || !ea_feature || i.in_inode || !value.length) throw e;
          toEaInode();
        }
      }
    }
    if (is?.dirty) await ext4_xattr_ibody_commit(inode, is);
    refs.made = [];
    for (const ea_ino of refs.drop) await ext4_xattr_inode_ref(handle, inode, ea_ino, -1);
    inode.i_blocks = Math.max(0, inode.i_blocks + refs.quota);
    ext4_xattr_update_super_block(inode.i_sb);
    inode.i_ctime = current_time(inode);
    await ext4_mark_inode_dirty(handle, inode);
  } catch (e) {
    /* an ea_inode made for a change that did not go in: its one reference goes, freeing it */
    for (const ea_ino of refs.made) await ext4_xattr_inode_ref(handle, inode, ea_ino, -1).catch(() => {});
    throw e;
  } finally { if (bs.bh) brelse(bs.bh); }
}

/**
 * __ext4_xattr_set_credits: the owner inode, the old and new blocks with their bitmaps and
 * descriptors; with ea_inode, the new ea_inode with its data blocks and their bitmaps, and
 * (unless creating) the old ea_inode's release, plus a reference update for every ea_inode
 * a cloned block names.
 */
function ext4_xattr_set_credits(inode: ext4_inode_info, value_len: number, is_create: boolean): number {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  let credits = EXT4_DATA_TRANS_BLOCKS;
  if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EA_INODE)) return credits;
  const bs = sbi.s_blocksize;
  let blocks = Math.ceil(value_len / bs) + 1;
  credits += 4 + blocks * 3;
  if (!is_create) {
    blocks = Math.floor(65536 / bs) + 1;
    credits += 4 + blocks * 2;
  }
  /* a cloned block: one reference update per entry at most (a block holds few) */
  return credits + Math.floor(bs / 32);
}

/** ext4_xattr_set: one attribute change in its own handle. */
export async function ext4_xattr_set(inode: ext4_inode_info, name_index: number, name: string,
  value: Uint8Array | null, flags: number): Promise<void> {
  const handle = ext4_journal_start(inode, EXT4_HT_XATTR, ext4_xattr_set_credits(inode, value?.length ?? 0, (flags & XATTR_CREATE) !== 0));
  try {
    await ext4_xattr_set_handle(handle, inode, name_index, name, value, flags);
  } catch (e) {
    await ext4_journal_stop(handle).catch(() => {});
    throw e;
  }
  await ext4_journal_stop(handle);
}
