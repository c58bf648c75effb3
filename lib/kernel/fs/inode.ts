/*
 * The inode cache (fs/inode.c).
 *
 * In-core inodes are found by (superblock, inode number) through sb.s_inodes. iget_locked
 * returns a cached inode with a new reference, or a fresh one marked I_NEW that the caller
 * fills and then publishes with unlock_new_inode; others asking for it meanwhile wait.
 * iput drops a reference; at zero the inode is either kept on the LRU (still linked, the
 * superblock alive) or evicted: the filesystem's evict_inode frees its blocks when nlink is
 * 0. An unlinked inode that is still open is an orphan: it stays until its last user goes,
 * and orphans left at umount are evicted then (the on-disk orphan list is the fs's business).
 *
 * May touch: dcache (none), page_alloc (shrinker), workqueue.
 */
import { pr_err, pr_warn } from '../kernel/printk.js';
import {
  inode, I_NEW, I_FREEING, I_CLEAR, I_DIRTY, I_DIRTY_SYNC, SB_ACTIVE, CAP_FSETID, MNT_NOATIME, MNT_NODIRATIME,
  MNT_READONLY, SB_NOATIME, SB_RDONLY, S_NOATIME, type path, type super_block,
} from '../include/fs.js';
import { S_IFMT, S_ISDIR, S_ISGID, S_IXGRP, S_ISBLK, S_ISCHR, S_ISFIFO, S_ISSOCK } from '../include/uapi.js';
import { wait_queue_head, wait_event } from '../kernel/wait.js';
import { current_time, timestamp_truncate, tsCompare } from './time.js';
import { current_cred, capable, in_group_p } from '../kernel/cred.js';
import { delete_from_page_cache } from '../mm/filemap.js';
import { register_shrinker } from '../mm/page_alloc.js';
import { workqueue_struct, work_struct } from '../kernel/workqueue.js';
import { dcacheStats, prune_dcache } from './dcache.js';
import { inodeClean, mark_inode_dirty } from './fs-writeback.js';
import { blkdevOpenFops, chrdevOpenFops, badSockFops } from './devices.js';

/** Unused, still-linked inodes kept in core before iput starts evicting the oldest. */
export let INODE_LRU_MAX = 10000;
/** How many objects a cache shrinks by at least, once over its bound (Linux's SHRINK_BATCH). */
export const SHRINK_BATCH = 128;
export function setInodeLruMax(n: number): void { INODE_LRU_MAX = n; }

class IcacheState {
  lru = new Set<inode>();
  wq = new wait_queue_head();
  /** Unlinked inodes still in use, per superblock (the in-core orphan list). */
  orphans = new Map<super_block, Set<inode>>();
  nextIno = 1;
  nrInodes = 0;
  evicted = 0;
}
let ic = new IcacheState();
/**
 * The VFS cache shrinker: page allocation under pressure asks it for memory. Freeing
 * dentries and inodes (and with them their page cache) may sleep, so the shrinker only
 * queues the pruning, which a worker does; the allocator's other shrinkers and writeback
 * cover the immediate need.
 */
let shrinkWq: workqueue_struct | null = null;
let shrinkWork: work_struct | null = null;
function vfsCacheShrinker(_want: number): number {
  if (shrinkWq && shrinkWork) shrinkWq.queueWork(shrinkWork);
  return 0;
}
export function inode_init(): void {
  ic = new IcacheState();
  shrinkWq = new workqueue_struct('vfs-shrink', 1);
  shrinkWork = new work_struct(async () => {
    const d = dcacheStats();
    await prune_dcache(Math.ceil(d.nrUnused / 2));
    await prune_icache(Math.ceil(ic.lru.size / 2));
  });
  register_shrinker(vfsCacheShrinker);
}
export function icacheStats(): { nrInodes: number; nrUnused: number; evicted: number; orphans: number } {
  let orphans = 0;
  for (const s of ic.orphans.values()) orphans += s.size;
  return { nrInodes: ic.nrInodes, nrUnused: ic.lru.size, evicted: ic.evicted, orphans };
}

/** /proc/sys/fs/inode-nr (proc_nr_inodes): "nr_inodes nr_unused", as Linux prints it. */
export function proc_nr_inodes(): string { return `${ic.nrInodes}\t${ic.lru.size}`; }

/** get_next_ino: inode numbers for filesystems without on-disk numbers (ramfs). */
export function get_next_ino(): number { return ic.nextIno++; }

function alloc_inode(sb: super_block): inode {
  const ip = sb.s_op?.alloc_inode ? sb.s_op.alloc_inode(sb) : new inode(sb);
  ip.i_blkbits = sb.s_blocksize_bits;
  ip.i_count = 1;
  ic.nrInodes++;
  return ip;
}

/** new_inode: an inode with no number in the hash yet (the caller sets i_ino and hashes). */
export function new_inode(sb: super_block): inode { return alloc_inode(sb); }

/** insert_inode_hash: make the inode findable by number. */
export function insert_inode_hash(inode: inode): void { inode.i_sb.s_inodes.set(inode.i_ino, inode); }

/**
 * iget_locked: the cached inode `ino` (referenced), or a new I_NEW one the caller must
 * fill and then unlock_new_inode (or iget_failed).
 */
export async function iget_locked(sb: super_block, ino: number): Promise<inode> {
  for (;;) {
    const inode = sb.s_inodes.get(ino);
    if (!inode) break;
    if (inode.i_state & (I_NEW | I_FREEING)) {
      await wait_event(ic.wq, () => !(inode.i_state & (I_NEW | I_FREEING)) || sb.s_inodes.get(ino) !== inode);
      continue;
    }
    if (inode.i_count++ === 0) ic.lru.delete(inode);
    return inode;
  }
  const inode = alloc_inode(sb);
  inode.i_ino = ino;
  inode.i_state = I_NEW;
  sb.s_inodes.set(ino, inode);
  return inode;
}

/** ilookup: the cached inode `ino` if present (referenced), without creating it. */
export async function ilookup(sb: super_block, ino: number): Promise<inode | null> {
  if (!sb.s_inodes.has(ino)) return null;
  return iget_locked(sb, ino);
}

export function unlock_new_inode(inode: inode): void {
  inode.i_state &= ~I_NEW;
  ic.wq.wakeUpAll();
}

/** iget_failed: the filesystem could not read the inode: unhash and drop it. */
export async function iget_failed(inode: inode): Promise<void> {
  inode.i_nlink = 0;
  if (inode.i_sb.s_inodes.get(inode.i_ino) === inode) inode.i_sb.s_inodes.delete(inode.i_ino);
  inode.i_state &= ~I_NEW;
  ic.wq.wakeUpAll();
  inode.i_count = 1;
  await iput(inode);
}

export function ihold(inode: inode): inode {
  if (inode.i_count++ === 0) ic.lru.delete(inode);
  return inode;
}

/** generic_drop_inode: evict at last iput when unlinked or no longer findable. */
export function generic_drop_inode(inode: inode): boolean {
  return inode.i_nlink === 0 || inode.i_sb.s_inodes.get(inode.i_ino) !== inode;
}
/** generic_delete_inode: never cache (ramfs-like filesystems whose dentries pin inodes). */
export function generic_delete_inode(_inode: inode): boolean { return true; }

/** iput: drop a reference; the last one caches or evicts the inode. */
export async function iput(inode: inode): Promise<void> {
  if (inode.i_count <= 0) { pr_err(`BUG: iput of unused inode ${inode.i_ino}`); return; }
  if (--inode.i_count > 0) return;
  const sb = inode.i_sb;
  const drop = sb.s_op?.drop_inode ? sb.s_op.drop_inode(inode) : generic_drop_inode(inode);
  if (!drop && (sb.s_flags & SB_ACTIVE)) {
    ic.lru.add(inode);
    // Shrink in batches (the shrinker's SHRINK_BATCH): pruning one inode per iput over the
    // bound made each iput walk the whole LRU, quadratic in a walk of a big directory.
    if (ic.lru.size > INODE_LRU_MAX) await prune_icache(ic.lru.size - INODE_LRU_MAX + SHRINK_BATCH);
    return;
  }
  await evict(inode);
}

/** evict: take the inode out of the cache and let the filesystem release it. */
async function evict(inode: inode): Promise<void> {
  const sb = inode.i_sb;
  inode.i_state |= I_FREEING;
  ic.lru.delete(inode);
  try {
    if (sb.s_op?.evict_inode) await sb.s_op.evict_inode(inode);
    else truncate_inode_pages_final(inode);
  } catch (e) {
    pr_err(`VFS: evict of inode ${inode.i_ino} on ${sb.s_id} failed: ${(e as Error)?.message ?? e}`);
  }
  // The filesystem may have truncated already; whatever is left of the page cache goes.
  truncate_inode_pages_final(inode);
  inodeClean(inode);
  ic.orphans.get(sb)?.delete(inode);
  if (sb.s_inodes.get(inode.i_ino) === inode) sb.s_inodes.delete(inode.i_ino);
  inode.i_state = I_CLEAR;
  sb.s_op?.destroy_inode?.(inode);
  ic.nrInodes--;
  ic.evicted++;
  ic.wq.wakeUpAll();
}

/** Drop every page of the inode's mapping (truncate_inode_pages_final, for clean caches). */
export function truncate_inode_pages_final(inode: inode): void {
  const m = inode.i_mapping;
  for (const p of [...m.pages.values()]) delete_from_page_cache(p);
  m.nrdirty = 0;
}

/** prune_icache_sb: evict up to n unused clean inodes, oldest first. */
export async function prune_icache(n: number): Promise<number> {
  let freed = 0;
  // The live set, not a copy: entries deleted meanwhile are skipped, and copying the whole
  // LRU for each call cost O(LRU) however few were wanted.
  for (const inode of ic.lru) {
    if (freed >= n) break;
    if (inode.i_count !== 0 || (inode.i_state & I_DIRTY)) continue;
    ic.lru.delete(inode);
    await evict(inode);
    freed++;
  }
  return freed;
}

/** evict_inodes at umount: every unused inode of sb goes; orphans still open are forced. */
export async function evict_inodes(sb: super_block): Promise<void> {
  for (const inode of [...ic.lru]) if (inode.i_sb === sb && inode.i_count === 0) { ic.lru.delete(inode); await evict(inode); }
  const left = [...sb.s_inodes.values()].filter((i) => !(i.i_state & (I_FREEING | I_CLEAR)));
  const orphans = ic.orphans.get(sb);
  for (const inode of [...(orphans ?? [])]) {
    pr_warn(`VFS: evicting orphan inode ${inode.i_ino} still open at umount of ${sb.s_id}`);
    inode.i_count = 0;
    await evict(inode);
  }
  ic.orphans.delete(sb);
  const busy = left.filter((i) => i.i_count > 0 && !(i.i_state & I_CLEAR));
  if (busy.length) pr_warn(`VFS: Busy inodes after unmount of ${sb.s_id} (${busy.length})`);
  for (const inode of busy) { inode.i_count = 0; await evict(inode); }
}

/* ---- link counts (the orphan list follows nlink) ---- */

function noteNlink(inode: inode): void {
  const sb = inode.i_sb;
  if (inode.i_nlink === 0 && inode.i_count > 0) {
    let s = ic.orphans.get(sb);
    if (!s) ic.orphans.set(sb, (s = new Set()));
    s.add(inode);
  } else ic.orphans.get(sb)?.delete(inode);
}
export function set_nlink(inode: inode, n: number): void { inode.i_nlink = n; noteNlink(inode); }
export function inc_nlink(inode: inode): void { inode.i_nlink++; noteNlink(inode); }
export function drop_nlink(inode: inode): void {
  if (inode.i_nlink === 0) { pr_err(`BUG: drop_nlink of inode ${inode.i_ino} at 0`); return; }
  inode.i_nlink--;
  noteNlink(inode);
}
export function clear_nlink(inode: inode): void { inode.i_nlink = 0; noteNlink(inode); }
/** Orphans (unlinked, still open) of a superblock. */
export function orphansOf(sb: super_block): inode[] { return [...(ic.orphans.get(sb) ?? [])]; }

/* ---- ownership and times ---- */

/**
 * inode_init_owner: the creator owns the new inode; in a set-group-ID directory the group
 * is inherited (and new subdirectories inherit the bit), and a non-member without
 * CAP_FSETID cannot create a group-executable set-group-ID file.
 */
export function inode_init_owner(inode: inode, dir: inode | null, mode: number): void {
  const cred = current_cred();
  inode.i_uid = cred.fsuid;
  if (dir && (dir.i_mode & S_ISGID)) {
    inode.i_gid = dir.i_gid;
    if (S_ISDIR(mode)) mode |= S_ISGID;
    else if ((mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP) && !in_group_p(inode.i_gid) && !capable(CAP_FSETID))
      mode &= ~S_ISGID;
  } else inode.i_gid = cred.fsgid;
  inode.i_mode = mode;
}

export { current_time as currentTime, timestamp_truncate as timestampTruncate };

/** init_special_inode: device, fifo and socket inodes get the VFS's own open routines. */
export function init_special_inode(inode: inode, mode: number, rdev: number): void {
  inode.i_mode = mode;
  if (S_ISCHR(mode)) { inode.i_fop = chrdevOpenFops; inode.i_rdev = rdev; }
  else if (S_ISBLK(mode)) { inode.i_fop = blkdevOpenFops; inode.i_rdev = rdev; }
  else if (S_ISFIFO(mode) || S_ISSOCK(mode)) inode.i_fop = badSockFops;
  else pr_err(`init_special_inode: bogus i_mode (${(mode & S_IFMT).toString(8)}) for inode ${inode.i_ino}`);
}

/* ---- atime ---- */

/**
 * atime_needs_update with relatime semantics (the Linux default; strictatime is not
 * offered): not on noatime / read-only mounts or superblocks, nor on directories with
 * nodiratime; otherwise when the atime is not after the mtime or the ctime, or is a day old.
 */
export function atime_needs_update(path: path, inode: inode): boolean {
  const sb = inode.i_sb;
  if (inode.i_flags & S_NOATIME) return false;
  if (sb.s_flags & (SB_RDONLY | SB_NOATIME)) return false;
  const mf = path.mnt.mnt_flags;
  if (mf & (MNT_NOATIME | MNT_READONLY)) return false;
  if ((mf & MNT_NODIRATIME) && S_ISDIR(inode.i_mode)) return false;
  const now = current_time(inode);
  const older = tsCompare(inode.i_atime, inode.i_mtime) <= 0 || tsCompare(inode.i_atime, inode.i_ctime) <= 0
    || now.sec - inode.i_atime.sec >= 24 * 3600;
  return older && tsCompare(inode.i_atime, now) !== 0;
}

/** touch_atime: the access time of what `path` names (reads, readdir, readlink, following a symlink). */
export async function touch_atime(path: path): Promise<void> {
  const inode = path.dentry.d_inode!;
  if (!atime_needs_update(path, inode)) return;
  inode.i_atime = current_time(inode);
  await mark_inode_dirty(inode, I_DIRTY_SYNC);
}
