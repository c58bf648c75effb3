/*
 * The Linux user-space ABI as lkl-ts exposes it: errno values, open flags, AT_* flags, mode
 * bits, mount flags and the structures system calls fill in. Values are asm-generic's (the
 * ones x86-64 and LKL use), so numbers read here mean what they mean in <linux/*.h>.
 * Pure data: imported by the kernel, the public API and the applications alike.
 */

/* include/uapi/asm-generic/errno-base.h and errno.h */
export const EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7,
  ENOEXEC = 8, EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14,
  ENOTBLK = 15, EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20, EISDIR = 21,
  EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, ETXTBSY = 26, EFBIG = 27, ENOSPC = 28,
  ESPIPE = 29, EROFS = 30, EMLINK = 31, EPIPE = 32, EDOM = 33, ERANGE = 34, EDEADLK = 35,
  ENAMETOOLONG = 36, ENOLCK = 37, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENOMSG = 42,
  ENODATA = 61, ETIME = 62, EOVERFLOW = 75, EBADFD = 77, EUCLEAN = 117, EOPNOTSUPP = 95,
  ETIMEDOUT = 110, ESTALE = 116, EDQUOT = 122, ECANCELED = 125;
/* fs/ext4/ext4.h: how ext4 reports corruption and bad checksums at a system call */
export const EFSCORRUPTED = EUCLEAN, EFSBADCRC = 74 /* EBADMSG */;
export const EBADMSG = 74;
export const ENOATTR = ENODATA;

const errnoNames: Record<number, [string, string]> = {
  [EPERM]: ['EPERM', 'Operation not permitted'],
  [ENOENT]: ['ENOENT', 'No such file or directory'],
  [ESRCH]: ['ESRCH', 'No such process'],
  [EINTR]: ['EINTR', 'Interrupted system call'],
  [EIO]: ['EIO', 'Input/output error'],
  [ENXIO]: ['ENXIO', 'No such device or address'],
  [E2BIG]: ['E2BIG', 'Argument list too long'],
  [EBADF]: ['EBADF', 'Bad file descriptor'],
  [EAGAIN]: ['EAGAIN', 'Resource temporarily unavailable'],
  [ENOMEM]: ['ENOMEM', 'Cannot allocate memory'],
  [EACCES]: ['EACCES', 'Permission denied'],
  [EFAULT]: ['EFAULT', 'Bad address'],
  [ENOTBLK]: ['ENOTBLK', 'Block device required'],
  [EBUSY]: ['EBUSY', 'Device or resource busy'],
  [EEXIST]: ['EEXIST', 'File exists'],
  [EXDEV]: ['EXDEV', 'Invalid cross-device link'],
  [ENODEV]: ['ENODEV', 'No such device'],
  [ENOTDIR]: ['ENOTDIR', 'Not a directory'],
  [EISDIR]: ['EISDIR', 'Is a directory'],
  [EINVAL]: ['EINVAL', 'Invalid argument'],
  [ENFILE]: ['ENFILE', 'Too many open files in system'],
  [EMFILE]: ['EMFILE', 'Too many open files'],
  [ENOTTY]: ['ENOTTY', 'Inappropriate ioctl for device'],
  [ETXTBSY]: ['ETXTBSY', 'Text file busy'],
  [EFBIG]: ['EFBIG', 'File too large'],
  [ENOSPC]: ['ENOSPC', 'No space left on device'],
  [ESPIPE]: ['ESPIPE', 'Illegal seek'],
  [EROFS]: ['EROFS', 'Read-only file system'],
  [EMLINK]: ['EMLINK', 'Too many links'],
  [EPIPE]: ['EPIPE', 'Broken pipe'],
  [ERANGE]: ['ERANGE', 'Numerical result out of range'],
  [EDEADLK]: ['EDEADLK', 'Resource deadlock avoided'],
  [ENAMETOOLONG]: ['ENAMETOOLONG', 'File name too long'],
  [ENOLCK]: ['ENOLCK', 'No locks available'],
  [ENOSYS]: ['ENOSYS', 'Function not implemented'],
  [ENOTEMPTY]: ['ENOTEMPTY', 'Directory not empty'],
  [ELOOP]: ['ELOOP', 'Too many levels of symbolic links'],
  [ENODATA]: ['ENODATA', 'No data available'],
  [EBADMSG]: ['EBADMSG', 'Bad message'],
  [EOVERFLOW]: ['EOVERFLOW', 'Value too large for defined data type'],
  [EOPNOTSUPP]: ['EOPNOTSUPP', 'Operation not supported'],
  [ETIMEDOUT]: ['ETIMEDOUT', 'Connection timed out'],
  [ESTALE]: ['ESTALE', 'Stale file handle'],
  [EUCLEAN]: ['EUCLEAN', 'Structure needs cleaning'],
  [EDQUOT]: ['EDQUOT', 'Disk quota exceeded'],
};
/** strerror(3) for a positive or negative errno. */
export function strerror(err: number): string {
  const e = errnoNames[Math.abs(err)];
  return e ? e[1] : `Unknown error ${Math.abs(err)}`;
}
/** The symbolic name ("ENOENT") of a positive or negative errno. */
export function errnoName(err: number): string {
  const e = errnoNames[Math.abs(err)];
  return e ? e[0] : `E${Math.abs(err)}`;
}

/* include/uapi/asm-generic/fcntl.h (octal, as in the header) */
export const O_ACCMODE = 0o3, O_RDONLY = 0o0, O_WRONLY = 0o1, O_RDWR = 0o2,
  O_CREAT = 0o100, O_EXCL = 0o200, O_NOCTTY = 0o400, O_TRUNC = 0o1000, O_APPEND = 0o2000,
  O_NONBLOCK = 0o4000, O_DSYNC = 0o10000, O_DIRECT = 0o40000, O_LARGEFILE = 0o100000,
  O_DIRECTORY = 0o200000, O_NOFOLLOW = 0o400000, O_NOATIME = 0o1000000, O_CLOEXEC = 0o2000000,
  O_SYNC = 0o4010000, O_PATH = 0o10000000, O_TMPFILE = 0o20200000;
export const F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4,
  F_DUPFD_CLOEXEC = 1030, FD_CLOEXEC = 1;
/* include/uapi/linux/fcntl.h */
export const AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200,
  AT_SYMLINK_FOLLOW = 0x400, AT_NO_AUTOMOUNT = 0x800, AT_EMPTY_PATH = 0x1000,
  AT_EACCESS = 0x200, AT_STATX_SYNC_AS_STAT = 0;
export const RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2, RENAME_WHITEOUT = 4;
export const SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2, SEEK_DATA = 3, SEEK_HOLE = 4;
export const F_OK = 0, X_OK = 1, W_OK = 2, R_OK = 4;
/* include/uapi/linux/falloc.h */
export const FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02,
  FALLOC_FL_COLLAPSE_RANGE = 0x08, FALLOC_FL_ZERO_RANGE = 0x10, FALLOC_FL_INSERT_RANGE = 0x20;
/* include/uapi/linux/stat.h */
export const S_IFMT = 0o170000, S_IFSOCK = 0o140000, S_IFLNK = 0o120000, S_IFREG = 0o100000,
  S_IFBLK = 0o060000, S_IFDIR = 0o040000, S_IFCHR = 0o020000, S_IFIFO = 0o010000,
  S_ISUID = 0o4000, S_ISGID = 0o2000, S_ISVTX = 0o1000, S_IRWXU = 0o700, S_IRUSR = 0o400,
  S_IWUSR = 0o200, S_IXUSR = 0o100, S_IRWXG = 0o70, S_IRGRP = 0o40, S_IWGRP = 0o20, S_IXGRP = 0o10,
  S_IRWXO = 0o7, S_IROTH = 0o4, S_IWOTH = 0o2, S_IXOTH = 0o1, S_IALLUGO = 0o7777;
export const S_ISREG = (m: number) => (m & S_IFMT) === S_IFREG;
export const S_ISDIR = (m: number) => (m & S_IFMT) === S_IFDIR;
export const S_ISLNK = (m: number) => (m & S_IFMT) === S_IFLNK;
export const S_ISCHR = (m: number) => (m & S_IFMT) === S_IFCHR;
export const S_ISBLK = (m: number) => (m & S_IFMT) === S_IFBLK;
export const S_ISFIFO = (m: number) => (m & S_IFMT) === S_IFIFO;
export const S_ISSOCK = (m: number) => (m & S_IFMT) === S_IFSOCK;
/* d_type values in struct linux_dirent64 */
export const DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8,
  DT_LNK = 10, DT_SOCK = 12;
export const dt_from_mode = (m: number) => (m & S_IFMT) >>> 12;
/* statx mask bits */
export const STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_NLINK = 0x4, STATX_UID = 0x8,
  STATX_GID = 0x10, STATX_ATIME = 0x20, STATX_MTIME = 0x40, STATX_CTIME = 0x80, STATX_INO = 0x100,
  STATX_SIZE = 0x200, STATX_BLOCKS = 0x400, STATX_BASIC_STATS = 0x7ff, STATX_BTIME = 0x800;
/* include/uapi/linux/stat.h UTIME_* for utimensat */
export const UTIME_NOW = (1 << 30) - 1, UTIME_OMIT = (1 << 30) - 2;
/* include/uapi/linux/xattr.h */
export const XATTR_CREATE = 1, XATTR_REPLACE = 2;
export const XATTR_NAME_MAX = 255, XATTR_SIZE_MAX = 65536, XATTR_LIST_MAX = 65536;
export const NAME_MAX = 255, PATH_MAX = 4096, MAXSYMLINKS = 40;
/* include/uapi/linux/mount.h: mount(2) flags */
export const MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_SYNCHRONOUS = 16,
  MS_REMOUNT = 32, MS_MANDLOCK = 64, MS_DIRSYNC = 128, MS_NOSYMFOLLOW = 256, MS_NOATIME = 1024,
  MS_NODIRATIME = 2048, MS_BIND = 4096, MS_MOVE = 8192, MS_REC = 16384, MS_SILENT = 32768,
  MS_POSIXACL = 1 << 16, MS_RELATIME = 1 << 21, MS_STRICTATIME = 1 << 24, MS_LAZYTIME = 1 << 25;
export const MNT_FORCE = 1, MNT_DETACH = 2, MNT_EXPIRE = 4, UMOUNT_NOFOLLOW = 8;
/*
 * ioctl(2) requests (include/uapi/asm-generic/ioctl.h encodes them: direction in bits 30-31,
 * argument size in 16-29, type in 8-15, number in 0-7; sizes are x86-64's, so `long` is 8).
 * The *GETFLAGS/*GETVERSION requests say `long` but Linux reads and writes an int (4 bytes).
 */
export const _IOC_WRITE = 1, _IOC_READ = 2;
export const _IOC_DIR = (cmd: number) => (cmd >>> 30) & 3;
/* include/uapi/linux/fs.h */
export const FS_IOC_GETFLAGS = 0x80086601, FS_IOC_SETFLAGS = 0x40086602,
  FS_IOC_GETVERSION = 0x80087601, FS_IOC_SETVERSION = 0x40087602,
  FS_IOC32_GETFLAGS = 0x80046601, FS_IOC32_SETFLAGS = 0x40046602,
  FS_IOC_FSGETXATTR = 0x801c581f, FS_IOC_FSSETXATTR = 0x401c5820,
  FIGETBSZ = 0x00000002, FIBMAP = 0x00000001;
/* include/uapi/asm-generic/ioctls.h */
export const FIONREAD = 0x541b, FIONBIO = 0x5421, FIONCLEX = 0x5450, FIOCLEX = 0x5451,
  FIOASYNC = 0x5452, FIOQSIZE = 0x5460;
/* fs/ext4/ext4.h (EXT4_IOC_GETVERSION_OLD/SETVERSION_OLD are FS_IOC_GETVERSION/SETVERSION) */
export const EXT4_IOC_GETVERSION = 0x80086603, EXT4_IOC_SETVERSION = 0x40086604;
/* include/uapi/linux/msdos_fs.h */
export const FAT_IOCTL_GET_ATTRIBUTES = 0x80047210, FAT_IOCTL_SET_ATTRIBUTES = 0x40047211,
  FAT_IOCTL_GET_VOLUME_ID = 0x80047213;
/* FS_IOC_GETFLAGS/SETFLAGS flags (include/uapi/linux/fs.h; ext2/ext4 on-disk values) */
export const FS_SECRM_FL = 0x1, FS_UNRM_FL = 0x2, FS_COMPR_FL = 0x4, FS_SYNC_FL = 0x8,
  FS_IMMUTABLE_FL = 0x10, FS_APPEND_FL = 0x20, FS_NODUMP_FL = 0x40, FS_NOATIME_FL = 0x80,
  FS_DIRTY_FL = 0x100, FS_COMPRBLK_FL = 0x200, FS_NOCOMP_FL = 0x400, FS_ENCRYPT_FL = 0x800,
  FS_INDEX_FL = 0x1000, FS_IMAGIC_FL = 0x2000, FS_JOURNAL_DATA_FL = 0x4000, FS_NOTAIL_FL = 0x8000,
  FS_DIRSYNC_FL = 0x10000, FS_TOPDIR_FL = 0x20000, FS_HUGE_FILE_FL = 0x40000, FS_EXTENT_FL = 0x80000,
  FS_VERITY_FL = 0x100000, FS_EA_INODE_FL = 0x200000, FS_EOFBLOCKS_FL = 0x400000, FS_NOCOW_FL = 0x800000,
  FS_DAX_FL = 0x2000000, FS_INLINE_DATA_FL = 0x10000000, FS_PROJINHERIT_FL = 0x20000000,
  FS_CASEFOLD_FL = 0x40000000, FS_RESERVED_FL = 0x80000000;
/* struct fsxattr's fsx_xflags */
export const FS_XFLAG_REALTIME = 0x1, FS_XFLAG_PREALLOC = 0x2, FS_XFLAG_IMMUTABLE = 0x8,
  FS_XFLAG_APPEND = 0x10, FS_XFLAG_SYNC = 0x20, FS_XFLAG_NOATIME = 0x40, FS_XFLAG_NODUMP = 0x80,
  FS_XFLAG_RTINHERIT = 0x100, FS_XFLAG_PROJINHERIT = 0x200, FS_XFLAG_NOSYMLINKS = 0x400,
  FS_XFLAG_EXTSIZE = 0x800, FS_XFLAG_EXTSZINHERIT = 0x1000, FS_XFLAG_NODEFRAG = 0x2000,
  FS_XFLAG_FILESTREAM = 0x4000, FS_XFLAG_DAX = 0x8000, FS_XFLAG_COWEXTSIZE = 0x10000,
  FS_XFLAG_VERITY = 0x20000, FS_XFLAG_HASATTR = 0x80000000;
/** sizeof(struct fsxattr): five __u32 and 8 bytes of padding. */
export const FSXATTR_SIZE = 28;

/* clock ids */
export const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_BOOTTIME = 7;
/* reboot(2) */
export const LINUX_REBOOT_MAGIC1 = 0xfee1dead, LINUX_REBOOT_MAGIC2 = 672274793,
  LINUX_REBOOT_CMD_HALT = 0xcdef0123, LINUX_REBOOT_CMD_POWER_OFF = 0x4321fedc,
  LINUX_REBOOT_CMD_RESTART = 0x01234567;
/* makedev as glibc encodes dev_t */
export const makedev = (major: number, minor: number) =>
  ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
export const major = (dev: number) => (dev >>> 8) & 0xfff;
export const minor = (dev: number) => (dev & 0xff) | ((dev >>> 12) & 0xfff00);

/** struct timespec. */
export interface timespec64 { sec: number; nsec: number }

/** struct stat, as newfstatat fills it. Sizes fit in a double (2^53). */
export interface stat {
  dev: number; ino: number; mode: number; nlink: number; uid: number; gid: number;
  rdev: number; size: number; blksize: number; blocks: number;
  atime: timespec64; mtime: timespec64; ctime: timespec64;
}
/** struct statx: stat plus creation time and the mask of what the filesystem filled. */
export interface statx extends stat { mask: number; btime: timespec64; attributes: number }
/** struct statfs. */
export interface statfs {
  type: number; bsize: number; blocks: number; bfree: number; bavail: number;
  files: number; ffree: number; fsid: [number, number]; namelen: number; frsize: number;
  flags: number;
}
/** One struct linux_dirent64 as getdents64 returns it. `name` is UTF-8 decoded; `rawName` the bytes. */
export interface linux_dirent64 { ino: number; off: number; type: number; name: string; rawName: Uint8Array }
