/*
 * FAT inodes (fs/fat/inode.c, the inode half): FAT has no inode table, so an inode is its
 * 8.3 directory entry. Inodes are found by i_pos (the entry's block and index) through the
 * fat inode hash; inode numbers are handed out per entry position and kept for the whole
 * mount (a rename moves the number with the file), the root being MSDOS_ROOT_INO.
 * fat_write_inode writes size, start cluster, times and attributes back to the entry;
 * evict frees the clusters of an unlinked file at its last close.
 */
import type { inode, super_block } from '../../include/fs.js';
import { I_NEW, SB_RDONLY, S_IMMUTABLE } from '../../include/fs.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../../include/uapi.js';
import { S_IRUGO, S_IRWXUGO, S_IWUGO } from './fat.js';
import {
  iget_locked, unlock_new_inode, iget_failed, set_nlink, truncate_inode_pages_final,
} from '../inode.js';
import { inodeClean } from '../fs-writeback.js';
import { truncate_inode_pages } from '../../mm/filemap.js';
import {
  MSDOS_SB, MSDOS_I, MSDOS_ROOT_INO, fat_get_start, fat_set_start, type msdos_inode_info, type msdos_sb_info,
} from './fat.js';
import {
  ATTR_ARCH, ATTR_DIR, ATTR_HIDDEN, ATTR_RO, ATTR_SYS, ATTR_VOLUME,
  msdos_dir_entry_decode, msdos_dir_entry_encode, type msdos_dir_entry,
} from './layout.js';
import { fat_entry_times, fat_set_entry_times } from './misc.js';
import { fat_subdirs } from './dir.js';
import { fat_file_inode_operations, fat_file_operations, fat_aops, fat_truncate_blocks } from './file.js';
import { vfat_dir_inode_operations, fat_dir_operations } from './namei_vfat.js';
import { FAT_START_ENT, FAT_ENT_EOF } from './layout.js';
import { fat_ent_read, fat_nr_clusters } from './fatent.js';
import { fat_fs_error } from './misc.js';
import { EIO } from '../../include/uapi.js';

/** Attributes kept as they are (ATTR_UNUSED in Linux): not expressed by i_mode. */
export const ATTR_UNUSED = ATTR_VOLUME | ATTR_ARCH | ATTR_SYS | ATTR_HIDDEN;

/** fat_make_mode: permission bits from the attributes and the umask options. */
export function fat_make_mode(sbi: msdos_sb_info, attrs: number, mode: number): number {
  if (attrs & ATTR_RO && !(attrs & ATTR_DIR && !sbi.options.rodir)) mode &= ~S_IWUGO;
  if (attrs & ATTR_DIR) return (mode & ~sbi.options.fs_dmask) | S_IFDIR;
  return (mode & ~sbi.options.fs_fmask) | S_IFREG;
}

/** fat_mode_can_hold_ro: can i_mode say "read-only" for this inode at all? */
export function fat_mode_can_hold_ro(inode: inode): boolean {
  const sbi = MSDOS_SB(inode.i_sb);
  let mask: number;
  if ((inode.i_mode & 0o170000) === S_IFDIR) {
    if (!sbi.options.rodir) return false;
    mask = ~sbi.options.fs_dmask;
  } else mask = ~sbi.options.fs_fmask;
  return (mask & S_IWUGO) !== 0;
}

/** fat_make_attrs: the attribute byte for an inode. */
export function fat_make_attrs(inode: inode): number {
  let attrs = (inode.i_mode & 0o170000) === S_IFDIR ? ATTR_DIR : 0;
  if (fat_mode_can_hold_ro(inode) && !(inode.i_mode & S_IWUGO)) attrs |= ATTR_RO;
  return attrs | MSDOS_I(inode).i_attrs;
}

function isExec(ext: Uint8Array): boolean {
  const e = String.fromCharCode(ext[0]!, ext[1]!, ext[2]!);
  return e === 'EXE' || e === 'COM' || e === 'BAT';
}

/** fat_calc_dir_size: a directory's size is its chain length in bytes. */
async function fat_calc_dir_size(inode: msdos_inode_info): Promise<void> {
  const sbi = MSDOS_SB(inode.i_sb);
  let n = 0;
  if (inode.i_start) {
    let c = inode.i_start;
    for (;;) {
      n++;
      if (n > sbi.totalClusters) throw fat_fs_error(inode.i_sb, `fat_calc_dir_size: detected the cluster chain loop (i_pos ${inode.i_pos})`, EIO);
      const next = await fat_ent_read(inode.i_sb, c);
      if (next === FAT_ENT_EOF) break;
      if (next < FAT_START_ENT || next >= sbi.max_cluster) {
        throw fat_fs_error(inode.i_sb, `fat_calc_dir_size: invalid cluster chain (i_pos ${inode.i_pos})`, EIO);
      }
      c = next;
    }
  }
  inode.i_size = n * sbi.cluster_size;
}

function setOps(inode: msdos_inode_info): void {
  if ((inode.i_mode & 0o170000) === S_IFDIR) {
    inode.i_op = vfat_dir_inode_operations;
    inode.i_fop = fat_dir_operations;
  } else {
    inode.i_op = fat_file_inode_operations;
    inode.i_fop = fat_file_operations;
  }
  inode.i_mapping.a_ops = fat_aops;
}

/** fat_fill_inode: in-core inode from its 8.3 entry. */
export async function fat_fill_inode(inode: msdos_inode_info, de: msdos_dir_entry): Promise<void> {
  const sb = inode.i_sb;
  const sbi = MSDOS_SB(sb);
  inode.i_uid = sbi.options.fs_uid;
  inode.i_gid = sbi.options.fs_gid;
  inode.i_generation = 1;
  inode.i_start = fat_get_start(de, sbi.fat_bits);
  inode.i_logstart = inode.i_start;
  if (inode.i_start && (inode.i_start < FAT_START_ENT || inode.i_start >= sbi.max_cluster)) {
    throw fat_fs_error(sb, `fat_fill_inode: invalid start cluster ${inode.i_start} (i_pos ${inode.i_pos})`, EIO);
  }
  if (de.attr & ATTR_DIR && !(de.attr & ATTR_VOLUME)) {
    inode.i_mode = fat_make_mode(sbi, de.attr, S_IRWXUGO);
    setOps(inode);
    await fat_calc_dir_size(inode);
    inode.mmu_private = inode.i_size;
    set_nlink(inode, await fat_subdirs(inode));
  } else {
    const base = sbi.options.showexec && !isExec(de.name.subarray(8)) ? S_IRUGO | S_IWUGO : S_IRWXUGO;
    inode.i_mode = fat_make_mode(sbi, de.attr, base);
    setOps(inode);
    inode.i_size = de.size;
    inode.mmu_private = de.size;
    set_nlink(inode, 1);
  }
  inode.i_attrs = de.attr & ATTR_UNUSED;
  if (sbi.options.sys_immutable && (de.attr & ATTR_SYS)) inode.i_flags |= S_IMMUTABLE;
  inode.i_blocks = Math.ceil(inode.i_size / sbi.cluster_size) * (sbi.cluster_size / 512);
  const t = fat_entry_times(sb, de);
  inode.i_mtime = t.mtime;
  inode.i_ctime = { ...t.mtime };
  inode.i_atime = t.atime;
  inode.i_btime = t.btime;
}

/** fat_attach: make the inode findable by its entry position. */
export function fat_attach(inode: msdos_inode_info, i_pos: number): void {
  const sbi = MSDOS_SB(inode.i_sb);
  inode.i_pos = i_pos;
  if (i_pos) {
    sbi.inode_hashtable.set(i_pos, inode);
    sbi.ino_of_pos.set(i_pos, inode.i_ino);
  }
}

/** fat_detach: the entry is gone (unlink, or the old place of a rename). */
export function fat_detach(inode: msdos_inode_info): void {
  const sbi = MSDOS_SB(inode.i_sb);
  if (inode.i_pos) {
    if (sbi.inode_hashtable.get(inode.i_pos) === inode) sbi.inode_hashtable.delete(inode.i_pos);
    if (sbi.ino_of_pos.get(inode.i_pos) === inode.i_ino) sbi.ino_of_pos.delete(inode.i_pos);
  }
  inode.i_pos = 0;
}

/** fat_build_inode: the inode of the entry `de` at i_pos (referenced). */
export async function fat_build_inode(sb: super_block, de: msdos_dir_entry, i_pos: number): Promise<msdos_inode_info> {
  const sbi = MSDOS_SB(sb);
  const cached = sbi.inode_hashtable.get(i_pos);
  let ino = cached ? cached.i_ino : sbi.ino_of_pos.get(i_pos);
  if (ino === undefined) {
    ino = sbi.next_ino++;
    sbi.ino_of_pos.set(i_pos, ino);
  }
  const inode = MSDOS_I(await iget_locked(sb, ino));
  if (!(inode.i_state & I_NEW)) return inode;
  try {
    inode.i_pos = i_pos;
    await fat_fill_inode(inode, de);
    fat_attach(inode, i_pos);
  } catch (e) {
    await iget_failed(inode);
    throw e;
  }
  unlock_new_inode(inode);
  return inode;
}

/** fat_read_root: the root directory's inode. */
export async function fat_read_root(sb: super_block): Promise<msdos_inode_info> {
  const sbi = MSDOS_SB(sb);
  const inode = MSDOS_I(await iget_locked(sb, MSDOS_ROOT_INO));
  if (!(inode.i_state & I_NEW)) return inode;
  inode.i_uid = sbi.options.fs_uid;
  inode.i_gid = sbi.options.fs_gid;
  inode.i_mode = fat_make_mode(sbi, ATTR_DIR, S_IRWXUGO);
  setOps(inode);
  inode.i_pos = 0;
  if (sbi.fat_bits === 32) {
    inode.i_start = sbi.root_cluster;
    await fat_calc_dir_size(inode);
  } else {
    inode.i_start = 0;
    inode.i_size = sbi.dir_entries * 32;
  }
  inode.i_logstart = 0;
  inode.mmu_private = inode.i_size;
  inode.i_blocks = Math.ceil(inode.i_size / sbi.cluster_size) * (sbi.cluster_size / 512);
  inode.i_attrs = ATTR_DIR;
  const zero = { sec: 0, nsec: 0 };
  inode.i_mtime = { ...zero }; inode.i_atime = { ...zero }; inode.i_ctime = { ...zero };
  set_nlink(inode, (await fat_subdirs(inode)) + 2);
  unlock_new_inode(inode);
  return inode;
}

/** fat_write_inode / __fat_write_inode: the in-core inode into its 8.3 entry. */
export async function fat_write_inode(inode: inode, _sync: boolean): Promise<void> {
  const sb = inode.i_sb;
  const sbi = MSDOS_SB(sb);
  const mi = MSDOS_I(inode);
  if (inode.i_ino === MSDOS_ROOT_INO) return;
  for (;;) {
    const i_pos = mi.i_pos;
    if (!i_pos) return;
    const blk = Math.floor(i_pos / sbi.dir_per_block);
    const bh = await sbi.bops.bread(blk);
    if (mi.i_pos !== i_pos) { sbi.bops.brelse(bh); continue; } // moved by a rename while we slept
    const off = (i_pos % sbi.dir_per_block) * 32;
    const de = msdos_dir_entry_decode(bh.b_data, off);
    const isDir = (inode.i_mode & 0o170000) === S_IFDIR;
    de.attr = fat_make_attrs(inode);
    fat_set_start(de, mi.i_logstart);
    de.size = isDir ? 0 : inode.i_size;
    fat_set_entry_times(sb, inode, de, true);
    msdos_dir_entry_encode(de, bh.b_data, off);
    // The entry belongs to the parent directory's blocks, not to this inode's buffers:
    // sync_fs, fsync and unmount write it (Linux: mark_buffer_dirty, not _inode).
    sbi.bops.markDirty(bh, null);
    sbi.bops.brelse(bh);
    return;
  }
}

/** fat_evict_inode: an unlinked inode's clusters go back to the free pool. */
export async function fat_evict_inode(inode: inode): Promise<void> {
  const mi = MSDOS_I(inode);
  // Wait for writeback in flight: its clusters may be freed and reused just below.
  await truncate_inode_pages(inode.i_mapping, 0);
  truncate_inode_pages_final(inode);
  mi.dircache = null;
  if (inode.i_nlink === 0 && inode.i_ino !== MSDOS_ROOT_INO) {
    inode.i_size = 0;
    try {
      await fat_truncate_blocks(mi, 0);
    } finally {
      inodeClean(inode);
    }
  } else if ((inode.i_mode & S_IFMT) === S_IFREG && !(inode.i_sb.s_flags & SB_RDONLY) &&
    fat_nr_clusters(mi) > Math.ceil(inode.i_size / MSDOS_SB(inode.i_sb).cluster_size)) {
    // fat_free_eofblocks: clusters fallocate(KEEP_SIZE) added past i_size go back.
    await fat_truncate_blocks(mi, inode.i_size).catch(() => {});
    if (mi.i_pos) await fat_write_inode(mi, false).catch(() => {});
  }
  inodeClean(inode);
  fat_detach(mi);
}

