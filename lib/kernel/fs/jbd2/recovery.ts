/*
 * Journal recovery (fs/jbd2/recovery.c): three passes over the log from s_start.
 *   PASS_SCAN   find the end of the valid log: blocks must carry the magic and the expected
 *               sequence; descriptor, commit and revoke blocks are checked (csum v2/v3 block
 *               checksums, the v1 crc32 transaction checksum); a commit that fails its
 *               checksum ends the log before its transaction.
 *   PASS_REVOKE collect revoke records (block → latest revoking transaction).
 *   PASS_REPLAY copy every logged block to its home unless a later-or-same transaction
 *               revoked it; escaped blocks get their magic back; tag checksums checked.
 * Where replayed blocks go is the caller's choice (`sink`): the device for a read-write
 * recovery, an in-memory overlay for a read-only one. Fast-commit areas are not replayed
 * (reported). The scan is bounded by the log size, so a corrupt log cannot loop forever.
 */
import { err } from '../../include/errno.js';
import { EFSBADCRC, EIO } from '../../include/uapi.js';
import {
  JBD2_COMMIT_BLOCK, JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_DESCRIPTOR_BLOCK, JBD2_FLAG_ESCAPE,
  JBD2_MAGIC_NUMBER, JBD2_REVOKE_BLOCK, be32, jbd2_commit_decode, jbd2_descriptor_tags,
  jbd2_has_feature_async_commit, jbd2_has_feature_checksum, jbd2_has_feature_fast_commit,
  jbd2_journal_has_csum_v2or3, jbd2_revoke_records, put_be32, type journal_block_tag_t,
} from './layout.js';
import {
  crc32_be, jbd2_block_tag_csum_verify, jbd2_commit_block_csum_verify, jbd2_descriptor_block_csum_verify,
} from './csum.js';
import type { journal_t } from './journal.js';

export interface recovery_info {
  start_transaction: number;
  end_transaction: number;
  head_block: number;
  nr_replays: number;
  nr_revokes: number;
  nr_revoke_hits: number;
  /** Blocks whose tag checksum failed (skipped). */
  nr_bad_blocks: number;
  /** Fast-commit blocks present but not replayed. */
  fc_ignored: boolean;
}

/** Where PASS_REPLAY puts a block: (filesystem block, bytes). */
export type ReplaySink = (blocknr: number, data: Uint8Array) => Promise<void>;

const PASS_SCAN = 0, PASS_REVOKE = 1, PASS_REPLAY = 2;
type Pass = typeof PASS_SCAN | typeof PASS_REVOKE | typeof PASS_REPLAY;

const tid_gt = (x: number, y: number): boolean => ((x - y) | 0) > 0;
const tid_geq = (x: number, y: number): boolean => ((x - y) | 0) >= 0;

class RevokeTable {
  private m = new Map<number, number>();
  /** jbd2_journal_set_revoke: keep the latest revoking transaction. */
  set(blocknr: number, seq: number): boolean {
    const r = this.m.get(blocknr);
    if (r !== undefined) { if (tid_gt(seq, r)) this.m.set(blocknr, seq); return false; }
    this.m.set(blocknr, seq);
    return true;
  }
  /** jbd2_journal_test_revoke: revoked by this or a later transaction. */
  test(blocknr: number, seq: number): boolean {
    const r = this.m.get(blocknr);
    if (r === undefined) return false;
    return !tid_gt(seq, r);
  }
}

function wrap(j: journal_t, b: number): number {
  return b >= j.j_last ? b - (j.j_last - j.j_first) : b;
}

async function do_one_pass(j: journal_t, info: recovery_info, pass: Pass, revoke: RevokeTable,
  sink: ReplaySink | null, print: (m: string) => void): Promise<void> {
  const sb = j.j_sb;
  const bs = j.j_blocksize;
  const csumV23 = jbd2_journal_has_csum_v2or3(sb);
  let nextCommitId = sb.s_sequence;
  let nextLogBlock = sb.s_start;
  if (pass === PASS_SCAN) info.start_transaction = nextCommitId;
  let crc32Sum = 0xffffffff;
  let commitTime = 0, lastCommitTime = 0;
  let needCheckCommitTime = false;
  let headBlock = 0;
  let blockError = false;
  // Bound the walk: a valid log never spans more than the log area.
  let budget = 2 * (j.j_last - j.j_first) + 16;
  const readLog = async (b: number): Promise<Uint8Array> => j.jread(b);

  scan: for (;;) {
    if (--budget < 0) { print('JBD2: recovery: log walk exceeded the journal size; stopping'); break; }
    if (pass !== PASS_SCAN && tid_geq(nextCommitId, info.end_transaction)) break;
    const thisBlock = nextLogBlock;
    const buf = await readLog(thisBlock);
    nextLogBlock = wrap(j, nextLogBlock + 1);
    if (be32(buf, 0) !== JBD2_MAGIC_NUMBER) break;
    const blocktype = be32(buf, 4);
    const sequence = be32(buf, 8);
    if (sequence !== nextCommitId) break;
    switch (blocktype) {
      case JBD2_DESCRIPTOR_BLOCK: {
        if (csumV23 && !jbd2_descriptor_block_csum_verify(sb, j.j_csum_seed, buf, 0)) {
          if (pass !== PASS_SCAN) {
            print(`JBD2: Invalid checksum recovering block ${thisBlock} in log`);
            throw err(EFSBADCRC);
          }
          needCheckCommitTime = true;
        }
        const tags: journal_block_tag_t[] = jbd2_descriptor_tags(sb, buf, 0);
        if (pass !== PASS_REPLAY) {
          if (pass === PASS_SCAN && jbd2_has_feature_checksum(sb) && !needCheckCommitTime && !info.end_transaction) {
            // calc_chksums: the v1 checksum runs over the descriptor and every logged block.
            crc32Sum = crc32_be(crc32Sum, buf, 0, bs);
            for (let i = 0; i < tags.length; i++) {
              const d = await readLog(nextLogBlock);
              nextLogBlock = wrap(j, nextLogBlock + 1);
              crc32Sum = crc32_be(crc32Sum, d, 0, bs);
            }
            continue scan;
          }
          nextLogBlock = wrap(j, nextLogBlock + tags.length);
          continue scan;
        }
        for (const tag of tags) {
          const ioBlock = nextLogBlock;
          nextLogBlock = wrap(j, nextLogBlock + 1);
          let data: Uint8Array;
          try {
            data = await readLog(ioBlock);
          } catch {
            print(`JBD2: IO error recovering block ${ioBlock} in log`);
            blockError = true;
            continue;
          }
          if (revoke.test(tag.blocknr, nextCommitId)) { info.nr_revoke_hits++; continue; }
          if (!jbd2_block_tag_csum_verify(sb, j.j_csum_seed, tag, sequence, data, 0)) {
            print(`JBD2: Invalid checksum recovering data block ${tag.blocknr} in journal block ${ioBlock}`);
            info.nr_bad_blocks++;
            blockError = true;
            continue;
          }
          const copy = data.slice(0, bs);
          if (tag.t_flags & JBD2_FLAG_ESCAPE) put_be32(copy, 0, JBD2_MAGIC_NUMBER);
          if (sink) await sink(tag.blocknr, copy);
          info.nr_replays++;
        }
        continue scan;
      }
      case JBD2_COMMIT_BLOCK: {
        if (pass === PASS_SCAN) {
          let bad = false;
          if (jbd2_has_feature_checksum(sb)) {
            const c = jbd2_commit_decode(buf, 0);
            const found = c.h_chksum[0] >>> 0;
            if (info.end_transaction) { j.j_failed_commit = info.end_transaction; break scan; }
            const ok = (crc32Sum === found && c.h_chksum_type === JBD2_CRC32_CHKSUM && c.h_chksum_size === JBD2_CRC32_CHKSUM_SIZE) ||
              (c.h_chksum_type === 0 && c.h_chksum_size === 0 && found === 0);
            if (!ok) bad = true;
            crc32Sum = 0xffffffff;
          }
          if (!bad && csumV23 && !jbd2_commit_block_csum_verify(sb, j.j_csum_seed, buf, 0)) bad = true;
          commitTime = jbd2_commit_decode(buf, 0).h_commit_sec;
          if (bad) {
            if (commitTime < lastCommitTime) break scan; // stale block: end of log, success
            info.end_transaction = nextCommitId;
            if (!jbd2_has_feature_async_commit(sb)) { j.j_failed_commit = nextCommitId; break scan; }
          }
          if (needCheckCommitTime) {
            if (commitTime >= lastCommitTime) {
              print(`JBD2: Invalid checksum found in transaction ${nextCommitId}`);
              throw err(EFSBADCRC);
            }
            break scan; // likely stale data from an older journal: end recovery here
          }
          lastCommitTime = commitTime;
          headBlock = nextLogBlock;
        }
        nextCommitId = (nextCommitId + 1) >>> 0;
        continue scan;
      }
      case JBD2_REVOKE_BLOCK: {
        if (pass === PASS_SCAN && csumV23 && !jbd2_descriptor_block_csum_verify(sb, j.j_csum_seed, buf, 0))
          needCheckCommitTime = true;
        if (pass !== PASS_REVOKE) continue scan;
        if (csumV23 && !jbd2_descriptor_block_csum_verify(sb, j.j_csum_seed, buf, 0)) throw err(EFSBADCRC);
        const recs = jbd2_revoke_records(sb, buf, 0);
        if (typeof recs === 'string') { print(`JBD2: ${recs}`); throw err(EFSBADCRC); }
        for (const b of recs) if (revoke.set(b, sequence)) info.nr_revokes++;
        continue scan;
      }
      default:
        break scan;
    }
  }
  if (pass === PASS_SCAN) {
    if (!info.end_transaction) info.end_transaction = nextCommitId;
    if (!info.head_block) info.head_block = headBlock;
  } else if (info.end_transaction !== nextCommitId) {
    print(`JBD2: recovery pass ${pass} ended at transaction ${nextCommitId}, expected ${info.end_transaction}`);
    throw err(EIO);
  }
  if (blockError && pass === PASS_REPLAY) info.nr_bad_blocks = Math.max(info.nr_bad_blocks, 1);
}

/**
 * jbd2_journal_recover: replay the log into `sink`. Returns what was done; the journal's
 * j_transaction_sequence is set to the next transaction id. A log with s_start 0 is clean.
 */
export async function jbd2_journal_recover(j: journal_t, sink: ReplaySink, print: (m: string) => void): Promise<recovery_info> {
  const info: recovery_info = { start_transaction: 0, end_transaction: 0, head_block: 0, nr_replays: 0,
    nr_revokes: 0, nr_revoke_hits: 0, nr_bad_blocks: 0, fc_ignored: false };
  if (!j.j_sb.s_start) {
    j.j_transaction_sequence = (j.j_sb.s_sequence + 1) >>> 0;
    return info;
  }
  const revoke = new RevokeTable();
  await do_one_pass(j, info, PASS_SCAN, revoke, null, print);
  await do_one_pass(j, info, PASS_REVOKE, revoke, null, print);
  await do_one_pass(j, info, PASS_REPLAY, revoke, sink, print);
  const fc = await jbd2_fc_pending(j, info);
  if (fc !== null) {
    info.fc_ignored = true;
    print(`JBD2: fast commits of transaction ${fc} are not replayed by lkl-ts (only full transactions were recovered)`);
  }
  j.j_transaction_sequence = (info.end_transaction + 1) >>> 0;
  j.j_head = info.head_block;
  if (info.nr_bad_blocks) throw Object.assign(err(EIO, 'JBD2: recovery failed for some blocks'), { info });
  return info;
}

/** EXT4_FC_TAG_HEAD: the tag a fast-commit area starts with (struct ext4_fc_head: features, tid). */
const EXT4_FC_TAG_HEAD = 0x0009;

/**
 * Fast commits waiting to be replayed (what jbd2's fast-commit pass would hand to ext4's
 * replay): the first fast-commit block starts with a head tag naming the transaction that
 * follows the last full commit. Its tid, or null when there is nothing to replay.
 */
export async function jbd2_fc_pending(j: journal_t, info: recovery_info): Promise<number | null> {
  if (!jbd2_has_feature_fast_commit(j.j_sb) || !j.j_fc_first || !j.j_sb.s_start) return null;
  const b = await j.jread(j.j_fc_first);
  const le16 = (o: number) => b[o]! | (b[o + 1]! << 8);
  const le32 = (o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
  if (le16(0) !== EXT4_FC_TAG_HEAD || le16(2) < 8) return null;
  const tid = le32(8);
  return tid === info.end_transaction ? tid : null;
}

/** Only the scan: how far the log goes (for tests and for deciding whether recovery is needed). */
export async function jbd2_journal_scan(j: journal_t, print: (m: string) => void): Promise<recovery_info> {
  const info: recovery_info = { start_transaction: 0, end_transaction: 0, head_block: 0, nr_replays: 0,
    nr_revokes: 0, nr_revoke_hits: 0, nr_bad_blocks: 0, fc_ignored: false };
  if (!j.j_sb.s_start) return info;
  await do_one_pass(j, info, PASS_SCAN, new RevokeTable(), null, print);
  return info;
}
