/*
 * Checkpointing (fs/jbd2/checkpoint.c): committed copies of metadata blocks are written to
 * their home locations, and once they are there (and flushed) the log space of their
 * transactions is given back by moving the tail (jbd2_cleanup_journal_tail, which writes
 * s_sequence / s_start in the journal superblock).
 *
 * Each block has at most one pending copy, the newest committed one (older ones are
 * dropped when a newer transaction commits the block, as __jbd2_journal_remove_checkpoint
 * does). A transaction leaves the checkpoint list when none of its copies is pending; the
 * tail is the oldest transaction still listed. Copies of blocks freed since are not
 * written (the block may hold file data now); they are dropped once the freeing
 * transaction has committed its revoke.
 *
 * This checkpoint writes everything pending at once (correctness over speed). Pure kernel code.
 */
import { put_bh } from '../buffer.js';
import { tid_geq, type cp_entry } from './transaction.js';
import { jbd2_journal_update_sb_log_tail, type journal_t } from './journal.js';

function drop_entry(j: journal_t, e: cp_entry): void {
  j.j_cp.delete(e.blocknr);
  e.t.t_cp_count--;
  put_bh(e.bh);
}

/** Write blocks home in runs of consecutive block numbers (one request each). */
export async function jbd2_write_runs(j: journal_t, blocks: { pblk: number; data: Uint8Array }[], log: boolean): Promise<void> {
  const ops = j.j_ops!;
  const bs = j.j_blocksize;
  let i = 0;
  while (i < blocks.length) {
    let n = 1;
    while (i + n < blocks.length && n < 64 && blocks[i + n]!.pblk === blocks[i]!.pblk + n) n++;
    if (n === 1) await ops.writeBlocks(blocks[i]!.pblk, blocks[i]!.data, log);
    else {
      const buf = new Uint8Array(n * bs);
      for (let k = 0; k < n; k++) buf.set(blocks[i + k]!.data, k * bs);
      await ops.writeBlocks(blocks[i]!.pblk, buf, log);
    }
    i += n;
  }
}

/**
 * jbd2_log_do_checkpoint: every pending copy home, a flush, then the tail moves up to the
 * oldest transaction that still has something pending (or to the head: the log is empty).
 *
 * A copy whose block a later transaction freed (cancelled_by) is not written: once that
 * transaction commits the block may hold someone else's data. Until it commits, the copy
 * pins its own transaction in the log, which a commit short of log space cannot wait out
 * when the freeing transaction is the one committing (or the running one, committed after
 * it). `pendingCancels` writes those copies home too: the caller holds j_commit_mutex, so
 * no freeing transaction commits meanwhile, and a freed block stays out of the allocator's
 * reach until its freeing transaction has committed (ext4's s_busy_blocks, Linux's
 * ext4_free_data), so until then the block is still its old owner's and the copy is its
 * last committed content. That frees the whole log but for the committing transaction.
 */
export async function jbd2_log_do_checkpoint(j: journal_t, pendingCancels = false): Promise<void> {
  if (!j.j_ops || j.j_no_checkpoint) return;
  await j.j_checkpoint_mutex.lock();
  try {
    jbd2_drop_cancelled(j);
    const todo = [...j.j_cp.values()].filter((e) => e.cancelled_by === null || pendingCancels).sort((a, b) => a.blocknr - b.blocknr);
    await jbd2_write_runs(j, todo.map((e) => ({ pblk: e.blocknr, data: e.data })), false);
    if (todo.length) await j.j_ops.flush();
    for (const e of todo) if (j.j_cp.get(e.blocknr) === e) drop_entry(j, e);
    jbd2_drop_cancelled(j);
    j.j_stats.checkpoints++;
    await jbd2_cleanup_journal_tail(j);
  } finally { j.j_checkpoint_mutex.unlock(); }
}

/** Copies of blocks freed by a transaction that has committed: nothing to write. */
export function jbd2_drop_cancelled(j: journal_t): void {
  for (const e of [...j.j_cp.values()])
    if (e.cancelled_by !== null && tid_geq(j.j_commit_sequence, e.cancelled_by)) drop_entry(j, e);
}

/** Transactions with nothing pending leave the checkpoint list (from the oldest). */
export function __jbd2_journal_clean_checkpoint_list(j: journal_t): void {
  const l = j.j_checkpoint_transactions;
  while (l.length && l[0]!.t_cp_count === 0) l.shift();
}

/**
 * jbd2_cleanup_journal_tail: the oldest transaction still needed (its first log block), or
 * the head when the log holds nothing needed; written to the journal superblock if it moved.
 */
export async function jbd2_cleanup_journal_tail(j: journal_t): Promise<void> {
  __jbd2_journal_clean_checkpoint_list(j);
  const first = j.j_checkpoint_transactions[0];
  let tid: number, blk: number;
  if (first) { tid = first.t_tid; blk = first.t_log_start; }
  else {
    const t = j.j_committing_transaction ?? j.j_running_transaction;
    tid = t ? t.t_tid : j.j_transaction_sequence;
    blk = j.j_head;
  }
  if (tid === j.j_tail_sequence && blk === j.j_tail) return;
  j.j_tail_sequence = tid >>> 0;
  j.j_tail = blk;
  for (const [b, lt] of j.j_logged) if (!tid_geq(lt, j.j_tail_sequence)) j.j_logged.delete(b);
  await jbd2_journal_update_sb_log_tail(j, j.j_tail_sequence, j.j_tail);
}
