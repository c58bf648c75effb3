/*
 * The directory-entry cache (fs/dcache.c).
 *
 * Every name the VFS has looked up lives here as a dentry: positive (with an inode) or
 * negative (the name is known not to exist, so the next lookup needs no filesystem call).
 * A dentry is "hashed" while it sits in its parent's d_subdirs map under its name; lookups
 * find only hashed dentries. Each child holds a reference on its parent, so a dentry with no
 * references has no cached children and can be freed. Unused dentries stay cached on an LRU
 * bounded in size and trimmed by a shrinker; killing a dentry drops its inode reference.
 *
 * Reference rules follow Linux: d_alloc returns a referenced, hashed dentry; dget/dput;
 * the last dput of an unhashed dentry (deleted, or pruned) frees it.
 *
 * May touch: inode.ts (iput), the wait queues.
 */
import { pr_err, pr_warn } from '../kernel/printk.js';
import { err } from '../include/errno.js';
import { ELOOP, S_IFDIR, S_IFMT } from '../include/uapi.js';
import { dentry, type inode, type path, type super_block, SB_ACTIVE } from '../include/fs.js';
import { wait_queue_head, wait_event } from '../kernel/wait.js';
import { iput, SHRINK_BATCH } from './inode.js';

/** d_flags bits. */
export const DCACHE_PAR_LOOKUP = 1 << 0, DCACHE_DISCONNECTED = 1 << 1, DCACHE_CANT_MOUNT = 1 << 2,
  DCACHE_OP_DONT_CACHE = 1 << 3;

/** Unused dentries kept before dput starts pruning the oldest. */
export let DENTRY_LRU_MAX = 20000;
export function setDentryLruMax(n: number): void { DENTRY_LRU_MAX = n; }

class DcacheState {
  lru = new Set<dentry>();
  /** Woken when a parallel lookup finishes (d_alloc_parallel's in-lookup wait). */
  inLookupWq = new wait_queue_head();
  nrDentry = 0;
}
let dc = new DcacheState();
export function dcache_init(): void { dc = new DcacheState(); }
/**
 * /proc/sys/fs/dentry-state (proc_nr_dentry): nr_dentry, nr_unused, age_limit, want_pages,
 * nr_negative, dummy — Linux's six fields; the last four are 45 0 0 0 here (negative dentries
 * are not counted apart).
 */
export function proc_nr_dentry(): string { return `${dc.nrDentry}\t${dc.lru.size}\t45\t0\t0\t0`; }
export function dcacheStats(): { nrDentry: number; nrUnused: number } {
  return { nrDentry: dc.nrDentry, nrUnused: dc.lru.size };
}

export function dget(d: dentry): dentry {
  if (d.d_count++ === 0) dc.lru.delete(d);
  return d;
}

/** d_alloc: a new hashed, negative dentry `name` under `parent` (referenced). */
export function d_alloc(parent: dentry, name: string): dentry {
  const d = new dentry(name, parent, parent.d_sb);
  dget(parent);
  const old = parent.d_subdirs.get(name);
  if (old) d_unhash(old);
  parent.d_subdirs_rw.set(name, d);
  dc.nrDentry++;
  return d;
}

/** d_make_root: the root dentry of a new superblock, owning the caller's inode reference. */
export function d_make_root(inode: inode): dentry {
  const d = new dentry('/', null, inode.i_sb);
  d.d_inode = inode;
  dc.nrDentry++;
  return d;
}

/** d_lookup: the hashed child `name` of parent, referenced, or null. */
export function d_lookup(parent: dentry, name: string): dentry | null {
  const d = parent.d_subdirs.get(name);
  if (!d || d.d_unhashed) return null;
  return dget(d);
}

/** Wait until a lookup running in another thread on `d` finishes (d_wait_lookup). */
export async function d_wait_lookup(d: dentry): Promise<void> {
  await wait_event(dc.inLookupWq, () => (d.d_flags & DCACHE_PAR_LOOKUP) === 0);
}
export function d_lookup_done(d: dentry): void {
  d.d_flags &= ~DCACHE_PAR_LOOKUP;
  dc.inLookupWq.wakeUpAll();
}

/** d_instantiate: give a negative dentry its inode (takes over the inode reference). */
export function d_instantiate(d: dentry, inode: inode | null): void {
  if (d.d_inode) throw new Error(`d_instantiate on positive dentry ${d.d_name}`);
  d.d_inode = inode;
}
/** d_add: instantiate (our dentries are hashed from birth). */
export function d_add(d: dentry, inode: inode | null): void { d_instantiate(d, inode); }

/**
 * d_splice_alias: what a filesystem's lookup hands back. We keep one dentry per directory
 * inode by construction (rename moves dentries), so this is d_add, but for one case a
 * corrupt image makes: an entry naming its own directory or one of its ancestors. That
 * directory would sit below itself (and rmdir would lock the same inode twice), so the
 * lookup fails with ELOOP, as Linux's d_splice_alias answers it. The caller keeps its
 * reference to the inode to drop.
 */
export function d_splice_alias(inode: inode | null, d: dentry): dentry {
  if (inode && (inode.i_mode & S_IFMT) === S_IFDIR && !d.isRoot) {
    for (let p = d.d_parent; ; p = p.d_parent) {
      if (p.d_inode === inode) {
        pr_warn(`VFS: Lookup of '${d.d_name}' in ${inode.i_sb.s_type.name} ${inode.i_sb.s_id} would have caused loop`);
        throw err(ELOOP);
      }
      if (p.isRoot) break;
    }
  }
  d_add(d, inode);
  return d;
}

/** __d_drop: unhash, so that lookups stop finding it (its parent link stays). */
export function d_unhash(d: dentry): void {
  if (d.d_unhashed) return;
  d.d_unhashed = true;
  if (!d.isRoot && d.d_parent.d_subdirs.get(d.d_name) === d) d.d_parent.d_subdirs.delete(d.d_name);
}
export const d_drop = d_unhash;

/**
 * d_delete after a successful unlink/rmdir: if we hold the only reference, turn the
 * dentry negative at once (the name is now known absent); otherwise somebody (an open
 * file, a cwd) still uses it: unhash it and let the last dput release the inode.
 */
export async function d_delete(d: dentry): Promise<void> {
  if (d.d_count === 1 && d.d_inode) {
    const inode = d.d_inode;
    d.d_inode = null;
    await iput(inode);
  } else d_unhash(d);
}

/** Free a dentry nobody references; returns its parent for the caller to dput. */
async function dentry_kill(d: dentry): Promise<dentry | null> {
  dc.lru.delete(d);
  d_unhash(d);
  dc.nrDentry--;
  const inode = d.d_inode;
  d.d_inode = null;
  if (inode) await iput(inode);
  return d.isRoot ? null : d.d_parent;
}

/** dput: drop a reference; unused dentries are cached on the LRU unless unhashed. */
export async function dput(d: dentry | null): Promise<void> {
  while (d) {
    if (d.d_count <= 0) { pr_err(`BUG: dput of unused dentry ${d.d_name}`); return; }
    if (--d.d_count > 0) return;
    const keep = !d.d_unhashed && !(d.d_flags & DCACHE_OP_DONT_CACHE) && (d.d_sb.s_flags & SB_ACTIVE) !== 0 &&
      !(d.d_inode && d.d_inode.i_nlink === 0);
    if (keep) {
      dc.lru.add(d);
      if (dc.lru.size > DENTRY_LRU_MAX) await prune_dcache(dc.lru.size - DENTRY_LRU_MAX + SHRINK_BATCH);
      return;
    }
    d = await dentry_kill(d);
  }
}

/** prune_dcache: free up to n unused dentries, oldest first. Returns how many were freed. */
export async function prune_dcache(n: number): Promise<number> {
  let freed = 0;
  // One iterator over the live set: a new one per dentry restarted the scan over every slot
  // deleted so far, quadratic in a walk of a big directory.
  const lru = dc.lru.values();
  while (freed < n) {
    const it = lru.next();
    if (it.done) break;
    const d = it.value;
    if (d.d_count !== 0) { dc.lru.delete(d); continue; }
    d.d_count = 1; // hold it while killing (dput below drops it)
    dc.lru.delete(d);
    d_unhash(d);
    await dput(d);
    freed++;
  }
  return freed;
}

/**
 * shrink_dcache_sb / shrink_dcache_for_umount: free every dentry of sb. At umount nothing
 * else uses them; the pins a filesystem keeps on its own dentries (ramfs) are dropped here.
 */
export async function shrink_dcache_for_umount(sb: super_block): Promise<void> {
  const root = sb.s_root;
  if (!root) return;
  // Depth-first, children before parents, dropping every reference below the root.
  const kill = async (d: dentry): Promise<void> => {
    for (const c of [...d.d_subdirs.values()]) await kill(c);
    d.d_subdirs.clear();
    dc.lru.delete(d);
    d.d_unhashed = true;
    d.d_count = 0;
    dc.nrDentry--;
    const inode = d.d_inode;
    d.d_inode = null;
    if (inode) await iput(inode);
  };
  await kill(root);
  sb.s_root = null;
}

/** Drop all unused children of d (shrink_dcache_parent), e.g. before rmdir or umount checks. */
export async function shrink_dcache_parent(d: dentry): Promise<void> {
  for (const c of [...d.d_subdirs.values()]) {
    if (c.d_count === 0) { c.d_count = 1; dc.lru.delete(c); d_unhash(c); await dput(c); }
  }
}

/** d_move: rename d to take target's place (target gets unhashed). */
export async function d_move(d: dentry, target: dentry): Promise<void> {
  const oldParent = d.d_parent;
  const newParent = target.d_parent;
  d_unhash(target);
  if (!d.d_unhashed && oldParent.d_subdirs.get(d.d_name) === d) oldParent.d_subdirs.delete(d.d_name);
  d.d_name = target.d_name;
  if (oldParent !== newParent) {
    d.d_parent = dget(newParent);
  }
  const old = newParent.d_subdirs.get(d.d_name);
  if (old && old !== d) d_unhash(old);
  newParent.d_subdirs_rw.set(d.d_name, d);
  d.d_unhashed = false;
  if (oldParent !== newParent) await dput(oldParent);
}

/** d_exchange: swap the names and parents of two positive dentries (RENAME_EXCHANGE). */
export function d_exchange(a: dentry, b: dentry): void {
  const pa = a.d_parent, pb = b.d_parent, na = a.d_name, nb = b.d_name;
  pa.d_subdirs.delete(na);
  pb.d_subdirs.delete(nb);
  a.d_name = nb; a.d_parent = pb;
  b.d_name = na; b.d_parent = pa;
  pb.d_subdirs_rw.set(nb, a);
  pa.d_subdirs_rw.set(na, b);
  // Each still holds one reference on a parent: if they swapped parents, the counts balance.
}

/** is_subdir: is d equal to or below ancestor (within one filesystem)? */
export function is_subdir(d: dentry, ancestor: dentry): boolean {
  for (let p = d; ; p = p.d_parent) {
    if (p === ancestor) return true;
    if (p.isRoot) return false;
  }
}

/** d_unlinked: removed from the tree (rmdir'ed cwd, deleted open file). */
export function d_unlinked(d: dentry): boolean { return d.d_unhashed && !d.isRoot; }

/**
 * d_path / getcwd's prepend_path: the path of `path` as seen from `root`, walking up
 * dentries and across mounts. `reachable` is false when the walk reached the top of the
 * mount tree without meeting root (a cwd outside a chroot).
 */
export function d_path(path: path, root: path): { name: string; reachable: boolean } {
  const parts: string[] = [];
  let mnt = path.mnt, d = path.dentry;
  for (;;) {
    if (d === root.dentry && mnt === root.mnt) break;
    if (d === mnt.mnt_root || d.isRoot) {
      if (mnt.mnt_parent === mnt) {
        return { name: '/' + parts.reverse().join('/'), reachable: false };
      }
      d = mnt.mnt_mountpoint;
      mnt = mnt.mnt_parent;
      continue;
    }
    parts.push(d.d_name);
    d = d.d_parent;
  }
  return { name: '/' + parts.reverse().join('/'), reachable: true };
}
