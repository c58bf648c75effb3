/*
 * Superblocks and filesystem types (fs/super.c, fs/filesystems.c).
 *
 * register_filesystem adds a type by name; mountFs makes a superblock for a mount: for
 * FS_REQUIRES_DEV types it resolves the device, refuses a device already claimed (EBUSY)
 * and claims it, then calls fill_super. deactivate_super drops a mount's hold; the last one
 * shuts the superblock down: sync, free the dcache and every inode (orphans included),
 * put_super, kill_sb, release the device.
 *
 * May touch: dcache, inode, devices (lookupBdev), fs-writeback (sync), block/bdev (claims).
 */
import { pr_err } from '../kernel/printk.js';
import {
  SuperBlock, FS_REQUIRES_DEV, SB_ACTIVE, SB_RDONLY, SB_SILENT, type FileSystemType,
} from '../include/fs.js';
import { err } from '../include/errno.js';
import { EBUSY, EINVAL } from '../include/uapi.js';
import { shrinkDcacheForUmount } from './dcache.js';
import { evictInodes } from './inode.js';
import { lookupBdev } from './devices.js';
import { syncFilesystem, allSupers as wbSupers } from './fs-writeback.js';
import { blkdevGetForSuper, blkdevPut } from '../block/bdev.js';

const fsTypes = new Map<string, FileSystemType>();

/** register_filesystem: EBUSY if a type of that name exists. */
export function registerFilesystem(t: FileSystemType): void {
  if (fsTypes.has(t.name)) throw err(EBUSY);
  fsTypes.set(t.name, t);
}
export function unregisterFilesystem(t: FileSystemType): void {
  if (fsTypes.get(t.name) === t) fsTypes.delete(t.name);
}
export function getFsType(name: string): FileSystemType | null { return fsTypes.get(name) ?? null; }
/** /proc/filesystems: "nodev\tramfs", "\text4". */
export function filesystemsList(): string[] {
  return [...fsTypes.values()].map((t) => `${t.fs_flags & FS_REQUIRES_DEV ? '' : 'nodev'}\t${t.name}`);
}

/** Every active superblock (sync(2) walks them); shared with the writeback code. */
export function supersInit(): void { wbSupers.clear(); }
export function allSupers(): SuperBlock[] { return [...wbSupers]; }

/** alloc_super */
export function allocSuper(type: FileSystemType, flags: number): SuperBlock {
  const sb = new SuperBlock(type);
  sb.s_flags = flags;
  sb.s_id = type.name;
  return sb;
}

/** sync_filesystem through the writeback code (flush dirty inodes and pages, then sync_fs). */
export async function syncFilesystemHook(sb: SuperBlock): Promise<void> {
  if (sb.s_flags & SB_RDONLY) return;
  await syncFilesystem(sb);
}

/**
 * mount_fs / get_tree_nodev / get_tree_bdev: a new active superblock of `type`.
 * Throws what fill_super throws, after releasing everything.
 */
export async function mountFs(type: FileSystemType, flags: number, devName: string, data: string): Promise<SuperBlock> {
  const sb = allocSuper(type, flags);
  if (type.fs_flags & FS_REQUIRES_DEV) {
    if (!devName) throw err(EINVAL);
    // Open and claim the device for this superblock (EBUSY if mounted elsewhere, EACCES
    // for a read-write mount of a read-only device); blkdevPut at teardown writes back
    // and drops the device's cache.
    const bdev = await blkdevGetForSuper(await lookupBdev(devName), flags, sb);
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

async function teardown(sb: SuperBlock, putSuper: boolean): Promise<void> {
  try {
    await shrinkDcacheForUmount(sb);
    await evictInodes(sb);
    if (putSuper && sb.s_op?.put_super) await sb.s_op.put_super(sb);
    if (sb.s_type.kill_sb) await sb.s_type.kill_sb(sb);
  } finally {
    wbSupers.delete(sb);
    if (sb.s_bdev) await blkdevPut(sb.s_bdev, sb);
  }
}

/**
 * generic_shutdown_super: sync, then (inactive, so iput evicts at once) free dentries and
 * inodes, and let the filesystem write its final state.
 */
export async function genericShutdownSuper(sb: SuperBlock): Promise<void> {
  try { await syncFilesystemHook(sb); } catch (e) {
    pr_err(`VFS: sync of ${sb.s_id} at umount failed: ${(e as Error)?.message ?? e}`);
  }
  sb.s_flags &= ~SB_ACTIVE;
  await teardown(sb, true);
}

/** deactivate_super: the last active reference shuts the superblock down. */
export async function deactivateSuper(sb: SuperBlock): Promise<void> {
  if (--sb.s_active > 0) return;
  await sb.s_umount.downWrite();
  try { await genericShutdownSuper(sb); } finally { sb.s_umount.upWrite(); }
}
