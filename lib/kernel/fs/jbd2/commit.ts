/*
 * Committing a transaction (fs/jbd2/commit.c: jbd2_journal_commit_transaction).
 *
 *  1. T_LOCKED: wait until no handle is inside the transaction (t_updates 0); then, without
 *     sleeping, copy every buffer it dirtied. The next handle starts a new transaction.
 *  2. data=ordered: the data of the inodes on t_inode_list (the byte ranges the
 *     transaction's updates gave blocks to) is written and waited for (ops.writeData)
 *     before the commit block, so committed metadata never points at blocks holding stale
 *     data. Other dirty pages wait for writeback.
 *  3. The log from the head on: descriptor blocks (tags: block number, flags, checksum;
 *     a copy whose first four bytes are the jbd2 magic is escaped), the copies, revoke
 *     blocks; then a flush and the commit block (time, checksum), then a flush again. With
 *     INCOMPAT_ASYNC_COMMIT the commit block goes with the log and one flush follows.
 *  4. The copies go on the checkpoint list; the log head moves past the commit block.
 *
 * If the log has no room, everything committed before is checkpointed first. A write
 * error aborts the journal (handles then fail with EROFS). Pure kernel code.
 */
import { err } from '../../include/errno.js';
import { EIO } from '../../include/uapi.js';
import { put_bh } from '../buffer.js';
import { del_timer } from '../../kernel/timer.js';
import { sleepOn } from '../../kernel/wait.js';
import {
  JBD2_COMMIT_BLOCK, JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_DESCRIPTOR_BLOCK, JBD2_DESCRIPTOR_TAIL_SIZE,
  JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG, JBD2_FLAG_SAME_UUID, JBD2_HEADER_SIZE,
  JBD2_MAGIC_NUMBER, be32, jbd2_commit_encode, jbd2_descriptor_tags_encode, jbd2_has_feature_64bit,
  jbd2_has_feature_async_commit, jbd2_has_feature_checksum, jbd2_has_feature_revoke, jbd2_header_encode,
  journal_tag_bytes, type journal_block_tag_t,
} from './layout.js';
import {
  crc32_be, jbd2_block_tag_csum_value, jbd2_commit_block_csum_set, jbd2_descriptor_block_csum_set,
} from './csum.js';
import { jbd2_journal_has_csum_v2or3 } from './layout.js';
import { T_FINISHED, T_FLUSH, T_COMMIT, T_LOCKED, T_RUNNING, tid_geq, type cp_entry, type transaction_t } from './transaction.js';
import { jbd2_journal_write_revoke_records } from './revoke.js';
import {
  __jbd2_journal_clean_checkpoint_list, jbd2_drop_cancelled, jbd2_log_do_checkpoint, jbd2_write_runs,
} from './checkpoint.js';
import {
  JBD2_MAX_COPY_BYTES, jbd2_journal_set_features, jbd2_journal_update_sb_log_tail, jbd2_log_space_left,
  jbd2_write_superblock, type journal_t,
} from './journal.js';

/** Commit the running transaction, if any, serialised with other commits. */
export async function jbd2_journal_commit_running(j: journal_t): Promise<void> {
  await j.j_commit_mutex.lock();
  try {
    if (!j.j_aborted && j.j_ops) await j.j_ops.beforeCommit();
    if (j.j_running_transaction && !j.j_aborted && j.j_ops) await jbd2_journal_commit_transaction(j);
  } finally { j.j_commit_mutex.unlock(); }
}

/**
 * jbd2_complete_transaction: transaction `tid` (and every one before it) committed. The
 * running transaction is committed if it is that one; true when this call ran the commit
 * (whose flushes, before and after the commit block, covered every write completed before
 * it), false when `tid` was committed already, possibly by a commit that began before the
 * caller's data writes completed: the caller then flushes the device itself
 * (jbd2_trans_will_send_data_barrier's case in ext4_fsync_journal). EIO when the journal
 * aborted before `tid` was committed (jbd2_log_wait_commit).
 */
export async function jbd2_complete_transaction(j: journal_t, tid: number): Promise<boolean> {
  if (!j.j_ops) return false;
  const committed = () => tid_geq(j.j_commit_sequence, tid);
  if (committed()) return false;
  await j.j_commit_mutex.lock();
  try {
    if (committed()) return false;
    if (j.j_aborted) throw err(EIO);
    await j.j_ops.beforeCommit();
    if (!j.j_running_transaction || committed()) return false;
    await jbd2_journal_commit_transaction(j);
    if (j.j_aborted && !committed()) throw err(EIO);
    return true;
  } finally { j.j_commit_mutex.unlock(); }
}

/** How many tags fit in a descriptor block (the first one carries the 16-byte uuid). */
function tags_per_descriptor(j: journal_t): number {
  let room = j.j_blocksize - JBD2_HEADER_SIZE;
  if (jbd2_journal_has_csum_v2or3(j.j_sb)) room -= JBD2_DESCRIPTOR_TAIL_SIZE;
  return Math.floor((room - 16) / journal_tag_bytes(j.j_sb));
}

/** The next log block after `b` (the log wraps from j_last to j_first). */
function log_next(j: journal_t, b: number): number {
  return b + 1 >= j.j_last ? j.j_first : b + 1;
}

/** jbd2_journal_commit_transaction: commit j_running_transaction (the caller holds j_commit_mutex). */
export async function jbd2_journal_commit_transaction(j: journal_t): Promise<void> {
  const ops = j.j_ops!;
  const t = j.j_running_transaction!;
  if (t.t_state === T_RUNNING) t.t_state = T_LOCKED;
  while (t.t_updates > 0) await sleepOn(j.j_wait_updates);
  /* Quiescent: until the copies are taken nothing below may sleep. */
  j.j_running_transaction = null;
  if (t.t_timer) { del_timer(t.t_timer); t.t_timer = null; }
  const inLog = (b: number): boolean => {
    const lt = j.j_logged.get(b);
    return lt !== undefined && tid_geq(lt, j.j_tail_sequence);
  };
  const revokes = [...t.t_revoke].filter(inLog).sort((a, b) => a - b);
  if (!t.t_buffers.size && !revokes.length) {
    /* Nothing to log: the id goes to the next transaction (ids in the log must follow on). */
    j.j_transaction_sequence = t.t_tid;
    t.t_state = T_FINISHED;
    jbd2_run_commit_callbacks(t);
    return;
  }
  t.t_state = T_FLUSH;
  const snaps: cp_entry[] = [];
  for (const [blocknr, jh] of t.t_buffers) {
    jh.b_transaction = null;
    const e: cp_entry = { blocknr, data: jh.bh.b_data.slice(), bh: jh.bh, t, cancelled_by: null };
    snaps.push(e);
    t.t_snap.set(blocknr, e);
  }
  t.t_buffers.clear();
  j.j_committing_transaction = t;
  try {
    await jbd2_write_transaction(j, t, snaps, revokes);
  } catch (e) {
    j.j_aborted = true;
    ops.print(`JBD2: Error ${(e as Error).message} detected when committing transaction ${t.t_tid}: journal aborted`);
    for (const s of snaps) put_bh(s.bh);
    t.t_snap.clear();
    j.j_committing_transaction = null;
    throw e;
  }
  /* T_COMMIT_CALLBACK: the copies wait for the checkpoint; older copies of the same blocks are superseded. */
  j.j_commit_sequence = t.t_tid;
  for (const e of snaps) {
    const old = j.j_cp.get(e.blocknr);
    if (old) { old.t.t_cp_count--; put_bh(old.bh); }
    j.j_cp.set(e.blocknr, e);
    t.t_cp_count++;
    j.j_logged.set(e.blocknr, t.t_tid);
  }
  t.t_snap.clear();
  j.j_checkpoint_transactions.push(t);
  j.j_committing_transaction = null;
  t.t_state = T_FINISHED;
  jbd2_run_commit_callbacks(t);
  jbd2_drop_cancelled(j);
  __jbd2_journal_clean_checkpoint_list(j);
  j.j_stats.commits++;
  /* Keep room for the next transactions: checkpoint when a quarter of the log is left (or
   * when the copies waiting for it use too much memory). */
  if (!j.j_no_checkpoint && (jbd2_log_space_left(j) < (j.j_last - j.j_first) / 4 ||
    j.j_cp.size * j.j_blocksize > JBD2_MAX_COPY_BYTES)) await jbd2_log_do_checkpoint(j);
}

async function jbd2_write_transaction(j: journal_t, t: transaction_t, snaps: cp_entry[], revokes: number[]): Promise<void> {
  const ops = j.j_ops!;
  const sb = j.j_sb;
  const bs = j.j_blocksize;
  const tid = t.t_tid;

  /* data=ordered: the data of this transaction's allocations before its commit block. */
  if (t.t_inode_list.size) await ops.writeData([...t.t_inode_list.values()]);
  t.t_inode_list.clear();
  t.t_state = T_COMMIT;

  const per = tags_per_descriptor(j);
  const ndesc = Math.ceil(snaps.length / per);
  const revokeBlocks = revokes.length ? jbd2_journal_write_revoke_records(j, tid, revokes) : [];
  const total = ndesc + snaps.length + revokeBlocks.length + 1;
  if (jbd2_log_space_left(j) < total) {
    await jbd2_log_do_checkpoint(j);
    // Still short: what is left is pinned by copies of blocks that this transaction (or the
    // running one) freed. Linux never gets here (start_this_handle keeps a transaction's worth
    // of log free before a handle may join); lkl-ts writes those copies home (see
    // jbd2_log_do_checkpoint), which its caller, holding j_commit_mutex, may.
    if (jbd2_log_space_left(j) < total) {
      j.j_stats.pinned_checkpoints++;
      await jbd2_log_do_checkpoint(j, true);
    }
    if (jbd2_log_space_left(j) < total)
      throw err(EIO, `JBD2: transaction ${tid} needs ${total} log blocks, ${jbd2_log_space_left(j)} free`);
  }
  let sbDirty = false;
  if (revokes.length && !jbd2_has_feature_revoke(sb)) {
    jbd2_journal_set_features(j, 0, JBD2_FEATURE_INCOMPAT_REVOKE);
    sbDirty = true;
  }
  if (j.j_flushed) await jbd2_journal_update_sb_log_tail(j, j.j_tail_sequence, j.j_tail);
  else if (sbDirty) await jbd2_write_superblock(j);

  /* The log blocks, in order, each with its journal block number. */
  const v23 = jbd2_journal_has_csum_v2or3(sb);
  const v1 = jbd2_has_feature_checksum(sb);
  const is64 = jbd2_has_feature_64bit(sb);
  let crc = 0xffffffff;
  const start = j.j_head;
  let lblk = start;
  const out: { lblk: number; data: Uint8Array }[] = [];
  const emit = (data: Uint8Array): void => { out.push({ lblk, data }); lblk = log_next(j, lblk); };
  for (let i = 0; i < snaps.length; i += per) {
    const chunk = snaps.slice(i, i + per);
    const desc = new Uint8Array(bs);
    jbd2_header_encode({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_DESCRIPTOR_BLOCK, h_sequence: tid }, desc, 0);
    const tags: journal_block_tag_t[] = [];
    const datas: Uint8Array[] = [];
    chunk.forEach((e, k) => {
      if (e.blocknr >= ops.fsBlocks || (!is64 && e.blocknr >= 2 ** 32))
        throw err(EIO, `JBD2: block ${e.blocknr} cannot be logged`);
      let data = e.data;
      let flags = 0;
      if (be32(data, 0) === JBD2_MAGIC_NUMBER) {
        data = data.slice();
        data[0] = data[1] = data[2] = data[3] = 0;
        flags |= JBD2_FLAG_ESCAPE;
      }
      if (k > 0) flags |= JBD2_FLAG_SAME_UUID;
      if (k === chunk.length - 1) flags |= JBD2_FLAG_LAST_TAG;
      tags.push({
        blocknr: e.blocknr, t_flags: flags,
        t_checksum: v23 ? jbd2_block_tag_csum_value(sb, j.j_csum_seed, tid, data, 0) : 0,
        uuid: k === 0 ? sb.s_uuid : null,
      });
      datas.push(data);
    });
    if (jbd2_descriptor_tags_encode(sb, tags, desc, 0) < 0) throw new Error('jbd2: descriptor overflow');
    jbd2_descriptor_block_csum_set(sb, j.j_csum_seed, desc, 0);
    emit(desc);
    if (v1) crc = crc32_be(crc, desc, 0, bs);
    for (const d of datas) { emit(d); if (v1) crc = crc32_be(crc, d, 0, bs); }
  }
  for (const r of revokeBlocks) emit(r);

  const commit = new Uint8Array(bs);
  const now = ops.now();
  jbd2_commit_encode({
    h_header: { h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_COMMIT_BLOCK, h_sequence: tid },
    h_chksum_type: v1 ? JBD2_CRC32_CHKSUM : 0, h_chksum_size: v1 ? JBD2_CRC32_CHKSUM_SIZE : 0,
    h_chksum: v1 ? [crc] : [], h_commit_sec: now.sec, h_commit_nsec: now.nsec,
  }, commit, 0);
  jbd2_commit_block_csum_set(sb, j.j_csum_seed, commit, 0);
  const commitLblk = lblk;
  lblk = log_next(j, lblk);

  const toDev = async (blocks: { lblk: number; data: Uint8Array }[]): Promise<void> => {
    const mapped: { pblk: number; data: Uint8Array }[] = [];
    for (const b of blocks) mapped.push({ pblk: await j.bmap(b.lblk), data: b.data });
    await jbd2_write_runs(j, mapped, true);
  };
  if (jbd2_has_feature_async_commit(sb)) {
    await toDev([...out, { lblk: commitLblk, data: commit }]);
    await ops.flush();
  } else {
    await toDev(out);
    await ops.flush();
    await toDev([{ lblk: commitLblk, data: commit }]);
    await ops.flush();
  }
  t.t_log_start = start;
  t.t_log_end = lblk;
  if (lblk < start) j.j_stats.wraps++;
  t.t_nr_log_blocks = total;
  j.j_head = lblk;
  j.j_stats.log_blocks += total;
  j.j_stats.revokes += revokes.length;
}

/** The transaction is on disk: what waited for that may go on (ext4: freed blocks become free). */
function jbd2_run_commit_callbacks(t: transaction_t): void {
  for (const cb of t.t_commit_callbacks.splice(0)) cb();
}
