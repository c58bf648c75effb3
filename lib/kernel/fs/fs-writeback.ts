/*
 * Writeback (fs/fs-writeback.c, mm/page-writeback.c, fs/sync.c in miniature).
 *
 * Dirty pages and dirty inodes are tracked here. They reach the disk:
 *  - periodically: a flusher (delayed work on the "writeback" workqueue) runs every
 *    DIRTY_WRITEBACK_INTERVAL while anything is dirty and writes what has been dirty for
 *    longer than DIRTY_EXPIRE — armed only while something is dirty, so an idle kernel has
 *    no timer pending;
 *  - under pressure: writers are throttled in balance_dirty_pages when dirty memory exceeds
 *    DIRTY_RATIO of physical memory, and page allocation falls back to writebackForReclaim;
 *  - on demand: fsync/fdatasync (vfs_fsync_range), syncfs/sync (sync_filesystem/syncAll) and
 *    unmount. Asynchronous write errors are remembered on the mapping (wb_err) and
 *    reported by the next fsync as EIO.
 */
import { wait_queue_head, sleepOn, wait_event } from '../kernel/wait.js';
import { workqueue_struct, delayed_work } from '../kernel/workqueue.js';
import { ktime_get_ns } from '../kernel/timer.js';
import { PG_dirty, PG_writeback, memInfo, get_page, put_page, type page } from '../mm/page_alloc.js';
import type { address_space, file, inode, super_block, writeback_control } from '../include/fs.js';
import { I_DIRTY_DATASYNC, I_DIRTY_INODE, I_DIRTY_PAGES, I_DIRTY_SYNC, I_FREEING, SB_RDONLY } from '../include/fs.js';
import type { block_device } from '../include/blk.js';
import { err } from '../include/errno.js';
import { EIO, EROFS } from '../include/uapi.js';
import { lock_page, unlock_page, wait_on_page_writeback, mapping_unevictable } from '../mm/filemap.js';
import { initcall, exitcall, INIT_CORE } from '../arch/setup.js';

export const DIRTY_WRITEBACK_INTERVAL_NS = 5e9;
export const DIRTY_EXPIRE_NS = 30e9;
/** Fraction of physical memory that may be dirty before writers are throttled. */
export const DIRTY_RATIO = 0.2;
export const DIRTY_BACKGROUND_RATIO = 0.1;

/** Mounted superblocks (the VFS adds each on mount and removes it at unmount). */
export const allSupers = new Set<super_block>();

/** Hooks the block layer provides (set at its init) so fsync reaches buffers and the device. */
export interface BlockHooks {
  syncMappingBuffers(m: address_space): Promise<void>;
  blkdevIssueFlush(bdev: block_device): Promise<void>;
  syncBlockdev(bdev: block_device): Promise<void>;
}
let blockHooks: BlockHooks | null = null;
export function setBlockHooks(h: BlockHooks): void { blockHooks = h; }
export function getBlockHooks(): BlockHooks | null { return blockHooks; }

class WbState {
  dirtyPages = 0;
  writebackPages = 0;
  /** Dirty inodes in dirtying order (the oldest first). */
  dirtyInodes = new Map<inode, number>();
  wq: workqueue_struct | null = null;
  work: delayed_work | null = null;
  throttleWq = new wait_queue_head();
  writtenPages = 0;
}
let st = new WbState();

/** Reset at boot. */
export function writebackInit(): void {
  st = new WbState();
  st.wq = new workqueue_struct('writeback', 1);
  st.work = new delayed_work(() => wb_workfn());
}
initcall(INIT_CORE, 'writeback', writebackInit);
// Runs after the filesystems' exit calls (higher levels go first): they unmount and sync.
exitcall(INIT_CORE, 'writeback', () => writebackShutdown());

export function writebackStats(): { dirtyPages: number; writebackPages: number; dirtyInodes: number; writtenPages: number } {
  return { dirtyPages: st.dirtyPages, writebackPages: st.writebackPages, dirtyInodes: st.dirtyInodes.size, writtenPages: st.writtenPages };
}

export function accountDirty(m: address_space, delta: number): void {
  if (mapping_unevictable(m)) return;
  m.nrdirty += delta;
  st.dirtyPages += delta;
  if (delta < 0) st.throttleWq.wakeUpAll();
}
export function accountWriteback(delta: number): void {
  st.writebackPages += delta;
  if (delta < 0) { st.writtenPages -= delta; st.throttleWq.wakeUpAll(); }
}

function wb_wakeup_delayed(): void {
  if (st.wq && st.work && !st.work.pending && !st.work.timer && !st.work.running)
    st.wq.queueDelayedWork(st.work, DIRTY_WRITEBACK_INTERVAL_NS);
}
function wbWakeupNow(): void {
  if (!st.wq || !st.work) return;
  if (st.work.timer) st.wq.cancelDelayedWork(st.work);
  st.wq.queueWork(st.work);
}

/** set_page_dirty for page-cache pages backed by storage. Returns true if newly dirtied. */
export function set_page_dirty(p: page): boolean {
  if (p.test(PG_dirty)) return false;
  p.set(PG_dirty);
  const m = p.mapping as address_space | null;
  if (m) {
    accountDirty(m, 1);
    if (!mapping_unevictable(m)) inodeDirtyPages(m.host);
  }
  return true;
}

/** clear_page_dirty_for_io: the page is locked; returns whether it was dirty. */
export function clear_page_dirty_for_io(p: page): boolean {
  if (!p.test(PG_dirty)) return false;
  p.clear(PG_dirty);
  const m = p.mapping as address_space | null;
  if (m) accountDirty(m, -1);
  return true;
}

function inodeDirtyPages(inode: inode): void {
  if (!(inode.i_state & I_DIRTY_PAGES)) inode.i_state |= I_DIRTY_PAGES;
  queueDirtyInode(inode);
}
function queueDirtyInode(inode: inode): void {
  if (!st.dirtyInodes.has(inode)) st.dirtyInodes.set(inode, ktime_get_ns());
  inode.i_sb.s_dirty.add(inode);
  wb_wakeup_delayed();
}

/**
 * mark_inode_dirty: I_DIRTY_SYNC (timestamps and the like), I_DIRTY_DATASYNC (size or
 * block map: fdatasync must write it), I_DIRTY_PAGES. Calls s_op.dirty_inode for inode
 * flags (journalling filesystems log the inode there).
 */
export async function mark_inode_dirty(inode: inode, flags: number = I_DIRTY_SYNC | I_DIRTY_DATASYNC): Promise<void> {
  const sb = inode.i_sb;
  if (flags & I_DIRTY_INODE && sb.s_op?.dirty_inode) await sb.s_op.dirty_inode(inode, flags);
  if ((inode.i_state & flags) === flags && st.dirtyInodes.has(inode)) return;
  inode.i_state |= flags;
  if (inode.i_state & I_FREEING) return;
  if (!sb.s_op?.write_inode && !(flags & I_DIRTY_PAGES)) return; // nothing would write it
  queueDirtyInode(inode);
}

/** Drop an inode from the dirty lists (it is being evicted or was written). */
export function inodeClean(inode: inode): void {
  st.dirtyInodes.delete(inode);
  inode.i_sb.s_dirty.delete(inode);
}

function dirtyPagesOf(m: address_space, start: number, end: number): page[] {
  const first = Math.floor(start / 4096), last = end === Infinity ? Infinity : Math.floor(end / 4096);
  const out: page[] = [];
  for (const [i, p] of m.pages) if (i >= first && i <= last && (p.flags & (PG_dirty | PG_writeback))) out.push(p);
  return out.sort((a, b) => a.index - b.index);
}

/** do_writepages: hand the dirty pages of [start, end] to the filesystem. */
export async function do_writepages(m: address_space, wbc: writeback_control): Promise<void> {
  const aops = m.a_ops;
  if (!aops || mapping_unevictable(m)) return;
  if (wbc.for_reclaim) { if (!m.wb_lock.tryLock()) return; } else await m.wb_lock.lock();
  try {
    if (aops.writepages) { await aops.writepages(m, wbc); return; }
    if (!aops.writepage) return;
    for (const p of dirtyPagesOf(m, wbc.range_start, wbc.range_end)) {
      if (wbc.nr_to_write <= 0) break;
      get_page(p);
      try {
        await lock_page(p);
        if (p.mapping !== m || !p.test(PG_dirty)) { unlock_page(p); continue; }
        if (p.test(PG_writeback)) {
          if (wbc.sync_mode === 'none') { unlock_page(p); continue; }
          await wait_on_page_writeback(p);
        }
        if (!clear_page_dirty_for_io(p)) { unlock_page(p); continue; }
        await aops.writepage(p, wbc);
        wbc.nr_to_write--;
      } finally { put_page(p); }
    }
  } finally { m.wb_lock.unlock(); }
}

/** filemap_fdatawait_range: wait for writeback, then report (and clear) a recorded error. */
export async function filemap_fdatawait(m: address_space, start = 0, end = Infinity): Promise<void> {
  if (await filemap_fdatawait_range_keep_errors(m, start, end)) { m.wb_err = 0; throw err(EIO); }
}
/**
 * filemap_fdatawait_range_keep_errors: wait for writeback of the range; a recorded error
 * stays for the next fsync to report (jbd2 waits for ordered data this way). True if the
 * mapping has one.
 */
export async function filemap_fdatawait_range_keep_errors(m: address_space, start = 0, end = Infinity): Promise<boolean> {
  for (const p of dirtyPagesOf(m, start, end)) {
    if (p.test(PG_writeback)) { get_page(p); await wait_on_page_writeback(p); put_page(p); }
  }
  return m.wb_err !== 0;
}
export async function filemap_fdatawrite(m: address_space, start = 0, end = Infinity, sync: 'all' | 'none' = 'all'): Promise<void> {
  await do_writepages(m, { sync_mode: sync, nr_to_write: Number.MAX_SAFE_INTEGER, range_start: start, range_end: end });
}
/** filemap_write_and_wait_range. */
export async function filemap_write_and_wait_range(m: address_space, start = 0, end = Infinity): Promise<void> {
  await filemap_fdatawrite(m, start, end, 'all');
  await filemap_fdatawait(m, start, end);
}

/** write_inode_now / sync_inode_metadata: write the inode itself if it is dirty. */
export async function write_inode_now(inode: inode, sync: boolean, datasyncOnly = false): Promise<void> {
  const mask = datasyncOnly ? I_DIRTY_DATASYNC : I_DIRTY_INODE;
  if (!(inode.i_state & mask)) return;
  inode.i_state &= ~I_DIRTY_INODE;
  const s = inode.i_sb.s_op;
  if (s?.write_inode) await s.write_inode(inode, sync);
}

/** writeback_single_inode: its pages, then the inode; off the dirty list if clean. */
export async function writeback_single_inode(inode: inode, wbc: writeback_control): Promise<void> {
  const m = inode.i_mapping;
  await do_writepages(m, wbc);
  if (wbc.sync_mode === 'all') {
    try { await filemap_fdatawait(m); } catch (e) {
      // Keep the error for the next fsync to see.
      m.wb_err = EIO;
      void e;
    }
  }
  if (m.nrdirty === 0) inode.i_state &= ~I_DIRTY_PAGES;
  await write_inode_now(inode, wbc.sync_mode === 'all');
  if (!(inode.i_state & (I_DIRTY_INODE | I_DIRTY_PAGES))) inodeClean(inode);
}

/** sync_inodes_sb / writeback_inodes_sb. */
export async function sync_inodes_sb(sb: super_block, wait: boolean): Promise<void> {
  for (const inode of [...sb.s_dirty]) {
    if (inode.i_state & I_FREEING) continue;
    await writeback_single_inode(inode, {
      sync_mode: wait ? 'all' : 'none', nr_to_write: Number.MAX_SAFE_INTEGER, range_start: 0, range_end: Infinity,
    });
  }
}

/** sync_filesystem: what syncfs(2), umount and sync(2) do for one superblock. */
export async function sync_filesystem(sb: super_block): Promise<void> {
  if (sb.s_flags & SB_RDONLY) return;
  await sync_inodes_sb(sb, false);
  if (sb.s_op?.sync_fs) await sb.s_op.sync_fs(sb, false);
  await sync_inodes_sb(sb, true);
  if (sb.s_op?.sync_fs) await sb.s_op.sync_fs(sb, true);
  if (sb.s_bdev && blockHooks) await blockHooks.syncBlockdev(sb.s_bdev);
}

/** sync(2): every filesystem, then every dirty block device mapping. */
export async function syncAll(): Promise<void> {
  for (const sb of [...allSupers]) await sync_filesystem(sb);
  // Block device inodes dirtied directly (writes to /dev/vdX) live outside mounted sbs.
  for (const inode of [...st.dirtyInodes.keys()]) {
    if (allSupers.has(inode.i_sb)) continue;
    await writeback_single_inode(inode, { sync_mode: 'all', nr_to_write: Number.MAX_SAFE_INTEGER, range_start: 0, range_end: Infinity });
  }
}

/**
 * generic_file_fsync / __generic_file_fsync: data pages, the inode's metadata buffers,
 * the inode, then a device cache flush. Used by filesystems without a journal.
 */
export async function generic_file_fsync(file: file, start: number, end: number, datasync: boolean): Promise<void> {
  const inode = file.f_inode;
  const m = inode.i_mapping;
  let error: unknown = null;
  try { await filemap_write_and_wait_range(m, start, end); } catch (e) { error = e; }
  if (inode.i_sb.s_flags & SB_RDONLY) { if (error) throw error; return; }
  if (blockHooks) await blockHooks.syncMappingBuffers(m);
  await write_inode_now(inode, true, datasync);
  if (m.nrdirty === 0 && !(inode.i_state & I_DIRTY_INODE)) { inode.i_state &= ~I_DIRTY_PAGES; inodeClean(inode); }
  if (inode.i_sb.s_bdev && blockHooks) await blockHooks.blkdevIssueFlush(inode.i_sb.s_bdev);
  if (error) throw error;
}

/** vfs_fsync_range: the filesystem's fsync, or the generic one. */
export async function vfs_fsync_range(file: file, start: number, end: number, datasync: boolean): Promise<void> {
  const f = file.f_op.fsync;
  let failed: unknown = null;
  try {
    if (f) await f(file, start, end, datasync);
    else if (!(file.f_inode.i_sb.s_flags & SB_RDONLY)) await generic_file_fsync(file, start, end, datasync);
  } catch (e) { failed = e; }
  // file_check_and_advance_wb_err: a writeback error recorded since this file last looked
  // is reported to it, once, even if another file's fsync already reported (and cleared) it.
  const seq = file.f_inode.i_mapping?.wb_err_seq ?? 0;
  const fresh = seq !== file.f_wb_err;
  file.f_wb_err = seq;
  if (failed) throw failed;
  if (fresh) throw err(EIO);
}

/* ---- background and throttled writeback ---- */

function dirtyLimitPages(ratio: number): number {
  return Math.max(64, Math.floor(memInfo().totalPages * ratio));
}

async function writeOldInodes(all: boolean, forReclaim = false): Promise<void> {
  const now = ktime_get_ns();
  for (const [inode, when] of [...st.dirtyInodes]) {
    if (!all && now - when < DIRTY_EXPIRE_NS && st.dirtyPages < dirtyLimitPages(DIRTY_BACKGROUND_RATIO)) continue;
    if (inode.i_state & I_FREEING) { inodeClean(inode); continue; }
    if (inode.i_sb.s_flags & SB_RDONLY) { inodeClean(inode); continue; }
    st.dirtyInodes.delete(inode); // re-queued with a fresh time if still dirty
    await writeback_single_inode(inode, {
      sync_mode: 'none', nr_to_write: Number.MAX_SAFE_INTEGER, range_start: 0, range_end: Infinity, for_reclaim: forReclaim,
    });
    if (inode.i_state & (I_DIRTY_INODE | I_DIRTY_PAGES) && !st.dirtyInodes.has(inode)) st.dirtyInodes.set(inode, ktime_get_ns());
  }
}

async function wb_workfn(): Promise<void> {
  const over = st.dirtyPages >= dirtyLimitPages(DIRTY_BACKGROUND_RATIO);
  await writeOldInodes(over);
  // Periodic sync_fs for journalling filesystems happens in their own commit threads.
  if (st.dirtyInodes.size) wb_wakeup_delayed();
}

/** balance_dirty_pages: throttle a writer while dirty memory is over the limit. */
export async function balance_dirty_pages(_m: address_space): Promise<void> {
  const limit = dirtyLimitPages(DIRTY_RATIO);
  if (st.dirtyPages < limit) {
    if (st.dirtyPages >= dirtyLimitPages(DIRTY_BACKGROUND_RATIO)) wbWakeupNow();
    return;
  }
  wbWakeupNow();
  await wait_event(st.throttleWq, () => st.dirtyPages < limit || (st.writebackPages === 0 && !st.work?.running && !st.work?.pending));
  if (st.dirtyPages >= limit) {
    // The flusher has nothing in flight but dirty pages remain (e.g. they were
    // re-dirtied): write some ourselves.
    await writeOldInodes(true);
  }
}

/** Memory is exhausted: write back dirty pages and wait for some writeback to finish. */
export async function writebackForReclaim(): Promise<void> {
  if (st.dirtyPages === 0 && st.writebackPages === 0) return;
  // for_reclaim: the allocating task may hold locks a filesystem's writeback takes (a
  // mapping's wb_lock, i_data_sem): mappings busy in writeback are skipped, and filesystems
  // do not allocate blocks for delayed-allocation pages from here.
  if (st.dirtyPages > 0) await writeOldInodes(true, true);
  if (st.writebackPages > 0) await sleepOn(st.throttleWq);
}

/** Stop the flusher (halt / last unmount). */
export async function writebackShutdown(): Promise<void> {
  if (st.wq && st.work) st.wq.cancelDelayedWork(st.work);
  if (st.wq) await st.wq.destroy();
  st.wq = null;
}

export { EROFS };
