/*
 * ext4's journalling glue (fs/ext4/ext4_jbd2.c, ext4_jbd2.h): every metadata change is made
 * inside a handle — ext4_journal_start with the credits the operation may use, then for
 * each buffer ext4_journal_get_write_access (or _create_access for a new block) before it
 * is changed and ext4_handle_dirty_metadata after, and ext4_journal_stop at the end.
 *
 * Without a journal (ext2, `mke2fs -O ^has_journal`) the handle is Linux's "nojournal"
 * handle: access calls do nothing, dirtying marks the buffer dirty for writeback (written
 * at once for a synchronous inode), and stop only returns the handle's error.
 *
 * With a journal loaded for writing (sbi.s_journal.j_ops set) the handle joins jbd2's
 * running transaction: dirtied buffers belong to it and reach their home only through a
 * commit and a checkpoint (fs/jbd2). Freed metadata is forgotten (ext4_forget) and every
 * block ext4_free_blocks frees is reported to jbd2 (ext4_journal_block_freed), so that its
 * log copies are revoked and no stale copy is written over the block once it is reused.
 *
 * Metadata buffers are the block device's buffer cache (sb_bread / sb_getblk): a block the
 * write side changes in place is what every later read of it sees.
 */
import type { inode, super_block } from '../../include/fs.js';
import { S_SYNC } from '../../include/fs.js';
import { S_IFMT, S_IFREG } from '../../include/uapi.js';
import { err } from '../../include/errno.js';
import { EIO, EROFS } from '../../include/uapi.js';
import { brelse, mark_buffer_dirty, sb_bread, sb_getblk, sync_dirty_buffer, type buffer_head } from '../buffer.js';
import { BH_Dirty, BH_Uptodate } from '../../include/blk.js';
import { EXT4_MOUNT_DATA_FLAGS, EXT4_MOUNT_JOURNAL_DATA, EXT4_MOUNT_ORDERED_DATA, EXT4_SB, type ext4_inode_info } from './ext4.js';
import { ext4_abort, ext4_error } from './errors.js';
import type { journal_t } from '../jbd2/journal.js';
import { jbd2_journal_force_commit } from '../jbd2/journal.js';
import {
  jbd2_journal_block_freed, jbd2_journal_dirty_metadata, jbd2_journal_forget, jbd2_journal_get_create_access,
  jbd2_journal_get_write_access, jbd2_journal_inode_ranged_write, jbd2_journal_start, jbd2_journal_stop, jbd2_log_start_commit, type transaction_t,
} from '../jbd2/transaction.js';

/* Handle types (EXT4_HT_*), for messages. */
export const EXT4_HT_MISC = 0, EXT4_HT_INODE = 1, EXT4_HT_WRITE_PAGE = 2, EXT4_HT_MAP_BLOCKS = 3,
  EXT4_HT_DIR = 4, EXT4_HT_TRUNCATE = 5, EXT4_HT_QUOTA = 6, EXT4_HT_RESIZE = 7, EXT4_HT_MIGRATE = 8,
  EXT4_HT_MOVE_EXTENTS = 9, EXT4_HT_XATTR = 10, EXT4_HT_EXT_CONVERT = 11;

/* Credit estimates (ext4_jbd2.h). */
export const EXT4_SINGLEDATA_TRANS_BLOCKS = 8;
export const EXT4_XATTR_TRANS_BLOCKS = 6;
export const EXT4_DATA_TRANS_BLOCKS = EXT4_SINGLEDATA_TRANS_BLOCKS + EXT4_XATTR_TRANS_BLOCKS - 2;
export const EXT4_META_TRANS_BLOCKS = 8;
export const EXT4_INDEX_EXTRA_TRANS_BLOCKS = 12;
export const EXT4_RESERVE_TRANS_BLOCKS = 12;

/** handle_t: one atomic metadata update. In nojournal mode it only carries an error. */
export class handle_t {
  h_err = 0;
  /** Buffers dirtied under this handle (for the journal; in nojournal mode for accounting). */
  h_buffers = 0;
  /** The jbd2 transaction this handle is part of (null: nojournal). */
  h_transaction: transaction_t | null = null;
  h_journal: journal_t | null = null;
  /** A synchronous update (IS_SYNC inode): its transaction is committed when it stops. */
  h_sync = false;
  constructor(public readonly h_sb: super_block, public readonly h_type: number, public h_buffer_credits: number) {}
}

/** ext4_handle_valid: false for the nojournal handle (no transaction behind it). */
export function ext4_handle_valid(handle: handle_t | null): boolean {
  return !!handle && handle.h_transaction !== null;
}

/** The journal if it is loaded for writing (not for a nojournal or read-only mount). */
export function ext4_journal_writable(sb: super_block): journal_t | null {
  const j = EXT4_SB(sb).s_journal;
  return j && j.j_ops ? j : null;
}

/** ext4_force_commit: commit the running transaction and wait (fsync, sync_fs). */
export async function ext4_force_commit(sb: super_block): Promise<void> {
  const j = ext4_journal_writable(sb);
  if (j) await jbd2_journal_force_commit(j);
}

/**
 * __ext4_journal_start_sb: a handle for an update of up to `credits` metadata blocks.
 * EROFS on a read-only or shut-down filesystem (ext4_journal_check_start).
 */
export function ext4_journal_start_sb(sb: super_block, type: number, credits: number): handle_t {
  const sbi = EXT4_SB(sb);
  if (sbi.s_shutdown) throw err(EIO);
  if (sb.s_flags & 1 /* SB_RDONLY */ || sbi.s_readonly_driver) throw err(EROFS);
  if (sbi.s_journal?.j_aborted) {
    // ext4_journal_check_start: a failed commit aborted the journal; nothing more can be logged.
    ext4_abort(sb, '__ext4_journal_start_sb', 'Detected aborted journal');
    throw err(EROFS);
  }
  const handle = new handle_t(sb, type, credits);
  const j = ext4_journal_writable(sb);
  if (j) {
    jbd2_journal_start(j, handle, credits);
    handle.h_journal = j;
  }
  return handle;
}
export function ext4_journal_start(inode: inode, type: number, credits: number): handle_t {
  return ext4_journal_start_sb(inode.i_sb, type, credits);
}

/** ext4_journal_stop: end the update; the handle's first error is returned as a throw. */
export async function ext4_journal_stop(handle: handle_t): Promise<void> {
  const j = handle.h_journal;
  if (j && handle.h_transaction) {
    const tid = handle.h_transaction.t_tid;
    jbd2_journal_stop(j, handle);
    if (handle.h_sync) jbd2_log_start_commit(j, tid);
  }
  if (handle.h_err) throw err(handle.h_err);
}

/** ext4_journal_get_write_access: before changing an existing metadata buffer. */
export async function ext4_journal_get_write_access(handle: handle_t, _sb: super_block, bh: buffer_head): Promise<void> {
  /* nojournal: nothing to record */
  if (handle.h_journal && handle.h_transaction) jbd2_journal_get_write_access(handle.h_journal, handle, bh);
}
/** ext4_journal_get_create_access: before filling a newly allocated metadata block. */
export async function ext4_journal_get_create_access(handle: handle_t, _sb: super_block, bh: buffer_head): Promise<void> {
  /* nojournal: nothing to record */
  if (handle.h_journal && handle.h_transaction) jbd2_journal_get_create_access(handle.h_journal, handle, bh);
}

/**
 * ext4_handle_dirty_metadata: the buffer changed. nojournal: mark it dirty, and write it
 * now if the inode is synchronous (as Linux's __ext4_handle_dirty_metadata does).
 */
export async function ext4_handle_dirty_metadata(handle: handle_t, inode: inode | null, bh: buffer_head): Promise<void> {
  const j = handle.h_journal;
  if (j && handle.h_transaction) {
    jbd2_journal_dirty_metadata(j, handle, bh);
    // A block of the inode's own (extent tree, directory, xattr block): fdatasync needs it.
    // Its slot in the inode table is judged by ext4_do_update_inode.
    if (inode && 'i_datasync_tid' in inode && bh.b_blocknr !== (inode as ext4_inode_info).i_loc_block) ext4_update_inode_fsync_trans(handle, inode as ext4_inode_info, true);
    handle.h_buffers++;
    if (inode && (inode.i_flags & S_SYNC)) handle.h_sync = true;
    return;
  }
  bh.set(BH_Uptodate);
  mark_buffer_dirty(bh);
  handle.h_buffers++;
  if (inode && (inode.i_flags & S_SYNC)) await sync_dirty_buffer(bh);
}

/**
 * ext4_update_inode_fsync_trans: the handle's transaction changed the inode (and, with
 * `datasync`, what fdatasync must make durable).
 */
export function ext4_update_inode_fsync_trans(handle: handle_t, inode: ext4_inode_info, datasync: boolean): void {
  const t = handle.h_transaction;
  if (!t) return;
  inode.i_sync_tid = t.t_tid;
  if (datasync) inode.i_datasync_tid = t.t_tid;
}

/**
 * ext4_should_order_data: a regular file's new blocks are ordered by the journal (data=ordered,
 * the default). data=writeback orders nothing; data=journal journals the data itself.
 */
export function ext4_should_order_data(inode: inode): boolean {
  if (!ext4_journal_writable(inode.i_sb) || (inode.i_mode & S_IFMT) !== S_IFREG) return false;
  return (EXT4_SB(inode.i_sb).s_mount_opt & EXT4_MOUNT_DATA_FLAGS) === EXT4_MOUNT_ORDERED_DATA;
}

/**
 * ext4_should_journal_data: with data=journal a regular file's data blocks go through the
 * journal as metadata does (inode.ts: ext4_journalled_write_end).
 */
export function ext4_should_journal_data(inode: inode): boolean {
  if (!ext4_journal_writable(inode.i_sb) || (inode.i_mode & S_IFMT) !== S_IFREG) return false;
  return (EXT4_SB(inode.i_sb).s_mount_opt & EXT4_MOUNT_DATA_FLAGS) === EXT4_MOUNT_JOURNAL_DATA;
}

/**
 * ext4_jbd2_inode_add_write: bytes [start_byte, start_byte + length) of `inode` were given
 * blocks (or had blocks zeroed) under `handle`; in data=ordered their data reaches the disk
 * before the handle's transaction commits (jbd2_journal_inode_ranged_write).
 */
export function ext4_jbd2_inode_add_write(handle: handle_t, inode: inode, start_byte: number, length: number): void {
  if (!handle.h_journal || !handle.h_transaction || !ext4_should_order_data(inode)) return;
  jbd2_journal_inode_ranged_write(handle.h_journal, handle, inode, start_byte, length);
}

/** A block was freed under `handle` (mballoc's ext4_free_blocks): its log copies are revoked. */
export function ext4_journal_block_freed(handle: handle_t, blk: number): void {
  if (handle.h_journal && handle.h_transaction) jbd2_journal_block_freed(handle.h_journal, handle, blk);
}

/** ext4_forget: a metadata block is being freed; drop any pending write of it. */
export function ext4_forget(handle: handle_t, bh: buffer_head | null): void {
  if (!bh) return;
  if (handle.h_journal && handle.h_transaction) { jbd2_journal_forget(handle.h_journal, handle, bh); return; }
  bh.clear(BH_Dirty);
}

/**
 * Metadata block `blk` as a live buffer (ext4_sb_bread in Linux returns the buffer_head):
 * geometry-checked; the caller releases it with brelse.
 */
export async function ext4_sb_bread_bh(sb: super_block, blk: number, func = 'ext4_sb_bread', ino?: number): Promise<buffer_head> {
  const sbi = EXT4_SB(sb);
  if (!(Number.isInteger(blk) && blk > 0 && blk < sbi.s_blocks_count))
    throw ext4_error(sb, func, `invalid block reference ${blk}`, { ino });
  return sb_bread(sb, blk);
}

/** sb_getblk for a block that is about to be filled entirely (a new metadata block): zeroed. */
export async function ext4_sb_getblk_zero(sb: super_block, blk: number): Promise<buffer_head> {
  const bh = await sb_getblk(sb, blk);
  bh.b_data.fill(0);
  bh.set(BH_Uptodate);
  return bh;
}

export { brelse };
