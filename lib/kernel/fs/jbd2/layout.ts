/*
 * jbd2 on-disk structures (include/linux/jbd2.h): the journal superblock, the common block
 * header, descriptor blocks and their tags, commit blocks and revoke blocks. Pure codecs
 * and validators over Uint8Array; replay and commit logic live elsewhere. Pure kernel code.
 *
 * Unlike ext4, everything in the journal is big-endian (lib/struct.ts's be32 and friends).
 */
import { be16, be32, put_be16, put_be32 } from '../../lib/struct.js';
export { be32, put_be32 };

export const JBD2_MAGIC_NUMBER = 0xc03b3998;

/* h_blocktype */
export const JBD2_DESCRIPTOR_BLOCK = 1, JBD2_COMMIT_BLOCK = 2, JBD2_SUPERBLOCK_V1 = 3,
  JBD2_SUPERBLOCK_V2 = 4, JBD2_REVOKE_BLOCK = 5, JBD2_FC_BLOCK = 6;

/* Feature flags */
export const JBD2_FEATURE_COMPAT_CHECKSUM = 0x00000001;
export const JBD2_FEATURE_INCOMPAT_REVOKE = 0x00000001, JBD2_FEATURE_INCOMPAT_64BIT = 0x00000002,
  JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x00000004, JBD2_FEATURE_INCOMPAT_CSUM_V2 = 0x00000008,
  JBD2_FEATURE_INCOMPAT_CSUM_V3 = 0x00000010, JBD2_FEATURE_INCOMPAT_FAST_COMMIT = 0x00000020;
export const JBD2_KNOWN_COMPAT_FEATURES = JBD2_FEATURE_COMPAT_CHECKSUM;
export const JBD2_KNOWN_ROCOMPAT_FEATURES = 0;
export const JBD2_KNOWN_INCOMPAT_FEATURES = JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT |
  JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT | JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3 |
  JBD2_FEATURE_INCOMPAT_FAST_COMMIT;

/* s_checksum_type and commit h_chksum_type */
export const JBD2_CRC32_CHKSUM = 1, JBD2_MD5_CHKSUM = 2, JBD2_SHA1_CHKSUM = 3, JBD2_CRC32C_CHKSUM = 4;
export const JBD2_CRC32_CHKSUM_SIZE = 4;
export const JBD2_CHECKSUM_BYTES = 32 / 4;

/* Descriptor tag t_flags */
export const JBD2_FLAG_ESCAPE = 1, JBD2_FLAG_SAME_UUID = 2, JBD2_FLAG_DELETED = 4, JBD2_FLAG_LAST_TAG = 8;

export const JBD2_HEADER_SIZE = 12;
export const JBD2_SUPERBLOCK_SIZE = 1024;
export const JBD2_DESCRIPTOR_TAIL_SIZE = 4;
export const JBD2_REVOKE_HEADER_SIZE = 16;
export const JBD2_MIN_JOURNAL_BLOCKS = 1024;
export const JBD2_MIN_FC_BLOCKS = 256;
export const JBD2_USERS_MAX = 48;

const HI32 = 0x100000000;

/* ---- journal_header_t --------------------------------------------------------------- */

export interface journal_header_t { h_magic: number; h_blocktype: number; h_sequence: number }
export function jbd2_header_decode(buf: Uint8Array, off = 0): journal_header_t {
  return { h_magic: be32(buf, off), h_blocktype: be32(buf, off + 4), h_sequence: be32(buf, off + 8) };
}
export function jbd2_header_encode(h: journal_header_t, buf: Uint8Array, off = 0): void {
  put_be32(buf, off, h.h_magic); put_be32(buf, off + 4, h.h_blocktype); put_be32(buf, off + 8, h.h_sequence);
}
/** The block type if this is a journal block (right magic), else 0. */
export function jbd2_block_type(buf: Uint8Array, off = 0): number {
  return be32(buf, off) === JBD2_MAGIC_NUMBER ? be32(buf, off + 4) : 0;
}

/* ---- journal_superblock_t ----------------------------------------------------------- */

export interface journal_superblock_t {
  s_header: journal_header_t;
  /* static information describing the journal */
  s_blocksize: number; s_maxlen: number; s_first: number;
  /* dynamic information: where the log starts */
  s_sequence: number; s_start: number; s_errno: number;
  /* v2 only */
  s_feature_compat: number; s_feature_incompat: number; s_feature_ro_compat: number;
  s_uuid: Uint8Array; s_nr_users: number; s_dynsuper: number;
  s_max_transaction: number; s_max_trans_data: number;
  s_checksum_type: number; s_num_fc_blks: number; s_head: number;
  s_checksum: number;
  /** s_users: up to 48 filesystem uuids sharing an external journal (raw 768 bytes) */
  s_users: Uint8Array;
}
/** Field offsets, for code that patches one field (s_start, s_sequence, s_errno...). */
export const JBD2_SB_OFF = {
  s_blocksize: 0x0c, s_maxlen: 0x10, s_first: 0x14, s_sequence: 0x18, s_start: 0x1c, s_errno: 0x20,
  s_feature_compat: 0x24, s_feature_incompat: 0x28, s_feature_ro_compat: 0x2c, s_uuid: 0x30,
  s_nr_users: 0x40, s_dynsuper: 0x44, s_max_transaction: 0x48, s_max_trans_data: 0x4c,
  s_checksum_type: 0x50, s_num_fc_blks: 0x54, s_head: 0x58, s_checksum: 0xfc, s_users: 0x100,
} as const;

export function jbd2_superblock_decode(buf: Uint8Array, off = 0): journal_superblock_t {
  const O = JBD2_SB_OFF;
  return {
    s_header: jbd2_header_decode(buf, off),
    s_blocksize: be32(buf, off + O.s_blocksize), s_maxlen: be32(buf, off + O.s_maxlen),
    s_first: be32(buf, off + O.s_first), s_sequence: be32(buf, off + O.s_sequence),
    s_start: be32(buf, off + O.s_start), s_errno: be32(buf, off + O.s_errno) | 0,
    s_feature_compat: be32(buf, off + O.s_feature_compat),
    s_feature_incompat: be32(buf, off + O.s_feature_incompat),
    s_feature_ro_compat: be32(buf, off + O.s_feature_ro_compat),
    s_uuid: buf.slice(off + O.s_uuid, off + O.s_uuid + 16),
    s_nr_users: be32(buf, off + O.s_nr_users), s_dynsuper: be32(buf, off + O.s_dynsuper),
    s_max_transaction: be32(buf, off + O.s_max_transaction),
    s_max_trans_data: be32(buf, off + O.s_max_trans_data),
    s_checksum_type: buf[off + O.s_checksum_type],
    s_num_fc_blks: be32(buf, off + O.s_num_fc_blks), s_head: be32(buf, off + O.s_head),
    s_checksum: be32(buf, off + O.s_checksum),
    s_users: buf.slice(off + O.s_users, off + O.s_users + 16 * JBD2_USERS_MAX),
  };
}
/** Writes every field; padding bytes are left as they are. */
export function jbd2_superblock_encode(sb: journal_superblock_t, buf: Uint8Array, off = 0): void {
  const O = JBD2_SB_OFF;
  jbd2_header_encode(sb.s_header, buf, off);
  put_be32(buf, off + O.s_blocksize, sb.s_blocksize); put_be32(buf, off + O.s_maxlen, sb.s_maxlen);
  put_be32(buf, off + O.s_first, sb.s_first); put_be32(buf, off + O.s_sequence, sb.s_sequence);
  put_be32(buf, off + O.s_start, sb.s_start); put_be32(buf, off + O.s_errno, sb.s_errno >>> 0);
  put_be32(buf, off + O.s_feature_compat, sb.s_feature_compat);
  put_be32(buf, off + O.s_feature_incompat, sb.s_feature_incompat);
  put_be32(buf, off + O.s_feature_ro_compat, sb.s_feature_ro_compat);
  buf.set(sb.s_uuid.subarray(0, 16), off + O.s_uuid);
  put_be32(buf, off + O.s_nr_users, sb.s_nr_users); put_be32(buf, off + O.s_dynsuper, sb.s_dynsuper);
  put_be32(buf, off + O.s_max_transaction, sb.s_max_transaction);
  put_be32(buf, off + O.s_max_trans_data, sb.s_max_trans_data);
  buf[off + O.s_checksum_type] = sb.s_checksum_type;
  put_be32(buf, off + O.s_num_fc_blks, sb.s_num_fc_blks); put_be32(buf, off + O.s_head, sb.s_head);
  put_be32(buf, off + O.s_checksum, sb.s_checksum);
  buf.set(sb.s_users.subarray(0, 16 * JBD2_USERS_MAX), off + O.s_users);
}

/** Version-1 superblocks carry no feature words; Linux treats them as all-zero. */
function features(sb: journal_superblock_t): { compat: number; incompat: number; ro_compat: number } {
  if (sb.s_header.h_blocktype === JBD2_SUPERBLOCK_V1) return { compat: 0, incompat: 0, ro_compat: 0 };
  return { compat: sb.s_feature_compat, incompat: sb.s_feature_incompat, ro_compat: sb.s_feature_ro_compat };
}
export const jbd2_has_feature_64bit = (sb: journal_superblock_t): boolean => (features(sb).incompat & JBD2_FEATURE_INCOMPAT_64BIT) !== 0;
export const jbd2_has_feature_csum2 = (sb: journal_superblock_t): boolean => (features(sb).incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) !== 0;
export const jbd2_has_feature_csum3 = (sb: journal_superblock_t): boolean => (features(sb).incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) !== 0;
export const jbd2_has_feature_revoke = (sb: journal_superblock_t): boolean => (features(sb).incompat & JBD2_FEATURE_INCOMPAT_REVOKE) !== 0;
export const jbd2_has_feature_async_commit = (sb: journal_superblock_t): boolean => (features(sb).incompat & JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT) !== 0;
export const jbd2_has_feature_fast_commit = (sb: journal_superblock_t): boolean => (features(sb).incompat & JBD2_FEATURE_INCOMPAT_FAST_COMMIT) !== 0;
export const jbd2_has_feature_checksum = (sb: journal_superblock_t): boolean => (features(sb).compat & JBD2_FEATURE_COMPAT_CHECKSUM) !== 0;
/** jbd2_journal_has_csum_v2or3: the journal carries crc32c block checksums. */
export const jbd2_journal_has_csum_v2or3 = (sb: journal_superblock_t): boolean => jbd2_has_feature_csum2(sb) || jbd2_has_feature_csum3(sb);

/**
 * journal_get_superblock's checks, with its messages. `devBlocks` is the journal's size in
 * blocks when known (inode size or device size) and `blockSize` the filesystem block size.
 * The superblock checksum is csum.ts's.
 */
export function jbd2_superblock_check(sb: journal_superblock_t, blockSize: number, devBlocks?: number): string | null {
  const h = sb.s_header;
  if (h.h_magic !== JBD2_MAGIC_NUMBER || sb.s_blocksize !== blockSize) return 'journal superblock invalid';
  if (h.h_blocktype !== JBD2_SUPERBLOCK_V1 && h.h_blocktype !== JBD2_SUPERBLOCK_V2)
    return 'unrecognised superblock format ID';
  if (devBlocks !== undefined && sb.s_maxlen > devBlocks) return 'journal file too short';
  if (sb.s_maxlen < JBD2_MIN_JOURNAL_BLOCKS) return 'journal file too short';
  if (sb.s_first === 0 || sb.s_first >= sb.s_maxlen) return `Invalid start block of journal: ${sb.s_first}`;
  if (h.h_blocktype === JBD2_SUPERBLOCK_V2) {
    if (sb.s_feature_incompat & ~JBD2_KNOWN_INCOMPAT_FEATURES) return 'Unrecognised features on journal';
    if (jbd2_has_feature_csum2(sb) && jbd2_has_feature_csum3(sb))
      return "Can't enable checksumming v2 and v3 at the same time!";
    if (jbd2_journal_has_csum_v2or3(sb) && jbd2_has_feature_checksum(sb))
      return "Can't enable checksumming v1 and v2/3 at the same time!";
    if (jbd2_journal_has_csum_v2or3(sb) && sb.s_checksum_type !== JBD2_CRC32C_CHKSUM)
      return 'Unknown checksum type';
    if (jbd2_has_feature_fast_commit(sb) && sb.s_num_fc_blks > 0 &&
      sb.s_maxlen - sb.s_num_fc_blks < JBD2_MIN_JOURNAL_BLOCKS) return 'Journal too small for fast commit blocks';
  }
  return null;
}

/* ---- descriptor block: header, tags (each followed by a uuid unless SAME_UUID), tail --- */

/**
 * journal_tag_bytes: v3 tags are always 16 bytes; otherwise 12 with 64BIT, 8 without, plus
 * 2 for csum v2 (a historical quirk: the 16-bit checksum field is already in the 12).
 */
export function journal_tag_bytes(sb: journal_superblock_t): number {
  if (jbd2_has_feature_csum3(sb)) return 16;
  let sz = 12;
  if (jbd2_has_feature_csum2(sb)) sz += 2;
  return jbd2_has_feature_64bit(sb) ? sz : sz - 4;
}
export interface journal_block_tag_t {
  /** The filesystem block this journal block belongs at */
  blocknr: number;
  t_flags: number;
  /** 16-bit (v2) or 32-bit (v3) checksum of the logged block; 0 without checksums */
  t_checksum: number;
  /** The uuid that follows the tag, when SAME_UUID is clear */
  uuid: Uint8Array | null;
}
/** journal_block_tag_t / journal_block_tag3_t fields at `o`. */
function tag_decode(sb: journal_superblock_t, buf: Uint8Array, o: number): Omit<journal_block_tag_t, 'uuid'> {
  const is64 = jbd2_has_feature_64bit(sb);
  if (jbd2_has_feature_csum3(sb)) {
    return { blocknr: be32(buf, o) + (is64 ? be32(buf, o + 8) * HI32 : 0), t_flags: be32(buf, o + 4),
      t_checksum: be32(buf, o + 12) };
  }
  return { blocknr: be32(buf, o) + (is64 ? be32(buf, o + 8) * HI32 : 0), t_flags: be16(buf, o + 6),
    t_checksum: jbd2_has_feature_csum2(sb) ? be16(buf, o + 4) : 0 };
}
function tag_encode(sb: journal_superblock_t, t: Omit<journal_block_tag_t, 'uuid'>, buf: Uint8Array, o: number): void {
  const is64 = jbd2_has_feature_64bit(sb);
  put_be32(buf, o, t.blocknr % HI32);
  if (jbd2_has_feature_csum3(sb)) {
    put_be32(buf, o + 4, t.t_flags);
    put_be32(buf, o + 8, is64 ? Math.floor(t.blocknr / HI32) >>> 0 : 0);
    put_be32(buf, o + 12, t.t_checksum);
    return;
  }
  put_be16(buf, o + 4, t.t_checksum);
  put_be16(buf, o + 6, t.t_flags);
  if (is64) put_be32(buf, o + 8, Math.floor(t.blocknr / HI32) >>> 0);
}

/**
 * The tags of a descriptor block (header already checked): stops at LAST_TAG or where the
 * next tag would run into the checksum tail, as do_one_pass's count_tags does.
 */
export function jbd2_descriptor_tags(sb: journal_superblock_t, buf: Uint8Array, off = 0): journal_block_tag_t[] {
  const tagBytes = journal_tag_bytes(sb);
  let size = sb.s_blocksize;
  if (jbd2_journal_has_csum_v2or3(sb)) size -= JBD2_DESCRIPTOR_TAIL_SIZE;
  const out: journal_block_tag_t[] = [];
  let o = JBD2_HEADER_SIZE;
  while (o + tagBytes <= size) {
    const t = tag_decode(sb, buf, off + o);
    o += tagBytes;
    let uuid: Uint8Array | null = null;
    if (!(t.t_flags & JBD2_FLAG_SAME_UUID)) {
      uuid = buf.slice(off + o, off + o + 16);
      o += 16;
    }
    out.push({ ...t, uuid });
    if (t.t_flags & JBD2_FLAG_LAST_TAG) break;
  }
  return out;
}
/**
 * Builds a descriptor block's body from tags, the way commit writes it: the caller sets
 * SAME_UUID on all but the first tag and LAST_TAG on the last. Returns the bytes used, or
 * -1 if the tags do not fit. The header and checksum tail are the caller's.
 */
export function jbd2_descriptor_tags_encode(sb: journal_superblock_t, tags: readonly journal_block_tag_t[], buf: Uint8Array, off = 0): number {
  const tagBytes = journal_tag_bytes(sb);
  let size = sb.s_blocksize;
  if (jbd2_journal_has_csum_v2or3(sb)) size -= JBD2_DESCRIPTOR_TAIL_SIZE;
  let o = JBD2_HEADER_SIZE;
  for (const t of tags) {
    const need = tagBytes + (t.t_flags & JBD2_FLAG_SAME_UUID ? 0 : 16);
    if (o + need > size) return -1;
    tag_encode(sb, t, buf, off + o);
    o += tagBytes;
    if (!(t.t_flags & JBD2_FLAG_SAME_UUID)) {
      buf.fill(0, off + o, off + o + 16);
      if (t.uuid) buf.set(t.uuid.subarray(0, 16), off + o);
      o += 16;
    }
  }
  return o;
}

/* ---- commit block (struct commit_header) -------------------------------------------- */

export interface commit_header {
  h_header: journal_header_t;
  h_chksum_type: number; h_chksum_size: number;
  /** h_chksum[8]: [0] holds the crc32 (v1) or crc32c (v2/v3) */
  h_chksum: number[];
  h_commit_sec: number; h_commit_nsec: number;
}
export const JBD2_COMMIT_OFF = { h_chksum_type: 12, h_chksum_size: 13, h_chksum: 16, h_commit_sec: 48, h_commit_nsec: 56 } as const;
export function jbd2_commit_decode(buf: Uint8Array, off = 0): commit_header {
  const O = JBD2_COMMIT_OFF;
  const h_chksum: number[] = [];
  for (let i = 0; i < JBD2_CHECKSUM_BYTES; i++) h_chksum.push(be32(buf, off + O.h_chksum + 4 * i));
  return {
    h_header: jbd2_header_decode(buf, off), h_chksum_type: buf[off + O.h_chksum_type],
    h_chksum_size: buf[off + O.h_chksum_size], h_chksum,
    h_commit_sec: be32(buf, off + O.h_commit_sec) * HI32 + be32(buf, off + O.h_commit_sec + 4),
    h_commit_nsec: be32(buf, off + O.h_commit_nsec),
  };
}
export function jbd2_commit_encode(c: commit_header, buf: Uint8Array, off = 0): void {
  const O = JBD2_COMMIT_OFF;
  jbd2_header_encode(c.h_header, buf, off);
  buf[off + O.h_chksum_type] = c.h_chksum_type; buf[off + O.h_chksum_size] = c.h_chksum_size;
  buf[off + 14] = 0; buf[off + 15] = 0;
  for (let i = 0; i < JBD2_CHECKSUM_BYTES; i++) put_be32(buf, off + O.h_chksum + 4 * i, c.h_chksum[i] ?? 0);
  put_be32(buf, off + O.h_commit_sec, Math.floor(c.h_commit_sec / HI32) >>> 0);
  put_be32(buf, off + O.h_commit_sec + 4, c.h_commit_sec >>> 0);
  put_be32(buf, off + O.h_commit_nsec, c.h_commit_nsec);
}

/* ---- revoke block (jbd2_journal_revoke_header_t + block numbers) ---------------------- */

/**
 * The revoked block numbers: r_count is the bytes used including the 16-byte header;
 * records are 8 bytes with 64BIT, else 4. Returns a reason for a count beyond the block
 * (recovery's -EINVAL in scan_revoke_records); a count below the header just means none.
 */
export function jbd2_revoke_records(sb: journal_superblock_t, buf: Uint8Array, off = 0): number[] | string {
  const rcount = be32(buf, off + JBD2_HEADER_SIZE);
  const recSize = jbd2_has_feature_64bit(sb) ? 8 : 4;
  let max = sb.s_blocksize;
  if (jbd2_journal_has_csum_v2or3(sb)) max -= JBD2_DESCRIPTOR_TAIL_SIZE;
  if (rcount > max) return `revoke r_count ${rcount} out of range`;
  const out: number[] = [];
  for (let o = JBD2_REVOKE_HEADER_SIZE; o + recSize <= rcount; o += recSize) {
    out.push(recSize === 8 ? be32(buf, off + o) * HI32 + be32(buf, off + o + 4) : be32(buf, off + o));
  }
  return out;
}
/** Writes records after the header and sets r_count; returns r_count or -1 if too many. */
export function jbd2_revoke_records_encode(sb: journal_superblock_t, blocks: readonly number[], buf: Uint8Array, off = 0): number {
  const recSize = jbd2_has_feature_64bit(sb) ? 8 : 4;
  let max = sb.s_blocksize;
  if (jbd2_journal_has_csum_v2or3(sb)) max -= JBD2_DESCRIPTOR_TAIL_SIZE;
  const rcount = JBD2_REVOKE_HEADER_SIZE + recSize * blocks.length;
  if (rcount > max) return -1;
  blocks.forEach((b, i) => {
    const o = off + JBD2_REVOKE_HEADER_SIZE + recSize * i;
    if (recSize === 8) { put_be32(buf, o, Math.floor(b / HI32) >>> 0); put_be32(buf, o + 4, b >>> 0); }
    else put_be32(buf, o, b >>> 0);
  });
  put_be32(buf, off + JBD2_HEADER_SIZE, rcount);
  return rcount;
}
