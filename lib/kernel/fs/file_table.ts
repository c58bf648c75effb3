/*
 * Open files and the descriptor table (fs/file_table.c, fs/file.c, fs/fcntl.c).
 *
 * A file holds a reference on its path (vfsmount + dentry); the last fput releases it,
 * which is what keeps an unlinked-but-open inode alive (its dentry pins it) until the last
 * close. The descriptor table maps small integers to files, lowest free number first.
 * System calls take their own reference on the file for their whole duration (fget /
 * fput), because a call may sleep and another thread may close the descriptor meanwhile.
 *
 * May touch: fs_struct, namei (path refs), inode (i_writecount), the process context.
 */
import { current } from '../arch/cpu.js';
import { define_syscall, processContext } from '../arch/syscalls.js';
import { file, FMODE_PATH, FMODE_WRITE, CAP_FOWNER, type file_operations, type path } from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  EBADF, EINVAL, EMFILE, EPERM, F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_SETFD, F_SETFL,
  FD_CLOEXEC, O_APPEND, O_CLOEXEC, O_DIRECT, O_NOATIME, O_NONBLOCK,
} from '../include/uapi.js';
import * as NR from '../include/unistd.js';
import { path_put } from './namei.js';
import { current_cred, capable } from '../kernel/cred.js';

/**
 * Highest descriptor number + 1: Linux's NR_OPEN (1024 * 1024, the default ceiling of
 * fs.nr_open; LKL's process has no rlimit setup). lklfuse's kernel transport keeps an O_PATH
 * descriptor for every directory the host has looked up and not yet forgotten, and the
 * host forgets late: a walk of a directory with 65,000 subdirectories (e2fsprogs'
 * f_many_subdirs) ran out of a 65,536 limit (EMFILE).
 */
export const NR_OPEN_MAX = 1024 * 1024;

export class files_struct {
  fdt: Array<file | null> = [];
  cloexec = new Set<number>();
  /** Lowest possibly-free descriptor (next_fd). */
  nextFd = 0;
}

export function current_files(): files_struct {
  const f = (current().ctx.files ?? processContext().files) as files_struct | undefined;
  if (!f) throw new Error('no file table: the VFS is not initialised');
  return f;
}

let openFiles = 0;
/** Number of files alive (nr_files); tests use it to check that nothing leaks. */
export function nrFiles(): number { return openFiles; }
export function resetFileCount(): void { openFiles = 0; }

/** alloc_file: takes over the caller's reference on `path`. */
export function alloc_file(path: path, flags: number, mode: number, fop: file_operations): file {
  const inode = path.dentry.d_inode;
  if (!inode) throw new Error('allocFile on a negative dentry');
  const f = new file(path, inode, fop);
  f.f_flags = flags;
  f.f_mode = mode;
  openFiles++;
  return f;
}

export function get_file(f: file): file { f.f_count++; return f; }

/** fput: drop a reference; the last one releases the file (__fput). */
export async function fput(f: file): Promise<void> {
  if (f.f_count <= 0) throw new Error('fput of a dead file');
  if (--f.f_count > 0) return;
  const inode = f.f_inode;
  try {
    if (!(f.f_mode & FMODE_PATH) && f.f_op.release) await f.f_op.release(inode, f);
  } finally {
    if (f.f_mode & FMODE_WRITE) inode.i_writecount--;
    if (!(f.f_mode & FMODE_PATH)) inode.i_opencount--;
    openFiles--;
    await path_put(f.f_path);
  }
}

/** fget_raw: the file behind fd, with a reference (O_PATH files included). */
export function fget_raw(fd: number): file {
  const files = current_files();
  const f = Number.isInteger(fd) && fd >= 0 ? files.fdt[fd] : null;
  if (!f) throw err(EBADF);
  return get_file(f);
}
/** fget: as fget_raw, but O_PATH descriptors do not count (EBADF), as for I/O calls. */
export function fget(fd: number): file {
  const f = fget_raw(fd);
  if (f.f_mode & FMODE_PATH) { f.f_count--; throw err(EBADF); }
  return f;
}
/** Run fn with a reference on fd's file (fdget ... fdput). */
export async function withFile<T>(fd: number, fn: (f: file) => Promise<T> | T, raw = false): Promise<T> {
  const f = raw ? fget_raw(fd) : fget(fd);
  try { return await fn(f); } finally { await fput(f); }
}

/** get_unused_fd + fd_install: the lowest free descriptor >= start. */
export function fd_install(file: file, cloexec: boolean, start = 0): number {
  const files = current_files();
  let fd = Math.max(start, start === 0 ? files.nextFd : start);
  while (fd < files.fdt.length && files.fdt[fd]) fd++;
  if (fd >= NR_OPEN_MAX) throw err(EMFILE);
  while (files.fdt.length <= fd) files.fdt.push(null);
  files.fdt[fd] = file;
  if (cloexec) files.cloexec.add(fd); else files.cloexec.delete(fd);
  if (start <= files.nextFd) files.nextFd = fd + 1;
  return fd;
}

/** Remove fd from the table and return its file (the table's reference goes to the caller). */
export function fd_remove(fd: number): file {
  const files = current_files();
  const f = Number.isInteger(fd) && fd >= 0 ? files.fdt[fd] : null;
  if (!f) throw err(EBADF);
  files.fdt[fd] = null;
  files.cloexec.delete(fd);
  if (fd < files.nextFd) files.nextFd = fd;
  while (files.fdt.length && files.fdt[files.fdt.length - 1] === null) files.fdt.pop();
  return f;
}

/** filp_close: flush, then drop the table's reference. */
export async function filp_close(f: file): Promise<void> {
  try {
    if (!(f.f_mode & FMODE_PATH) && f.f_op.flush) await f.f_op.flush(f);
  } finally { await fput(f); }
}

/** close_range(0, ~0): used at halt so that every file is released before unmounting. */
export async function close_files(files: files_struct): Promise<void> {
  for (let fd = 0; fd < files.fdt.length; fd++) {
    const f = files.fdt[fd];
    if (!f) continue;
    files.fdt[fd] = null;
    await filp_close(f);
  }
  files.fdt.length = 0;
  files.cloexec.clear();
  files.nextFd = 0;
}

/* ---- dup, dup3, fcntl ---- */

function do_dup2(oldfd: number, newfd: number, cloexec: boolean): file | null {
  const files = current_files();
  const f = files.fdt[oldfd];
  if (!f) throw err(EBADF);
  if (!Number.isInteger(newfd) || newfd < 0 || newfd >= NR_OPEN_MAX) throw err(EBADF);
  const old = files.fdt[newfd] ?? null;
  while (files.fdt.length <= newfd) files.fdt.push(null);
  files.fdt[newfd] = get_file(f);
  if (cloexec) files.cloexec.add(newfd); else files.cloexec.delete(newfd);
  return old;
}

define_syscall(NR.__NR_dup, 'dup', (fd: number) => {
  const f = fget_raw(fd);
  try { return fd_install(f, false); } catch (e) { f.f_count--; throw e; }
});

define_syscall(NR.__NR_dup3, 'dup3', async (oldfd: number, newfd: number, flags: number) => {
  if (flags & ~O_CLOEXEC) throw err(EINVAL);
  if (oldfd === newfd) throw err(EINVAL);
  const files = current_files();
  if (!Number.isInteger(oldfd) || oldfd < 0 || !files.fdt[oldfd]) throw err(EBADF);
  const old = do_dup2(oldfd, newfd, (flags & O_CLOEXEC) !== 0);
  // The displaced file is closed silently, as dup2 does.
  if (old) await filp_close(old);
  return newfd;
});

/** Flags F_SETFL may change (SETFL_MASK). */
const SETFL_MASK = O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT;

define_syscall(NR.__NR_fcntl, 'fcntl', (fd: number, cmd: number, arg: number) => {
  const files = current_files();
  const f = Number.isInteger(fd) && fd >= 0 ? files.fdt[fd] : null;
  if (!f) throw err(EBADF);
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      if (!Number.isInteger(arg) || arg < 0 || arg >= NR_OPEN_MAX) throw err(EINVAL);
      get_file(f);
      try { return fd_install(f, cmd === F_DUPFD_CLOEXEC, arg); } catch (e) { f.f_count--; throw e; }
    }
    case F_GETFD: return files.cloexec.has(fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
      if (arg & FD_CLOEXEC) files.cloexec.add(fd); else files.cloexec.delete(fd);
      return 0;
    case F_GETFL: return f.f_flags;
  }
  if (f.f_mode & FMODE_PATH) throw err(EBADF);
  if (cmd === F_SETFL) {
    // O_NOATIME can only be set by the owner (or CAP_FOWNER), as at open.
    if ((arg & O_NOATIME) && !(f.f_flags & O_NOATIME) &&
        current_cred().fsuid !== f.f_inode.i_uid && !capable(CAP_FOWNER)) throw err(EPERM);
    f.f_flags = (f.f_flags & ~SETFL_MASK) | (arg & SETFL_MASK);
    return 0;
  }
  throw err(EINVAL);
});
