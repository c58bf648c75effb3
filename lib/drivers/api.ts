/*
 * The host-independent half of the public API (LKL's liblkl: lkl_sys_* wrappers, boot and
 * halt, lkl_opendir): the typed system-call object, booting a kernel on a given HostOps
 * with the disks registered so far, and directory reading. Platform-free: lib/index.ts
 * binds it to the Node host, lib/web to the browser's. It also links the kernel in (its
 * subsystems' init calls, built-in.ts).
 */
import { start_kernel as kernelStart, haltKernel } from '../kernel/arch/setup.js';
import { runAsInit } from '../kernel/arch/threads.js';
import { show_state_filter } from '../kernel/kernel/sched/core.js';
import { sysctl_read } from '../kernel/kernel/sysctl.js';
import { syscall, syscallGeneration } from '../kernel/arch/syscalls.js';
import type { HostOps } from '../kernel/host-ops.js';
import type { FsCredOverride } from '../kernel/include/fs.js';
import * as NR from '../kernel/include/unistd.js';
import {
  AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, LINUX_REBOOT_CMD_HALT, LINUX_REBOOT_MAGIC1,
  LINUX_REBOOT_MAGIC2, O_DIRECTORY, O_RDONLY, type linux_dirent64,
} from '../kernel/include/uapi.js';
import type { Sys, PathArg } from '../kernel/include/sys.js';
import '../kernel/built-in.js';
import { diskRemove, disksBoot, disksHalt, mountDev, umountDev } from './disks.js';

/**
 * Who a Sys from sysAs acts for: fsuid, fsgid and supplementary groups of its calls, and
 * optionally the umask its calls create files with (default: the process's).
 */
export interface Caller { uid: number; gid: number; groups: number[]; umask?: number }

/** A running kernel, whatever its host (lib/index.ts's Kernel adds diskAdd for Node stores). */
export interface KernelCore {
  sys: Sys;
  /**
   * A Sys whose calls run with the caller's filesystem identity (fsuid/fsgid/groups in the
   * cred, as a file server acting for someone), so permission checks and new files' owners
   * are the caller's. Other credentials (uid, euid) stay the process's.
   */
  sysAs(caller: Caller): Sys;
  halt(): Promise<void>;
  /** Mount /dev/vdX[N] of a disk (part 0 = whole disk) on /mnt/vdX[N]; resolves to the path or -errno. */
  mountDev(diskId: number, part: number, fsType: string, flags?: number, opts?: string | null): Promise<string | number>;
  /** Unmount what mountDev mounted (retrying while busy up to timeoutMs); 0 or -errno. */
  umountDev(diskId: number, part: number, flags?: number, timeoutMs?: number): Promise<number>;
  /** Remove a disk: -EBUSY while mounted; closes its store. */
  diskRemove(diskId: number): Promise<number>;
  /**
   * sysrq-t: print every kernel task's state through printk (show_state_filter, at KERN_INFO):
   * what each sleeps on and the system call it serves. Resolves once printed.
   */
  showState(): Promise<void>;
  /**
   * Read-only sysctls by name ('fs.inode-nr', 'fs.dentry-state', ...; lib/kernel/kernel/sysctl.ts):
   * each value as /proc/sys would print it; unknown names are left out.
   */
  sysctl(names: string[]): Promise<Record<string, string>>;
}

export interface BootOptions {
  memMiB: number;
  cmdline: string;
  syscallThreads: number;
  /** Where the disk registry reports problems it cannot return (a disk refused at boot). */
  warn?: (msg: string) => void;
}

/**
 * Build the typed `sys` object for one boot: each method is one system call (*at forms for
 * the short ones). Its calls carry that boot's generation, so a call made after halt (or
 * after a later boot) resolves to -ENOSYS at once instead of reaching another kernel. With
 * `fscred`, every call runs with those filesystem credentials (sysAs), with `umask` with
 * that umask.
 */
export function makeSys(generation: number, fscred?: FsCredOverride, umask?: number): Sys {
  const call = (nr: number, args: unknown[]) => syscall(nr, args, { gen: generation, fscred, umask });
  const s = (nr: number) => (...args: unknown[]) => call(nr, args);
  const sys: Sys = {
    openat: s(NR.__NR_openat) as Sys['openat'],
    open: (p, f, m = 0) => call(NR.__NR_openat, [AT_FDCWD, p, f, m]),
    close: s(NR.__NR_close) as Sys['close'],
    read: s(NR.__NR_read) as Sys['read'],
    write: s(NR.__NR_write) as Sys['write'],
    pread64: s(NR.__NR_pread64) as Sys['pread64'],
    pwrite64: s(NR.__NR_pwrite64) as Sys['pwrite64'],
    readv: s(NR.__NR_readv) as Sys['readv'],
    writev: s(NR.__NR_writev) as Sys['writev'],
    lseek: s(NR.__NR_lseek) as Sys['lseek'],
    fstat: s(NR.__NR_fstat) as Sys['fstat'],
    newfstatat: s(NR.__NR_newfstatat) as Sys['newfstatat'],
    stat: (p) => call(NR.__NR_newfstatat, [AT_FDCWD, p, 0]),
    lstat: (p) => call(NR.__NR_newfstatat, [AT_FDCWD, p, AT_SYMLINK_NOFOLLOW]),
    statx: s(NR.__NR_statx) as Sys['statx'],
    getdents64: s(NR.__NR_getdents64) as Sys['getdents64'],
    mkdirat: s(NR.__NR_mkdirat) as Sys['mkdirat'],
    mkdir: (p, m) => call(NR.__NR_mkdirat, [AT_FDCWD, p, m]),
    unlinkat: s(NR.__NR_unlinkat) as Sys['unlinkat'],
    unlink: (p) => call(NR.__NR_unlinkat, [AT_FDCWD, p, 0]),
    rmdir: (p) => call(NR.__NR_unlinkat, [AT_FDCWD, p, AT_REMOVEDIR]),
    renameat2: s(NR.__NR_renameat2) as Sys['renameat2'],
    rename: (a, b) => call(NR.__NR_renameat2, [AT_FDCWD, a, AT_FDCWD, b, 0]),
    linkat: s(NR.__NR_linkat) as Sys['linkat'],
    link: (a, b) => call(NR.__NR_linkat, [AT_FDCWD, a, AT_FDCWD, b, 0]),
    symlinkat: s(NR.__NR_symlinkat) as Sys['symlinkat'],
    symlink: (t, l) => call(NR.__NR_symlinkat, [t, AT_FDCWD, l]),
    readlinkat: s(NR.__NR_readlinkat) as Sys['readlinkat'],
    readlink: ((p: PathArg, buf?: Uint8Array) => call(NR.__NR_readlinkat, buf ? [AT_FDCWD, p, buf] : [AT_FDCWD, p])) as Sys['readlink'],
    fchmod: s(NR.__NR_fchmod) as Sys['fchmod'],
    fchmodat: s(NR.__NR_fchmodat) as Sys['fchmodat'],
    chmod: (p, m) => call(NR.__NR_fchmodat, [AT_FDCWD, p, m, 0]),
    fchown: s(NR.__NR_fchown) as Sys['fchown'],
    fchownat: s(NR.__NR_fchownat) as Sys['fchownat'],
    chown: (p, u, g) => call(NR.__NR_fchownat, [AT_FDCWD, p, u, g, 0]),
    lchown: (p, u, g) => call(NR.__NR_fchownat, [AT_FDCWD, p, u, g, AT_SYMLINK_NOFOLLOW]),
    truncate: s(NR.__NR_truncate) as Sys['truncate'],
    ftruncate: s(NR.__NR_ftruncate) as Sys['ftruncate'],
    fallocate: s(NR.__NR_fallocate) as Sys['fallocate'],
    utimensat: s(NR.__NR_utimensat) as Sys['utimensat'],
    faccessat: s(NR.__NR_faccessat) as Sys['faccessat'],
    access: (p, m) => call(NR.__NR_faccessat, [AT_FDCWD, p, m, 0]),
    mknodat: s(NR.__NR_mknodat) as Sys['mknodat'],
    mknod: (p, m, d) => call(NR.__NR_mknodat, [AT_FDCWD, p, m, d]),
    umask: s(NR.__NR_umask) as Sys['umask'],
    chdir: s(NR.__NR_chdir) as Sys['chdir'],
    fchdir: s(NR.__NR_fchdir) as Sys['fchdir'],
    getcwd: s(NR.__NR_getcwd) as Sys['getcwd'],
    chroot: s(NR.__NR_chroot) as Sys['chroot'],
    dup: s(NR.__NR_dup) as Sys['dup'],
    dup2: (o, n) => o === n ? call(NR.__NR_fcntl, [o, 1 /* F_GETFD */, 0]).then((r: number) => (r < 0 ? r : n)) : call(NR.__NR_dup3, [o, n, 0]),
    dup3: s(NR.__NR_dup3) as Sys['dup3'],
    fcntl: (fd, cmd, arg = 0) => call(NR.__NR_fcntl, [fd, cmd, arg]),
    ioctl: (fd, cmd, arg = 0) => call(NR.__NR_ioctl, [fd, cmd, arg]),
    statfs: s(NR.__NR_statfs) as Sys['statfs'],
    fstatfs: s(NR.__NR_fstatfs) as Sys['fstatfs'],
    sync: s(NR.__NR_sync) as Sys['sync'],
    syncfs: s(NR.__NR_syncfs) as Sys['syncfs'],
    fsync: s(NR.__NR_fsync) as Sys['fsync'],
    fdatasync: s(NR.__NR_fdatasync) as Sys['fdatasync'],
    setxattr: s(NR.__NR_setxattr) as Sys['setxattr'],
    lsetxattr: s(NR.__NR_lsetxattr) as Sys['lsetxattr'],
    fsetxattr: s(NR.__NR_fsetxattr) as Sys['fsetxattr'],
    getxattr: s(NR.__NR_getxattr) as Sys['getxattr'],
    lgetxattr: s(NR.__NR_lgetxattr) as Sys['lgetxattr'],
    fgetxattr: s(NR.__NR_fgetxattr) as Sys['fgetxattr'],
    listxattr: s(NR.__NR_listxattr) as Sys['listxattr'],
    llistxattr: s(NR.__NR_llistxattr) as Sys['llistxattr'],
    flistxattr: s(NR.__NR_flistxattr) as Sys['flistxattr'],
    removexattr: s(NR.__NR_removexattr) as Sys['removexattr'],
    lremovexattr: s(NR.__NR_lremovexattr) as Sys['lremovexattr'],
    fremovexattr: s(NR.__NR_fremovexattr) as Sys['fremovexattr'],
    setxattrat: s(NR.__NR_setxattrat) as Sys['setxattrat'],
    getxattrat: s(NR.__NR_getxattrat) as Sys['getxattrat'],
    listxattrat: s(NR.__NR_listxattrat) as Sys['listxattrat'],
    removexattrat: s(NR.__NR_removexattrat) as Sys['removexattrat'],
    mount: s(NR.__NR_mount) as Sys['mount'],
    umount2: s(NR.__NR_umount2) as Sys['umount2'],
    nanosleep: s(NR.__NR_nanosleep) as Sys['nanosleep'],
    clock_gettime: s(NR.__NR_clock_gettime) as Sys['clock_gettime'],
    clock_settime: s(NR.__NR_clock_settime) as Sys['clock_settime'],
    getpid: s(NR.__NR_getpid) as Sys['getpid'],
    gettid: s(NR.__NR_gettid) as Sys['gettid'],
    getuid: s(NR.__NR_getuid) as Sys['getuid'],
    geteuid: s(NR.__NR_geteuid) as Sys['geteuid'],
    getgid: s(NR.__NR_getgid) as Sys['getgid'],
    getegid: s(NR.__NR_getegid) as Sys['getegid'],
    setuid: s(NR.__NR_setuid) as Sys['setuid'],
    setgid: s(NR.__NR_setgid) as Sys['setgid'],
    setresuid: s(NR.__NR_setresuid) as Sys['setresuid'],
    setresgid: s(NR.__NR_setresgid) as Sys['setresgid'],
    getresuid: s(NR.__NR_getresuid) as Sys['getresuid'],
    getresgid: s(NR.__NR_getresgid) as Sys['getresgid'],
    setgroups: s(NR.__NR_setgroups) as Sys['setgroups'],
    getgroups: s(NR.__NR_getgroups) as Sys['getgroups'],
    reboot: s(NR.__NR_reboot) as Sys['reboot'],
  };
  return sys;
}

let running = false;

/** Boot the kernel on `host`. Only one kernel runs in a process (or page) at a time. */
export async function bootKernel(host: HostOps, opts: BootOptions): Promise<KernelCore> {
  if (running) throw new Error('lkl-ts: a kernel is already running in this process');
  running = true;
  await kernelStart(host, { memMiB: opts.memMiB, cmdline: opts.cmdline, syscallThreads: opts.syscallThreads });
  await disksBoot(opts.warn);
  const generation = syscallGeneration();
  const sys = makeSys(generation);
  let halted = false;
  return {
    sys,
    sysAs: (c) => makeSys(generation, { fsuid: c.uid, fsgid: c.gid, groups: c.groups }, c.umask),
    async halt() {
      if (halted) return;
      halted = true;
      await sys.reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_HALT);
      await haltKernel();
      await disksHalt();
      running = false;
    },
    mountDev: (id, part, type, flags = 0, o = null) => mountDev(sys, id, part, type, flags, o),
    umountDev: (id, part, flags = 0, timeoutMs = 1000) => umountDev(sys, id, part, flags, timeoutMs),
    diskRemove: (id) => diskRemove(id),
    // A kernel thread of its own (as sysrq's work): it gets the CPU even when every syscall
    // thread is stuck, since a sleeping task does not hold it.
    showState: () => halted ? Promise.resolve() : runAsInit('sysrq', async () => { show_state_filter(''); }),
    sysctl: (names) => halted ? Promise.resolve({}) : runAsInit('sysctl', async () => {
      const out: Record<string, string> = {};
      for (const n of names) { const v = sysctl_read(n); if (v !== undefined) out[n] = v; }
      return out;
    }),
  };
}

/** Open a directory for readdir (the opendir(3) of lkl-ts). */
export async function opendir(sys: Sys, path: PathArg): Promise<Dir | number> {
  const fd = await sys.open(path, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return fd;
  return new Dir(sys, fd);
}

export class Dir {
  private buf: linux_dirent64[] = [];
  private eof = false;
  constructor(private readonly sys: Sys, readonly fd: number) {}
  /** Next entry, null at the end, or -errno. */
  async readdir(): Promise<linux_dirent64 | null | number> {
    if (this.buf.length === 0 && !this.eof) {
      const r = await this.sys.getdents64(this.fd, 32768);
      if (typeof r === 'number') return r;
      if (r.length === 0) this.eof = true;
      this.buf = r;
    }
    return this.buf.shift() ?? null;
  }
  close(): Promise<number> { return this.sys.close(this.fd); }
}

