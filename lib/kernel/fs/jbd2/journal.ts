/*
 * The in-memory journal object (fs/jbd2/journal.c: journal_t, jbd2_journal_init_inode,
 * journal_get_superblock / load_superblock): finding and validating the journal, mapping
 * journal blocks to device blocks; recovery.ts replays it. For a read-write mount
 * jbd2_journal_load_rw starts the write side (transaction.ts, commit.ts, checkpoint.ts,
 * revoke.ts): head and tail of the log, the commit worker, the superblock updates, and
 * jbd2_journal_destroy at unmount (commit, checkpoint, log marked empty).
 * Pure kernel code: the filesystem hands in block access (JournalDev).
 */
import { err } from '../../include/errno.js';
import { EFSBADCRC, EFSCORRUPTED, EINVAL, EIO } from '../../include/uapi.js';
import {
  JBD2_MIN_FC_BLOCKS, jbd2_has_feature_fast_commit, jbd2_journal_has_csum_v2or3, jbd2_superblock_check,
  jbd2_superblock_decode, type journal_superblock_t,
} from './layout.js';
import { jbd2_csum_seed, jbd2_superblock_csum_set, jbd2_superblock_csum_verify } from './csum.js';
import { JBD2_SB_OFF, be32, jbd2_superblock_encode } from './layout.js';
import { mutex, wait_queue_head } from '../../kernel/wait.js';
import { put_bh } from '../buffer.js';
import { del_timer } from '../../kernel/timer.js';
import { work_struct, workqueue_struct } from '../../kernel/workqueue.js';
import type { cp_entry, jbd2_inode, transaction_t } from './transaction.js';
import { jbd2_journal_commit_running } from './commit.js';
import { jbd2_log_do_checkpoint } from './checkpoint.js';
import { jbd2_journal_scan } from './recovery.js';

/** How the journal reaches its blocks: logical journal block → device block, and I/O. */
export interface JournalDev {
  /** Journal block size (= filesystem block size for an internal journal). */
  readonly blockSize: number;
  /** Size of the journal in blocks (i_size of the journal inode). */
  readonly nrBlocks: number;
  /** bmap: device block of journal block `lblk` (0 if unmapped). */
  bmap(lblk: number): Promise<number>;
  /** Read a device block (the log lives on the filesystem's device). */
  bread(pblk: number): Promise<Uint8Array>;
}

/** What the write side needs from the filesystem (jbd2_journal_load for writing). */
export interface JournalWriteOps {
  /** Write whole blocks from device block `pblk` on, below the buffer cache (`log`: journal blocks). */
  writeBlocks(pblk: number, data: Uint8Array, log: boolean): Promise<void>;
  /** A device block as it is on the disk (below the buffer cache). */
  readBlock(pblk: number): Promise<Uint8Array>;
  /** `n` consecutive device blocks from `pblk` on, from the disk. */
  readBlocks(pblk: number, n: number): Promise<Uint8Array>;
  /** Make completed writes durable (REQ_PREFLUSH). */
  flush(): Promise<void>;
  /**
   * data=ordered: write the data of the transaction's inodes (t_inode_list, each with the
   * range its allocations covered) and wait for it, before the commit block
   * (journal_submit_data_buffers + journal_finish_inode_data_buffers).
   */
  writeData(inodes: jbd2_inode[]): Promise<void>;
  /**
   * Before a commit locks the running transaction: updates the filesystem still holds in
   * memory go into it (ext4: dirty in-core inodes, which Linux's ext4_dirty_inode would
   * have written into their buffers already).
   */
  beforeCommit(): Promise<void>;
  /** Filesystem size in blocks (sanity check of tags). */
  readonly fsBlocks: number;
  /** The commit interval (commit=, default 5 s). */
  readonly commitIntervalNs: number;
  /** Wall clock for commit blocks. */
  now(): { sec: number; nsec: number };
  print(m: string): void;
}

export const JBD2_DEFAULT_FAST_COMMIT_BLOCKS = 256;
/** Committed copies kept in memory for the checkpoint: beyond this, checkpoint. */
export const JBD2_MAX_COPY_BYTES = 32 * 1024 * 1024;

/**
 * Test hooks: `no_checkpoint` makes journals loaded from now on commit but never
 * checkpoint; `last` is the journal loaded for writing last (for its j_stats).
 */
export const jbd2_debug: { no_checkpoint: boolean; last: journal_t | null } = { no_checkpoint: false, last: null };

/** journal_t (read-side fields). */
export class journal_t {
  j_sb!: journal_superblock_t;
  j_sbraw!: Uint8Array;
  j_blocksize = 0;
  /** The log area is [j_first, j_last); fast-commit blocks follow up to j_fc_last. */
  j_first = 0;
  j_last = 0;
  j_fc_first = 0;
  j_fc_last = 0;
  j_maxlen = 0;
  j_tail_sequence = 0;
  j_tail = 0;
  j_csum_seed = 0;
  /** Next transaction id after recovery. */
  j_transaction_sequence = 0;
  j_failed_commit = 0;
  j_head = 0;
  /* ---- write side (null j_ops: read-only journal) ---- */
  j_ops: JournalWriteOps | null = null;
  /** Raw bytes of journal block 0 (the superblock is its first 1024 bytes). */
  j_sbblock: Uint8Array | null = null;
  j_running_transaction: transaction_t | null = null;
  j_committing_transaction: transaction_t | null = null;
  /** Committed transactions whose log space is still needed, oldest first. */
  j_checkpoint_transactions: transaction_t[] = [];
  /** Committed copies waiting to be written home, by block (the newest copy only). */
  j_cp = new Map<number, cp_entry>();
  /** Block → the last transaction that logged it (revokes are needed while it is in the log). */
  j_logged = new Map<number, number>();
  j_commit_sequence = 0;
  /** The on-disk superblock says the log is empty (s_start 0): the first commit sets the tail first. */
  j_flushed = false;
  j_aborted = false;
  j_max_transaction_buffers = 0;
  j_wait_updates = new wait_queue_head();
  j_commit_mutex = new mutex();
  j_checkpoint_mutex = new mutex();
  j_wq: workqueue_struct | null = null;
  j_commit_work: work_struct | null = null;
  /** Test hook: commit, but never checkpoint (the log keeps everything). */
  j_no_checkpoint = false;
  /** pinned_checkpoints: commits that had to write home copies of blocks freed by uncommitted transactions (jbd2_log_do_checkpoint). */
  j_stats = { commits: 0, log_blocks: 0, checkpoints: 0, revokes: 0, wraps: 0, pinned_checkpoints: 0 };
  private bmapCache = new Map<number, number>();
  constructor(public readonly dev: JournalDev, public readonly devName: string) {}

  /** jbd2_journal_bmap. */
  async bmap(lblk: number): Promise<number> {
    const c = this.bmapCache.get(lblk);
    if (c !== undefined) return c;
    const p = await this.dev.bmap(lblk);
    if (!p) throw err(EFSCORRUPTED, `JBD2: bad block at offset ${lblk}`);
    this.bmapCache.set(lblk, p);
    return p;
  }
  /** jread: journal block `lblk`. */
  async jread(lblk: number): Promise<Uint8Array> {
    return this.dev.bread(await this.bmap(lblk));
  }
}

/**
 * jbd2_journal_init_inode + journal_get_superblock + load_superblock: read block 0 of the
 * journal and check it as Linux does (magic, block size, length, first block, features,
 * checksum). Throws with Linux's message on failure.
 */
export async function jbd2_journal_init(dev: JournalDev, devName: string, print: (m: string) => void): Promise<journal_t> {
  const j = new journal_t(dev, devName);
  j.j_blocksize = dev.blockSize;
  const raw = (await j.jread(0)).slice(0, 1024);
  const sb = jbd2_superblock_decode(raw, 0);
  const why = jbd2_superblock_check(sb, dev.blockSize, dev.nrBlocks);
  if (why) {
    print(`JBD2: ${why}`);
    throw err(EINVAL, `JBD2: ${why}`);
  }
  if (jbd2_journal_has_csum_v2or3(sb) && !jbd2_superblock_csum_verify(sb, raw, 0)) {
    print('JBD2: journal checksum error');
    throw err(EFSBADCRC, 'JBD2: journal checksum error');
  }
  j.j_sb = sb;
  j.j_sbraw = raw;
  j.j_maxlen = sb.s_maxlen;
  j.j_first = sb.s_first;
  j.j_last = sb.s_maxlen;
  if (jbd2_has_feature_fast_commit(sb)) {
    const nfc = sb.s_num_fc_blks || JBD2_DEFAULT_FAST_COMMIT_BLOCKS;
    if (sb.s_maxlen - nfc >= 1024 && nfc >= JBD2_MIN_FC_BLOCKS / 256) {
      j.j_fc_last = sb.s_maxlen;
      j.j_last = sb.s_maxlen - nfc;
      j.j_fc_first = j.j_last + 1;
    }
  }
  j.j_tail_sequence = sb.s_sequence;
  j.j_tail = sb.s_start;
  j.j_transaction_sequence = sb.s_sequence;
  if (jbd2_journal_has_csum_v2or3(sb)) j.j_csum_seed = jbd2_csum_seed(sb);
  return j;
}

/** Free log blocks between head and tail (one kept unused so that full and empty differ). */
export function jbd2_log_space_left(j: journal_t): number {
  const len = j.j_last - j.j_first;
  const used = (j.j_head - j.j_tail + len) % len;
  return len - used - 1;
}

/**
 * jbd2_write_superblock: the in-memory superblock fields into journal block 0, checksummed,
 * written below the cache and flushed (Linux writes it with REQ_FUA).
 */
export async function jbd2_write_superblock(j: journal_t): Promise<void> {
  const ops = j.j_ops!;
  const raw = j.j_sbraw;
  jbd2_superblock_encode(j.j_sb, raw, 0);
  jbd2_superblock_csum_set(j.j_sb, raw, 0);
  j.j_sb.s_checksum = be32(raw, JBD2_SB_OFF.s_checksum);
  const blk = j.j_sbblock!;
  blk.set(raw, 0);
  await ops.writeBlocks(await j.bmap(0), blk, true);
  await ops.flush();
}

/** jbd2_journal_update_sb_log_tail: the log now starts at (tid, block). */
export async function jbd2_journal_update_sb_log_tail(j: journal_t, tid: number, block: number): Promise<void> {
  j.j_sb.s_sequence = tid >>> 0;
  j.j_sb.s_start = block;
  await jbd2_write_superblock(j);
  j.j_flushed = false;
}

/** jbd2_mark_journal_empty: s_start 0, the next transaction's id in s_sequence. */
export async function jbd2_mark_journal_empty(j: journal_t): Promise<void> {
  j.j_sb.s_sequence = j.j_tail_sequence >>> 0;
  j.j_sb.s_start = 0;
  await jbd2_write_superblock(j);
  j.j_flushed = true;
}

/** jbd2_journal_set_features: add incompat features (in memory; written with the superblock). */
export function jbd2_journal_set_features(j: journal_t, compat: number, incompat: number): boolean {
  const sb = j.j_sb;
  if (sb.s_header.h_blocktype !== 4 /* JBD2_SUPERBLOCK_V2 */) return false;
  sb.s_feature_compat = (sb.s_feature_compat | compat) >>> 0;
  sb.s_feature_incompat = (sb.s_feature_incompat | incompat) >>> 0;
  return true;
}

/**
 * jbd2_journal_load for writing (journal_reset): the log is empty after recovery (or is
 * made so: a log that was not to be recovered is skipped, as jbd2_journal_skip_recovery
 * does), head and tail at the first log block, the commit worker ready.
 */
export async function jbd2_journal_load_rw(j: journal_t, ops: JournalWriteOps): Promise<void> {
  j.j_ops = ops;
  j.j_sbblock = (await ops.readBlock(await j.bmap(0))).slice();
  j.j_sbraw = j.j_sbblock.slice(0, 1024);
  if (j.j_sb.s_start !== 0) {
    const info = await jbd2_journal_scan(j, ops.print);
    ops.print(`JBD2: ignoring recovery information on journal ${j.devName}`);
    j.j_transaction_sequence = (info.end_transaction + 1) >>> 0;
    j.j_sb.s_sequence = j.j_transaction_sequence;
    j.j_sb.s_start = 0;
    await jbd2_write_superblock(j);
  } else {
    j.j_transaction_sequence = (j.j_sb.s_sequence + 1) >>> 0;
  }
  j.j_head = j.j_first;
  j.j_tail = j.j_first;
  j.j_tail_sequence = j.j_transaction_sequence;
  j.j_commit_sequence = (j.j_transaction_sequence - 1) >>> 0;
  j.j_flushed = true;
  // A quarter of the log, as Linux; but commits copy their buffers, so also at most 32 MiB.
  j.j_max_transaction_buffers = Math.min(Math.floor((j.j_last - j.j_first) / 4), JBD2_MAX_COPY_BYTES / j.j_blocksize);
  j.j_no_checkpoint = jbd2_debug.no_checkpoint;
  jbd2_debug.last = j;
  j.j_checkpoint_transactions = [];
  j.j_cp.clear();
  j.j_logged.clear();
  j.j_aborted = false;
  j.j_wq = new workqueue_struct(`jbd2/${j.devName}`);
  j.j_commit_work = new work_struct(async () => {
    try { await jbd2_journal_commit_running(j); } catch (e) { ops.print(`JBD2: commit failed: ${(e as Error).message}`); }
  });
}

/**
 * jbd2_journal_abort: stop writing the journal (a filesystem error): what is running is
 * never committed, the log keeps what was committed and will be replayed.
 */
export function jbd2_journal_abort(j: journal_t, why: string): void {
  if (j.j_aborted) return;
  j.j_aborted = true;
  j.j_ops?.print(`JBD2: journal ${j.devName} aborted: ${why}`);
}

/**
 * jbd2_journal_force_commit: commit what is running now and wait for it (and for any
 * commit already in progress).
 */
export async function jbd2_journal_force_commit(j: journal_t): Promise<void> {
  if (!j.j_ops) return;
  await jbd2_journal_commit_running(j);
}

/** jbd2_journal_flush: commit, then checkpoint everything (the log holds nothing needed). */
export async function jbd2_journal_flush(j: journal_t): Promise<void> {
  await jbd2_journal_force_commit(j);
  await jbd2_log_do_checkpoint(j);
}

/**
 * jbd2_journal_destroy: commit, checkpoint everything, mark the log empty, stop the
 * worker. After this the journal is read-only again. As Linux's, it checkpoints until no
 * copy is left (a commit may have queued more while the first pass wrote); a pass that
 * frees nothing ends it with EIO, the log left as it is for recovery (ext4 then keeps
 * needs_recovery set), never marked empty over copies that did not reach their place.
 */
export async function jbd2_journal_destroy(j: journal_t): Promise<void> {
  if (!j.j_ops) return;
  let failed: unknown = null;
  try {
    if (!j.j_aborted) {
      await jbd2_journal_flush(j);
      while (j.j_cp.size && !j.j_aborted) {
        const left = j.j_cp.size;
        if (j.j_running_transaction?.t_buffers.size) await jbd2_journal_force_commit(j);
        await jbd2_log_do_checkpoint(j);
        if (j.j_cp.size >= left) throw err(EIO, `JBD2: ${j.j_cp.size} checkpoint buffers left unwritten; the log is kept for recovery`);
      }
      if (!j.j_aborted) await jbd2_mark_journal_empty(j);
    }
  } catch (e) { failed = e; }
  const t = j.j_running_transaction;
  if (t?.t_timer) { del_timer(t.t_timer); t.t_timer = null; }
  if (j.j_wq) await j.j_wq.destroy();
  j.j_wq = null;
  j.j_commit_work = null;
  j.j_ops = null;
  // What an aborted journal still holds is dropped (the log has what was committed).
  if (t) {
    for (const jh of t.t_buffers.values()) { jh.b_transaction = null; put_bh(jh.bh); }
    t.t_buffers.clear();
  }
  j.j_running_transaction = null;
  for (const e of j.j_cp.values()) put_bh(e.bh);
  j.j_cp.clear();
  j.j_checkpoint_transactions = [];
  if (failed) throw failed;
}
