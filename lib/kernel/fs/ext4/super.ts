/*
 * Mounting (fs/ext4/super.c): mount options, reading and checking the superblock and the
 * group descriptors, the feature policy (unknown incompat → refuse; unknown ro_compat →
 * read-only only; ext2/ext3 names accept only their feature sets), loading the journal
 * and replaying it, the orphan scan, the root inode, and the super operations. The same
 * driver is registered as "ext4", "ext3" and "ext2", as modern Linux does.
 *
 * Journal replay: with a writable device and a read-write mount the replayed blocks are
 * written to the disk, flushed, and needs_recovery is cleared (as Linux). When the device
 * or the mount is read-only, they are replayed into memory only (sbi.s_overlay), which
 * every metadata and data read consults first: the image stays untouched (Linux refuses
 * such a mount; we can do better). noload/norecovery skip replay.
 *
 * Read-write mounts: filesystems whose features the write side covers (ext4_write_unsupported
 * says which do not, and they mount read-only with that message). Without a journal a
 * read-write mount clears EXT4_VALID_FS until a clean unmount (ext4_setup_super,
 * ext4_put_super). With an internal journal whose features jbd2 writes, metadata goes
 * through it in data=ordered mode (fs/jbd2): needs_recovery is set while mounted, commits
 * happen on sync_fs/fsync, on the commit= timer and when the log fills, and unmount or
 * remount read-only commits, checkpoints, empties the log and clears needs_recovery.
 * External journals, noload and unknown journal features stay read-only; data=journal
 * journals file data too (no delayed allocation then, as in Linux).
 * The superblock's free counts are written from the counters (outside the journal, as Linux).
 */
import {
  FS_REQUIRES_DEV, SB_POSIXACL, SB_RDONLY, type dentry, type file_system_type, type inode,
  type super_block, type super_operations,
} from '../../include/fs.js';
import { err, isErrno } from '../../include/errno.js';
import { EFSBADCRC, EFSCORRUPTED, EINVAL, EIO, EOPNOTSUPP, S_IFDIR, S_IFMT } from '../../include/uapi.js';
import {
  EXT4_ERRORS_CONTINUE, EXT4_ERRORS_PANIC, EXT4_ERROR_FS, EXT4_FEATURE_COMPAT_HAS_JOURNAL,
  EXT4_FEATURE_INCOMPAT_CASEFOLD, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_FLEX_BG,
  EXT4_FEATURE_INCOMPAT_META_BG, EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_FEATURE_RO_COMPAT_BIGALLOC,
  EXT4_FEATURE_RO_COMPAT_HUGE_FILE, EXT4_FEATURE_RO_COMPAT_READONLY, EXT4_FEATURE_INCOMPAT_SUPP,
  EXT4_FEATURE_RO_COMPAT_SUPP, EXT4_DEFM_ACL, EXT4_DEFM_XATTR_USER, EXT4_DEFM_JMODE,
  EXT4_DEFM_JMODE_DATA, EXT4_DEFM_JMODE_WBACK, EXT4_DEFM_NOBARRIER, EXT4_DEFM_UID16,
  EXT4_DEFM_BLOCK_VALIDITY, EXT4_DEFM_DISCARD, EXT4_DEFM_NODELALLOC, EXT4_ROOT_INO,
  EXT4_SUPER_MAGIC, EXT4_VALID_FS, EXT4_GOOD_OLD_INODE_SIZE, ext4_block_bitmap, ext4_block_size, ext4_cluster_size,
  ext4_blocks_count, ext4_desc_size, ext4_first_ino, ext4_group_desc_decode,
  ext4_has_metadata_csum, ext4_hash_unsigned, ext4_inode_bitmap, ext4_inode_size, ext4_inode_table,
  ext4_super_check, ext4_super_decode, ext4_unknown_features, put_le32, EXT4_SB_OFF, le32,
  type ext4_super_block, EXT4_FEATURE_INCOMPAT_INLINE_DATA, EXT4_FEATURE_RO_COMPAT_QUOTA, EXT4_FEATURE_INCOMPAT_ENCRYPT,
  EXT4_FEATURE_INCOMPAT_MMP, ext4_free_blocks_count_set, ext4_super_encode,
} from './layout.js';
import {
  ext4_csum_ctx, ext4_group_desc_csum_verify, ext4_superblock_csum_set, ext4_superblock_csum_verify,
} from './csum.js';
import {
  EXT4_MOUNT_BARRIER, EXT4_MOUNT_BLOCK_VALIDITY, EXT4_MOUNT_DATA_FLAGS, EXT4_MOUNT_DELALLOC,
  EXT4_MOUNT_DISCARD, EXT4_MOUNT_ERRORS_CONT, EXT4_MOUNT_ERRORS_MASK, EXT4_MOUNT_ERRORS_PANIC,
  EXT4_MOUNT_ERRORS_RO, EXT4_MOUNT_JOURNAL_DATA, EXT4_MOUNT_MINIX_DF, EXT4_MOUNT_NOLOAD,
  EXT4_MOUNT_NO_UID32, EXT4_MOUNT_ORDERED_DATA, EXT4_MOUNT_POSIX_ACL, EXT4_MOUNT_WRITEBACK_DATA,
  EXT4_MOUNT_XATTR_USER, EXT4_MOUNT2_JOURNAL_CHECKSUM, EXT4_MOUNT2_JOURNAL_ASYNC_COMMIT, EXT4_MOUNT_DEBUG,
  EXT4_MOUNT_NO_AUTO_DA_ALLOC, EXT4_MOUNT_QUOTA, EXT4_MOUNT_DATA_ERR_ABORT, EXT4_MOUNT_NO_MBCACHE,
  EXT4_SB, ext4_inode_info, ext4_sb_info, type Ext4Dev, type Ext4Flavour,
} from './ext4.js';
import { ext4_error, ext4_msg } from './errors.js';
import { ext4_force_commit } from './ext4_jbd2.js';
import { jbd2_log_start_commit } from '../jbd2/transaction.js';
import { KERN_ERR, printk } from '../../kernel/printk.js';
import {
  ext4_evict_inode, ext4_iget, ext4_iput, ext4_map_blocks, ext4_normal_submit_inode_data_buffers, ext4_write_inode,
  EXT4_IGET_SPECIAL,
} from './inode.js';
import { ext4_bg_has_super, ext4_group_first_block_no, ext4_statfs, ext4_statfs_init } from './balloc.js';
import { ext4_orphan_cleanup, ext4_orphan_scan } from './orphan.js';
import { ext4_xattr_security_handler, ext4_xattr_trusted_handler, ext4_xattr_user_handler } from './xattr.js';
import { ext4_posix_acl_access_handler, ext4_posix_acl_default_handler } from './acl.js';
import {
  jbd2_journal_abort, jbd2_journal_destroy, jbd2_journal_init, jbd2_journal_load_rw, jbd2_journal_set_features, jbd2_write_superblock,
  type journal_t, type JournalWriteOps,
} from '../jbd2/journal.js';
import { jbd2_fc_pending, jbd2_journal_recover, jbd2_journal_scan } from '../jbd2/recovery.js';
import {
  JBD2_CRC32C_CHKSUM, JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT,
  JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FEATURE_INCOMPAT_FAST_COMMIT,
  JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_SB_OFF, JBD2_SUPERBLOCK_V2, jbd2_journal_has_csum_v2or3, put_be32,
} from '../jbd2/layout.js';
import { jbd2_csum_seed } from '../jbd2/csum.js';
import { bdev_rw_sectors } from '../../block/bio.js';
import { REQ_OP_READ, REQ_OP_WRITE, type block_device } from '../../include/blk.js';
import { find_get_page } from '../../mm/filemap.js';
import { put_page } from '../../mm/page_alloc.js';
import { write_inode_now } from '../fs-writeback.js';
import { I_DIRTY_INODE, I_FREEING } from '../../include/fs.js';
import { EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_EA_INODE } from './layout.js';
import { d_make_root } from '../dcache.js';
import { register_filesystem } from '../super.js';
import { bread, brelse, getblk, invalidate_bdev, mark_buffer_dirty, sb_bread, sync_dirty_buffer } from '../buffer.js';
import { sb_set_blocksize, sync_blockdev } from '../../block/bdev.js';
import { blkdev_issue_flush } from '../../block/bio.js';
import { BH_Uptodate } from '../../include/blk.js';
import { PAGE_SIZE } from '../../mm/page_alloc.js';
import { jbd2_superblock_csum_set } from '../jbd2/csum.js';
import { mb_cache_create, mb_cache_destroy } from '../mbcache.js';

/** EXT4_CACHE_BUCKET_BITS: the size of the xattr block cache (2^10 buckets in Linux). */
const EXT4_CACHE_BUCKET_BITS = 10;

/* ---- mount options ---- */

export interface Ext4Options {
  ro: boolean;
  sbBlock: number | null;
  journalChecksum: boolean | null;
}

/** parse_options: apply `data` to sbi (after the superblock defaults). EINVAL with Linux's message. */
export function ext4_parse_options(sb: super_block, sbi: ext4_sb_info, data: string): Ext4Options {
  const o: Ext4Options = { ro: false, sbBlock: null, journalChecksum: null };
  const bad = (m: string): never => { ext4_msg(sb, 'KERN_ERR', m); throw err(EINVAL, m); };
  for (const raw of data.split(',')) {
    const opt = raw.trim();
    if (!opt) continue;
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const val = eq < 0 ? null : opt.slice(eq + 1);
    const num = (): number => {
      if (val === null || !/^\d+$/.test(val)) bad(`Unrecognized mount option "${opt}" or missing value`);
      return Number(val);
    };
    const setData = (m: number) => { sbi.s_mount_opt = (sbi.s_mount_opt & ~EXT4_MOUNT_DATA_FLAGS) | m; };
    switch (key) {
      case 'ro': o.ro = true; break;
      case 'rw': o.ro = false; break;
      case 'noload': case 'norecovery': sbi.s_mount_opt |= EXT4_MOUNT_NOLOAD; break;
      case 'errors':
        sbi.s_mount_opt &= ~EXT4_MOUNT_ERRORS_MASK;
        if (val === 'continue') sbi.s_mount_opt |= EXT4_MOUNT_ERRORS_CONT;
        else if (val === 'remount-ro') sbi.s_mount_opt |= EXT4_MOUNT_ERRORS_RO;
        else if (val === 'panic') sbi.s_mount_opt |= EXT4_MOUNT_ERRORS_PANIC;
        else bad(`Unrecognized mount option "${opt}" or missing value`);
        break;
      case 'user_xattr': sbi.s_mount_opt |= EXT4_MOUNT_XATTR_USER; break;
      case 'nouser_xattr': sbi.s_mount_opt &= ~EXT4_MOUNT_XATTR_USER; break;
      case 'acl': sbi.s_mount_opt |= EXT4_MOUNT_POSIX_ACL; break;
      case 'noacl': sbi.s_mount_opt &= ~EXT4_MOUNT_POSIX_ACL; break;
      case 'barrier':
        if (val === null || num() !== 0) sbi.s_mount_opt |= EXT4_MOUNT_BARRIER; else sbi.s_mount_opt &= ~EXT4_MOUNT_BARRIER;
        break;
      case 'nobarrier': sbi.s_mount_opt &= ~EXT4_MOUNT_BARRIER; break;
      case 'data':
        if (val === 'journal') setData(EXT4_MOUNT_JOURNAL_DATA);
        else if (val === 'ordered') setData(EXT4_MOUNT_ORDERED_DATA);
        else if (val === 'writeback') setData(EXT4_MOUNT_WRITEBACK_DATA);
        else bad(`Unrecognized mount option "${opt}" or missing value`);
        break;
      case 'data_err':
        if (val === 'abort') sbi.s_mount_opt |= EXT4_MOUNT_DATA_ERR_ABORT;
        else if (val === 'ignore') sbi.s_mount_opt &= ~EXT4_MOUNT_DATA_ERR_ABORT;
        else bad(`Unrecognized mount option "${opt}" or missing value`);
        break;
      case 'commit': { const n = num(); sbi.s_commit_interval = n === 0 ? 5 : n; break; }
      case 'inode_readahead_blks': {
        const n = num();
        if (n !== 0 && (n > 2 ** 30 || 2 ** Math.round(Math.log2(n)) !== n)) bad('EXT4-fs: inode_readahead_blks must be 0 or a power of 2 smaller than 2^31');
        sbi.s_inode_readahead_blks = n;
        break;
      }
      case 'journal_checksum': o.journalChecksum = true; sbi.s_mount_opt2 |= EXT4_MOUNT2_JOURNAL_CHECKSUM; break;
      case 'nojournal_checksum': o.journalChecksum = false; sbi.s_mount_opt2 &= ~EXT4_MOUNT2_JOURNAL_CHECKSUM; break;
      case 'journal_async_commit': sbi.s_mount_opt2 |= EXT4_MOUNT2_JOURNAL_ASYNC_COMMIT | EXT4_MOUNT2_JOURNAL_CHECKSUM; break;
      case 'delalloc': sbi.s_mount_opt |= EXT4_MOUNT_DELALLOC; break;
      case 'nodelalloc': sbi.s_mount_opt &= ~EXT4_MOUNT_DELALLOC; break;
      case 'dax': case 'dax=always': case 'dax=inode':
        bad('DAX unsupported by block device.');
        break;
      case 'dax=never': break;
      case 'sb': o.sbBlock = num(); break;
      case 'resuid': sbi.s_resuid = num(); break;
      case 'resgid': sbi.s_resgid = num(); break;
      case 'minixdf': sbi.s_mount_opt |= EXT4_MOUNT_MINIX_DF; break;
      case 'bsddf': sbi.s_mount_opt &= ~EXT4_MOUNT_MINIX_DF; break;
      case 'nouid32': sbi.s_mount_opt |= EXT4_MOUNT_NO_UID32; break;
      case 'debug': sbi.s_mount_opt |= EXT4_MOUNT_DEBUG; break;
      case 'block_validity': sbi.s_mount_opt |= EXT4_MOUNT_BLOCK_VALIDITY; break;
      case 'noblock_validity': sbi.s_mount_opt &= ~EXT4_MOUNT_BLOCK_VALIDITY; break;
      case 'discard': sbi.s_mount_opt |= EXT4_MOUNT_DISCARD; break;
      case 'nodiscard': sbi.s_mount_opt &= ~EXT4_MOUNT_DISCARD; break;
      case 'auto_da_alloc': sbi.s_mount_opt &= ~EXT4_MOUNT_NO_AUTO_DA_ALLOC; break;
      case 'noauto_da_alloc': sbi.s_mount_opt |= EXT4_MOUNT_NO_AUTO_DA_ALLOC; break;
      case 'quota': case 'usrquota': case 'grpquota': case 'prjquota': case 'usrjquota': case 'grpjquota':
        sbi.s_mount_opt |= EXT4_MOUNT_QUOTA; break;
      case 'noquota': sbi.s_mount_opt &= ~EXT4_MOUNT_QUOTA; break;
      case 'nombcache': case 'no_mbcache': sbi.s_mount_opt |= EXT4_MOUNT_NO_MBCACHE; break;
      /* accepted, meaningless for this driver (or handled by the VFS flags) */
      case 'i_version': case 'lazytime': case 'nolazytime': case 'noatime': case 'atime': case 'relatime':
      case 'strictatime': case 'nodiratime': case 'init_itable': case 'noinit_itable': case 'stripe':
      case 'max_batch_time': case 'min_batch_time': case 'journal_ioprio': case 'grpid': case 'bsdgroups':
      case 'nogrpid': case 'sysvgroups': case 'oldalloc': case 'orlov':
      case 'prefetch_block_bitmaps': case 'no_prefetch_block_bitmaps': case 'dioread_nolock': case 'dioread_lock':
      case 'nodev': case 'nosuid': case 'noexec': case 'dev': case 'suid': case 'exec': case 'sync': case 'async':
      case 'mb_optimize_scan': case 'auto': case 'noauto': case 'defaults':
      case 'abort': case 'nojournal_async_commit': case 'jqfmt': case 'discard_max':
        break;
      default:
        bad(`Unrecognized mount option "${opt}" or missing value`);
    }
  }
  return o;
}

/** ext4_set_def_opts: defaults from s_default_mount_opts, as Linux applies them before parsing. */
function ext4_set_def_opts(sbi: ext4_sb_info): void {
  const def = sbi.s_es.s_default_mount_opts;
  sbi.s_mount_opt = EXT4_MOUNT_BARRIER | EXT4_MOUNT_DELALLOC;
  if (def & EXT4_DEFM_XATTR_USER) sbi.s_mount_opt |= EXT4_MOUNT_XATTR_USER;
  if (def & EXT4_DEFM_ACL) sbi.s_mount_opt |= EXT4_MOUNT_POSIX_ACL;
  if (def & EXT4_DEFM_UID16) sbi.s_mount_opt |= EXT4_MOUNT_NO_UID32;
  const jm = def & EXT4_DEFM_JMODE;
  sbi.s_mount_opt |= jm === EXT4_DEFM_JMODE_DATA ? EXT4_MOUNT_JOURNAL_DATA
    : jm === EXT4_DEFM_JMODE_WBACK ? EXT4_MOUNT_WRITEBACK_DATA : EXT4_MOUNT_ORDERED_DATA;
  const errs = sbi.s_es.s_errors;
  sbi.s_mount_opt |= errs === EXT4_ERRORS_PANIC ? EXT4_MOUNT_ERRORS_PANIC
    : errs === EXT4_ERRORS_CONTINUE ? EXT4_MOUNT_ERRORS_CONT : EXT4_MOUNT_ERRORS_RO;
  if (def & EXT4_DEFM_NOBARRIER) sbi.s_mount_opt &= ~EXT4_MOUNT_BARRIER;
  if (def & EXT4_DEFM_BLOCK_VALIDITY) sbi.s_mount_opt |= EXT4_MOUNT_BLOCK_VALIDITY;
  if (def & EXT4_DEFM_DISCARD) sbi.s_mount_opt |= EXT4_MOUNT_DISCARD;
  if (def & EXT4_DEFM_NODELALLOC) sbi.s_mount_opt &= ~EXT4_MOUNT_DELALLOC;
  sbi.s_resuid = sbi.s_es.s_def_resuid;
  sbi.s_resgid = sbi.s_es.s_def_resgid;
}

/* ---- superblock and group descriptors ---- */

/**
 * Read and check the superblock and the group descriptors into sbi (the part of
 * __ext4_fill_super before the journal). Called again after a journal replay, which may
 * have rewritten both. `first` is true on the first call (prints the probing messages).
 */
async function ext4_load_super(sb: super_block, sbi: ext4_sb_info, sbByteOff: number, silent: boolean, first: boolean): Promise<void> {
  const dev = sbi.s_dev;
  const fail = (m: string, e = EINVAL): never => { if (!silent || !first) ext4_msg(sb, 'KERN_ERR', m); throw err(e, m); };
  // The superblock is read in 1 KiB units until its block size is known.
  if (first) { await dev.setBlockSize(1024); sbi.s_blocksize = 1024; }
  let raw: Uint8Array;
  {
    const bs = sbi.s_blocksize;
    const blk = Math.floor(sbByteOff / bs);
    const b = await ext4_raw_bread_dev(sbi, blk);
    const off = sbByteOff % bs;
    raw = b.slice(off, off + 1024);
  }
  const es = ext4_super_decode(raw, 0);
  if (es.s_magic !== EXT4_SUPER_MAGIC) fail(`VFS: Can't find ext4 filesystem`);
  if (ext4_has_metadata_csum(es) && !ext4_superblock_csum_verify(raw, 0))
    fail('VFS: Found ext4 filesystem with invalid superblock checksum.  Run e2fsck?', EFSBADCRC);
  // ext4_handle_clustersize. ext4_super_check knows the non-bigalloc geometry; the cluster
  // fields are checked with and without bigalloc, as Linux does since it shared the checks:
  // every bitmap walk and checksum is s_clusters_per_group bits long, so a wild value there
  // (0xfffffffe with the checksum fixed, found by the fuzzer) made each one a 512 MiB walk.
  const bigalloc = (es.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_BIGALLOC) !== 0;
  let ratio = 1;
  if (bigalloc) {
    ratio = 2 ** (es.s_log_cluster_size - es.s_log_block_size);
    if (es.s_log_cluster_size < es.s_log_block_size || es.s_log_cluster_size - es.s_log_block_size > 16)
      fail(`Invalid log cluster size: ${es.s_log_cluster_size}`, EFSCORRUPTED);
  } else if (es.s_log_cluster_size !== es.s_log_block_size) {
    fail(`fragment/cluster size (${ext4_cluster_size(es)}) != block size (${ext4_block_size(es)})`, EINVAL);
  }
  if (es.s_clusters_per_group > ext4_block_size(es) * 8) fail(`#clusters per group too big: ${es.s_clusters_per_group}`, EINVAL);
  if (es.s_blocks_per_group !== es.s_clusters_per_group * ratio)
    fail(`blocks per group (${es.s_blocks_per_group}) and clusters per group (${es.s_clusters_per_group}) inconsistent`, EINVAL);
  // The remaining checks with the group geometry of a bigalloc filesystem: scale blocks to
  // clusters so that the codec's per-group limit and group count come out as Linux's.
  const why = ext4_super_check(bigalloc ? bigalloc_as_clusters(es) : es);
  if (why) fail(why, EINVAL); // Linux's failed_mount default
  const bs = ext4_block_size(es);
  if (bs > 65536) fail(`Invalid log block size: ${es.s_log_block_size}`);
  if (first || bs !== sbi.s_blocksize) {
    await dev.setBlockSize(bs);
    sbi.s_blocksize = bs;
    const blk = Math.floor(sbByteOff / bs);
    const b = await ext4_raw_bread_dev(sbi, blk);
    const off = sbByteOff % bs;
    raw = b.slice(off, off + 1024);
    sbi.s_sb_block = blk;
    sbi.s_sb_offset = off;
    if (ext4_super_decode(raw, 0).s_magic !== EXT4_SUPER_MAGIC) fail('Magic mismatch, very weird!', EINVAL);
  }
  sbi.s_sbraw = raw;
  sbi.s_es = ext4_super_decode(raw, 0);
  const e = sbi.s_es;
  sbi.s_blocksize_bits = Math.log2(bs);
  sbi.s_inode_size = ext4_inode_size(e);
  sbi.s_first_ino = ext4_first_ino(e);
  sbi.s_desc_size = ext4_desc_size(e);
  sbi.s_inodes_per_group = e.s_inodes_per_group;
  sbi.s_blocks_per_group = e.s_blocks_per_group;
  sbi.s_clusters_per_group = e.s_clusters_per_group;
  sbi.s_cluster_ratio = sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_BIGALLOC) ? 2 ** (e.s_log_cluster_size - e.s_log_block_size) : 1;
  if (sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_BIGALLOC) && !sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS))
    fail("Can't support bigalloc feature without extents feature");
  if (!sbi.s_cluster_ratio || !Number.isInteger(sbi.s_cluster_ratio)) fail(`invalid cluster size ${e.s_log_cluster_size}`);
  sbi.s_blocks_count = ext4_blocks_count(e);
  sbi.s_first_data_block = e.s_first_data_block;
  sbi.s_inodes_per_block = bs / sbi.s_inode_size;
  sbi.s_itb_per_group = Math.ceil(sbi.s_inodes_per_group / sbi.s_inodes_per_block);
  sbi.s_desc_per_block = bs / sbi.s_desc_size;
  sbi.s_addr_per_block_bits = sbi.s_blocksize_bits - 2;
  sbi.s_log_groups_per_flex = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_FLEX_BG) ? e.s_log_groups_per_flex : 0;
  sbi.s_groups_count = Math.ceil((sbi.s_blocks_count - sbi.s_first_data_block) / sbi.s_blocks_per_group);
  sbi.s_gdb_count = Math.ceil(sbi.s_groups_count / sbi.s_desc_per_block);
  sbi.s_hash_seed = e.s_hash_seed.slice();
  sbi.s_def_hash_version = e.s_def_hash_version;
  sbi.s_hash_unsigned = ext4_hash_unsigned(e);
  sbi.s_csum = ext4_csum_ctx(e);
  sbi.s_csum_seed = sbi.s_csum.csum_seed;
  if (sbi.s_inode_size > EXT4_GOOD_OLD_INODE_SIZE) {
    sbi.s_want_extra_isize = Math.max(32, e.s_want_extra_isize);
  }
  const devBlocks = Math.floor(dev.sizeBytes / bs);
  if (sbi.s_blocks_count > devBlocks)
    fail(`bad geometry: block count ${sbi.s_blocks_count} exceeds size of device (${devBlocks} blocks)`);
  if (sbi.s_groups_count > 2 ** 32 || sbi.s_groups_count * sbi.s_desc_size > 64 * 2 ** 20)
    fail(`groups count too large: ${sbi.s_groups_count}`);
  await ext4_group_desc_init(sb, sbi, sbByteOff, fail);
}

/** A view of a bigalloc superblock in cluster units, for the geometry checks. */
function bigalloc_as_clusters(es: ext4_super_block): ext4_super_block {
  const ratio = 2 ** (es.s_log_cluster_size - es.s_log_block_size);
  const blocks = ext4_blocks_count(es);
  const first = Math.floor(es.s_first_data_block / ratio);
  const clusters = Math.ceil((blocks - es.s_first_data_block) / ratio) + first;
  return { ...es, s_blocks_per_group: es.s_clusters_per_group, s_first_data_block: first,
    s_blocks_count_lo: clusters >>> 0, s_blocks_count_hi: Math.floor(clusters / 2 ** 32),
    s_feature_ro_compat: es.s_feature_ro_compat };
}

/**
 * ext4_sb_bread: the bytes of block `blk` (shared: never modify), after checking it against
 * the geometry; blocks replayed from the journal into memory (read-only recovery) come from
 * the overlay before the device. `func`/`ino` name the reader in errors.
 */
export async function ext4_sb_bread(sb: super_block, blk: number, func = 'ext4_sb_bread', ino?: number): Promise<Uint8Array> {
  const sbi = EXT4_SB(sb);
  if (!(Number.isInteger(blk) && blk >= 0 && blk < sbi.s_blocks_count))
    throw ext4_error(sb, func, `invalid block reference ${blk}`, { ino });
  const o = sbi.s_overlay.get(blk);
  if (o) return o;
  return sbi.s_dev.bread(blk);
}

/** Read a block without geometry checks (superblock probing, journal with its own bounds). */
export async function ext4_raw_bread(sb: super_block, blk: number): Promise<Uint8Array> {
  const sbi = EXT4_SB(sb);
  const o = sbi.s_overlay.get(blk);
  if (o) return o;
  return sbi.s_dev.bread(blk);
}

async function ext4_raw_bread_dev(sbi: ext4_sb_info, blk: number): Promise<Uint8Array> {
  return ext4_raw_bread(sbi.sb, blk);
}

/** descriptor_loc: the block holding descriptor block `nr` (meta_bg aware). */
function descriptor_loc(sbi: ext4_sb_info, logicalSbBlock: number, nr: number): number {
  const firstMetaBg = sbi.s_es.s_first_meta_bg;
  if (!sbi.has_incompat(EXT4_FEATURE_INCOMPAT_META_BG) || nr < firstMetaBg) return logicalSbBlock + nr + 1;
  const bg = sbi.s_desc_per_block * nr;
  let hasSuper = ext4_bg_has_super(sbi, bg) ? 1 : 0;
  if (sbi.s_blocksize === 1024 && nr === 0 && sbi.s_first_data_block === 0) hasSuper++;
  return hasSuper + ext4_group_first_block_no(sbi, bg);
}

/** ext4_group_desc_init + ext4_check_descriptors. */
async function ext4_group_desc_init(sb: super_block, sbi: ext4_sb_info, sbByteOff: number, fail: (m: string, e?: number) => never): Promise<void> {
  const bs = sbi.s_blocksize;
  const logicalSbBlock = Math.floor(sbByteOff / bs) === 0 && bs > 1024 ? 0 : Math.floor(sbByteOff / bs);
  const descs = [], locs = [];
  const flex = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_FLEX_BG);
  const rdonly = (sb.s_flags & SB_RDONLY) !== 0;
  for (let nr = 0; nr < sbi.s_gdb_count; nr++) {
    const blk = descriptor_loc(sbi, logicalSbBlock, nr);
    if (blk >= sbi.s_blocks_count) fail(`group descriptors corrupted! (descriptor block ${blk} beyond the filesystem)`, EFSCORRUPTED);
    let buf: Uint8Array;
    try { buf = await ext4_raw_bread(sb, blk); } catch { fail(`can't read group descriptor ${nr}`, EIO); }
    for (let i = 0; i < sbi.s_desc_per_block; i++) {
      const g = nr * sbi.s_desc_per_block + i;
      if (g >= sbi.s_groups_count) break;
      const off = i * sbi.s_desc_size;
      const gd = ext4_group_desc_decode(buf!, off, sbi.s_desc_size);
      // ext4_check_descriptors
      const first = flex ? sbi.s_first_data_block : ext4_group_first_block_no(sbi, g);
      const last = flex ? sbi.s_blocks_count - 1 : Math.min(sbi.s_blocks_count - 1, first + sbi.s_blocks_per_group - 1);
      const bb = ext4_block_bitmap(gd), ib = ext4_inode_bitmap(gd), it = ext4_inode_table(gd);
      if (bb < first || bb > last) fail(`ext4_check_descriptors: Block bitmap for group ${g} not in group (block ${bb})!`, EFSCORRUPTED);
      if (ib < first || ib > last) fail(`ext4_check_descriptors: Inode bitmap for group ${g} not in group (block ${ib})!`, EFSCORRUPTED);
      if (it < first || it + sbi.s_itb_per_group - 1 > last)
        fail(`ext4_check_descriptors: Inode table for group ${g} not in group (block ${it})!`, EFSCORRUPTED);
      if (!ext4_group_desc_csum_verify(sbi.s_csum!, g, buf!, off)) {
        ext4_msg(sb, 'KERN_ERR', `ext4_check_descriptors: Checksum for group ${g} failed`);
        if (!rdonly) fail('group descriptors corrupted!', EFSBADCRC);
      }
      descs.push(gd);
      locs.push({ block: blk, off });
    }
  }
  if (descs.length !== sbi.s_groups_count) fail('group descriptors corrupted!', EFSCORRUPTED);
  sbi.s_group_desc = descs;
  sbi.s_group_desc_loc = locs;
}

/* ---- features ---- */

/** ext4_feature_set_ok + the ext2/ext3 name checks. Returns true if the mount must be read-only. */
function ext4_check_features(sb: super_block, sbi: ext4_sb_info, rdonly: boolean): boolean {
  const es = sbi.s_es;
  const fail = (m: string): never => { ext4_msg(sb, 'KERN_ERR', m); throw err(EINVAL, m); };
  if (sbi.flavour === 'ext2' || sbi.flavour === 'ext3') {
    const u = ext4_unknown_features(es, sbi.flavour);
    const ok = u.incompat === 0 && (sbi.flavour === 'ext2' || (es.s_feature_compat & EXT4_FEATURE_COMPAT_HAS_JOURNAL) !== 0) &&
      (rdonly || u.ro_compat === 0);
    if (!ok) fail(`couldn't mount as ${sbi.flavour} due to feature incompatibilities`);
    ext4_msg(sb, 'KERN_INFO', `mounting ${sbi.flavour} file system using the ext4 subsystem`);
  }
  if (es.s_rev_level === 0 && (es.s_feature_compat || es.s_feature_incompat || es.s_feature_ro_compat))
    ext4_msg(sb, 'KERN_WARNING', 'feature flags set on rev 0 fs, running e2fsck is recommended');
  const badIncompat = (es.s_feature_incompat & ~EXT4_FEATURE_INCOMPAT_SUPP) >>> 0;
  if (badIncompat) fail(`Couldn't mount because of unsupported optional features (${badIncompat.toString(16)})`);
  if (es.s_feature_incompat & EXT4_FEATURE_INCOMPAT_CASEFOLD)
    fail('Filesystem with casefold feature cannot be mounted without CONFIG_UNICODE');
  let forceRo = false;
  if (es.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_READONLY) {
    ext4_msg(sb, 'KERN_INFO', 'filesystem is read-only');
    forceRo = true;
  }
  const badRo = (es.s_feature_ro_compat & ~EXT4_FEATURE_RO_COMPAT_SUPP) >>> 0;
  if (badRo && !rdonly && !forceRo)
    fail(`couldn't mount RDWR because of unsupported optional features (${badRo.toString(16)})`);
  return forceRo;
}

/** ext4_max_size: for extent files (s_maxbytes), in JS numbers. */
export function ext4_max_size(blkbits: number, hugeFiles: boolean): number {
  let upper = Number.MAX_SAFE_INTEGER;
  if (!hugeFiles) upper = Math.floor((2 ** 32 - 1) / 2 ** (blkbits - 9)) * 2 ** blkbits;
  return Math.min((2 ** 32 - 1) * 2 ** blkbits, upper);
}
/** ext4_max_bitmap_size: for block-map files. */
export function ext4_max_bitmap_size(bits: number, hugeFiles: boolean): number {
  const a = 2 ** (bits - 2);
  let meta = 1 + (1 + a) + (1 + a + a * a);
  let res = 12 + a + a * a + a * a * a;
  let upper = hugeFiles ? 2 ** 48 - 1 : 2 ** 32 - 1;
  if (hugeFiles) upper = upper * 2 ** (bits - 9); // counted in fs blocks with HUGE_FILE_FL
  upper = Math.floor(upper / 2 ** (bits - 9));
  if (res + meta > upper) { res = upper - meta; meta = 0; }
  res = Math.min(res * 2 ** bits, Number.MAX_SAFE_INTEGER);
  return Math.min(res, 2 ** 32 * 2 ** bits - 1);
}

/* ---- journal ---- */

async function ext4_journal_dev(sb: super_block, jinode: ext4_inode_info) {
  const sbi = EXT4_SB(sb);
  return {
    blockSize: sbi.s_blocksize,
    nrBlocks: Math.floor(jinode.i_size / sbi.s_blocksize),
    bmap: async (lblk: number) => {
      const m = await ext4_map_blocks(jinode, lblk, 1);
      return m.unwritten ? 0 : m.pblk;
    },
    bread: (pblk: number) => ext4_raw_bread(sb, pblk),
  };
}

/**
 * ext4_load_journal: find the journal, replay it if needed (to disk or into memory).
 * Returns the journal's length in blocks (statfs counts it as overhead).
 */
async function ext4_load_journal(sb: super_block, sbi: ext4_sb_info, wantRw: boolean, sbByteOff: number, silent: boolean): Promise<number> {
  const es = sbi.s_es;
  const needsRecovery = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_RECOVER);
  if (!sbi.has_compat(EXT4_FEATURE_COMPAT_HAS_JOURNAL)) {
    if (needsRecovery) ext4_msg(sb, 'KERN_WARNING', 'needs_recovery set without a journal; ignored');
    return 0;
  }
  if (!es.s_journal_inum) {
    if (needsRecovery && !sbi.test_opt(EXT4_MOUNT_NOLOAD)) {
      ext4_msg(sb, 'KERN_ERR', 'external journal devices are not supported: cannot recover');
      throw err(EINVAL);
    }
    ext4_msg(sb, 'KERN_WARNING', 'external journal devices are not supported; journal not loaded');
    return 0;
  }
  let jinode: ext4_inode_info;
  try {
    jinode = await ext4_iget(sb, es.s_journal_inum, EXT4_IGET_SPECIAL);
  } catch (e) {
    ext4_msg(sb, 'KERN_ERR', 'no journal found');
    throw isErrno(e) ? e : err(EINVAL);
  }
  const jblocks = Math.floor(jinode.i_size / sbi.s_blocksize);
  if ((jinode.i_mode & S_IFMT) !== 0o100000 || jinode.i_nlink === 0) {
    await ext4_iput(jinode);
    ext4_msg(sb, 'KERN_ERR', 'invalid journal inode');
    throw err(EFSCORRUPTED);
  }
  if (sbi.test_opt(EXT4_MOUNT_NOLOAD)) {
    if (needsRecovery && wantRw) {
      await ext4_iput(jinode);
      ext4_msg(sb, 'KERN_ERR', 'required journal recovery suppressed and not mounted read-only');
      throw err(EINVAL);
    }
    if (needsRecovery) ext4_msg(sb, 'KERN_INFO', 'journal recovery suppressed (noload): the filesystem may look inconsistent');
    await ext4_iput(jinode);
    return jblocks;
  }
  let journal: journal_t;
  try {
    journal = await jbd2_journal_init(await ext4_journal_dev(sb, jinode), sb.s_id, printk);
  } catch (e) {
    await ext4_iput(jinode);
    ext4_msg(sb, 'KERN_ERR', 'error loading journal');
    throw isErrno(e) ? e : err(EINVAL);
  }
  sbi.s_journal = journal;
  if (!needsRecovery) { await ext4_iput(jinode); return jblocks; }
  const dev = sbi.s_dev;
  const toDisk = wantRw && !dev.readOnly && !!dev.write;
  if (toDisk) {
    // Fast commits (fsyncs since the last full commit) are not replayed here: replaying the
    // rest to the disk and emptying the log would lose them. Refused before anything is written.
    const fc = await jbd2_fc_pending(journal, await jbd2_journal_scan(journal, printk));
    if (fc !== null) {
      await ext4_iput(jinode);
      ext4_msg(sb, 'KERN_ERR', `the journal holds fast commits (transaction ${fc}) that lkl-ts cannot replay: ` +
        'mount read-only, or replay them with e2fsck -fy (or the Linux kernel) first');
      throw err(EOPNOTSUPP);
    }
    ext4_msg(sb, 'KERN_INFO', 'recovery required: replaying the journal');
  } else {
    ext4_msg(sb, 'KERN_INFO', 'INFO: recovery required on readonly filesystem');
    ext4_msg(sb, 'KERN_INFO', 'replaying the journal into memory only; the device is left unchanged');
  }
  const sink = toDisk
    ? async (blk: number, data: Uint8Array) => {
      if (blk >= sbi.s_blocks_count) { ext4_msg(sb, 'KERN_ERR', `JBD2: replay of block ${blk} beyond the filesystem skipped`); return; }
      await dev.write!(blk, data);
    }
    : async (blk: number, data: Uint8Array) => {
      if (blk >= sbi.s_blocks_count) { ext4_msg(sb, 'KERN_ERR', `JBD2: replay of block ${blk} beyond the filesystem skipped`); return; }
      sbi.s_overlay.set(blk, data);
    };
  try {
    const info = await jbd2_journal_recover(journal, sink, printk);
    ext4_msg(sb, 'KERN_INFO', info.end_transaction === info.start_transaction
      ? 'recovery complete (no committed transaction to replay)'
      : `recovery complete (transactions ${info.start_transaction} to ${(info.end_transaction - 1) >>> 0}, ${info.nr_replays} blocks replayed, ${info.nr_revoke_hits} revoked)`);
  } catch (e) {
    await ext4_iput(jinode);
    printk(KERN_ERR + 'JBD2: recovery failed');
    ext4_msg(sb, 'KERN_ERR', 'error loading journal');
    throw isErrno(e) ? err(e.errno === EFSBADCRC ? EFSBADCRC : EIO) : err(EIO);
  }
  if (toDisk) {
    // Mark the journal empty and the filesystem recovered, on disk.
    await dev.flush?.();
    const jraw = journal.j_sbraw.slice();
    put_be32(jraw, JBD2_SB_OFF.s_start, 0);
    put_be32(jraw, JBD2_SB_OFF.s_sequence, journal.j_transaction_sequence);
    jbd2_superblock_csum_set(journal.j_sb, jraw, 0);
    const jblk0 = await journal.bmap(0);
    const jb = (await ext4_raw_bread(sb, jblk0)).slice();
    jb.set(jraw, 0);
    await dev.write!(jblk0, jb);
    dev.invalidate?.();
    await reread_after_replay(sb, sbi, sbByteOff, silent);
    const sbBuf = (await ext4_raw_bread(sb, sbi.s_sb_block)).slice();
    const o = sbi.s_sb_offset;
    const feat = le32(sbBuf, o + EXT4_SB_OFF.s_feature_incompat) & ~EXT4_FEATURE_INCOMPAT_RECOVER;
    put_le32(sbBuf, o + EXT4_SB_OFF.s_feature_incompat, feat >>> 0);
    if (ext4_has_metadata_csum(sbi.s_es)) ext4_superblock_csum_set(sbBuf, o);
    await dev.write!(sbi.s_sb_block, sbBuf);
    await dev.flush?.();
    dev.invalidate?.();
  }
  await reread_after_replay(sb, sbi, sbByteOff, silent);
  // In memory the filesystem is now recovered.
  sbi.s_es.s_feature_incompat = (sbi.s_es.s_feature_incompat & ~EXT4_FEATURE_INCOMPAT_RECOVER) >>> 0;
  await ext4_iput(jinode);
  return jblocks;
}

/** The replay may have rewritten the superblock and descriptors: read them again. */
async function reread_after_replay(sb: super_block, sbi: ext4_sb_info, sbByteOff: number, silent: boolean): Promise<void> {
  // Cached inodes (the journal inode) were read before the replay; drop them.
  await ext4_load_super(sb, sbi, sbByteOff, silent, false);
}

/* ---- fill_super ---- */

/**
 * ext4_fill_super over an explicit device (unit tests use this with an in-memory device;
 * the registered types call it with the buffer-cache device of sb.s_bdev).
 */
export async function ext4_fill_super_dev(sb: super_block, dev: Ext4Dev, data: string, silent: boolean, flavour: Ext4Flavour): Promise<void> {
  const sbi = new ext4_sb_info(sb);
  sbi.s_dev = dev;
  sbi.flavour = flavour;
  sb.s_fs_info = sbi;
  if (!sb.s_id) sb.s_id = 'vda';
  // The options are parsed twice, as Linux does: first for sb= and ro (needed before the
  // superblock is read), then over the superblock's default mount options.
  const early = ext4_parse_options(sb, new ext4_sb_info(sb), data);
  const sbByteOff = early.sbBlock !== null ? early.sbBlock * 1024 : 1024;
  const wantRw = !(sb.s_flags & SB_RDONLY) && !early.ro;
  if (early.ro) sb.s_flags |= SB_RDONLY;
  await ext4_load_super(sb, sbi, sbByteOff, silent, true);
  ext4_set_def_opts(sbi);
  ext4_parse_options(sb, sbi, data);
  if ((sbi.s_mount_opt & EXT4_MOUNT_DATA_FLAGS) === EXT4_MOUNT_JOURNAL_DATA) {
    ext4_msg(sb, 'KERN_WARNING', 'Warning: mounting with data=journal disables delayed allocation, dioread_nolock, O_DIRECT and fast_commit support!');
    sbi.s_mount_opt &= ~EXT4_MOUNT_DELALLOC;
  }
  if (!sbi.test_opt(EXT4_MOUNT_NO_MBCACHE)) {
    sbi.s_ea_block_cache = mb_cache_create(EXT4_CACHE_BUCKET_BITS);
    if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EA_INODE)) sbi.s_ea_inode_cache = mb_cache_create(EXT4_CACHE_BUCKET_BITS);
  }
  const forceRo = ext4_check_features(sb, sbi, !wantRw);
  sbi.s_mount_state = sbi.s_es.s_state;
  if (sbi.s_es.s_state & EXT4_ERROR_FS) ext4_msg(sb, 'KERN_WARNING', 'warning: mounting fs with errors, running e2fsck is recommended');
  else if (!(sbi.s_es.s_state & EXT4_VALID_FS)) ext4_msg(sb, 'KERN_WARNING', 'warning: mounting unchecked fs, running e2fsck is recommended');
  sb.s_blocksize = sbi.s_blocksize;
  sb.s_blocksize_bits = sbi.s_blocksize_bits;
  sb.s_magic = EXT4_SUPER_MAGIC;
  sb.s_op = ext4_sops;
  sb.s_xattr = [ext4_xattr_user_handler, ext4_xattr_trusted_handler, ext4_xattr_security_handler,
    ext4_posix_acl_access_handler, ext4_posix_acl_default_handler];
  if (sbi.test_opt(EXT4_MOUNT_POSIX_ACL)) sb.s_flags |= SB_POSIXACL; else sb.s_flags &= ~SB_POSIXACL;
  const huge = sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_HUGE_FILE);
  sb.s_maxbytes = sbi.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS)
    ? ext4_max_size(sbi.s_blocksize_bits, huge) : ext4_max_bitmap_size(sbi.s_blocksize_bits, huge);
  if (sbi.s_inode_size > EXT4_GOOD_OLD_INODE_SIZE) {
    sb.s_time_gran = 1;
    sb.s_time_min = -(2 ** 31);
    sb.s_time_max = 2 ** 34 - 1 - 2 ** 31;
  } else {
    sb.s_time_gran = 1e9;
    sb.s_time_min = -(2 ** 31);
    sb.s_time_max = 2 ** 31 - 1;
  }
  const jblocks = await ext4_load_journal(sb, sbi, wantRw, sbByteOff, silent);
  // Read-write only where the write side covers the filesystem's features (ext4_write_support).
  const why = wantRw && !forceRo ? ext4_write_unsupported(sbi) : null;
  if (why) ext4_msg(sb, 'KERN_WARNING', `${why}: mounting read-only`);
  if (wantRw && !forceRo && !why && !dev.readOnly) {
    sbi.s_readonly_driver = false;
    sb.s_flags &= ~SB_RDONLY;
  } else {
    sb.s_flags |= SB_RDONLY;
  }
  ext4_statfs_init(sbi, jblocks);
  if (!(sb.s_flags & SB_RDONLY) && sbi.s_journal) {
    try {
      await ext4_journal_begin_rw(sb);
    } catch (e) {
      ext4_msg(sb, 'KERN_ERR', `cannot start the journal for writing: ${(e as Error).message}`);
      throw isErrno(e) ? e : err(EIO);
    }
  }
  let root: ext4_inode_info;
  try {
    root = await ext4_iget(sb, EXT4_ROOT_INO, EXT4_IGET_SPECIAL);
  } catch (e) {
    ext4_msg(sb, 'KERN_ERR', 'get root inode failed');
    throw e;
  }
  if ((root.i_mode & S_IFMT) !== S_IFDIR || !root.i_blocks && !(root.i_ext4_flags & 0x10000000) || !root.i_size) {
    await ext4_iput(root);
    ext4_msg(sb, 'KERN_ERR', 'get root inode failed');
    ext4_msg(sb, 'KERN_ERR', 'corrupt root inode, run e2fsck');
    throw err(EFSCORRUPTED);
  }
  const orphans = await ext4_orphan_scan(sb, wantRw && !dev.readOnly);
  sb.s_root = makeRoot(root);
  const mode = (sbi.s_mount_opt & EXT4_MOUNT_DATA_FLAGS) === EXT4_MOUNT_JOURNAL_DATA ? 'journalled'
    : (sbi.s_mount_opt & EXT4_MOUNT_DATA_FLAGS) === EXT4_MOUNT_WRITEBACK_DATA ? 'writeback' : 'ordered';
  const rw = sb.s_flags & SB_RDONLY ? 'ro' : 'r/w';
  if (!(sb.s_flags & SB_RDONLY)) await ext4_setup_super(sb);
  await ext4_orphan_cleanup(sb, orphans.chain);
  ext4_msg(sb, 'KERN_INFO', sbi.s_journal
    ? `mounted filesystem ${uuidStr(sbi.s_es.s_uuid)} ${rw} with ${mode} data mode. Quota mode: none.`
    : `mounted filesystem ${uuidStr(sbi.s_es.s_uuid)} ${rw} without journal. Quota mode: none.`);
}

/**
 * Why this filesystem cannot be mounted read-write (yet), or null. The journal's write
 * side is jbd2's issue; bigalloc, quota files and blocks larger than a page are not written
 * by this driver: each mounts read-only with this message.
 */
export function ext4_write_unsupported(sbi: ext4_sb_info): string | null {
  if (sbi.has_compat(EXT4_FEATURE_COMPAT_HAS_JOURNAL)) {
    const why = ext4_journal_write_unsupported(sbi);
    if (why) return why;
  }
  if (sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_BIGALLOC)) return 'writing bigalloc is not supported yet';
  if (sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_QUOTA)) return 'writing with quota is not supported yet';
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_ENCRYPT)) return 'writing encrypted filesystems is not supported';
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_MMP)) return 'multiple mount protection (mmp) is not supported';
  if (sbi.s_blocksize > PAGE_SIZE) return `writing ${sbi.s_blocksize}-byte blocks (larger than a page) is not supported`;
  return null;
}

/** Journal features the write side writes correctly (fast_commit: present, never used). */
const JBD2_WRITE_INCOMPAT = JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT |
  JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_FAST_COMMIT;

/** Why a journalled filesystem cannot be written (the journal is what makes it safe), or null. */
function ext4_journal_write_unsupported(sbi: ext4_sb_info): string | null {
  if (!sbi.s_es.s_journal_inum) return 'writing with an external journal is not supported';
  const j = sbi.s_journal;
  if (!j) return 'writing a journalled filesystem without its journal (noload) is not supported';
  if (!sbi.sb.s_bdev) return 'writing the journal needs a block device';
  if (sbi.s_overlay.size) return 'the journal was replayed into memory only';
  const jsb = j.j_sb;
  if (jsb.s_header.h_blocktype !== JBD2_SUPERBLOCK_V2) return 'writing a version 1 journal is not supported';
  if (jsb.s_blocksize !== sbi.s_blocksize) return 'the journal block size differs from the filesystem\'s';
  const unknown = (jsb.s_feature_compat & ~JBD2_FEATURE_COMPAT_CHECKSUM) || jsb.s_feature_ro_compat ||
    (jsb.s_feature_incompat & ~JBD2_WRITE_INCOMPAT);
  if (unknown) return `the journal has features lkl-ts does not write (compat 0x${jsb.s_feature_compat.toString(16)}, incompat 0x${jsb.s_feature_incompat.toString(16)}, ro_compat 0x${jsb.s_feature_ro_compat.toString(16)})`;
  return null;
}

/** A written block also replaces the copy in the block device's cache, if there is one. */
function bdev_cache_update(bdev: block_device, pblk: number, bs: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; off += bs) {
    const byte = (pblk + off / bs) * bs;
    const p = find_get_page(bdev.bd_inode.i_mapping, Math.floor(byte / PAGE_SIZE));
    if (!p) continue;
    try { p.data.set(data.subarray(off, off + bs), byte % PAGE_SIZE); } finally { put_page(p); }
  }
}

/** What jbd2 needs to write: raw block I/O below the cache, flushes, ordered data. */
function ext4_journal_write_ops(sb: super_block): JournalWriteOps {
  const sbi = EXT4_SB(sb);
  const bdev = sb.s_bdev as block_device;
  const bs = sbi.s_blocksize;
  return {
    fsBlocks: sbi.s_blocks_count,
    commitIntervalNs: sbi.s_commit_interval * 1e9,
    async writeBlocks(pblk: number, data: Uint8Array, log: boolean) {
      await bdev_rw_sectors(bdev, REQ_OP_WRITE, pblk * (bs / 512), data);
      // A cached copy of a journal block (read at mount) must follow; a home block's
      // cached buffer is the live one, newer than or equal to what a checkpoint writes.
      if (log) bdev_cache_update(bdev, pblk, bs, data);
    },
    async readBlock(pblk: number) {
      const buf = new Uint8Array(bs);
      await bdev_rw_sectors(bdev, REQ_OP_READ, pblk * (bs / 512), buf);
      return buf;
    },
    async readBlocks(pblk: number, n: number) {
      const buf = new Uint8Array(n * bs);
      await bdev_rw_sectors(bdev, REQ_OP_READ, pblk * (bs / 512), buf);
      return buf;
    },
    async flush() {
      try { await blkdev_issue_flush(bdev); } catch { /* no cache to flush */ }
    },
    async writeData(jinodes) {
      // data=ordered: the ranges of the transaction's inodes that got blocks, written and
      // waited for (ext4_journal_submit_inode_data_buffers + _finish_). Pages under writeback
      // (started elsewhere) count too: their data must be on the disk.
      for (const ji of jinodes) {
        const inode = ji.i_vfs_inode as inode;
        if (inode.i_state & I_FREEING || !inode.i_mapping.pages.size) continue;
        try { await ext4_normal_submit_inode_data_buffers(inode, ji.i_dirty_start, ji.i_dirty_end); } catch (e) {
          ext4_msg(sb, 'KERN_ERR', `error writing data of inode ${inode.i_ino} before a commit: ${(e as Error).message}`);
        }
      }
    },
    async beforeCommit() {
      if (ext4_journal_abort_on_error(sb)) return;
      for (const inode of [...sb.s_dirty]) {
        if (inode.i_state & I_FREEING || !(inode.i_state & I_DIRTY_INODE)) continue;
        try { await write_inode_now(inode, false); } catch (e) {
          ext4_msg(sb, 'KERN_ERR', `error writing inode ${inode.i_ino} before a commit: ${(e as Error).message}`);
        }
      }
    },
    now() {
      const ms = Date.now();
      return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
    },
    print: (m: string) => printk(m),
  };
}

/**
 * Linux aborts the journal on an error that stops writing (errors=remount-ro, panic): the
 * update that failed half-way is never committed. True if the journal is (now) aborted.
 */
function ext4_journal_abort_on_error(sb: super_block): boolean {
  const sbi = EXT4_SB(sb);
  const j = sbi.s_journal;
  if (!j) return false;
  if (sbi.s_has_errors && (sb.s_flags & SB_RDONLY || sbi.s_shutdown)) jbd2_journal_abort(j, 'filesystem error');
  return j.j_aborted;
}

/**
 * Start writing through the journal (ext4_fill_super's journal part for a read-write
 * mount): the features Linux sets (64bit tags for a 64bit filesystem, checksum v3 with
 * metadata_csum), jbd2_journal_load for writing, then needs_recovery in the superblock
 * before anything is logged, so that a crash is replayed.
 */
async function ext4_journal_begin_rw(sb: super_block): Promise<void> {
  const sbi = EXT4_SB(sb);
  const j = sbi.s_journal!;
  await jbd2_journal_load_rw(j, ext4_journal_write_ops(sb));
  let changed = false;
  if (sbi.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT) && !(j.j_sb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_64BIT)) {
    jbd2_journal_set_features(j, 0, JBD2_FEATURE_INCOMPAT_64BIT);
    changed = true;
  }
  if (ext4_has_metadata_csum(sbi.s_es) && !jbd2_journal_has_csum_v2or3(j.j_sb)) {
    // set_journal_csum_feature_set: v3, and the v1 checksum off.
    j.j_sb.s_feature_compat = (j.j_sb.s_feature_compat & ~JBD2_FEATURE_COMPAT_CHECKSUM) >>> 0;
    jbd2_journal_set_features(j, 0, JBD2_FEATURE_INCOMPAT_CSUM_V3);
    j.j_sb.s_checksum_type = JBD2_CRC32C_CHKSUM;
    j.j_csum_seed = jbd2_csum_seed(j.j_sb);
    changed = true;
  }
  if (changed) await jbd2_write_superblock(j);
  sbi.s_es.s_feature_incompat = (sbi.s_es.s_feature_incompat | EXT4_FEATURE_INCOMPAT_RECOVER) >>> 0;
  await ext4_commit_super(sb, true);
  await sbi.s_dev.flush?.();
}

/**
 * Stop writing through the journal (unmount, remount read-only): commit, checkpoint, the
 * log marked empty, then needs_recovery cleared. If the journal failed, needs_recovery
 * stays so that the log is replayed.
 */
async function ext4_journal_end_rw(sb: super_block): Promise<void> {
  const sbi = EXT4_SB(sb);
  const j = sbi.s_journal;
  if (!j || !j.j_ops) return;
  try {
    await jbd2_journal_destroy(j);
  } catch (e) {
    ext4_msg(sb, 'KERN_ERR', `journal error at unmount: ${(e as Error).message}; needs_recovery left set`);
    return;
  }
  if (j.j_aborted) return;
  sbi.s_es.s_feature_incompat = (sbi.s_es.s_feature_incompat & ~EXT4_FEATURE_INCOMPAT_RECOVER) >>> 0;
}

/**
 * ext4_setup_super: a read-write mount counts itself (s_mnt_count, s_mtime) and, without a
 * journal, clears EXT4_VALID_FS until a clean unmount sets it back, so that a crash leaves
 * the filesystem marked for e2fsck.
 */
async function ext4_setup_super(sb: super_block): Promise<void> {
  const sbi = EXT4_SB(sb);
  const es = sbi.s_es;
  if (es.s_max_mnt_count > 0 && es.s_mnt_count >= es.s_max_mnt_count)
    ext4_msg(sb, 'KERN_WARNING', 'warning: maximal mount count reached, running e2fsck is recommended');
  if (!sbi.s_journal) es.s_state &= ~EXT4_VALID_FS;
  else es.s_feature_incompat = (es.s_feature_incompat | EXT4_FEATURE_INCOMPAT_RECOVER) >>> 0;
  es.s_mnt_count = (es.s_mnt_count + 1) % 0x10000;
  const [lo, hi] = ext4_time_split(Math.floor(Date.now() / 1000));
  es.s_mtime = lo; es.s_mtime_hi = hi;
  await ext4_commit_super(sb, true);
}

function ext4_time_split(sec: number): [number, number] {
  return [sec % 2 ** 32, Math.floor(sec / 2 ** 32) & 0xff];
}

/**
 * ext4_commit_super: the in-memory superblock (with the free counts of the counters, the
 * write time, the error state) into its buffer with its checksum, written at once.
 */
/** ext4_update_super: the in-memory counts and state into the raw superblock, checksummed. */
export function ext4_update_super(sb: super_block): void {
  const sbi = EXT4_SB(sb);
  const es = sbi.s_es;
  ext4_free_blocks_count_set(es, sbi.s_freeclusters_counter * sbi.s_cluster_ratio);
  es.s_free_inodes_count = sbi.s_freeinodes_counter;
  const [lo, hi] = ext4_time_split(Math.floor(Date.now() / 1000));
  es.s_wtime = lo; es.s_wtime_hi = hi;
  if (sbi.s_has_errors) {
    es.s_state |= EXT4_ERROR_FS;
    es.s_error_count = Math.max(es.s_error_count, sbi.s_error_count);
  }
  ext4_super_encode(es, sbi.s_sbraw, 0);
  ext4_superblock_csum_set(sbi.s_sbraw, 0);
}

export async function ext4_commit_super(sb: super_block, sync: boolean): Promise<void> {
  const sbi = EXT4_SB(sb);
  ext4_update_super(sb);
  const bh = await sb_bread(sb, sbi.s_sb_block);
  try {
    bh.b_data.set(sbi.s_sbraw, sbi.s_sb_offset);
    mark_buffer_dirty(bh);
    if (sync) await sync_dirty_buffer(bh);
  } finally { brelse(bh); }
  sbi.s_dirty_super = false;
}

function uuidStr(u: Uint8Array): string {
  const h = [...u].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function makeRoot(inode: inode): dentry { return d_make_root(inode); }

/* ---- super operations ---- */

async function ext4_put_super(sb: super_block): Promise<void> {
  const sbi = EXT4_SB(sb);
  if (sbi.s_ea_block_cache) { mb_cache_destroy(sbi.s_ea_block_cache); sbi.s_ea_block_cache = null; }
  if (sbi.s_ea_inode_cache) { mb_cache_destroy(sbi.s_ea_inode_cache); sbi.s_ea_inode_cache = null; }
  if (sbi.s_journal?.j_ops && (sb.s_flags & SB_RDONLY || sbi.s_readonly_driver)) {
    // Made read-only by an error (errors=remount-ro): the journal stops without committing.
    ext4_journal_abort_on_error(sb);
    await ext4_journal_end_rw(sb).catch(() => {});
  }
  if (sbi.s_ro_by_error && sbi.s_has_errors && !sbi.s_dev.readOnly) {
    // The error state reaches the disk (Linux commits it when the error happens), so that
    // the next fsck is forced; the journal is left as it is, to be replayed.
    await ext4_commit_super(sb, true).catch((e) => ext4_msg(sb, 'KERN_ERR', `unable to record the error state: ${(e as Error).message}`));
  }
  if (!(sb.s_flags & SB_RDONLY) && !sbi.s_readonly_driver) {
    try {
      await ext4_journal_end_rw(sb);
      await ext4_mark_clean(sb);
    } catch (e) {
      ext4_msg(sb, 'KERN_ERR', `unable to write the superblock at unmount: ${(e as Error).message}`);
    }
  }
  sbi.s_overlay.clear();
  sbi.s_journal = null;
}

/** A clean stop of writing (unmount, remount ro): metadata out, the state at mount restored. */
async function ext4_mark_clean(sb: super_block): Promise<void> {
  const sbi = EXT4_SB(sb);
  if (sb.s_bdev) await sync_blockdev(sb.s_bdev);
  if (!sbi.s_journal) sbi.s_es.s_state = (sbi.s_es.s_state & ~EXT4_VALID_FS) | (sbi.s_mount_state & EXT4_VALID_FS);
  await ext4_commit_super(sb, true);
  await sbi.s_dev.flush?.();
}

/** ext4_sync_fs: dirty metadata buffers out, the superblock with its counts, then a cache flush. */
async function ext4_sync_fs(sb: super_block, wait: boolean): Promise<void> {
  const sbi = EXT4_SB(sb);
  if (sb.s_flags & SB_RDONLY || sbi.s_readonly_driver) return;
  const j = sbi.s_journal;
  if (j && j.j_ops) {
    // ext4_sync_fs with a journal: the running transaction is committed (and waited for).
    if (wait) await ext4_force_commit(sb);
    else if (j.j_running_transaction) jbd2_log_start_commit(j, j.j_running_transaction.t_tid);
  }
  await ext4_commit_super(sb, false);
  if (sb.s_bdev) await sync_blockdev(sb.s_bdev);
  if (wait) await sbi.s_dev.flush?.();
}

function ext4_show_options(sb: super_block): string {
  const sbi = EXT4_SB(sb);
  const o: string[] = [sb.s_flags & SB_RDONLY ? 'ro' : 'rw'];
  if (!sbi.test_opt(EXT4_MOUNT_XATTR_USER)) o.push('nouser_xattr');
  if (!sbi.test_opt(EXT4_MOUNT_POSIX_ACL)) o.push('noacl');
  if (sbi.test_opt(EXT4_MOUNT_NOLOAD)) o.push('norecovery');
  const e = sbi.s_mount_opt & EXT4_MOUNT_ERRORS_MASK;
  o.push(e === EXT4_MOUNT_ERRORS_PANIC ? 'errors=panic' : e === EXT4_MOUNT_ERRORS_CONT ? 'errors=continue' : 'errors=remount-ro');
  return o.join(',');
}

export const ext4_sops: super_operations = {
  alloc_inode: (sb) => new ext4_inode_info(sb),
  statfs: ext4_statfs,
  put_super: ext4_put_super,
  sync_fs: ext4_sync_fs,
  write_inode: ext4_write_inode,
  evict_inode: ext4_evict_inode,
  show_options: ext4_show_options,
  async remount_fs(sb, flags, data) {
    const sbi = EXT4_SB(sb);
    const probe = new ext4_sb_info(sb);
    probe.s_es = sbi.s_es;
    ext4_parse_options(sb, probe, data);
    const wasRo = (sb.s_flags & SB_RDONLY) !== 0;
    if (!wasRo && (flags & SB_RDONLY)) {
      await ext4_journal_end_rw(sb);
      await ext4_mark_clean(sb);
      sbi.s_readonly_driver = true;
      return flags;
    }
    if (wasRo && !(flags & SB_RDONLY)) {
      const why = ext4_write_unsupported(sbi) ??
        (sbi.s_overlay.size ? 'the journal was replayed into memory only' : null) ??
        (sbi.s_dev.readOnly ? 'the device is read-only' : null) ??
        (sbi.has_ro_compat(EXT4_FEATURE_RO_COMPAT_READONLY) ? 'the filesystem is marked read-only' : null) ??
        (sbi.has_ro_compat(~EXT4_FEATURE_RO_COMPAT_SUPP >>> 0) ? 'unsupported ro_compat features' : null);
      if (why) {
        ext4_msg(sb, 'KERN_WARNING', `${why}: staying read-only`);
        return flags | SB_RDONLY;
      }
      sbi.s_readonly_driver = false;
      sb.s_flags &= ~SB_RDONLY;
      if (sbi.s_journal) await ext4_journal_begin_rw(sb);
      await ext4_setup_super(sb);
    }
    return flags;
  },
};


/* ---- the device through the buffer cache, and the registered types ---- */

/**
 * An Ext4Dev over sb.s_bdev's buffer cache. Blocks are copied out of their buffers (the
 * cache may reclaim a buffer's page once released). Filesystem blocks larger than a page
 * (64 KiB) are assembled from page-sized buffers.
 */
export function ext4_bdev_dev(sb: super_block): Ext4Dev {
  const bdev = sb.s_bdev!;
  let bs = 1024, sub = 1024;
  return {
    sizeBytes: bdev.bd_nr_sectors * 512,
    readOnly: bdev.bd_read_only,
    async setBlockSize(size: number) {
      sub = Math.min(size, PAGE_SIZE);
      if (!(await sb_set_blocksize(sb, sub))) {
        ext4_msg(sb, 'KERN_ERR', `bad block size ${size}`);
        throw err(EINVAL);
      }
      bs = size;
    },
    async bread(blk: number) {
      const n = bs / sub;
      if (n === 1) {
        const bh = await bread(bdev as Parameters<typeof bread>[0], blk, sub);
        try { return bh.b_data.slice(); } finally { brelse(bh); }
      }
      const out = new Uint8Array(bs);
      for (let i = 0; i < n; i++) {
        const bh = await bread(bdev as Parameters<typeof bread>[0], blk * n + i, sub);
        try { out.set(bh.b_data, i * sub); } finally { brelse(bh); }
      }
      return out;
    },
    async read_range(blk: number, offset: number, out: Uint8Array) {
      const n = bs / sub, i = Math.floor(offset / sub), at = offset - i * sub;
      if (at + out.length > sub) { out.set((await this.bread(blk)).subarray(offset, offset + out.length)); return; }
      const bh = await bread(bdev as Parameters<typeof bread>[0], blk * n + i, sub);
      try { out.set(bh.b_data.subarray(at, at + out.length)); } finally { brelse(bh); }
    },
    async write(blk: number, data: Uint8Array) {
      const n = bs / sub;
      for (let i = 0; i < n; i++) {
        const bh = await getblk(bdev as Parameters<typeof getblk>[0], blk * n + i, sub);
        try {
          bh.b_data.set(data.subarray(i * sub, (i + 1) * sub));
          bh.set(BH_Uptodate);
          mark_buffer_dirty(bh);
          await sync_dirty_buffer(bh);
        } finally { brelse(bh); }
      }
    },
    async flush() {
      await sync_blockdev(bdev);
      try { await blkdev_issue_flush(bdev as Parameters<typeof blkdev_issue_flush>[0]); } catch { /* no cache to flush */ }
    },
    invalidate() { invalidate_bdev(bdev as Parameters<typeof invalidate_bdev>[0]); },
  };
}

function fsType(name: Ext4Flavour): file_system_type {
  return {
    name,
    fs_flags: FS_REQUIRES_DEV,
    fill_super: (sb, data, silent) => ext4_fill_super_dev(sb, ext4_bdev_dev(sb), data, silent, name),
  };
}
export const ext4_fs_type = fsType('ext4');
export const ext3_fs_type = fsType('ext3');
export const ext2_fs_type = fsType('ext2');
register_filesystem(ext4_fs_type);
register_filesystem(ext3_fs_type);
register_filesystem(ext2_fs_type);
