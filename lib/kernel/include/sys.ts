/*
 * The typed system-call API: what `kernel.sys` offers applications (lib/index.ts builds it
 * over the IRQ_SYSCALL entry). Each method is named after the Linux system call and resolves
 * to what the call returns (>= 0) or -errno. Where C fills a struct, the method resolves to
 * the object instead (or to a negative errno number): test with `typeof r === 'number'`.
 * Paths are strings (UTF-8) or raw bytes. Buffers are filled or read in place, as in C.
 */
import type { linux_dirent64, stat, statfs, statx, timespec64 } from './uapi.js';

export type PathArg = string | Uint8Array;
export type Ret = Promise<number>;
export type RetOr<T> = Promise<T | number>;

export interface Sys {
  openat(dirfd: number, path: PathArg, flags: number, mode?: number): Ret;
  open(path: PathArg, flags: number, mode?: number): Ret;
  close(fd: number): Ret;
  read(fd: number, buf: Uint8Array): Ret;
  write(fd: number, buf: Uint8Array): Ret;
  pread64(fd: number, buf: Uint8Array, pos: number): Ret;
  pwrite64(fd: number, buf: Uint8Array, pos: number): Ret;
  readv(fd: number, iov: Uint8Array[]): Ret;
  writev(fd: number, iov: Uint8Array[]): Ret;
  lseek(fd: number, offset: number, whence: number): Ret;
  fstat(fd: number): RetOr<stat>;
  newfstatat(dirfd: number, path: PathArg, flags: number): RetOr<stat>;
  stat(path: PathArg): RetOr<stat>;
  lstat(path: PathArg): RetOr<stat>;
  statx(dirfd: number, path: PathArg, flags: number, mask: number): RetOr<statx>;
  /** Reads directory entries worth at most `count` bytes of linux_dirent64 records. */
  getdents64(fd: number, count: number): RetOr<linux_dirent64[]>;
  mkdirat(dirfd: number, path: PathArg, mode: number): Ret;
  mkdir(path: PathArg, mode: number): Ret;
  unlinkat(dirfd: number, path: PathArg, flags: number): Ret;
  unlink(path: PathArg): Ret;
  rmdir(path: PathArg): Ret;
  renameat2(olddirfd: number, oldpath: PathArg, newdirfd: number, newpath: PathArg, flags: number): Ret;
  rename(oldpath: PathArg, newpath: PathArg): Ret;
  linkat(olddirfd: number, oldpath: PathArg, newdirfd: number, newpath: PathArg, flags: number): Ret;
  link(oldpath: PathArg, newpath: PathArg): Ret;
  symlinkat(target: PathArg, newdirfd: number, linkpath: PathArg): Ret;
  symlink(target: PathArg, linkpath: PathArg): Ret;
  /** Resolves to the target (UTF-8 decoded) or -errno. */
  readlinkat(dirfd: number, path: PathArg): RetOr<string>;
  /** As in C: the target's bytes into buf (truncated to its length), resolves to the count. */
  readlinkat(dirfd: number, path: PathArg, buf: Uint8Array): Ret;
  readlink(path: PathArg): RetOr<string>;
  readlink(path: PathArg, buf: Uint8Array): Ret;
  fchmod(fd: number, mode: number): Ret;
  fchmodat(dirfd: number, path: PathArg, mode: number, flags: number): Ret;
  chmod(path: PathArg, mode: number): Ret;
  fchown(fd: number, uid: number, gid: number): Ret;
  fchownat(dirfd: number, path: PathArg, uid: number, gid: number, flags: number): Ret;
  chown(path: PathArg, uid: number, gid: number): Ret;
  lchown(path: PathArg, uid: number, gid: number): Ret;
  truncate(path: PathArg, length: number): Ret;
  ftruncate(fd: number, length: number): Ret;
  fallocate(fd: number, mode: number, offset: number, len: number): Ret;
  /** times: [atime, mtime] (nsec may be UTIME_NOW / UTIME_OMIT) or null for "now". path null = dirfd itself. */
  utimensat(dirfd: number, path: PathArg | null, times: [timespec64, timespec64] | null, flags: number): Ret;
  faccessat(dirfd: number, path: PathArg, mode: number, flags: number): Ret;
  access(path: PathArg, mode: number): Ret;
  mknodat(dirfd: number, path: PathArg, mode: number, dev: number): Ret;
  mknod(path: PathArg, mode: number, dev: number): Ret;
  umask(mask: number): Ret;
  chdir(path: PathArg): Ret;
  fchdir(fd: number): Ret;
  getcwd(): RetOr<string>;
  chroot(path: PathArg): Ret;
  dup(fd: number): Ret;
  dup2(oldfd: number, newfd: number): Ret;
  dup3(oldfd: number, newfd: number, flags: number): Ret;
  fcntl(fd: number, cmd: number, arg?: number): Ret;
  /**
   * `arg` is what C passes as a pointer: a buffer the request reads from or fills in place
   * (FS_IOC_GETFLAGS/SETFLAGS an int in its first 4 bytes, little-endian; FS_IOC_FSGETXATTR
   * a 28-byte struct fsxattr), or a number. ENOTTY for a request the file does not know.
   */
  ioctl(fd: number, cmd: number, arg?: Uint8Array | number): Ret;
  statfs(path: PathArg): RetOr<statfs>;
  fstatfs(fd: number): RetOr<statfs>;
  sync(): Ret;
  syncfs(fd: number): Ret;
  fsync(fd: number): Ret;
  fdatasync(fd: number): Ret;
  setxattr(path: PathArg, name: string, value: Uint8Array, flags: number): Ret;
  lsetxattr(path: PathArg, name: string, value: Uint8Array, flags: number): Ret;
  fsetxattr(fd: number, name: string, value: Uint8Array, flags: number): Ret;
  /** Resolves to the value or -errno. */
  getxattr(path: PathArg, name: string): RetOr<Uint8Array>;
  lgetxattr(path: PathArg, name: string): RetOr<Uint8Array>;
  fgetxattr(fd: number, name: string): RetOr<Uint8Array>;
  /** Resolves to the names or -errno. */
  listxattr(path: PathArg): RetOr<string[]>;
  llistxattr(path: PathArg): RetOr<string[]>;
  flistxattr(fd: number): RetOr<string[]>;
  removexattr(path: PathArg, name: string): Ret;
  lremovexattr(path: PathArg, name: string): Ret;
  fremovexattr(fd: number, name: string): Ret;
  /*
   * The *xattrat calls (Linux 6.13): `atFlags` takes AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH;
   * a null or (with AT_EMPTY_PATH) empty path means the open file dirfd itself (EBADF for an
   * O_PATH descriptor, as f*xattr). C's struct xattr_args becomes the value and flags here.
   */
  setxattrat(dirfd: number, path: PathArg | null, atFlags: number, name: string, value: Uint8Array, flags: number): Ret;
  getxattrat(dirfd: number, path: PathArg | null, atFlags: number, name: string): RetOr<Uint8Array>;
  listxattrat(dirfd: number, path: PathArg | null, atFlags: number): RetOr<string[]>;
  removexattrat(dirfd: number, path: PathArg | null, atFlags: number, name: string): Ret;
  mount(source: PathArg | null, target: PathArg, fstype: string | null, flags: number, data: string | null): Ret;
  umount2(target: PathArg, flags: number): Ret;
  nanosleep(req: timespec64): Ret;
  clock_gettime(clockid: number): RetOr<timespec64>;
  clock_settime(clockid: number, tp: timespec64): Ret;
  getpid(): Ret;
  gettid(): Ret;
  getuid(): Ret;
  geteuid(): Ret;
  getgid(): Ret;
  getegid(): Ret;
  setuid(uid: number): Ret;
  setgid(gid: number): Ret;
  setresuid(ruid: number, euid: number, suid: number): Ret;
  setresgid(rgid: number, egid: number, sgid: number): Ret;
  getresuid(): RetOr<[number, number, number]>;
  getresgid(): RetOr<[number, number, number]>;
  setgroups(groups: number[]): Ret;
  getgroups(): RetOr<number[]>;
  reboot(magic1: number, magic2: number, cmd: number): Ret;
}
