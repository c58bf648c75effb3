/*
 * The vfat driver's in-memory state (fs/fat/fat.h): struct msdos_sb_info, struct
 * msdos_inode_info, struct fat_mount_options, the small accessors every other file of
 * the driver uses, and fat.h's inline helpers (fat_clus_to_blknr, fat_valid_entry,
 * fat_get_start / fat_set_start, fat_checksum). On-disk layouts live in layout.ts.
 *
 * Files of the driver, as in Linux's fs/fat:
 *   super.ts (mount, options, statfs, sync, unmount)   inode.ts (inodes <-> 8.3 entries)
 *   fatent.ts (the FAT: read, allocate, free)          cache.ts (cluster-chain cache, bmap)
 *   dir.ts (directory format: iterate, add, remove)    namei_vfat.ts (VFS glue, long names)
 *   file.ts (data path, setattr, fsync)                misc.ts (errors, times, buffers)
 *   layout.ts (on-disk structs, msdos_fs.h)            names.ts (8.3 and long names)
 */
import { inode, type super_block } from '../../include/fs.js';
import { mutex } from '../../kernel/wait.js';
import { FAT_START_ENT, MSDOS_NAME, type msdos_dir_entry } from './layout.js';
import type { FatTzOptions } from './time.js';
import type { VfatFold } from './names.js';

/** The root directory's inode number (MSDOS_ROOT_INO); others come from a counter. */
export const MSDOS_ROOT_INO = 1;
/** i_pos of the root: it has no directory entry. */
export const FAT_ROOT_IPOS = 0;
/** Magic reported by statfs (MSDOS_SUPER_MAGIC). */
export const MSDOS_SUPER_MAGIC = 0x4d44;
export const S_IRWXUGO = 0o777, S_IRUGO = 0o444, S_IWUGO = 0o222, S_IXUGO = 0o111;
/** The modes a FAT inode can have (FAT_VALID_MODE). */
export const FAT_VALID_MODE = 0o100000 | 0o040000 | S_IRWXUGO;
/** Longest file: sizes are 32-bit on disk. */
export const FAT_MAX_FILESIZE = 0xffffffff;

export type FatErrorsPolicy = 'continue' | 'remount-ro' | 'panic';

/** struct fat_mount_options. */
export interface fat_mount_options {
  fs_uid: number;
  fs_gid: number;
  fs_fmask: number;
  fs_dmask: number;
  /** allow_utime: who besides the owner may set times (bits of S_IWGRP|S_IWOTH). */
  allow_utime: number;
  allow_utime_set: boolean;
  codepage: number;
  iocharset: string;
  /** vfat_shortname_flags() value. */
  shortname: number;
  shortname_name: string;
  name_check: 'r' | 'n' | 's';
  errors: FatErrorsPolicy;
  quiet: boolean;
  showexec: boolean;
  sys_immutable: boolean;
  dotsOK: boolean;
  isvfat: boolean;
  utf8: boolean;
  unicode_xlate: boolean;
  numtail: boolean;
  flush: boolean;
  nocase: boolean;
  usefree: boolean;
  tz: FatTzOptions;
  rodir: boolean;
  discard: boolean;
  nfs: boolean;
  dos1xfloppy: boolean;
  fold: VfatFold;
}

/** A metadata block (a buffer head): `b_data` is the live bytes, changed in place. */
export interface FatBuffer {
  readonly b_blocknr: number;
  readonly b_data: Uint8Array;
}

/**
 * How the driver reaches its device: buffer-head style metadata access plus direct reads
 * of data blocks. Implemented on fs/buffer.ts and the block layer in blockdev.ts.
 */
export interface FatBlockOps {
  /** sb_bread: the block, read if not cached. Throws EIO. */
  bread(blk: number): Promise<FatBuffer>;
  /** __find_get_block: the block if it is cached and uptodate (with a reference), else null; never sleeps. */
  findGetBlock?(blk: number): FatBuffer | null;
  /** sb_getblk for a block about to be overwritten entirely: zero-filled, not read. */
  getblkZero(blk: number): Promise<FatBuffer>;
  /** mark_buffer_dirty (and mark_buffer_dirty_inode when `inode` is given). */
  markDirty(bh: FatBuffer, inode: inode | null): void;
  brelse(bh: FatBuffer): void;
  /** bforget: a freed block's cached copy must never be written back over new data. */
  forget(blk: number): void;
  /** Write every dirty metadata buffer (of `inode` only, if given: sync_mapping_buffers). */
  syncBuffers(inode: inode | null): Promise<void>;
  /** Read whole blocks of file data into `buf` (length a multiple of the block size). */
  readData(blk: number, buf: Uint8Array): Promise<void>;
  /** blkdev_issue_flush. */
  flush(): Promise<void>;
  /** Drop every cached buffer (after unmount). */
  invalidate(): void;
}

/** The geometry fat_fill_super derives (a subset of struct msdos_sb_info, same names). */
export interface FatSbInfo {
  sectorSize: number;
  sec_per_clus: number;
  cluster_size: number;
  fats: number;
  /** 12, 16 or 32. */
  fat_bits: 12 | 16 | 32;
  /** First sector of FAT #0 (= reserved sectors). */
  fat_start: number;
  /** Sectors per FAT. */
  fat_length: number;
  /** First sector of the FAT12/16 root directory (after the FATs). */
  dir_start: number;
  /** FAT12/16 root directory entries (0 on FAT32). */
  dir_entries: number;
  /** First sector of cluster 2. */
  data_start: number;
  totalSectors: number;
  /** Usable data clusters, already clamped to what the FAT can describe. */
  totalClusters: number;
  /** One past the last valid cluster number (total_clusters + FAT_START_ENT). */
  max_cluster: number;
  /** FAT32 root directory's first cluster; 0 on FAT12/16. */
  root_cluster: number;
  /** FAT32 FSInfo sector (Linux reads sector 1 when the BPB says 0); 0 on FAT12/16. */
  fsinfo_sector: number;
  /** FAT32 backup boot sector; 0 on FAT12/16. */
  backupBoot: number;
  /** FAT32 extended flags (mirroring / active FAT). */
  fat32Flags: number;
  /**
   * The volume was not cleanly unmounted (state byte bit 0): the fs state before mount.
   * fat_set_state then leaves the bit alone, for fsck.
   */
  dirty: boolean;
  vol_id: number;
  media: number;
}

/** struct msdos_sb_info. */
export interface msdos_sb_info extends FatSbInfo {
  options: fat_mount_options;
  bops: FatBlockOps;
  /** Block (= logical sector) size used for buffers and data. */
  blocksize: number;
  blocksizeBits: number;
  /** Directory entries per block, and its log2 (for i_pos). */
  dir_per_block: number;
  dir_per_block_bits: number;
  /** Free clusters, -1 when unknown (counted on demand). */
  free_clusters: number;
  /** Whether free_clusters is trustworthy (computed by us, not read from FSInfo). */
  free_clus_valid: boolean;
  /** Last cluster allocated: the next search starts after it. */
  prev_free: number;
  /** FSInfo must be written at the next sync. */
  fsinfo_dirty: boolean;
  /** FAT copies that are kept up to date (all when mirroring, else the active one). */
  fatCopies: number[];
  /** The active FAT for reads (FAT32 without mirroring), else 0. */
  fatActive: number;
  /** Serializes FAT changes (fat_lock). */
  fat_lock: mutex;
  /** Serializes directory operations of the whole volume (s_lock). */
  s_lock: mutex;
  /** i_pos -> in-core inode (the fat inode hash). */
  inode_hashtable: Map<number, msdos_inode_info>;
  /** i_pos -> inode number given out during this mount (keeps numbers stable). */
  ino_of_pos: Map<number, number>;
  next_ino: number;
  /** Seed for the hashed ~N tails. */
  tailSeed: number;
}

/** Cached run of a file's cluster chain: file cluster fcluster..fcluster+len-1 -> dcluster.. */
export interface fat_cache {
  fcluster: number;
  dcluster: number;
  len: number;
}

/** struct msdos_inode_info: the in-core inode of a FAT file. */
export class msdos_inode_info extends inode {
  /** First cluster, 0 for an empty file. */
  i_start = 0;
  /** i_logstart: the start cluster as last written to the entry. */
  i_logstart = 0;
  /** DOS attribute bits (hidden, system, archive...) not expressed in i_mode. */
  i_attrs = 0;
  /** Position of the 8.3 entry: (block << dir_per_block_bits) | index; 0 = none (root). */
  i_pos = 0;
  /** Bytes of the file that are allocated and initialized (zeroed or written). */
  mmu_private = 0;
  /** Cluster-chain cache (cache.ts). */
  cache_lru: fat_cache[] = [];
  /** Directories: parsed entries (dir.ts DirCache), dropped whenever the entries change. */
  dircache: unknown = null;
  /** Creation time in centiseconds precision is kept in i_btime. */
}

export function MSDOS_SB(sb: super_block): msdos_sb_info {
  return sb.s_fs_info as msdos_sb_info;
}
export function MSDOS_I(inode: inode): msdos_inode_info {
  return inode as msdos_inode_info;
}

/** Block of the i_pos, and the entry's byte offset inside that block. */
export function fat_ipos_block(sbi: msdos_sb_info, i_pos: number): { blk: number; off: number } {
  const blk = Math.floor(i_pos / sbi.dir_per_block);
  return { blk, off: (i_pos % sbi.dir_per_block) * 32 };
}
export function fat_make_ipos(sbi: msdos_sb_info, blk: number, off: number): number {
  return blk * sbi.dir_per_block + off / 32;
}

/* ---- fat.h inline helpers ---- */

/** fat_clus_to_blknr: first sector of a data cluster. */
export function fat_clus_to_blknr(sbi: FatSbInfo, cluster: number): number {
  return (cluster - FAT_START_ENT) * sbi.sec_per_clus + sbi.data_start;
}

/** fat_valid_entry: a cluster number that may appear in a chain or an inode. */
export function fat_valid_entry(sbi: FatSbInfo, entry: number): boolean {
  return entry >= FAT_START_ENT && entry < sbi.max_cluster;
}

/** fat_get_start: starthi counts only on FAT32 (on FAT12/16 it is EA-index garbage). */
export function fat_get_start(de: msdos_dir_entry, fatBits: number): number {
  let c = de.start;
  if (fatBits === 32) c = (c | (de.starthi << 16)) >>> 0;
  return c;
}

/** fat_set_start: both halves, as Linux writes them whatever the FAT width. */
export function fat_set_start(de: msdos_dir_entry, cluster: number): void {
  de.start = cluster & 0xffff;
  de.starthi = (cluster >>> 16) & 0xffff;
}

/** fat_checksum: the 8.3 alias checksum every long-name slot of the alias carries. */
export function fat_checksum(name: Uint8Array | string): number {
  let s = 0;
  for (let i = 0; i < MSDOS_NAME; i++) {
    const c = typeof name === 'string' ? name.charCodeAt(i) & 0xff : name[i]!;
    s = ((((s & 1) << 7) | ((s & 0xfe) >> 1)) + c) & 0xff;
  }
  return s;
}
