/*
 * Extent tree on-disk structures (fs/ext4/ext4_extents.h): header, index and leaf entries, the tail
 * checksum; codecs and validators over Uint8Array.
 */
import { HI32, hi32, le16, le32, lo32, put_le16, put_le32 } from '../../lib/struct.js';
/* ------------------------------------------------------------------------------------ */
/* Extents (ext4_extents.h)                                                             */

export const EXT4_EXT_MAGIC = 0xf30a;
export const EXT4_MAX_EXTENT_DEPTH = 5;
/* ee_len above this marks an unwritten extent; 32768 itself is an initialized one */
export const EXT_INIT_MAX_LEN = 32768, EXT_UNWRITTEN_MAX_LEN = 32767;
export const EXT4_EXTENT_HEADER_SIZE = 12, EXT4_EXTENT_ENTRY_SIZE = 12, EXT4_EXTENT_TAIL_SIZE = 4;

export interface ext4_extent_header { eh_magic: number; eh_entries: number; eh_max: number; eh_depth: number; eh_generation: number }
/** A leaf, decoded: ee_len already split into length and the unwritten bit. */
export interface ext4_extent { ee_block: number; len: number; unwritten: boolean; start: number }
/** An index entry: logical start and the physical block of the next level. */
export interface ext4_extent_idx { ei_block: number; leaf: number }

export function ext4_ext_header_decode(buf: Uint8Array, off = 0): ext4_extent_header {
  return { eh_magic: le16(buf, off), eh_entries: le16(buf, off + 2), eh_max: le16(buf, off + 4),
    eh_depth: le16(buf, off + 6), eh_generation: le32(buf, off + 8) };
}
export function ext4_ext_header_encode(h: ext4_extent_header, buf: Uint8Array, off = 0): void {
  put_le16(buf, off, h.eh_magic); put_le16(buf, off + 2, h.eh_entries); put_le16(buf, off + 4, h.eh_max);
  put_le16(buf, off + 6, h.eh_depth); put_le32(buf, off + 8, h.eh_generation);
}
/** Leaf entry i (0-based) of the node whose header is at `off`. */
export function ext4_extent_decode(buf: Uint8Array, off: number, i: number): ext4_extent {
  const o = off + EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE * i;
  const raw = le16(buf, o + 4);
  const unwritten = raw > EXT_INIT_MAX_LEN;
  return { ee_block: le32(buf, o), len: unwritten ? raw - EXT_INIT_MAX_LEN : raw, unwritten,
    start: le16(buf, o + 6) * HI32 + le32(buf, o + 8) };
}
export function ext4_extent_encode(e: ext4_extent, buf: Uint8Array, off: number, i: number): void {
  const o = off + EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE * i;
  put_le32(buf, o, e.ee_block);
  put_le16(buf, o + 4, e.unwritten ? e.len + EXT_INIT_MAX_LEN : e.len);
  put_le16(buf, o + 6, hi32(e.start) & 0xffff);
  put_le32(buf, o + 8, lo32(e.start));
}
export function ext4_extent_idx_decode(buf: Uint8Array, off: number, i: number): ext4_extent_idx {
  const o = off + EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE * i;
  return { ei_block: le32(buf, o), leaf: le16(buf, o + 8) * HI32 + le32(buf, o + 4) };
}
export function ext4_extent_idx_encode(x: ext4_extent_idx, buf: Uint8Array, off: number, i: number): void {
  const o = off + EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE * i;
  put_le32(buf, o, x.ei_block); put_le32(buf, o + 4, lo32(x.leaf));
  put_le16(buf, o + 8, hi32(x.leaf) & 0xffff); put_le16(buf, o + 10, 0);
}
/** Entries that fit in the inode's i_block root (4) or a tree block (ext4_ext_space_*). */
export const ext4_ext_space_root = (): number => (60 - EXT4_EXTENT_HEADER_SIZE) / EXT4_EXTENT_ENTRY_SIZE;
export const ext4_ext_space_block = (blockSize: number): number =>
  Math.floor((blockSize - EXT4_EXTENT_HEADER_SIZE) / EXT4_EXTENT_ENTRY_SIZE);
/** Where the struct ext4_extent_tail of a tree block lies: after eh_max entries. */
export const ext4_extent_tail_offset = (h: ext4_extent_header): number =>
  EXT4_EXTENT_HEADER_SIZE + EXT4_EXTENT_ENTRY_SIZE * h.eh_max;

/**
 * __ext4_ext_check's structural tests for one node (header at `off`, `depth` expected,
 * at most `max` entries), with Linux's messages. Entry ordering is checked as in
 * ext4_valid_extent_entries; block-range validity needs the filesystem's geometry and is
 * the caller's (pass `blockOk` to include it). Checksums are csum.ts's.
 */
export function ext4_ext_check(buf: Uint8Array, off: number, depth: number, max: number,
  blockOk?: (pblk: number, len: number) => boolean): string | null {
  const h = ext4_ext_header_decode(buf, off);
  if (h.eh_magic !== EXT4_EXT_MAGIC) return 'invalid magic';
  if (h.eh_depth !== depth) return 'unexpected eh_depth';
  if (h.eh_max === 0) return 'invalid eh_max';
  if (h.eh_max > max) return 'too large eh_max';
  if (h.eh_entries > h.eh_max) return 'invalid eh_entries';
  if (h.eh_entries === 0 && depth > 0) return 'eh_entries is 0 but eh_depth is > 0';
  if (depth > EXT4_MAX_EXTENT_DEPTH) return 'too large eh_depth';
  let prevEnd = -1;
  for (let i = 0; i < h.eh_entries; i++) {
    if (depth === 0) {
      const e = ext4_extent_decode(buf, off, i);
      if (e.len === 0 || e.ee_block + e.len - 1 > 0xffffffff || (blockOk && !blockOk(e.start, e.len)))
        return 'invalid extent entries';
      if (e.ee_block <= prevEnd) return 'invalid extent entries';
      prevEnd = e.ee_block + e.len - 1;
    } else {
      const x = ext4_extent_idx_decode(buf, off, i);
      if (blockOk && !blockOk(x.leaf, 1)) return 'invalid extent entries';
      if (x.ei_block <= prevEnd) return 'invalid extent entries';
      prevEnd = x.ei_block;
    }
  }
  return null;
}
