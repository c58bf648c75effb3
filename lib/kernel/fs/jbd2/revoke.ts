/*
 * Revoke records (fs/jbd2/revoke.c): a metadata block freed by a transaction is revoked in
 * it, so that recovery does not replay older log copies of the block over whatever the
 * block holds later (file data, say). A block journalled again in the same transaction has
 * its revoke cancelled (replay skips copies of the revoking transaction too).
 *
 * Only blocks that may have a copy in the log need a record: commit.ts keeps those whose
 * last logging transaction is still between the tail and the head (j_logged).
 * Revoke blocks are written by the commit (jbd2_journal_write_revoke_records). Pure kernel code.
 */
import {
  JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_MAGIC_NUMBER, JBD2_REVOKE_BLOCK, JBD2_REVOKE_HEADER_SIZE,
  JBD2_DESCRIPTOR_TAIL_SIZE, jbd2_has_feature_64bit, jbd2_header_encode, jbd2_journal_has_csum_v2or3,
  jbd2_revoke_records_encode,
} from './layout.js';
import { jbd2_revoke_block_csum_set } from './csum.js';
import type { journal_t } from './journal.js';
import type { transaction_t } from './transaction.js';

/** jbd2_journal_revoke: record that `blocknr` is freed by transaction t. */
export function jbd2_journal_revoke(t: transaction_t, blocknr: number): void {
  t.t_revoke.add(blocknr);
}

/** jbd2_journal_cancel_revoke: the block is journalled again by t. */
export function jbd2_journal_cancel_revoke(t: transaction_t, blocknr: number): void {
  t.t_revoke.delete(blocknr);
}

/** How many revoke records fit in one revoke block. */
export function jbd2_revoke_records_per_block(j: journal_t): number {
  const sb = j.j_sb;
  let room = j.j_blocksize - JBD2_REVOKE_HEADER_SIZE;
  if (jbd2_journal_has_csum_v2or3(sb)) room -= JBD2_DESCRIPTOR_TAIL_SIZE;
  return Math.floor(room / (jbd2_has_feature_64bit(sb) ? 8 : 4));
}

/**
 * jbd2_journal_write_revoke_records: the revoke blocks of transaction `tid` for `blocks`
 * (with their checksum tails). The journal must have INCOMPAT_REVOKE (the caller sets it).
 */
export function jbd2_journal_write_revoke_records(j: journal_t, tid: number, blocks: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const per = jbd2_revoke_records_per_block(j);
  for (let i = 0; i < blocks.length; i += per) {
    const buf = new Uint8Array(j.j_blocksize);
    jbd2_header_encode({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_REVOKE_BLOCK, h_sequence: tid }, buf, 0);
    if (jbd2_revoke_records_encode(j.j_sb, blocks.slice(i, i + per), buf, 0) < 0) throw new Error('jbd2: revoke block overflow');
    jbd2_revoke_block_csum_set(j.j_sb, j.j_csum_seed, buf, 0);
    out.push(buf);
  }
  return out;
}

export { JBD2_FEATURE_INCOMPAT_REVOKE };
