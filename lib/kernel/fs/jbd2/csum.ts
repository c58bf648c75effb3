/*
 * jbd2 checksums, as fs/jbd2 computes them. v2/v3 (CSUM_V2 / CSUM_V3): crc32c seeded with
 * crc32c(~0, journal uuid) for descriptor and revoke tails, commit blocks and the per-tag
 * block checksums (which also fold in the transaction's sequence number); the superblock
 * alone is summed from ~0. v1 (COMPAT_CHECKSUM): one crc32_be over a transaction's blocks,
 * stored in its commit block. Pure kernel code.
 */
import { crc32c } from '../../lib/crc32c.js';
import {
  JBD2_COMMIT_OFF, JBD2_DESCRIPTOR_TAIL_SIZE, JBD2_SB_OFF, JBD2_SUPERBLOCK_SIZE,
  be32, jbd2_has_feature_csum3, jbd2_journal_has_csum_v2or3, put_be32,
} from './layout.js';
import type { journal_block_tag_t, journal_superblock_t } from './layout.js';

/** j_csum_seed: crc32c(~0, s_uuid). */
export function jbd2_csum_seed(sb: journal_superblock_t): number {
  return crc32c(0xffffffff, sb.s_uuid, 0, 16);
}

/* ---- superblock: crc32c(~0) over the 1024 bytes with s_checksum zeroed ------------------ */

export function jbd2_superblock_csum(buf: Uint8Array, off = 0): number {
  const O = JBD2_SB_OFF.s_checksum;
  let c = crc32c(0xffffffff, buf, off, O);
  c = crc32c(c, new Uint8Array(4));
  return crc32c(c, buf, off + O + 4, JBD2_SUPERBLOCK_SIZE - O - 4);
}
export function jbd2_superblock_csum_verify(sb: journal_superblock_t, buf: Uint8Array, off = 0): boolean {
  if (!jbd2_journal_has_csum_v2or3(sb)) return true;
  return be32(buf, off + JBD2_SB_OFF.s_checksum) === jbd2_superblock_csum(buf, off);
}
export function jbd2_superblock_csum_set(sb: journal_superblock_t, buf: Uint8Array, off = 0): void {
  if (!jbd2_journal_has_csum_v2or3(sb)) return;
  put_be32(buf, off + JBD2_SB_OFF.s_checksum, jbd2_superblock_csum(buf, off));
}

/* ---- descriptor and revoke blocks: the whole block, tail zeroed, checksum in the tail ---- */

function whole_block_csum(seed: number, buf: Uint8Array, off: number, blockSize: number, at: number): number {
  let c = crc32c(seed, buf, off, at);
  c = crc32c(c, new Uint8Array(4));
  return crc32c(c, buf, off + at + 4, blockSize - at - 4);
}
/** jbd2_descriptor_block_csum: also used for revoke blocks. */
export function jbd2_descriptor_block_csum(seed: number, buf: Uint8Array, blockSize: number, off = 0): number {
  return whole_block_csum(seed, buf, off, blockSize, blockSize - JBD2_DESCRIPTOR_TAIL_SIZE);
}
export function jbd2_descriptor_block_csum_verify(sb: journal_superblock_t, seed: number, buf: Uint8Array, off = 0): boolean {
  if (!jbd2_journal_has_csum_v2or3(sb)) return true;
  return be32(buf, off + sb.s_blocksize - JBD2_DESCRIPTOR_TAIL_SIZE) ===
    jbd2_descriptor_block_csum(seed, buf, sb.s_blocksize, off);
}
export function jbd2_descriptor_block_csum_set(sb: journal_superblock_t, seed: number, buf: Uint8Array, off = 0): void {
  if (!jbd2_journal_has_csum_v2or3(sb)) return;
  put_be32(buf, off + sb.s_blocksize - JBD2_DESCRIPTOR_TAIL_SIZE, jbd2_descriptor_block_csum(seed, buf, sb.s_blocksize, off));
}
export const jbd2_revoke_block_csum_verify = jbd2_descriptor_block_csum_verify;
export const jbd2_revoke_block_csum_set = jbd2_descriptor_block_csum_set;

/* ---- commit block: whole block, with h_chksum[0] summed as zero ---------------------------- */

/**
 * Only h_chksum[0] is summed as zero. The set path also zeroes h_chksum_type/size first,
 * so blocks Linux wrote have them 0, but verify must not assume so.
 */
export function jbd2_commit_block_csum(seed: number, buf: Uint8Array, blockSize: number, off = 0): number {
  const at = JBD2_COMMIT_OFF.h_chksum;
  return whole_block_csum(seed, buf, off, blockSize, at);
}
export function jbd2_commit_block_csum_verify(sb: journal_superblock_t, seed: number, buf: Uint8Array, off = 0): boolean {
  if (!jbd2_journal_has_csum_v2or3(sb)) return true;
  return be32(buf, off + JBD2_COMMIT_OFF.h_chksum) === jbd2_commit_block_csum(seed, buf, sb.s_blocksize, off);
}
/** Sets h_chksum[0]; as Linux, the type and size bytes are left 0 for v2/v3. */
export function jbd2_commit_block_csum_set(sb: journal_superblock_t, seed: number, buf: Uint8Array, off = 0): void {
  if (!jbd2_journal_has_csum_v2or3(sb)) return;
  buf[off + JBD2_COMMIT_OFF.h_chksum_type] = 0;
  buf[off + JBD2_COMMIT_OFF.h_chksum_size] = 0;
  put_be32(buf, off + JBD2_COMMIT_OFF.h_chksum, jbd2_commit_block_csum(seed, buf, sb.s_blocksize, off));
}

/* ---- tags: crc32c(seed, be32 sequence, logged block as written in the journal) ----------- */

/**
 * jbd2_block_tag_csum over the journal copy of a block (escaped as it sits in the log).
 * v3 tags store all 32 bits, v2 tags the low 16.
 */
export function jbd2_block_tag_csum(seed: number, sequence: number, data: Uint8Array, off = 0, len = data.length - off): number {
  const seq = new Uint8Array(4);
  put_be32(seq, 0, sequence);
  return crc32c(crc32c(seed, seq), data, off, len);
}
export function jbd2_block_tag_csum_verify(sb: journal_superblock_t, seed: number, tag: journal_block_tag_t, sequence: number,
  data: Uint8Array, off = 0): boolean {
  if (!jbd2_journal_has_csum_v2or3(sb)) return true;
  const c = jbd2_block_tag_csum(seed, sequence, data, off, sb.s_blocksize);
  return jbd2_has_feature_csum3(sb) ? tag.t_checksum === c : tag.t_checksum === (c & 0xffff);
}
/** The value to put in a tag's t_checksum for this block. */
export function jbd2_block_tag_csum_value(sb: journal_superblock_t, seed: number, sequence: number, data: Uint8Array, off = 0): number {
  const c = jbd2_block_tag_csum(seed, sequence, data, off, sb.s_blocksize);
  return jbd2_has_feature_csum3(sb) ? c : c & 0xffff;
}

/* ---- v1: crc32_be over the transaction (COMPAT_CHECKSUM, with async_commit) ------------- */

const crc32_be_table: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();
/** Linux's crc32_be: MSB-first CRC-32, bare register. Recovery chains it from ~0 over the
 * descriptor block and every data block of a transaction and compares with h_chksum[0]. */
export function crc32_be(crc: number, p: Uint8Array, offset = 0, len = p.length - offset): number {
  let c = crc >>> 0;
  for (let i = offset; i < offset + len; i++) c = ((c << 8) ^ crc32_be_table[((c >>> 24) ^ p[i]) & 0xff]) >>> 0;
  return c;
}
