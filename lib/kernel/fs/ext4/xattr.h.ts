/*
 * Extended attribute on-disk structures (fs/ext4/xattr.h): block and in-inode headers, entries,
 * the entry hash; codecs and validators over Uint8Array.
 */
import { EXT4_GOOD_OLD_INODE_SIZE } from './layout.js';
import { le16, le32, put_le16, put_le32 } from '../../lib/struct.js';
/* ------------------------------------------------------------------------------------ */
/* Extended attributes (xattr.h)                                                         */

export const EXT4_XATTR_MAGIC = 0xea020000;
export const EXT4_XATTR_HEADER_SIZE = 32;     /* struct ext4_xattr_header (block) */
export const EXT4_XATTR_IBODY_HEADER_SIZE = 4; /* struct ext4_xattr_ibody_header */
export const EXT4_XATTR_ENTRY_SIZE = 16;      /* struct ext4_xattr_entry without the name */
export const EXT4_XATTR_REFCOUNT_MAX = 1024;
/** EXT4_XATTR_MIN_LARGE_EA_SIZE: a padded value bigger than this goes to an ea_inode (with the feature). */
export const EXT4_XATTR_MIN_LARGE_EA_SIZE = (blockSize: number): number => blockSize - EXT4_XATTR_ROUND - EXT4_XATTR_ENTRY_SIZE - 4;
export const EXT4_XATTR_INDEX_USER = 1, EXT4_XATTR_INDEX_POSIX_ACL_ACCESS = 2,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT = 3, EXT4_XATTR_INDEX_TRUSTED = 4, EXT4_XATTR_INDEX_LUSTRE = 5,
  EXT4_XATTR_INDEX_SECURITY = 6, EXT4_XATTR_INDEX_SYSTEM = 7, EXT4_XATTR_INDEX_RICHACL = 8,
  EXT4_XATTR_INDEX_ENCRYPTION = 9, EXT4_XATTR_INDEX_HURD = 10;
/* Inline data lives in "system.data" */
export const EXT4_XATTR_SYSTEM_DATA = 'data';

/*
 * Name index → prefix. The ACL indices stand for one whole name each (the stored suffix is
 * empty); the others are prefixes of the stored suffix.
 */
const XATTR_PREFIXES: [index: number, prefix: string, whole: boolean][] = [
  [EXT4_XATTR_INDEX_USER, 'user.', false],
  [EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, 'system.posix_acl_access', true],
  [EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT, 'system.posix_acl_default', true],
  [EXT4_XATTR_INDEX_TRUSTED, 'trusted.', false],
  [EXT4_XATTR_INDEX_SECURITY, 'security.', false],
  [EXT4_XATTR_INDEX_RICHACL, 'system.richacl', true],
  [EXT4_XATTR_INDEX_SYSTEM, 'system.', false],
];
/** The full name for an on-disk (index, suffix), or null for indices Linux does not list. */
export function ext4_xattr_full_name(index: number, suffix: string): string | null {
  for (const [i, p, whole] of XATTR_PREFIXES) if (i === index) return whole ? p : p + suffix;
  return null;
}
/** A full name → (index, suffix) as ext4 stores it; null if no handler takes the name. */
export function ext4_xattr_split_name(name: string): { index: number; suffix: string } | null {
  for (const [i, p, whole] of XATTR_PREFIXES) {
    if (whole ? name === p : name.startsWith(p) && name.length > p.length) return { index: i, suffix: whole ? '' : name.slice(p.length) };
  }
  return null;
}

export interface ext4_xattr_header { h_magic: number; h_refcount: number; h_blocks: number; h_hash: number; h_checksum: number }
export function ext4_xattr_header_decode(buf: Uint8Array, off = 0): ext4_xattr_header {
  return { h_magic: le32(buf, off), h_refcount: le32(buf, off + 4), h_blocks: le32(buf, off + 8),
    h_hash: le32(buf, off + 12), h_checksum: le32(buf, off + 16) };
}
/** Writes the header; h_reserved is zeroed as Linux creates it. */
export function ext4_xattr_header_encode(h: ext4_xattr_header, buf: Uint8Array, off = 0): void {
  put_le32(buf, off, h.h_magic); put_le32(buf, off + 4, h.h_refcount); put_le32(buf, off + 8, h.h_blocks);
  put_le32(buf, off + 12, h.h_hash); put_le32(buf, off + 16, h.h_checksum);
  buf.fill(0, off + 20, off + EXT4_XATTR_HEADER_SIZE);
}
/** Where in-inode xattrs start: after the 128 bytes and i_extra_isize, the 4-byte magic. */
export const ext4_xattr_ibody_offset = (extraIsize: number): number => EXT4_GOOD_OLD_INODE_SIZE + extraIsize;

export interface ext4_xattr_entry {
  e_name_len: number; e_name_index: number; e_value_offs: number; e_value_inum: number;
  e_value_size: number; e_hash: number; e_name: Uint8Array;
}
export const EXT4_XATTR_PAD = 4;
export const EXT4_XATTR_ROUND = EXT4_XATTR_PAD - 1;
export const EXT4_XATTR_LEN = (nameLen: number): number => (nameLen + EXT4_XATTR_ENTRY_SIZE + 3) & ~3;
export const EXT4_XATTR_SIZE = (size: number): number => Math.ceil(size / 4) * 4;
/** IS_LAST_ENTRY: the list ends with four zero bytes. */
export const ext4_xattr_is_last_entry = (buf: Uint8Array, off: number): boolean => le32(buf, off) === 0;

export function ext4_xattr_entry_decode(buf: Uint8Array, off: number): ext4_xattr_entry {
  const n = buf[off];
  return { e_name_len: n, e_name_index: buf[off + 1], e_value_offs: le16(buf, off + 2),
    e_value_inum: le32(buf, off + 4), e_value_size: le32(buf, off + 8), e_hash: le32(buf, off + 12),
    e_name: buf.slice(off + 16, off + 16 + n) };
}
export function ext4_xattr_entry_encode(e: ext4_xattr_entry, buf: Uint8Array, off: number): void {
  buf[off] = e.e_name_len; buf[off + 1] = e.e_name_index; put_le16(buf, off + 2, e.e_value_offs);
  put_le32(buf, off + 4, e.e_value_inum); put_le32(buf, off + 8, e.e_value_size); put_le32(buf, off + 12, e.e_hash);
  buf.set(e.e_name.subarray(0, e.e_name_len), off + 16);
  buf.fill(0, off + 16 + e.e_name_len, off + EXT4_XATTR_LEN(e.e_name_len));
}

/**
 * Walks the entry list from `first` to the terminating zero word, checking what
 * ext4_xattr_check_entries checks. `end` bounds the area; `valueBase` is what e_value_offs
 * is relative to (the block start, or the first in-inode entry); `valueEnd` bounds values.
 * Returns the entries or a reason.
 */
export function ext4_xattr_entries(buf: Uint8Array, first: number, end: number, valueBase: number,
  valueEnd: number): ext4_xattr_entry[] | string {
  const out: ext4_xattr_entry[] = [];
  let o = first;
  for (;;) {
    if (o + 4 > end) return 'xattr entries run off the end';
    if (ext4_xattr_is_last_entry(buf, o)) break;
    if (o + EXT4_XATTR_ENTRY_SIZE > end) return 'xattr entries run off the end';
    const e = ext4_xattr_entry_decode(buf, o);
    const next = o + EXT4_XATTR_LEN(e.e_name_len);
    if (next > end) return 'xattr entries run off the end';
    if (e.e_value_inum === 0 && e.e_value_size > 0) {
      const vs = valueBase + e.e_value_offs;
      if (vs < next || vs > valueEnd || e.e_value_size > valueEnd - vs ||
        (e.e_value_offs & (EXT4_XATTR_PAD - 1)) !== 0) return 'corrupted xattr value';
    } else if (e.e_value_inum !== 0 && e.e_value_offs !== 0) return 'corrupted xattr value';
    out.push(e);
    o = next;
  }
  /* Values must not overlap the list (the check Linux does before trusting a block). */
  return out;
}

/*
 * Entry and block hashes (xattr.c): the name folded in 5 bits at a time, then the value's
 * le32 words 16 bits at a time; the block hash folds the entry hashes and is 0 if any is 0.
 * ext4 once hashed names as signed chars; Linux accepts either, so both are offered.
 */
const NAME_HASH_SHIFT = 5, VALUE_HASH_SHIFT = 16, BLOCK_HASH_SHIFT = 16;
export function ext4_xattr_hash_entry(name: Uint8Array, value: Uint8Array | null, signed = false): number {
  let hash = 0;
  for (let i = 0; i < name.length; i++) {
    const c = signed ? (name[i] << 24) >> 24 : name[i];
    hash = ((hash << NAME_HASH_SHIFT) ^ (hash >>> (32 - NAME_HASH_SHIFT)) ^ c) >>> 0;
  }
  if (value) {
    const words = Math.ceil(value.length / 4);
    for (let i = 0; i < words; i++) {
      let w = 0;
      for (let k = 3; k >= 0; k--) w = (w << 8) | (4 * i + k < value.length ? value[4 * i + k] : 0); // bits32: a byte of the value
      hash = ((hash << VALUE_HASH_SHIFT) ^ (hash >>> (32 - VALUE_HASH_SHIFT)) ^ (w >>> 0)) >>> 0;
    }
  }
  return hash;
}
/** For an ea_inode entry the "value" is the ea_inode's stored hash word. */
export function ext4_xattr_hash_entry_ea_inode(name: Uint8Array, eaInodeHash: number, signed = false): number {
  const v = new Uint8Array(4);
  put_le32(v, 0, eaInodeHash);
  return ext4_xattr_hash_entry(name, v, signed);
}
export function ext4_xattr_block_hash(entryHashes: readonly number[]): number {
  let hash = 0;
  for (const h of entryHashes) {
    if (h === 0) return 0;
    hash = ((hash << BLOCK_HASH_SHIFT) ^ (hash >>> (32 - BLOCK_HASH_SHIFT)) ^ h) >>> 0;
  }
  return hash;
}
