/*
 * Transactions and handles (fs/jbd2/transaction.c): the running transaction that handles
 * join, and the buffer accounting that keeps journalled metadata out of writeback until
 * the transaction holding it has committed.
 *
 * A handle joins the running transaction when it starts (t_updates++) and leaves it when
 * it stops. A commit locks the transaction (T_LOCKED) and waits until t_updates is 0; at
 * that moment no update is half done, and the commit takes a copy of every buffer the
 * transaction dirtied (commit.ts). The copy is what goes to the log and, after the commit,
 * what the checkpoint writes home (checkpoint.ts): the live buffer may already carry the
 * next transaction's changes, which must not reach the disk before that one commits.
 *
 * Differences from Linux, on purpose:
 *  - ext4_journal_start is synchronous in this driver, so a handle cannot sleep at start.
 *    Handles that start while the transaction is T_LOCKED join it (Linux makes them wait
 *    for the next one); the commit then waits for them too. Commits still happen at a
 *    quiescent point, so every handle is atomic.
 *  - Buffers are copied at commit (Linux freezes a copy only when the next transaction
 *    touches a buffer that is still being committed).
 *  - Freed metadata: besides ext4_forget, every block that an update frees is reported
 *    (jbd2_journal_block_freed, from ext4_free_blocks): its log copies are revoked
 *    and pending home writes of older copies are cancelled, so a block reused for data is
 *    never overwritten by stale metadata, now or at replay.
 *
 * Pure kernel code.
 */
import { err } from '../../include/errno.js';
import { EROFS } from '../../include/uapi.js';
import { BH_Dirty, BH_JBD, BH_Uptodate } from '../../include/blk.js';
import { get_bh, put_bh, type buffer_head } from '../buffer.js';
import { add_timer, ktime_get_ns } from '../../kernel/timer.js';
import type { timer_list } from '../../kernel/timer.js';
import type { journal_t } from './journal.js';
import { jbd2_journal_cancel_revoke, jbd2_journal_revoke } from './revoke.js';

/* t_state */
export const T_RUNNING = 0, T_LOCKED = 1, T_SWITCH = 2, T_FLUSH = 3, T_COMMIT = 4, T_COMMIT_DFLUSH = 5,
  T_COMMIT_JFLUSH = 6, T_COMMIT_CALLBACK = 7, T_FINISHED = 8;

/** tid_gt / tid_geq: transaction ids are u32 and wrap. */
export const tid_gt = (x: number, y: number): boolean => ((x - y) | 0) > 0;
export const tid_geq = (x: number, y: number): boolean => ((x - y) | 0) >= 0;

/** struct journal_head: jbd2's state of one buffer (bh.b_private, with BH_JBD). */
export class journal_head {
  /** The running transaction that has dirtied this buffer (not yet committed). */
  b_transaction: transaction_t | null = null;
  constructor(readonly bh: buffer_head) {}
}

/**
 * One committed copy of a block waiting to be written home: the checkpoint list entry.
 * `cancelled_by`: a later transaction freed the block, so the copy must not be written
 * (the block may be reused); the entry pins the log until that transaction commits.
 */
export interface cp_entry {
  blocknr: number;
  data: Uint8Array;
  bh: buffer_head;
  t: transaction_t;
  cancelled_by: number | null;
}

/**
 * struct jbd2_inode: an inode whose file data a transaction must have on the disk before its
 * commit block (data=ordered) — the byte range its updates allocated blocks for. One per
 * inode and transaction here (t_inode_list is keyed by the inode), where Linux keeps one
 * per inode with i_transaction / i_next_transaction.
 */
export interface jbd2_inode {
  readonly i_vfs_inode: object;
  i_dirty_start: number;
  /** Last byte of the range (inclusive), as Linux's i_dirty_end. */
  i_dirty_end: number;
}

/** transaction_t. */
export class transaction_t {
  t_state = T_RUNNING;
  /** Handles in progress (they may still change buffers). */
  t_updates = 0;
  t_handle_count = 0;
  /** Credits of the handles in progress. */
  t_outstanding_credits = 0;
  /** Metadata buffers dirtied, by block number (BJ_Metadata). */
  t_buffers = new Map<number, journal_head>();
  /** Inodes whose new blocks' data goes to the disk before the commit block (t_inode_list). */
  t_inode_list = new Map<object, jbd2_inode>();
  /** Blocks freed in this transaction (revoke candidates). */
  t_revoke = new Set<number>();
  /** The copies being committed (from the lock on), by block number. */
  t_snap = new Map<number, cp_entry>();
  /** Log blocks [t_log_start, t_log_end) once written. */
  t_log_start = 0;
  t_log_end = 0;
  t_nr_log_blocks = 0;
  /** Entries of j_cp that belong to this transaction. */
  t_cp_count = 0;
  t_start_ns = 0;
  t_timer: timer_list | null = null;
  /**
   * Run once the transaction is committed (Linux's j_commit_callback: ext4 releases the
   * blocks the transaction freed for reuse only then).
   */
  t_commit_callbacks: (() => void)[] = [];
  constructor(readonly t_tid: number, readonly t_journal: journal_t) {}
}

/** The jbd2 side of a handle (ext4's handle_t carries these). */
export interface jbd2_handle {
  h_transaction: transaction_t | null;
  h_buffer_credits: number;
}

function jbd2_journal_add_journal_head(bh: buffer_head): journal_head {
  if (bh.test(BH_JBD) && bh.b_private instanceof journal_head) return bh.b_private;
  const jh = new journal_head(bh);
  bh.b_private = jh;
  bh.set(BH_JBD);
  return jh;
}

/** jbd2_get_transaction: a new running transaction, with its commit timer armed. */
function jbd2_get_transaction(j: journal_t): transaction_t {
  const t = new transaction_t(j.j_transaction_sequence, j);
  j.j_transaction_sequence = (j.j_transaction_sequence + 1) >>> 0;
  t.t_start_ns = ktime_get_ns();
  j.j_running_transaction = t;
  const ops = j.j_ops!;
  t.t_timer = add_timer(ops.commitIntervalNs, () => {
    t.t_timer = null;
    jbd2_log_start_commit(j, t.t_tid);
  });
  return t;
}

/**
 * jbd2_log_start_commit: ask for transaction `tid` to be committed (by the journal's
 * commit worker, kjournald2's job in Linux). Safe from timer context.
 */
export function jbd2_log_start_commit(j: journal_t, tid: number): void {
  const t = j.j_running_transaction;
  if (!t || t.t_tid !== tid || j.j_aborted || !j.j_wq || !j.j_commit_work) return;
  if (t.t_state === T_RUNNING) t.t_state = T_LOCKED;
  j.j_wq.queueWork(j.j_commit_work);
}

/**
 * jbd2_journal_start (start_this_handle): join the running transaction, creating one if
 * there is none. If it would grow past the journal's maximum transaction size, its commit
 * is requested (it happens as soon as the handles in it are done).
 */
export function jbd2_journal_start(j: journal_t, handle: jbd2_handle, credits: number): void {
  if (j.j_aborted || !j.j_ops) throw err(EROFS);
  const t = j.j_running_transaction ?? jbd2_get_transaction(j);
  t.t_updates++;
  t.t_handle_count++;
  t.t_outstanding_credits += credits;
  handle.h_transaction = t;
  handle.h_buffer_credits = credits;
  if (t.t_state === T_RUNNING && t.t_buffers.size + t.t_outstanding_credits > j.j_max_transaction_buffers)
    jbd2_log_start_commit(j, t.t_tid);
}

/** jbd2_journal_stop: the handle's updates are complete; a waiting commit may proceed. */
export function jbd2_journal_stop(j: journal_t, handle: jbd2_handle): void {
  const t = handle.h_transaction;
  if (!t) return;
  handle.h_transaction = null;
  t.t_updates--;
  t.t_outstanding_credits -= handle.h_buffer_credits;
  if (t.t_updates === 0) j.j_wait_updates.wakeUpAll();
}

/**
 * jbd2_journal_inode_ranged_write: bytes [start_byte, start_byte + length) of `inode` got
 * blocks in this handle's update; the transaction's commit writes and waits for that data
 * first (data=ordered), so that no committed metadata points at blocks holding stale data.
 */
export function jbd2_journal_inode_ranged_write(j: journal_t, handle: jbd2_handle, inode: object, start_byte: number, length: number): void {
  const t = handle.h_transaction;
  if (!t || j.j_aborted || length <= 0) return;
  const end = start_byte + length - 1;
  const ji = t.t_inode_list.get(inode);
  if (!ji) { t.t_inode_list.set(inode, { i_vfs_inode: inode, i_dirty_start: start_byte, i_dirty_end: end }); return; }
  if (start_byte < ji.i_dirty_start) ji.i_dirty_start = start_byte;
  if (end > ji.i_dirty_end) ji.i_dirty_end = end;
}

/** Take the buffer out of writeback: a journalled buffer goes home only from a checkpoint. */
function jbd2_unfile_from_writeback(bh: buffer_head): void {
  bh.clear(BH_Dirty);
}

/** jbd2_journal_get_write_access: the handle is about to change an existing buffer. */
export function jbd2_journal_get_write_access(j: journal_t, handle: jbd2_handle, bh: buffer_head): void {
  const t = handle.h_transaction;
  if (!t || j.j_aborted) throw err(EROFS);
  jbd2_journal_add_journal_head(bh);
  jbd2_unfile_from_writeback(bh);
  /* A block freed earlier in this transaction is in use again: it must not be revoked. */
  jbd2_journal_cancel_revoke(t, bh.b_blocknr);
}

/** jbd2_journal_get_create_access: a newly allocated block is about to be filled. */
export function jbd2_journal_get_create_access(j: journal_t, handle: jbd2_handle, bh: buffer_head): void {
  jbd2_journal_get_write_access(j, handle, bh);
}

/**
 * jbd2_journal_dirty_metadata: the buffer belongs to the transaction; it is logged at
 * commit and not written in place before.
 */
export function jbd2_journal_dirty_metadata(j: journal_t, handle: jbd2_handle, bh: buffer_head): void {
  const t = handle.h_transaction;
  if (!t || j.j_aborted) throw err(EROFS);
  bh.set(BH_Uptodate);
  const jh = jbd2_journal_add_journal_head(bh);
  jbd2_unfile_from_writeback(bh);
  jbd2_journal_cancel_revoke(t, bh.b_blocknr);
  if (jh.b_transaction === t) return;
  const prev = t.t_buffers.get(bh.b_blocknr);
  if (prev && prev !== jh) { prev.b_transaction = null; put_bh(prev.bh); }
  jh.b_transaction = t;
  t.t_buffers.set(bh.b_blocknr, jh);
  get_bh(bh);
}

/**
 * jbd2_journal_block_freed: block `blocknr` was freed by an update of the running
 * transaction. Its buffer is not logged by this transaction, older copies waiting for a
 * checkpoint are not written home any more (the block may be reused for data), and the
 * block is revoked so that replay does not bring an old copy back.
 */
export function jbd2_journal_block_freed(j: journal_t, handle: jbd2_handle, blocknr: number): void {
  const t = handle.h_transaction;
  if (!t) return;
  const jh = t.t_buffers.get(blocknr);
  if (jh) {
    t.t_buffers.delete(blocknr);
    jh.b_transaction = null;
    put_bh(jh.bh);
  }
  const e1 = j.j_cp.get(blocknr);
  if (e1 && e1.cancelled_by === null) e1.cancelled_by = t.t_tid;
  const e2 = j.j_committing_transaction?.t_snap.get(blocknr);
  if (e2 && e2.cancelled_by === null) e2.cancelled_by = t.t_tid;
  jbd2_journal_revoke(t, blocknr);
}

/** jbd2_journal_forget: a metadata buffer of a block being freed (ext4_forget). */
export function jbd2_journal_forget(j: journal_t, handle: jbd2_handle, bh: buffer_head): void {
  jbd2_unfile_from_writeback(bh);
  jbd2_journal_block_freed(j, handle, bh.b_blocknr);
}
