/*
 * ext4's in-memory state (fs/ext4/ext4.h): the superblock info (ext4_sb_info), the inode
 * info (ext4_inode_info, here an inode subclass), the mount options, and the one door to
 * the disk every other file of the driver uses (ext4_sb_bread over an Ext4Dev).
 * On-disk structures and their codecs are layout.ts's; nothing here touches disk bytes.
 *
 * The device: kernel mounts reach it through the buffer cache (buffer.ts, sb_bread); unit
 * tests hand in any object with the same small shape. Blocks replayed from the journal on a
 * read-only mount live in an overlay (s_overlay) that ext4_sb_bread consults first, so the
 * image itself is never written.
 */
import type { mb_cache } from '../mbcache.js';
import type { extent_status } from './extents_status.js';
import { inode, type super_block } from '../../include/fs.js';
import { rw_semaphore } from '../../kernel/wait.js';
import type { ext4_super_block, ext4_group_desc } from './layout.js';
import type { Ext4CsumCtx } from './csum.js';
import type { journal_t } from '../jbd2/journal.js';

/** What the driver needs from a block device. Blocks are filesystem blocks (setBlockSize). */
export interface Ext4Dev {
  /** Device size in bytes. */
  readonly sizeBytes: number;
  /** The device was opened read-only (or is a read-only disk). */
  readonly readOnly: boolean;
  /** sb_set_blocksize: from now on block numbers are in units of `bs`. */
  setBlockSize(bs: number): void;
  /** sb_bread: the bytes of block `blk` (the caller must not modify them). EIO on failure. */
  bread(blk: number): Promise<Uint8Array>;
  /**
   * Copy `out.length` bytes at `offset` in block `blk` into `out` (a part of one page-sized
   * buffer, e.g. an inode), without copying the whole block as bread does. EIO on failure.
   */
  read_range?(blk: number, offset: number, out: Uint8Array): Promise<void>;
  /** Write one block and (flush) make writes durable: used by journal replay only, for now. */
  write?(blk: number, data: Uint8Array): Promise<void>;
  flush?(): Promise<void>;
  /** Drop cached copies (after replay wrote underneath the cache). */
  invalidate?(): void;
}

/* ext4_map_blocks flags (EXT4_GET_BLOCKS_*), the ones used. */
export const EXT4_GET_BLOCKS_CREATE = 0x0001, EXT4_GET_BLOCKS_DELALLOC_RESERVE = 0x0004;

/* Mount option bits (sbi->s_mount_opt), Linux's names. */
export const EXT4_MOUNT_NO_MBCACHE = 0x00001, EXT4_MOUNT_NO_UID32 = 0x00002, EXT4_MOUNT_DEBUG = 0x00008, EXT4_MOUNT_ERRORS_CONT = 0x00010,
  EXT4_MOUNT_ERRORS_RO = 0x00020, EXT4_MOUNT_ERRORS_PANIC = 0x00040, EXT4_MOUNT_MINIX_DF = 0x00080,
  EXT4_MOUNT_NOLOAD = 0x00100, EXT4_MOUNT_DATA_FLAGS = 0x00c00, EXT4_MOUNT_JOURNAL_DATA = 0x00400,
  EXT4_MOUNT_ORDERED_DATA = 0x00800, EXT4_MOUNT_WRITEBACK_DATA = 0x00c00, EXT4_MOUNT_UPDATE_JOURNAL = 0x01000,
  EXT4_MOUNT_NO_AUTO_DA_ALLOC = 0x10000, EXT4_MOUNT_XATTR_USER = 0x04000, EXT4_MOUNT_POSIX_ACL = 0x08000,
  EXT4_MOUNT_BARRIER = 0x20000, EXT4_MOUNT_QUOTA = 0x40000, EXT4_MOUNT_DELALLOC = 0x8000000,
  EXT4_MOUNT_DATA_ERR_ABORT = 0x10000000, EXT4_MOUNT_BLOCK_VALIDITY = 0x20000000,
  EXT4_MOUNT_DISCARD = 0x40000000, EXT4_MOUNT_INIT_INODE_TABLE = 0x80000000;
export const EXT4_MOUNT2_JOURNAL_CHECKSUM = 0x08, EXT4_MOUNT2_JOURNAL_ASYNC_COMMIT = 0x10;
export const EXT4_MOUNT_ERRORS_MASK = EXT4_MOUNT_ERRORS_CONT | EXT4_MOUNT_ERRORS_RO | EXT4_MOUNT_ERRORS_PANIC;

export const EXT4_DEF_MAX_BATCH_TIME = 15000;
export const JBD2_DEFAULT_MAX_COMMIT_AGE = 5;

/* Dynamic inode state (ext4_inode_info->i_state_flags, EXT4_STATE_*) */
export const EXT4_STATE_NEW = 1 << 2, EXT4_STATE_XATTR = 1 << 3, EXT4_STATE_DA_ALLOC_CLOSE = 1 << 5,
  EXT4_STATE_MAY_INLINE_DATA = 1 << 10;

/** Inline data: i_block holds the first 60 bytes (EXT4_MIN_INLINE_DATA_SIZE). */
export const EXT4_MIN_INLINE_DATA_SIZE = 60;
export const EXT4_INLINE_DOTDOT_OFFSET = 2, EXT4_INLINE_DOTDOT_SIZE = 4;

/** Which Linux driver name the filesystem was mounted through. */
export type Ext4Flavour = 'ext2' | 'ext3' | 'ext4';

/** struct ext4_sb_info (the parts the read side uses; the write side adds to it). */
/** Inode-table blocks read ahead by default (EXT4_DEF_INODE_READAHEAD_BLKS). */
export const EXT4_DEF_INODE_READAHEAD_BLKS = 32;

export class ext4_sb_info {
  /** Decoded on-disk superblock (s_es) and its raw 1024 bytes (buffer of s_sbh). */
  s_es!: ext4_super_block;
  s_sbraw!: Uint8Array;
  /** Block holding the superblock and the superblock's offset inside it. */
  s_sb_block = 1;
  s_sb_offset = 0;
  s_dev!: Ext4Dev;
  flavour: Ext4Flavour = 'ext4';
  s_blocksize = 1024;
  s_blocksize_bits = 10;
  s_inode_size = 128;
  s_first_ino = 11;
  s_desc_size = 32;
  s_inodes_per_group = 0;
  s_blocks_per_group = 0;
  s_clusters_per_group = 0;
  s_cluster_ratio = 1;
  s_groups_count = 0;
  s_inodes_per_block = 0;
  s_itb_per_group = 0;
  s_desc_per_block = 0;
  s_gdb_count = 0;
  s_blocks_count = 0;
  s_first_data_block = 0;
  s_addr_per_block_bits = 0;
  s_log_groups_per_flex = 0;
  /** Group descriptors, decoded (s_group_desc). */
  s_group_desc: ext4_group_desc[] = [];
  /** Where each group's descriptor lives: block number and byte offset (for the write side). */
  s_group_desc_loc: { block: number; off: number }[] = [];
  s_csum: Ext4CsumCtx | null = null;
  s_csum_seed = 0;
  s_hash_seed: number[] = [0, 0, 0, 0];
  s_def_hash_version = 0;
  s_hash_unsigned = 0;
  s_mount_opt = 0;
  s_mount_opt2 = 0;
  s_mount_flags = 0;
  s_commit_interval = JBD2_DEFAULT_MAX_COMMIT_AGE;
  /** inode_readahead_blks=: inode-table blocks read together when one is not cached (0: none). */
  s_inode_readahead_blks = EXT4_DEF_INODE_READAHEAD_BLKS;
  s_resuid = 0;
  s_resgid = 0;
  /** s_state as mounted (EXT4_VALID_FS / EXT4_ERROR_FS). */
  s_mount_state = 0;
  /** Set after an ext4_error: the filesystem has errors (s_state |= EXT4_ERROR_FS). */
  s_has_errors = false;
  /** Made read-only by an error (errors=remount-ro, an aborted journal), not mounted so. */
  s_ro_by_error = false;
  /** errors=panic hit: everything fails from now on (we cannot really panic). */
  s_shutdown = false;
  /** The driver has no write support yet: modifying operations fail with EROFS. */
  s_readonly_driver = true;
  s_journal: journal_t | null = null;
  /** Blocks replayed from the journal into memory only (read-only recovery). */
  s_overlay: Map<number, Uint8Array> = new Map();
  /**
   * Directory blocks whose checksum has been verified since they were read (Linux keeps
   * this as BH_Verified on the buffer): a lookup in a big linear directory would otherwise
   * checksum every block again for every name. The write side must forget a block it
   * rewrites (delete it here) or set it after computing the new checksum.
   */
  s_dirblock_verified: Set<number> = new Set();
  /** Extent-tree blocks whose checksum was verified (buffer_verified): not verified again on every lookup. */
  s_extent_block_verified: Set<number> = new Set();
  /** Bitmap blocks whose checksum was verified (BH_Verified) or that were initialised here. */
  s_bitmap_verified: Set<number> = new Set();
  s_bitmap_inited: Set<number> = new Set();
  /** Free clusters and inodes (Linux's percpu counters), from the descriptors at mount. */
  s_freeclusters_counter = 0;
  /** Clusters reserved by delayed-allocation writes and not yet allocated (s_dirtyclusters_counter). */
  s_dirtyclusters_counter = 0;
  s_freeinodes_counter = 0;
  /** The superblock's counts or state changed since it was last written (ext4_commit_super). */
  s_dirty_super = false;
  /**
   * Blocks freed by transactions not yet committed (Linux's busy extents, ext4_free_data):
   * the allocator leaves them alone until the commit, so that a crash cannot bring a deleted
   * file back with its blocks already holding someone else's data.
   */
  s_busy_blocks: Set<number> = new Set();
  /** xattr blocks by their hash, to share identical ones (null with nombcache) */
  s_ea_block_cache: mb_cache | null = null;
  /** ea_inodes by the crc32c of their value, to share identical values (ea_inode feature, not with nombcache) */
  s_ea_inode_cache: mb_cache | null = null;
  /** Inode generation counter for new inodes (s_next_generation). */
  s_next_generation = 0;
  s_max_links = 65000;
  s_extra_isize = 0;
  s_want_extra_isize = 0;
  /** Messages already printed (ext4_error prints each once). */
  s_error_printed = new Set<string>();
  s_error_count = 0;
  /** Orphan inodes found at mount (reported, not processed, on a read-only mount). */
  s_orphans: number[] = [];
  /** The s_last_orphan chain in memory, head first (sbi->s_orphan). */
  s_orphan_list: ext4_inode_info[] = [];
  constructor(public readonly sb: super_block) {}
  has_incompat(mask: number): boolean { return (this.s_es.s_feature_incompat & mask) !== 0; }
  has_ro_compat(mask: number): boolean { return (this.s_es.s_feature_ro_compat & mask) !== 0; }
  has_compat(mask: number): boolean { return (this.s_es.s_feature_compat & mask) !== 0; }
  test_opt(mask: number): boolean { return (this.s_mount_opt & mask) !== 0; }
}

const NO_RAW = new Uint8Array(0);

/** struct ext4_inode_info: the VFS inode plus ext4's per-inode state. */
export class ext4_inode_info extends inode {
  /** i_data_sem: the block map / extent tree (readers map blocks, writers change it). */
  i_data_sem = new rw_semaphore('i_data_sem');
  /** i_block: extent root, block map, inline data or fast symlink (60 bytes, raw). */
  i_data: Uint8Array = new Uint8Array(60);
  /** EXT4_*_FL as on disk. */
  i_ext4_flags = 0;
  i_file_acl = 0;
  i_dtime = 0;
  /** i_size as on disk (the write side keeps it apart from i_size). */
  i_disksize = 0;
  i_extra_isize = 0;
  /** The raw on-disk inode (s_inode_size bytes): in-inode xattrs live after the fields. */
  i_raw: Uint8Array = NO_RAW;
  i_csum_seed = 0;
  i_projid = 0;
  i_state_flags = 0;
  /** Inline data: offset of the system.data entry's value in i_raw (-1 none) and its size. */
  i_inline_off = -1;
  i_inline_size = 0;
  /** Where the inode lives on disk (for the write side and error messages). */
  i_loc_block = 0;
  i_loc_offset = 0;
  /** Delayed allocation: blocks reserved for this inode's BH_Delay buffers (one each). */
  i_reserved_data_blocks = 0;
  /**
   * The last transactions that changed this inode (i_sync_tid) and that changed what
   * fdatasync must make durable: its data's size or blocks (i_datasync_tid). fsync commits
   * up to the one it needs, or nothing when that one is committed (ext4_fsync_journal).
   */
  i_sync_tid = 0;
  i_datasync_tid = 0;
  /** The extent status cache (i_es_tree; one entry here: extents_status.ts). */
  i_es_cache: extent_status | null = null;
}

export function EXT4_SB(sb: super_block): ext4_sb_info { return sb.s_fs_info as ext4_sb_info; }
export function EXT4_I(inode: inode): ext4_inode_info { return inode as ext4_inode_info; }
