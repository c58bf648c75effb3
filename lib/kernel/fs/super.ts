/*
 * Superblocks and filesystem types (fs/super.c, fs/filesystems.c).
 *
 * register_filesystem adds a type by name; mountFs makes a superblock for a mount: for
 * FS_REQUIRES_DEV types it resolves the device, refuses a device already claimed (EBUSY)
 * and claims it, then calls fill_super. deactivate_super drops a mount's hold; the last one
 * shuts the superblock down: sync, free the dcache and every inode (orphans included),
 * put_super, kill_sb, release the device.
 *
 * May touch: dcache, inode, devices (lookup_bdev), fs-writeback (sync), block/bdev (claims).
 */
import { pr_err } from '../kernel/printk.js';
import {
  super_block, FS_REQUIRES_DEV, SB_ACTIVE, SB_RDONLY, SB_SILENT, type file_system_type,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import { EBUSY, EINVAL } from '../include/uapi.js';
import { shrink_dcache_for_umount } from './dcache.js';
import { evict_inodes } from './inode.js';
import { lookup_bdev } from './devices.js';
import { sync_filesystem, allSupers as wbSupers } from './fs-writeback.js';
import { blkdev_get_for_super, blkdev_put } from '../block/bdev.js';

const fsTypes = new Map<string, file_system_type>();

/** register_filesystem: EBUSY if a type of that name exists. */
export function register_filesystem(t: file_system_type): void {
  if (fsTypes.has(t.name)) throw err(EBUSY);
  fsTypes.set(t.name, t);
}
export function unregister_filesystem(t: file_system_type): void {
  if (fsTypes.get(t.name) === t) fsTypes.delete(t.name);
}
export function get_fs_type(name: string): file_system_type | null { return fsTypes.get(name) ?? null; }
/** /proc/filesystems: "nodev\tramfs", "\text4". */
export function filesystemsList(): string[] {
  return [...fsTypes.values()].map((t) => `${t.fs_flags & FS_REQUIRES_DEV ? '' : 'nodev'}\t${t.name}`);
}

/** Every active superblock (sync(2) walks them); shared with the writeback code. */
export function supersInit(): void { wbSupers.clear(); }
export function allSupers(): super_block[] { return [...wbSupers]; }

/** alloc_super */
export function alloc_super(type: file_system_type, flags: number): super_block {
  const sb = new super_block(type);
  sb.s_flags = flags;
  sb.s_id = type.name;
  return sb;
}

/** sync_filesystem through the writeback code (flush dirty inodes and pages, then sync_fs). */
export async function syncFilesystemHook(sb: super_block): Promise<void> {
  if (sb.s_flags & SB_RDONLY) return;
  await sync_filesystem(sb);
}

/**
 * mount_fs / get_tree_nodev / get_tree_bdev: a new active superblock of `type`.
 * Throws what fill_super throws, after releasing everything.
 */
export async function mountFs(type: file_system_type, flags: number, devName: string, data: string): Promise<super_block> {
  const sb = alloc_super(type, flags);
  if (type.fs_flags & FS_REQUIRES_DEV) {
    if (!devName) throw err(EINVAL);
    // Open and claim the device for this superblock (EBUSY if mounted elsewhere, EACCES
    // for a read-write mount of a read-only device); blkdev_put at teardown writes back
    // and drops the device's cache.
    const bdev = await blkdev_get_for_super(await lookup_bdev(devName), flags, sb);
    sb.s_bdev = bdev;
    sb.s_id = bdev.bd_name;
  }
  wbSupers.add(sb);
  sb.s_flags |= SB_ACTIVE;
  sb.s_active = 1;
  try {
    await type.fill_super(sb, data, (flags & SB_SILENT) !== 0);
    if (!sb.s_root) throw new Error(`${type.name}: fill_super left no root`);
  } catch (e) {
    sb.s_flags &= ~SB_ACTIVE;
    try { await teardown(sb, false); } catch (e2) { pr_err(`VFS: cleanup after failed mount: ${(e2 as Error)?.message ?? e2}`); }
    throw e;
  }
  return sb;
}

async function teardown(sb: super_block, putSuper: boolean): Promise<void> {
  try {
    await shrink_dcache_for_umount(sb);
    await evict_inodes(sb);
    if (putSuper && sb.s_op?.put_super) await sb.s_op.put_super(sb);
    if (sb.s_type.kill_sb) await sb.s_type.kill_sb(sb);
  } finally {
    wbSupers.delete(sb);
    if (sb.s_bdev) await blkdev_put(sb.s_bdev, sb);
  }
}

/**
 * generic_shutdown_super: sync, then (inactive, so iput evicts at once) free dentries and
 * inodes, and let the filesystem write its final state.
 */
export async function generic_shutdown_super(sb: super_block): Promise<void> {
  try { await syncFilesystemHook(sb); } catch (e) {
    pr_err(`VFS: sync of ${sb.s_id} at umount failed: ${(e as Error)?.message ?? e}`);
  }
  sb.s_flags &= ~SB_ACTIVE;
  await teardown(sb, true);
}

/** deactivate_super: the last active reference shuts the superblock down. */
export async function deactivate_super(sb: super_block): Promise<void> {
  if (--sb.s_active > 0) return;
  await sb.s_umount.downWrite();
  try { await generic_shutdown_super(sb); } finally { sb.s_umount.upWrite(); }
}
