/*
 * The VFS objects and operation tables (include/linux/fs.h, dcache.h, mount.h, xattr.h):
 * the contract between the VFS core (lib/kernel/fs/*.ts) and every filesystem
 * (lib/kernel/fs/<name>/). Shapes and names follow Linux; Documentation/filesystems/vfs.rst
 * describes the semantics, and deviations are noted here.
 *
 * Conventions for every operation:
 * - Operations are async and may sleep. Errors are thrown as Errno (include/errno.ts).
 * - Names are byte strings (lib/bstr.ts); `dentry.d_name` has no '/' and no NUL.
 * - Kernel code awaits each async call before making the next one (never Promise.all):
 *   a kernel thread is one flow of control that sleeps at each await.
 * - Locking as in Linux: the VFS holds the parent directory's i_rwsem (write) around
 *   create/link/unlink/mkdir/rmdir/mknod/symlink/rename, the inode's for setattr and
 *   write; the filesystem does not take them again.
 */
import type { timespec64, statfs } from './uapi.js';
import type { page } from '../mm/page_alloc.js';
import type { block_device } from './blk.js';
import { rw_semaphore, mutex } from '../kernel/wait.js';
import { ACL_NOT_CACHED, type cached_acl, type posix_acl } from './posix_acl.js';

/* superblock flags (SB_*, same bits as MS_*) */
export const SB_RDONLY = 1, SB_NOSUID = 2, SB_NODEV = 4, SB_NOEXEC = 8, SB_SYNCHRONOUS = 16,
  SB_MANDLOCK = 64, SB_DIRSYNC = 128, SB_NOATIME = 1024, SB_NODIRATIME = 2048, SB_SILENT = 32768,
  SB_POSIXACL = 1 << 16, SB_LAZYTIME = 1 << 25, SB_ACTIVE = 1 << 30;
/* per-mount flags (MNT_*) */
export const MNT_NOSUID = 0x01, MNT_NODEV = 0x02, MNT_NOEXEC = 0x04, MNT_NOATIME = 0x08,
  MNT_NODIRATIME = 0x10, MNT_RELATIME = 0x20, MNT_READONLY = 0x40;
/* inode state (I_*) */
export const I_NEW = 1 << 0, I_DIRTY_SYNC = 1 << 1, I_DIRTY_DATASYNC = 1 << 2, I_DIRTY_PAGES = 1 << 3,
  I_FREEING = 1 << 4, I_WILL_FREE = 1 << 5, I_CLEAR = 1 << 6;
export const I_DIRTY_INODE = I_DIRTY_SYNC | I_DIRTY_DATASYNC;
export const I_DIRTY = I_DIRTY_INODE | I_DIRTY_PAGES;
/* setattr ia_valid bits (ATTR_*) */
export const ATTR_MODE = 1, ATTR_UID = 2, ATTR_GID = 4, ATTR_SIZE = 8, ATTR_ATIME = 16,
  ATTR_MTIME = 32, ATTR_CTIME = 64, ATTR_ATIME_SET = 128, ATTR_MTIME_SET = 256, ATTR_FORCE = 512,
  ATTR_KILL_SUID = 2048, ATTR_KILL_SGID = 4096, ATTR_FILE = 8192, ATTR_OPEN = 32768, ATTR_TIMES_SET = 65536;
/* fmode_t */
export const FMODE_READ = 1, FMODE_WRITE = 2, FMODE_LSEEK = 4, FMODE_PREAD = 8, FMODE_PWRITE = 16,
  FMODE_EXEC = 32, FMODE_PATH = 1 << 14;
/* lookup flags */
export const LOOKUP_FOLLOW = 1, LOOKUP_DIRECTORY = 2, LOOKUP_CREATE = 0x200, LOOKUP_EXCL = 0x400,
  LOOKUP_RENAME_TARGET = 0x800;
/* may_* for permission() */
export const MAY_EXEC = 1, MAY_WRITE = 2, MAY_READ = 4, MAY_APPEND = 8, MAY_ACCESS = 16, MAY_OPEN = 32,
  MAY_NOT_BLOCK = 128;
/* in-core inode flags (i_flags: S_* of include/linux/fs.h) */
export const S_SYNC = 1, S_NOATIME = 2, S_APPEND = 4, S_IMMUTABLE = 8, S_DEAD = 16, S_DIRSYNC = 64,
  S_DAX = 8192, S_ENCRYPTED = 16384, S_CASEFOLD = 32768, S_VERITY = 65536;
/* file system type flags */
export const FS_REQUIRES_DEV = 1;

/** Credentials of the task performing an operation (include/linux/cred.h). */
export interface cred {
  uid: number; gid: number; suid: number; sgid: number; euid: number; egid: number;
  fsuid: number; fsgid: number; groups: number[];
  /** Capabilities (CAP_* bit numbers) that are in effect: root has them all. */
  cap_effective: Set<number>;
}
export const CAP_CHOWN = 0, CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2, CAP_FOWNER = 3,
  CAP_FSETID = 4, CAP_SETGID = 6, CAP_SETUID = 7, CAP_LINUX_IMMUTABLE = 9, CAP_SYS_CHROOT = 18,
  CAP_SYS_ADMIN = 21, CAP_SYS_BOOT = 22, CAP_SYS_RESOURCE = 24, CAP_SYS_TIME = 25, CAP_MKNOD = 27;

export interface iattr {
  ia_valid: number; ia_mode?: number; ia_uid?: number; ia_gid?: number; ia_size?: number;
  ia_atime?: timespec64; ia_mtime?: timespec64; ia_ctime?: timespec64; ia_file?: file;
}

/** What getattr fills (struct kstat); the VFS turns it into stat/statx. */
export interface kstat {
  result_mask: number; mode: number; nlink: number; uid: number; gid: number; rdev: number;
  dev: number; ino: number; size: number; blksize: number; blocks: number;
  atime: timespec64; mtime: timespec64; ctime: timespec64; btime?: timespec64; attributes: number;
}

export interface file_system_type {
  readonly name: string;
  readonly fs_flags: number;
  /**
   * Fill a new superblock (fill_super): read and validate the on-disk super, set s_op,
   * s_blocksize, s_maxbytes, s_magic, s_time_gran, s_xattr, s_fs_info, and s_root
   * (from d_make_root(iget(root))). `sb.s_bdev` is set for FS_REQUIRES_DEV types. On
   * failure throw (EINVAL for "not this filesystem"/bad options, EUCLEAN for corruption,
   * EIO for I/O errors) after printing one clear kernel message.
   */
  fill_super(sb: super_block, data: string, silent: boolean): Promise<void>;
  /** Optional extra teardown after the VFS has evicted inodes and called put_super. */
  kill_sb?(sb: super_block): Promise<void>;
}

export interface super_operations {
  /** Allocate the fs-specific inode object (an inode subclass); default: new inode(sb). */
  alloc_inode?(sb: super_block): inode;
  destroy_inode?(inode: inode): void;
  /** Mark inode dirty (called after the VFS changed fields). */
  dirty_inode?(inode: inode, flags: number): Promise<void>;
  /** Write the in-core inode to its on-disk copy (sync = wait for I/O). */
  write_inode?(inode: inode, sync: boolean): Promise<void>;
  /** Last reference dropped: return true to evict now (e.g. nlink 0), false to cache. */
  drop_inode?(inode: inode): boolean;
  /** Release on-disk/in-core resources of an inode leaving the cache (truncate+free if nlink 0). */
  evict_inode?(inode: inode): Promise<void>;
  put_super?(sb: super_block): Promise<void>;
  sync_fs?(sb: super_block, wait: boolean): Promise<void>;
  freeze_fs?(sb: super_block): Promise<void>;
  statfs(dentry: dentry): Promise<statfs>;
  remount_fs?(sb: super_block, flags: number, data: string): Promise<number>;
  show_options?(sb: super_block): string;
}

export interface inode_operations {
  /** Find `dentry.d_name` in dir: return the inode, or null for a negative entry. */
  lookup?(dir: inode, dentry: dentry, flags: number): Promise<inode | null>;
  create?(dir: inode, dentry: dentry, mode: number, excl: boolean): Promise<void>;
  link?(oldDentry: dentry, dir: inode, dentry: dentry): Promise<void>;
  unlink?(dir: inode, dentry: dentry): Promise<void>;
  symlink?(dir: inode, dentry: dentry, target: string): Promise<void>;
  mkdir?(dir: inode, dentry: dentry, mode: number): Promise<void>;
  rmdir?(dir: inode, dentry: dentry): Promise<void>;
  mknod?(dir: inode, dentry: dentry, mode: number, rdev: number): Promise<void>;
  rename?(oldDir: inode, oldDentry: dentry, newDir: inode, newDentry: dentry, flags: number): Promise<void>;
  /** Symlink target as a byte string. */
  get_link?(dentry: dentry | null, inode: inode): Promise<string>;
  permission?(inode: inode, mask: number): Promise<void>;
  setattr?(dentry: dentry, attr: iattr): Promise<void>;
  getattr?(dentry: dentry, stat: kstat, requestMask: number, flags: number): Promise<void>;
  listxattr?(dentry: dentry): Promise<string[]>;
  update_time?(inode: inode, flags: number): Promise<void>;
  tmpfile?(dir: inode, dentry: dentry, mode: number): Promise<void>;
  /** The inode's ACL of this type (ACL_TYPE_ACCESS/DEFAULT) from the filesystem, null if none (get_acl loads and caches it). */
  get_inode_acl?(inode: inode, type: number): Promise<posix_acl | null>;
  /** Store (null: remove) the ACL of this type; the filesystem updates i_mode and the cache (set_cached_acl). */
  set_acl?(dentry: dentry, acl: posix_acl | null, type: number): Promise<void>;
  /** FS_IOC_GETFLAGS / FS_IOC_FSGETXATTR: fill `fa` (fileattr_fill_flags). */
  fileattr_get?(dentry: dentry, fa: fileattr): Promise<void>;
  /** FS_IOC_SETFLAGS / FS_IOC_FSSETXATTR, after vfs_fileattr_set's checks, with i_rwsem held. */
  fileattr_set?(dentry: dentry, fa: fileattr): Promise<void>;
}

/**
 * struct fileattr (include/linux/fileattr.h): the inode flags of FS_IOC_GETFLAGS (`flags`,
 * FS_*_FL) and of FS_IOC_FSGETXATTR (fsx_*), both filled, with which one the caller gave.
 */
export interface fileattr {
  flags: number;
  fsx_xflags: number; fsx_extsize: number; fsx_nextents: number; fsx_projid: number; fsx_cowextsize: number;
  flags_valid: boolean;
  fsx_valid: boolean;
}

/** What ioctl(2)'s third argument is here: a buffer the call reads or fills in place (C's pointer), or a number. */
export type IoctlArg = Uint8Array | number;

/** Passed to iterate_shared: the fs emits entries from `pos` on and advances `pos`. */
export interface dir_context {
  pos: number;
  /** dir_emit: false means "buffer full, stop" (the entry was NOT consumed: keep pos at it). */
  emit(name: string, ino: number, dtype: number): boolean;
}

export interface file_operations {
  llseek?(file: file, offset: number, whence: number): Promise<number>;
  /** read_iter: read into buf at pos; return bytes read (0 at EOF). */
  read?(file: file, buf: Uint8Array, pos: number): Promise<number>;
  /** write_iter: write buf at pos (the VFS resolves O_APPEND first); return bytes written. */
  write?(file: file, buf: Uint8Array, pos: number): Promise<number>;
  iterate_shared?(file: file, ctx: dir_context): Promise<void>;
  open?(inode: inode, file: file): Promise<void>;
  flush?(file: file): Promise<void>;
  release?(inode: inode, file: file): Promise<void>;
  fsync?(file: file, start: number, end: number, datasync: boolean): Promise<void>;
  fallocate?(file: file, mode: number, offset: number, len: number): Promise<void>;
  /** ioctl requests the VFS does not handle itself; unknown ones throw ENOTTY (or ENOIOCTLCMD). */
  unlocked_ioctl?(file: file, cmd: number, arg: IoctlArg): Promise<number>;
}

export interface writeback_control {
  /** WB_SYNC_ALL waits for every page; WB_SYNC_NONE is background writeback. */
  sync_mode: 'none' | 'all';
  nr_to_write: number;
  range_start: number;
  range_end: number;
  for_reclaim?: boolean;
}

export interface address_space_operations {
  /**
   * read_folio: called with the page locked and not uptodate. Start reading it; when the
   * data is in, set PG_uptodate (or PG_error) and unlock the page — possibly later, from
   * I/O completion. Returning does not mean the read is done: callers wait on the page lock.
   */
  readpage(file: file | null, page: page): Promise<void>;
  /** Optional batch read-ahead of locked, not-uptodate pages (same contract per page). */
  readahead?(mapping: address_space, pages: page[]): Promise<void>;
  /**
   * writepage: called with the page locked, its dirty bit already cleared for I/O. Set
   * PG_writeback, unlock, submit; end writeback at I/O completion (end_page_writeback).
   */
  writepage?(page: page, wbc: writeback_control): Promise<void>;
  writepages?(mapping: address_space, wbc: writeback_control): Promise<void>;
  /** Prepare the page covering [pos, pos+len) for a write: return it locked (read first if partial). */
  write_begin?(file: file | null, mapping: address_space, pos: number, len: number): Promise<page>;
  /** After `copied` bytes went into the page: mark dirty, update i_size, unlock. Return copied. */
  write_end?(file: file | null, mapping: address_space, pos: number, len: number, copied: number, page: page): Promise<number>;
  /** Drop fs-private state of a page leaving the cache (buffer heads). */
  invalidate_folio?(page: page, offset: number, length: number): void;
  /** May this clean page be freed? (false if buffers are busy) */
  release_folio?(page: page): boolean;
  bmap?(mapping: address_space, block: number): Promise<number>;
}

/**
 * What an empty d_subdirs or pages map reads as until its first entry: most dentries never
 * have children and most cached inodes no pages, and a Map each is ~250 bytes (a walk of a
 * large tree holds tens of thousands). Adding goes through d_subdirs_rw / pages_rw.
 */
class EmptyMap<K, V> extends Map<K, V> {
  override set(): this { throw new Error('BUG: an entry added to the shared empty map'); }
}
const NO_PAGES: Map<number, page> = new EmptyMap();
const NO_SUBDIRS: Map<string, dentry> = new EmptyMap();

/** struct address_space: the page cache of one inode (or block device). */
export class address_space {
  private _pages: Map<number, page> | null = null;
  /** The cached pages by index (read-only view while there are none: see pages_rw). */
  get pages(): Map<number, page> { return this._pages ?? NO_PAGES; }
  /** `pages`, made on first use, for adding a page (add_to_page_cache). */
  get pages_rw(): Map<number, page> { return (this._pages ??= new Map()); }
  a_ops: address_space_operations | null = null;
  /** Number of dirty pages (kept by set/clear dirty helpers). */
  nrdirty = 0;
  private _wb_err = 0;
  /**
   * errseq_t's sequence: advanced each time a writeback error is recorded, so that every
   * open file reports it once at its next fsync (file_check_and_advance_wb_err).
   */
  wb_err_seq = 0;
  /** Errors from asynchronous writeback, reported at the next fsync (AS_EIO); setting one is mapping_set_error. */
  get wb_err(): number { return this._wb_err; }
  set wb_err(v: number) { if (v) this.wb_err_seq++; this._wb_err = v; }
  /** Serializes writeback of this mapping. */
  readonly wb_lock = new mutex('wb_lock');
  /** Private list of buffers dirtied for this inode's metadata (mark_buffer_dirty_inode). */
  private_list: unknown[] = [];
  constructor(public readonly host: inode) {}
}

/** What an inode has until its filesystem sets i_op / i_fop, and O_PATH files' f_op: nothing. */
export const no_inode_operations: inode_operations = Object.freeze({});
export const empty_fops: file_operations = Object.freeze({});

let nextInodeSeq = 1;
export class inode {
  i_ino = 0;
  i_mode = 0;
  i_uid = 0;
  i_gid = 0;
  i_nlink = 0;
  i_rdev = 0;
  i_size = 0;
  /** 512-byte sectors allocated. */
  i_blocks = 0;
  i_blkbits = 12;
  i_atime: timespec64 = { sec: 0, nsec: 0 };
  i_mtime: timespec64 = { sec: 0, nsec: 0 };
  i_ctime: timespec64 = { sec: 0, nsec: 0 };
  /** Creation time where the filesystem has one (statx btime). */
  i_btime: timespec64 | null = null;
  i_generation = 0;
  i_flags = 0;
  i_state = 0;
  /** In-core references (iget/iput). */
  i_count = 1;
  i_op: inode_operations = no_inode_operations;
  i_fop: file_operations = empty_fops;
  readonly i_mapping: address_space;
  readonly i_rwsem = new rw_semaphore('i_rwsem');
  /** Cached symlink target (fast symlinks), byte string. */
  i_link: string | null = null;
  /** Open file count for writing (i_writecount) and overall (for orphan handling). */
  i_writecount = 0;
  i_opencount = 0;
  /** Device inodes: the block device (for /dev/vdX nodes). */
  i_bdev: block_device | null = null;
  i_private: unknown = null;
  /** Cached POSIX ACLs (fs/posix_acl.ts): ACL_NOT_CACHED until read, null for none. */
  i_acl: cached_acl = ACL_NOT_CACHED;
  i_default_acl: cached_acl = ACL_NOT_CACHED;
  /** Unique in-process id (debugging, Map keys independent of ino reuse). */
  readonly seq = nextInodeSeq++;
  constructor(public readonly i_sb: super_block) { this.i_mapping = new address_space(this); }
}

let nextDentrySeq = 1;
export class dentry {
  d_inode: inode | null = null;
  d_parent: dentry;
  private _subdirs: Map<string, dentry> | null = null;
  /** Children in the dcache, by name (positive and negative); read-only while there are none. */
  get d_subdirs(): Map<string, dentry> { return this._subdirs ?? NO_SUBDIRS; }
  /** `d_subdirs`, made on first use, for adding a child. */
  get d_subdirs_rw(): Map<string, dentry> { return (this._subdirs ??= new Map()); }
  d_count = 1;
  /** A vfsmount is mounted on this dentry (count of mounts). */
  d_mounted = 0;
  d_flags = 0;
  /** Filesystem-private data (e.g. vfat's directory position). */
  d_fsdata: unknown = null;
  /** Unhashed (deleted or invalidated): lookups no longer find it. */
  d_unhashed = false;
  readonly seq = nextDentrySeq++;
  constructor(public d_name: string, parent: dentry | null, public readonly d_sb: super_block) {
    this.d_parent = parent ?? this;
  }
  get isRoot(): boolean { return this.d_parent === this; }
}

export class vfsmount {
  mnt_flags = 0;
  mnt_parent: vfsmount;
  mnt_mountpoint: dentry;
  readonly mnt_children = new Set<vfsmount>();
  mnt_count = 1;
  /** Device name as given to mount (for /proc/mounts-like reporting). */
  mnt_devname = '';
  constructor(public readonly mnt_root: dentry, public readonly mnt_sb: super_block, parent: vfsmount | null, mountpoint: dentry | null) {
    this.mnt_parent = parent ?? this;
    this.mnt_mountpoint = mountpoint ?? mnt_root;
  }
}

export interface path { mnt: vfsmount; dentry: dentry }

export class file {
  f_pos = 0;
  f_flags = 0;
  f_mode = 0;
  f_count = 1;
  f_op: file_operations;
  readonly f_pos_lock = new mutex('f_pos_lock');
  private_data: unknown = null;
  /** The mapping's write-back error sequence this file has seen (errseq_sample at open). */
  f_wb_err = 0;
  constructor(public readonly f_path: path, public readonly f_inode: inode, fop: file_operations) {
    this.f_op = fop;
    this.f_wb_err = f_inode?.i_mapping?.wb_err_seq ?? 0;
  }
}

export interface xattr_handler {
  /** Full name of a single attribute (system.posix_acl_access) or a prefix (user.). */
  name?: string;
  prefix?: string;
  /** Is this namespace visible to listxattr for this dentry? */
  list?(dentry: dentry): boolean;
  /** name is the part after the prefix. Return the value or throw ENODATA. */
  get(dentry: dentry | null, inode: inode, name: string): Promise<Uint8Array>;
  /** value null = remove. flags: XATTR_CREATE / XATTR_REPLACE. */
  set?(dentry: dentry | null, inode: inode, name: string, value: Uint8Array | null, flags: number): Promise<void>;
}

/** dentry_operations, per superblock (Linux keeps them in sb->s_d_op for new dentries). */
export interface dentry_operations {
  /**
   * d_revalidate: may this cached dentry be used for a lookup with these LOOKUP_* flags?
   * false makes the VFS drop it and ask the filesystem again (vfat uses this so that a
   * rename target that differs only in case is looked up afresh).
   */
  d_revalidate?(dentry: dentry, flags: number): boolean;
}

let nextDev = 1;
export class super_block {
  /** Device number (st_dev). */
  s_dev: number;
  s_blocksize = 4096;
  s_blocksize_bits = 12;
  s_maxbytes = Number.MAX_SAFE_INTEGER;
  s_magic = 0;
  s_flags = 0;
  s_op!: super_operations;
  s_xattr: xattr_handler[] = [];
  s_d_op: dentry_operations | null = null;
  s_root: dentry | null = null;
  s_bdev: block_device | null = null;
  s_fs_info: unknown = null;
  /** Timestamp granularity in ns (1 = ns; vfat: 2e9 for mtime is handled by the fs). */
  s_time_gran = 1;
  s_time_min = -(2 ** 31);
  s_time_max = 2 ** 31 - 1;
  /** Identifier for messages ("vda1", "ramfs"). */
  s_id = '';
  /** Inode cache of this superblock, by inode number. */
  readonly s_inodes = new Map<number, inode>();
  /** Inodes with I_DIRTY set (writeback list). */
  readonly s_dirty = new Set<inode>();
  readonly s_umount = new rw_semaphore('s_umount');
  /** Number of vfsmounts using this superblock. */
  s_active = 0;
  /** Maximum links to an inode (0 = no VFS-enforced limit; link/mkdir give EMLINK beyond). */
  s_max_links = 0;
  constructor(public readonly s_type: file_system_type) { this.s_dev = nextDev++; }
}

/** The filesystem identity one system call runs with. */
export interface FsCredOverride { fsuid: number; fsgid: number; groups: number[] }
