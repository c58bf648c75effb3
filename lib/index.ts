/*
 * lkl-ts public API — the lkl.h of lkl-ts. Boot a kernel inside this process, add disks,
 * mount them, and use the Linux system-call API through `kernel.sys`.
 *
 *   const k = await startKernel({ memMiB: 64 });
 *   const fd = await k.sys.open('/hello', O_CREAT | O_RDWR, 0o644);
 *   await k.sys.write(fd, new TextEncoder().encode('hi'));
 *   await k.halt();
 *
 * This file binds the host-independent API (drivers/api.ts) to Node: the Node HostOps and
 * disks backed by files, descriptors or memory. The browser's binding is lib/web/kernel.ts.
 */
import { createNodeHost } from './drivers/node-host.js';
import { bootKernel, type KernelCore } from './drivers/api.js';
import { diskAdd, type DiskOptions } from './drivers/disk.js';

export * from './kernel/include/uapi.js';
/* the kernel's structs under the public API's names */
export type {
  timespec64 as Timespec, stat as Stat, statx as Statx, statfs as Statfs, linux_dirent64 as Dirent64,
} from './kernel/include/uapi.js';
export type { Sys, PathArg } from './kernel/include/sys.js';
export { opendir, Dir, type Caller } from './drivers/api.js';

export interface StartOptions {
  /** Physical memory of the kernel in MiB (page cache, buffers). Default 64. */
  memMiB?: number;
  /** Kernel command line ("key=value ..."). */
  cmdline?: string;
  /** Number of syscall threads (concurrent blocking system calls). Default 8. */
  syscallThreads?: number;
  /** Where kernel messages go, with their log level (default: the debug namespace lkl:kernel). */
  print?: (msg: string, level?: number) => void;
}

export interface Kernel extends KernelCore {
  /** Add a disk (a virtio-blk device over a file, fd or memory); resolves to its id or -errno. */
  diskAdd(store: DiskOptions): Promise<number>;
}

export { diskAdd, type DiskOptions };

/** Boot the kernel. Only one kernel runs in a process at a time. */
export async function startKernel(opts: StartOptions = {}): Promise<Kernel> {
  const host = createNodeHost({ print: opts.print });
  const core = await bootKernel(host, {
    memMiB: opts.memMiB ?? 64,
    cmdline: opts.cmdline ?? '',
    syscallThreads: opts.syscallThreads ?? 8,
    warn: (m) => process.emitWarning(m),
  });
  return { ...core, diskAdd: (store) => diskAdd(store) };
}

export { strerror } from './kernel/include/uapi.js';
