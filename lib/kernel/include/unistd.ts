/* System call numbers: include/uapi/asm-generic/unistd.h (the table LKL uses). */
export const __NR_setxattr = 5, __NR_lsetxattr = 6, __NR_fsetxattr = 7, __NR_getxattr = 8,
  __NR_lgetxattr = 9, __NR_fgetxattr = 10, __NR_listxattr = 11, __NR_llistxattr = 12,
  __NR_flistxattr = 13, __NR_removexattr = 14, __NR_lremovexattr = 15, __NR_fremovexattr = 16,
  __NR_getcwd = 17, __NR_dup = 23, __NR_dup3 = 24, __NR_fcntl = 25, __NR_ioctl = 29, __NR_mknodat = 33,
  __NR_mkdirat = 34, __NR_unlinkat = 35, __NR_symlinkat = 36, __NR_linkat = 37,
  __NR_renameat = 38, __NR_umount2 = 39, __NR_mount = 40, __NR_statfs = 43, __NR_fstatfs = 44,
  __NR_truncate = 45, __NR_ftruncate = 46, __NR_fallocate = 47, __NR_faccessat = 48,
  __NR_chdir = 49, __NR_fchdir = 50, __NR_chroot = 51, __NR_fchmod = 52, __NR_fchmodat = 53,
  __NR_fchownat = 54, __NR_fchown = 55, __NR_openat = 56, __NR_close = 57, __NR_getdents64 = 61,
  __NR_lseek = 62, __NR_read = 63, __NR_write = 64, __NR_readv = 65, __NR_writev = 66,
  __NR_pread64 = 67, __NR_pwrite64 = 68, __NR_readlinkat = 78, __NR_newfstatat = 79,
  __NR_fstat = 80, __NR_sync = 81, __NR_fsync = 82, __NR_fdatasync = 83, __NR_utimensat = 88,
  __NR_nanosleep = 101, __NR_clock_settime = 112, __NR_clock_gettime = 113, __NR_reboot = 142,
  __NR_setgid = 144, __NR_setuid = 146, __NR_setresuid = 147, __NR_getresuid = 148,
  __NR_setresgid = 149, __NR_getresgid = 150, __NR_getgroups = 158, __NR_setgroups = 159,
  __NR_umask = 166, __NR_getpid = 172, __NR_getuid = 174, __NR_geteuid = 175, __NR_getgid = 176,
  __NR_getegid = 177, __NR_gettid = 178, __NR_syncfs = 267, __NR_renameat2 = 276, __NR_statx = 291,
  __NR_setxattrat = 463, __NR_getxattrat = 464, __NR_listxattrat = 465, __NR_removexattrat = 466;
/* LKL's arch-specific calls (arch/lkl/include/uapi/asm/unistd.h): __NR_arch_specific_syscall + n. */
export const __NR_arch_specific_syscall = 244;
export const __NR_virtio_mmio_device_add = __NR_arch_specific_syscall + 0;
/** Ours: LKL has no removal call (its devices live as long as the kernel). */
export const __NR_virtio_mmio_device_remove = __NR_arch_specific_syscall + 1;
